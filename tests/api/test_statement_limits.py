"""Issue 25 (bounded work): a runaway statement is stopped, answered 503, nothing left running.

On PostGIS the server cancels it (``statement_timeout``; the process list
``pg_stat_activity`` shows no query left); on the embedded store the store's
watchdog interrupts the DuckDB cursors of the call (``interrupt()``), so the
process gives its CPU back at once and the store answers the next request.
The pathological ``LIKE`` of the red-team pass (the ``%_`` pair 2,000 times)
is refused before it reaches either database. Buildings are real OSM
buildings of Helsinki.
"""

from __future__ import annotations

import resource
import time
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from gridmap.common.settings import StoreSettings
from gridmap.storage import Store
from gridmap.storage.limits import StatementTimeout
from tests.logcapture import captured_logs

#: A DuckDB query that runs for minutes over many chunks (interrupted between them).
_DUCK_RUNAWAY = "SELECT sum(hash(i)) FROM range(100000000000) r(i) /* runaway */"
_PG_RUNAWAY = "SELECT pg_sleep(60) /* runaway */"


def _cpu_seconds() -> float:
    """CPU time of this process so far (every thread, DuckDB's workers included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _nothing_running(store: Store, fragment: str) -> None:
    """The store runs no query holding *fragment*: PostGIS's process list, DuckDB's CPU."""
    if store.dialect == "postgis":
        rows = store.sql(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
            "AND pid <> pg_backend_pid() AND position(%s in query) > 0",
            (fragment,),
        )
        assert rows[0][0] == 0
        return
    # DuckDB has no process list: a running query holds its worker threads busy.
    before, started = _cpu_seconds(), time.monotonic()
    time.sleep(1.0)
    used = _cpu_seconds() - before
    assert used < 0.5 * (time.monotonic() - started), f"{used:.2f} s of CPU in 1 s: still running"


def _runaway(store: Store) -> str:
    return _PG_RUNAWAY if store.dialect == "postgis" else _DUCK_RUNAWAY


def test_store_interrupts_a_runaway_statement(store: Store) -> None:
    store.set_statement_timeout(400)  # type: ignore[attr-defined]
    try:
        assert store.statement_timeout_ms == 400  # type: ignore[attr-defined]
        started = time.monotonic()
        with pytest.raises(StatementTimeout):
            store.sql(_runaway(store))
        assert time.monotonic() - started < 5
        _nothing_running(store, "runaway")
        started = time.monotonic()
        assert store.count("buildings") == 0  # usable again at once
        assert time.monotonic() - started < 1
        # inside a transaction: interrupted, rolled back, nothing written
        with pytest.raises(StatementTimeout), store.transaction():
            store.sql("SELECT 1")
            store.sql(_runaway(store))
        assert store.sql("SELECT 42") == [(42,)]
    finally:
        store.set_statement_timeout(None)  # type: ignore[attr-defined]
    assert store.statement_timeout_ms is None  # type: ignore[attr-defined]
    assert store.sql("SELECT 1") == [(1,)]  # no limit: nothing interrupts a short query


def test_bad_timeouts_are_refused(store: Store) -> None:
    from gridmap.common.errors import BadInput

    with pytest.raises(BadInput, match="milliseconds"):
        store.set_statement_timeout(-1)  # type: ignore[attr-defined]
    assert store.statement_timeout_ms is None  # type: ignore[attr-defined]


def test_api_answers_503_and_leaves_nothing_running(
    filled: Store, make_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = _runaway(filled)
    for method in ("feature_page", "read"):  # PostGIS pages its features in SQL
        if hasattr(filled, method):
            monkeypatch.setattr(filled, method, lambda *a, **k: filled.sql(slow))
    with TestClient(
        make_app(filled, store=StoreSettings(database_url=":memory:", statement_timeout_ms=300))
    ) as c:
        assert filled.statement_timeout_ms == 300  # type: ignore[attr-defined]
        started = time.monotonic()
        r = c.get("/collections/buildings/items")
        assert time.monotonic() - started < 5
        assert r.status_code == 503, r.text
        assert r.json()["code"] == "statement_timeout"
        assert r.headers["retry-after"]
        _nothing_running(filled, "runaway")
        monkeypatch.undo()
        started = time.monotonic()
        assert c.get("/collections/buildings/items?limit=1").status_code == 200
        assert time.monotonic() - started < 5
    filled.set_statement_timeout(None)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "path",
    ["/collections/buildings/items", "/collections/buildings/tiles/WebMercatorQuad/14/4742/9327"],
)
def test_pathological_like_of_2000_pairs(filled: Store, make_app: Any, path: str) -> None:
    """Anonymous, the red-team request: 400 within 5 s on both stores, nothing left running."""
    from api.main import create_app
    from tests.api.conftest import _settings

    with TestClient(create_app(_settings(), store=filled)) as c:  # no role: anonymous
        started = time.monotonic()
        r = c.get(f"{path}?filter=" + quote(f"name LIKE '{'%_' * 2000}'"))
        assert time.monotonic() - started < 5
        assert r.status_code in (400, 503), r.text[:200]
        assert "LIKE" in r.json()["description"]
    _nothing_running(filled, "LIKE")
    started = time.monotonic()
    assert filled.count("buildings") > 0
    assert time.monotonic() - started < 1


# -- a client that goes away: its DuckDB query is interrupted at once -----------


def test_cancel_scope_calls_back_once_and_only_its_own() -> None:
    """The token: callbacks run once on cancel, removed ones never, late ones at once."""
    from gridmap.storage.limits import CancelScope, cancel_scope, cancellable

    scope, calls = CancelScope(), []
    scope.on_cancel(lambda: calls.append("a"))
    removed = scope.on_cancel(lambda: calls.append("removed"))
    scope.on_cancel(lambda: 1 / 0)  # a failing callback stops no other
    scope.on_cancel(lambda: calls.append("b"))
    scope.remove(removed)
    assert not scope.cancelled and calls == []
    scope.cancel()
    scope.cancel()
    assert scope.cancelled and calls == ["a", "b"]
    scope.on_cancel(lambda: calls.append("late"))
    assert calls == ["a", "b", "late"]
    # one scope per context: a thread started from a copied context sees its own
    import contextvars
    import threading

    assert cancel_scope() is None
    seen: dict[str, object] = {}
    with cancellable() as outer:

        def look(name: str) -> None:
            seen[name] = cancel_scope()

        ctx = contextvars.copy_context()
        t = threading.Thread(target=ctx.run, args=(look, "copied"))
        t.start()
        t.join()
        bare = threading.Thread(target=look, args=("bare",))
        bare.start()
        bare.join()
    assert seen == {"copied": outer, "bare": None}
    assert cancel_scope() is None


def test_cancelling_a_scope_interrupts_only_its_own_duckdb_query(tmp_path: Any) -> None:
    """Two runaway queries in two scopes: cancelling one stops it, the other keeps running."""
    import threading

    from gridmap.storage import open_store
    from gridmap.storage.limits import CancelScope, QueryCancelled, cancellable

    store = open_store(f"duckdb:///{tmp_path / 'cancel.duckdb'}")
    try:
        scopes = {"a": CancelScope(), "b": CancelScope()}
        ended: dict[str, tuple[str, float]] = {}

        def run(name: str) -> None:
            with cancellable(scopes[name]):
                try:
                    store.sql(_DUCK_RUNAWAY)
                    ended[name] = ("finished", time.monotonic())
                except Exception as exc:
                    ended[name] = (type(exc).__name__, time.monotonic())

        threads = {n: threading.Thread(target=run, args=(n,), daemon=True) for n in scopes}
        for t in threads.values():
            t.start()
        time.sleep(0.5)
        assert ended == {}  # both running
        cancelled_at = time.monotonic()
        scopes["a"].cancel()
        threads["a"].join(2)
        assert ended["a"][0] == "QueryCancelled"
        assert ended["a"][1] - cancelled_at < 2
        time.sleep(1.0)
        assert "b" not in ended  # the other scope's query was not touched
        scopes["b"].cancel()
        threads["b"].join(2)
        assert ended["b"][0] == "QueryCancelled"
        _nothing_running(store, "runaway")
        # a cancelled scope starts no new statement; a fresh one runs normally
        with pytest.raises(QueryCancelled), cancellable(scopes["a"]):
            store.sql("SELECT 1")
        with cancellable():
            assert store.sql("SELECT 42") == [(42,)]
    finally:
        store.close()


def _send_request(base: str, path: str, request_id: str) -> Any:
    """Open a raw socket to *base* and send one GET; the caller closes it (or reads)."""
    import socket

    host, port = base.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nX-Request-ID: {request_id}\r\n\r\n".encode()
    )
    return sock


def test_client_disconnect_interrupts_its_duckdb_query(
    new_store: Store, make_app: Any, serve: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """uvicorn over DuckDB: two clients run a runaway query (the statement limit is 2 min);
    the one that hangs up after 0.5 s has its query interrupted within 5 s, answered
    499 in the access log and no error logged, while the other client's query keeps
    running until that client hangs up too; then the CPU is idle and the next request fast.
    """
    import logging

    import httpx

    from api.logs import REQUEST_ID

    ended: dict[str, tuple[str, float]] = {}

    def slow(*args: Any, **kwargs: Any) -> Any:
        rid = REQUEST_ID.get()
        try:
            return new_store.sql(_DUCK_RUNAWAY)
        except Exception as exc:
            ended[rid] = (type(exc).__name__, time.monotonic())
            raise

    for method in ("feature_page", "read"):
        if hasattr(new_store, method):
            monkeypatch.setattr(new_store, method, slow)
    with (
        captured_logs() as records,
        serve(
            make_app(
                new_store,
                store=StoreSettings(database_url=":memory:", statement_timeout_ms=120_000),
            )
        ) as base,
    ):
        assert new_store.statement_timeout_ms == 120_000  # type: ignore[attr-defined]
        leaver = _send_request(base, "/collections/buildings/items", "leaver")
        stayer = _send_request(base, "/collections/buildings/items", "stayer")
        try:
            time.sleep(0.5)
            assert ended == {}  # both queries running
            # They really run: a quarter of a CPU-second burnt (within 10 s, as a
            # loaded machine may give this process little of its two cores).
            before, t0 = _cpu_seconds(), time.monotonic()
            while _cpu_seconds() - before < 0.25 and time.monotonic() - t0 < 10:
                time.sleep(0.1)
            burnt = _cpu_seconds() - before
            assert burnt >= 0.25, f"the runaway queries burnt only {burnt:.2f} CPU-s in 10 s"
            leaver.close()
            closed = time.monotonic()
            while "leaver" not in ended and time.monotonic() - closed < 5:
                time.sleep(0.05)
            assert ended.get("leaver", ("still running",))[0] == "QueryCancelled"
            assert ended["leaver"][1] - closed < 5
            # the control: without a disconnect the other query keeps running
            time.sleep(1.5)
            assert "stayer" not in ended, ended
        finally:
            stayer.close()
        closed = time.monotonic()
        while "stayer" not in ended and time.monotonic() - closed < 5:
            time.sleep(0.05)
        assert ended.get("stayer", ("still running",))[0] == "QueryCancelled"
        _nothing_running(new_store, "runaway")
        monkeypatch.undo()
        started = time.monotonic()
        r = httpx.get(f"{base}/collections/buildings/items?limit=1", timeout=10)
        assert r.status_code == 200
        assert time.monotonic() - started < 5
    access = [r for r in records if r.name == "gridmap.access"]
    statuses = {getattr(r, "request_id", None): getattr(r, "status", None) for r in access}
    assert statuses.items() >= {"leaver": 499, "stayer": 499}.items(), statuses
    assert [r for r in records if r.levelno >= logging.ERROR] == []
