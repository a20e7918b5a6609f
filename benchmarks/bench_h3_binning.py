"""H3 binning and heat-map latency, side by side in one run.

Part 1 — binning N points (default 10,000,000) at resolution 9, points/s:

- **ours**: :func:`gridmap.analytics.binning.bin_counts` (H3 C library over whole arrays
  through h3ronpy, then one group-by), and the cell step alone;
- **loop**: a plain Python loop over ``h3.latlng_to_cell`` with a ``Counter``,
  run on a sample (default 1,000,000 points) and extrapolated linearly to N
  (the loop's cost per point is constant) — the sample size is printed;
- **DuckDB**: its ``h3`` community extension is not shipped on PyPI and is
  never downloaded here, so DuckDB is compared on what it can do without it:
  ``GROUP BY`` over our precomputed cells (aggregation only, cells given).
  PostGIS has no H3 either (the ``h3-pg`` extension is not a Debian package
  here), so there is no PostGIS binning peer.

Part 2 — p50 latency of a full ``GET /heatmap?resolution=9&area=<town>``
(HTTP through FastAPI's TestClient: read, bin, protect, serialize) on each
store holding E synthetic events (default 1,000,000; loading them takes
minutes on PostGIS — use ``--events`` to go smaller). Events are synthetic,
uniform over the demo town's extent, all in one town. The request counts per
cell in SQL from the cells stored with each event (migration 011);
``benchmarks/bench_heatmap_request.py`` is the fuller run (events on real
streets, p50/p99, side by side with Python binning of the same rows).

Usage::

    python benchmarks/bench_h3_binning.py [--points N] [--loop-sample M]
        [--events E] [--repeat R] [--skip-latency]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

import duckdb
import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import shapely

from gridmap.analytics.binning import bin_counts
from gridmap.geo.h3cells import latlng_to_cells

# Central Helsinki, ~8 km x 4.5 km.
BOX = (24.90, 60.15, 24.98, 60.19)


def points(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {"lon": rng.uniform(BOX[0], BOX[2], n), "lat": rng.uniform(BOX[1], BOX[3], n)}
    )


def timed(fn, *args):  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t, out


def loop_counts(lon: np.ndarray, lat: np.ndarray) -> Counter[str]:
    c: Counter[str] = Counter()
    for x, y in zip(lon.tolist(), lat.tolist(), strict=True):
        c[h3.latlng_to_cell(y, x, 9)] += 1
    return c


def binning(n: int, sample: int) -> None:
    pts = points(n)
    bin_counts(pts.iloc[:1000], 9)  # warm up
    t_cells, cells = timed(latlng_to_cells, pts["lon"].to_numpy(), pts["lat"].to_numpy(), 9)
    t_ours, ours = timed(bin_counts, pts, 9)
    m = min(sample, n)
    t_loop_m, loop = timed(loop_counts, pts["lon"].to_numpy()[:m], pts["lat"].to_numpy()[:m])
    t_loop = t_loop_m * n / m
    check = bin_counts(pts.iloc[:m], 9).set_index("h3")["count"].to_dict()
    assert check == dict(loop), "vectorized counts differ from the loop"
    con = duckdb.connect()
    con.register("cells", pd.DataFrame({"cell": cells}))
    con.execute("CREATE TABLE c AS SELECT cell FROM cells")
    t_duck, _ = timed(lambda: con.execute("SELECT cell, count(*) FROM c GROUP BY cell").fetchall())
    con.close()
    print(f"\n== H3 binning, {n:,} points, resolution 9 ({len(ours):,} cells) ==")
    rows = [
        ("ours: cells only (h3ronpy)", t_cells),
        ("ours: bin_counts (cells + counts)", t_ours),
        (f"loop h3.latlng_to_cell + Counter (run on {m:,}, extrapolated)", t_loop),
        ("DuckDB GROUP BY over precomputed cells (aggregation only)", t_duck),
    ]
    for name, t in rows:
        print(f"{name:<66} {t:8.2f} s  {n / t / 1e6:8.2f} M points/s")
    print(f"ratio loop / ours (bin_counts): {t_loop / t_ours:.2f}x faster")
    print(f"ratio loop / ours (cells only): {t_loop / t_cells:.2f}x faster")
    print(
        f"ratio ours (bin_counts) / (ours cells + DuckDB GROUP BY): "
        f"{t_ours / (t_cells + t_duck):.2f}"
    )


def _events(n: int, grids: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(1)
    minx, miny, maxx, maxy = grids.total_bounds
    codes = grids["code"].to_numpy()
    # Synthetic events, uniform over the town's extent; grid codes drawn at random
    # (the benchmark measures reading and binning, not assignment).
    start = pd.Timestamp("2026-09-01T00:00:00Z")
    return gpd.GeoDataFrame(
        {
            "category": rng.choice(["safety_hazard", "city_management", "dispute"], n),
            "status": rng.choice(["reported", "handling", "closed"], n),
            "grid_code": rng.choice(codes, n),
            "reported_at": start + pd.to_timedelta(rng.uniform(0, 90, n), unit="D"),
            "synthetic": True,
            "source": "bench",
            "source_id": np.char.add("b", np.arange(n).astype(str)),
        },
        geometry=shapely.points(rng.uniform(minx, maxx, n), rng.uniform(miny, maxy, n)),
        crs=4326,
    )


def latency(n_events: int, repeat: int) -> None:
    from fastapi.testclient import TestClient

    from api.main import create_app
    from api.routers import analytics
    from api.security import get_principal
    from api.settings import Settings
    from gridmap.common.settings import StoreSettings
    from gridmap.demo.job import run_demo
    from gridmap.security.access import Principal
    from gridmap.storage import open_store
    from gridmap.storage.pgserver import pg_server

    demo = open_store(":memory:", migrate=True)
    run_demo(demo, events=0)
    layers = {k: demo.read(k).drop(columns="id") for k in ("admin_units", "grids")}
    demo.close()
    grids = layers["grids"]
    town = str(grids["code"].iloc[0])[:9]
    events = _events(n_events, grids)
    print(f"\n== GET /heatmap?resolution=9&area={town}: {n_events:,} synthetic events ==")

    def run(url: str, label: str) -> None:
        store = open_store(url, migrate=True)
        for name, frame in layers.items():
            store.write(name, frame)
        t_load, _ = timed(store.write, "events", events)
        app = create_app(Settings(store=StoreSettings(database_url=":memory:")), store=store)
        if not any(getattr(r, "path", None) == "/heatmap" for r in app.routes):
            app.include_router(analytics.router)
        admin = Principal("bench", "city_admin")
        app.dependency_overrides[get_principal] = lambda: admin
        times = []
        with TestClient(app) as client:
            for _ in range(repeat):
                t = time.perf_counter()
                r = client.get("/heatmap", params={"resolution": 9, "area": town})
                times.append(time.perf_counter() - t)
                assert r.status_code == 200, r.text
        store.close()
        cells = len(r.json()["features"])
        print(
            f"{label:<8} load {t_load:7.1f} s | p50 {statistics.median(times) * 1000:8.0f} ms "
            f"(min {min(times) * 1000:.0f}, n={repeat}, {cells} cells)"
        )

    with tempfile.TemporaryDirectory() as tmp:
        run(f"duckdb:///{Path(tmp) / 'bench.duckdb'}", "DuckDB")
    with pg_server() as server:
        import psycopg

        with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE bench")
        with psycopg.connect(server.url("bench"), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        run(server.url("bench"), "PostGIS")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=10_000_000)
    ap.add_argument("--loop-sample", type=int, default=1_000_000)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--skip-latency", action="store_true")
    args = ap.parse_args()
    print(
        f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}"
    )
    binning(args.points, args.loop_sample)
    if not args.skip_latency:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            latency(args.events, args.repeat)


if __name__ == "__main__":
    main()
