"""``/locate`` throughput: GET one point under fixed concurrency, POST 10,000 points.

One run, side by side, every server a real ``uvicorn`` process on loopback:

- **floor**: a FastAPI app whose ``GET /locate`` returns a constant 300-byte
  answer, no middleware, same uvicorn (httptools + uvloop when installed):
  the ceiling any FastAPI endpoint reaches on this machine. ``/locate``
  divided by floor says how close the lookup is to "free";
- **gridmap** ``gridmap serve`` over the embedded DuckDB store (1 worker) and
  over PostGIS (1 and 2 workers, ``--workers``), the demo world (the real
  Helsinki OSM extract divided into grids; events SYNTHETIC) or a larger
  synthetic city: the demo's grids, admin units, key areas and workers
  copied ``--copies`` times on a lattice with fresh codes.

The GET load comes from a separate process (``_http_load.py``: raw asyncio
sockets, keep-alive, ``--concurrency`` connections, random points inside
random grids' bounding boxes, anonymous caller). Reported: req/s, p50/p99
latency, and the server's CPU time per request (its process tree, from
/proc), which is what the machine's other work does not change much;
``capacity`` = cores / CPU per request. POST: ``--post-points`` random points
per request, ``--post-repeat`` requests, median wall time.

The load generator shares the machine's cores with the server (and with
anything else running): wall-clock req/s is a floor on what the server does
with the cores to itself.

Usage::

    python benchmarks/bench_locate.py [--seconds 5] [--concurrency 32] [--copies 1]
        [--only floor,duckdb,postgis,postgis2] [--post-points 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent.parent))

from _http_load import (  # noqa: E402
    asgi_scope,
    cpu_seconds,
    drive,
    free_port,
    process_tree,
    server,
)

CONTENDERS = ("floor", "duckdb", "postgis", "postgis2")
FLOOR_BODY = json.dumps(
    {
        "lon": 24.94,
        "lat": 60.17,
        "admin_units": [{"code": "990100", "name": "演示市", "level": "city"}],
        "grid": {"code": "990100001001008", "name": "第008网格", "community_code": "990100001001"},
        "workers": [{"role": "grid_worker"}],
        "key_areas": [{"id": 7, "name": "Rautatientori", "kind": "key_place", "distance_m": 43.7}],
    },
    ensure_ascii=False,
).encode()


def floor_app() -> Any:
    """The floor contender: FastAPI, one GET /locate answering a constant (uvicorn --factory)."""
    from fastapi import FastAPI, Response

    app = FastAPI()

    async def locate() -> Any:
        return Response(FLOOR_BODY, media_type="application/json")

    app.add_api_route("/locate", locate, methods=["GET"], response_model=None)
    return app


LOOKUP = ("grids", "admin_units", "key_areas", "workers")


def _enlarge(store: Any, copies: int) -> None:
    """Copy the demo's lookup layers *copies* - 1 times on a lattice, with fresh codes."""
    import numpy as np
    import pandas as pd
    import shapely

    if copies <= 1:
        return
    frames = {layer: store.read(layer) for layer in LOOKUP}
    side = int(np.ceil(np.sqrt(copies)))

    def recode(code: Any, c: int) -> Any:
        text = str(code) if code is not None else None
        if text is None or len(text) < 9:
            return code
        return text[:6] + f"{c + 1:03d}" + text[9:]

    for c in range(1, copies):
        dx, dy = (c % side) * 0.03, (c // side) * 0.02
        with store.transaction():
            for layer, frame in frames.items():
                out = frame.drop(columns=["id"]).copy()
                if layer == "admin_units":
                    out = out[out["level"] != "city"]
                for col in ("code", "community_code", "parent_code"):
                    if col in out:
                        out[col] = [recode(v, c) for v in out[col]]
                if layer == "workers":
                    out["grid_codes"] = [
                        [recode(g, c) for g in (v or [])] for v in out["grid_codes"]
                    ]
                    if "area_code" in out:
                        out["area_code"] = [recode(v, c) for v in out["area_code"]]
                out["source_id"] = [f"{s}@{c}" for s in out["source_id"].astype(str)]
                if "geometry" in out:
                    geoms = np.asarray(out.geometry.values)
                    out = out.set_geometry(
                        shapely.transform(geoms, lambda xy, a=dx, b=dy: np.add(xy, [a, b]))
                    )
                store.write(layer, pd.DataFrame(out) if "geometry" not in out else out)


def build_world(workdir: Path, copies: int) -> tuple[str, dict[str, int]]:
    """The demo world (and its copies) in a DuckDB file; its URL and layer counts."""
    from gridmap.demo.job import run_demo
    from gridmap.storage import open_store

    url = f"duckdb:///{workdir / 'world.duckdb'}"
    store = open_store(url, migrate=True)
    try:
        run_demo(store, events=50)
        _enlarge(store, copies)
        counts = {layer: store.count(layer) for layer in LOOKUP}
    finally:
        store.close()
    return url, counts


def copy_to_postgis(duck_url: str, pg_url: str) -> None:
    """Copy the lookup layers (ids kept) into a migrated PostGIS database."""
    from gridmap.storage import open_store

    src, dst = open_store(duck_url), open_store(pg_url, migrate=True)
    try:
        for layer in LOOKUP:
            dst.write(layer, src.read(layer))
    finally:
        src.close()
        dst.close()


def sample_points(duck_url: str, n: int, seed: int) -> list[tuple[float, float]]:
    """*n* random points, each inside the bounding box of a random current grid."""
    import numpy as np
    import shapely

    from gridmap.storage import open_store

    store = open_store(duck_url)
    try:
        grids = store.read("grids", where={"valid_to": None})
    finally:
        store.close()
    bounds = shapely.bounds(np.asarray(grids.geometry.values))
    rng = np.random.default_rng(seed)
    pick = bounds[rng.integers(0, len(bounds), n)]
    xs = rng.uniform(pick[:, 0], pick[:, 2])
    ys = rng.uniform(pick[:, 1], pick[:, 3])
    return list(zip(xs.tolist(), ys.tolist(), strict=True))


def post_timing(
    port: int, points: list[tuple[float, float]], repeat: int, pids: list[int]
) -> dict[str, float]:
    """Median wall seconds and server CPU seconds of POST /locate with *points*."""
    import orjson

    body = orjson.dumps({"points": [list(p) for p in points], "crs": "wgs84"})
    walls, cpus = [], []
    for _ in range(repeat + 1):  # the first one warms up
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/locate",
            data=body,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        c0, t0 = cpu_seconds(pids), time.perf_counter()
        with urllib.request.urlopen(req, timeout=120) as resp:
            data = resp.read()
        walls.append(time.perf_counter() - t0)
        cpus.append(cpu_seconds(pids) - c0)
        answer = orjson.loads(data)
        if answer["count"] != len(points):
            raise RuntimeError(f"POST /locate answered {answer['count']} of {len(points)}")
    return {"post_s": statistics.median(walls[1:]), "post_cpu_s": statistics.median(cpus[1:])}


def asgi_cost(duck_url: str, points: list[tuple[float, float]], n: int) -> dict[str, float]:
    """CPU microseconds per GET /locate called in-process (no HTTP, no client).

    The same application also gets a route answering a constant behind the
    same middleware, so ``locate - floor`` is what the lookup itself costs.
    Process CPU time is much less sensitive to other work on the machine
    than wall-clock throughput.
    """
    import asyncio

    from fastapi import Response

    from api.main import create_app
    from api.settings import Settings
    from gridmap.common.settings import StoreSettings
    from gridmap.storage import open_store

    store = open_store(duck_url)
    app = create_app(Settings(store=StoreSettings(database_url=duck_url)), store=store)

    async def constant() -> Any:
        return Response(FLOOR_BODY, media_type="application/json")

    app.add_api_route("/_floor", constant, methods=["GET"], response_model=None)

    def scope(path: str, query: str) -> dict[str, Any]:
        return asgi_scope("GET", path, query=query)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    statuses: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    queries = [f"lon={x:.6f}&lat={y:.6f}&crs=wgs84" for x, y in points]

    async def timed(path: str) -> float:
        for q in queries[:50]:
            await app(scope(path, q), receive, send)
        started = time.process_time()
        for i in range(n):
            await app(scope(path, queries[i % len(queries)]), receive, send)
        return (time.process_time() - started) / n * 1e6

    async def both() -> dict[str, float]:
        async with app.router.lifespan_context(app):
            return {"locate_us": await timed("/locate"), "floor_us": await timed("/_floor")}

    try:
        out = asyncio.run(both())
    finally:
        store.close()
    if set(statuses) != {200}:
        raise RuntimeError(f"in-process GETs answered {sorted(set(statuses))}")
    return out


@contextmanager
def _contender(which: str, *, port: int, duck_url: str, pg_url: str | None) -> Iterator[Any]:
    py = sys.executable
    ready = "/locate?lon=24.94&lat=60.17&crs=wgs84"
    if which == "floor":
        cmd = [
            py,
            "-m",
            "uvicorn",
            "--app-dir",
            str(HERE.parent),
            "--factory",
            "bench_locate:floor_app",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ]
        env: dict[str, str] = {}
    else:
        url = duck_url if which == "duckdb" else pg_url
        assert url is not None
        workers = "2" if which == "postgis2" else "1"
        cmd = [py, "-m", "gridmap", "serve", "--port", str(port), "--workers", workers]
        env = {"GRIDMAP_DATABASE_URL": url, "PYTHONPATH": str(HERE.parent.parent)}
    with server(cmd, port=port, ready_path=ready, env=env) as proc:
        yield proc


LABELS = {
    "floor": "floor: constant answer, FastAPI",
    "duckdb": "gridmap /locate DuckDB, 1 worker",
    "postgis": "gridmap /locate PostGIS, 1 worker",
    "postgis2": "gridmap /locate PostGIS, 2 workers",
}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Build the world, run every contender; return the results."""
    only = [c for c in args.only.split(",") if c] if args.only else list(CONTENDERS)
    unknown = set(only) - set(CONTENDERS)
    if unknown:
        raise SystemExit(f"unknown contender(s): {', '.join(sorted(unknown))}")
    results: dict[str, Any] = {}
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gridmap-loc-")))
        t0 = time.perf_counter()
        duck_url, counts = build_world(workdir, args.copies)
        results["world"] = {**counts, "build_s": time.perf_counter() - t0}
        pg_url = None
        if {"postgis", "postgis2"} & set(only):
            import psycopg

            from gridmap.storage.pgserver import pg_server

            pg = stack.enter_context(pg_server())
            with psycopg.connect(pg.url("postgres"), autocommit=True) as conn:
                conn.execute("CREATE DATABASE bench_locate")
            with psycopg.connect(pg.url("bench_locate"), autocommit=True) as conn:
                conn.execute("CREATE EXTENSION postgis")
            pg_url = pg.url("bench_locate")
            copy_to_postgis(duck_url, pg_url)
        points = sample_points(duck_url, 2000, seed=1)
        paths = [f"/locate?lon={x:.6f}&lat={y:.6f}&crs=wgs84" for x, y in points]
        post_points = sample_points(duck_url, args.post_points, seed=2)
        if args.in_process:
            results["in_process"] = asgi_cost(duck_url, points, args.in_process)
        for which in only:
            port = free_port()
            with _contender(which, port=port, duck_url=duck_url, pg_url=pg_url) as proc:
                res = drive(
                    paths,
                    port=port,
                    concurrency=args.concurrency,
                    seconds=args.seconds,
                    server_pid=proc.pid,
                )
                if which != "floor" and args.post_points:
                    res.update(
                        post_timing(port, post_points, args.post_repeat, process_tree(proc.pid))
                    )
            results[which] = res
    return results


def report(results: dict[str, Any], args: argparse.Namespace) -> None:
    """Print the table, the ratios and a SUMMARY line."""
    cores = os.cpu_count() or 1
    load = os.getloadavg()
    print(
        f"machine: {platform.machine()} {cores} cores, Python {platform.python_version()}, "
        f"load average {load[0]:.1f} (other work shares these cores)"
    )
    w = results["world"]
    print(
        f"world: {w['grids']} grids, {w['admin_units']} admin units, {w['key_areas']} key areas, "
        f"{w['workers']} workers (demo x{args.copies}); GET concurrency {args.concurrency}, "
        f"{args.seconds:g} s; client in its own process"
    )
    head = (
        f"{'contender':<38}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'CPU us/req':>11}"
        f"{'capacity':>10}{'POST s':>9}"
    )
    print(head)
    for which in CONTENDERS:
        r = results.get(which)
        if r is None:
            continue
        workers = 2 if which == "postgis2" else 1
        capacity = min(workers, cores) / (r["server_cpu_ms"] / 1000) if r["server_cpu_ms"] else 0
        post = f"{r['post_s']:>9.3f}" if "post_s" in r else f"{'-':>9}"
        print(
            f"{LABELS[which]:<38}{r['rps']:>8.0f}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}"
            f"{r['server_cpu_ms'] * 1000:>11.0f}{capacity:>10.0f}{post}"
        )
        r["capacity_rps"] = capacity
        bad = {k: v for k, v in r["statuses"].items() if k != "200"}
        if bad:
            print(f"  non-200 answers: {bad}")
    inproc = results.get("in_process")
    if inproc is not None:
        print(
            f"in-process CPU per GET (no HTTP, DuckDB): /locate {inproc['locate_us']:.0f} us, "
            f"a constant route in the same app {inproc['floor_us']:.0f} us: the lookup itself "
            f"costs {inproc['locate_us'] - inproc['floor_us']:.0f} us"
        )
    floor = results.get("floor")
    for which in ("duckdb", "postgis", "postgis2"):
        r = results.get(which)
        if r is not None and floor is not None:
            print(
                f"ratio {which}/floor: CPU per request "
                f"{r['server_cpu_ms'] / floor['server_cpu_ms']:.2f}, "
                f"req/s {r['rps'] / floor['rps']:.2f}"
            )
    for which in ("duckdb", "postgis", "postgis2"):
        r = results.get(which)
        if r is not None and "post_s" in r:
            print(
                f"POST {args.post_points:,} points ({which}): {r['post_s']:.3f} s wall, "
                f"{r['post_cpu_s']:.3f} s server CPU (goal < 0.5 s)"
            )
    if "postgis2" in results:
        r = results["postgis2"]
        print(
            f"goal GET >= 2,000 req/s and p99 < 20 ms on 2 cores: measured {r['rps']:.0f} req/s, "
            f"p99 {r['p99_ms']:.1f} ms wall (capacity from CPU/request: {r['capacity_rps']:.0f})"
        )
    print("SUMMARY " + json.dumps(results))


def main(argv: list[str]) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="Measured seconds per run.")
    parser.add_argument("--concurrency", type=int, default=32, help="Open connections.")
    parser.add_argument("--copies", type=int, default=1, help="Demo city copies (1: the demo).")
    parser.add_argument("--only", default="", help=f"Comma-separated subset of {CONTENDERS}.")
    parser.add_argument("--post-points", type=int, default=10_000, help="Points per POST.")
    parser.add_argument("--post-repeat", type=int, default=5, help="POSTs timed.")
    parser.add_argument(
        "--in-process", type=int, default=3000, help="In-process GETs timed (0: skip)."
    )
    args = parser.parse_args(argv)
    report(run(args), args)


if __name__ == "__main__":
    main(sys.argv[1:])
