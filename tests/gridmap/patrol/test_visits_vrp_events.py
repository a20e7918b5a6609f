"""Key-point routes within budgets, balanced team plans, major-event dosage."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from gridmap.common.errors import BadInput
from gridmap.patrol.events import Dosage, event_schedule
from gridmap.patrol.network import street_network
from gridmap.patrol.visits import key_point_route, mixed_route
from gridmap.patrol.vrp import team_routes

from .helpers import lattice_roads


def _stops(n: int, seed: int = 0) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    lon = 24.94 + rng.uniform(0, 0.009, n)
    lat = 60.17 + rng.uniform(0, 0.0045, n)
    return gpd.GeoDataFrame(
        {"name": [f"重点{i}" for i in range(n)], "priority": rng.integers(1, 4, n)},
        geometry=shapely.points(lon, lat),
        crs=4326,
    )


@pytest.fixture(scope="module")
def net():
    return street_network(lattice_roads(n=6, seed=0))


@pytest.mark.parametrize("budget", [40.0, 90.0, 400.0])
def test_key_point_route_within_budget_drops_least_important(net, budget: float) -> None:
    stops = _stops(12)
    plan = key_point_route(net, stops, budget_min=budget, time_limit_s=0.5)
    assert plan.duration_min <= budget + 1e-6
    assert len(plan.stops) + len(plan.dropped) == 12
    assert plan.stops["dwell_min"].between(10, 15).all()
    if len(plan.dropped) and len(plan.stops):
        # Never drop a more important stop while keeping a less important one.
        assert plan.dropped["priority"].min() >= plan.stops["priority"].min()
    arrive = plan.stops["arrive_min"].to_numpy()
    assert (np.diff(arrive) > 0).all()
    if budget >= 400:
        assert len(plan.dropped) == 0


def test_mixed_route_walks_streets_and_fits(net) -> None:
    plan = mixed_route(net, _stops(6), budget_min=120)
    assert plan.streets is not None
    req = {(min(u, v), max(u, v), k) for u, v, k in net.required_edges}
    assert req <= {(min(u, v), max(u, v), k) for u, v, k in plan.edges}
    assert plan.duration_min <= 120 + 1e-6
    with pytest.raises(BadInput, match="budget"):
        mixed_route(net, _stops(2), budget_min=5)


@pytest.mark.parametrize("budget", [0, -5, float("nan")])
def test_bad_budget(net, budget: float) -> None:
    with pytest.raises(BadInput, match="budget_min"):
        key_point_route(net, _stops(3), budget_min=budget)


def test_team_routes_are_balanced_and_cover_everything(net) -> None:
    bases = [(24.94, 60.17), (24.948, 60.174), (24.944, 60.172)]
    plan = team_routes(net, bases, stops=_stops(6), time_limit_s=1.0)
    assert len(plan.routes) == 3
    covered = sum(r.street_m for r in plan.routes)
    assert covered == pytest.approx(net.required_length_m, rel=1e-9)
    assert sum(sum(t["kind"] == "stop" for t in r.tasks) for r in plan.routes) == 6
    assert plan.balance <= 1.35, plan.table()


def _areas(n: int) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"name": [f"区域{i}" for i in range(n)]},
        geometry=[shapely.Point(24.94 + 0.004 * i, 60.17 + 0.002 * (i % 2)) for i in range(n)],
        crs=4326,
    )


def test_event_schedule_dosage_and_seeded_randomness() -> None:
    start, end = pd.Timestamp("2026-10-01 08:00+08:00"), pd.Timestamp("2026-10-01 22:00+08:00")
    plan = event_schedule(_areas(5), start=start, end=end, workers=3, seed=11)
    assert plan["minutes"].between(10, 15).all()
    assert (plan["start"] >= start).all() and (plan["end"] <= end).all()
    for _, visits in plan.groupby("area"):
        times = [start, *visits["start"].sort_values(), end]
        gaps = np.diff([t.value for t in times]) / 60e9
        assert gaps.max() <= 120 + 1e-6
    for _, mine in plan.groupby("worker"):
        mine = mine.sort_values("start")
        assert (mine["start"].iloc[1:].to_numpy() >= mine["end"].iloc[:-1].to_numpy()).all()
    again = event_schedule(_areas(5), start=start, end=end, workers=3, seed=11)
    pd.testing.assert_frame_equal(plan, again)
    other = event_schedule(_areas(5), start=start, end=end, workers=3, seed=12)
    assert not plan["start"].equals(other["start"])


def test_event_schedule_refuses_impossible_or_bad_input() -> None:
    kw = {"start": "2026-10-01 08:00+08:00", "end": "2026-10-01 20:00+08:00"}
    with pytest.raises(BadInput, match="try at least"):
        event_schedule(_areas(30), workers=1, **kw)
    with pytest.raises(BadInput, match="time zone"):
        event_schedule(_areas(2), start="2026-10-01 08:00", end="2026-10-01 09:00", workers=1)
    with pytest.raises(BadInput, match="workers"):
        event_schedule(_areas(2), workers=0, **kw)
    with pytest.raises(BadInput, match="min_visit_min"):
        event_schedule(_areas(2), workers=1, dosage=Dosage(min_visit_min=20), **kw)
