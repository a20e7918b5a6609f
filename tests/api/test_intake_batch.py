"""``POST /events:batch`` and the lean intake path, on both stores (issue 22).

Grids are the real Helsinki demo grids; every event is synthetic. Reports are
made at the real time, so intake places them from the in-memory ``/locate``
index; each placement is checked against the store's answer
(:func:`gridmap.events.intake.locate_point` without the index).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient

from gridmap.events.intake import locate_point
from gridmap.geo.locate import Locator
from gridmap.security.access import ALL_AREAS, Principal
from gridmap.storage import Store
from tests.api.events_app import events_app, map_event_errors
from tests.events_world import World, make_world

HOTLINE = Principal("12345热线", "external_system", ALL_AREAS)


@pytest.fixture
def world(store: Store) -> World:
    return make_world(store)


def _client(world: World, tmp_path: Path, principal: Principal) -> TestClient:
    return TestClient(events_app(world.store, principal=principal, media_dir=tmp_path / "m"))


@pytest.fixture
def client(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    map_event_errors(monkeypatch)
    with _client(world, tmp_path, HOTLINE) as c:
        yield c


def _points(world: World, n: int, seed: int = 7) -> list[tuple[int, float, float]]:
    """*n* random points inside the demo grids (grid position, lon, lat)."""
    rng = np.random.default_rng(seed)
    out: list[tuple[int, float, float]] = []
    while len(out) < n:
        i = int(rng.integers(len(world.grids)))
        geom = world.grids.geometry.iloc[i]
        minx, miny, maxx, maxy = geom.bounds
        x, y = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
        if shapely.contains_xy(geom, x, y):
            out.append((i, float(x), float(y)))
    return out


def _item(key: str, lon: float, lat: float, category: str = "city_management") -> dict[str, Any]:
    return {
        "idempotency_key": key,
        "report": {
            "category": category,
            "description": f"12345 热线工单 synthetic hotline ticket {key}",
            "location": {"lon": lon, "lat": lat, "crs": "wgs84"},
            "channel": "hotline_12345",
        },
    }


def _stored(store: Store) -> int:
    return store.count("events", where={"channel": "hotline_12345"})


def test_batch_results_per_item_and_replay_stores_once(client: TestClient, world: World) -> None:
    pts = _points(world, 24)
    items = [_item(f"b-{n}", x, y) for n, (_, x, y) in enumerate(pts)]
    items.append(_item("b-0", pts[0][1], pts[0][2]))  # the same key and body: a replay
    items.append(_item("b-1", pts[0][1], pts[0][2]))  # the same key, another body: 422
    items.append(_item("b-far", 0.0, 0.0))  # outside the jurisdiction: 422
    items.append({"report": items[2]["report"]})  # no key: 400
    items.append(_item("b-bad", 24.9, 60.2, category="no_such_category"))  # 400
    r = client.post("/events:batch", json={"reports": items})
    assert r.status_code == 207, r.text
    doc = r.json()
    got = [e["status"] for e in doc["results"]]
    assert got == [201] * 24 + [200, 422, 422, 400, 400], got
    assert [e["index"] for e in doc["results"]] == list(range(len(items)))
    assert (doc["count"], doc["stored"], doc["replayed"], doc["failed"]) == (29, 24, 1, 4)
    assert doc["results"][24]["event"]["id"] == doc["results"][0]["event"]["id"]
    assert doc["results"][26]["error"]["code"] and doc["results"][26]["error"]["description_zh"]
    assert doc["results"][27]["error"]["field"] == "reports[27].idempotency_key"
    assert _stored(world.store) == 24
    # Each report placed where the store places it (grid, community, town, workers).
    for entry, (i, x, y) in zip(doc["results"][:24], pts, strict=True):
        place = locate_point(world.store, x, y)
        assert place is not None
        ev = entry["event"]
        assert ev["grid_code"] == place.grid_code == world.code(i)
        assert ev["community_code"] == place.community_code
        assert ev["town_code"] == place.town_code
        assert ev["assigned_to"] == list(place.workers)
        assert ev["channel"] == "hotline_12345"
    # Every stored report has its audit record (the ``report`` transition).
    ids = [e["event"]["id"] for e in doc["results"][:24]]
    audit = world.store.read("event_transitions", where={"action": "report"})
    assert sorted(int(e) for e in audit["event_id"]) == sorted(ids)
    # The whole batch again (a hotline retrying after a timeout): nothing stored twice.
    again = client.post("/events:batch", json={"reports": items}).json()
    assert [e["status"] for e in again["results"]] == [200] * 25 + [422, 422, 400, 400]
    assert [e["event"]["id"] for e in again["results"][:24]] == ids
    assert all(e["replayed"] for e in again["results"][:25])
    assert _stored(world.store) == 24
    keys = world.store.read("idempotency_keys", where={"principal": HOTLINE.name})
    assert sorted(Counter(keys["key"]).values()) == [1] * 24


def test_batch_duplicate_detection_inside_the_batch(client: TestClient, world: World) -> None:
    _, x, y = _points(world, 1, seed=3)[0]
    items = [_item("d-0", x, y, "safety_hazard"), _item("d-1", x + 1e-5, y, "safety_hazard")]
    doc = client.post("/events:batch", json={"reports": items}).json()
    first, second = (e["event"] for e in doc["results"])
    assert first["duplicate_of"] is None
    assert second["duplicate_of"] == first["id"]  # about 0.6 m away, same category, open


def test_batch_roles_and_limits(
    client: TestClient, world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, x, y = _points(world, 1)[0]
    too_many = [_item(f"m-{n}", x, y) for n in range(1001)]
    r = client.post("/events:batch", json={"reports": too_many})
    assert r.status_code == 400 and "1000" in r.json()["description"]
    for body in ({"reports": []}, {"reports": "x"}, [], {"reports": [], "extra": 1}):
        r = client.post("/events:batch", json=body)
        assert r.status_code == 400, (body, r.text)
    assert _stored(world.store) == 0
    worker = Principal("网格员", "grid_worker", (world.code(0),))
    with _client(world, tmp_path, worker) as c:
        r = c.post("/events:batch", json={"reports": [_item("w-1", x, y)]})
    assert r.status_code == 403
    assert "batch" in r.json()["description"]
    assert _stored(world.store) == 0


def test_locator_placement_matches_the_store(world: World) -> None:
    """The in-memory placement gives the store's answer, shared grid edges included."""
    loc = Locator.from_store(world.store)
    pts = [(x, y) for _, x, y in _points(world, 200, seed=11)]
    # Points on shared grid edges: the tie rule (lowest code) must agree too.
    g0 = world.grids.geometry.iloc[0]
    for j in range(1, len(world.grids)):
        edge = shapely.intersection(g0.boundary, world.grids.geometry.iloc[j].boundary)
        if not edge.is_empty and edge.length > 0:
            p = shapely.line_interpolate_point(edge, 0.5, normalized=True)
            pts.append((p.x, p.y))
    pts.append((0.0, 0.0))  # outside: the store decides
    for x, y in pts:
        assert locate_point(world.store, x, y, locator=loc) == locate_point(world.store, x, y)


@pytest.mark.postgis
@pytest.mark.parametrize("store_url", ["postgis"], indirect=True)
def test_batch_of_1000_on_postgis(client: TestClient, world: World) -> None:
    pts = _points(world, 1000, seed=5)
    items = [_item(f"k-{n}", x, y) for n, (_, x, y) in enumerate(pts)]
    t = time.perf_counter()
    r = client.post("/events:batch", json={"reports": items})
    took = time.perf_counter() - t
    assert r.status_code == 207
    doc = r.json()
    assert doc["stored"] == 1000 and doc["failed"] == 0
    assert _stored(world.store) == 1000
    t = time.perf_counter()
    again = client.post("/events:batch", json={"reports": items}).json()
    replay = time.perf_counter() - t
    assert again["replayed"] == 1000 and _stored(world.store) == 1000
    print(f"\nbatch of 1000 on PostGIS: {took:.2f} s stored, {replay:.2f} s replayed")
