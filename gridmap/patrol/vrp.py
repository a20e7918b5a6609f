"""Several patrollers: split the streets and key points of an area among K workers.

The required streets are cut into compact chunks (k-means on street
midpoints); each chunk becomes a task whose service time is its own postman
loop, and each key point a task whose service time is its dwell. OR-Tools then
routes K vehicles, each starting and ending at its worker's base, with a global
span cost so that the longest shift is as short as possible (balanced
duration).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd

from gridmap.common.errors import BadInput
from gridmap.common.extras import LazyModule
from gridmap.patrol.network import EdgeKey, StreetNetwork
from gridmap.patrol.postman import postman_route
from gridmap.patrol.visits import WALK_SPEED_MPS, prepare_stops

_csgraph = LazyModule("scipy.sparse.csgraph", extra="patrol")  # imported on first use

__all__ = ["TeamPlan", "WorkerRoute", "team_routes"]

FloatArray = npt.NDArray[np.float64]


@dataclass
class WorkerRoute:
    """One worker's share: tasks in order and the shift duration."""

    worker: int
    base: int
    tasks: list[dict[str, Any]] = field(default_factory=list)
    travel_m: float = 0.0
    duration_min: float = 0.0
    street_m: float = 0.0


@dataclass
class TeamPlan:
    """Routes of K workers.

    Attributes
    ----------
    routes : list of WorkerRoute
    balance : float
        Longest over shortest shift duration (1.0 is perfectly balanced).
    """

    routes: list[WorkerRoute]
    chunks: list[list[EdgeKey]]

    @property
    def balance(self) -> float:
        """Longest / shortest duration among workers with work."""
        d = [r.duration_min for r in self.routes]
        return float(max(d) / max(min(d), 1e-9)) if d else 1.0

    def table(self) -> pd.DataFrame:
        """One row per worker: tasks, street metres, travel and duration."""
        return pd.DataFrame(
            {
                "worker": [r.worker for r in self.routes],
                "tasks": [len(r.tasks) for r in self.routes],
                "street_m": [r.street_m for r in self.routes],
                "travel_m": [r.travel_m for r in self.routes],
                "duration_min": [r.duration_min for r in self.routes],
            }
        )


def _chunks(net: StreetNetwork, n: int, seed: int) -> list[list[EdgeKey]]:
    req = net.required_edges
    if not req:
        return []
    mid = np.array([net.graph.edges[e]["coords"].mean(axis=0) for e in req])
    w = np.array([net.graph.edges[e]["length"] for e in req])
    n = max(1, min(n, len(req)))
    rng = np.random.default_rng(seed)
    centers = mid[rng.choice(len(req), size=n, replace=False)]
    for _ in range(30):
        label = np.argmin(((mid[:, None, :] - centers[None, :, :]) ** 2).sum(-1), axis=1)
        for c in range(n):
            sel = label == c
            if sel.any():
                centers[c] = np.average(mid[sel], axis=0, weights=w[sel])
    return [[req[i] for i in np.flatnonzero(label == c)] for c in range(n) if (label == c).any()]


def team_routes(
    net: StreetNetwork,
    bases: list[tuple[float, float]],
    *,
    stops: gpd.GeoDataFrame | None = None,
    chunks: int | None = None,
    speed_mps: float = WALK_SPEED_MPS,
    time_limit_s: float = 2.0,
    seed: int = 0,
) -> TeamPlan:
    """Share the required streets and key points among workers with balanced shifts.

    Parameters
    ----------
    net : StreetNetwork
        Network whose required edges must all be walked.
    bases : list of (lon, lat)
        One WGS84 base per worker (start and end of their shift).
    stops : GeoDataFrame, optional
        Key points to visit (``priority``, ``dwell_min`` as in
        :func:`gridmap.patrol.visits.key_point_route`).
    chunks : int, optional
        Number of street tasks (default ``6 * K``).
    speed_mps, time_limit_s, seed
        Walking speed, OR-Tools search time, chunking seed.

    Returns
    -------
    TeamPlan

    Raises
    ------
    gridmap.common.errors.BadInput
        Without bases or tasks.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> from gridmap.patrol.network import street_network
    >>> roads = gpd.GeoDataFrame({"name": ["A", "B"]}, crs=4326, geometry=[
    ...     shapely.LineString([(24.94, 60.17), (24.96, 60.17)]),
    ...     shapely.LineString([(24.95, 60.165), (24.95, 60.175)])])
    >>> plan = team_routes(street_network(roads), [(24.94, 60.17), (24.96, 60.17)],
    ...                    time_limit_s=0.2)
    >>> len(plan.routes)
    2
    """
    from ortools.constraint_solver import pywrapcp, routing_enums_pb2

    if not bases:
        raise BadInput("at least one worker base is needed", field="bases")
    k = len(bases)
    parts = _chunks(net, chunks or 6 * k, seed)
    tasks: list[dict[str, Any]] = []
    for i, part in enumerate(parts):
        loop = postman_route(net, required=part)
        tasks.append(
            {
                "kind": "streets",
                "id": i,
                "node": loop.start,
                "service_min": loop.length_m / speed_mps / 60,
                "street_m": loop.required_length_m,
                "edges": loop.edges,
            }
        )
    if stops is not None and len(stops):
        info = prepare_stops(stops, net)
        cols = zip(info["stop"], info["name"], info["node"], info["dwell_min"], strict=True)
        for stop, name, node, dwell in cols:
            tasks.append(
                {
                    "kind": "stop",
                    "id": stop,
                    "name": name,
                    "node": int(node),
                    "service_min": float(dwell),
                    "street_m": 0.0,
                    "edges": [],
                }
            )
    if not tasks:
        raise BadInput("nothing to share: no required streets and no key points", field="grid")
    base_nodes = [net.nearest_node(*net.project(*b)) for b in bases]
    nodes = base_nodes + [t["node"] for t in tasks]
    rows = [net.index_of(n) for n in nodes]
    dist = _csgraph.dijkstra(net.matrix(), directed=False, indices=rows)[:, rows]
    if not np.isfinite(dist).all():
        raise BadInput("some tasks cannot be reached from the bases", field="bases")
    travel_s = np.rint(dist / speed_mps).astype(np.int64)
    service_s = np.r_[np.zeros(k), [t["service_min"] * 60 for t in tasks]].astype(np.int64)
    manager = pywrapcp.RoutingIndexManager(len(nodes), k, list(range(k)), list(range(k)))
    routing = pywrapcp.RoutingModel(manager)

    def time(i: int, j: int) -> int:
        a, b = manager.IndexToNode(i), manager.IndexToNode(j)
        return int(travel_s[a, b] + service_s[a])

    cb = routing.RegisterTransitCallback(time)
    routing.SetArcCostEvaluatorOfAllVehicles(cb)
    routing.AddDimension(cb, 0, 10**9, True, "time")
    routing.GetDimensionOrDie("time").SetGlobalSpanCostCoefficient(100)
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = (
        routing_enums_pb2.FirstSolutionStrategy.PARALLEL_CHEAPEST_INSERTION
    )
    params.local_search_metaheuristic = (
        routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    )
    params.time_limit.FromMilliseconds(max(int(time_limit_s * 1000), 50))
    solution = routing.SolveWithParameters(params)
    if solution is None:
        raise BadInput("no feasible team plan found", field="bases")
    routes = []
    for v in range(k):
        route = WorkerRoute(worker=v, base=base_nodes[v])
        idx = routing.Start(v)
        prev = manager.IndexToNode(idx)
        seconds = 0.0
        while not routing.IsEnd(idx):
            idx = solution.Value(routing.NextVar(idx))
            node = manager.IndexToNode(idx)
            route.travel_m += float(dist[prev, node])
            seconds += float(travel_s[prev, node] + service_s[prev])
            if node >= k:
                task = tasks[node - k]
                route.tasks.append(task)
                route.street_m += float(task["street_m"])
            prev = node
        route.duration_min = seconds / 60
        routes.append(route)
    return TeamPlan(routes=routes, chunks=parts)
