"""The overview map draws big layers from the API's real vector tiles route, in chromium."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient  # conftest.py imported it first (see there)

from api.routers import maps
from gridmap.storage import Store

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def test_big_layers_become_tile_layers(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    inline = client.get("/maps/overview").text
    monkeypatch.setattr(maps, "VECTOR_THRESHOLD", 100)
    page = client.get("/maps/overview").text
    assert "/collections/buildings/tiles/WebMercatorQuad/{z}/{y}/{x}" in page
    assert "/collections/roads/tiles/WebMercatorQuad/{z}/{y}/{x}" in page
    assert len(page) * 4 < len(inline), (len(page), len(inline))  # events, grids stay inline
    assert re.search(r'src="/static/vendor/leaflet\.vectorgrid/[^"]+"', page)
    assert (
        client.get(
            "/static/vendor/leaflet.vectorgrid/dist/Leaflet.VectorGrid.bundled.min.js"
        ).status_code
        == 200
    )
    # The language switch links to the other languages.
    assert 'href="?lang=en"' in page and 'href="?lang=zh"' in page


@pytest.mark.browser
@pytest.mark.timeout(120)
def test_overview_draws_real_tiles_in_chromium(
    new_store: Store, make_app: Any, serve: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
    monkeypatch.setattr(maps, "VECTOR_THRESHOLD", 100)
    errors: list[str] = []
    external: list[str] = []
    tiles: list[int] = []
    with serve(make_app(new_store)) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 800})
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on(
                "response",
                lambda r: tiles.append(r.status) if "/tiles/WebMercatorQuad/" in r.url else None,
            )

            def route(r: Any) -> None:
                if r.request.url.startswith((base, "data:", "blob:")):
                    r.continue_()
                else:
                    external.append(r.request.url)
                    r.abort()

            page.route("**/*", route)
            page.goto(f"{base}/maps/overview", wait_until="load")
            name = page.evaluate("Object.keys(window).find(k => k.startsWith('map_'))")
            # Central Helsinki at zoom 16: buildings and roads come from tiles.
            page.evaluate(f"{name}.setView([60.1675, 24.9420], 16, {{animate: false}})")
            page.wait_for_timeout(1500)
            painted = page.evaluate(
                """[...document.querySelectorAll('.leaflet-tile-container canvas')].filter(c => {
                    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                    for (let i = 3; i < d.length; i += 4) { if (d[i] > 0) { return true; } }
                    return false;
                }).length"""
            )
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "overview-vector-tiles.png"))
        finally:
            browser.close()
    assert not errors, errors
    assert not external, external
    assert 200 in tiles, tiles
    assert painted > 0
