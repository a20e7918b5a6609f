"""The grids map layer: choropleth by households or workload, code labels, statistics tooltips.

Rendered HTML is checked in Python, then the page runs in Debian's chromium with
the network cut off (``tests/browser.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from playwright.sync_api import Browser

from gridmap.division.stats import grid_statistics
from layers.render import map_html, render_map
from tests.browser import MemoryPage, launch

C1 = "990100001001"
BOXES = [(24.940 + 0.002 * i, 24.942 + 0.002 * i) for i in range(3)]
HOUSEHOLDS = [100, 50, 10]
EVIL = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def grids() -> gpd.GeoDataFrame:
    """Three grids with their statistics (households low → high is not workload low → high)."""
    g = gpd.GeoDataFrame(
        {
            "code": [f"{C1}00{i + 1}" for i in range(3)],
            "name": [EVIL, "二", "三"],
            "community_code": C1,
        },
        geometry=[shapely.box(x0, 60.170, x1, 60.171) for x0, x1 in BOXES],
        crs=4326,
    )
    b = gpd.GeoDataFrame(
        {"households": HOUSEHOLDS, "residents": [h * 2 for h in HOUSEHOLDS]},
        geometry=[shapely.box(x0 + 2e-4, 60.1702, x0 + 8e-4, 60.1706) for x0, _ in BOXES],
        crs=4326,
    )
    k = gpd.GeoDataFrame(
        {"visits_per_day": [4.0]}, geometry=[shapely.Point(24.945, 60.1705)], crs=4326
    )
    stats = grid_statistics(g, buildings=b, key_areas=k, at="2026-11-01T00:00Z")
    return gpd.GeoDataFrame(pd.concat([g, stats], axis=1), geometry="geometry", crs=4326)


def test_page_has_selector_labels_and_statistics(grids: gpd.GeoDataFrame) -> None:
    page = map_html(render_map({"grids": grids}, role="community_staff"), inline=False)
    assert '<option value="households">户数 Households</option>' in page
    assert '<option value="workload">工作量指数 Workload index</option>' in page
    assert all(code in page for code in grids["code"])
    assert "工作量指数 Workload index" in page and "街巷长度(米) Street length (m)" in page
    assert EVIL not in page  # escaped everywhere
    assert "未结事件 Open events" in page
    viewer = map_html(render_map({"grids": grids}, role="viewer"), inline=False)
    assert "工作量指数 Workload index" in viewer and "未结事件" not in viewer  # no event counts
    en = map_html(render_map({"grids": grids}, lang="en"), inline=False)
    assert '<option value="workload">Workload index</option>' in en and "户数" not in en
    # without statistics (grids never refreshed): no selector, the household ramp legend
    bare = map_html(render_map({"grids": grids[["code", "households", "geometry"]]}), inline=False)
    assert 'value="workload"' not in bare and "gridmap-ramp" in bare


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from launch()


pytestmark = pytest.mark.browser

_ZOOM = (
    "(() => { for (const k in window) { const m = window[k];"
    " if (k.startsWith('map_') && m && m.setZoom) { m.setZoom(%d, {animate: false}); } } })()"
)
_FILLS = (
    "(() => { for (const k in window) { const l = window[k];"
    " if (k.startsWith('geo_json_') && l && l.getLayers) {"
    " return l.getLayers().map(x => x.options.fillColor); } } })()"
)


def test_grids_layer_in_chromium(
    browser: Browser, node_modules: Path, grids: gpd.GeoDataFrame
) -> None:
    html = map_html(render_map({"grids": grids}, role="community_staff"), inline=True)
    s = MemoryPage(browser, html)
    try:
        assert s.errors == [] and s.external == []
        assert s.js("document.querySelectorAll('path.leaflet-interactive').length") == 3
        # labels: the short grid numbers at the fitted zoom, the full codes when zoomed in
        assert s.js("document.querySelectorAll('.gridmap-label').length") == 3
        short = s.page.locator(".gridmap-label-short").first
        full = s.page.locator(".gridmap-label-full").first
        s.js(_ZOOM % 14)
        s.page.wait_for_timeout(300)
        assert short.is_visible() and short.text_content() == "001" and not full.is_visible()
        s.js(_ZOOM % 17)
        s.page.wait_for_timeout(300)
        visible = s.page.locator(".gridmap-label-full:visible").all_text_contents()
        assert set(visible) <= set(grids["code"]) and visible
        assert not s.page.locator(".gridmap-label-short:visible").count()
        # colour by households, then by workload: the darkest grid moves
        by_households = s.js(_FILLS)
        ramp = s.js("document.querySelector('.gridmap-color-switch .gridmap-ramp-labels')"
                    ".textContent")  # fmt: skip
        assert ramp == "10100"
        s.page.select_option(".gridmap-color-switch select", "workload")
        by_workload = s.js(_FILLS)
        assert by_workload != by_households and len(set(by_workload)) == 3
        low, high = grids["workload"].min(), grids["workload"].max()
        ends = s.page.locator(".gridmap-color-switch .gridmap-ramp-labels span")
        assert ends.all_text_contents() == [f"{low:.1f}", f"{high:.1f}"]
        # hovering keeps the chosen colours (resetStyle goes back to the selection)
        s.page.locator("path.leaflet-interactive").first.hover()
        s.page.mouse.move(5, 5)
        assert s.js(_FILLS) == by_workload
        # the tooltip carries the statistics, escaped
        s.page.locator("path.leaflet-interactive").first.hover()
        tip = s.js("document.querySelector('.leaflet-tooltip').textContent")
        assert "工作量指数 Workload index" in tip and "户数 Households100" in tip
        assert EVIL in tip and s.js("document.querySelectorAll('img[src=x]').length") == 0
        assert s.page.is_visible(".gridmap-legend")
        assert s.errors == [] and s.external == []
    finally:
        s.page.close()
