"""Grid division through the API: the same service as the CLI, role- and area-checked."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient  # conftest.py imported it first (see there)

from api.main import create_app
from api.security import get_optional_principal, get_principal
from api.settings import Settings
from gridmap.common.settings import StoreSettings
from gridmap.demo.job import run_demo
from gridmap.security.access import Principal
from gridmap.storage import Store

COMMUNITY = "990100001001"


@pytest.fixture
def world(store: Store) -> Store:
    run_demo(store, events=20)
    return store


def _client(store: Store, principal: Principal) -> TestClient:
    app = create_app(Settings(store=StoreSettings(database_url=store.url)), store=store)
    app.dependency_overrides[get_principal] = lambda: principal
    app.dependency_overrides[get_optional_principal] = lambda: principal
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


# --------------------------------------------------------------------------- statistics


@pytest.fixture
def stats_world(store: Store) -> Store:
    from gridmap.division.stats import refresh_grid_statistics
    from tests.gridmap.test_grid_stats import AT, build_world

    build_world(store)
    refresh_grid_statistics(store, at=AT)
    return store


def test_statistics_table_json_csv_and_ogc(stats_world: Store) -> None:
    from tests.gridmap.test_grid_stats import C1, G1, G2, G3

    with _client(stats_world, Principal("admin", "city_admin")) as c:
        r = c.get("/grids/statistics", params={"community": C1})
        assert r.status_code == 200, r.text
        doc = r.json()
        rows = {g["code"]: g for g in doc["grids"]}
        assert list(rows) == [G1, G2, G3]
        assert rows[G1]["households"] == 100 and rows[G2]["buildings"] == 1
        assert rows[G1]["events_dispute"] == 1 and rows[G3]["events_city_management"] == 1
        assert sorted(g["workload"] for g in doc["grids"])[1] == pytest.approx(1.0)
        assert {"name": "workload", "title_zh": "工作量指数", "title_en": "Workload index"} in doc[
            "columns"
        ]
        csv = c.get("/grids/statistics", params={"community": C1, "f": "csv"})
        assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
        text = csv.content.decode("utf-8-sig")
        assert "工作量指数 Workload index (workload)" in text.splitlines()[0]
        assert "'=cmd|" in text and "\n=cmd" not in text and ",=cmd" not in text
        # the same figures are properties of the OGC collection, and queryable
        items = c.get("/collections/grids/items", params={"filter": f"code = '{G1}'"}).json()
        props = items["features"][0]["properties"]
        assert props["households"] == 100 and props["events_safety_hazard"] == 1
        assert props["workload"] == pytest.approx(rows[G1]["workload"])
        queryables = c.get("/collections/grids/queryables").json()["properties"]
        assert {"workload", "street_length_m", "events_dispute"} <= set(queryables)
        heavy = c.get("/collections/grids/items", params={"filter": "workload > 1.0"}).json()
        assert [f["properties"]["code"] for f in heavy["features"]] == [
            code for code, g in rows.items() if g["workload"] > 1.0
        ]


def test_statistics_scoping_and_bad_input(stats_world: Store) -> None:
    from tests.gridmap.test_grid_stats import C1, C2, G1, G4

    with _client(stats_world, Principal("w", "grid_worker", (G1,))) as c:
        r = c.get("/grids/statistics", params={"community": C1})
        assert r.status_code == 200 and [g["code"] for g in r.json()["grids"]] == [G1]
        assert [g["code"] for g in c.get("/grids/statistics").json()["grids"]] == [G1]
        assert c.get("/grids/statistics", params={"community": C2}).status_code == 404
        assert c.get("/grids/statistics", params={"grid": G4}).status_code == 404
        assert G4 not in c.get("/grids/statistics", params={"f": "csv"}).text
    with _client(stats_world, Principal("t", "town_coordinator", ("990100002",))) as c:
        assert c.get("/grids/statistics", params={"community": C1}).status_code == 404
        assert c.get("/grids/statistics").json()["grids"] == []
    with _client(stats_world, Principal("v", "viewer")) as c:
        rows = c.get("/grids/statistics", params={"community": C1}).json()["grids"]
        assert rows[0]["households"] == 100 and "workload" in rows[0]
        assert not [k for k in rows[0] if k.startswith("events")]
        assert "events_open" not in c.get("/grids/statistics", params={"f": "csv"}).text
        # Hidden figures can't be probed through filters either.
        queryables = c.get("/collections/grids/queryables").json()["properties"]
        assert "households" in queryables and not [k for k in queryables if "events" in k]
        for params in (
            {"filter": "events_dispute > 0"},
            {"events_dispute": "1"},
        ):
            r = c.get("/collections/grids/items", params=params)
            assert r.status_code == 400 and "events_dispute" in r.text, (params, r.text)
        tile = c.get(
            "/collections/grids/tiles/WebMercatorQuad/14/0/0", params={"filter": "events_total > 0"}
        )
        assert tile.status_code == 400 and "events_total" in tile.text
    with _client(stats_world, Principal("admin", "city_admin")) as c:
        assert c.get("/grids/statistics", params={"community": "990100001077"}).status_code == 404
        for params in (
            {"community": "123"},
            {"community": "99010000100x"},
            {"grid": "1" * 16},
            {"f": "xlsx"},
            {"community": "1e400"},
        ):
            r = c.get("/grids/statistics", params=params)
            assert 400 <= r.status_code < 500, (params, r.text)
