"""Per-grid statistics: gridmap (vectorized) vs a per-grid geopandas loop vs DuckDB spatial SQL.

A synthetic city over central Helsinki (~4.4 km x 4.4 km): G square grids, B
building footprints (small boxes, some straddling grid edges), a street lattice
of R lines running the whole width and height, and E event points with
categories and statuses. Every contender answers the same questions per grid:
buildings and households (majority of the footprint), street length in metres
(streets clipped to the grid, local UTM zone), events by category. Answers are
checked to agree (counts equal, lengths within 0.1 %).

- **gridmap**: :func:`gridmap.division.stats.grid_statistics` (STRtree pairs,
  vectorized intersections, bincount; also computes area, open events, key
  areas and the workload index);
- **per-grid loop**: the obvious geopandas code, one ``clip``/``sjoin`` round per
  grid;
- **DuckDB spatial**: one SQL query per statistic over tables already loaded,
  extension from the installed ``duckdb-extension-spatial`` package (load time
  excluded), all threads.

Each contender runs ``--repeat`` times; the best time is reported with the
ratio to gridmap. Machine noted in the output.

Usage::

    python benchmarks/bench_grid_stats.py [--grids G] [--buildings B] [--events E]
        [--streets R] [--repeat N] [--quick]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from typing import Any

import duckdb
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridmap.common.model import EVENT_CATEGORIES
from gridmap.division.stats import CATEGORY_COLUMNS, grid_statistics
from gridmap.geo.projection import local_crs
from gridmap.storage.duckdb import spatial_extension_path

BOX = (24.90, 60.15, 24.98, 60.19)
AT = pd.Timestamp("2026-11-01T00:00:00Z")


def make_world(
    n_grids: int, n_buildings: int, n_events: int, n_streets: int, seed: int = 7
) -> dict[str, gpd.GeoDataFrame]:
    """Grids, buildings, streets and events of the synthetic city."""
    rng = np.random.default_rng(seed)
    side = max(round(np.sqrt(n_grids)), 1)
    xs, ys = np.linspace(BOX[0], BOX[2], side + 1), np.linspace(BOX[1], BOX[3], side + 1)
    gx, gy = np.meshgrid(np.arange(side), np.arange(side))
    cells = shapely.box(xs[gx.ravel()], ys[gy.ravel()], xs[gx.ravel() + 1], ys[gy.ravel() + 1])
    codes = [f"990100001{i // 999 + 1:03d}{i % 999 + 1:03d}" for i in range(len(cells))]
    grids = gpd.GeoDataFrame(
        {"code": codes, "community_code": [c[:12] for c in codes]}, geometry=cells, crs=4326
    )
    cx = rng.uniform(BOX[0], BOX[2], n_buildings)
    cy = rng.uniform(BOX[1], BOX[3], n_buildings)
    w, h = rng.uniform(1e-4, 4e-4, n_buildings), rng.uniform(5e-5, 2e-4, n_buildings)
    buildings = gpd.GeoDataFrame(
        {"households": rng.integers(1, 60, n_buildings)},
        geometry=shapely.box(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2),
        crs=4326,
    )
    half = max(n_streets // 2, 1)
    sx, sy = (
        np.linspace(BOX[0], BOX[2], half + 2)[1:-1],
        np.linspace(BOX[1], BOX[3], half + 2)[1:-1],
    )
    lines = [shapely.LineString([(x, BOX[1]), (x, BOX[3])]) for x in sx]
    lines += [shapely.LineString([(BOX[0], y), (BOX[2], y)]) for y in sy]
    streets = gpd.GeoDataFrame(geometry=lines, crs=4326)
    categories = np.array(list(EVENT_CATEGORIES))
    events = gpd.GeoDataFrame(
        {
            "category": categories[rng.integers(0, len(categories), n_events)],
            "status": np.where(rng.random(n_events) < 0.7, "closed", "handling"),
            "reported_at": AT - pd.to_timedelta(rng.uniform(1, 300, n_events), unit="D"),
        },
        geometry=shapely.points(rng.uniform(BOX[0], BOX[2], n_events),
                                rng.uniform(BOX[1], BOX[3], n_events)),
        crs=4326,
    )  # fmt: skip
    return {"grids": grids, "buildings": buildings, "streets": streets, "events": events}


def run_gridmap(world: dict[str, gpd.GeoDataFrame]) -> pd.DataFrame:
    """gridmap's vectorized statistics."""
    s = grid_statistics(
        world["grids"],
        buildings=world["buildings"],
        roads=world["streets"],
        events=world["events"],
        at=AT,
    )
    return _answer(world["grids"], s)


def _answer(grids: gpd.GeoDataFrame, s: pd.DataFrame) -> pd.DataFrame:
    cols = ["buildings", "households", "street_length_m", *CATEGORY_COLUMNS.values()]
    out = pd.DataFrame(s[cols].to_numpy(), columns=cols, index=grids["code"].to_numpy())
    return out.astype(float).sort_index()


def run_loop(world: dict[str, gpd.GeoDataFrame]) -> pd.DataFrame:
    """One grid at a time: intersect footprints, clip streets, points within."""
    crs = local_crs(world["grids"])
    grids, bld, streets, events = (
        world["grids"],
        world["buildings"],
        world["streets"],
        world["events"],
    )
    # majority footprint: the grid with the largest intersection, decided per building
    best = np.full(len(bld), -1)
    best_area = np.zeros(len(bld))
    rows: list[dict[str, Any]] = []
    for i, g in enumerate(grids.geometry):
        cand = bld.sindex.query(g, predicate="intersects")
        areas = bld.geometry.iloc[cand].intersection(g).to_crs(crs).area.to_numpy()
        better = (areas > best_area[cand]) | (best[cand] < 0)
        best[cand[better]] = i
        best_area[cand[better]] = areas[better]
        length = float(gpd.clip(streets, g).to_crs(crs).length.sum())
        inside = events.iloc[events.sindex.query(g, predicate="intersects")]
        counts = inside["category"].value_counts()
        rows.append(
            {"street_length_m": round(length, 1)}
            | {col: int(counts.get(code, 0)) for code, col in CATEGORY_COLUMNS.items()}
        )
    out = pd.DataFrame(rows)
    hh = bld["households"].to_numpy(dtype=float)
    out["buildings"] = np.bincount(best[best >= 0], minlength=len(grids))
    out["households"] = np.bincount(best[best >= 0], weights=hh[best >= 0], minlength=len(grids))
    return _answer(world["grids"], out)


def run_duckdb(world: dict[str, gpd.GeoDataFrame], con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The same statistics as SQL over loaded tables (ST_Intersects joins, arg_max)."""
    epsg = local_crs(world["grids"]).to_epsg()
    cats = ", ".join(
        f"count(*) FILTER (WHERE e.category = '{c}') AS {col}"
        for c, col in CATEGORY_COLUMNS.items()
    )
    q = f"""
    WITH pairs AS (
        SELECT b.id AS bid, g.code, b.households,
               ST_Area(ST_Intersection(b.geom, g.geom)) AS a
        FROM b JOIN g ON ST_Intersects(b.geom, g.geom)),
    best AS (SELECT bid, arg_max(code, a) AS code, any_value(households) AS hh
             FROM pairs GROUP BY bid),
    bstat AS (SELECT code, count(*) AS buildings, sum(hh) AS households FROM best GROUP BY code),
    sstat AS (
        SELECT g.code, sum(ST_Length(ST_Transform(ST_Intersection(s.geom, g.geom),
               'EPSG:4326', 'EPSG:{epsg}', always_xy := true))) AS street_length_m
        FROM s JOIN g ON ST_Intersects(s.geom, g.geom) GROUP BY g.code),
    estat AS (SELECT g.code, {cats} FROM e JOIN g ON ST_Intersects(e.geom, g.geom)
              GROUP BY g.code)
    SELECT g.code, coalesce(buildings, 0) AS buildings, coalesce(households, 0) AS households,
           round(coalesce(street_length_m, 0), 1) AS street_length_m,
           {", ".join(f"coalesce({col}, 0) AS {col}" for col in CATEGORY_COLUMNS.values())}
    FROM g LEFT JOIN bstat USING (code) LEFT JOIN sstat USING (code) LEFT JOIN estat USING (code)
    """
    df = con.execute(q).df().set_index("code")
    cols = ["buildings", "households", "street_length_m", *CATEGORY_COLUMNS.values()]
    return df[cols].astype(float).sort_index()


def load_duckdb(world: dict[str, gpd.GeoDataFrame]) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the spatial extension and the four tables."""
    con = duckdb.connect()
    con.execute(f"LOAD '{spatial_extension_path()}'")
    for name, frame, cols in (
        ("g", world["grids"], ["code"]),
        ("b", world["buildings"], ["households"]),
        ("s", world["streets"], []),
        ("e", world["events"], ["category"]),
    ):
        tmp = pd.DataFrame({c: frame[c].to_numpy() for c in cols})
        tmp["id"] = np.arange(len(frame))
        tmp["wkb"] = shapely.to_wkb(np.asarray(frame.geometry.values))
        con.register("tmp", tmp)
        con.execute(
            f"CREATE TABLE {name} AS SELECT * EXCLUDE (wkb), ST_GeomFromWKB(wkb) AS geom FROM tmp"
        )
        con.unregister("tmp")
    return con


def best_of(fn: Callable[[], pd.DataFrame], repeat: int) -> tuple[float, pd.DataFrame]:
    """Best wall-clock seconds of *repeat* runs and the last answer."""
    times, answer = [], pd.DataFrame()
    for _ in range(repeat):
        t = time.perf_counter()
        answer = fn()
        times.append(time.perf_counter() - t)
    return min(times), answer


def check(name: str, ours: pd.DataFrame, theirs: pd.DataFrame) -> None:
    """Counts equal, street lengths within 0.1 %."""
    counts = [c for c in ours.columns if c != "street_length_m"]
    if not np.array_equal(ours[counts].to_numpy(), theirs[counts].to_numpy()):
        diff = (ours[counts] != theirs[counts]).any(axis=1)
        raise SystemExit(f"{name}: counts differ in {int(diff.sum())} grids")
    if not np.allclose(ours["street_length_m"], theirs["street_length_m"], rtol=1e-3, atol=0.2):
        raise SystemExit(f"{name}: street lengths differ")


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Run the comparison; return seconds by contender."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--grids", type=int, default=400)
    p.add_argument("--buildings", type=int, default=100_000)
    p.add_argument("--events", type=int, default=200_000)
    p.add_argument("--streets", type=int, default=200)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    args = p.parse_args(argv)
    if args.quick:
        args.grids, args.buildings, args.events, args.streets, args.repeat = 16, 300, 500, 10, 1
    world = make_world(args.grids, args.buildings, args.events, args.streets)
    print(
        f"grid statistics: {len(world['grids'])} grids, {args.buildings:,} buildings, "
        f"{len(world['streets'])} streets, {args.events:,} events · "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores "
        "(shared machine: other jobs may run)"
    )
    times: dict[str, float] = {}
    t_ours, ours = best_of(lambda: run_gridmap(world), args.repeat)
    times["gridmap"] = t_ours
    t_loop, loop = best_of(lambda: run_loop(world), args.repeat)
    check("per-grid loop", ours, loop)
    times["per-grid geopandas loop"] = t_loop
    t = time.perf_counter()
    con = load_duckdb(world)
    load = time.perf_counter() - t
    t_duck, duck = best_of(lambda: run_duckdb(world, con), args.repeat)
    check("duckdb", ours, duck)
    times["DuckDB spatial SQL"] = t_duck
    print(f"(DuckDB table load {load:.2f} s, not counted)")
    for name, secs in times.items():
        print(f"{name:28s} {secs:8.3f} s   ratio ours/peer {t_ours / secs:6.3f}")
    return times


if __name__ == "__main__":
    main()
