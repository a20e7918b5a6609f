"""Migration 019 (issue 17): observed_at, accuracy_m and reporter_grid_code on events.

On both stores: a store at version 16 holding events is upgraded in place;
the events keep every value and get NULL in the new columns. On PostGIS the
columns reach every monthly partition. Events here are synthetic.
"""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from gridmap.batch.archive import ensure_partitions
from gridmap.events.kpis import kpis
from gridmap.storage import Store, open_store

VERSION = 19
GRID = "990100001001001"
_SNAPSHOT = (
    "SELECT id, source_key, status, grid_code, reported_at, closed_at FROM events ORDER BY id"
)
_NEW = ("observed_at", "accuracy_m", "reporter_grid_code")


def _insert_v16(store: Store, key: str, at: str, closed: str | None) -> None:
    """An event as a version-16 store held it (SQL: today's model has more columns)."""
    if store.dialect == "duckdb":
        ph, point = "?", "ST_Point(?, ?)"
    else:
        ph, point = "%s", "ST_SetSRID(ST_MakePoint(%s, %s), 4326)"
    store.sql(  # type: ignore[attr-defined]
        "INSERT INTO events (source_key, source, source_id, category, status, grid_code, "
        f"reported_at, due_at, closed_at, geometry) VALUES ({ph}, 'test', {ph}, "
        f"'city_management', {ph}, {ph}, {ph}, {ph}, {ph}, {point})",
        [
            f"test:{key}",
            key,
            "closed" if closed else "reported",
            GRID,
            pd.Timestamp(at).to_pydatetime(),
            (pd.Timestamp(at) + pd.Timedelta(hours=120)).to_pydatetime(),
            None if closed is None else pd.Timestamp(closed).to_pydatetime(),
            24.94,
            60.17,
        ],
    )


def test_migration_019_keeps_events_and_adds_the_columns(store_url: str) -> None:
    store = open_store(store_url)
    try:
        assert store.migrate(target=16) == 16
        if store.dialect == "postgis":
            ensure_partitions(store, ["2026-09"])
        with store.transaction():
            _insert_v16(store, "a", "2026-09-10T00:00:00Z", "2026-09-14T00:00:00Z")
            _insert_v16(store, "b", "2026-09-11T00:00:00Z", None)
            _insert_v16(store, "c", "2027-03-01T00:00:00Z", None)  # DEFAULT on PostGIS
        before = store.sql(_SNAPSHOT)  # type: ignore[attr-defined]
        assert store.migrate() >= VERSION
        assert store.sql(_SNAPSHOT) == before  # type: ignore[attr-defined]
        events = store.read("events")
        assert len(events) == 3
        for col in _NEW:
            assert events[col].isna().all(), col
        # Without observed_at the KPIs count from reported_at, as before: 96 h, on time.
        row = kpis(events, by="grid", now=pd.Timestamp("2027-04-01", tz="UTC")).iloc[0]
        assert float(row["mean_hours_to_close"]) == 96.0 and float(row["on_time_rate"]) == 1.0
        assert pd.isna(row["mean_report_lag_h"])
        if store.dialect == "postgis":
            tables = store.sql(  # type: ignore[attr-defined]
                "SELECT table_name, count(*) FROM information_schema.columns "
                "WHERE column_name IN ('observed_at', 'accuracy_m', 'reporter_grid_code') "
                "AND table_name LIKE 'events%%' GROUP BY table_name ORDER BY table_name"
            )
            assert tables == [("events", 3), ("events_2026_09", 3), ("events_default", 3)]
        # The new columns are written and read through the store.
        new = gpd.GeoDataFrame(
            {
                "category": ["dispute"],
                "status": ["reported"],
                "grid_code": [GRID],
                "reported_at": pd.to_datetime(["2026-09-12T00:00:00Z"], utc=True),
                "observed_at": pd.to_datetime(["2026-09-11T21:00:00Z"], utc=True),
                "accuracy_m": [12.5],
                "reporter_grid_code": ["990100001001002"],
                "source": ["test"],
                "source_id": ["d"],
            },
            geometry=[shapely.Point(24.941, 60.17)],
            crs=4326,
        )
        assert store.write("events", new).inserted == 1
        got = store.read("events", where={"source_id": "d"}).iloc[0]
        assert got["observed_at"] == pd.Timestamp("2026-09-11T21:00:00Z")
        assert got["accuracy_m"] == 12.5 and got["reporter_grid_code"] == "990100001001002"
        assert store.migrate() == store.schema_version()  # applied once
    finally:
        store.close()


@pytest.mark.parametrize("dialect", ["duckdb", "postgis"])
def test_both_dialects_have_migration_019(dialect: str) -> None:
    from gridmap.storage._sql import migrations

    (mig,) = [m for m in migrations(dialect) if m.version == VERSION]
    assert all(col in mig.sql for col in _NEW)
