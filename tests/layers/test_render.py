from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import folium
import geopandas as gpd
import pytest
from shapely import Point

from gridmap.common.errors import BadInput, NotFound, UnknownLayer
from layers.assets import DEFAULT_BASE_URL, asset_file
from layers.catalog import CATALOG, EVENT_STATUS_COLORS
from layers.render import MapOptions, feature_collection, map_html, render_layer, render_map

XSS = "<img src=x onerror=alert(1)>"
XSS_STATUS = "<script>alert(2)</script>"
STAFF = "town_coordinator"

URL = re.compile(r"""https?://[^\s"'`<>()\\]+""", re.IGNORECASE)
#: The only URL a non-inline page may contain: a comment in folium's MeasureControl script.
ALLOWED_PAGE_URLS = {"https://github.com/ljagis/leaflet-measure/issues/171"}
#: Hosts named in the inlined libraries, none of them fetched: SVG's XML namespace,
#: Leaflet's attribution link, and documentation and licence links in comments.
ALLOWED_INLINE_HOSTS = {
    "www.w3.org",
    "leafletjs.com",
    "github.com",
    "getbootstrap.com",
    "popper.js.org",
    "fontawesome.com",
    "caniuse.com",
    "bugs.chromium.org",
    "bugzilla.mozilla.org",
}


def _page(data: dict[str, gpd.GeoDataFrame], *, inline: bool = False, **kwargs: object) -> str:
    options = {k: kwargs.pop(k) for k in list(kwargs) if k in MapOptions.__dataclass_fields__}
    m = render_map(data, role=STAFF, options=MapOptions(**options), **kwargs)  # type: ignore[arg-type]
    return map_html(m, inline=inline)


def _overlays(page: str) -> list[str]:
    """Titles of the layer control's overlays, in order (folium writes them as JSON)."""
    control = page[page.index("overlays :  {") :]
    control = control[: control.index("}")]
    return [json.loads(t) for t in re.findall(r'("(?:[^"\\]|\\.)*") :', control)]


def _encodings(text: str) -> list[str]:
    """The ways *text* could hide in a page: raw, and inside JS or JSON strings."""
    return [
        text,
        text.replace("<", "\\u003c").replace(">", "\\u003e"),
        text.replace("<", "\\x3c").replace(">", "\\x3e"),
        text.replace("<", "\\x3C").replace(">", "\\x3E"),
        text.replace("<", "\\u003C").replace(">", "\\u003E"),
        text.replace("<", "%3C").replace(">", "%3E"),
    ]


def test_page_loads_nothing_from_the_internet(
    node_modules: Path, all_layers: dict[str, gpd.GeoDataFrame]
) -> None:
    page = _page(all_layers, title="演示 Demo")
    assert set(URL.findall(page)) <= ALLOWED_PAGE_URLS
    assert "//cdn" not in page and "unpkg" not in page
    tags = re.findall(r"<(?:script|link|img)\b[^>]*>", page)
    refs = [m for t in tags for m in re.findall(r"""\b(?:src|href)\s*=\s*["']([^"']*)""", t)]
    assert len(refs) >= 15
    for ref in refs:
        assert ref.startswith(DEFAULT_BASE_URL), ref
        assert asset_file(ref[len(DEFAULT_BASE_URL) :]).is_file()
    for ref in re.findall(r"url\(\s*['\"]?([^'\")]*)", page):
        assert not re.match(r"(https?:)?//", ref), ref
    assert "tileLayer" not in page  # no basemap unless asked for


def test_inline_page_is_self_contained(
    node_modules: Path, all_layers: dict[str, gpd.GeoDataFrame]
) -> None:
    page = _page(all_layers, inline=True)
    assert not re.search(r"<script\b[^>]*\bsrc\s*=", page, re.IGNORECASE)
    assert not re.search(r"<link\b[^>]*\bhref\s*=", page, re.IGNORECASE)
    assert "/static/vendor/" not in page
    for ref in re.findall(r"url\(\s*['\"]?([^'\")]*)", page):
        assert ref.startswith(("data:", "#default#VML")), ref
    assert not re.search(r"@import", page)
    hosts = {urlsplit(u).hostname for u in URL.findall(page)}
    assert hosts <= ALLOWED_INLINE_HOSTS
    # The only link to the internet in a tag attribute is Leaflet's attribution.
    for ref in re.findall(r"""\b(?:src|href)\s*=\s*\\?["']?(https?://[^"'\\ >]*)""", page):
        assert ref == "https://leafletjs.com", ref
    assert "上报 Reported" in page


def test_user_text_is_escaped(
    node_modules: Path,
    all_layers: dict[str, gpd.GeoDataFrame],
) -> None:
    page = _page(all_layers, title=XSS)
    for hidden in _encodings(XSS) + _encodings(XSS_STATUS):
        assert hidden not in page, hidden
    # The texts are there, escaped, in the page title, the title box, the data that
    # popups and tooltips show, and the legend.
    assert f"<title>{'&lt;img src=x onerror=alert(1)&gt;'}</title>" in page
    assert '<div class="gridmap-title">&lt;img src=x onerror=alert(1)&gt;</div>' in page
    assert "\\u0026lt;img src=x onerror=alert(1)\\u0026gt;" in page
    assert "<span>&lt;script&gt;alert(2)&lt;/script&gt;</span>" in page


@pytest.mark.parametrize("layer", ["grids", "buildings", "events"])
def test_popup_and_tooltip_data_are_escaped(
    layer: str, all_layers: dict[str, gpd.GeoDataFrame]
) -> None:
    fc = feature_collection(layer, all_layers[layer], role=STAFF)
    values = [v for f in fc["features"] for v in f["properties"].values() if isinstance(v, str)]
    assert values
    for value in values:
        assert "<" not in value and ">" not in value and '"' not in value
    assert "&lt;img src=x onerror=alert(1)&gt;" in values


def test_datetimes_become_iso_strings(all_layers: dict[str, gpd.GeoDataFrame]) -> None:
    grids = feature_collection("grids", all_layers["grids"], role=STAFF)
    props = [f["properties"] for f in grids["features"]]
    assert props[0]["valid_from"] == "2024-01-01T08:00:00+08:00"
    assert props[2]["valid_from"] is None
    assert "valid_to" not in props[0] or props[0]["valid_to"] is None
    assert props[0]["workers"] == "张*、李*"  # masked as the API masks names
    unmasked = feature_collection("grids", all_layers["grids"], role=STAFF, unmask=True)
    assert unmasked["features"][0]["properties"]["workers"] == "张三、李四"
    assert props[1]["workers"] is None
    assert props[0]["households"] == 120 and props[2]["households"] is None
    events = feature_collection("events", all_layers["events"], role=STAFF)
    first = events["features"][0]["properties"]
    assert first["reported_at"] == "2024-05-01T08:30:00"
    assert first["closed_at"] is None
    assert first["status"] == "上报 Reported"
    assert first["synthetic"] == "是 Yes"
    routes = feature_collection("patrol_routes", all_layers["patrol_routes"], role=STAFF)
    assert routes["features"][0]["properties"]["route_date"] == "2024-05-01"
    assert routes["features"][0]["properties"]["length_m"] == 1234.57


def test_feature_collection_shape(all_layers: dict[str, gpd.GeoDataFrame]) -> None:
    fc = feature_collection("grids", all_layers["grids"], lang="en", role=STAFF)
    assert fc["type"] == "FeatureCollection"
    assert [f["id"] for f in fc["features"]] == ["0", "1", "2"]
    assert fc["features"][0]["geometry"]["type"] == "Polygon"
    assert set(fc["features"][0]["properties"]) <= {"id", *CATALOG["grids"].field_names}


def test_legend_in_both_languages(
    node_modules: Path, all_layers: dict[str, gpd.GeoDataFrame]
) -> None:
    page = _page(all_layers)
    legend = page[page.index('class="gridmap-control gridmap-legend"') :]
    legend = legend[: legend.index("</div>\n")]
    for text in (
        "图例 Legend",
        "网格 Grids: 户数 Households",
        "事件 Events: 状态 Status",
        "上报 Reported",
        "结案 Closed",
        "处置 Handling",
        "无数据 No data",
        "道路 Roads",
        "楼栋 Buildings",
        "重点区域 Key areas",
        "巡查路线 Patrol routes",
    ):
        assert text in legend, text
    assert EVENT_STATUS_COLORS["reported"] in legend
    assert "核查 Inspecting" not in legend  # only the statuses on the map


def test_one_language(node_modules: Path, all_layers: dict[str, gpd.GeoDataFrame]) -> None:
    zh = _page(all_layers, lang="zh-CN")
    assert "上报" in zh and "Reported" not in zh and "户数" in zh
    assert '"网格编码"' in zh
    en = _page(all_layers, lang="en")
    assert "Reported" in en and "上报" not in en and "Households" in en
    assert '"Grid code"' in en


def test_layers_in_catalog_order(
    node_modules: Path, all_layers: dict[str, gpd.GeoDataFrame]
) -> None:
    page = _page(all_layers)
    assert _overlays(page) == [CATALOG[n].title() for n in CATALOG if n in all_layers]
    # Drawn in that order too (later is on top); events are a marker cluster.
    layers = re.findall(r"var (geo_json_\w+|marker_cluster_\w+) = L\.", page)
    assert [n.split("_")[0] for n in layers] == ["geo"] * 5 + ["marker", "geo", "geo"]


def test_map_controls(node_modules: Path, all_layers: dict[str, gpd.GeoDataFrame]) -> None:
    page = _page(all_layers)
    assert "L.control.layers(" in page
    assert "L.control.fullscreen(" in page
    assert "L.Control.Measure(" in page and '"localization": "cn"' in page
    assert "L.control.scale()" in page
    assert ".fitBounds(" in page
    bounds = re.search(r"\.fitBounds\(\s*\[\[([\d.]+), ([\d.]+)\], \[([\d.]+), ([\d.]+)\]\]", page)
    assert bounds is not None
    south, west, north, east = map(float, bounds.groups())
    assert (south, west, north, east) == pytest.approx((60.155, 24.925, 60.18, 24.955))


def test_choropleth_and_status_colours(all_layers: dict[str, gpd.GeoDataFrame]) -> None:
    m = folium.Map(tiles=None)
    layer = render_layer("grids", all_layers["grids"], role=STAFF).add_to(m)
    assert isinstance(layer, folium.GeoJson)
    fills = [layer.style_function(f)["fillColor"] for f in layer.data["features"]]
    assert fills[0] != fills[1]  # 120 vs 480 households
    assert fills[2] == "#e0e0e0"  # no data
    cluster = render_layer("events", all_layers["events"], role=STAFF)
    assert isinstance(cluster, folium.plugins.MarkerCluster)
    (geojson,) = [c for c in cluster._children.values() if isinstance(c, folium.GeoJson)]
    colours = [geojson.style_function(f)["fillColor"] for f in geojson.data["features"]]
    assert colours[:3] == [EVENT_STATUS_COLORS[s] for s in ("reported", "closed", "handling")]


def test_empty_layers(node_modules: Path, all_layers: dict[str, gpd.GeoDataFrame]) -> None:
    empty = all_layers["buildings"].iloc[0:0]
    page = _page({**all_layers, "buildings": empty})
    assert "楼栋 Buildings" in _overlays(page)
    nothing = {n: g.iloc[0:0] for n, g in all_layers.items()}
    page = _page(nothing)
    assert ".fitBounds(" not in page
    assert _overlays(page) == [CATALOG[n].title() for n in CATALOG if n in all_layers]
    assert map_html(render_map({}), inline=False).count("<script src=") >= 4


def test_missing_geometries_are_left_out(all_layers: dict[str, gpd.GeoDataFrame]) -> None:
    grids = all_layers["grids"].copy()
    grids.loc[1, "geometry"] = None
    fc = feature_collection("grids", grids, role=STAFF)
    assert len(fc["features"]) == 2


def test_personal_fields_and_roles(
    node_modules: Path, all_layers: dict[str, gpd.GeoDataFrame]
) -> None:
    public = {n: g for n, g in all_layers.items() if n != "events"}
    viewer = map_html(render_map(public, role="viewer"), inline=False)
    # Grid workers' and the patrol worker's name (folium writes data ASCII-escaped).
    assert "张三" not in viewer and "\\u5f20\\u4e09" not in viewer
    staff = _page(all_layers)
    # Staff see personal fields masked as the API masks them: 张*, 王* (events.reporter).
    assert "\\u5f20*" in staff and "\\u5f20\\u4e09" not in staff
    assert "\\u738b*" in staff and "\\u738b\\u4e94" not in staff
    unmasked = _page(all_layers, unmask=True)
    assert "\\u5f20\\u4e09" in unmasked and "\\u738b\\u4e94" in unmasked
    with pytest.raises(NotFound, match="events"):
        render_map(all_layers, role="viewer")
    with pytest.raises(BadInput, match="role"):
        render_map(public, role="mayor")


def test_bad_input(all_layers: dict[str, gpd.GeoDataFrame]) -> None:
    with pytest.raises(UnknownLayer):
        render_map({"parks": all_layers["grids"]})
    with pytest.raises(BadInput, match="no geometry"):
        render_map({"workers": all_layers["grids"]}, role=STAFF)
    with pytest.raises(TypeError, match="GeoDataFrame"):
        render_map({"grids": all_layers["grids"].drop(columns="geometry")})  # type: ignore[dict-item]
    with pytest.raises(BadInput, match="lang"):
        render_map({}, lang="fr")
    with pytest.raises(BadInput, match="attr"):
        render_map({}, options=MapOptions(tiles_url="https://tiles.intra/{z}/{x}/{y}.png"))


def test_other_crs_is_reprojected(all_layers: dict[str, gpd.GeoDataFrame]) -> None:
    grids = all_layers["grids"].to_crs(3857)
    fc = feature_collection("grids", grids, role=STAFF)
    lon, lat = fc["features"][0]["geometry"]["coordinates"][0][0]
    assert lon == pytest.approx(24.94) and lat == pytest.approx(60.16)
    no_crs = gpd.GeoDataFrame({"name": ["a"]}, geometry=[Point(24.94, 60.17)])
    assert feature_collection("key_areas", no_crs)["features"][0]["geometry"]["coordinates"] == [
        24.94,
        60.17,
    ]


def test_intranet_tiles_and_existing_map(
    node_modules: Path, all_layers: dict[str, gpd.GeoDataFrame]
) -> None:
    m = folium.Map(tiles=None, location=[60.17, 24.94])
    out = render_map(
        {"grids": all_layers["grids"]},
        m=m,
        options=MapOptions(
            tiles_url="http://tiles.intra/{z}/{x}/{y}.png", attr="内网底图", base_url="assets/"
        ),
    )
    assert out is m
    page = map_html(m, inline=False)
    assert "http://tiles.intra/{z}/{x}/{y}.png" in page
    assert '<script src="assets/leaflet/dist/leaflet.js"></script>' in page
    assert set(URL.findall(page)) <= ALLOWED_PAGE_URLS | {"http://tiles.intra/{z}/{x}/{y}.png"}


def test_map_html_base_url(node_modules: Path, all_layers: dict[str, gpd.GeoDataFrame]) -> None:
    m = render_map({"grids": all_layers["grids"]}, options=MapOptions(base_url="/maps/vendor"))
    assert '<script src="/maps/vendor/leaflet/dist/leaflet.js">' in map_html(m, inline=False)
    page = map_html(m, inline=False, base_url="assets/")
    assert '<script src="assets/leaflet/dist/leaflet.js">' in page
    assert "/maps/vendor/" not in page
    # Elements added after render_map are localized by map_html too.
    folium.plugins.HeatMap([[60.17, 24.94]]).add_to(m)
    assert 'src="assets/leaflet.heat/dist/leaflet-heat.js"' in map_html(m, inline=False)
