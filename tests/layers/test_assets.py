from __future__ import annotations

import json
import re
from pathlib import Path

import branca.colormap
import folium
import folium.plugins
import pytest

from gridmap.common.errors import NotFound
from layers.assets import (
    ASSETS,
    DEFAULT_BASE_URL,
    ENV_VAR,
    STATIC_DIR,
    AssetsNotInstalled,
    UnknownAsset,
    asset_file,
    asset_files,
    assets_dir,
    assets_dir_from_env,
    copy_assets,
    inline_html,
    local_url,
    localize,
    localized_base_url,
)

REPO = Path(__file__).resolve().parents[2]
#: The folium classes gridmap maps use; every asset they name must be served locally.
USED_CLASSES = [
    folium.Map,
    folium.plugins.MarkerCluster,
    folium.plugins.Fullscreen,
    folium.plugins.MeasureControl,
    folium.plugins.HeatMap,
]
LOCAL_TAG = re.compile(r"""<(?:script|link)\b[^>]*?\b(?:src|href)="([^"]+)\"""")


def _names(cls: type) -> list[tuple[str, str]]:
    return [*getattr(cls, "default_js", []), *getattr(cls, "default_css", [])]


@pytest.mark.parametrize("cls", USED_CLASSES, ids=lambda c: c.__name__)
def test_every_asset_of_the_used_folium_classes_is_local(cls: type) -> None:
    for name, url in _names(cls):
        assert name in ASSETS, f"{cls.__name__} needs {name!r} ({url})"
        new = local_url(name, url)
        assert new is None or new.startswith(DEFAULT_BASE_URL)


def test_asset_files_exist(node_modules: Path) -> None:
    files = asset_files()
    for asset in ASSETS.values():
        if asset.path is not None:
            assert asset.path in files
    for rel in files:
        assert asset_file(rel).is_file()
    # What the stylesheets and Leaflet load in turn is there too, in its relative place.
    assert "@fortawesome/fontawesome-free/webfonts/fa-solid-900.woff2" in files
    assert "leaflet/dist/images/marker-icon.png" in files
    assert "leaflet/dist/images/layers.png" in files
    assert "leaflet.fullscreen/icon-fullscreen.svg" in files
    assert "leaflet-measure/dist/images/rulers.png" in files
    assert asset_file("gridmap/leaflet.awesome.rotate.min.css").parent == STATIC_DIR
    rotate = asset_file("gridmap/leaflet.awesome.rotate.min.css").read_text()
    assert ".fa-rotate-45{transform:rotate(45deg)}" in rotate
    assert ".fa-rotate-359{" in rotate


def test_package_json_pins_what_is_installed(node_modules: Path) -> None:
    manifest = json.loads((REPO / "package.json").read_text())
    assert manifest["name"] == "gridmap-assets" and manifest["private"] is True
    deps: dict[str, str] = manifest["dependencies"]
    assert all(re.fullmatch(r"\d+\.\d+\.\d+", v) for v in deps.values()), "exact versions"
    assert {a.package for a in ASSETS.values() if a.package} == set(deps)
    lock = json.loads((REPO / "package-lock.json").read_text())
    for package, version in deps.items():
        assert lock["packages"][f"node_modules/{package}"]["version"] == version
        installed = json.loads((node_modules / package / "package.json").read_text())
        assert installed["version"] == version, f"{package}: run `npm ci`"
    majors = {p: v.split(".")[:2] for p, v in deps.items()}
    assert majors["leaflet"] == ["1", "9"]
    assert majors["jquery"] == ["3", "7"]
    assert majors["bootstrap"][0] == "5"
    assert majors["@fortawesome/fontawesome-free"][0] == "6"
    assert majors["leaflet.awesome-markers"] == ["2", "0"]
    assert majors["leaflet.markercluster"] == ["1", "5"]


def test_local_url() -> None:
    cdn = "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.js"
    assert local_url("leaflet", cdn) == "/static/vendor/leaflet/dist/leaflet.js"
    assert local_url("leaflet", cdn, "assets") == "assets/leaflet/dist/leaflet.js"
    # Already local (any base): rebased, not refused.
    fullscreen = "/static/vendor/leaflet.fullscreen/Control.FullScreen.js"
    assert local_url("Control.Fullscreen.js", fullscreen, "x/") == (
        "x/leaflet.fullscreen/Control.FullScreen.js"
    )
    glyphicons = "https://netdna.bootstrapcdn.com/bootstrap/3.0.0/css/bootstrap-glyphicons.css"
    assert local_url("glyphicons_css", glyphicons) is None


def test_unknown_assets_are_refused_by_name() -> None:
    with pytest.raises(UnknownAsset, match=r"'leaflet_draw_js'.*package.json") as info:
        local_url("leaflet_draw_js", "https://cdnjs.cloudflare.com/leaflet.draw.js")
    assert info.value.name == "leaflet_draw_js"
    # folium's BoatMarker reuses the name "markerclusterjs" for another file.
    boat = "https://unpkg.com/leaflet.boatmarker/leaflet.boatmarker.min.js"
    with pytest.raises(UnknownAsset, match="another file"):
        local_url("markerclusterjs", boat)


def test_localize_replaces_every_cdn_url_without_touching_folium() -> None:
    before = list(folium.Map.default_js), list(folium.Map.default_css)
    m = folium.Map(tiles=None)
    cluster = folium.plugins.MarkerCluster().add_to(m)
    assert localize(m, "/v/") is m
    assert (folium.Map.default_js, folium.Map.default_css) == before
    assert "glyphicons_css" not in dict(m.default_css)
    assert isinstance(cluster, folium.plugins.MarkerCluster)
    assert dict(cluster.default_js)["markerclusterjs"] == (
        "/v/leaflet.markercluster/dist/leaflet.markercluster.js"
    )
    assert localized_base_url(m) == "/v/"
    page = m.get_root().render()
    assert "http://" not in page and "https://" not in page
    assert '<script src="/v/leaflet/dist/leaflet.js"></script>' in page


def test_localize_refuses_a_plugin_without_local_assets() -> None:
    m = folium.Map(tiles=None)
    folium.plugins.Draw().add_to(m)
    with pytest.raises(UnknownAsset, match="leaflet_draw"):
        localize(m)


def test_links_added_while_rendering_are_localized() -> None:
    # branca's colormaps add d3 to the page header while rendering, not in default_js.
    m = localize(folium.Map(tiles=None))
    branca.colormap.LinearColormap(["#ffffcc", "#800026"], vmin=0, vmax=10).add_to(m)
    page = m.get_root().render()
    assert '<script src="/static/vendor/d3/d3.min.js"></script>' in page
    assert "cdnjs" not in page


def test_links_added_while_rendering_must_be_known() -> None:
    # A header link nobody mapped raises while rendering instead of reaching the page.
    m = localize(folium.Map(tiles=None))
    folium.plugins.Draw().add_to(m)
    with pytest.raises(UnknownAsset, match="leaflet_draw"):
        m.get_root().render()


def test_assets_dir_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert assets_dir_from_env() is None
    assert assets_dir() == REPO / "node_modules"
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert assets_dir() == tmp_path
    assert assets_dir(tmp_path / "explicit") == tmp_path / "explicit"


def test_missing_assets_say_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(AssetsNotInstalled, match="npm ci") as info:
        asset_files(directory=tmp_path)
    assert isinstance(info.value, FileNotFoundError)


def test_asset_file_serves_only_needed_files(node_modules: Path) -> None:
    assert asset_file("leaflet/dist/leaflet.css") == (node_modules / "leaflet/dist/leaflet.css")
    for path in ("../package.json", "leaflet/package.json", "brfs/index.js", "/etc/passwd", ""):
        with pytest.raises(NotFound):
            asset_file(path)


def test_copy_assets_makes_a_map_work_from_disk(node_modules: Path, tmp_path: Path) -> None:
    target = copy_assets(tmp_path)
    assert target == tmp_path / "assets"
    m = folium.Map(tiles=None)
    folium.plugins.MarkerCluster().add_to(m)
    page = localize(m, "assets/").get_root().render()
    (tmp_path / "map.html").write_text(page, encoding="utf-8")
    urls = LOCAL_TAG.findall(page)
    assert len(urls) > 8
    for url in urls:
        file = tmp_path / url
        assert file.is_file(), url
        if url.endswith(".css"):  # fonts and images load relative to the stylesheet
            for ref in re.findall(r"url\(['\"]?([^'\")]+)", file.read_text()):
                if not ref.startswith(("data:", "#")):
                    assert (file.parent / ref).resolve().is_file(), (url, ref)
    assert (target / "@fortawesome/fontawesome-free/webfonts/fa-solid-900.woff2").is_file()


def test_inline_html_is_self_contained(node_modules: Path) -> None:
    m = folium.Map(tiles=None)
    folium.plugins.MarkerCluster().add_to(m)
    page = inline_html(localize(m).get_root().render())
    assert not re.search(r"<script\b[^>]*\bsrc=", page)
    assert not re.search(r"<link\b[^>]*stylesheet", page)
    assert "/static/vendor/" not in page
    assert "sourceMappingURL" not in page
    # Scripts are closed only by their own end tags.
    assert page.count("<script") == page.count("</script>")
    # Fonts and images are data URIs; each font file once, woff2 only.
    assert page.count("data:font/woff2;base64,") == 4
    assert "font/ttf" not in page
    for ref in re.findall(r"url\(\s*['\"]?([^'\")]*)", page):
        assert ref.startswith(("data:", "#default#VML")), ref
    # Leaflet's default marker images are named explicitly (they are not files here).
    assert 'L.Icon.Default.imagePath = "";' in page


def test_inline_html_leaves_foreign_links_alone(node_modules: Path) -> None:
    page = (
        '<script src="/static/vendor/not-an-asset.js"></script>'
        '<link rel="icon" href="/static/vendor/leaflet/dist/leaflet.css"/>'
    )
    assert inline_html(page) == page
