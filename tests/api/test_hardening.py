"""Issue 25 (hardening): bad text, numbers, times and coordinates are a 400 naming the field.

Each case is a reproduction from the red-team pass of issue 25 that answered
500 (or silently stored a wrong value) before the validation layer at the edge
(:mod:`api.validation`). The cases run on both stores; the client does not
re-raise server errors, so one run lists every case that went wrong.
Grids are the real Helsinki demo grids; every event is synthetic.
"""

from __future__ import annotations

import http.client
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient
from PIL import Image

from gridmap.common.settings import StoreSettings
from gridmap.security.access import Principal
from gridmap.storage import Store, open_store
from tests.api.events_app import events_app, map_event_errors
from tests.events_world import World, make_world

ADMIN = Principal("admin", "city_admin", can_unmask=True)
BIG = "7" * 5000  # more digits than Python's int() reads by default (4,300)
JSON = {"Content-Type": "application/json"}
EPSG = "http://www.opengis.net/def/crs/EPSG/0/"


@pytest.fixture
def world(store: Store) -> World:
    return make_world(store)


@pytest.fixture
def client(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    map_event_errors(monkeypatch)
    app = events_app(world.store, principal=ADMIN, media_dir=tmp_path / "media")
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def _raw(doc: dict[str, Any], **raw: str) -> str:
    """*doc* as JSON text with members whose raw JSON text is given (surrogates, huge ints)."""
    text = json.dumps(doc, ensure_ascii=False)
    if not raw:
        return text
    extra = ", ".join(f'"{k}": {v}' for k, v in raw.items())
    return text[:-1] + (", " if doc else "") + extra + "}"


def _without(doc: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != key}


def _check(r: Any, label: str, status: int, fragment: str) -> str | None:
    if r.status_code != status:
        return f"{label}: {r.status_code} (wanted {status}) {r.text[:200]}"
    if status >= 400:
        body = r.json()
        if isinstance(body, list):  # Open311 answers GeoReport v2's [{"code": 400, …}]
            [body] = body
            body = {**body, "code": "bad_input" if body.get("code") == 400 else body.get("code")}
        if body.get("code") not in ("bad_input", "unsupported_format"):
            return f"{label}: code {body.get('code')!r}"
        if fragment not in body["description"]:
            return f"{label}: {body['description'][:200]!r} does not name {fragment!r}"
    return None


def _event(client: TestClient, world: World) -> int:
    r = client.post("/events", json=world.body(0))
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _campaign(**kw: Any) -> dict[str, Any]:
    return {
        "name": "合成敲门行动 synthetic",
        "area_code": "990100001",
        "starts_at": "2026-11-01T00:00:00+08:00",
        "ends_at": "2026-12-01T00:00:00+08:00",
        **kw,
    }


def test_json_text_and_huge_integers_are_400_naming_the_field(
    client: TestClient, world: World
) -> None:
    eid = _event(client, world)
    report = world.body(1)
    lon, lat = world.point(2)
    o311 = {"service_code": "dispute", "lat": lat, "long": lon}
    route = {"grid": world.code(0), "mode": "streets"}
    track = {"grid": world.code(0), "crs": "wgs84", "format": "csv"}
    household = {"grid_code": world.code(0)}
    cases: list[tuple[str, str, str]] = [
        # (path, raw JSON body, the field the answer must name)
        ("/events", _raw(_without(report, "description"), description='"\\ud800"'), "description"),
        ("/events", _raw(report, reporter='"a\\udfff"'), "reporter"),
        ("/events", _raw({**report, "description": "x\u0000y"}), "description"),
        ("/events", _raw(report, urgency=BIG), "urgency"),
        (
            "/events",
            _raw(_without(report, "location"), location=f'{{"lon": {BIG}}}'),
            "location.lon",
        ),
        (f"/events/{eid}/transitions", _raw({"action": "accept"}, note='"\\ud800"'), "note"),
        (f"/events/{eid}/transitions", _raw({"action": "extend"}, hours=BIG), "hours"),
        ("/open311/v2/requests.json", _raw(o311, description='"\\ud800"'), "description"),
        ("/open311/v2/requests.json", _raw(o311, first_name='"\\ud800"'), "first_name"),
        ("/open311/v2/requests.json", _raw(o311, urgency=BIG), "urgency"),
        ("/doorknock/campaigns", _raw(_without(_campaign(), "name"), name='"\\ud800"'), "name"),
        ("/doorknock/campaigns", _raw(_campaign(), extra=BIG), "extra"),
        ("/patrol/routes", _raw(route, max_points=BIG), "max_points"),
        ("/patrol/routes", _raw({"mode": "streets"}, grid='"\\ud800"'), "grid"),
        ("/patrol/tracks", _raw(track, track='"lon,lat,time\\n\\ud800"'), "track"),
        ("/patrol/tracks", _raw(track, track=f"[{BIG}]"), "track[0]"),
        ("/registry/households", _raw(household, address='"\\ud800"'), "address"),
        ("/registry/households", _raw({**household, "address": "x"}, kind=BIG), "kind"),
    ]
    failures = []
    for path, body, field in cases:
        r = client.post(path, content=body.encode("utf-8", "surrogatepass"), headers=JSON)
        if (msg := _check(r, f"POST {path} {field}", 400, field)) is not None:
            failures.append(msg)
    form = "service_code=dispute&lat=60.17&long=24.94&description=a%00b"
    r = client.post(
        "/open311/v2/requests.json",
        content=form,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    failures.append(_check(r, "Open311 form NUL", 400, "description"))
    assert not [f for f in failures if f], "\n".join(f for f in failures if f)
    assert world.store.count("events") == 1  # nothing else was stored


def test_years_outside_1_to_9999_are_400_naming_the_field(client: TestClient, world: World) -> None:
    grid = world.code(0)
    year0, minus1, big = "0000-01-01T00:00:00Z", "-0001-01-01T00:00:00Z", "10000-01-01T00:00:00Z"
    gets = [
        (f"/events?from={year0}", "from"),
        (f"/events?to={minus1}", "to"),
        ("/events?from=0000-01-01", "from"),
        (f"/events?from={big}", "from"),
        ("/events?to=9999-12-31T23:59:59-01:00", "to"),  # year 10000 in UTC
        ("/events?from=0001-01-01T00:00:00%2B08:00", "from"),  # year 0 in UTC
        (f"/kpis?from={year0}", "from"),
        (f"/kpis?by=worker&to={year0}", "to"),
        (f"/heatmap?resolution=9&from={year0}", "from"),
        (f"/hotspots?resolution=9&to={minus1}", "to"),
        (f"/heatmap/tiles/WebMercatorQuad/14/4742/9327?from={year0}", "from"),
        (f"/open311/v2/requests.json?start_date={year0}", "start_date"),
        (f"/open311/v2/requests.json?end_date={minus1}", "end_date"),
        ("/patrol/tracks?date=0000-01-01", "date"),
        (f"/patrol/coverage?grid={grid}&date=0000-01-01", "date"),
        (f"/patrol/coverage?grid={grid}&date=-001-01-01", "date"),
    ]
    failures = [_check(client.get(p), p, 400, f) for p, f in gets]
    posts = [
        ("/doorknock/campaigns", _campaign(starts_at=year0), "starts_at"),
        ("/doorknock/campaigns", _campaign(starts_at="0000-01-01"), "starts_at"),
        ("/doorknock/campaigns", _campaign(starts_at="-0001-01-01"), "starts_at"),
        ("/doorknock/campaigns", _campaign(ends_at=big), "ends_at"),
        ("/events", world.body(0, observed_at=year0), "observed_at"),
    ]
    failures += [_check(client.post(p, json=b), f"POST {p} {f}", 400, f) for p, b, f in posts]
    # the first and the last representable years are accepted
    for ok in ("/events?from=0001-01-01T00:00:00Z", "/events?to=9999-12-31T23:59:59Z"):
        failures.append(_check(client.get(ok), ok, 200, ""))
    assert not [f for f in failures if f], "\n".join(f for f in failures if f)
    assert world.store.count("doorknock_campaigns") == 0  # no campaign stored as 1970/1972


def test_nul_in_query_parameters_is_400_on_both_stores(client: TestClient, world: World) -> None:
    grid = world.code(0)
    paths = [
        ("/events?status=%00", "status"),
        ("/events?category=%00", "category"),
        ("/events?kind=a%00", "kind"),
        ("/events?grid_code=%00", "grid_code"),
        ("/open311/v2/requests.json?service_code=%00", "service_code"),
        ("/patrol/tracks?worker=%00", "worker"),
        (f"/patrol/coverage?grid={grid}&worker=%00", "worker"),
        ("/doorknock/campaigns?area=%00", "area"),
        ("/heatmap?resolution=9&category=%00", "category"),
        ("/collections/events/items?status=%00", "status"),
        ("/events?x%00y=1", "name"),
    ]
    failures = [_check(client.get(p), p, 400, f) for p, f in paths]
    assert not [f for f in failures if f], "\n".join(f for f in failures if f)


def test_coordinates_bboxes_and_crss_out_of_reach_are_400(client: TestClient, world: World) -> None:
    lon, lat = world.point(0)
    bbox = f"/collections/buildings/items?bbox-crs={EPSG}3857&bbox="
    cases = [
        ("/locate?lon=1e30&lat=8438000&crs=EPSG:3857", "outside the area"),
        ("/locate?lon=1e30&lat=60&crs=wgs84", "longitude"),
        ("/locate?lon=24.9&lat=60.1&crs=EPSG:4978", "geocentric"),
        ("/locate?lon=24.9&lat=60.1&crs=EPSG:5703", "vertical"),
        (f"{bbox}-1e30,-1e30,1e30,1e30", "bbox"),
        (f"{bbox}-1e30,8437000,2776000,8440000", "bbox"),
    ]
    failures = [_check(client.get(p), p, 400, f) for p, f in cases]
    r = client.post("/locate", json={"points": [[4e6, 4e6]], "crs": "EPSG:4978"})
    failures.append(_check(r, "POST /locate geocentric", 400, "geocentric"))
    for crs, x, y in (("EPSG:4978", lon, lat), ("EPSG:3857", 1e30, 8438000.0)):
        body = world.body(0)
        body["location"] = {"lon": x, "lat": y, "crs": crs}
        failures.append(_check(client.post("/events", json=body), f"event {crs}", 400, "location"))
    # a good Web Mercator position and bbox still work
    ok = client.get("/locate?lon=2775000&lat=8438000&crs=EPSG:3857")
    failures.append(_check(ok, "locate in EPSG:3857", 200, ""))
    failures.append(_check(client.get(f"{bbox}2773000,8437000,2776000,8440000"), "bbox", 200, ""))
    assert not [f for f in failures if f], "\n".join(f for f in failures if f)


def test_nul_in_a_login_name_is_400_without_internals(client: TestClient) -> None:
    r = client.post("/auth/token", data={"username": "demo\x00worker", "password": "x" * 12})
    assert r.status_code == 400, r.text
    assert "username" in r.json()["description"]
    assert "audit" not in r.text.lower() and "sql" not in r.text.lower()


# -- bounded work ---------------------------------------------------------------
def _active(store: Store, fragment: str) -> int:
    """Queries of other sessions still running whose text holds *fragment* (PostGIS)."""
    rows = store.sql(
        "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
        "AND pid <> pg_backend_pid() AND position(%s in query) > 0",
        (fragment,),
    )
    return int(rows[0][0])


def test_pathological_like_is_400_at_once_and_leaves_nothing_running(
    filled: Store, make_app: Any
) -> None:
    items = "/collections/buildings/items?filter="
    with TestClient(make_app(filled, role="viewer")) as c:
        for pairs in (40, 2000):
            started = time.monotonic()
            r = c.get(items + quote(f"name LIKE '{'%_' * pairs}'"))
            assert time.monotonic() - started < 5
            assert r.status_code == 400, r.text[:200]
            assert "LIKE pattern" in r.json()["description"]
        r = c.get(items + quote("name LIKE '%_%_%_%_%_%_%_%_'"))  # 16 wildcards: allowed
        assert r.status_code == 200, r.text[:200]
        hotels = c.get(items + quote("name LIKE 'Hotel%'")).json()["numberMatched"]
        same = c.get(items + quote("name LIKE 'Hotel%%%'")).json()["numberMatched"]
        assert hotels == same > 0
        r = c.get(
            "/collections/buildings/tiles/WebMercatorQuad/14/4742/9327?filter="
            + quote(f"name LIKE '{'%_' * 2000}'")
        )
        assert r.status_code == 400
    if filled.dialect == "postgis":
        assert _active(filled, "LIKE") == 0
    started = time.monotonic()
    assert filled.count("buildings") > 0  # the store is free at once
    assert time.monotonic() - started < 5


@pytest.mark.postgis
def test_statement_timeout_is_503_with_a_reason(
    pg_url: str, make_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(pg_url, migrate=True)
    try:
        slow = "SELECT pg_sleep(30) /* runaway */"
        monkeypatch.setattr(store, "feature_page", lambda *a, **k: store.sql(slow))
        with TestClient(
            make_app(store, store=StoreSettings(database_url=":memory:", statement_timeout_ms=300))
        ) as c:
            assert store.statement_timeout_ms == 300  # type: ignore[attr-defined]
            started = time.monotonic()
            r = c.get("/collections/buildings/items")
            assert time.monotonic() - started < 10
        assert r.status_code == 503, r.text
        body = r.json()
        assert body["code"] == "statement_timeout" and "time limit" in body["description"]
        assert r.headers["retry-after"]
        assert _active(store, "runaway") == 0  # the server cancelled it; nothing left running
        assert store.count("buildings") == 0  # the pooled connection is usable again
        store.set_statement_timeout(None)  # type: ignore[attr-defined]
        assert store.sql("SELECT current_setting('statement_timeout')") == [("0",)]
    finally:
        store.close()


def test_settings_carry_the_statement_timeout(make_settings: Any) -> None:
    assert make_settings().store.statement_timeout_ms == 15_000
    no_limit = StoreSettings(database_url=":memory:", statement_timeout_ms=0)
    assert make_settings(store=no_limit).store.statement_timeout_ms == 0
    with pytest.raises(ValueError, match="GRIDMAP_STATEMENT_TIMEOUT_MS"):
        StoreSettings(statement_timeout_ms=-1)


# -- edges ----------------------------------------------------------------------
def test_a_500_keeps_the_keep_alive_connection(filled: Store, make_app: Any, serve: Any) -> None:
    app = make_app(filled)

    @app.get("/_boom")
    def boom() -> None:
        raise RuntimeError("an unexpected failure")

    with serve(app) as base:
        host, port = base.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            conn.request("GET", "/_boom")
            first = conn.getresponse()
            assert first.status == 500
            assert json.loads(first.read()) == {
                "code": "server_error",
                "description": "internal error",
                "description_zh": "服务器内部错误",
            }
            assert first.getheader("connection", "").lower() != "close"
            sock = conn.sock
            conn.request("GET", "/conformance")  # on the same connection
            second = conn.getresponse()
            assert second.status == 200 and second.read()
            assert conn.sock is sock
        finally:
            conn.close()


# -- no existence oracles -------------------------------------------------------
def _act(client: TestClient, who: Principal) -> None:
    client.app.state.principal = who  # type: ignore[attr-defined]


def _across_a_border(world: World) -> tuple[int, int, tuple[float, float], tuple[float, float]]:
    """Two touching grids and a point in each, about 10 m apart (real demo grids)."""
    grids = world.grids.geometry
    for i in range(len(grids)):
        for j in range(i + 1, len(grids)):
            edge = grids.iloc[i].intersection(grids.iloc[j])
            if edge.length == 0:
                continue
            mid = edge.interpolate(0.5, normalized=True)
            ring = [
                shapely.Point(mid.x + 1e-4 * np.cos(a), mid.y + 0.5e-4 * np.sin(a))
                for a in np.linspace(0, 2 * np.pi, 16, endpoint=False)
            ]
            a = next((p for p in ring if grids.iloc[i].contains(p)), None)
            b = next((p for p in ring if grids.iloc[j].contains(p)), None)
            if a is not None and b is not None:
                return i, j, (a.x, a.y), (b.x, b.y)
    raise AssertionError("no two touching grids in the demo")


def test_duplicate_hints_only_for_events_the_caller_may_read(
    client: TestClient, world: World
) -> None:
    i, j, here, there = _across_a_border(world)
    body = world.body(i, "city_management")
    body["location"] = {"lon": here[0], "lat": here[1], "crs": "wgs84"}
    first = client.post("/events", json=body).json()
    assert first["grid_code"] == world.code(i)
    worker = Principal("worker_j", "grid_worker", (world.code(j),))
    _act(client, worker)
    near = {**body, "location": {"lon": there[0], "lat": there[1], "crs": "wgs84"}}
    r = client.post("/events", json=near)
    assert r.status_code == 201, r.text
    mine = r.json()
    assert mine["grid_code"] == world.code(j)
    assert mine["duplicate_of"] is None  # before: the id of grid i's event
    assert client.get(f"/events/{mine['id']}").json()["duplicate_of"] is None
    listed = client.get("/events").json()["events"]
    assert [e["duplicate_of"] for e in listed if e["id"] == mine["id"]] == [None]
    o311 = {"service_code": "city_management", "lat": there[1], "long": there[0]}
    answer = client.post("/open311/v2/requests.json", json=o311).json()[0]
    assert "same as request" not in answer["service_notice"]
    listed311 = json.dumps(client.get("/open311/v2/requests.json").json())
    assert f"request {first['id']}" not in listed311
    # whoever may read the first event still gets the hint
    _act(client, ADMIN)
    assert client.get(f"/events/{mine['id']}").json()["duplicate_of"] == first["id"]
    again = client.post("/open311/v2/requests.json", json=o311).json()[0]
    assert f"same as request {first['id']}" in again["service_notice"]
    both = Principal("staff", "town_coordinator", (world.code(i)[:9],))
    _act(client, both)
    assert client.get(f"/events/{mine['id']}").json()["duplicate_of"] == first["id"]


def _jpeg(colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 12), colour).save(buf, "JPEG")
    return buf.getvalue()


def test_photos_only_for_callers_who_may_read_their_event(client: TestClient, world: World) -> None:
    def upload(colour: tuple[int, int, int]) -> str:
        r = client.post("/events/media", files={"file": ("p.jpg", _jpeg(colour), "image/jpeg")})
        assert r.status_code == 201, r.text
        return str(r.json()["name"])

    on_event, on_step, loose = upload((200, 0, 0)), upload((0, 200, 0)), upload((0, 0, 200))
    event = client.post("/events", json=world.body(0, photos=[on_event])).json()
    step = client.post(
        f"/events/{event['id']}/transitions", json={"action": "accept", "photos": [on_step]}
    )
    assert step.status_code == 200, step.text
    own = Principal("w0", "grid_worker", (world.code(0),))
    other = Principal("w1", "grid_worker", (world.code(1),))
    for who, status in ((ADMIN, 200), (own, 200), (other, 404)):
        _act(client, who)
        for name in (on_event, on_step):
            r = client.get(f"/events/media/{name}")
            assert r.status_code == status, (who.name, name, r.text[:100])
        assert client.get(f"/events/media/{loose}").status_code == 404  # no event holds it
    _act(client, other)
    denied = client.get(f"/events/media/{on_event}").json()
    assert denied["code"] == "not_found" and "event" not in denied["description"]
