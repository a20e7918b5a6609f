"""Grid division through the API: the same service as the CLI, role- and area-checked."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient  # conftest.py imported it first (see there)

from api.main import create_app
from api.security import get_principal
from api.settings import Settings
from gridmap.access import Principal
from gridmap.demo import run_demo
from gridmap.storage import Store

COMMUNITY = "990100001001"


@pytest.fixture
def world(store: Store) -> Store:
    run_demo(store, events=20)
    return store


def _client(store: Store, principal: Principal) -> TestClient:
    app = create_app(Settings(database_url=store.url), store=store)
    app.dependency_overrides[get_principal] = lambda: principal
    return TestClient(app)


@pytest.fixture
def admin(world: Store) -> Iterator[TestClient]:
    with _client(world, Principal("admin", "city_admin")) as c:
        yield c


def test_generate_through_the_api_keeps_codes_and_limits(admin: TestClient, world: Store) -> None:
    before = set(world.read("grids", where={"valid_to": None})["code"])
    r = admin.post("/grids/generate", json={"community": COMMUNITY, "min": 200, "max": 500})
    assert r.status_code == 200, r.text
    doc = r.json()
    codes = {g["code"] for g in doc["grids"]}
    assert all(len(c) == 15 and c.startswith(COMMUNITY) for c in codes)
    assert set(doc["kept"]) <= before and len(doc["kept"]) >= len(before) // 2
    assert all(200 <= g["households"] <= 500 for g in doc["grids"] if g["status"] == "ok")
    current = set(world.read("grids", where={"valid_to": None})["code"])
    assert current == codes
    check = admin.get("/grids/check", params={"community": COMMUNITY})
    assert check.status_code == 200, check.text


@pytest.mark.parametrize(
    "body",
    [
        {"community": "123"},
        {"community": COMMUNITY, "method": "voronoi"},
        {"community": COMMUNITY, "target": -1},
        {"community": COMMUNITY, "weight": "x; DROP"},
        {"community": COMMUNITY, "resolution": 15},
        {"community": COMMUNITY, "extra": 1},
    ],
)
def test_bad_bodies_are_4xx(admin: TestClient, body: dict) -> None:
    r = admin.post("/grids/generate", json=body)
    assert 400 <= r.status_code < 500, r.text


def test_only_coordinators_in_their_town(world: Store) -> None:
    with _client(world, Principal("w", "grid_worker", ("990100001001001",))) as c:
        assert c.post("/grids/generate", json={"community": COMMUNITY}).status_code == 403
    with _client(world, Principal("t", "town_coordinator", ("990100002",))) as c:
        r = c.post("/grids/generate", json={"community": COMMUNITY})
        assert r.status_code == 404
    with _client(world, Principal("t", "town_coordinator", ("990100001",))) as c:
        assert c.post("/grids/generate", json={"community": COMMUNITY}).status_code == 200
