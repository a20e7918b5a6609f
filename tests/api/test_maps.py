"""Map pages: the overview map over the store, its local assets, and a real browser."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient  # conftest.py imported it first (see there)

from gridmap.storage import Store

CHROMIUM = "/usr/bin/chromium"
_LOCAL = re.compile(r'(?:src|href)="(/static/vendor/[^"]+)"')


def test_overview_map_loads_everything_locally(anonymous: TestClient) -> None:
    r = anonymous.get("/maps/overview")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert not re.search(r'(?:src|href)="(?:https?:)?//', page)
    assets = set(_LOCAL.findall(page))
    assert any(a.endswith("leaflet.js") for a in assets)
    for asset in assets:
        got = anonymous.get(asset)
        assert got.status_code == 200, asset
    assert "网格化服务管理" in page and "Grid governance overview" in page
    assert "事件 Events" not in page  # events are not visible to anonymous viewers


def test_overview_for_staff_escapes_data(client: TestClient) -> None:
    page = client.get("/maps/overview?lang=en").text
    assert "Grid governance overview" in page and "网格化服务管理" not in page
    assert "<img src=x onerror" not in page
    assert "Events" in page


def test_map_and_asset_bad_inputs(client: TestClient) -> None:
    cases: list[tuple[str, int]] = [
        ("/maps/overview?lang=fr", 400),
        ("/maps/overview?lang=zh&lang=en", 400),
        ("/maps/overview?zoom=3", 400),
        ("/maps/nope", 404),
        ("/static/vendor/leaflet/package.json", 404),
        ("/static/vendor/%2E%2E/%2E%2E/etc/passwd", 404),
        ("/static/vendor/", 404),
        ("/static/vendor/" + "a" * 10_000, 404),
    ]
    for path, status in cases:
        r = client.get(path)
        assert r.status_code == status, (path[:60], r.text[:200])
        assert set(r.json()) == {"code", "description", "description_zh"}
    js = client.get("/static/vendor/leaflet/dist/leaflet.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    css = client.get("/static/vendor/gridmap/leaflet.awesome.rotate.min.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


@pytest.mark.browser
@pytest.mark.timeout(120)
def test_overview_map_in_chromium(new_store: Store, make_app: Any, serve: Any) -> None:
    """The served page in Debian's chromium: Leaflet runs, features are drawn, nothing external."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
    errors: list[str] = []
    external: list[str] = []
    with serve(make_app(new_store)) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 800})
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

            def route(r: Any) -> None:
                if r.request.url.startswith((base, "data:")):
                    r.continue_()
                else:
                    external.append(r.request.url)
                    r.abort()

            page.route("**/*", route)
            page.goto(f"{base}/maps/overview", wait_until="load")
            page.wait_for_function(
                "() => document.querySelectorAll('path.leaflet-interactive').length > 100"
            )
            drawn = page.evaluate(
                "() => document.querySelectorAll('path.leaflet-interactive').length"
            )
            legend = page.inner_text(".gridmap-legend")
        finally:
            browser.close()
    assert not errors, errors
    assert not external, external
    assert drawn > 2000  # roads and buildings of central Helsinki, grids, events
    assert "楼栋" in legend and "Buildings" in legend
