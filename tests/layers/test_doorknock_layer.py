"""The door-knocking progress choropleth: rendered HTML, then Debian's chromium with no network."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import folium
import geopandas as gpd
import pytest
from playwright.sync_api import Browser

from gridmap.common.errors import BadInput
from layers.doorknock import progress_layer, progress_legend, progress_map
from layers.render import map_html
from tests.browser import MemoryPage, launch
from tests.layers.conftest import XSS


@pytest.fixture
def progress(grids: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Three grids: one in full, one with small counts hidden, one without households."""
    g = grids[["code", "name", "geometry"]].copy()
    g["households"] = [40, 4, 0]
    g["visited"] = [30, "*", 0]
    g["verified"] = [10, "<3", 0]
    g["mobilised"] = [0, "<3", 0]
    g["progress"] = [0.75, None, None]
    g["verified_share"] = [0.25, None, None]
    return g


def test_layer_html(progress: gpd.GeoDataFrame) -> None:
    group = progress_layer(progress, lang="zh-en")
    (geojson,) = [c for c in group._children.values() if isinstance(c, folium.GeoJson)]
    props = [f["properties"] for f in geojson.data["features"]]
    assert "进度 Progress: 75.0%" in props[0]["tip"]
    assert "&lt;img src=x onerror=alert(1)&gt;" in props[0]["tip"] and XSS not in props[0]["tip"]
    assert "已走访 Visited: *" in props[1]["tip"] and "已核实 Verified: &lt;3" in props[1]["tip"]
    assert [p["color"] for p in props[1:]] == ["#d9d9d9", "#d9d9d9"]
    m = folium.Map(tiles=None)
    group.add_to(m)
    progress_legend(lang="en").add_to(m)
    page = m.get_root().render()
    assert "No data or hidden" in page and "75–100%" in page
    with pytest.raises(BadInput):
        progress_layer(progress, value="households")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from launch()


@pytest.mark.browser
@pytest.mark.parametrize("inline", [False, True], ids=["served", "inline"])
def test_progress_map_offline(
    browser: Browser, node_modules: Path, progress: gpd.GeoDataFrame, inline: bool
) -> None:
    m = progress_map(progress, value="progress", lang="zh-en", title="十一月敲门行动 November")
    s = MemoryPage(browser, map_html(m, inline=inline))
    try:
        assert s.errors == [] and s.external == []
        overlays = s.js(
            "[...document.querySelectorAll('.leaflet-control-layers-overlays label')]"
            ".map(l => l.textContent.trim())"
        )
        assert overlays == [
            "敲门行动进度(已走访户数占比) Door-knocking progress (households visited)",
            "核实进度(已核实户数占比) Verification progress (households verified)",
        ]
        assert s.page.is_visible(".gridmap-doorknock-legend")
        assert "十一月敲门行动 November" in s.js("document.title")
        # Only the shown layer is drawn: three grids.
        assert s.js("document.querySelectorAll('path.leaflet-interactive').length") == 3
        fills = s.js(
            "[...document.querySelectorAll('path.leaflet-interactive')]"
            ".map(p => p.getAttribute('fill'))"
        )
        assert fills.count("#d9d9d9") == 2  # hidden and empty grids are grey
        s.js(
            "(() => { for (const k in window) { const l = window[k];"
            " if (k.startsWith('geo_json_') && l && l.getLayers && l._map) {"
            " l.openTooltip(); } } })()"
        )
        tip = s.js("document.querySelector('.leaflet-tooltip').textContent")
        assert "<img src=x onerror=alert(1)>" in tip and "进度 Progress: 75.0%" in tip
        assert s.js("document.querySelectorAll('img[src=x]').length") == 0
        assert s.errors == []
    finally:
        s.page.close()
