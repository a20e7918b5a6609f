"""Full ``GET /heatmap`` request for one town with N events in the store, on each store.

What is timed: one HTTP request through the real app (FastAPI ``TestClient``:
parse, scope, count per H3 cell, protect small counts, cell polygons, GeoJSON
out) for ``/heatmap?resolution=9&area=<town>`` as a city administrator (all
categories, so the small-count rule applies). p50 and p99 over ``--repeat``
requests after one warm-up, on a DuckDB file store and on a PostGIS store
(a throw-away server started from Debian's binaries, like
``bench_bulk_load.py``).

Side by side in the same run, on the same stores:

- **pushed down**: what the app does now — per-cell counts computed in SQL
  (``GROUP BY``) from the pre-binned ``h3_r7`` … ``h3_r11`` columns (filled on
  write, migration 011);
- **Python binning** (``--compare``): the same request after that
  resolution's cells are cleared (``NULL``, as for rows written before
  migration 011 and not yet backfilled), so every matching row's
  longitude/latitude/status travels to Python and is binned there.

Events are synthetic (seeded) and lie on the real streets and buildings of
the Helsinki demo extract (:func:`gridmap.demo.synthetic.synthetic_events`), with
their grid codes assigned from the demo grids.

Usage::

    python benchmarks/bench_heatmap_request.py [--events N] [--repeat R]
        [--stores duckdb,postgis] [--compare]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd


def world() -> dict[str, gpd.GeoDataFrame]:
    """Admin units, grids, roads and buildings of the Helsinki demo (real OSM geometry)."""
    from gridmap.demo.job import run_demo
    from gridmap.storage import open_store

    demo = open_store(":memory:", migrate=True)
    run_demo(demo, events=0)
    names = ("admin_units", "grids", "roads", "buildings")
    out = {k: demo.read(k).drop(columns="id") for k in names}
    demo.close()
    return out  # type: ignore[return-value]


def events_on_streets(layers: dict[str, gpd.GeoDataFrame], n: int) -> gpd.GeoDataFrame:
    """*n* seeded synthetic events on the real streets and buildings, grid codes assigned."""
    from gridmap.demo.synthetic import synthetic_events

    grids = layers["grids"]
    ev = synthetic_events(layers["roads"], layers["buildings"], n=n, seed=11, start="2026-01-01")
    tree_idx = gpd.GeoSeries(grids.geometry.to_numpy()).sindex
    pt_idx, grid_idx = tree_idx.query(ev.geometry.to_numpy(), predicate="intersects")
    first = pd.Series(grid_idx, index=pt_idx).groupby(level=0).first()
    codes = np.full(n, None, dtype=object)
    codes[first.index.to_numpy()] = grids["code"].to_numpy()[first.to_numpy()]
    ev["grid_code"] = codes
    return ev


def percentiles(times: list[float]) -> tuple[float, float]:
    """p50 and p99 (nearest rank) in milliseconds."""
    arr = np.sort(np.asarray(times)) * 1000.0
    p99 = float(arr[min(len(arr) - 1, int(np.ceil(0.99 * len(arr))) - 1)])
    return float(statistics.median(arr.tolist())), p99


def timed_requests(client: Any, params: dict[str, Any], repeat: int) -> tuple[list[float], Any]:
    """Time *repeat* GET /heatmap requests after one warm-up; return times and the last body."""
    r = client.get("/heatmap", params=params)
    assert r.status_code == 200, r.text
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        r = client.get("/heatmap", params=params)
        times.append(time.perf_counter() - t)
        assert r.status_code == 200, r.text
    return times, r.json()


@contextmanager
def postgis_url() -> Iterator[str]:
    """A fresh PostGIS database on a throw-away server."""
    import psycopg

    from gridmap.storage.pgserver import pg_server

    with pg_server(fast=True, shared_buffers="1GB") as server:
        with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE bench")
        with psycopg.connect(server.url("bench"), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        yield server.url("bench")


@contextmanager
def duckdb_url() -> Iterator[str]:
    """A DuckDB file in a temporary directory."""
    with tempfile.TemporaryDirectory() as tmp:
        yield f"duckdb:///{Path(tmp) / 'bench.duckdb'}"


def run_store(
    label: str,
    url: str,
    layers: dict[str, gpd.GeoDataFrame],
    events: gpd.GeoDataFrame,
    params: dict[str, Any],
    repeat: int,
    compare: bool,
    report: Callable[[str], None],
) -> None:
    """Load the layers and events into the store at *url* and time the request."""
    from fastapi.testclient import TestClient

    from api.main import create_app
    from api.routers import analytics
    from api.security import get_principal
    from api.settings import Settings
    from gridmap.common.settings import StoreSettings
    from gridmap.security.access import Principal
    from gridmap.storage import open_store

    store = open_store(url, migrate=True)
    for name in ("admin_units", "grids"):
        store.write(name, layers[name])
    t = time.perf_counter()
    res = store.write("events", events)
    t_load = time.perf_counter() - t
    assert res.inserted == len(events), res
    if store.dialect == "postgis":
        store.sql("ANALYZE events")  # type: ignore[attr-defined]
    app = create_app(Settings(store=StoreSettings(database_url=":memory:")), store=store)
    if not any(getattr(r, "path", None) == "/heatmap" for r in app.routes):
        app.include_router(analytics.router)
    admin = Principal("bench", "city_admin")
    app.dependency_overrides[get_principal] = lambda: admin
    with TestClient(app) as client:
        times, doc = timed_requests(client, params, repeat)
        p50, p99 = percentiles(times)
        total = sum(f["properties"]["count"] for f in doc["features"])
        report(
            f"{label:<8} pushed down    | load {t_load:6.1f} s | p50 {p50:7.0f} ms "
            f"p99 {p99:7.0f} ms (n={repeat}) | {len(doc['features'])} cells, "
            f"{total:,} events shown"
        )
        if compare and _has_column():
            column = f"h3_r{int(params['resolution'])}"
            store.sql(f"UPDATE events SET {column} = NULL")  # type: ignore[attr-defined]
            times2, doc2 = timed_requests(client, params, repeat)
            q50, q99 = percentiles(times2)
            same = _cell_counts(doc2) == _cell_counts(doc)
            report(
                f"{label:<8} Python binning |                 | p50 {q50:7.0f} ms "
                f"p99 {q99:7.0f} ms (n={repeat}) | same cells and counts: {same}"
            )
            report(f"{label:<8} ratio Python binning / pushed down (p50): {q50 / p50:.1f}x")
    store.close()


def _cell_counts(doc: dict[str, Any]) -> list[tuple[str, int]]:
    return sorted((f["properties"]["h3"], f["properties"]["count"]) for f in doc["features"])


def _has_column() -> bool:
    from gridmap.common.model import layer_schema

    return "h3_r11" in layer_schema("events").column_names


def main() -> None:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--stores", default="duckdb,postgis")
    ap.add_argument("--resolution", type=int, default=9)
    ap.add_argument("--compare", action="store_true", help="also time the Python-binning path")
    args = ap.parse_args()
    print(
        f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} CPUs "
        f"(shared), Python {platform.python_version()}",
        flush=True,
    )
    t = time.perf_counter()
    layers = world()
    events = events_on_streets(layers, args.events)
    codes = pd.Series(events["grid_code"].dropna().str[:9])
    town = str(codes.value_counts().index[0])
    in_town = int((codes == town).sum())
    print(
        f"{args.events:,} synthetic events on real Helsinki streets/buildings "
        f"({time.perf_counter() - t:.0f} s to build); town {town} holds {in_town:,}",
        flush=True,
    )
    params = {"resolution": args.resolution, "area": town}
    print(f"GET /heatmap?resolution={args.resolution}&area={town} as city_admin", flush=True)
    for name in args.stores.split(","):
        ctx = {"duckdb": duckdb_url, "postgis": postgis_url}[name]
        with ctx() as url:
            run_store(
                {"duckdb": "DuckDB", "postgis": "PostGIS"}[name],
                url,
                layers,
                events,
                params,
                args.repeat,
                args.compare,
                lambda s: print(s, flush=True),
            )


if __name__ == "__main__":
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        main()
