"""Issue 25 (bounded work): a client that goes away cancels its PostGIS statement.

The API gives every request a :class:`~gridmap.storage.limits.CancelScope`
(``api.middleware.CancelOnDisconnect``); the PostGIS store registers each
pooled connection it takes on that scope and cancels the statement running
on it (``psycopg.Connection.cancel_safe``) when the client disconnects. The
server's process list (``pg_stat_activity``) is the witness: the statement
of the client that left is gone within seconds, well before the (raised)
``statement_timeout``, while another client's statement keeps running, and
the pool's connections come back idle, so the next request succeeds.
Buildings are real OSM buildings of Helsinki.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import geopandas as gpd
import httpx
import psycopg
import pytest

from api.logs import REQUEST_ID
from gridmap.common.settings import StoreSettings
from gridmap.storage.limits import CancelScope, QueryCancelled, cancellable
from gridmap.storage.postgis import PostGISStore
from tests.api.test_statement_limits import _send_request
from tests.logcapture import captured_logs

pytestmark = pytest.mark.postgis


@pytest.fixture
def pg_store(pg_url: str, dataset: dict[str, gpd.GeoDataFrame]) -> Iterator[PostGISStore]:
    """A migrated PostGIS store holding the real Helsinki buildings."""
    store = PostGISStore(pg_url)
    try:
        store.migrate()
        store.write("buildings", dataset["buildings"])
        yield store
    finally:
        store.close()


def _running(url: str, marker: str) -> int:
    """Active statements holding *marker* in the server's process list (other sessions)."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
            "AND pid <> pg_backend_pid() AND position(%s in query) > 0",
            (marker,),
        ).fetchone()
    return int(row[0]) if row else 0


def _stuck_in_transaction(url: str) -> int:
    """Sessions of this database left inside a transaction (a dirty pooled connection)."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'"
        ).fetchone()
    return int(row[0]) if row else 0


def _until(check: Any, seconds: float) -> float:
    """Poll *check* until true; the seconds it took (fails after *seconds*)."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < seconds, f"not within {seconds} s"
        time.sleep(0.05)
    return time.monotonic() - started


def test_cancelling_a_scope_cancels_only_its_own_postgis_statement(
    pg_store: PostGISStore,
) -> None:
    """Two sleeping statements in two scopes: cancelling one stops it, not the other."""
    pg_store.set_statement_timeout(120_000)  # the server's own limit is far away
    scopes = {"a": CancelScope(), "b": CancelScope()}
    ended: dict[str, str] = {}

    def run(name: str) -> None:
        with cancellable(scopes[name]):
            try:
                pg_store.sql(f"SELECT pg_sleep(120) /* scoped-{name} */")
                ended[name] = "finished"
            except Exception as exc:
                ended[name] = type(exc).__name__

    threads = {n: threading.Thread(target=run, args=(n,), daemon=True) for n in scopes}
    try:
        for t in threads.values():
            t.start()
        _until(lambda: _running(pg_store.url, "scoped-a") and _running(pg_store.url, "scoped-b"), 5)
        scopes["a"].cancel()
        threads["a"].join(3)
        assert ended.get("a") == "QueryCancelled"
        assert _running(pg_store.url, "scoped-a") == 0
        time.sleep(0.5)
        assert "b" not in ended and _running(pg_store.url, "scoped-b") == 1
        # inside a transaction: the statement is cancelled, the writes before it rolled back
        marker = "cancelled-in-tx"
        scope = CancelScope()

        def in_transaction() -> None:
            with cancellable(scope):
                try:
                    with pg_store.transaction():
                        pg_store.sql(
                            "INSERT INTO audit_log (source_key, actor, action, target) "
                            "VALUES (%s, 'test', 'test', %s)",
                            [marker, marker],
                        )
                        pg_store.sql("SELECT pg_sleep(120) /* scoped-tx */")
                    ended["tx"] = "finished"
                except Exception as exc:
                    ended["tx"] = type(exc).__name__

        tx = threading.Thread(target=in_transaction, daemon=True)
        tx.start()
        _until(lambda: _running(pg_store.url, "scoped-tx"), 5)
        scope.cancel()
        tx.join(3)
        assert ended.get("tx") == "QueryCancelled"
        assert pg_store.count("audit_log", where={"target": marker}) == 0
    finally:
        for s in scopes.values():
            s.cancel()
        for t in threads.values():
            t.join(3)
    assert ended["b"] == "QueryCancelled"
    assert _running(pg_store.url, "scoped-") == 0
    # a cancelled scope starts no new statement; a fresh one runs; the pool is clean
    with pytest.raises(QueryCancelled), cancellable(scopes["a"]):
        pg_store.sql("SELECT 1")
    with cancellable():
        assert pg_store.sql("SELECT 42") == [(42,)]
    assert _stuck_in_transaction(pg_store.url) == 0
    assert pg_store.count("buildings") > 0
    pg_store.set_statement_timeout(None)


def test_client_disconnect_cancels_its_postgis_statement(
    pg_store: PostGISStore, make_app: Any, serve: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """uvicorn over PostGIS, statement_timeout raised to 2 min: two clients each run a
    slow items query; the one that hangs up after 1 s leaves no active statement in
    ``pg_stat_activity`` within 5 s (access log 499, no error logged), the other's keeps
    running until it hangs up too; then the pool is clean and the next request succeeds.
    """
    ended: dict[str, str] = {}
    # Inside the request's scoped transaction the statement fails with psycopg's
    # QueryCanceled; the store turns it into QueryCancelled when the transaction
    # ends (the access log's 499 below; a statement_timeout would be a 503).
    cancelled = {"QueryCancelled", "QueryCanceled"}

    def slow(*args: Any, **kwargs: Any) -> Any:
        rid = REQUEST_ID.get()
        try:
            return pg_store.sql(f"SELECT pg_sleep(120) /* runaway {rid} */")
        except Exception as exc:
            ended[rid] = type(exc).__name__
            raise

    for method in ("feature_page", "read"):
        monkeypatch.setattr(pg_store, method, slow)
    url = pg_store.url
    with (
        captured_logs() as records,
        serve(
            make_app(
                pg_store, store=StoreSettings(database_url=":memory:", statement_timeout_ms=120_000)
            )
        ) as base,
    ):
        assert pg_store.statement_timeout_ms == 120_000
        leaver = _send_request(base, "/collections/buildings/items", "leaver")
        stayer = _send_request(base, "/collections/buildings/items", "stayer")
        try:
            _until(lambda: _running(url, "runaway leaver") and _running(url, "runaway stayer"), 5)
            time.sleep(1.0)  # the client waits a second, then hangs up
            assert ended == {}
            leaver.close()
            took = _until(lambda: _running(url, "runaway leaver") == 0, 5)
            _until(lambda: "leaver" in ended, 5)
            assert ended["leaver"] in cancelled, ended
            # the control: without a disconnect the other statement keeps running
            time.sleep(1.0)
            assert "stayer" not in ended and _running(url, "runaway stayer") == 1
        finally:
            stayer.close()
        _until(lambda: _running(url, "runaway") == 0, 5)
        _until(lambda: "stayer" in ended, 5)
        assert ended["stayer"] in cancelled, ended
        monkeypatch.undo()
        for _ in range(3):  # every pooled connection came back usable
            r = httpx.get(f"{base}/collections/buildings/items?limit=1", timeout=10)
            assert r.status_code == 200, r.text
            assert len(r.json()["features"]) == 1
        assert _stuck_in_transaction(url) == 0
    print(f"leaver's statement gone {took:.2f} s after the disconnect")
    access = [r for r in records if r.name == "gridmap.access"]
    statuses = {getattr(r, "request_id", None): getattr(r, "status", None) for r in access}
    assert statuses.items() >= {"leaver": 499, "stayer": 499}.items(), statuses
    assert [r for r in records if r.levelno >= logging.ERROR] == []
