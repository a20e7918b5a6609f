"""The lean report intake (issue 22) on both stores: what it stores and answers.

On PostGIS ``POST /events`` and Open311 create store a report with two
statements, each committing by itself (:mod:`gridmap.storage.intake_sql`); DuckDB takes the
generic store calls. Either way the answer is what a later read shows, the
key, the event, its ``report`` transition and the stored answer are written
together, and webhook outbox rows only when an active subscription wants
them. Grids are the real Helsinki demo grids; every event is synthetic.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient

from gridmap.events import webhooks
from gridmap.geo.h3cells import point_cells
from gridmap.security.access import ALL_AREAS, Principal
from gridmap.storage import Store, intake_sql
from tests.api.events_app import events_app, map_event_errors
from tests.events_world import World, make_world

ADMIN = Principal("市中心 admin", "city_admin", ALL_AREAS, can_unmask=False)


@pytest.fixture
def world(store: Store) -> World:
    return make_world(store)


@pytest.fixture
def client(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    map_event_errors(monkeypatch)
    with TestClient(events_app(world.store, principal=ADMIN, media_dir=tmp_path / "m")) as c:
        yield c


def _post(client: TestClient, body: dict[str, object], key: str) -> dict[str, object]:
    r = client.post("/events", json=body, headers={"Idempotency-Key": key})
    assert r.status_code == 201, r.text
    assert r.headers["ETag"] == '"1"' and r.headers["Location"] == f"/events/{r.json()['id']}"
    doc: dict[str, object] = r.json()
    return doc


def test_answer_is_what_a_read_shows(world: World, client: TestClient) -> None:
    body = world.body(3, reporter="王小明", contact="13812345678", accuracy_m=8.5, urgency="urgent")
    doc = _post(client, body, "lean-read-1")
    assert doc["grid_code"] == world.code(3) and doc["status"] == "reported"
    assert doc["reporter"] == "王**" and doc["contact"] == "138****5678"
    got = client.get(f"/events/{doc['id']}")
    assert got.status_code == 200
    assert got.json() == doc
    replay = client.post("/events", json=body, headers={"Idempotency-Key": "lean-read-1"})
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == doc


def test_key_event_audit_and_answer_stored_together(world: World, client: TestClient) -> None:
    store = world.store
    body = world.body(5, category="city_management")
    doc = _post(client, body, "lean-once-1")
    eid = int(str(doc["id"]))
    keys = store.read("idempotency_keys", where={"key": "lean-once-1"})
    assert len(keys) == 1 and int(keys["event_id"].iloc[0]) == eid
    assert int(keys["status_code"].iloc[0]) == 201
    trans = store.read("event_transitions", where={"event_id": eid})
    assert trans["action"].tolist() == ["report"] and trans["actor"].tolist() == [ADMIN.name]
    events = store.read("events", where={"source": "api"})
    assert events["id"].astype(int).tolist() == [eid]
    assert events["reported_by"].tolist() == [ADMIN.name]
    other = client.post(
        "/events",
        json={**body, "description": "another"},
        headers={"Idempotency-Key": "lean-once-1"},
    )
    assert other.status_code == 422
    assert store.count("events") == 1 and store.count("event_transitions") == 1


def test_duplicates_link_to_the_original(world: World, client: TestClient) -> None:
    lon, lat = world.point(7)
    near = {"lon": lon + 1e-4, "lat": lat, "crs": "wgs84"}  # about 5-8 m east
    first = _post(client, world.body(7), "lean-dup-1")
    second = _post(client, {**world.body(7), "location": near}, "lean-dup-2")
    third = _post(client, world.body(7), "lean-dup-3")
    other_kind = _post(client, world.body(7, category="city_management"), "lean-dup-4")
    assert first["duplicate_of"] is None
    assert second["duplicate_of"] == first["id"]
    assert third["duplicate_of"] == first["id"]  # nearest is the first: no chains
    assert other_kind["duplicate_of"] is None
    far = world.body(8)
    assert _post(client, far, "lean-dup-5")["duplicate_of"] is None


def test_nearest_of_many_open_events_is_the_original(world: World, client: TestClient) -> None:
    """A hot spot with a dozen open events: the report links to the nearest one.

    The PostGIS path sends back only the few nearest candidates
    (``intake_sql.NEAREST``); the one it must find was reported late (a high id).
    """
    import pandas as pd

    lon, lat = world.point(9)
    step = 5e-5  # about 3 m of longitude in Helsinki
    ids = []
    for k in range(12):
        at = {"lon": lon + (12 - k) * step, "lat": lat, "crs": "wgs84"}
        ids.append(
            int(str(_post(client, {**world.body(9), "location": at}, f"lean-hot-{k}")["id"]))
        )
    # Make every one of them an original (the later ones linked to the first).
    world.store.update("events", pd.DataFrame({"id": ids, "duplicate_of": [None] * len(ids)}))
    report = {**world.body(9), "location": {"lon": lon, "lat": lat, "crs": "wgs84"}}
    assert _post(client, report, "lean-hot-x")["duplicate_of"] == ids[-1]  # 1 step away
    west = {"lon": lon + 10.4 * step, "lat": lat, "crs": "wgs84"}  # nearest: k = 2 (10 steps)
    assert (
        _post(client, {**world.body(9), "location": west}, "lean-hot-y")["duplicate_of"] == ids[2]
    )


def test_nearest_on_the_sphere_not_in_degrees(world: World, client: TestClient) -> None:
    """At 60° N a degree of longitude is half a degree of latitude in metres.

    A dozen events 30 m north are nearer in plain degrees than one 20 m east;
    PostGIS walks events nearest first in degrees (migration 032), so it must
    walk on past the dozen (more than ``intake_sql.NEAREST``) to the one east.
    """
    import pandas as pd

    lon, lat = world.point(10)
    north = {"lon": lon, "lat": lat + 2.7e-4, "crs": "wgs84"}  # 30 m, 0.00027°
    east = {"lon": lon + 3.6e-4, "lat": lat, "crs": "wgs84"}  # 20 m at 60° N, 0.00036°
    assert intake_sql.NEAREST < 12
    ids = [
        int(str(_post(client, {**world.body(10), "location": north}, f"lean-n-{k}")["id"]))
        for k in range(12)
    ]
    ids.append(int(str(_post(client, {**world.body(10), "location": east}, "lean-e")["id"])))
    world.store.update("events", pd.DataFrame({"id": ids, "duplicate_of": [None] * len(ids)}))
    here = {**world.body(10), "location": {"lon": lon, "lat": lat, "crs": "wgs84"}}
    assert _post(client, here, "lean-sphere")["duplicate_of"] == ids[-1]


def test_columns_written_by_the_lean_statement(world: World, client: TestClient) -> None:
    """Encrypted reporter/contact, H3 cells and the point, as a generic write stores them."""
    store = world.store
    assert intake_sql.supports(store) is (store.dialect == "postgis")
    body = world.body(2, reporter="李四", contact="13900001111")
    doc = _post(client, body, "lean-cols-1")
    raw = store.sql(
        "SELECT reporter, contact, h3_r7, h3_r8, h3_r9, h3_r10, h3_r11, source_key "
        "FROM events WHERE id = ?"
        if store.dialect == "duckdb"
        else "SELECT reporter, contact, h3_r7, h3_r8, h3_r9, h3_r10, h3_r11, source_key "
        "FROM events WHERE id = %s",
        [doc["id"]],
    )[0]
    assert str(raw[0]).startswith("v1.") and str(raw[1]).startswith("v1.")
    lon, lat = world.point(2)
    cells = point_cells([shapely.Point(lon, lat)]).iloc[0].astype(int).tolist()
    assert [int(c) for c in raw[2:7]] == cells
    assert str(raw[7]).startswith("api:")
    row = store.read("events", ids=[int(str(doc["id"]))])
    assert row["reporter"].iloc[0] == "李四" and row["contact"].iloc[0] == "13900001111"
    assert np.allclose([row.geometry.x.iloc[0], row.geometry.y.iloc[0]], [lon, lat])


def test_outbox_only_when_a_subscription_wants_it(world: World, client: TestClient) -> None:
    store = world.store
    _post(client, world.body(1), "lean-hook-1")
    assert store.count("webhook_outbox") == 0  # nobody listens: nothing to announce
    grid_b = world.code(4)
    listener = Principal("listener", "community_staff", (grid_b,))
    sub = webhooks.create_subscription(
        store,
        url="http://127.0.0.1:9/gridmap",  # never called here: the outbox is what counts
        event_types=["reported"],
        principal=listener,
        allow_private=True,
    )
    outside = next(i for i in range(len(world.grids)) if world.code(i) != grid_b)
    _post(client, world.body(outside), "lean-hook-2")
    assert store.count("webhook_outbox") == 0  # not the subscriber's area
    inside = _post(client, world.body(4), "lean-hook-3")
    box = store.read("webhook_outbox")
    assert box["event_id"].astype(int).tolist() == [inside["id"]]
    assert box["kind"].tolist() == ["reported"] and box["state"].tolist() == ["new"]
    keys = [k for (k,) in store.sql("SELECT source_key FROM webhook_outbox")]
    assert keys == [f"event:{inside['id']}:v1:reported"]
    webhooks.delete_subscription(store, int(sub["id"]), listener)
    _post(client, world.body(4, category="city_management"), "lean-hook-4")
    assert store.count("webhook_outbox") == 1


def test_open311_create_takes_the_same_path(world: World, client: TestClient) -> None:
    lon, lat = world.point(6)
    form = {
        "service_code": "dispute",
        "lat": str(lat),
        "long": str(lon),
        "description": "合成 Open311 report (SYNTHETIC)",
        "first_name": "赵",
        "last_name": "六",
        "phone": "13700002222",
    }
    r = client.post("/open311/v2/requests.json", data=form, headers={"Idempotency-Key": "o1"})
    assert r.status_code == 201, r.text
    sid = int(r.json()[0]["service_request_id"])
    again = client.post("/open311/v2/requests.json", data=form, headers={"Idempotency-Key": "o1"})
    assert again.status_code == 201 and again.json() == r.json()
    ev = world.store.read("events", ids=[sid])
    assert ev["grid_code"].tolist() == [world.code(6)] and ev["channel"].tolist() == ["open311"]
    assert world.store.count("event_transitions", where={"event_id": sid}) == 1
