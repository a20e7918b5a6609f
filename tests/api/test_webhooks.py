"""Webhooks end to end: a real HTTP receiver, signed deliveries, an outage, dead letters.

Grids are the real Helsinki demo grids; every event is synthetic. The
receiver is a ``http.server`` on a loopback port, stopped and started again
on the same port for the outage, which lasts 30 s and at least until every
change made meanwhile has failed three attempts (with the test's short
backoff; the production backoff is longer, the behaviour the same).
Runs on both stores.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.security import get_optional_principal, get_principal
from gridmap.common.settings import WebhookSettings
from gridmap.security.access import Principal
from gridmap.storage import Store
from tests.api.events_app import events_app, map_event_errors
from tests.events_world import World, make_world

ADMIN = Principal("admin", "city_admin")
SECRET_A = "admin-secret-0123456789"
SECRET_T = "town-secret-0123456789"


class Receiver:
    """An HTTP server recording every POST; ``/fail`` always answers 500."""

    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.got: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> None:
        got, lock = self.got, self.lock

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.path == "/fail":
                    self.send_response(500)
                    self.end_headers()
                    return
                with lock:
                    got.append({"path": self.path, "headers": dict(self.headers), "body": body})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()
        self.server = None

    def at(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return [g for g in self.got if g["path"] == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.start()
    try:
        yield r
    finally:
        if r.server is not None:
            r.stop()


def _app(world: World, tmp_path: Path, **hooks: Any) -> FastAPI:
    options = {"allow_private_hosts": True, "poll_s": 0.2, "backoff_s": 0.5, "max_backoff_s": 2}
    webhooks = WebhookSettings(**{**options, **hooks})
    app = events_app(world.store, principal=ADMIN, media_dir=tmp_path / "media", webhooks=webhooks)
    # Requests act as app.state.principal, for the routes needing credentials and the others.
    app.dependency_overrides[get_optional_principal] = lambda: app.state.principal
    app.dependency_overrides[get_principal] = lambda: app.state.principal
    return app


def _as(client: TestClient, who: Principal) -> None:
    client.app.state.principal = who  # type: ignore[attr-defined]


def _report(client: TestClient, world: World, i: int) -> int:
    r = client.post("/events", json=world.body(i))
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _move(client: TestClient, eid: int, *actions: str) -> None:
    for action in actions:
        body: dict[str, Any] = {"action": action}
        if action == "inspect":
            body["result"] = "pass"
        r = client.post(f"/events/{eid}/transitions", json=body)
        assert r.status_code == 200, (action, r.text)


def _subscribe(client: TestClient, url: str, kinds: list[str], secret: str) -> int:
    r = client.post("/subscriptions", json={"url": url, "event_types": kinds, "secret": secret})
    assert r.status_code == 201, r.text
    assert r.json()["secret"] == secret
    return int(r.json()["id"])


def _wait(check: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "deliveries did not arrive in time"
        time.sleep(0.1)


def _verified(deliveries: list[dict[str, Any]], secret: str) -> list[tuple[int, str, str]]:
    """(event id, type, delivery id) of each delivery, after checking its signature."""
    out = []
    for d in deliveries:
        want = "sha256=" + hmac.new(secret.encode(), d["body"], hashlib.sha256).hexdigest()
        assert hmac.compare_digest(d["headers"]["X-Gridmap-Signature"], want)
        doc = json.loads(d["body"])
        assert doc["delivery_id"] == d["headers"]["X-Gridmap-Delivery"]
        assert doc["type"] == d["headers"]["X-Gridmap-Event"]
        assert "description" not in doc["event"] and "reporter" not in doc["event"]
        out.append((doc["event"]["id"], doc["type"], doc["delivery_id"]))
    return out


WORKFLOW = ("accept", "verify", "register", "dispatch", "supervise", "handle", "inspect")


def test_each_transition_once_signed_and_none_lost_in_an_outage(
    store: Store, tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    map_event_errors(monkeypatch)
    world = make_world(store)
    town = Principal("town", "town_coordinator", (world.code(0),))
    with TestClient(_app(world, tmp_path, max_attempts=50)) as c:
        admin_sub = _subscribe(
            c, receiver.url("/admin"), ["reported", "dispatched", "supervised", "closed"], SECRET_A
        )
        _as(c, town)
        town_sub = _subscribe(c, receiver.url("/town"), ["reported", "closed"], SECRET_T)
        assert [s["id"] for s in c.get("/subscriptions").json()["subscriptions"]] == [town_sub]
        assert c.get(f"/subscriptions/{admin_sub}/deliveries").status_code == 404
        _as(c, ADMIN)
        assert {s["id"] for s in c.get("/subscriptions").json()["subscriptions"]} == {
            admin_sub,
            town_sub,
        }

        a = _report(c, world, 0)  # in the town's grid
        b = _report(c, world, 1)  # elsewhere
        _move(c, a, *WORKFLOW)
        first = {(a, "reported"), (a, "dispatched"), (a, "supervised"), (a, "closed")}
        first |= {(b, "reported")}
        _wait(lambda: len(receiver.at("/admin")) >= 5 and len(receiver.at("/town")) >= 2, 20)
        got = _verified(receiver.at("/admin"), SECRET_A)
        assert {(e, k) for e, k, _ in got} == first and len(got) == 5
        town_got = _verified(receiver.at("/town"), SECRET_T)
        assert sorted((e, k) for e, k, _ in town_got) == [(a, "closed"), (a, "reported")]

        # The receiver is down for 30 s while events change, and at least until each
        # of the four deliveries meanwhile has failed three attempts (backoff 0.5 s,
        # 1 s, then every 2 s: about 15 attempts each in the 30 s, of 50 allowed).
        receiver.stop()
        down_at = time.monotonic()
        c3 = _report(c, world, 0)
        _move(c, b, "accept", "verify", "register", "dispatch", "handle", "inspect")
        _move(c, c3, "self_handle")

        def failed_thrice() -> bool:
            r = c.get(f"/subscriptions/{admin_sub}/deliveries?status=pending")
            pending = r.json()["deliveries"]
            return len(pending) == 4 and all(
                d["attempts"] >= 3 and d["last_error"] for d in pending
            )

        _wait(failed_thrice, 60)
        time.sleep(max(0.0, 30.0 - (time.monotonic() - down_at)))
        assert len(receiver.at("/admin")) == 5  # nothing could arrive
        pending = c.get(f"/subscriptions/{admin_sub}/deliveries?status=pending").json()
        assert len(pending["deliveries"]) == 4
        assert all(d["attempts"] >= 3 and d["last_error"] for d in pending["deliveries"])
        receiver.start()
        later = {(c3, "reported"), (b, "dispatched"), (b, "closed"), (c3, "closed")}
        _wait(lambda: len(receiver.at("/admin")) >= 9 and len(receiver.at("/town")) >= 4, 20)
        time.sleep(1.0)  # a duplicate would come now
        got = _verified(receiver.at("/admin"), SECRET_A)
        assert sorted((e, k) for e, k, _ in got) == sorted(first | later)
        ids = [d for _, _, d in got]
        assert len(ids) == len(set(ids)) == 9  # none duplicated, by delivery id
        town_got = _verified(receiver.at("/town"), SECRET_T)
        assert sorted((e, k) for e, k, _ in town_got) == sorted(
            [(a, "reported"), (a, "closed"), (c3, "reported"), (c3, "closed")]
        )
        listed = c.get(f"/subscriptions/{admin_sub}/deliveries?status=delivered").json()
        assert len(listed["deliveries"]) == 9
        assert c.get(f"/subscriptions/{admin_sub}/deliveries?status=dead").json() == {
            "deliveries": []
        }


def test_outbox_survives_a_restart_overdue_and_dead_letters(
    store: Store, tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    map_event_errors(monkeypatch)
    world = make_world(store)
    # A process without its delivery worker stores changes, then stops.
    with TestClient(_app(world, tmp_path, enabled=False)) as c:
        ok = _subscribe(c, receiver.url("/admin"), ["reported", "closed", "overdue"], SECRET_A)
        dead = _subscribe(c, receiver.url("/fail"), ["reported"], SECRET_T)
        eid = _report(c, world, 2)
        _move(c, eid, "self_handle")
        late = _report(c, world, 3)
    time.sleep(0.5)
    assert receiver.at("/admin") == []
    # Make the open event overdue (its time limit passed).
    store.update(
        "events",
        pd.DataFrame([{"id": late, "due_at": pd.Timestamp("2026-01-01T00:00:00Z")}]),
    )
    # The next process delivers what the first one stored.
    with TestClient(_app(world, tmp_path, max_attempts=3, backoff_s=0.1)) as c:
        _wait(lambda: len(receiver.at("/admin")) >= 4, 20)
        got = _verified(receiver.at("/admin"), SECRET_A)
        assert sorted((e, k) for e, k, _ in got) == sorted(
            [(eid, "reported"), (eid, "closed"), (late, "reported"), (late, "overdue")]
        )

        def dead_ones() -> list[dict[str, Any]]:
            r = c.get(f"/subscriptions/{dead}/deliveries?status=dead")
            out: list[dict[str, Any]] = r.json()["deliveries"]
            return out

        _wait(lambda: len(dead_ones()) == 2, 20)
        assert all(d["attempts"] == 3 and d["last_status"] == 500 for d in dead_ones())
        assert {d["event_id"] for d in dead_ones()} == {eid, late}
        time.sleep(0.6)  # the overdue event is announced once per time limit
        assert len(receiver.at("/admin")) == 4

        # Bad input and deletion.
        assert (
            c.post("/subscriptions", json={"url": "ftp://x/", "event_types": []}).status_code == 400
        )
        r = c.post("/subscriptions", json={"url": receiver.url("/x"), "event_types": ["nope"]})
        assert r.status_code == 400 and "event_types" in r.text
        r = c.post("/subscriptions", json={"url": receiver.url("/x"), "secret": "short"})
        assert r.status_code == 400
        assert c.get(f"/subscriptions/{ok}/deliveries?status=lost").status_code in (400, 422)
        assert c.delete(f"/subscriptions/{ok}").status_code == 204
        assert c.delete(f"/subscriptions/{ok}").status_code == 404
        _as(c, Principal("w", "grid_worker", (world.code(0),)))
        assert c.get("/subscriptions").status_code == 403


def test_private_hosts_are_refused_by_default(store: Store, tmp_path: Path) -> None:
    world = make_world(store)
    app = _app(world, tmp_path, allow_private_hosts=False, enabled=False)
    with TestClient(app) as c:
        r = c.post("/subscriptions", json={"url": "http://127.0.0.1:8080/hook"})
        assert r.status_code == 400 and "internal" in r.text
