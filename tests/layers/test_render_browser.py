"""Open rendered maps in Debian's chromium with the network cut off."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
from playwright.sync_api import Browser, Dialog, Page, Route, sync_playwright

from layers.assets import DEFAULT_BASE_URL, asset_file
from layers.render import map_html, render_map

pytestmark = pytest.mark.browser

ORIGIN = "http://gridmap.test"
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


class Session:
    """A page served from memory; every request that is not a local asset is refused."""

    def __init__(self, browser: Browser, html: str) -> None:
        self.html = html
        self.errors: list[str] = []
        self.external: list[str] = []
        self.assets: list[str] = []
        self.page: Page = browser.new_page(viewport={"width": 1200, "height": 800})
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("dialog", self._dialog)
        self.page.route("**/*", self._route)
        self.page.goto(f"{ORIGIN}/map.html")
        self.page.wait_for_timeout(800)

    def _dialog(self, dialog: Dialog) -> None:
        self.errors.append(f"dialog: {dialog.message}")
        dialog.dismiss()

    def _route(self, route: Route) -> None:
        url = route.request.url
        if url == f"{ORIGIN}/map.html":
            route.fulfill(body=self.html, content_type="text/html; charset=utf-8")
        elif url.startswith(ORIGIN + DEFAULT_BASE_URL):
            self.assets.append(url)
            route.fulfill(path=str(asset_file(url[len(ORIGIN + DEFAULT_BASE_URL) :])))
        elif url.startswith("data:"):
            route.continue_()
        else:
            self.external.append(url)
            route.abort()

    def js(self, expression: str) -> Any:
        return self.page.evaluate(expression)


@pytest.mark.parametrize("inline", [False, True], ids=["served", "inline"])
def test_map_works_offline(
    browser: Browser,
    node_modules: Path,
    all_layers: dict[str, gpd.GeoDataFrame],
    inline: bool,
) -> None:
    html = map_html(render_map(all_layers, role="town_coordinator", title="演示"), inline=inline)
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
