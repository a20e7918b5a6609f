"""The overview map draws big layers from the API's real vector tiles route, in chromium.

Buildings and roads are real OpenStreetMap data; the 5,200 grids of the label
test are a synthetic lattice.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient  # conftest.py imported it first (see there)

from api.routers import maps
from gridmap.storage import Store
from tests.layers.test_vector_browser import lattice_codes, square_lattice

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


@dataclass
class Visit:
    """The overview page in chromium, and what it did."""

    page: Any
    errors: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)
    tiles: list[tuple[str, int]] = field(default_factory=list)  # (url, status)

    def map_name(self) -> str:
        name = self.page.evaluate("Object.keys(window).find(k => k.startsWith('map_'))")
        assert isinstance(name, str)
        return name

    def screenshot(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / name))


@contextmanager
def overview(
    app: FastAPI, serve: Any, *, query: str = "", size: tuple[int, int] = (1200, 800)
) -> Iterator[Visit]:
    """Serve *app* and open ``/maps/overview`` in chromium; nothing but the app is reachable."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
    with serve(app) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            visit = Visit(browser.new_page(viewport={"width": size[0], "height": size[1]}))
            page = visit.page
            page.on("pageerror", lambda e: visit.errors.append(str(e)))
            page.on("console", lambda m: visit.errors.append(m.text) if m.type == "error" else None)
            page.on(
                "response",
                lambda r: (
                    visit.tiles.append((r.url, r.status))
                    if "/tiles/WebMercatorQuad/" in r.url
                    else None
                ),
            )

            def route(r: Any) -> None:
                if r.request.url.startswith((base, "data:", "blob:")):
                    r.continue_()
                else:
                    visit.external.append(r.request.url)
                    r.abort()

            page.route("**/*", route)
            page.goto(f"{base}/maps/overview{query}", wait_until="load")
            yield visit
        finally:
            browser.close()


@pytest.mark.browser
@pytest.mark.timeout(120)
def test_overview_draws_real_tiles_in_chromium(
    new_store: Store, make_app: Any, serve: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(maps, "VECTOR_THRESHOLD", 100)
    with overview(make_app(new_store), serve) as visit:
        # Central Helsinki at zoom 16: buildings and roads come from tiles.
        visit.page.evaluate(
            f"{visit.map_name()}.setView([60.1675, 24.9420], 16, {{animate: false}})"
        )
        visit.page.wait_for_timeout(1500)
        painted = visit.page.evaluate(
            """[...document.querySelectorAll('.leaflet-tile-container canvas')].filter(c => {
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                for (let i = 3; i < d.length; i += 4) { if (d[i] > 0) { return true; } }
                return false;
            }).length"""
        )
        visit.screenshot("overview-vector-tiles.png")
    assert not visit.errors, visit.errors
    assert not visit.external, visit.external
    assert 200 in [status for _, status in visit.tiles], visit.tiles
    assert painted > 0


def _lattice(n_x: int, n_y: int) -> gpd.GeoDataFrame:
    """Synthetic grids: a lattice of ~60 m squares over central Helsinki, 100 per community."""
    geoms = square_lattice(n_x, n_y, 60.0, lon0=24.925)
    # communities 101… (the synthetic grids of the data set are in community 001)
    codes = lattice_codes(len(geoms), first_community=101)
    return gpd.GeoDataFrame(
        {
            "code": codes,
            "community_code": [c[:12] for c in codes],
            "households": np.arange(len(geoms), dtype="int64") % 400,
            "source": "synthetic",
            "source_id": [f"lattice/{c}" for c in codes],
        },
        geometry=geoms,
        crs=4326,
    )


_LABELS = """(() => {
    const out = [];
    document.querySelectorAll(".gridmap-label").forEach(el => {
        const full = el.querySelector(".gridmap-label-full");
        const short = el.querySelector(".gridmap-label-short");
        out.push([full.textContent, short.textContent,
                  full.offsetParent !== null, short.offsetParent !== null]);
    });
    return out;
})()"""


@pytest.mark.browser
@pytest.mark.timeout(300)
def test_more_than_5000_grids_from_tiles_have_code_labels(
    new_store: Store, make_app: Any, serve: Any
) -> None:
    """Over 5,000 grids: the grids layer comes from the real tiles route, with its labels."""
    lattice = _lattice(80, 65)
    new_store.write("grids", lattice)
    assert new_store.count("grids") > maps.VECTOR_THRESHOLD == 5_000
    codes = set(new_store.read("grids")["code"])  # the lattice and the data set's grids
    shown: dict[int, list[list[Any]]] = {}
    # a small window: fewer tiles to draw on the shared test machine
    with overview(make_app(new_store), serve, query="?lang=en", size=(800, 600)) as visit:
        # The page as served (the live DOM may already hold labels drawn from tiles).
        html = visit.page.evaluate("fetch(location.href).then(r => r.text())")
        assert "/collections/grids/tiles/WebMercatorQuad/{z}/{y}/{x}" in html
        assert lattice["code"].iloc[2500] not in html  # not inlined: from the tiles
        for zoom in (15, 17):
            visit.page.evaluate(
                f"{visit.map_name()}.setView([60.1700, 24.9500], {zoom}, {{animate: false}})"
            )
            visit.page.wait_for_function(
                "document.querySelectorAll('.gridmap-label-short').length > 10"
            )
            visit.page.wait_for_timeout(1000)
            shown[zoom] = visit.page.evaluate(_LABELS)
            visit.screenshot(f"overview-grid-labels-z{zoom}.png")
    assert not visit.errors, visit.errors
    assert not visit.external, visit.external
    assert any("/collections/grids/tiles/" in url and status == 200 for url, status in visit.tiles)
    for zoom, labels in shown.items():
        full = [f for f, _, _, _ in labels]
        assert len(full) == len(set(full)), "one label per grid"
        assert set(full) <= codes
        assert all(s == f[-3:] for f, s, _, _ in labels)
        # the grid number below zoom 16, the full code from it
        visible = [(fv, sv) for _, _, fv, sv in labels if fv or sv]
        assert len(visible) > 10
        assert all(
            (fv, sv) == ((True, False) if zoom >= 16 else (False, True)) for fv, sv in visible
        )
