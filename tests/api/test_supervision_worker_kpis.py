"""``GET /events/supervision`` (督办 and overdue) and ``GET /kpis?by=worker``, on both stores.

The real Helsinki demo grids and their streets; every event and track is
synthetic. Expected figures are worked out by hand from the script below,
and the patrol coverage independently with :func:`measure_coverage`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import shapely
from fastapi.testclient import TestClient

from gridmap.patrol.coverage import measure_coverage
from gridmap.patrol.service import grid_network, save_track
from gridmap.patrol.tracks import parse_track
from gridmap.security.access import Principal
from gridmap.storage import Store
from tests.api.events_app import events_app, map_event_errors
from tests.events_world import World, make_world
from tests.gridmap.assessment.month import world_layers

ADMIN = Principal("admin", "city_admin")
T0 = pd.Timestamp("2026-11-02T00:00:00Z")
PATROLLER = "张巡查"
CATEGORIES = ("city_management", "dispute", "safety_hazard", "public_security", "key_task")


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> pd.Timestamp:
        return self.now

    def at(self, hours: float) -> None:
        self.now = T0 + pd.Timedelta(hours=hours)


@pytest.fixture
def world(store: Store) -> World:
    w = make_world(store)
    store.write("roads", world_layers()["roads"])  # the streets around grid 001
    return w


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client(
    world: World, tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    map_event_errors(monkeypatch)
    app = events_app(world.store, principal=ADMIN, media_dir=tmp_path / "media", clock=clock)
    with TestClient(app) as c:
        yield c


def act(client: TestClient, who: Principal) -> None:
    client.app.state.principal = who  # type: ignore[attr-defined]


def report(client: TestClient, world: World, i: int, category: str, k: int = 0) -> int:
    body: dict[str, Any] = world.body(i, category)
    body["location"]["lon"] += 0.0002 * k  # another spot: not a duplicate
    r = client.post("/events", json=body)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def move(client: TestClient, eid: int, action: str, **kw: Any) -> None:
    r = client.post(f"/events/{eid}/transitions", json={"action": action, **kw})
    assert r.status_code == 200, r.text


def test_supervision_lists_supervised_and_overdue(
    client: TestClient, world: World, clock: Clock
) -> None:
    supervised = report(client, world, 3, "dispute")
    late = report(client, world, 4, "city_management")
    done = report(client, world, 5, "dispute")
    clock.at(0.1)
    move(client, done, "self_handle")
    act(client, Principal("镇街", "town_coordinator", (world.code(3)[:9],)))
    clock.at(0.2)
    move(client, supervised, "supervise")
    act(client, ADMIN)
    clock.at(0.3)
    first = client.get("/events/supervision").json()
    # Nothing is late yet: only the event a leader supervised, and why.
    assert [e["id"] for e in first["events"]] == [supervised]
    doc = first["events"][0]
    assert doc["reasons"] == ["supervised"] and doc["supervised"] is True
    assert doc["overdue"] is False and doc["supervised_at"] is not None
    clock.at(500)  # past every time limit
    later = client.get("/events/supervision").json()
    by_id = {e["id"]: e for e in later["events"]}
    assert set(by_id) == {supervised, late}  # the closed one is not listed
    assert by_id[late]["reasons"][0] == "overdue" and by_id[late]["supervised"] is False
    assert by_id[supervised]["reasons"][:2] == ["supervised", "overdue"]
    assert later["total"] == 2


def test_kpis_by_worker_count_reports_handling_and_patrols_apart(
    client: TestClient, world: World, clock: Clock
) -> None:
    grid = world.code(0)
    worker = Principal(PATROLLER, "grid_worker", (grid,))
    act(client, worker)
    ids = [report(client, world, 0, c, k=i) for i, c in enumerate(CATEGORIES)]
    act(client, ADMIN)
    first = ids[0]
    for i, step in enumerate(["accept", "verify", "register"]):
        clock.at(1 + i)
        move(client, first, step)
    clock.at(4)
    move(client, first, "dispatch", assignees=[PATROLLER])
    act(client, worker)
    clock.at(5)
    move(client, first, "handle")
    # One patrol of the worker along a required street of the grid.
    streets = grid_network(world.store, grid).edges_frame()
    streets = streets[streets["required"].astype(bool)]
    coords = shapely.get_coordinates(shapely.segmentize(streets.geometry.iloc[0], 0.0001))
    times = pd.date_range("2026-11-03T01:00:00Z", periods=len(coords), freq="10s")
    csv = "time,lon,lat\n" + "\n".join(
        f"{t.isoformat()},{x:.7f},{y:.7f}"
        for t, x, y in zip(times, coords[:, 0], coords[:, 1], strict=True)
    )
    save_track(
        world.store, parse_track(csv, format="csv", crs="wgs84"), grid=grid, worker=PATROLLER
    )
    fixes = pd.DataFrame(
        {"time": times, "lon": coords[:, 0].round(7), "lat": coords[:, 1].round(7)}
    )
    res = measure_coverage([fixes], streets)
    act(client, ADMIN)
    clock.at(6)
    got = client.get("/kpis", params={"by": "worker", "from": "2026-11-01", "to": "2026-12-01"})
    assert got.status_code == 200, got.text
    rows = {r["worker"]: r for r in got.json()["rows"]}
    me = rows[PATROLLER]
    # Reported 5, was dispatched 1 and handled it (one step), patrolled one street.
    assert (me["reports_made"], me["events_handled"], me["transitions"], me["assigned"]) == (
        5,
        1,
        1,
        1,
    )
    assert me["patrol_coverage"] == pytest.approx(res.covered_m / res.length_m, abs=1e-4)
    assert me["patrol_days"] == 1 and me["closed"] == 0 and me["closure_rate"] == 0.0
    # The grid's own worker was assigned the other four at intake and reported none.
    events = world.store.read("events")
    own = [
        str(w)
        for w in world.store.read("workers", where={"area_code": grid})["name"]
        if isinstance(w, str)
    ]
    assert own, "the demo names a worker for each grid"
    assigned = sum(own[0] in list(a) for a in events["assigned_to"] if a is not None)
    theirs = rows[own[0]]
    assert theirs["reports_made"] == 0 and theirs["assigned"] == assigned == 4
    assert theirs["events_handled"] == 4 and theirs["transitions"] == 0
    # The coordinator: the four steps before dispatch, on one event.
    assert (rows["admin"]["transitions"], rows["admin"]["events_handled"]) == (4, 1)
    assert rows["admin"]["reports_made"] == 0
    # Workers are named people: no figures by worker for a viewer.
    act(client, Principal("v", "viewer"))
    assert client.get("/kpis", params={"by": "worker"}).status_code == 403
