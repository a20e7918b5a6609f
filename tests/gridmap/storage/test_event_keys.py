"""One stored event per source key across the monthly partitions (migration 016, issue 11).

Events here are synthetic: a few points in Helsinki with chosen report times and statuses.
Every PostGIS test runs against the real server the test session starts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import pytest
import shapely

from gridmap.batch.archive import archive_month, ensure_partitions
from gridmap.storage import Store, WriteResult, open_store
from gridmap.storage._sql import migrations
from gridmap.storage.postgis import _EVENTS_CATALOG, PostGISStore

GRID = "990100001001001"
KEYS_VERSION = 16


def events(
    times: list[str | None],
    *,
    ids: list[str] | None = None,
    status: str | list[str] = "reported",
) -> gpd.GeoDataFrame:
    """Synthetic events, one per report time (``None``: no report time)."""
    n = len(times)
    return gpd.GeoDataFrame(
        {
            "category": "city_appearance",
            "status": status if isinstance(status, list) else [status] * n,
            "grid_code": GRID,
            "reported_at": pd.to_datetime(pd.Series(times, dtype=object), utc=True),
            "source": "test",
            "source_id": ids if ids is not None else [f"e{i}" for i in range(n)],
        },
        geometry=shapely.points(24.93 + np.arange(n) * 1e-5, np.full(n, 60.17)),
        crs=4326,
    )


def keys_match_events(store: Store) -> tuple[int, int, int]:
    """(keys, keys without an event, event keys without a row in event_keys)."""
    (row,) = store.sql(  # type: ignore[attr-defined]
        "SELECT (SELECT count(*) FROM event_keys), "
        "(SELECT count(*) FROM (SELECT source_key FROM event_keys "
        " EXCEPT SELECT source_key FROM events) a), "
        "(SELECT count(*) FROM (SELECT source_key FROM events "
        " EXCEPT SELECT source_key FROM event_keys) b)"
    )
    return int(row[0]), int(row[1]), int(row[2])


def assert_in_step(store: Store, keys: int) -> None:
    assert keys_match_events(store) == (keys, 0, 0)


#: Later migrations that only add columns to ``events`` (their SQL may run twice).
_EVENT_COLUMNS = ("event_observation", "event_reporter_encryption", "event_media_url")


def migrate_to(store: Store, version: int) -> int:
    """Migrate to *version*, plus the event columns added by later versions.

    The write path under test is the one of *version* (with or without
    ``event_keys``), but today's writer sends every column of today's model.
    """
    got = store.migrate(target=version)
    for mig in migrations("postgis"):
        if mig.version > version and mig.name in _EVENT_COLUMNS:
            store.sql(mig.sql)  # type: ignore[attr-defined]
    return got


@pytest.fixture
def pg(pg_migrated_url: str) -> Iterator[Store]:
    s = open_store(pg_migrated_url, migrate=True)
    yield s
    s.close()


def test_both_dialects_number_their_migrations_alike() -> None:
    pg_versions = [m.version for m in migrations("postgis")]
    assert pg_versions == [m.version for m in migrations("duckdb")]
    assert KEYS_VERSION in pg_versions
    assert "event_keys" in next(m.sql for m in migrations("postgis") if m.version == KEYS_VERSION)


def _waiting_on_a_lock(store: Store, timeout: float = 20.0) -> bool:
    """Does another session of this database wait for a lock (within *timeout*)?"""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        (row,) = store.sql(  # type: ignore[attr-defined]
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'"
        )
        if row[0]:
            return True
        time.sleep(0.05)
    return False


def _race(url: str, *, first_commits: bool) -> tuple[WriteResult, WriteResult, bool]:
    """Two stores (two pools, two connections) write one event with different report times.

    The first writes inside a transaction and holds it open until the second
    has started its write; then it commits (or rolls back). Returns both
    results and whether the second was seen waiting for the first.
    """
    a, b = open_store(url), open_store(url)
    wrote, release = threading.Event(), threading.Event()
    results: dict[str, WriteResult | BaseException] = {}

    class Rollback(Exception):
        pass

    def first() -> None:
        try:
            with a.transaction():
                results["a"] = a.write("events", events(["2026-09-15T12:00:00Z"], ids=["dup"]))
                wrote.set()
                release.wait(30)
                if not first_commits:
                    raise Rollback
        except Rollback:
            pass
        except BaseException as exc:
            results["a"] = exc
        finally:
            wrote.set()

    def second() -> None:
        try:
            results["b"] = b.write("events", events(["2026-10-15T12:00:00Z"], ids=["dup"]))
        except BaseException as exc:
            results["b"] = exc

    try:
        t1 = threading.Thread(target=first)
        t1.start()
        assert wrote.wait(30)
        t2 = threading.Thread(target=second)
        t2.start()
        waited = _waiting_on_a_lock(a, timeout=5.0)
        release.set()
        t1.join(30)
        t2.join(30)
        assert not t1.is_alive() and not t2.is_alive()
    finally:
        release.set()
        a.close()
        b.close()
    got_a, got_b = results["a"], results["b"]
    for name, got in (("a", got_a), ("b", got_b)):
        if isinstance(got, BaseException):
            raise AssertionError(f"writer {name} failed") from got
    assert isinstance(got_a, WriteResult) and isinstance(got_b, WriteResult)
    return got_a, got_b, waited


@pytest.mark.postgis
def test_concurrent_writers_of_one_source_key_store_it_once(pg_url: str) -> None:
    store = open_store(pg_url, migrate=True)
    try:
        # Both months exist beforehand: creating one inside a writer's transaction
        # locks all of events and would serialise the two writers by itself.
        assert ensure_partitions(store, ["2026-09", "2026-10"]) == 2
        first, second, waited = _race(pg_url, first_commits=True)
        assert waited, "the second writer never waited for the first"
        assert (first.inserted, second.inserted) == (1, 0)
        assert store.count("events") == 1
        assert_in_step(store, 1)
        # The stored one is the first writer's (September), in its month's partition.
        (row,) = store.sql("SELECT tableoid::regclass::text FROM events")  # type: ignore[attr-defined]
        assert row == ("events_2026_09",)

        # A writer that rolls back frees the key: the waiting one stores its event.
        store.sql("DELETE FROM events")  # type: ignore[attr-defined]
        assert_in_step(store, 0)
        first, second, waited = _race(pg_url, first_commits=False)
        assert waited
        assert second.inserted == 1
        (row,) = store.sql("SELECT tableoid::regclass::text FROM events")  # type: ignore[attr-defined]
        assert row == ("events_2026_10",)
        assert_in_step(store, 1)
    finally:
        store.close()


@pytest.mark.postgis
def test_before_event_keys_the_same_writers_stored_it_twice(pg_url: str) -> None:
    """The race of issue 11 is real: one version earlier (the NOT EXISTS probe) both writes land."""
    store = open_store(pg_url)
    try:
        assert migrate_to(store, KEYS_VERSION - 1) == KEYS_VERSION - 1
        ensure_partitions(store, ["2026-09", "2026-10"])
        first, second, waited = _race(pg_url, first_commits=True)
        assert not waited
        assert (first.inserted, second.inserted) == (1, 1)
        assert store.count("events") == 2
        # Upgrading keeps both rows and records the key once.
        assert store.migrate() >= KEYS_VERSION
        assert store.count("events") == 2
        assert keys_match_events(store) == (1, 0, 0)
        # From now on the key is taken in every month.
        again = store.write("events", events(["2026-11-15T12:00:00Z"], ids=["dup"]))
        assert again.inserted == 0
    finally:
        store.close()


@pytest.mark.postgis
def test_migration_backfills_the_keys_of_every_area(pg_url: str) -> None:
    old = open_store(pg_url)
    try:
        assert migrate_to(old, KEYS_VERSION - 1) == KEYS_VERSION - 1
        times = ["2026-09-15T12:00:00Z", "2026-10-15T12:00:00Z", None]
        assert old.write("events", events(times)).inserted == 3
        other = events(["2026-09-16T12:00:00Z"], ids=["far"])
        other["grid_code"] = "990100002001001"
        assert old.write("events", other).inserted == 1
    finally:
        old.close()
    # An untrusted store (the API's login) sees no area: the backfill must not depend on it.
    untrusted = PostGISStore(pg_url, trusted=False)
    try:
        assert untrusted.migrate() >= KEYS_VERSION
    finally:
        untrusted.close()
    new = open_store(pg_url)
    try:
        assert_in_step(new, 4)
        # Re-sent reports with new report times, including the one without a time.
        resent = events(["2027-01-01T00:00:00Z"] * 3)
        assert new.write("events", resent).inserted == 0
        assert new.count("events") == 4
    finally:
        new.close()


@pytest.mark.postgis
def test_event_keys_follow_every_write_path(pg: Store) -> None:
    # A large first write into the empty table: the bulk COPY path (a trigger adds the keys).
    months = ["2026-09-15T12:00:00Z"] * 12_000 + ["2026-10-15T12:00:00Z"] * 9_000
    assert pg.write("events", events(months)).inserted == 21_000  # type: ignore[arg-type]
    assert_in_step(pg, 21_000)
    # The same reports re-sent with other report times: nothing stored twice.
    moved = events(["2026-11-15T12:00:00Z"] * 50)
    assert pg.write("events", moved).inserted == 0
    # The staged insert: new keys are claimed and stored, in any month.
    fresh = events(["2026-11-15T12:00:00Z", None], ids=["n1", "n2"])
    assert pg.write("events", fresh).inserted == 2
    assert_in_step(pg, 21_002)
    # Rows inserted by hand get their keys too.
    with pg.transaction():
        pg.sql(  # type: ignore[attr-defined]
            "INSERT INTO events (source_key, status, grid_code, reported_at, geometry) "
            "SELECT 'raw:' || i, 'reported', %s, '2027-03-05T00:00:00Z', "
            "ST_SetSRID(ST_MakePoint(24.93, 60.17), 4326) FROM generate_series(1, 3) i",
            [GRID],
        )
    assert_in_step(pg, 21_005)
    # Creating a month moves rows out of DEFAULT; their keys stay.
    assert ensure_partitions(pg, ["2027-03"]) == 1
    assert_in_step(pg, 21_005)
    # Deleting events frees their keys: written again, they are stored again.
    assert pg.delete("events", where={"source_id": ["n1", "n2"]}) == 2
    assert_in_step(pg, 21_003)
    assert pg.write("events", fresh).inserted == 2
    # A key changed by hand follows.
    pg.sql("UPDATE events SET source_key = 'renamed' WHERE source_key = 'raw:1'")  # type: ignore[attr-defined]
    assert_in_step(pg, 21_005)
    assert pg.sql("SELECT count(*) FROM event_keys WHERE source_key = 'raw:1'") == [(0,)]  # type: ignore[attr-defined]
    # Replacing the layer replaces the keys.
    assert pg.write("events", events(["2026-09-01T00:00:00Z"]), mode="replace").inserted == 1
    assert_in_step(pg, 1)
    pg.sql("TRUNCATE events")  # type: ignore[attr-defined]
    assert_in_step(pg, 0)


@pytest.mark.postgis
def test_scoped_writers_claim_keys_without_seeing_them(pg: Store) -> None:
    other = events(["2026-09-15T12:00:00Z"], ids=["shared"])
    other["grid_code"] = "990100002001001"
    assert pg.write("events", other).inserted == 1
    with pg.scoped([GRID[:9]]):
        assert pg.count("events") == 0  # the other area is out of sight
        # The application role has no privilege on the table of keys …
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            pg.sql("SELECT count(*) FROM event_keys")  # type: ignore[attr-defined]
    with pg.scoped([GRID[:9]]):
        # … yet its writes claim keys: its own are stored, the other area's key is taken.
        mine = events(["2026-10-15T12:00:00Z", "2026-10-15T12:00:00Z"], ids=["m1", "shared"])
        assert pg.write("events", mine).inserted == 1
    assert_in_step(pg, 2)
    assert pg.count("events") == 2


@pytest.mark.parametrize("version", [KEYS_VERSION - 1, KEYS_VERSION])
@pytest.mark.postgis
def test_reimporting_an_archived_event_behaves_as_before(
    pg_url: str, tmp_path: Path, version: int
) -> None:
    """Archived (closed) events leave the store with their keys: a re-import stores them again.

    Run one version before event_keys and with it: the same answers.
    """
    store = open_store(pg_url)
    try:
        assert migrate_to(store, version) == version
        statuses = ["closed", "reported", "merged", "dispatched"]
        sept = events(["2026-09-15T12:00:00Z"] * 4, status=statuses)
        assert store.write("events", sept).inserted == 4
        summary = archive_month(store, "2026-09", tmp_path / "archive")
        assert (summary.rows, summary.kept_open) == (2, 2)
        assert store.count("events") == 2
        if version >= KEYS_VERSION:
            assert_in_step(store, 2)
        # The same four reports again: the two archived ones are stored anew, the open ones not.
        assert store.write("events", sept).inserted == 2
        assert store.count("events") == 4
        # … and not a third time, in any month.
        later = events(["2026-12-15T12:00:00Z"] * 4, status=statuses)
        assert store.write("events", later).inserted == 0
        if version >= KEYS_VERSION:
            assert_in_step(store, 4)
    finally:
        store.close()


@pytest.mark.postgis
def test_the_events_catalog_is_read_once_per_connection(pg_url: str) -> None:
    store = open_store(pg_url)
    try:
        migrate_to(store, KEYS_VERSION - 1)
        # Not in its final shape yet (no event_keys): asked again on every write.
        with store.transaction(), store._conn() as conn:  # type: ignore[attr-defined]
            assert store.write("events", events(["2026-09-15T12:00:00Z"])).inserted == 1
            assert conn not in _EVENTS_CATALOG
        store.migrate()
        # The store opened before the upgrade claims keys on its next write, and
        # keeps the answer for that connection.
        with store.transaction(), store._conn() as conn:  # type: ignore[attr-defined]
            assert store.write("events", events(["2026-10-15T12:00:00Z"])).inserted == 0
            assert _EVENTS_CATALOG.get(conn) == (True, True)
        assert keys_match_events(store) == (1, 0, 0)
    finally:
        store.close()
