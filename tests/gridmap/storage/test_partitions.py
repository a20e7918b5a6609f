"""Events partitioned by month on PostGIS (migration 008) and the archive path (issue 11).

Events here are synthetic: a few points in Helsinki with chosen months and statuses.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import pyarrow.dataset as ds
import pytest
import shapely
from typer.testing import CliRunner

from gridmap.batch.archive import (
    archive_month,
    ensure_partitions,
    list_partitions,
    month_start,
    months_ahead,
)
from gridmap.cli import app
from gridmap.common.errors import BadInput
from gridmap.storage import Store, open_store
from gridmap.storage.partitions import AHEAD, month_starts, prepare_event_months

GRID = "990100001001001"
OTHER = "990100002001001"


def events(
    months: list[str | None],
    *,
    start: int = 0,
    status: str | list[str] = "reported",
    grid: str = GRID,
) -> gpd.GeoDataFrame:
    n = len(months)
    at = [None if m is None else f"{m}-15T12:00:00+00:00" for m in months]
    return gpd.GeoDataFrame(
        {
            "category": "city_appearance",
            "status": status if isinstance(status, list) else [status] * n,
            "grid_code": grid,
            "reported_at": pd.to_datetime(pd.Series(at, dtype=object), utc=True),
            "source": "test",
            "source_id": [f"e{start + i}" for i in range(n)],
        },
        geometry=shapely.points(24.93 + np.arange(n) * 1e-5, np.full(n, 60.17)),
        crs=4326,
    )


def partition_rows(store: Store) -> dict[str, int]:
    """Rows per partition; the months made ahead at open count only once they hold rows."""
    ahead = {f"{d:%Y-%m}" for d in month_starts(datetime.now(UTC).date(), AHEAD)}
    return {
        p.month or "DEFAULT": p.rows
        for p in list_partitions(store)
        if p.rows or p.month not in ahead
    }


def months_made(store: Store) -> set[str]:
    return {p.month for p in list_partitions(store) if p.month}


@pytest.fixture
def pg(pg_url: str) -> Store:
    s = open_store(pg_url, migrate=True)
    yield s  # type: ignore[misc]
    s.close()


@pytest.mark.postgis
def test_partitions_follow_the_months_written(pg: Store) -> None:
    assert pg.schema_version() >= 8
    assert partition_rows(pg) == {"DEFAULT": 0}
    first = pg.write("events", events(["2026-09", "2026-09", "2026-10", None]))
    assert first.inserted == 4
    assert partition_rows(pg) == {"2026-09": 2, "2026-10": 1, "DEFAULT": 1}
    # Idempotent on (source_key, reported_at), including the event without a report time.
    again = pg.write("events", events(["2026-09", "2026-09", "2026-10", None]))
    assert again.inserted == 0
    # A new month gets its own partition on first write.
    assert pg.write("events", events(["2027-01"], start=10)).inserted == 1
    assert partition_rows(pg)["2027-01"] == 1
    assert pg.count("events") == 5
    # Ids stay unique and keep counting after the upgrade's identity column.
    ids = pg.read("events")["id"].tolist()
    assert len(set(ids)) == 5
    # The months are pruned: a month's query scans its partition only.
    plan = "\n".join(
        r[0]
        for r in pg.sql(
            "EXPLAIN SELECT count(*) FROM events WHERE reported_at >= %s AND reported_at < %s",
            [pd.Timestamp("2026-10-01", tz="UTC"), pd.Timestamp("2026-11-01", tz="UTC")],
        )
    )
    assert "events_2026_10" in plan and "events_2026_09" not in plan


@pytest.mark.postgis
def test_partition_indexes_and_row_level_security(pg: Store) -> None:
    # A large first write takes the bulk COPY path (indexes dropped and rebuilt).
    months = ["2026-09"] * 12_000 + ["2026-10"] * 9_000
    assert pg.write("events", events(months)).inserted == 21_000  # type: ignore[arg-type]
    pg.write("events", events(["2026-10"], start=50_000, grid=OTHER))
    invalid = pg.sql("SELECT count(*) FROM pg_index WHERE NOT indisvalid")
    assert invalid == [(0,)]
    child = pg.sql("SELECT count(*) FROM pg_index WHERE indrelid = 'events_2026_10'::regclass")[0][
        0
    ]
    parent = pg.sql("SELECT count(*) FROM pg_index WHERE indrelid = 'events'::regclass")[0][0]
    assert child == parent >= 9  # GiST, grid_code, (grid_code, reported_at), the unique keys …
    kinds = pg.sql(
        "SELECT a.amname FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid "
        "JOIN pg_am a ON a.oid = c.relam WHERE x.indrelid = 'events_2026_10'::regclass"
    )
    assert ("gist",) in kinds
    rls = pg.sql(
        "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE relname = 'events'"
    )
    assert rls == [(True, True)]
    with pg.scoped([OTHER[:9]]):
        assert pg.count("events") == 1
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            pg.sql("SELECT count(*) FROM events_2026_10")
    with pg.scoped([GRID[:9]]):
        assert pg.count("events") == 21_000
        # A scoped writer creates a new month through the SECURITY DEFINER function.
        assert pg.write("events", events(["2027-02"], start=60_000)).inserted == 1
    assert partition_rows(pg)["2027-02"] == 1


@pytest.mark.postgis
def test_rows_in_default_move_to_a_new_month(pg: Store) -> None:
    pg.write("events", events(["2026-09"]))
    # Rows can reach DEFAULT when written around the store (e.g. a COPY by hand).
    with pg.transaction():
        pg.sql(
            "INSERT INTO events (source_key, status, grid_code, reported_at, geometry) "
            "SELECT 'raw:' || i, 'reported', %s, '2027-03-05T00:00:00Z', "
            "ST_SetSRID(ST_MakePoint(24.93, 60.17), 4326) FROM generate_series(1, 3) i",
            [GRID],
        )
    assert partition_rows(pg)["DEFAULT"] == 3
    assert ensure_partitions(pg, ["2027-03", "2026-09"]) == 1
    assert partition_rows(pg) == {"2026-09": 1, "2027-03": 3, "DEFAULT": 0}
    assert ensure_partitions(pg, months_ahead(month_start("2027-03"), 2)) == 2
    assert {"2027-04", "2027-05"} <= set(partition_rows(pg))


_V7_ROWS = [
    # source_key, status, reported_at (None: no report time), x
    ("test:e0", "closed", "2026-08-15T12:00:00Z", 24.930),
    ("test:e1", "reported", "2026-09-15T12:00:00Z", 24.931),
    ("test:e2", "merged", "2026-09-30T23:59:59Z", 24.932),
    ("test:e3", "reported", None, 24.933),
    ("test:e4", "closed", "2026-12-01T00:00:00Z", 24.934),
]
_SNAPSHOT = (
    "SELECT id, source_key, status, grid_code, reported_at, ST_AsText(geometry) "
    "FROM events ORDER BY id"
)


@pytest.mark.postgis
def test_init_upgrades_version_7_without_losing_events(pg_url: str) -> None:
    old = open_store(pg_url)
    try:
        assert old.migrate(target=7) == 7
        # Rows as a version-7 store held them (written in SQL: today's model has more columns).
        with old.transaction():
            for key, status, at, x in _V7_ROWS:
                old.sql(
                    "INSERT INTO events (source_key, source, source_id, status, grid_code, "
                    "reported_at, geometry) VALUES (%s, 'test', %s, %s, %s, %s, "
                    "ST_SetSRID(ST_MakePoint(%s, 60.17), 4326))",
                    [key, key.split(":")[1], status, GRID, at, x],
                )
        before = old.sql(_SNAPSHOT)
    finally:
        old.close()
    result = CliRunner().invoke(app, ["init", "--database-url", pg_url])
    assert result.exit_code == 0, result.output
    new = open_store(pg_url)
    try:
        assert new.schema_version() >= 8
        assert new.sql(_SNAPSHOT) == before
        assert partition_rows(new) == {"2026-08": 1, "2026-09": 2, "2026-12": 1, "DEFAULT": 1}
        # The identity goes on after the highest id moved over.
        new.write("events", events(["2026-10"], start=100))
        assert int(new.read("events")["id"].max()) == max(r[0] for r in before) + 1
        # Re-sending the stored reports (same source and report time) stores nothing twice.
        again = events(["2026-08", "2026-09"])
        again["reported_at"] = pd.to_datetime(
            ["2026-08-15T12:00:00Z", "2026-09-15T12:00:00Z"], utc=True
        )
        assert new.write("events", again).inserted == 0
    finally:
        new.close()


def test_archive_a_closed_month(store: Store, tmp_path: Path) -> None:
    statuses = ["closed", "reported", "merged", "closed", "rejected", "dispatched"]
    store.write("events", events(["2026-09"] * 6, status=statuses))
    store.write("events", events(["2026-10", "2026-10"], start=10, status="closed"))
    summary = archive_month(store, "2026-09", tmp_path / "archive", chunk_rows=2)
    assert (summary.month, summary.rows, summary.kept_open) == ("2026-09", 4, 2)
    files = sorted((tmp_path / "archive" / "events").rglob("*.parquet"))
    assert len(files) == summary.files >= 1
    assert all(f.parts[-3:-1] == ("month=2026-09", "county=990100") for f in files)
    archived = ds.dataset([str(f) for f in files], format="parquet").to_table().to_pandas()
    assert sorted(archived["status"]) == ["closed", "closed", "merged", "rejected"]
    left = store.read("events")
    assert len(left) == 4
    in_sept = left[left["reported_at"] < pd.Timestamp("2026-10-01", tz="UTC")]
    assert sorted(in_sept["status"]) == ["dispatched", "reported"]
    assert set(archived["id"]).isdisjoint(left["id"])
    if store.dialect == "postgis":
        # The month's partition is gone; its open events wait in DEFAULT.
        assert partition_rows(store) == {"2026-10": 2, "DEFAULT": 2}
    # Archiving again finds nothing closed and replaces no file.
    again = archive_month(store, "2026-09", tmp_path / "archive")
    assert (again.rows, again.files) == (0, 0)
    assert sorted((tmp_path / "archive" / "events").rglob("*.parquet")) == files
    with pytest.raises(BadInput, match="YYYY-MM"):
        archive_month(store, "2026-9", tmp_path / "archive")


@pytest.mark.postgis
def test_db_commands(pg_url: str, tmp_path: Path) -> None:
    s = open_store(pg_url, migrate=True)
    try:
        s.write("events", events(["2026-09", "2026-09"], status=["closed", "reported"]))
    finally:
        s.close()
    runner = CliRunner()
    listed = runner.invoke(app, ["db", "partitions", "--ahead", "1", "--database-url", pg_url])
    assert listed.exit_code == 0, listed.output
    assert "events_2026_09" in listed.output and "DEFAULT" in listed.output
    done = runner.invoke(
        app,
        ["db", "archive", "--month", "2026-09", "--out", str(tmp_path), "--database-url", pg_url],
    )
    assert done.exit_code == 0, done.output
    said = " ".join(done.output.split())  # rich wraps lines at the terminal's width
    assert "1 closed events archived" in said and "1 open events kept" in said
    bad = runner.invoke(
        app, ["db", "archive", "--month", "nope", "--out", str(tmp_path), "--database-url", pg_url]
    )
    assert bad.exit_code == 1 and "YYYY-MM" in bad.output


@pytest.mark.postgis
def test_months_are_made_before_writers_need_them(pg: Store) -> None:
    """A report of this month (or the next two) creates no partition mid-request.

    Creating one inside an intake transaction that had read ``events``
    deadlocked concurrent first reports of a fresh database (503s in
    ``benchmarks/load_reporters.py``): ``open_store(migrate=True)`` makes them ahead.
    """
    today = datetime.now(UTC).date()
    months = {f"{d:%Y-%m}" for d in month_starts(today, AHEAD)}
    assert months <= months_made(pg)
    assert prepare_event_months(pg) == 0  # nothing left to make
    # A month further ahead is made by the next call that looks that far.
    later = month_starts(today, AHEAD + 1)[-1]
    assert f"{later:%Y-%m}" not in months_made(pg)
    assert prepare_event_months(pg, ahead=AHEAD + 1) == 1
    assert f"{later:%Y-%m}" in months_made(pg)
