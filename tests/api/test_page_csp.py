"""Each page's Content-Security-Policy, as its browser sees it (one builder: ``api.csp``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.csp import CONSOLE_CSP, FIELD_APP_CSP, MAP_CSP, SITE_CSP, map_csp, page_csp
from api.main import create_app
from api.settings import Settings
from gridmap.common.settings import MapSettings, StoreSettings
from gridmap.security.auth import add_user
from gridmap.storage import Store, open_store
from tests.security.hierarchy import add_units

PASSWORD = "correct horse battery"
GRID = "990100001001003"
_BASE = {
    "default-src": "'self'",
    "style-src": "'self' 'unsafe-inline'",
    "font-src": "'self' data:",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
}
#: The effective policy of each page, written out directive by directive.
EXPECTED = {
    "field app": {
        **_BASE,
        "script-src": "'self'",
        "img-src": "'self' data: blob:",
        "worker-src": "'self'",
        "manifest-src": "'self'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
    },
    "console": {
        **_BASE,
        "script-src": "'self'",
        "img-src": "'self' data: blob:",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
    },
    "map": {
        **_BASE,
        "script-src": "'self' 'unsafe-inline' 'unsafe-eval'",
        "img-src": "'self' data:",
        "frame-ancestors": "'self'",
    },
    "doorknock": {
        **_BASE,
        "script-src": "'self' 'unsafe-inline'",
        "img-src": "'self' data:",
        "frame-ancestors": "'self'",
    },
    "site": {
        **_BASE,
        "script-src": "'self' 'unsafe-inline'",
        "img-src": "'self' data: blob:",
        "base-uri": "'self'",
        "form-action": "'self'",
        "frame-ancestors": "'self'",
    },
}


def directives(header: str) -> dict[str, str]:
    """A policy as ``{directive: sources}`` (order-free, as the browser applies it)."""
    pairs = (part.strip().split(" ", 1) for part in header.split(";") if part.strip())
    return {name: value for name, value in pairs}


@pytest.fixture
def users(tmp_path: Path) -> Iterator[Store]:
    store = open_store(f"duckdb:///{tmp_path / 'csp.duckdb'}", migrate=True)
    add_units(store, grid=GRID)
    add_user(store, "wang", role="grid_worker", areas=[GRID], password=PASSWORD)
    add_user(store, "zhao", role="town_coordinator", areas=[GRID[:9]], password=PASSWORD)
    try:
        yield store
    finally:
        store.close()


@contextmanager
def _signed_in(store: Store, name: str, **maps: str) -> Iterator[TestClient]:
    settings = Settings(store=StoreSettings(database_url=":memory:"), maps=MapSettings(**maps))  # type: ignore[arg-type]
    app = create_app(settings, store=store)
    with TestClient(app, base_url="http://gridmap.test", follow_redirects=False) as c:
        r = c.post(
            "/login",
            data={"username": name, "password": PASSWORD},
            headers={"Origin": "http://gridmap.test", "Sec-Fetch-Site": "same-origin"},
        )
        assert r.status_code == 303, r.text
        yield c


def test_the_builder_gives_each_policy() -> None:
    assert directives(FIELD_APP_CSP) == EXPECTED["field app"]
    assert directives(CONSOLE_CSP) == EXPECTED["console"]
    assert directives(MAP_CSP) == EXPECTED["map"]
    assert directives(SITE_CSP) == EXPECTED["site"]
    # no page allows plugins, a foreign <base> or a foreign default source
    for csp in (FIELD_APP_CSP, CONSOLE_CSP, MAP_CSP, SITE_CSP, page_csp()):
        d = directives(csp)
        assert d["object-src"] == "'none'" and d["default-src"] == "'self'"


def test_each_page_sends_its_policy(users: Store) -> None:
    with _signed_in(users, "wang") as c:
        app = c.get("/app/", headers={"Accept": "text/html"})
        assert app.status_code == 200, app.text
        assert directives(app.headers["content-security-policy"]) == EXPECTED["field app"]
        overview = c.get("/maps/overview", headers={"Accept": "text/html"})
        assert overview.status_code == 200
        assert directives(overview.headers["content-security-policy"]) == EXPECTED["map"]
        other = c.get("/conformance")
        assert directives(other.headers["content-security-policy"]) == EXPECTED["site"]
    with _signed_in(users, "zhao") as c:
        console = c.get("/console/", headers={"Accept": "text/html"})
        assert console.status_code == 200, console.text
        assert directives(console.headers["content-security-policy"]) == EXPECTED["console"]


def test_map_pages_allow_the_intranet_basemap_origin(users: Store) -> None:
    tiles = "https://{s}.tiles.intra.example:8443/osm/{z}/{x}/{y}.png"
    with _signed_in(users, "zhao", tiles_url=tiles, tiles_attribution="© 内网底图 Intranet") as c:
        page = c.get("/maps/overview", headers={"Accept": "text/html"})
        assert page.status_code == 200
        got = directives(page.headers["content-security-policy"])
    want = {**EXPECTED["map"], "img-src": "'self' data: https://*.tiles.intra.example:8443"}
    assert got == want == directives(map_csp(tiles))
    assert map_csp("tiles/{z}/{x}/{y}.png") == MAP_CSP  # no origin: nothing added
