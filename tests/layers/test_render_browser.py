"""Open rendered maps in Debian's chromium with the network cut off."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import pytest
from playwright.sync_api import Browser

from layers.render import MapOptions, map_html, render_map
from tests.browser import MemoryPage, launch

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from launch()


Session = MemoryPage


@pytest.mark.parametrize("inline", [False, True], ids=["served", "inline"])
def test_map_works_offline(
    browser: Browser,
    node_modules: Path,
    all_layers: dict[str, gpd.GeoDataFrame],
    inline: bool,
) -> None:
    html = map_html(
        render_map(all_layers, role="town_coordinator", options=MapOptions(title="演示")),
        inline=inline,
    )
    s = Session(browser, html)
    try:
        assert s.errors == []
        assert s.external == []
        assert (len(s.assets) == 0) if inline else (len(s.assets) >= 15)
        overlays = s.js(
            "[...document.querySelectorAll('.leaflet-control-layers-overlays label')]"
            ".map(l => l.textContent.trim())"
        )
        assert overlays[0] == "道路 Roads" and len(overlays) == 7
        assert s.page.is_visible(".gridmap-legend")
        assert s.page.is_visible(".leaflet-control-zoom-fullscreen")
        assert s.page.is_visible(".leaflet-control-measure")
        assert s.page.is_visible(".leaflet-control-scale")
        assert s.js("document.querySelectorAll('path.leaflet-interactive').length") >= 10
        # The escaped name is text in popups, never an element.
        s.js(
            "document.querySelectorAll('path.leaflet-interactive').forEach(p =>"
            " p.dispatchEvent(new MouseEvent('click', {bubbles: true})))"
        )
        texts = s.js(
            "[...document.querySelectorAll('.leaflet-popup-content')].map(p => p.textContent)"
        )
        assert texts, "a popup opened"
        assert s.js("document.querySelectorAll('img[src=x]').length") == 0
        assert s.errors == []
    finally:
        s.page.close()


def test_popup_shows_escaped_text(
    browser: Browser, node_modules: Path, all_layers: dict[str, gpd.GeoDataFrame]
) -> None:
    html = map_html(render_map({"grids": all_layers["grids"]}, role="viewer"), inline=False)
    s = Session(browser, html)
    try:
        # Open the popup of the first grid (the one named like an <img> tag).
        s.js(
            "(() => { for (const k in window) { const l = window[k];"
            " if (k.startsWith('geo_json_') && l && l.getLayers) {"
            " l.getLayers()[0].openPopup(); l.getLayers()[0].openTooltip(); } } })()"
        )
        popup = s.js("document.querySelector('.leaflet-popup-content').textContent")
        assert "<img src=x onerror=alert(1)>" in popup
        assert "户数 Households120" in popup
        tooltip = s.js("document.querySelector('.leaflet-tooltip').textContent")
        assert "<img src=x onerror=alert(1)>" in tooltip
        assert s.js("document.querySelectorAll('img[src=x]').length") == 0
        assert s.errors == [] and s.external == []
    finally:
        s.page.close()


def test_measure_and_fullscreen_work(
    browser: Browser, node_modules: Path, all_layers: dict[str, gpd.GeoDataFrame]
) -> None:
    html = map_html(render_map({"grids": all_layers["grids"]}), inline=True)
    s = Session(browser, html)
    try:
        s.page.hover(".leaflet-control-measure")
        s.page.click(".leaflet-control-measure .js-start")
        for x, y in ((500, 300), (700, 300), (700, 500)):
            s.page.mouse.click(x, y)
        results = s.js("document.querySelector('.leaflet-control-measure .js-results').textContent")
        assert "路径长度" in results and "米" in results and "公顷" in results
        s.page.click(".leaflet-control-zoom-fullscreen")
        s.page.wait_for_timeout(200)
        assert s.js(
            "!!document.fullscreenElement || !!document.querySelector('.leaflet-pseudo-fullscreen')"
        )
        assert s.errors == [] and s.external == []
    finally:
        s.page.close()


ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def test_grid_popup_fits_and_search_counts(browser: Browser, node_modules: Path) -> None:
    """A grid's popup (real demo statistics) fits in 400 × 500 px; the search says how many."""
    from tests.events_world import demo_layers

    grids = demo_layers()["grids"]
    assert {"workload", "events_dispute", "street_length_m"} <= set(grids.columns)
    html = map_html(render_map({"grids": grids}, role="town_coordinator"), inline=False)
    s = Session(browser, html)
    try:
        s.page.set_viewport_size({"width": 1400, "height": 900})
        s.js(
            "(() => { for (const k in window) { const l = window[k];"
            " if (k.startsWith('geo_json_') && l && l.getLayers) {"
            " l.getLayers()[0].openPopup(); } } })()"
        )
        s.page.wait_for_timeout(300)
        box = s.page.locator(".leaflet-popup").bounding_box()
        assert box is not None
        ARTIFACTS.mkdir(exist_ok=True)
        s.page.screenshot(path=str(ARTIFACTS / "map-grid-popup.png"))
        assert box["width"] <= 400 and box["height"] <= 500, box
        # A table: one row per figure, each value on one line (no letter-per-line spill).
        rows = s.js(
            "[...document.querySelectorAll('.leaflet-popup .gridmap-props tr')].map(r =>"
            " [r.querySelector('td').getBoundingClientRect().width,"
            "  r.querySelector('td').getBoundingClientRect().height])"
        )
        assert len(rows) >= 10
        assert all(w >= 100 and h <= 40 for w, h in rows), rows
        text = s.js("document.querySelector('.leaflet-popup-content').textContent")
        assert str(grids["code"].iloc[0]) in text
        s.page.fill(".gridmap-search input", str(grids["code"].iloc[4]))
        s.page.click(".gridmap-search button")
        status = s.js("document.querySelector('.gridmap-search-status').textContent")
        assert status == "找到 1 个 1 found" and "{n}" not in status
        assert s.errors == [] and s.external == []
    finally:
        s.page.close()
