"""Big layers from vector tiles, search, event filters and the language switch in chromium.

The tiles here come from a small endpoint of the test's own (``mapbox-vector-tile``
encoding of the frame's columns, the same format and URL as the API's tiles route);
the API test ``tests/api/test_maps_vector.py`` draws the real route.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import mapbox_vector_tile
import numpy as np
import pytest
import shapely
from playwright.sync_api import Browser, Route

from layers.render import MapOptions, map_html, render_map
from layers.vector import TiledLayer
from tests.browser import ORIGIN, MemoryPage, launch

XSS = "<img src=x onerror=alert(1)>"  # as in conftest.py

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
_TILE = re.compile(r"/collections/(\w+)/tiles/WebMercatorQuad/(\d+)/(\d+)/(\d+)$")
_HALF = 20037508.342789244


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from launch()


def square_lattice(
    n_x: int, n_y: int, step_m: float, *, fill: float = 1.0, lon0: float = 24.930
) -> np.ndarray:
    """Squares on a lattice of *step_m* metres from (*lon0*, 60.16), row by row (south first).

    Each square covers the share *fill* of its lattice cell's side (1: the squares
    tile the plane, like grids; less: gaps between them, like buildings).
    """
    dlon, dlat = step_m / 55_500, step_m / 111_320  # metres at 60.16° N
    ix, iy = np.meshgrid(np.arange(n_x), np.arange(n_y))
    x = lon0 + ix.ravel() * dlon
    y = 60.160 + iy.ravel() * dlat
    return np.asarray(shapely.box(x, y, x + dlon * fill, y + dlat * fill), dtype=object)


def lattice_codes(n: int, first_community: int = 1) -> list[str]:
    """*n* 15-digit grid codes, 100 grids per community from *first_community* on."""
    i = np.arange(n)
    return [
        f"990100001{c:03d}{g:03d}"
        for c, g in zip(i // 100 + first_community, i % 100 + 1, strict=True)
    ]


@pytest.fixture(scope="module")
def many_buildings() -> gpd.GeoDataFrame:
    """6,400 footprints (20 m squares on a 30 m lattice) around Helsinki centre."""
    geoms = square_lattice(80, 80, 30.0, fill=2 / 3)
    names = [f"{XSS} 楼 {i}" for i in range(len(geoms))]
    return gpd.GeoDataFrame(
        {"name": names, "use": "residential", "floors": 6, "households": 24},
        geometry=geoms,
        crs=4326,
    )


@pytest.fixture(scope="module")
def many_grids() -> gpd.GeoDataFrame:
    """6,400 grids (a lattice of 50 m squares, 64 communities) around Helsinki centre."""
    geoms = square_lattice(80, 80, 50.0)
    households = np.arange(len(geoms), dtype="int64") % 500
    return gpd.GeoDataFrame(
        {"code": lattice_codes(len(geoms)), "households": households},
        geometry=geoms,
        crs=4326,
    )


def _tile(gdf: gpd.GeoDataFrame, layer: str, z: int, y: int, x: int) -> bytes:
    """One MVT tile of *gdf* (in EPSG:3857), like the API's tiles route."""
    size = 2 * _HALF / 2**z
    minx, maxy = -_HALF + x * size, _HALF - y * size
    bounds = (minx, maxy - size, minx + size, maxy)
    hits = gdf.iloc[gdf.sindex.query(shapely.box(*bounds))]
    if hits.empty:
        return b""
    # Tile coordinates 0..4096, y up (the encoder flips them).
    scale = 4096 / size
    local = shapely.transform(
        np.asarray(hits.geometry.values), lambda xy: (xy - [bounds[0], bounds[1]]) * scale
    )
    records = hits.drop(columns=hits.geometry.name).to_dict("records")
    features = [
        {"geometry": geom, "properties": props, "id": int(i)}
        for i, (geom, props) in enumerate(zip(local, records, strict=True))
    ]
    return bytes(mapbox_vector_tile.encode([{"name": layer, "features": features}]))


class Session(MemoryPage):
    """A map page and its vector tiles served from memory; nothing else is reachable."""

    def __init__(
        self, browser: Browser, html: str, tiles: dict[str, gpd.GeoDataFrame] | None = None
    ) -> None:
        self.tiles = {k: v.to_crs(3857) for k, v in (tiles or {}).items()}
        self.tile_requests: list[str] = []
        super().__init__(browser, html, wait_ms=500)

    def serve(self, route: Route, url: str) -> bool:
        """Vector tiles of the in-memory layers (204 when a tile is empty)."""
        tile = _TILE.search(url)
        if not (url.startswith(ORIGIN) and tile and tile[1] in self.tiles):
            return False
        self.tile_requests.append(url)
        z, y, x = (int(v) for v in tile.groups()[1:])
        body = _tile(self.tiles[tile[1]], tile[1], z, y, x)
        if body:
            route.fulfill(body=body, content_type="application/vnd.mapbox-vector-tile")
        else:
            route.fulfill(status=204)
        return True

    def map_name(self) -> str:
        name = self.js("Object.keys(window).find(k => k.startsWith('map_'))")
        assert isinstance(name, str)
        return name

    def painted_tiles(self) -> int:
        """Vector tile canvases with at least one non-transparent pixel."""
        count = self.js(
            """[...document.querySelectorAll('.leaflet-tile-container canvas')].filter(c => {
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                for (let i = 3; i < d.length; i += 4) { if (d[i] > 0) { return true; } }
                return false;
            }).length"""
        )
        assert isinstance(count, int)
        return count


def _screenshot(s: Session, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    s.page.screenshot(path=str(ARTIFACTS / name))


def test_big_layer_is_drawn_from_vector_tiles(
    browser: Browser, node_modules: Path, many_buildings: gpd.GeoDataFrame
) -> None:
    data = {"buildings": many_buildings}
    page = map_html(
        render_map(data, role="viewer", options=MapOptions(tiles_base="")), inline=False
    )
    inline = map_html(render_map(data, role="viewer"), inline=False)
    assert len(page) < 60_000 < len(inline), (len(page), len(inline))
    assert "/collections/buildings/tiles/WebMercatorQuad/{z}/{y}/{x}" in page
    assert "onerror" not in page  # the names are in the tiles only
    s = Session(browser, page, tiles={"buildings": many_buildings})
    try:
        m = s.map_name()
        # Buildings start at zoom 15: zoom in on the lattice.
        s.js(f"{m}.setView([60.16386, 24.93288], 17, {{animate: false}})")
        s.page.wait_for_function(
            "document.querySelectorAll('.leaflet-tile-container canvas').length > 0"
        )
        s.page.wait_for_timeout(800)
        assert s.tile_requests, "tiles were requested"
        assert s.painted_tiles() > 0, "vector tiles drew something"
        _screenshot(s, "vector-tiles-buildings.png")

        # Click the middle of a footprint: a popup with the escaped name, as text.
        point = s.js(
            f"(() => {{ const p = {m}.latLngToContainerPoint([60.16386, 24.93288]);"
            " return [p.x, p.y]; })()"
        )
        s.page.mouse.click(point[0], point[1])
        s.page.wait_for_selector(".leaflet-popup-content", timeout=3000)
        popup = s.js("document.querySelector('.leaflet-popup-content').textContent")
        assert "楼栋 Buildings" in popup
        assert f"{XSS} 楼 1125" in popup  # footprint (5, 14), shown as text
        assert s.js("document.querySelectorAll('.leaflet-popup-content img').length") == 0
        _screenshot(s, "vector-tiles-popup.png")

        # Toggle the layer off and on in the layer control.
        label = s.page.locator(".leaflet-control-layers-overlays label", has_text="Buildings")
        label.locator("input").uncheck()
        s.page.wait_for_timeout(200)
        assert s.painted_tiles() == 0
        label.locator("input").check()
        s.page.wait_for_timeout(800)
        assert s.painted_tiles() > 0
        assert s.errors == [] and s.external == []
    finally:
        s.page.close()


_LABELS = """(() => {
    const m = window[%r], out = [];
    m.eachLayer(l => {
        const icon = l.options && l.options.icon;
        if (icon && icon.options.className === "gridmap-label") {
            const d = document.createElement("div");
            d.innerHTML = icon.options.html;
            const at = l.getLatLng();
            out.push([at.lat, at.lng, d.querySelector(".gridmap-label-full").textContent,
                      d.querySelector(".gridmap-label-short").textContent]);
        }
    });
    return out;
})()"""


def _labels(s: Session, m: str) -> list[tuple[float, float, str, str]]:
    """The grid labels on map *m*: latitude, longitude, full and short text."""
    return [tuple(v) for v in s.js(_LABELS % m)]


def _check_labels(
    s: Session, m: str, grids: gpd.GeoDataFrame
) -> list[tuple[float, float, str, str]]:
    """One label per grid in view, inside its grid, its number the code's last 3 digits."""
    labels = _labels(s, m)
    codes = [c for _, _, c, _ in labels]
    assert len(codes) == len(set(codes)), "one label per grid, however many tiles hold it"
    by_code = grids.set_index("code").geometry
    for lat, lon, code, short in labels:
        assert short == code[-3:]
        assert by_code[code].contains(shapely.Point(lon, lat)), (code, lon, lat)
    west, south, east, north = s.js(f"{m}.getBounds().toBBoxString().split(',').map(Number)")
    in_view = grids[grids.within(shapely.box(west, south, east, north))]
    assert len(in_view) > 10
    assert set(in_view["code"]) <= set(codes), "every grid in view is labelled"
    return labels


def _wait_for_labels(s: Session) -> None:
    s.page.wait_for_function("document.querySelectorAll('.gridmap-label').length > 0")
    s.page.wait_for_timeout(600)  # the last tiles in, the labels refreshed


def test_tiled_grids_have_code_labels(
    browser: Browser, node_modules: Path, many_grids: gpd.GeoDataFrame
) -> None:
    data = {"grids": many_grids}
    page = map_html(
        render_map(data, role="viewer", lang="en", options=MapOptions(tiles_base="")), inline=False
    )
    assert "/collections/grids/tiles/WebMercatorQuad/{z}/{y}/{x}" in page
    assert len(page) < 60_000
    assert many_grids["code"].iloc[1234] not in page  # labels come from the tiles
    s = Session(browser, page, tiles={"grids": many_grids})
    try:
        m = s.map_name()
        # Below zoom 16: the short grid numbers.
        s.js(f"{m}.setView([60.1700, 24.9530], 15, {{animate: false}})")
        _wait_for_labels(s)
        labels = _check_labels(s, m, many_grids)
        short = s.page.locator(".gridmap-label-short:visible").all_text_contents()
        assert short and set(short) <= {c[-3:] for _, _, c, _ in labels}
        assert s.page.locator(".gridmap-label-full:visible").count() == 0
        _screenshot(s, "vector-tiles-grid-labels-z15.png")

        # From zoom 16: the full 15-digit codes.
        s.js(f"{m}.setView([60.1720, 24.9600], 17, {{animate: false}})")
        _wait_for_labels(s)
        labels = _check_labels(s, m, many_grids)
        full = s.page.locator(".gridmap-label-full:visible").all_text_contents()
        assert full and all(len(c) == 15 and c.isdigit() for c in full)
        assert set(full) <= {c for _, _, c, _ in labels}
        assert s.page.locator(".gridmap-label-short:visible").count() == 0
        _screenshot(s, "vector-tiles-grid-labels-z17.png")

        # Pan: the labels follow the tiles.
        s.js(f"{m}.panBy([400, 0], {{animate: false}})")
        s.page.wait_for_timeout(1000)
        _check_labels(s, m, many_grids)

        # The labels go and come back with their layer.
        toggle = s.page.locator(".leaflet-control-layers-overlays label", has_text="Grids")
        toggle.locator("input").uncheck()
        s.page.wait_for_timeout(300)
        assert s.js("document.querySelectorAll('.gridmap-label').length") == 0
        toggle.locator("input").check()
        _wait_for_labels(s)
        _check_labels(s, m, many_grids)
        assert s.errors == [] and s.external == []
    finally:
        s.page.close()


def test_search_filters_and_language_links(
    browser: Browser, node_modules: Path, all_layers: dict[str, gpd.GeoDataFrame]
) -> None:
    links = {"zh": "?lang=zh", "en": "?lang=en", "zh-en": "?lang=zh-en"}
    m = render_map(
        all_layers, role="town_coordinator", lang="en", options=MapOptions(language_links=links)
    )
    s = Session(browser, map_html(m, inline=True))
    try:
        assert s.errors == [] and s.external == []
        # Language switch: the other two languages are links, the current one is not.
        hrefs = s.js("[...document.querySelectorAll('.gridmap-lang a')].map(a => a.search)")
        assert hrefs == ["?lang=zh", "?lang=zh-en"]
        assert s.js("document.querySelector('.gridmap-lang strong').textContent") == "English"

        # Search by grid code: the grid's popup opens.
        box = s.page.locator(".gridmap-search input")
        box.fill("370285001001002")
        box.press("Enter")
        status = s.js("document.querySelector('.gridmap-search-status').textContent")
        assert status == "2 found"  # the grid, and a building in it
        popup = s.js("document.querySelector('.leaflet-popup-content').textContent")
        assert popup.startswith("Grids") and "370285001001002" in popup
        # A query that looks like markup is text: it finds the grid named like it.
        box.fill(XSS)
        box.press("Enter")
        assert s.js("document.querySelector('.gridmap-search-status').textContent") != ""
        assert s.js("document.querySelectorAll('img[src=x]').length") == 0
        box.fill("no such place")
        box.press("Enter")
        status = s.js("document.querySelector('.gridmap-search-status').textContent")
        assert status == "Nothing found"

        # Event filters: category, then a period.
        count = "document.querySelector('.gridmap-filter-count').textContent"
        assert s.js(count) == "4 / 4"
        s.page.select_option(".gridmap-filter select", label="Disputes")
        assert s.js(count) == "1 / 4"
        s.page.select_option(".gridmap-filter select", index=0)
        dates = s.page.locator(".gridmap-filter input[type=date]")
        dates.nth(0).fill("2024-05-02")
        dates.nth(1).fill("2024-05-03")
        assert s.js(count) == "2 / 4"
        _screenshot(s, "map-search-filter.png")
        assert s.errors == [] and s.external == []
    finally:
        s.page.close()


def test_tiled_layer_without_data(node_modules: Path) -> None:
    """The API passes a TiledLayer (count, bounds, range) and reads no features."""
    tiled = TiledLayer(100_000, (24.9, 60.15, 24.96, 60.19), (0.0, 900.0))
    page = map_html(render_map({"grids": tiled}, lang="en"), inline=False)
    assert "/collections/grids/tiles/WebMercatorQuad/{z}/{y}/{x}" in page
    assert len(page) < 60_000
    assert "900" in page  # the household ramp legend
    assert math.isfinite(len(page))
