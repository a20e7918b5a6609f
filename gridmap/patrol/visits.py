"""Key-point patrols: visit key places and hot spots with dwell times, within a shift.

A shift has a time budget; each stop needs a dwell of 10–15 minutes (more for
more important places, following the hot-spot evidence of Koper). When not
every stop fits, the least important ones are dropped: a prize-collecting
travelling-salesman problem solved with OR-Tools routing, where skipping a stop
costs a penalty that grows steeply with its priority (1 = highest).

``mode="mixed"`` first walks every required street of the grid (the postman
route of :mod:`gridmap.patrol.postman`) and then spends the time left on
detours to key points along the way, most important first.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely

from gridmap.common.errors import BadInput
from gridmap.common.extras import LazyModule
from gridmap.patrol.network import EdgeKey, StreetNetwork
from gridmap.patrol.postman import PostmanRoute, postman_route

_csgraph = LazyModule("scipy.sparse.csgraph", extra="patrol")  # imported on first use

__all__ = [
    "WALK_SPEED_MPS",
    "VisitPlan",
    "default_dwell",
    "key_point_route",
    "mixed_route",
    "prepare_stops",
    "priority_penalty",
]

#: Patrol walking speed (4.3 km/h, slower than commuting: patrols look around).
WALK_SPEED_MPS = 1.2
FloatArray = npt.NDArray[np.float64]


def default_dwell(priority: Any) -> float:
    """Dwell minutes by priority: 15 for priority 1, 12 for 2, 10 otherwise (Koper 10–15).

    Examples
    --------
    >>> default_dwell(1), default_dwell(2), default_dwell(3), default_dwell(None)
    (15.0, 12.0, 10.0, 10.0)
    """
    try:
        p = int(priority)
    except (TypeError, ValueError):
        return 10.0
    return {1: 15.0, 2: 12.0}.get(p, 10.0)


def priority_penalty(priority: Any) -> int:
    """Cost of skipping a stop: one priority-p stop outweighs four of priority p + 1.

    Examples
    --------
    >>> priority_penalty(1) == 4 * priority_penalty(2)
    True
    """
    try:
        p = min(max(int(priority), 1), 9)
    except (TypeError, ValueError):
        p = 9
    return int(1_000_000 * 4 ** (9 - p))


@dataclass
class VisitPlan:
    """A patrol through key points (and, for ``mixed``, every required street).

    Attributes
    ----------
    stops : DataFrame
        Visited stops in order: ``order``, ``stop``, ``name``, ``priority``,
        ``arrive_min``, ``dwell_min``, ``depart_min``, ``lon``, ``lat``.
    dropped : DataFrame
        Stops left out, least important first to go.
    length_m : float
        Distance walked.
    duration_min : float
        Walking plus dwelling time; never above ``budget_min``.
    """

    network: StreetNetwork
    edges: list[EdgeKey]
    start: int
    stops: pd.DataFrame
    dropped: pd.DataFrame
    length_m: float
    duration_min: float
    budget_min: float
    mode: str
    streets: PostmanRoute | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def coords(self) -> FloatArray:
        """Metric coordinates of the walk."""
        return self.network.walk_coords(self.start, self.edges)

    def geometry(self) -> shapely.LineString:
        """The walk as a WGS84 line string."""
        coords = self.network.to_wgs84(self.coords())
        if len(coords) < 2:
            coords = np.vstack([coords, coords])
        return shapely.LineString(coords)


def prepare_stops(stops: gpd.GeoDataFrame, net: StreetNetwork) -> pd.DataFrame:
    """Stops with ``node``, ``priority``, ``dwell_min``, ``lon``, ``lat`` (aligned to input).

    Polygons are represented by a point inside them; dwell defaults by
    priority (:func:`default_dwell`); the nearest network node is attached.
    """
    if stops.crs is not None and stops.crs.to_epsg() != 4326:
        stops = stops.to_crs(4326)
    geoms = stops.geometry.values
    bad = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if bad.any():
        raise BadInput("a key point has no geometry", field="stops")
    pts = shapely.point_on_surface(geoms)
    lon, lat = shapely.get_x(pts), shapely.get_y(pts)
    prio = (
        pd.to_numeric(stops["priority"], errors="coerce")
        if "priority" in stops
        else pd.Series(3, index=stops.index)
    )
    prio = prio.fillna(9).astype(int)
    if "dwell_min" in stops:
        dwell = pd.to_numeric(stops["dwell_min"], errors="coerce")
        dwell = dwell.fillna(prio.map(default_dwell))
    else:
        dwell = prio.map(default_dwell).astype(float)
    if (dwell < 0).any() or not np.isfinite(dwell.to_numpy(dtype=float)).all():
        raise BadInput("dwell times must be finite and not negative", field="dwell_min")
    nodes = [net.nearest_node(*net.project(x, y)) for x, y in zip(lon, lat, strict=True)]
    names = stops["name"] if "name" in stops else pd.Series(None, index=stops.index)
    ids = stops["id"] if "id" in stops else pd.Series(range(len(stops)), index=stops.index)
    return pd.DataFrame(
        {
            "stop": ids.to_numpy(),
            "name": names.to_numpy(dtype=object),
            "priority": prio.to_numpy(),
            "dwell_min": dwell.to_numpy(dtype=float),
            "lon": lon,
            "lat": lat,
            "node": nodes,
        },
        index=stops.index,
    )


def _check_budget(budget_min: float) -> float:
    try:
        b = float(budget_min)
    except (TypeError, ValueError):
        raise BadInput(
            f"budget_min must be a number, got {budget_min!r}", field="budget_min"
        ) from None
    if not np.isfinite(b) or b <= 0:
        raise BadInput(
            f"budget_min must be a positive number of minutes, got {b}", field="budget_min"
        )
    if b > 24 * 60:
        raise BadInput("budget_min must not exceed one day (1440)", field="budget_min")
    return b


def _distances(net: StreetNetwork, nodes: list[int]) -> tuple[FloatArray, Any]:
    rows = [net.index_of(n) for n in nodes]
    dist, pred = _csgraph.dijkstra(
        net.matrix(), directed=False, indices=rows, return_predecessors=True
    )
    return dist[:, rows], pred


def _stop_row(order: int, s: pd.Series, clock: float) -> dict[str, Any]:
    """The schedule row of stop *s* (a row of the stops table) reached at *clock* minutes."""
    return {
        "order": order,
        "stop": s["stop"],
        "name": s["name"],
        "priority": int(s["priority"]),
        "arrive_min": clock,
        "dwell_min": float(s["dwell_min"]),
        "depart_min": clock + float(s["dwell_min"]),
        "lon": float(s["lon"]),
        "lat": float(s["lat"]),
    }


def _edges(net: StreetNetwork, nodes: list[int]) -> list[EdgeKey]:
    return [(a, b, net.best_edge(a, b)) for a, b in itertools.pairwise(nodes)]


def _node_path(net: StreetNetwork, pred_row: Any, target: int) -> list[int]:
    path = [net.index_of(target)]
    while pred_row[path[-1]] >= 0:
        path.append(int(pred_row[path[-1]]))
    return [net.nodes[r] for r in path[::-1]]


def key_point_route(
    net: StreetNetwork,
    stops: gpd.GeoDataFrame,
    *,
    start: tuple[float, float] | None = None,
    budget_min: float = 240.0,
    speed_mps: float = WALK_SPEED_MPS,
    time_limit_s: float = 2.0,
) -> VisitPlan:
    """Plan a round trip through key points within a time budget (prize-collecting).

    Parameters
    ----------
    net : StreetNetwork
        Street network to walk on.
    stops : GeoDataFrame
        Key points or areas (WGS84) with optional ``priority`` (1 highest),
        ``dwell_min`` and ``name``.
    start : (lon, lat), optional
        Where the shift starts and ends (default: the first stop).
    budget_min : float
        Shift length in minutes (walking + dwelling), > 0.
    speed_mps : float
        Walking speed.
    time_limit_s : float
        OR-Tools search time.

    Returns
    -------
    VisitPlan
        Visited stops in order with times; the dropped ones.

    Raises
    ------
    gridmap.common.errors.BadInput
        For a budget that is not a positive number or no stops.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> from gridmap.patrol.network import street_network
    >>> roads = gpd.GeoDataFrame({"name": ["A"]}, crs=4326,
    ...     geometry=[shapely.LineString([(24.94, 60.17), (24.96, 60.17)])])
    >>> stops = gpd.GeoDataFrame({"priority": [1, 3]}, crs=4326,
    ...     geometry=[shapely.Point(24.94, 60.17), shapely.Point(24.96, 60.17)])
    >>> plan = key_point_route(street_network(roads), stops, budget_min=30, time_limit_s=0.2)
    >>> len(plan.stops), len(plan.dropped), plan.duration_min <= 30
    (1, 1, True)
    """
    budget = _check_budget(budget_min)
    if len(stops) == 0:
        raise BadInput("there are no key points to visit", field="stops")
    info = prepare_stops(stops, net)
    depot = (
        net.nearest_node(*net.project(*start)) if start is not None else int(info["node"].iloc[0])
    )
    nodes = [depot, *info["node"].tolist()]
    dist, pred = _distances(net, nodes)
    if not np.isfinite(dist).all():
        raise BadInput("some key points cannot be reached on the street network", field="stops")
    order = _solve_pctsp(
        dist,
        info["dwell_min"].to_numpy(),
        info["priority"].to_numpy(),
        budget,
        speed_mps,
        time_limit_s,
    )
    return _plan_from_order(net, info, nodes, dist, pred, order, budget, speed_mps)


def _solve_pctsp(
    dist: FloatArray,
    dwell: npt.NDArray[Any],
    priority: npt.NDArray[Any],
    budget_min: float,
    speed: float,
    time_limit_s: float,
) -> list[int]:
    """Stop indices (1-based into *dist*) in visiting order."""
    from ortools.constraint_solver import pywrapcp, routing_enums_pb2

    n = len(dist)
    travel_s = np.rint(dist / speed).astype(np.int64)
    service_s = np.r_[0, np.rint(np.asarray(dwell, float) * 60)].astype(np.int64)
    dist_i = np.rint(dist).astype(np.int64)
    manager = pywrapcp.RoutingIndexManager(n, 1, 0)
    routing = pywrapcp.RoutingModel(manager)

    def cost(i: int, j: int) -> int:
        return int(dist_i[manager.IndexToNode(i), manager.IndexToNode(j)])

    def time(i: int, j: int) -> int:
        a, b = manager.IndexToNode(i), manager.IndexToNode(j)
        return int(travel_s[a, b] + service_s[a])

    routing.SetArcCostEvaluatorOfAllVehicles(routing.RegisterTransitCallback(cost))
    t_cb = routing.RegisterTransitCallback(time)
    routing.AddDimension(t_cb, 0, int(budget_min * 60), True, "time")
    for s in range(1, n):
        routing.AddDisjunction([manager.NodeToIndex(s)], priority_penalty(priority[s - 1]))
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PATH_CHEAPEST_ARC
    params.local_search_metaheuristic = (
        routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    )
    params.time_limit.FromMilliseconds(max(int(time_limit_s * 1000), 50))
    solution = routing.SolveWithParameters(params)
    if solution is None:
        return []
    order: list[int] = []
    idx = solution.Value(routing.NextVar(routing.Start(0)))
    while not routing.IsEnd(idx):
        order.append(manager.IndexToNode(idx))
        idx = solution.Value(routing.NextVar(idx))
    return order


def _plan_from_order(
    net: StreetNetwork,
    info: pd.DataFrame,
    nodes: list[int],
    dist: FloatArray,
    pred: Any,
    order: list[int],
    budget: float,
    speed: float,
) -> VisitPlan:
    seq = [0, *order, 0]
    clock = 0.0
    length = 0.0
    walk: list[EdgeKey] = []
    rows = []
    for pos, (a, b) in enumerate(itertools.pairwise(seq)):
        leg = float(dist[a, b])
        length += leg
        clock += leg / speed / 60
        walk.extend(_edges(net, _node_path(net, pred[a], nodes[b])))
        if b != 0:
            s = info.iloc[b - 1]
            rows.append(_stop_row(pos + 1, s, clock))
            clock += float(s["dwell_min"])
    visited = {b - 1 for b in order}
    dropped = info.iloc[[i for i in range(len(info)) if i not in visited]]
    dropped = dropped.sort_values("priority", ascending=False).drop(columns="node")
    stops = pd.DataFrame(
        rows,
        columns=[
            "order",
            "stop",
            "name",
            "priority",
            "arrive_min",
            "dwell_min",
            "depart_min",
            "lon",
            "lat",
        ],
    )
    return VisitPlan(
        network=net,
        edges=walk,
        start=nodes[0],
        stops=stops,
        dropped=dropped.reset_index(drop=True),
        length_m=length,
        duration_min=clock,
        budget_min=budget,
        mode="points",
    )


def mixed_route(
    net: StreetNetwork,
    stops: gpd.GeoDataFrame,
    *,
    start: tuple[float, float] | None = None,
    budget_min: float = 240.0,
    speed_mps: float = WALK_SPEED_MPS,
) -> VisitPlan:
    """Walk every required street, then add key-point detours while time is left.

    The street walk is the postman route; each key point is reached by an out-
    and-back detour from the nearest node of that walk. Detours are chosen most
    important first (then cheapest), as long as the shift budget allows.

    Raises
    ------
    gridmap.common.errors.BadInput
        When the budget is not positive or shorter than the street walk alone.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> from gridmap.patrol.network import street_network
    >>> roads = gpd.GeoDataFrame({"name": ["A"]}, crs=4326,
    ...     geometry=[shapely.LineString([(24.94, 60.17), (24.95, 60.17)])])
    >>> stops = gpd.GeoDataFrame({"priority": [1]}, crs=4326,
    ...     geometry=[shapely.Point(24.945, 60.1701)])
    >>> plan = mixed_route(street_network(roads), stops, budget_min=60)
    >>> plan.mode, len(plan.stops)
    ('mixed', 1)
    """
    budget = _check_budget(budget_min)
    streets = postman_route(net, start=start)
    walk_min = streets.length_m / speed_mps / 60
    if walk_min > budget:
        raise BadInput(
            f"the required streets alone take {walk_min:.0f} min, more than the budget of "
            f"{budget:.0f} min",
            field="budget_min",
        )
    circuit = streets.nodes
    info = prepare_stops(stops, net) if len(stops) else pd.DataFrame(columns=["node"])
    chosen: dict[int, list[tuple[int, list[int], float]]] = {}
    spare = budget - walk_min
    rows_all: list[dict[str, Any]] = []
    if len(info):
        src = sorted({net.index_of(n) for n in circuit})
        dist, pred, _sources = _csgraph.dijkstra(
            net.matrix(), directed=False, indices=src, return_predecessors=True, min_only=True
        )
        cand = []
        cols = zip(info["node"], info["dwell_min"], info["priority"], strict=True)
        for i, (node, dwell, prio) in enumerate(cols):
            r = net.index_of(int(node))
            d = float(dist[r])
            if not np.isfinite(d):
                continue
            cost = 2 * d / speed_mps / 60 + float(dwell)
            cand.append((int(prio), cost, i, r, d))
        for prio, cost, i, r, d in sorted(cand):
            del prio
            if cost <= spare + 1e-9:
                spare -= cost
                back = [r]
                while pred[back[-1]] >= 0:
                    back.append(int(pred[back[-1]]))
                path = [net.nodes[x] for x in back]  # stop → circuit
                anchor = path[-1]
                chosen.setdefault(anchor, []).append((i, path, d))
    walk: list[EdgeKey] = []
    clock = 0.0
    length = 0.0
    seen: set[int] = set()

    def visit(node: int) -> None:
        nonlocal clock, length
        for i, path, d in chosen.pop(node, []):
            walk.extend(_edges(net, path[::-1]))
            clock += d / speed_mps / 60
            length += d
            s = info.iloc[i]
            rows_all.append(_stop_row(len(rows_all) + 1, s, clock))
            clock += float(s["dwell_min"]) + d / speed_mps / 60
            length += d
            walk.extend(_edges(net, path))

    visit(circuit[0])
    seen.add(circuit[0])
    g = net.graph
    for u, v, k in streets.edges:
        leg = float(g.edges[u, v, k]["length"])
        length += leg
        clock += leg / speed_mps / 60
        walk.append((u, v, k))
        if v not in seen:
            seen.add(v)
            visit(v)
    visited = {
        int(r["stop"]) if isinstance(r["stop"], int | np.integer) else r["stop"] for r in rows_all
    }
    dropped = (
        info[~info["stop"].isin(list(visited))].drop(columns="node")
        if len(info)
        else pd.DataFrame()
    )
    stops_df = pd.DataFrame(rows_all)
    plan = VisitPlan(
        network=net,
        edges=walk,
        start=circuit[0],
        stops=stops_df,
        dropped=dropped.sort_values("priority", ascending=False).reset_index(drop=True)
        if len(dropped)
        else dropped,
        length_m=length,
        duration_min=clock,
        budget_min=budget,
        mode="mixed",
        streets=streets,
    )
    return plan
