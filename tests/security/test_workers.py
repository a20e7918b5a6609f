"""Grid workers and their grids, on both stores: users, the ``workers`` layer, /locate, events.

The world is the security tests' demo world (real Helsinki OSM buildings and
streets, gridmap's grids, seeded SYNTHETIC events) with a second, synthetic
town added far away, so that a coordinator of one town can try the other's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import shapely
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from gridmap.cli import app
from gridmap.common.errors import BadInput
from gridmap.security.audit import read_log
from gridmap.security.auth import add_user, demo_users, get_user, issue_token
from gridmap.security.privacy import mask_name
from gridmap.storage import Store, open_store
from gridmap.units.workers import UnknownArea, assign_grids, list_workers
from tests.security.conftest import World, security_settings
from tests.security.hierarchy import add_units

GRID_2 = "990100002001001"


@pytest.fixture(scope="module")
def town_2(world: World) -> World:
    """The world with town 990100002 and its coordinator (token ``coordinator_2``)."""
    add_units(world.store, grid=GRID_2, x=25.3)
    user = add_user(world.store, "coordinator_2", role="town_coordinator", areas=[GRID_2[:9]])
    world.tokens["coordinator_2"] = issue_token(user, security_settings().token_config())
    return world


def _inside(store: Store, grid: str) -> shapely.Point:
    g = store.read("grids", where={"code": grid, "valid_to": None}).geometry.iloc[0]
    return g.representative_point()


def _locate_names(client: TestClient, world: World, grid: str) -> list[str]:
    p = _inside(world.store, grid)
    r = client.get(
        "/locate",
        params={"lon": p.x, "lat": p.y, "crs": "wgs84"},
        headers=world.headers("coordinator"),
    )
    assert r.status_code == 200, r.text
    assert r.json()["grid"]["code"] == grid
    return [w["name"] for w in r.json()["workers"]]


def _report(client: TestClient, world: World, grid: str, key: str) -> list[str]:
    """Report an event in *grid* as its worker; the stored ``assigned_to``."""
    p = _inside(world.store, grid)
    body = {
        "category": "city_management",
        "description": "合成事件 synthetic test report",
        "location": {"lon": p.x, "lat": p.y, "crs": "wgs84"},
    }
    r = client.post(
        "/events", json=body, headers={**world.headers("coordinator"), "Idempotency-Key": key}
    )
    assert r.status_code == 201, r.text
    assert r.json()["grid_code"] == grid
    stored = world.store.get("events", int(r.json()["id"]))
    return list(stored["assigned_to"].iloc[0] or [])


def _crew(store: Store, grid: str) -> list[str]:
    rows = store.read("grids", where={"code": grid, "valid_to": None})
    return list(rows["workers"].iloc[0] or [])


def _worker_row(store: Store, name: str) -> dict[str, Any] | None:
    rows = store.read("workers", where={"source": "user", "source_id": name})
    return None if rows.empty else rows.iloc[0].to_dict()


def test_users_add_makes_a_grid_worker_appear_everywhere(world: World, client: TestClient) -> None:
    add_user(world.store, "qian_added", role="grid_worker", areas=[world.grid_b])
    user = get_user(world.store, "qian_added")
    assert user is not None and user.areas == (world.grid_b,)
    row = _worker_row(world.store, "qian_added")
    assert row is not None and list(row["grid_codes"]) == [world.grid_b]
    assert row["area_code"] == world.grid_b and row["role"] == "grid_worker"
    assert "qian_added" in _crew(world.store, world.grid_b)
    assert mask_name("qian_added") in _locate_names(client, world, world.grid_b)
    assert "qian_added" in _report(client, world, world.grid_b, "workers-added-1")


def test_assign_locate_report_unassign(world: World, client: TestClient) -> None:
    add_user(world.store, "zhang_assign", role="grid_worker", areas=[world.grid_b])
    masked = mask_name("zhang_assign")
    assert masked not in _locate_names(client, world, world.grid_a)

    r = client.post(
        "/workers/zhang_assign/grids",
        json={"grids": [world.grid_a]},
        headers=world.headers("coordinator"),
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "name": "zhang_assign",
        "role": "grid_worker",
        "area_code": world.grid_a[:12],
        "grids": sorted([world.grid_a, world.grid_b]),
    }
    # Immediately: /locate names them (masked), a new event is assigned to them.
    assert masked in _locate_names(client, world, world.grid_a)
    assert "zhang_assign" in _report(client, world, world.grid_a, "workers-assign-1")
    user = get_user(world.store, "zhang_assign")
    assert user is not None and set(user.areas) == {world.grid_a, world.grid_b}
    entries = read_log(world.store)
    mine = entries[(entries["action"] == "worker.assign") & (entries["actor"] == "coordinator")]
    assert len(mine) and "zhang_assign" in mine["target"].iloc[-1]

    r = client.delete(
        f"/workers/zhang_assign/grids/{world.grid_a}", headers=world.headers("coordinator")
    )
    assert r.status_code == 200, r.text
    assert r.json()["grids"] == [world.grid_b]
    assert masked not in _locate_names(client, world, world.grid_a)
    assert "zhang_assign" not in _report(client, world, world.grid_a, "workers-assign-2")
    assert "zhang_assign" not in _crew(world.store, world.grid_a)
    assert masked in _locate_names(client, world, world.grid_b)
    # The last grid taken: out of the workers layer, sees nothing.
    r = client.delete(
        f"/workers/zhang_assign/grids/{world.grid_b}", headers=world.headers("coordinator")
    )
    assert r.status_code == 200 and r.json()["grids"] == []
    assert _worker_row(world.store, "zhang_assign") is None
    user = get_user(world.store, "zhang_assign")
    assert user is not None and user.areas == () and not user.principal().covers(world.grid_b)
    assert masked not in _locate_names(client, world, world.grid_b)


def test_areas_that_do_not_exist_are_refused(world: World, client: TestClient) -> None:
    for role, area in (
        ("grid_worker", "999999999999999"),
        ("community_staff", "990100001999"),
        ("town_coordinator", "990100099"),
    ):
        with pytest.raises(UnknownArea, match=area):
            add_user(world.store, "sun_nowhere", role=role, areas=[area])
    with pytest.raises(BadInput, match="15 digits"):  # a grid worker works grids
        add_user(world.store, "sun_nowhere", role="grid_worker", areas=[world.grid_a[:12]])
    assert get_user(world.store, "sun_nowhere") is None
    add_user(world.store, "sun_exists", role="grid_worker", areas=[world.grid_a])
    r = client.post(
        "/workers/sun_exists/grids",
        json={"grids": ["990100001001999"]},
        headers=world.headers("admin"),
    )
    assert r.status_code == 400 and r.json()["code"] == "unknown_area"
    assert "990100001001999" in r.json()["description"]
    before = world.store.count("audit_log")
    for body in ({"grids": ["12345"]}, {"grids": []}, {"grids": "x"}, {"other": 1}):
        r = client.post("/workers/sun_exists/grids", json=body, headers=world.headers("admin"))
        assert r.status_code == 400, (body, r.text)
    assert world.store.count("audit_log") == before


def test_coordinators_assign_only_inside_their_town(
    town_2: World, client: TestClient, world: World
) -> None:
    add_user(world.store, "zhou_town", role="grid_worker", areas=[world.grid_a])
    headers = world.headers("coordinator")  # town 990100001
    r = client.post("/workers/zhou_town/grids", json={"grids": [GRID_2]}, headers=headers)
    assert r.status_code == 403, r.text
    r = client.delete(
        f"/workers/zhou_town/grids/{world.grid_a}", headers=town_2.headers("coordinator_2")
    )
    assert r.status_code == 403
    # A grid of another town is refused before it is looked up: same answer as a real one.
    r = client.post(
        "/workers/zhou_town/grids", json={"grids": ["990100003001001"]}, headers=headers
    )
    assert r.status_code == 403
    for who in ("worker_a", "viewer", "hotline"):
        r = client.post(
            "/workers/zhou_town/grids", json={"grids": [world.grid_a]}, headers=world.headers(who)
        )
        assert r.status_code == 403, who
    assert client.get("/workers").status_code == 401
    # The other town's coordinator assigns in their own town; each sees their own part.
    r = client.post(
        "/workers/zhou_town/grids",
        json={"grids": [GRID_2]},
        headers=town_2.headers("coordinator_2"),
    )
    assert r.status_code == 200 and r.json()["area_code"] == "990100"
    mine = client.get("/workers", headers=town_2.headers("coordinator_2")).json()["workers"]
    assert [(w["name"], w["grids"]) for w in mine] == [("zhou_town", [GRID_2])]
    theirs = client.get("/workers", headers=headers).json()["workers"]
    zhou = next(w for w in theirs if w["name"] == "zhou_town")
    assert zhou["grids"] == [world.grid_a] and zhou["account"]
    assert all(GRID_2 not in w["grids"] for w in theirs)
    # Synthetic workers (not users) are listed masked.
    synthetic = [w for w in theirs if not w["account"]]
    assert synthetic and all("*" in w["name"] for w in synthetic)
    one = client.get("/workers", params={"area": world.grid_b}, headers=headers).json()["workers"]
    assert one and all(w["grids"] == [world.grid_b] for w in one)


def test_wrong_targets(world: World, client: TestClient) -> None:
    headers = world.headers("admin")
    r = client.post("/workers/nobody_here/grids", json={"grids": [world.grid_a]}, headers=headers)
    assert r.status_code == 404
    r = client.post("/workers/staff_a/grids", json={"grids": [world.grid_a]}, headers=headers)
    assert r.status_code == 400 and "grid worker" in r.json()["description"]
    r = client.delete(f"/workers/worker_b/grids/{world.grid_a}", headers=headers)
    assert r.status_code == 404 and world.grid_a in r.json()["description"]
    r = client.post(
        "/workers/" + "x" * 65 + "/grids", json={"grids": [world.grid_a]}, headers=headers
    )
    assert r.status_code == 400


def test_concurrent_assignments_to_one_grid_are_all_kept(world: World) -> None:
    """Six coordinators' requests at once, one grid: no assignment is lost (PostGIS: a lock)."""
    from concurrent.futures import ThreadPoolExecutor

    names = [f"feng_{i}" for i in range(6)]
    for name in names:
        add_user(world.store, name, role="grid_worker", areas=[world.grid_b])
    with ThreadPoolExecutor(max_workers=6) as pool:
        done = list(pool.map(lambda n: assign_grids(world.store, n, [world.grid_a]), names))
    assert all(world.grid_a in w.grids for w in done)
    crew = _crew(world.store, world.grid_a)
    assert all(crew.count(n) == 1 for n in names), crew
    users = {n: get_user(world.store, n) for n in names}
    assert all(u is not None and world.grid_a in u.areas for u in users.values())


def test_demo_worker_is_assigned_like_any_grid_worker(world: World, client: TestClient) -> None:
    creds = demo_users(world.store, grid_code=world.grid_a, password="demo password 123")
    assert creds.users["demo_worker"] == ("grid_worker", world.grid_a)
    assert "demo_worker" in _crew(world.store, world.grid_a)
    assert mask_name("demo_worker") in _locate_names(client, world, world.grid_a)
    assert "demo_worker" in _report(client, world, world.grid_a, "workers-demo-1")
    # Again (the demo run twice): still once in the grid's list.
    demo_users(world.store, grid_code=world.grid_a, password="demo password 123")
    assert _crew(world.store, world.grid_a).count("demo_worker") == 1


def test_cli_users_and_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"duckdb:///{tmp_path / 'workers.duckdb'}"
    store = open_store(url, migrate=True)
    add_units(store, grid="990100001001001", x=24.9)
    add_units(store, grid=GRID_2, x=25.3)
    store.close()
    monkeypatch.setenv("GRIDMAP_DATABASE_URL", url)
    runner = CliRunner()

    def run(*args: str) -> Any:
        return runner.invoke(app, list(args))

    bad = run("users", "add", "wu", "--role", "grid_worker", "--area", "999999999999999")
    assert bad.exit_code == 1
    assert bad.output.strip().splitlines() == [
        "error: unknown area 999999999999999: no grid in force has this code"
    ]
    bad = run("users", "add", "wu", "--role", "community_staff", "--area", "990100001002")
    assert bad.exit_code == 1 and "unknown area 990100001002" in bad.output
    ok = run("users", "add", "wu", "--role", "grid_worker", "--area", "990100001001001")
    assert ok.exit_code == 0, ok.output
    ok = run("workers", "assign", "wu", GRID_2)
    assert ok.exit_code == 0, ok.output
    assert f"990100001001001, {GRID_2}" in ok.output
    listed = run("workers", "list")
    assert listed.exit_code == 0 and "wu" in listed.output and GRID_2 in listed.output
    listed = run("workers", "list", "--area", "990100001")
    assert listed.exit_code == 0 and GRID_2 not in listed.output
    assert run("workers", "assign", "wu", "990100001001999").exit_code == 1
    assert run("workers", "assign", "nobody", GRID_2).exit_code == 1
    ok = run("workers", "unassign", "wu", "990100001001001", GRID_2)
    assert ok.exit_code == 0 and "none" in ok.output
    assert run("workers", "unassign", "wu", GRID_2).exit_code == 1
    ok = run("workers", "assign", "wu", GRID_2)  # back into the workers layer
    assert ok.exit_code == 0, ok.output
    ok = run("workers", "unassign", "wu", GRID_2)
    assert ok.exit_code == 0, ok.output
    store = open_store(url)
    try:
        assert store.count("workers") == 0
        assert list(store.read("grids", where={"code": GRID_2})["workers"].iloc[0] or []) == []
        rows = list_workers(store)
        assert [(r.name, r.grids) for r in rows] == [("wu", ())]
        with pytest.raises(UnknownArea):
            assign_grids(store, "wu", ["990100001001002"])
    finally:
        store.close()


def test_redrawn_grids_keep_their_workers(store: Store) -> None:
    """Rebalancing closes a grid and redraws it under the same code: its crew stays."""
    import pandas as pd

    from gridmap.demo.job import demo_extract
    from gridmap.division.service import current_grids, generate_grids, rebalance_grids
    from gridmap.io.importer import import_osm

    community = "990100001001"
    import_osm(store, demo_extract())
    generate_grids(store, community=community, now=pd.Timestamp("2026-01-01T00:00:00Z"))
    before = current_grids(store, community)
    codes = sorted(before["code"].astype(str))
    add_user(store, "wei_redrawn", role="grid_worker", areas=codes)
    buildings = store.read("buildings")
    victim = str(before.sort_values("households")["code"].iloc[-1])
    mine = buildings["grid_code"] == victim
    grown = buildings.loc[mine, "households"].astype(float) * 2.2
    store.update("buildings", pd.DataFrame({"id": buildings.loc[mine, "id"], "households": grown}))
    saved = rebalance_grids(store, community=community, now=pd.Timestamp("2026-02-01T00:00:00Z"))[0]
    after = current_grids(store, community)
    redrawn = [c for c in saved.closed if c in set(after["code"])]
    assert redrawn, "the rebalance redrew no grid under its old code"
    for code, crew in zip(after["code"], after["workers"], strict=True):
        if code in codes:
            assert "wei_redrawn" in list(crew or []), code
        else:  # a new grid: nobody is assigned to it yet
            assert "wei_redrawn" not in list(crew or []), code
