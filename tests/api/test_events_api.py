"""``/events``, ``/events/{id}/transitions`` and ``/kpis`` over HTTP, on both stores.

Grids are the real Helsinki demo grids; every event is synthetic.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from api.routers._json import MAX_DEPTH
from api.settings import Settings, get_settings
from gridmap.security.access import Principal
from gridmap.storage import Store
from tests.api.events_app import events_app, map_event_errors
from tests.events_edges import beyond
from tests.events_world import World, make_world

ADMIN = Principal("admin", "city_admin")
T0 = pd.Timestamp("2026-11-02T00:00:00Z")


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> pd.Timestamp:
        return self.now

    def at(self, hours: float) -> None:
        self.now = T0 + pd.Timedelta(hours=hours)


@pytest.fixture
def world(store: Store) -> World:
    return make_world(store)


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


def post(client: TestClient, body: dict[str, Any], key: str | None = None) -> Any:
    headers = {"Idempotency-Key": key} if key else {}
    return client.post("/events", json=body, headers=headers)


def move(client: TestClient, eid: int, action: str, version: int | None = None, **kw: Any) -> Any:
    headers = {"If-Match": f'"{version}"'} if version is not None else {}
    return client.post(f"/events/{eid}/transitions", json={"action": action, **kw}, headers=headers)


def test_report_replay_read_and_transitions(client: TestClient, world: World) -> None:
    body = world.body(
        0, "city_management", urgency="urgent", reporter="张三丰", contact="13812341234"
    )
    r = post(client, body, key="report-0001")
    assert r.status_code == 201, r.text
    doc = r.json()
    assert doc["status"] == "reported" and doc["grid_code"] == world.code(0)
    assert doc["community_code"] == world.code(0)[:12] and doc["town_code"] == world.code(0)[:9]
    assert doc["assigned_to"] and doc["responsible"].startswith("城管")
    assert doc["reporter"] == "张**" and doc["contact"] == "138****1234"
    assert r.headers["ETag"] == '"1"'
    # Encrypted at rest (issue 25): the database holds ciphertext, the account stays plain.
    [(raw_name, raw_phone, by)] = world.store.sql(  # type: ignore[attr-defined]
        "SELECT reporter, contact, reported_by FROM events"
    )
    assert raw_name.startswith("v1.") and raw_phone.startswith("v1.") and by == "admin"
    assert "张" not in raw_name + raw_phone and "1234" not in raw_name + raw_phone
    # A retry after a timeout: the stored answer, nothing stored twice.
    again = post(client, body, key="report-0001")
    assert again.status_code == 201 and again.json() == doc
    assert again.headers["Idempotent-Replayed"] == "true"
    assert world.store.count("events") == 1
    # The same key with another body: refused.
    other = post(client, {**body, "description": "another"}, key="report-0001")
    assert other.status_code == 422 and "Idempotency-Key" in other.json()["description"]
    assert world.store.count("events") == 1
    eid = doc["id"]

    got = client.get(f"/events/{eid}")
    assert got.status_code == 200 and got.headers["ETag"] == '"1"'
    ok = move(client, eid, "accept", 1)
    assert ok.status_code == 200 and ok.json()["status"] == "accepted"
    assert ok.headers["ETag"] == '"2"'
    stale = move(client, eid, "verify", 1)
    assert stale.status_code == 412, stale.text
    illegal = move(client, eid, "close", 2)
    assert illegal.status_code == 409 and "cannot close" in illegal.json()["description"]
    assert move(client, eid, "verify", None, note="现场核实").status_code == 200
    assert move(client, eid, "inspect", 3, result="pass").status_code == 409
    assert move(client, eid, "inspect", 3).status_code == 400
    assert move(client, eid, "fly", 3).status_code == 400
    bad_etag = client.post(
        f"/events/{eid}/transitions", json={"action": "register"}, headers={"If-Match": "abc"}
    )
    assert bad_etag.status_code == 400 and "If-Match" in bad_etag.json()["description"]
    hist = client.get(f"/events/{eid}/transitions").json()["transitions"]
    assert [t["action"] for t in hist] == ["report", "accept", "verify"]
    assert hist[2]["note"] == "现场核实" and hist[2]["actor"] == "admin"

    # A viewer sees no personal data; a worker of another grid sees nothing.
    act(client, Principal("v", "viewer"))
    seen = client.get(f"/events/{eid}").json()
    assert "reporter" not in seen and "contact" not in seen
    assert client.post("/events", json=body).status_code == 403
    act(client, Principal("w", "grid_worker", (world.code(5),)))
    assert client.get(f"/events/{eid}").status_code == 404
    assert client.get("/events").json()["total"] == 0
    assert client.post("/events", json=body).status_code == 403
    act(client, Principal("w0", "grid_worker", (world.code(0),)))
    listed = client.get("/events", params={"status": "verified"}).json()
    assert listed["total"] == 1 and listed["events"][0]["id"] == eid


def test_list_paging_and_filters(client: TestClient, world: World) -> None:
    cats = ["city_management", "dispute", "safety_hazard"]
    for i in range(6):
        assert post(client, world.body(i, cats[i % 3])).status_code == 201
    page = client.get("/events", params={"limit": 4}).json()
    assert page["total"] == 6 and len(page["events"]) == 4
    rest = client.get("/events", params={"limit": 4, "offset": 4}).json()
    assert [e["id"] for e in rest["events"]] == [5, 6]
    assert client.get("/events", params={"category": "dispute"}).json()["total"] == 2
    assert client.get("/events", params={"from": "2026-11-03T00:00:00Z"}).json()["total"] == 0
    assert client.get("/events", params={"from": "2026-11-03"}).json()["total"] == 0
    assert client.get("/events", params={"to": "2026-11-03T00:00:00"}).status_code == 400
    assert client.get("/events", params={"bogus": "1"}).status_code == 400


def test_concurrent_transitions_over_http(client: TestClient, world: World) -> None:
    eid = post(client, world.body(2)).json()["id"]
    n = 6
    barrier = threading.Barrier(n)
    codes: list[int] = []
    lock = threading.Lock()

    def attempt() -> None:
        barrier.wait()
        r = move(client, eid, "accept", 1)
        with lock:
            codes.append(r.status_code)

    threads = [threading.Thread(target=attempt) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [200] + [412] * (n - 1), codes
    assert world.store.count("event_transitions", where={"event_id": eid}) == 2


def test_same_key_raced_stores_once(client: TestClient, world: World) -> None:
    body = world.body(4, "safety_hazard")
    n = 5
    barrier = threading.Barrier(n)
    answers: list[tuple[int, Any]] = []
    lock = threading.Lock()

    def attempt() -> None:
        barrier.wait()
        r = post(client, body, key="race-key-1")
        with lock:
            answers.append((r.status_code, r.json()))

    threads = [threading.Thread(target=attempt) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert world.store.count("events") == 1
    ok = [doc for code, doc in answers if code == 201]
    assert ok and all(doc == ok[0] for doc in ok)
    # Anyone not served the stored answer was told to retry (409), never a 5xx.
    assert all(code in (201, 409) for code, _ in answers), answers


def test_kpis_endpoint_figure_by_figure(client: TestClient, world: World, clock: Clock) -> None:
    a, b = 6, 7
    e1 = post(client, world.body(a, "city_management")).json()["id"]
    e2 = post(client, world.body(a, "dispute")).json()["id"]
    e3 = post(client, world.body(b, "safety_hazard")).json()["id"]
    post(client, world.body(b, "residents_request", kind="opinion"))
    for i, step in enumerate(["accept", "verify", "register", "dispatch", "handle"]):
        clock.at(1 + i)
        assert move(client, e1, step).status_code == 200
    clock.at(10)
    assert move(client, e1, "inspect", result="fail").status_code == 200
    clock.at(12)
    assert move(client, e1, "handle").status_code == 200
    clock.at(20)
    assert move(client, e1, "close").status_code == 200
    act(client, Principal("w", "grid_worker", (world.code(a),)))
    clock.at(2)
    assert move(client, e2, "self_handle").status_code == 200
    act(client, ADMIN)
    clock.at(3)
    assert move(client, e3, "reject").status_code == 200
    clock.at(200)
    got = client.get("/kpis", params={"by": "grid", "from": "2026-11-01", "to": "2026-12-01"})
    assert got.status_code == 200, got.text
    rows = {r["grid"]: r for r in got.json()["rows"]}
    # By hand: grid a: e1 closed after 20 h with one rework, e2 self-handled after 2 h.
    ra = rows[world.code(a)]
    assert (ra["reported"], ra["closed"], ra["closure_rate"]) == (2, 2, 1.0)
    assert (ra["rework_rate"], ra["self_handled_share"], ra["on_time_rate"]) == (0.5, 0.5, 1.0)
    assert ra["mean_hours_to_close"] == 11.0 and ra["p90_hours_to_close"] == 18.2
    # grid b: e3 rejected, one opinion still open after 200 h (limit 120 h): overdue.
    rb = rows[world.code(b)]
    assert (rb["reported"], rb["closed"], rb["closure_rate"], rb["overdue"]) == (2, 0, 0.0, 1)
    assert (rb["opinions"], rb["on_time_rate"], rb["mean_hours_to_close"]) == (1, None, None)
    town = client.get("/kpis", params={"by": "town"}).json()["rows"]
    assert len(town) == 1 and town[0]["reported"] == 4
    sup = client.get("/events/supervision").json()
    assert sup["total"] == 1 and sup["events"][0]["kind"] == "opinion"
    assert client.get("/kpis", params={"by": "planet"}).status_code == 400
    assert client.get("/kpis", params={"from": "2026-12-01", "to": "2026-11-01"}).status_code == 400


def _jpeg_with_gps() -> bytes:
    img = Image.new("RGB", (32, 24), (200, 30, 30))
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (60.0, 10.0, 5.0), 3: "E", 4: (24.0, 56.0, 1.0)}
    exif[0x010F] = "TestCam"
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif)
    return buf.getvalue()


def test_photo_upload_strips_gps(client: TestClient, world: World, tmp_path: Path) -> None:
    raw = _jpeg_with_gps()
    with Image.open(io.BytesIO(raw)) as check:
        assert check.getexif().get_ifd(0x8825)  # the fixture really carries GPS
    r = client.post("/events/media", files={"file": ("p.jpg", raw, "image/jpeg")})
    assert r.status_code == 201, r.text
    name = r.json()["name"]
    stored = (tmp_path / "media" / name).read_bytes()
    with Image.open(io.BytesIO(stored)) as img:
        assert not img.getexif().get_ifd(0x8825) and not img.getexif()
    assert b"TestCam" not in stored
    # Served only once an event the caller may read refers to it (issue 25).
    assert client.get(f"/events/media/{name}").status_code == 404
    assert client.get("/events/media/..%2F..%2Fetc%2Fpasswd").status_code == 404
    body = world.body(1, photos=[name])
    assert post(client, body).json()["photos"] == [name]
    assert client.get(f"/events/media/{name}").content == stored
    app: Any = client.app
    tree: Settings = app.state.settings
    media = tree.media.model_copy(update={"max_photo_bytes": 100})
    small = tree.model_copy(update={"media": media})
    app.dependency_overrides[get_settings] = lambda: small
    big = client.post("/events/media", files={"file": ("p.jpg", raw, "image/jpeg")})
    assert big.status_code == 413
    del app.dependency_overrides[get_settings]
    text = client.post("/events/media", files={"file": ("p.jpg", b"<svg/>", "image/jpeg")})
    assert text.status_code == 415
    assert client.post("/events/media").status_code == 400


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_bad_inputs_are_clear_4xx(client: TestClient, world: World) -> None:
    """Every bad input of quality.md that applies to /events: a 4xx naming the problem."""
    lon, lat = world.point(0)
    good = world.body(0)
    raw_cases: list[tuple[bytes, str, int, str]] = [
        (b'{"category": "dispute", "category": "safety_hazard"}', "json", 400, "duplicate key"),
        (_nested(10_000), "json", 400, "nested"),
        (_nested(MAX_DEPTH + 1), "json", 400, "nested"),
        (b'{"category": "dispute", "description": "\xff\xfe"}', "json", 400, "UTF-8"),
        (b'{"category": ', "json", 400, "not valid JSON"),
        (b"", "json", 400, "empty"),
        (b'{"location": {"lon": NaN, "lat": 1, "crs": "wgs84"}}', "json", 400, "finite"),
        (b'{"location": {"lon": Infinity, "lat": 1, "crs": "wgs84"}}', "json", 400, "finite"),
        (b'{"location": {"lon": -Infinity, "lat": 1, "crs": "wgs84"}}', "json", 400, "finite"),
        (b'{"location": {"lon": 1e400, "lat": 1, "crs": "wgs84"}}', "json", 400, "finite"),
        (b"category=dispute", "form", 415, "Content-Type"),
        (b'{"category": "dispute"}', "text", 415, "Content-Type"),
        (b"[1, 2]", "json", 400, "JSON object"),
    ]
    locations: list[tuple[Any, int, str]] = [
        ({"lon": "24.9", "lat": lat, "crs": "wgs84"}, 400, "location.lon must be a number"),
        ({"lon": None, "lat": lat, "crs": "wgs84"}, 400, "location.lon must be a number"),
        ({"lon": [], "lat": lat, "crs": "wgs84"}, 400, "location.lon must be a number"),
        ({"lon": True, "lat": lat, "crs": "wgs84"}, 400, "location.lon must be a number"),
        ([lon, lat], 400, "location must be an object"),
        (None, 400, "location must be an object"),
        ({"lon": lon, "crs": "wgs84"}, 400, "both lon and lat"),
        ({"lon": lon, "lat": lat, "alt": 3, "crs": "wgs84"}, 400, "unknown location member"),
        ({"lon": lon, "lat": 90.0000001, "crs": "wgs84"}, 400, "latitude"),
        ({"lon": lon, "lat": -90.0000001, "crs": "wgs84"}, 400, "latitude"),
        ({"lon": 180.5, "lat": lat, "crs": "wgs84"}, 400, "longitude"),
        ({"lon": lat, "lat": lon, "crs": "wgs84"}, 422, "swapped"),
        ({"lon": 0, "lat": 0, "crs": "wgs84"}, 422, "null island"),
        ({"lon": 116.397, "lat": 39.909, "crs": "wgs84"}, 422, "outside the jurisdiction"),
        ({"lon": lon, "lat": lat}, 400, "crs is missing"),
        ({"lon": lon, "lat": lat, "crs": None}, 400, "crs is missing"),
        ({"lon": lon, "lat": lat, "crs": "mars2000"}, 400, "unknown crs"),
        ({"lon": lon, "lat": lat, "crs": "EPSG:999999"}, 400, "unknown crs"),
        ({"lon": lon, "lat": lat, "crs": 4326}, 400, "crs must be"),
        ({"lon": 1e9, "lat": 1e9, "crs": "EPSG:3067"}, 400, "outside"),
    ]
    fields: list[tuple[dict[str, Any], int, str]] = [
        ({"category": "aliens"}, 400, "unknown category"),
        ({"category": None}, 400, "unknown category"),
        ({"category": ["dispute"]}, 400, "unknown category"),
        ({"subcategory": "x" * 10_000}, 400, "unknown subcategory"),
        ({"urgency": "yesterday"}, 400, "unknown urgency"),
        ({"kind": "opinion"}, 400, "does not take reports of kind"),
        ({"description": ""}, 400, "description must not be empty"),
        ({"description": "x" * 10_000}, 400, "longer than"),
        ({"description": 5}, 400, "description must be a string"),
        ({"photos": "a.jpg"}, 400, "photos"),
        ({"photos": ["../../etc/passwd"]}, 400, "photos"),
        ({"crs": "wgs84"}, 400, "unknown field 'crs'"),
        ({"<img onerror=alert(1)>": 1}, 400, "unknown field"),
    ]
    failures: list[str] = []

    def check(label: str, r: Any, status: int, fragment: str) -> None:
        desc = r.json().get("description", "") if r.content else ""
        if r.status_code != status or fragment.lower() not in desc.lower():
            failures.append(
                f"{label}: {r.status_code} {desc[:120]!r} (want {status}, {fragment!r})"
            )

    ctypes = {"json": "application/json", "form": "application/x-www-form-urlencoded"}
    for raw, kind, status, fragment in raw_cases:
        headers = {"Content-Type": ctypes.get(kind, "text/plain")}
        check(
            repr(raw[:40]), client.post("/events", content=raw, headers=headers), status, fragment
        )
    for loc, status, fragment in locations:
        check(f"location {loc!r}", post(client, {**good, "location": loc}), status, fragment)
    for extra, status, fragment in fields:
        check(f"field {str(extra)[:40]}", post(client, {**good, **extra}), status, fragment)
    ids: list[tuple[str, int]] = [
        ("%2E%2E", 404),
        ("1%00", 404),
        (str(2**63), 404),
        ("x" * 10_000, 404),
        ("-1", 404),
        ("0", 404),
        ("99999", 404),
    ]
    for raw_id, status in ids:
        for r in (
            client.get(f"/events/{raw_id}"),
            client.post(f"/events/{raw_id}/transitions", json={"action": "accept"}),
        ):
            if r.status_code != status:
                failures.append(f"id {raw_id[:20]}: {r.status_code}")
    eid = post(client, good).json()["id"]
    transitions: list[tuple[Any, int, str]] = [
        ({"action": "extend", "hours": "NaN"}, 400, "hours"),
        ({"action": "extend", "hours": -1}, 400, "hours"),
        ({"action": "merge", "target": 2**63}, 400, "target"),
        ({"action": "escalate", "to": "moon"}, 400, "town"),
        ({"action": "accept", "sudo": True}, 400, "unknown transition field"),
        (["accept"], 400, "JSON object"),
    ]
    for body, status, fragment in transitions:
        check(
            f"transition {body!r}",
            client.post(f"/events/{eid}/transitions", json=body),
            status,
            fragment,
        )
    long_key = post(client, good, key="k" * 300)
    check("long Idempotency-Key", long_key, 400, "Idempotency-Key")
    assert not failures, "\n".join(failures)
    # Nothing was stored by any refused request.
    assert world.store.count("events") == 1


def test_observed_at_and_accuracy_round_trip(client: TestClient, world: World) -> None:
    body = world.body(
        3, "city_management", observed_at="2026-11-01T20:30:00+08:00", accuracy_m=12.5
    )
    r = post(client, body, key="observed-1")
    assert r.status_code == 201, r.text
    doc = r.json()
    assert doc["observed_at"] == "2026-11-01T12:30:00Z" and doc["accuracy_m"] == 12.5
    assert doc["reporter_grid_code"] is None
    got = client.get(f"/events/{doc['id']}").json()
    assert (got["observed_at"], got["accuracy_m"]) == ("2026-11-01T12:30:00Z", 12.5)
    assert got == doc
    again = post(client, body, key="observed-1")
    assert again.json() == doc and again.headers["Idempotent-Replayed"] == "true"
    plain = post(client, world.body(4)).json()
    assert (plain["observed_at"], plain["accuracy_m"]) == (None, None)
    rows = {r["grid"]: r for r in client.get("/kpis").json()["rows"]}
    assert rows[world.code(3)]["mean_report_lag_h"] == 11.5  # 12:30 → 00:00
    assert rows[world.code(4)]["mean_report_lag_h"] is None


def test_observed_at_refused_naming_the_field(client: TestClient, world: World) -> None:
    cases = [
        ("2026-11-02T00:10:00Z", "in the future"),  # 10 min ahead of the server's clock
        ("2026-10-29T23:00:00Z", "more than 72 hours"),
        ("2026-11-01T10:00:00", "zone"),
        ("2026-11-01", "zone"),
        (1762041600, "ISO 8601"),
    ]
    for value, fragment in cases:
        r = post(client, world.body(0, observed_at=value))
        desc = r.json()["description"]
        assert r.status_code == 400 and "observed_at" in desc and fragment in desc, (value, desc)
    for value in (0, -3, 10_001, "25", None, [1]):
        r = post(client, world.body(0, accuracy_m=value))
        if value is None:
            assert r.status_code == 201
            continue
        assert r.status_code == 400 and "accuracy_m" in r.json()["description"], value
    for raw in (b"NaN", b"Infinity", b"1e400"):
        payload = (
            b'{"category": "dispute", "description": "x", "accuracy_m": ' + raw + b", "
            b'"location": {"lon": 24.94, "lat": 60.17, "crs": "wgs84"}}'
        )
        r = client.post("/events", content=payload, headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and "finite" in r.json()["description"], (raw, r.text)
    assert world.store.count("events") == 1


def test_edge_tolerance_over_http(client: TestClient, world: World) -> None:
    own = 2
    near, far = beyond(world, own, 20.0), beyond(world, own, 500.0)
    act(client, Principal("网格员", "grid_worker", (world.code(own),)))
    body = {**world.body(own, "city_management"), "location": near.location(), "accuracy_m": 25}
    r = post(client, body)
    assert r.status_code == 201, r.text
    doc = r.json()
    assert doc["grid_code"] == world.code(near.other)
    assert doc["reporter_grid_code"] == world.code(own) and doc["accuracy_m"] == 25
    assert doc["location"] == {"lon": round(near.lon, 7), "lat": round(near.lat, 7), "crs": "wgs84"}
    stored = world.store.get("events", doc["id"]).iloc[0]
    assert stored["grid_code"] == world.code(near.other)
    assert list(stored["assigned_to"]) == list(world.grids.iloc[near.other]["workers"])
    # 500 m away: 403, the reason in Chinese and English.
    r = post(client, {**body, "location": far.location()})
    assert r.status_code == 403
    desc = r.json()["description"]
    assert "不在您负责的网格内(距最近网格 500 米)" in desc
    assert "500 m outside your grids (tolerance 25 m)" in desc
    # Without accuracy_m: no tolerance, refused as before.
    r = post(client, {k: v for k, v in body.items() if k != "accuracy_m"})
    assert r.status_code == 403 and "no tolerance without accuracy_m" in r.json()["description"]
    assert world.store.count("events") == 1


def test_report_settings_reach_the_core(
    world: World, tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    map_event_errors(monkeypatch)
    own = 2
    near = beyond(world, own, 20.0)
    app = events_app(
        world.store,
        principal=Principal("网格员", "grid_worker", (world.code(own),)),
        media_dir=tmp_path / "media",
        clock=clock,
        observed_max_age_hours=24,
        edge_tolerance_m=10,
    )
    with TestClient(app) as c:
        body = {**world.body(own), "location": near.location(), "accuracy_m": 25}
        r = post(c, body)
        assert r.status_code == 403 and "(tolerance 10 m)" in r.json()["description"]
        r = post(c, world.body(own, observed_at="2026-11-01T00:00:00+00:00"))
        assert r.status_code == 201, r.text
        r = post(c, world.body(own, "safety_hazard", observed_at="2026-10-31T23:00:00Z"))
        assert r.status_code == 400 and "more than 24 hours" in r.json()["description"]
