"""The pool's liveness round trip is skipped for a connection back within a second (issue 22).

``PostGISStore.transaction`` takes a connection that came back to the pool
less than :data:`~gridmap.storage.postgis.RECENT_S` ago without the pool's
check: its ``BEGIN`` is the probe. A connection that died meanwhile (its
session terminated, the server restarted) still never fails the caller: the
failed ``BEGIN`` sends it back to be discarded and a checked one is taken.
Real PostgreSQL; the pool's check is counted, not replaced.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from gridmap.storage.pgserver import PgServer
from gridmap.storage.postgis import PostGISStore
from tests.conftest import fresh_pg_url

pytestmark = pytest.mark.postgis


@pytest.fixture
def store(pg_server: PgServer) -> Iterator[PostGISStore]:
    with fresh_pg_url(pg_server, migrated=True) as url:
        s = PostGISStore(url, min_size=1, max_size=2, timeout=5.0)
        s.sql("CREATE TABLE IF NOT EXISTS probe_rows (n int)")
        try:
            yield s
        finally:
            s.close()


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many times the pool's liveness round trip ran (the real one still runs)."""
    calls: list[int] = []
    real = ConnectionPool.check_connection

    def counted(conn: Any) -> None:
        calls.append(1)
        real(conn)

    monkeypatch.setattr(ConnectionPool, "check_connection", staticmethod(counted))
    return calls


def _insert(store: PostGISStore, n: int) -> None:
    with store.transaction(), store._conn() as conn:
        conn.execute("INSERT INTO probe_rows VALUES (%s)", (n,))


def _warm(store: PostGISStore) -> None:
    """Use every connection the pool has opened (a new one is checked once)."""
    for i in range(5):
        _insert(store, -i)
    store.sql("DELETE FROM probe_rows")


def _back_to_back(
    store: PostGISStore, checks: list[int], write: Callable[[PostGISStore, int], None]
) -> None:
    """Eleven writes, the last ten back to back: at most a few of them are checked."""
    _warm(store)
    write(store, 1)
    before = len(checks)
    for i in range(2, 12):
        write(store, i)
    # Back to back: the writes take connections returned just now, without the
    # check (without the skip all ten would be checked). A loaded machine may stall a
    # second between two of them, and the pool hands out its connections in turn: a
    # few checks are allowed, not ten.
    assert len(checks) - before <= 3, len(checks) - before


def test_recent_connection_skips_the_check(store: PostGISStore, checks: list[int]) -> None:
    _back_to_back(store, checks, _insert)
    assert store.sql("SELECT count(*) FROM probe_rows")[0][0] == 11


def test_idle_connection_is_checked(
    store: PostGISStore, checks: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    import gridmap.storage.postgis as postgis

    monkeypatch.setattr(postgis, "RECENT_S", 0.05)
    _insert(store, 1)
    time.sleep(0.2)
    before = len(checks)
    _insert(store, 2)
    assert len(checks) == before + 1


def test_reads_outside_transactions_keep_the_check(store: PostGISStore, checks: list[int]) -> None:
    _insert(store, 1)
    before = len(checks)
    store.sql("SELECT count(*) FROM probe_rows")
    assert len(checks) == before + 1


def _terminate_others(url: str) -> None:
    """End every other session of the database and wait until they are gone."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        for _ in range(200):
            (n,) = conn.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchone() or (0,)
            if n == 0:
                return
            time.sleep(0.01)
    raise AssertionError("sessions still alive")


def test_dead_recent_connection_is_replaced_not_failed(
    store: PostGISStore, checks: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    import gridmap.storage.postgis as postgis

    # "Recent" for the whole test: a loaded machine may stall a second between two
    # writes, and the last check below (no probe once the pool is healthy) is exact.
    monkeypatch.setattr(postgis, "RECENT_S", 60.0)
    _warm(store)
    _insert(store, 1)
    _terminate_others(store.url)  # the pooled connection, returned just now, is dead
    before = len(checks)
    _insert(store, 2)  # BEGIN fails on the dead one: discarded, a checked one is used
    assert len(checks) > before
    assert sorted(r[0] for r in store.sql("SELECT n FROM probe_rows")) == [1, 2]
    # And the pool is healthy again: back to back without checks.
    _warm(store)
    _insert(store, 3)
    before = len(checks)
    _insert(store, 4)
    assert len(checks) == before
    assert store.sql("SELECT n FROM probe_rows") == [(3,), (4,)]


# -- one statement on its own (report intake's two statements) ------------------------


def _one(store: PostGISStore, n: int) -> None:
    row = store.one_statement("INSERT INTO probe_rows VALUES (%s) RETURNING n", (n,))
    assert row == (n,)


def test_one_statement_commits_by_itself_without_the_check(
    store: PostGISStore, checks: list[int]
) -> None:
    _back_to_back(store, checks, _one)
    # Committed: another session sees every row at once.
    with psycopg.connect(store.url) as other:
        seen = other.execute("SELECT count(*) FROM probe_rows").fetchone()
    assert seen == (11,)
    # The connections go back to the pool ready for transactions (autocommit off).
    _insert(store, 99)
    assert store.sql("SELECT count(*) FROM probe_rows")[0][0] == 12


def test_one_statement_on_a_dead_recent_connection_is_sent_again(
    store: PostGISStore, checks: list[int]
) -> None:
    _warm(store)
    _one(store, 1)
    _terminate_others(store.url)
    before = len(checks)
    _one(store, 2)  # the dead connection fails it; sent once more on a checked one
    assert len(checks) > before
    assert sorted(r[0] for r in store.sql("SELECT n FROM probe_rows")) == [1, 2]


def test_one_statement_joins_a_transaction(store: PostGISStore) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        _one(store, 1)
        raise RuntimeError("roll back")
    assert store.sql("SELECT count(*) FROM probe_rows")[0][0] == 0


def test_one_statement_error_on_a_live_connection_is_not_resent(store: PostGISStore) -> None:
    from gridmap.storage.base import StoreUnavailable

    _warm(store)
    store.sql("CREATE TABLE IF NOT EXISTS probe_once (n int PRIMARY KEY)")
    store.one_statement("INSERT INTO probe_once VALUES (1)")
    with pytest.raises(psycopg.errors.UniqueViolation):
        store.one_statement("INSERT INTO probe_once VALUES (1)")
    # A serialization-type failure (OperationalError) on a live session surfaces once.
    with pytest.raises(StoreUnavailable):
        store.one_statement(
            "DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '40P01', MESSAGE = 'deadlock' ; END $$"
        )
    assert store.sql("SELECT count(*) FROM probe_once")[0][0] == 1
