"""Security patrol plans for major events (重大活动安保): key areas in time, main streets, shifts.

**Visits.** The event window is cut into *slots* per key area: slot *k* of an
area visited every *f* minutes is ``[T0 + k·f, T0 + (k+1)·f)``, clipped to the
area's validity (``valid_from`` / ``valid_to``). The area must be visited once
in every slot with its whole dwell inside the slot; a slot shorter than the
dwell is not required. "Visited in every hour" is then checkable from the
timetable alone.

**Main streets.** The required edges of the network (the main streets of the
area, chosen by road class by the caller) must be walked once per shift. The
exact Chinese-postman walk over them (:func:`gridmap.patrol.postman.postman_route`)
is cut into consecutive pieces of about ``piece_min`` minutes; a piece is
walked from its first to its last node, so a worker taking consecutive pieces
walks the postman route itself.

**The model.** Every (area, slot) visit and every (piece, shift) walk is a task
with a time window; every worker on a shift is a vehicle starting at its post
at the start of the shift and back at its post (or end point) by the end, with
a duty limit. Travel is walked on the street network (metres, shortest paths).
OR-Tools routes the vehicles: travel is the cost; a task left out costs a
penalty by priority (so the answer lists it, with the reason, instead of a
silent partial plan); the load (walking + dwelling minutes) is evened by a
quadratic cost on each worker's load above 85 % of the expected mean (convex,
so moving work from a busier worker to a less busy one always pays).

Two ways to solve the same model:

- ``method="decomposed"`` (default): (A) one period's visits are shared among
  the workers by a small balanced routing problem from a free depot (each
  share an open path through its areas; greedy descent, repeatable), shares
  matched to workers by their posts (Hungarian method); (B) each worker walks
  its path forward in odd periods and backward in even ones ("zigzag": the
  last area of a period is the first of the next, two visits either side of
  the boundary with no walk between), street pieces go to the least loaded
  near worker and, like anything left, to their cheapest feasible place;
  (C) OR-Tools starts from these routes on the whole model and improves them
  for most of the time left; (D) single moves off the busiest route (or onto
  the idlest) even the loads to within ``balance_tolerance``.
- ``method="direct"``: OR-Tools alone on the whole model (its own first
  solution and guided local search) for the whole time limit; the reference
  of ``benchmarks/bench_event_plan.py``.

Tasks left out are explained: ``no_worker_on_shift`` (nobody is on duty then),
``too_far`` (no worker on duty can get there in time, even with nothing else to
do) or ``not_enough_workers`` (possible alone, not together with the rest);
with an estimate of the workers needed.
"""

from __future__ import annotations

import math
import time as _time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely

from gridmap.common.errors import BadInput
from gridmap.common.extras import LazyModule
from gridmap.io.osm import MAJOR_ROAD_CLASSES, MOTORWAY_CLASSES
from gridmap.patrol.events import event_window
from gridmap.patrol.network import EdgeKey, StreetNetwork, street_name
from gridmap.patrol.postman import postman_route
from gridmap.patrol.visits import WALK_SPEED_MPS, default_dwell, priority_penalty

# the [patrol] extra, imported on first use
_csgraph = LazyModule("scipy.sparse.csgraph", extra="patrol")
_optimize = LazyModule("scipy.optimize", extra="patrol")

__all__ = [
    "MAIN_ROAD_CLASSES",
    "METHODS",
    "REASONS",
    "EventPlan",
    "EventPlanOptions",
    "EventWorker",
    "PlanRoute",
    "plan_event",
    "require_streets",
]

#: Road classes patrolled as main streets (主要街道) by default (OSM ``highway`` values):
#: the major roads but motorways, where no one patrols.
MAIN_ROAD_CLASSES: tuple[str, ...] = tuple(
    c for c in MAJOR_ROAD_CLASSES if c not in MOTORWAY_CLASSES
)

#: Why a visit or a street piece could not be planned: code → (zh-CN, English).
REASONS: dict[str, tuple[str, str]] = {
    "no_worker_on_shift": ("该时段无人值班", "No worker is on duty in that period"),
    "too_far": (
        "距离太远:值班人员均无法按时到达",
        "Too far: no worker on duty can get there in time, even with nothing else to do",
    ),
    "not_enough_workers": (
        "人手不足:值班人员已排满",
        "Not enough workers: possible alone, but not together with the other tasks",
    ),
}

#: ``decomposed`` (cluster, sequence, improve) or ``direct`` (OR-Tools alone).
METHODS = ("decomposed", "direct")
Method = Literal["decomposed", "direct"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_UNREACHABLE_M = 1.0e8
#: Tasks and posts one plan may hold (the routing matrices grow with its square).
_MAX_NODES = 1500
_STREET_PRIORITY = 2
_BALANCE_COEFF = 1
_BALANCE_FLOOR = 0.85
_WORK_UNIT_S = 60
#: Stage A weighs the loads of one period finer: even shares matter more than walking there.
_SHARE_UNIT_S = 10


@dataclass(frozen=True)
class EventWorker:
    """A worker on duty for the event.

    Parameters
    ----------
    name : str
        The worker's name (as in ``workers`` / tracks).
    start : (lon, lat)
        WGS84 post where each of their shifts starts.
    end : (lon, lat), optional
        Where their shifts end (default: *start*).
    shifts : tuple of int, optional
        Shift numbers (1-based) the worker is on; ``None``: every shift.
    max_hours : float, optional
        Duty limit per shift (default: the shift's length).
    """

    name: str
    start: tuple[float, float]
    end: tuple[float, float] | None = None
    shifts: tuple[int, ...] | None = None
    max_hours: float | None = None


@dataclass
class PlanRoute:
    """One worker's route for one shift.

    Attributes
    ----------
    coords : ndarray
        WGS84 positions walked, in order (a position repeats where the worker
        waits or dwells).
    times_s : ndarray
        Seconds after the plan's start at which each position is reached.
    timetable : list of dict
        Tasks in order: key-area visits (``type`` "visit": ``key_area``,
        ``name``, ``slot``, ``slot_start``, ``slot_end``, ``arrive``,
        ``depart``, ``dwell_min``, ``lon``, ``lat``) and main-street pieces
        (``type`` "streets": ``piece``, ``streets``, ``length_m``, ``start``,
        ``end``).
    travel_m : float
        Walking between tasks (the plan's cost; street pieces excluded).
    street_m : float
        Main streets walked in the pieces.
    work_min : float
        Load: walking and dwelling minutes (waiting excluded).
    """

    worker: str
    shift: int
    start: pd.Timestamp
    end: pd.Timestamp
    coords: FloatArray
    times_s: FloatArray
    timetable: list[dict[str, Any]]
    travel_m: float
    street_m: float
    dwell_min: float
    work_min: float

    @property
    def visits(self) -> list[dict[str, Any]]:
        """The key-area visits of the timetable."""
        return [t for t in self.timetable if t["type"] == "visit"]

    def geometry(self) -> shapely.LineString:
        """The route as a WGS84 line string."""
        coords = self.coords if len(self.coords) >= 2 else np.vstack([self.coords] * 2)
        return shapely.LineString(coords)

    def feature(self, origin: pd.Timestamp) -> dict[str, Any]:
        """A GeoJSON Feature: the route, its timetable and per-position times.

        ``times_s`` counts seconds from *origin* (the plan's start), one per
        position of the geometry; ``stops`` are the visits (for GPX/KML
        waypoints).
        """
        coords = np.round(self.coords, 7).tolist()
        if len(coords) == 1:
            coords = coords * 2
        times = [round(float(t), 1) for t in self.times_s]
        if len(times) == 1:
            times = times * 2
        stops = [
            {
                "order": i + 1,
                "name": v["name"],
                "lon": v["lon"],
                "lat": v["lat"],
                "dwell_min": v["dwell_min"],
                "arrive": v["arrive"],
            }
            for i, v in enumerate(self.visits)
        ]
        return {
            "type": "Feature",
            "geometry": {"type": "LineString", "coordinates": coords},
            "properties": {
                "worker": self.worker,
                "shift": self.shift,
                "mode": "event",
                "valid_from": self.start.isoformat(),
                "valid_to": self.end.isoformat(),
                "length_m": round(self.travel_m + self.street_m, 1),
                "travel_m": round(self.travel_m, 1),
                "street_m": round(self.street_m, 1),
                "dwell_min": round(self.dwell_min, 1),
                "work_min": round(self.work_min, 1),
                "visits": len(stops),
                "timetable": self.timetable,
                "time_origin": origin.isoformat(),
                "times_s": times,
                "stops": stops,
            },
        }


@dataclass
class EventPlan:
    """Shift routes of every worker and what could not be met.

    Attributes
    ----------
    routes : list of PlanRoute
        One per worker and shift (workers without tasks walk nothing).
    unmet : list of dict
        Visits (``kind`` "visit") and street pieces (``kind`` "streets") not
        planned, each with ``reason`` (a code of :data:`REASONS`), ``reason_zh``,
        ``reason_en``.
    visits_required : int
        Key-area visits the window asks for.
    streets : dict
        ``main_length_m`` (required main streets), ``postman_m`` (the exact
        closed walk over them), ``exact``, ``pieces``.
    workers_needed : int
        Estimated workers per shift needed to meet everything (a lower bound
        from the work and the busiest period).
    """

    start: pd.Timestamp
    end: pd.Timestamp
    shifts: list[tuple[int, pd.Timestamp, pd.Timestamp]]
    routes: list[PlanRoute]
    unmet: list[dict[str, Any]]
    visits_required: int
    streets: dict[str, Any]
    workers_needed: int
    method: str
    solve_s: float
    objective: int
    stages: dict[str, float] = field(default_factory=dict)

    @property
    def travel_m(self) -> float:
        """Total walking between tasks over every route."""
        return float(sum(r.travel_m for r in self.routes))

    @property
    def balance(self) -> float | None:
        """Largest over smallest load (``work_min``) of the routes; ``None`` if one is empty."""
        loads = [r.work_min for r in self.routes]
        if not loads or min(loads) <= 0:
            return None
        return float(max(loads) / min(loads))

    @property
    def complete(self) -> bool:
        """Whether every visit and street piece is planned."""
        return not self.unmet

    def summary(self) -> dict[str, Any]:
        """JSON-ready totals."""
        planned = sum(len(r.visits) for r in self.routes)
        balance = self.balance
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "shifts": [
                {"shift": n, "start": a.isoformat(), "end": b.isoformat()}
                for n, a, b in self.shifts
            ],
            "workers": len({r.worker for r in self.routes}),
            "visits_required": self.visits_required,
            "visits_planned": planned,
            "visits_unmet": sum(1 for u in self.unmet if u["kind"] == "visit"),
            "street_pieces_unmet": sum(1 for u in self.unmet if u["kind"] == "streets"),
            "complete": self.complete,
            "travel_m": round(self.travel_m, 1),
            "work_min": [round(r.work_min, 1) for r in self.routes],
            "balance": None if balance is None else round(balance, 3),
            "workers_needed": self.workers_needed,
            "streets": self.streets,
            "method": self.method,
            "solve_s": round(self.solve_s, 2),
        }


# -- inputs ---------------------------------------------------------------------
def require_streets(
    net: StreetNetwork,
    road_ids: Sequence[int] | npt.NDArray[Any],
    area: shapely.Geometry | None,
    *,
    min_inside_m: float = 30.0,
) -> float:
    """Mark as required exactly the edges of roads *road_ids* inside *area*; return their length.

    An edge counts as inside when at least ``min(min_inside_m, half its
    length)`` of it lies in *area* (WGS84); every edge of those roads when
    *area* is None.

    Examples
    --------
    >>> from gridmap.patrol.network import example_streets, street_network
    >>> net = street_network(example_streets())
    >>> round(require_streets(net, [1], None))
    555
    """
    import pyproj

    ids = {int(i) for i in road_ids}
    area_m = None
    if area is not None:
        t = pyproj.Transformer.from_crs(4326, net.crs, always_xy=True)
        area_m = shapely.transform(area, t.transform, interleaved=False)  # type: ignore[arg-type]
        shapely.prepare(area_m)
    total = 0.0
    for _, _, d in net.graph.edges(data=True):
        keep = not d["connector"] and int(d["road_id"]) in ids
        if keep and area_m is not None:
            line = shapely.LineString(d["coords"])
            inside = float(shapely.length(shapely.intersection(line, area_m)))
            keep = inside >= min(min_inside_m, 0.5 * float(d["length"])) - 1e-9
        d["required"] = bool(keep)
        if keep:
            total += float(d["length"])
    return total


def _shifts(t0: pd.Timestamp, t1: pd.Timestamp, shift_hours: float | None) -> list[tuple[int, int]]:
    total = round((t1 - t0).total_seconds())
    if shift_hours is None:
        step = total if total <= 12 * 3600 else 8 * 3600
    else:
        if not (math.isfinite(shift_hours) and 0.5 <= shift_hours <= 24):
            raise BadInput("shift_hours must be between 0.5 and 24", field="shift_hours")
        step = round(shift_hours * 3600)
    out = []
    for a in range(0, total, step):
        out.append((a, min(a + step, total)))
    if len(out) > 1 and out[-1][1] - out[-1][0] < 0.25 * step:  # a stub joins the last shift
        last = out.pop()
        out[-1] = (out[-1][0], last[1])
    return out


@dataclass
class _Area:
    key: Any
    name: str | None
    priority: int
    frequency_s: int
    dwell_s: int
    node: int
    lon: float
    lat: float
    access_m: float


def _areas(
    areas: gpd.GeoDataFrame,
    net: StreetNetwork,
    t0: pd.Timestamp,
    t1: pd.Timestamp,
    frequency_min: float,
    dwell_min: float | None,
) -> tuple[list[_Area], list[tuple[int, int]]]:
    """Areas with their node, and each one's validity (seconds from *t0*)."""
    if areas.crs is not None and areas.crs.to_epsg() != 4326:
        areas = areas.to_crs(4326)
    geoms = np.asarray(areas.geometry.values, dtype=object)
    if len(geoms) and (shapely.is_missing(geoms) | shapely.is_empty(geoms)).any():
        raise BadInput("a key area has no geometry", field="key_areas")
    pts = shapely.point_on_surface(geoms)
    out: list[_Area] = []
    valid: list[tuple[int, int]] = []
    total = round((t1 - t0).total_seconds())

    def col(name: str) -> list[Any]:
        return list(areas[name]) if name in areas else [None] * len(areas)

    keys = col("id") if "id" in areas else list(areas.index)
    rows = zip(
        keys,
        col("name"),
        col("priority"),
        col("frequency_min"),
        col("dwell_min"),
        col("valid_from"),
        col("valid_to"),
        pts,
        strict=True,
    )
    for key, name, prio, freq, dwell, vf, vt, pt in rows:
        p = _int_or(prio, 3)
        f = _float_or(freq, frequency_min)
        d = _float_or(dwell, dwell_min if dwell_min is not None else default_dwell(p))
        if not (math.isfinite(f) and 5 <= f <= 24 * 60):
            raise BadInput(
                f"key area {name or key}: visit frequency must be 5–1440 minutes",
                field="frequency_min",
            )
        if not (math.isfinite(d) and 0 <= d < f):
            raise BadInput(
                f"key area {name or key}: dwell must be at least 0 and shorter than the frequency",
                field="dwell_min",
            )
        x, y = net.project(float(shapely.get_x(pt)), float(shapely.get_y(pt)))
        node = net.nearest_node(x, y)
        nx_, ny_ = net.xy([node])[0]
        lon, lat = net.to_wgs84(np.array([[nx_, ny_]]))[0]
        out.append(
            _Area(
                key=_plain(key),
                name=None if name is None or name != name else str(name),
                priority=p,
                frequency_s=round(f * 60),
                dwell_s=round(d * 60),
                node=int(node),
                lon=float(lon),
                lat=float(lat),
                access_m=float(math.hypot(nx_ - x, ny_ - y)),
            )
        )
        a = 0 if _missing(vf) else int((pd.Timestamp(vf) - t0).total_seconds())
        b = total if _missing(vt) else int((pd.Timestamp(vt) - t0).total_seconds())
        valid.append((max(a, 0), min(b, total)))
    return out, valid


def _missing(v: Any) -> bool:
    return v is None or v is pd.NaT or (isinstance(v, float) and math.isnan(v))


def _int_or(v: Any, default: int) -> int:
    try:
        i = int(v)
    except (TypeError, ValueError, OverflowError):
        return default
    return min(max(i, 1), 9)


def _float_or(v: Any, default: float) -> float:
    if v is None or isinstance(v, bool):
        return float(default)
    try:
        f = float(v)
    except (TypeError, ValueError):
        return float(default)
    return float(default) if math.isnan(f) else f


def _plain(v: Any) -> Any:
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return v


@dataclass
class _Piece:
    edges: list[EdgeKey]
    length_m: float
    required_m: float
    names: list[str]


def _pieces(net: StreetNetwork, piece_m: float) -> tuple[list[_Piece], dict[str, Any]]:
    """The exact postman walk over the required edges, cut into consecutive pieces."""
    req = net.required_edges
    if not req:
        return [], {"main_length_m": 0.0, "postman_m": 0.0, "exact": True, "pieces": 0}
    walk = postman_route(net, required=req)
    g = net.graph
    cuts: list[list[EdgeKey]] = []
    cur: list[EdgeKey] = []
    acc = 0.0
    for e in walk.edges:
        cur.append(e)
        acc += float(g.edges[e]["length"])
        if acc >= piece_m:
            cuts.append(cur)
            cur, acc = [], 0.0
    if cur:
        if cuts and acc < piece_m / 3:
            cuts[-1].extend(cur)
        else:
            cuts.append(cur)
    pieces = []
    for part in cuts:
        flags = [bool(g.edges[e]["required"]) for e in part]
        if not any(flags):
            continue
        first = flags.index(True)
        last = len(flags) - 1 - flags[::-1].index(True)
        part = part[first : last + 1]
        names: list[str] = []
        for e in part:
            d = g.edges[e]
            if d["required"]:
                n = street_name(d["name"])
                if n not in names:
                    names.append(n)
        pieces.append(
            _Piece(
                edges=part,
                length_m=float(sum(g.edges[e]["length"] for e in part)),
                required_m=float(sum(g.edges[e]["length"] for e in part if g.edges[e]["required"])),
                names=names,
            )
        )
    info = {
        "main_length_m": round(walk.required_length_m, 1),
        "postman_m": round(walk.length_m, 1),
        "exact": bool(walk.exact),
        "pieces": len(pieces),
    }
    return pieces, info


# -- the model ------------------------------------------------------------------
@dataclass
class _Vehicle:
    worker: int
    shift: int  # index into shifts
    start: int  # network node
    end: int
    open_s: int
    close_s: int
    span_s: int


@dataclass
class _Task:
    kind: Literal["visit", "streets"]
    entry: int
    exit: int
    open_s: int  # earliest start of service
    close_s: int  # latest start of service
    service_s: int
    penalty: int
    shift: int  # owner shift index
    area: int = -1
    slot: int = -1
    slot_start: int = 0
    slot_end: int = 0
    piece: int = -1


@dataclass
class _Model:
    """Tasks, vehicles and the matrices of the whole event."""

    net: StreetNetwork
    speed: float
    horizon: int
    shifts: list[tuple[int, int]]
    vehicles: list[_Vehicle]
    tasks: list[_Task]
    travel_m: FloatArray  # model node x model node (exit -> entry)
    travel_s: IntArray
    service_s: IntArray
    unique: list[int]  # network nodes with shortest-path rows
    pos: dict[int, int]  # network node -> row in unique
    pred: npt.NDArray[np.int32]
    targets: dict[int, int] = field(default_factory=dict)  # shift -> mean load (s)

    @property
    def nv(self) -> int:
        return len(self.vehicles)

    def node_of_task(self, t: int) -> int:
        return 2 * self.nv + t

    def entry(self, node: int) -> int:
        nv = self.nv
        if node < nv:
            return self.vehicles[node].start
        if node < 2 * nv:
            return self.vehicles[node - nv].end
        return self.tasks[node - 2 * nv].entry

    def exit(self, node: int) -> int:
        nv = self.nv
        if node < 2 * nv:
            return self.entry(node)
        return self.tasks[node - 2 * nv].exit


def _vehicles(
    net: StreetNetwork, workers: Sequence[EventWorker], shifts: list[tuple[int, int]]
) -> list[_Vehicle]:
    """One vehicle per worker and shift the worker works."""
    vehicles: list[_Vehicle] = []
    for w, worker in enumerate(workers):
        s_node = net.nearest_node(*net.project(*worker.start))
        e_node = net.nearest_node(*net.project(*(worker.end or worker.start)))
        for s, (a, b) in enumerate(shifts):
            if worker.shifts is not None and (s + 1) not in worker.shifts:
                continue
            span = b - a if worker.max_hours is None else min(b - a, int(worker.max_hours * 3600))
            vehicles.append(_Vehicle(w, s, int(s_node), int(e_node), a, b, span))
    return vehicles


def _visit_tasks(
    areas: list[_Area], validity: list[tuple[int, int]], shifts: list[tuple[int, int]], horizon: int
) -> list[_Task]:
    """One visit per key area and frequency slot, owned by the shift the slot opens in."""

    def owner(t: int) -> int:
        for s, (a, b) in enumerate(shifts):
            if a <= t < b:
                return s
        return len(shifts) - 1

    tasks: list[_Task] = []
    for i, (area, (va, vb)) in enumerate(zip(areas, validity, strict=True)):
        f = area.frequency_s
        for k in range(math.ceil(horizon / f)):
            a, b = max(k * f, va), min((k + 1) * f, horizon, vb)
            if b - a < max(area.dwell_s, 1):
                continue
            tasks.append(
                _Task(
                    "visit",
                    area.node,
                    area.node,
                    a,
                    b - area.dwell_s,
                    area.dwell_s,
                    priority_penalty(area.priority),
                    owner(a),
                    area=i,
                    slot=k + 1,
                    slot_start=a,
                    slot_end=b,
                )
            )
    return tasks


def _street_tasks(pieces: list[_Piece], shifts: list[tuple[int, int]], speed: float) -> list[_Task]:
    """One walk of every street piece per shift."""
    tasks: list[_Task] = []
    for s, (a, b) in enumerate(shifts):
        for p, piece in enumerate(pieces):
            service = math.ceil(piece.length_m / speed)
            tasks.append(
                _Task(
                    "streets",
                    piece.edges[0][0],
                    piece.edges[-1][1],
                    a,
                    max(a, b - service),
                    service,
                    priority_penalty(_STREET_PRIORITY),
                    s,
                    piece=p,
                )
            )
    return tasks


def _build_model(
    net: StreetNetwork,
    areas: list[_Area],
    validity: list[tuple[int, int]],
    pieces: list[_Piece],
    workers: Sequence[EventWorker],
    shifts: list[tuple[int, int]],
    horizon: int,
    speed: float,
) -> _Model:
    vehicles = _vehicles(net, workers, shifts)
    tasks = _visit_tasks(areas, validity, shifts, horizon) + _street_tasks(pieces, shifts, speed)
    if len(tasks) + 2 * len(vehicles) > _MAX_NODES:
        raise BadInput(
            f"the plan asks for {len(tasks)} visits and street walks with {len(vehicles)} "
            f"worker shifts, more than one plan takes ({_MAX_NODES}): split the area or "
            "the window, or visit less often",
            field="key_areas",
        )
    nodes: list[int] = []
    for v in vehicles:
        nodes += [v.start, v.end]
    for t in tasks:
        nodes += [t.entry, t.exit]
    unique = sorted(set(nodes))
    pos = {n: i for i, n in enumerate(unique)}
    if unique:
        rows = [net.index_of(n) for n in unique]
        dist, pred = _csgraph.dijkstra(
            net.matrix(), directed=False, indices=rows, return_predecessors=True
        )
        d_u = dist[:, rows]
    else:
        pred = np.zeros((0, 0), dtype=np.int32)
        d_u = np.zeros((0, 0))
    d_u = np.where(np.isfinite(d_u), d_u, _UNREACHABLE_M)
    nv = len(vehicles)
    entry = np.array(
        [pos[v.start] for v in vehicles]
        + [pos[v.end] for v in vehicles]
        + [pos[t.entry] for t in tasks],
        dtype=np.int64,
    )
    exit_ = np.array(
        [pos[v.start] for v in vehicles]
        + [pos[v.end] for v in vehicles]
        + [pos[t.exit] for t in tasks],
        dtype=np.int64,
    )
    travel_m = d_u[np.ix_(exit_, entry)] if len(entry) else np.zeros((0, 0))
    np.fill_diagonal(travel_m, 0.0)
    travel_s = np.ceil(travel_m / speed).astype(np.int64)
    service = np.r_[np.zeros(2 * nv, dtype=np.int64), [t.service_s for t in tasks]].astype(np.int64)
    model = _Model(
        net=net,
        speed=speed,
        horizon=horizon,
        shifts=shifts,
        vehicles=vehicles,
        tasks=tasks,
        travel_m=travel_m,
        travel_s=travel_s,
        service_s=service,
        unique=unique,
        pos=pos,
        pred=pred.astype(np.int32),
    )
    model.targets = _targets(model)
    return model


def _nearest_travel_s(m: _Model) -> IntArray:
    """Per task: seconds to the nearest other place (task or post) — a travel estimate."""
    nv, nt = m.nv, len(m.tasks)
    if nt == 0:
        return np.zeros(0, dtype=np.int64)
    block = m.travel_s[:, 2 * nv :].astype(float).copy()
    block[2 * nv + np.arange(nt), np.arange(nt)] = np.inf
    # entering a visit of the same place (another slot) costs nothing: use other places
    entries = np.array([t.entry for t in m.tasks])
    exits = np.array([t.exit for t in m.tasks])
    block[2 * nv :][exits[:, None] == entries[None, :]] = np.inf
    nearest = block.min(axis=0)
    return np.where(np.isfinite(nearest), nearest, 0).astype(np.int64)


def _targets(m: _Model) -> dict[int, int]:
    near = _nearest_travel_s(m)
    out: dict[int, int] = {}
    for s in range(len(m.shifts)):
        veh = [v for v in m.vehicles if v.shift == s]
        if not veh:
            continue
        idx = [i for i, t in enumerate(m.tasks) if t.shift == s]
        work = sum(m.tasks[i].service_s + int(near[i]) for i in idx)
        out[s] = int(work / len(veh))
    return out


def _workers_needed(m: _Model) -> int:
    """A lower-bound estimate of workers per shift: total work, and the busiest period."""
    near = _nearest_travel_s(m)
    need = 1 if m.tasks else 0
    for s, (a, b) in enumerate(m.shifts):
        idx = [i for i, t in enumerate(m.tasks) if t.shift == s]
        if not idx:
            continue
        work = sum(m.tasks[i].service_s + int(near[i]) for i in idx)
        need = max(need, math.ceil(work / max(b - a, 1)))
        visits = [i for i in idx if m.tasks[i].kind == "visit"]
        starts = sorted({m.tasks[i].slot_start for i in visits})
        for t in starts:  # visits whose slot starts at t must be done within their slot
            group = [i for i in visits if m.tasks[i].slot_start == t]
            length = max(m.tasks[i].slot_end - t for i in group)
            load = sum(m.tasks[i].service_s + int(near[i]) for i in group)
            need = max(need, math.ceil(load / max(length, 1)))
    return int(need)


# -- OR-Tools -------------------------------------------------------------------
@dataclass
class _Built:
    manager: Any
    routing: Any
    local: list[int]  # local node -> model node
    vehicles: list[int]  # local vehicle -> model vehicle


def _routing(m: _Model, veh: list[int], tasks: list[int], *, balance: bool) -> _Built:
    """A routing model over vehicles *veh* and tasks *tasks* of *m* (same constraints)."""
    from ortools.constraint_solver import pywrapcp

    nv = len(veh)
    local = [v for v in veh] + [m.nv + v for v in veh] + [m.node_of_task(t) for t in tasks]
    sel = np.asarray(local, dtype=np.int64)
    cost = np.rint(m.travel_m[np.ix_(sel, sel)]).astype(np.int64)
    trans = (m.service_s[sel][:, None] + m.travel_s[np.ix_(sel, sel)]).astype(np.int64)
    manager = pywrapcp.RoutingIndexManager(len(local), nv, list(range(nv)), list(range(nv, 2 * nv)))
    routing = pywrapcp.RoutingModel(manager)
    cost_cb = routing.RegisterTransitMatrix(cost.tolist())
    routing.SetArcCostEvaluatorOfAllVehicles(cost_cb)
    time_cb = routing.RegisterTransitMatrix(trans.tolist())
    routing.AddDimension(time_cb, m.horizon, m.horizon, False, "time")
    tdim = routing.GetDimensionOrDie("time")
    for k, v in enumerate(veh):
        vv = m.vehicles[v]
        tdim.CumulVar(routing.Start(k)).SetRange(vv.open_s, vv.close_s)
        tdim.CumulVar(routing.End(k)).SetRange(vv.open_s, vv.close_s)
        tdim.SetSpanUpperBoundForVehicle(vv.span_s, k)
    for j, t in enumerate(tasks):
        task = m.tasks[t]
        idx = manager.NodeToIndex(2 * nv + j)
        tdim.CumulVar(idx).SetRange(task.open_s, task.close_s)
        routing.AddDisjunction([idx], task.penalty)
    if balance and nv > 1:
        # Load in units of _WORK_UNIT_S seconds; a quadratic cost above 85 % of
        # the expected mean load evens the loads out (convex: moving work from
        # a busier to a less busy worker always pays).
        unit = _WORK_UNIT_S
        work = np.rint(trans / unit).astype(np.int64)
        work_cb = routing.RegisterTransitMatrix(work.tolist())
        routing.AddDimension(work_cb, 0, 10 * m.horizon // unit + 1, True, "work")
        wdim = routing.GetDimensionOrDie("work")
        for k, v in enumerate(veh):
            target = m.targets.get(m.vehicles[v].shift)
            if target:
                bound = int(_BALANCE_FLOOR * target / unit)
                wdim.SetQuadraticCostSoftSpanUpperBoundForVehicle(
                    pywrapcp.BoundCost(bound, _BALANCE_COEFF), k
                )
    return _Built(manager, routing, local, list(veh))


def _params(seconds: float, *, first: str = "PATH_CHEAPEST_ARC", gls: bool = True) -> Any:
    from ortools.constraint_solver import pywrapcp, routing_enums_pb2

    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = getattr(routing_enums_pb2.FirstSolutionStrategy, first)
    params.local_search_metaheuristic = (
        routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
        if gls
        else routing_enums_pb2.LocalSearchMetaheuristic.GREEDY_DESCENT
    )
    params.time_limit.FromMilliseconds(max(int(seconds * 1000), 20))
    return params


def _read(b: _Built, solution: Any, m: _Model) -> dict[int, list[int]]:
    """Model vehicle → model task indices in order."""
    out: dict[int, list[int]] = {}
    for k, v in enumerate(b.vehicles):
        seq = []
        idx = solution.Value(b.routing.NextVar(b.routing.Start(k)))
        while not b.routing.IsEnd(idx):
            node = b.manager.IndexToNode(idx)
            seq.append(b.local[node] - 2 * m.nv)
            idx = solution.Value(b.routing.NextVar(idx))
        out[v] = seq
    return out


def _solve_direct(m: _Model, seconds: float) -> tuple[dict[int, list[int]], int]:
    b = _routing(m, list(range(m.nv)), list(range(len(m.tasks))), balance=True)
    sol = b.routing.SolveWithParameters(_params(seconds, first="AUTOMATIC"))
    if sol is None:
        return {v: [] for v in range(m.nv)}, 0
    return _read(b, sol, m), int(sol.ObjectiveValue())


def _period(m: _Model, tasks: Sequence[int], default: int) -> int:
    slots = [
        m.tasks[i].slot_end - m.tasks[i].slot_start for i in tasks if m.tasks[i].kind == "visit"
    ]
    return max(min(slots, default=default), 1)


def _cluster(m: _Model, shift: int, seconds: float) -> dict[int, list[int]]:
    """Stage A: the shift's key areas shared among its vehicles, each share in walking order.

    One period's visits form a small routing problem from a free depot (so
    each share is an open path through its areas; an area's node carries its
    visits' dwell per period). Loads are evened by a quadratic cost above 70 %
    of the expected mean, walking comes second; shares are matched to workers
    by their posts (Hungarian method). Returns model vehicle → area indices in
    path order.
    """
    from ortools.constraint_solver import pywrapcp

    veh = [i for i, v in enumerate(m.vehicles) if v.shift == shift]
    own = [i for i, t in enumerate(m.tasks) if t.shift == shift and t.kind == "visit"]
    if not veh or not own:
        return {v: [] for v in veh}
    a, b = m.shifts[shift]
    length = max(b - a, 1)
    period = _period(m, own, length)
    periods = max(length / period, 1.0)
    groups: dict[tuple[str, int], list[int]] = {}
    for i in own:
        t = m.tasks[i]
        groups.setdefault(("a", t.area) if t.kind == "visit" else ("p", i), []).append(i)
    keys = list(groups)
    reps = [groups[k][0] for k in keys]
    service = np.array(
        [sum(m.tasks[i].service_s for i in groups[k]) / periods for k in keys], dtype=float
    )
    n = len(keys) + 1
    sel = np.asarray([m.node_of_task(r) for r in reps], dtype=np.int64)
    travel = np.zeros((n, n))
    travel[1:, 1:] = m.travel_m[np.ix_(sel, sel)]
    trans = np.rint(np.r_[0.0, service][:, None] + np.ceil(travel / m.speed)).astype(np.int64)
    k_veh = len(veh)
    manager = pywrapcp.RoutingIndexManager(n, k_veh, 0)
    routing = pywrapcp.RoutingModel(manager)
    cost_cb = routing.RegisterTransitMatrix(np.rint(travel).astype(np.int64).tolist())
    routing.SetArcCostEvaluatorOfAllVehicles(cost_cb)
    unit = _SHARE_UNIT_S
    load = np.rint(trans / unit).astype(np.int64)
    routing.AddDimension(
        routing.RegisterTransitMatrix(load.tolist()), 0, 100 * length, True, "load"
    )
    dim = routing.GetDimensionOrDie("load")
    mean = float(service.sum() + _near_m(travel[1:, 1:]) / m.speed) / k_veh / unit
    for k, v in enumerate(veh):
        share = m.vehicles[v].span_s / length
        dim.SetQuadraticCostSoftSpanUpperBoundForVehicle(
            pywrapcp.BoundCost(int(0.7 * mean * share), 1), k
        )
        dim.SetCumulVarSoftUpperBound(routing.End(k), int(0.8 * period * share / unit), 1000)
    params = _params(seconds, first="PARALLEL_CHEAPEST_INSERTION", gls=False)
    sol = routing.SolveWithParameters(params)  # greedy descent: quick and repeatable
    parts: list[list[int]] = []
    if sol is not None:
        for k in range(k_veh):
            seq = []
            idx = sol.Value(routing.NextVar(routing.Start(k)))
            while not routing.IsEnd(idx):
                seq.append(keys[manager.IndexToNode(idx) - 1][1])
                idx = sol.Value(routing.NextVar(idx))
            parts.append(seq)
    else:  # pragma: no cover - a free depot always has a solution
        parts = [[k[1] for k in keys[c::k_veh]] for c in range(k_veh)]
    node = {k[1]: m.node_of_task(groups[k][0]) for k in keys}
    match = np.zeros((k_veh, k_veh))
    for c, part in enumerate(parts):
        if part:
            ends = [node[part[0]], node[part[-1]]]
            for j, v in enumerate(veh):
                match[c, j] = float(m.travel_m[v, ends].min())
    rows_, cols_ = _optimize.linear_sum_assignment(match)
    return {veh[j]: parts[c] for c, j in zip(rows_, cols_, strict=True)}


def _share_pieces(m: _Model, routes: dict[int, list[int]]) -> dict[int, list[int]]:
    """Street pieces to workers: longest first, each to the least loaded near worker.

    A worker's load is its route's (walking and dwelling) plus the pieces given
    so far, each with the walk from and back to the worker's nearest place.
    """
    loads = {v: _load(m, v, seq) for v, seq in routes.items()}
    out: dict[int, list[int]] = {v: [] for v in routes}
    pieces = [i for i, t in enumerate(m.tasks) if t.kind == "streets"]
    for i in sorted(pieces, key=lambda i: -m.tasks[i].service_s):
        x = m.node_of_task(i)
        best: tuple[float, int] | None = None
        for v, seq in routes.items():
            if m.vehicles[v].shift != m.tasks[i].shift:
                continue
            places = [v, *(m.node_of_task(j) for j in seq)]
            detour = float((m.travel_s[places, x] + m.travel_s[x, places]).min())
            score = loads[v] + m.tasks[i].service_s + detour
            if best is None or score < best[0]:
                best = (score, v)
        if best is not None:
            loads[best[1]] = best[0]
            out[best[1]].append(i)
    return out


def _near_m(d: FloatArray) -> float:
    """Sum over places of the distance to the nearest other place."""
    if len(d) < 2:
        return 0.0
    d = d.copy()
    np.fill_diagonal(d, np.inf)
    return float(np.minimum(d.min(axis=1), _UNREACHABLE_M).sum())


def _zigzag(m: _Model, v: int, order: list[int]) -> list[int]:
    """Stage B: a worker's visits, period after period, along its path and back.

    Odd periods walk the share's path forward, even ones backward, so the
    last area of one period is the first of the next (two visits either side
    of the period boundary, no walk between): each period costs one open path.
    """
    veh = m.vehicles[v]
    if not order:
        return []
    rank = {area: i for i, area in enumerate(order)}
    mine = [
        i
        for i, t in enumerate(m.tasks)
        if t.kind == "visit" and t.shift == veh.shift and t.area in rank
    ]
    period = _period(m, mine, veh.close_s - veh.open_s)
    by_area = {m.tasks[i].area: m.node_of_task(i) for i in mine}
    first, last = by_area[order[0]], by_area[order[-1]]
    flip = m.travel_m[v, last] < m.travel_m[v, first]
    a0 = m.shifts[veh.shift][0]

    def key(i: int) -> tuple[int, int]:
        t = m.tasks[i]
        p = (t.slot_start - a0) // period
        r = rank[t.area]
        return (p, -r if (p % 2 == 1) != flip else r)

    return sorted(mine, key=key)


@dataclass
class _Times:
    """Earliest and latest service starts along a route (for O(1) insertion checks)."""

    nodes: list[int]  # model nodes: start, tasks..., end
    early: FloatArray
    late: FloatArray


def _times(m: _Model, v: int, seq: list[int], *, span_from_open: bool = True) -> _Times:
    """Earliest and latest starts, leaving the post at the shift's start.

    With *span_from_open* the route must end within the duty limit of the
    shift's start (the construction's conservative reading of the limit).
    """
    veh = m.vehicles[v]
    nodes = [v, *(m.node_of_task(i) for i in seq), m.nv + v]
    n = len(nodes)
    opens = np.array([veh.open_s] + [m.tasks[i].open_s for i in seq] + [veh.open_s], float)
    closes = np.array(
        [veh.close_s]
        + [m.tasks[i].close_s for i in seq]
        + [min(veh.close_s, veh.open_s + veh.span_s) if span_from_open else veh.close_s],
        float,
    )
    early = np.empty(n)
    early[0] = veh.open_s
    for k in range(1, n):
        a, b = nodes[k - 1], nodes[k]
        early[k] = max(early[k - 1] + m.service_s[a] + m.travel_s[a, b], opens[k])
    late = np.empty(n)
    late[-1] = closes[-1]
    for k in range(n - 2, -1, -1):
        a, b = nodes[k], nodes[k + 1]
        late[k] = min(closes[k], late[k + 1] - m.service_s[a] - m.travel_s[a, b])
    return _Times(nodes, early, late)


def _feasible(m: _Model, v: int, seq: list[int]) -> list[int]:
    """Drop tasks (first the one that breaks its window) until *seq* fits vehicle *v*."""
    veh = m.vehicles[v]
    kept: list[int] = []
    t = float(veh.open_s)
    prev = v
    for i in seq:
        node = m.node_of_task(i)
        begin = max(t + m.service_s[prev] + m.travel_s[prev, node], m.tasks[i].open_s)
        if begin > m.tasks[i].close_s:
            continue
        kept.append(i)
        t, prev = float(begin), node
    while kept:
        tm = _times(m, v, kept)
        if (tm.early <= tm.late + 1e-9).all():
            break
        kept.pop()
    return kept


def _load(m: _Model, v: int, seq: list[int]) -> float:
    nodes = [v, *(m.node_of_task(i) for i in seq), m.nv + v]
    arr = np.asarray(nodes)
    return float(m.service_s[arr].sum() + m.travel_s[arr[:-1], arr[1:]].sum())


def _insert(m: _Model, routes: dict[int, list[int]], todo: list[int]) -> None:
    """Cheapest feasible insertion of tasks *todo* into *routes*, most important first.

    The score of a place is the extra walk (metres) plus the route's load
    after it (seconds), the model's objective terms, so loads stay even.
    """
    loads = {v: _load(m, v, seq) for v, seq in routes.items()}
    times = {v: _times(m, v, seq) for v, seq in routes.items()}
    for i in sorted(todo, key=lambda i: (-m.tasks[i].penalty, m.tasks[i].open_s)):
        task = m.tasks[i]
        x = m.node_of_task(i)
        best: tuple[float, int, int] | None = None
        for v, tm in times.items():
            veh = m.vehicles[v]
            if veh.open_s > task.close_s or veh.close_s < task.open_s + task.service_s:
                continue
            nodes = np.asarray(tm.nodes)
            a, b = nodes[:-1], nodes[1:]
            begin = np.maximum(tm.early[:-1] + m.service_s[a] + m.travel_s[a, x], task.open_s)
            after = begin + task.service_s + m.travel_s[x, b]
            ok = (begin <= task.close_s) & (after <= tm.late[1:])
            if not ok.any():
                continue
            extra = m.travel_m[a, x] + m.travel_m[x, b] - m.travel_m[a, b]
            added_s = m.travel_s[a, x] + task.service_s + m.travel_s[x, b] - m.travel_s[a, b]
            score = np.where(ok, extra + loads[v] + added_s, np.inf)
            k = int(np.argmin(score))
            if best is None or score[k] < best[0]:
                best = (float(score[k]), v, k)
        if best is None:
            continue
        _, v, k = best
        routes[v].insert(k, i)
        times[v] = _times(m, v, routes[v])
        loads[v] = _load(m, v, routes[v])


def _best_place(m: _Model, tm: _Times, i: int) -> tuple[int, float, float] | None:
    """Cheapest feasible position for task *i* in a route: (position, extra m, added s)."""
    task = m.tasks[i]
    x = m.node_of_task(i)
    nodes = np.asarray(tm.nodes)
    a, b = nodes[:-1], nodes[1:]
    begin = np.maximum(tm.early[:-1] + m.service_s[a] + m.travel_s[a, x], task.open_s)
    ok = (begin <= task.close_s) & (begin + task.service_s + m.travel_s[x, b] <= tm.late[1:])
    if not ok.any():
        return None
    extra = np.where(ok, m.travel_m[a, x] + m.travel_m[x, b] - m.travel_m[a, b], np.inf)
    k = int(np.argmin(extra))
    added = m.travel_s[a[k], x] + task.service_s + m.travel_s[x, b[k]] - m.travel_s[a[k], b[k]]
    return k, float(extra[k]), float(added)


def _rebalance(m: _Model, routes: dict[int, list[int]], tolerance: float, seconds: float) -> int:
    """Move tasks off the busiest route (or onto the idlest) until loads are within *tolerance*.

    Each step takes the single move (a task to its cheapest feasible place in
    another route) with the least extra walking among those that bring the
    ratio of the largest to the smallest load within the tolerance, else the
    one that lowers it most. Returns the moves made.
    """
    deadline = _time.perf_counter() + seconds
    moves = 0
    while len(routes) > 1 and _time.perf_counter() < deadline:
        loads = {v: _load(m, v, seq) for v, seq in routes.items()}
        hi = max(loads, key=lambda v: loads[v])
        lo = min(loads, key=lambda v: loads[v])
        if loads[lo] > 0 and loads[hi] <= (1 + tolerance) * loads[lo]:
            break
        ratio = loads[hi] / max(loads[lo], 1.0)
        times = {v: _times(m, v, seq) for v, seq in routes.items()}
        best: tuple[float, float, int, int, int, int] | None = None
        pairs = [(hi, d) for d in routes if d != hi] + [
            (s_, lo) for s_ in routes if s_ not in (hi, lo)
        ]
        for src, dst in pairs:
            seq = routes[src]
            for k, i in enumerate(seq):
                place = _best_place(m, times[dst], i)
                if place is None:
                    continue
                rest = seq[:k] + seq[k + 1 :]
                new = dict(loads)
                new[src] = _load(m, src, rest)
                new[dst] = loads[dst] + place[2]
                r = max(new.values()) / max(min(new.values()), 1.0)
                if r >= ratio - 1e-9:
                    continue
                nodes = [src, *(m.node_of_task(j) for j in seq), m.nv + src]
                saved = (
                    m.travel_m[nodes[k], nodes[k + 1]]
                    + m.travel_m[nodes[k + 1], nodes[k + 2]]
                    - m.travel_m[nodes[k], nodes[k + 2]]
                )
                good = 0.0 if r <= 1 + tolerance else round(r, 3)  # within tolerance: cheapest
                key = (good, place[1] - float(saved), src, k, dst, place[0])
                if best is None or key[:2] < best[:2]:
                    best = key
        if best is None:
            break
        _, _, src, k, dst, pos = best
        task = routes[src].pop(k)
        routes[dst].insert(pos, task)
        moves += 1
    return moves


def _solve_decomposed(
    m: _Model, seconds: float, tolerance: float
) -> tuple[dict[int, list[int]], int, dict[str, float]]:
    t = _time.perf_counter()
    stages: dict[str, float] = {}
    nv = m.nv
    if nv == 0:
        return {}, 0, stages
    # greedy descent stops by itself once no move helps; the cap is a safety net
    budget_a = max(0.25 * seconds, 0.5) / max(len(m.shifts), 1)
    shares: dict[int, list[int]] = {}
    for s in range(len(m.shifts)):
        shares.update(_cluster(m, s, budget_a))
    stages["cluster_s"] = _time.perf_counter() - t
    t = _time.perf_counter()
    routes = {v: _feasible(m, v, _zigzag(m, v, shares.get(v, []))) for v in range(nv)}
    for v, own in _share_pieces(m, routes).items():  # a worker's pieces where they fit best
        _insert(m, {v: routes[v]}, own)
    done = {i for seq in routes.values() for i in seq}
    _insert(m, routes, [i for i in range(len(m.tasks)) if i not in done])
    stages["construct_s"] = _time.perf_counter() - t
    t = _time.perf_counter()
    b = _routing(m, list(range(nv)), list(range(len(m.tasks))), balance=True)
    left = 0.85 * seconds - stages["cluster_s"] - stages["construct_s"]
    params = _params(max(left, 0.05))
    b.routing.CloseModelWithParameters(params)
    initial = b.routing.ReadAssignmentFromRoutes(
        [[b.manager.NodeToIndex(2 * nv + i) for i in routes[v]] for v in range(nv)], True
    )
    sol = (
        b.routing.SolveFromAssignmentWithParameters(initial, params)
        if initial is not None
        else b.routing.SolveWithParameters(params)
    )
    stages["improve_s"] = _time.perf_counter() - t
    objective = 0
    if sol is not None:
        routes, objective = _read(b, sol, m), int(sol.ObjectiveValue())
    t = _time.perf_counter()
    spent = stages["cluster_s"] + stages["construct_s"] + stages["improve_s"]
    stages["moves"] = _rebalance(m, routes, tolerance, max(seconds - spent, 0.2))
    stages["rebalance_s"] = _time.perf_counter() - t
    return routes, objective, stages


# -- from routes to timetables and geometry --------------------------------------
def _path(m: _Model, a: int, b: int) -> list[int]:
    """Network nodes of the shortest path a → b."""
    if a == b:
        return [a]
    row = m.pred[m.pos[a]]
    target = m.net.index_of(b)
    path = [target]
    while row[path[-1]] >= 0:
        path.append(int(row[path[-1]]))
    nodes = m.net.nodes
    out = [nodes[i] for i in path[::-1]]
    return out if out[0] == a else [a, b]


def _timed(coords: FloatArray, t0: float, t1: float) -> FloatArray:
    """Times along *coords* spread by distance from *t0* to *t1*."""
    if len(coords) <= 1:
        return np.array([t0] * len(coords))
    seg = np.hypot(*np.diff(coords, axis=0).T)
    cum = np.r_[0.0, np.cumsum(seg)]
    if cum[-1] <= 0:
        return np.linspace(t0, t1, len(coords))
    out: FloatArray = t0 + (t1 - t0) * cum / cum[-1]
    return out


def _iso(origin: pd.Timestamp, seconds: float) -> str:
    return (origin + pd.Timedelta(seconds=float(seconds))).isoformat()


def _visit_slot(area: _Area, task: _Task, origin: pd.Timestamp) -> dict[str, Any]:
    """The key area and visit slot of a visit task, as in the timetable and the unmet list."""
    return {
        "key_area": area.key,
        "name": area.name,
        "priority": area.priority,
        "slot": task.slot,
        "slot_start": _iso(origin, task.slot_start),
        "slot_end": _iso(origin, task.slot_end),
    }


def _route(
    m: _Model,
    v: int,
    seq: list[int],
    areas: list[_Area],
    pieces: list[_Piece],
    workers: Sequence[EventWorker],
    origin: pd.Timestamp,
) -> PlanRoute:
    veh = m.vehicles[v]
    net = m.net
    # on duty from the start of the shift, unless the duty limit asks for a later start
    tm = _times(m, v, seq, span_from_open=False)
    begin_s = float(veh.open_s)
    if tm.early[-1] - veh.open_s > veh.span_s:
        begin_s = float(max(veh.open_s, tm.late[0]))
    parts_xy: list[FloatArray] = [net.xy([veh.start])]
    parts_t: list[FloatArray] = [np.array([begin_s])]
    timetable: list[dict[str, Any]] = []
    t = begin_s
    prev_node = v  # model node of the start
    travel_m = street_m = dwell_s = 0.0
    walk_s = 0.0

    def walk(a: int, b: int, t_a: float, t_b: float) -> None:
        nodes = _path(m, a, b)
        if len(nodes) < 2:
            return
        xy = net.path_coords(nodes)
        parts_xy.append(xy[1:])
        parts_t.append(_timed(xy, t_a, t_b)[1:])

    for order, ti in enumerate([*seq, None]):
        node = m.nv + v if ti is None else m.node_of_task(ti)
        depart = t + float(m.service_s[prev_node])
        arrive = depart + float(m.travel_s[prev_node, node])
        travel_m += float(m.travel_m[prev_node, node])
        walk_s += float(m.travel_s[prev_node, node])
        walk(m.exit(prev_node), m.entry(node), depart, arrive)
        if ti is None:
            t = arrive
            break
        task = m.tasks[ti]
        begin = max(arrive, float(task.open_s))
        if begin > arrive:
            parts_xy.append(net.xy([task.entry]))
            parts_t.append(np.array([begin]))
        end = begin + task.service_s
        if task.kind == "visit":
            area = areas[task.area]
            parts_xy.append(net.xy([task.entry]))
            parts_t.append(np.array([end]))
            dwell_s += task.service_s
            timetable.append(
                {
                    "type": "visit",
                    "order": order + 1,
                    **_visit_slot(area, task, origin),
                    "arrive": _iso(origin, begin),
                    "depart": _iso(origin, end),
                    "dwell_min": round(task.service_s / 60, 2),
                    "lon": round(area.lon, 7),
                    "lat": round(area.lat, 7),
                    "late": bool(begin > task.close_s),
                }
            )
        else:
            piece = pieces[task.piece]
            xy = np.concatenate(
                [net.oriented(*piece.edges[0])] + [net.oriented(*e)[1:] for e in piece.edges[1:]],
                axis=0,
            )
            parts_xy.append(xy[1:])
            parts_t.append(_timed(xy, begin, end)[1:])
            street_m += piece.length_m
            timetable.append(
                {
                    "type": "streets",
                    "order": order + 1,
                    "piece": task.piece + 1,
                    "streets": piece.names,
                    "length_m": round(piece.length_m, 1),
                    "start": _iso(origin, begin),
                    "end": _iso(origin, end),
                }
            )
        t = begin
        prev_node = node
    xy = np.concatenate(parts_xy, axis=0)
    times = np.concatenate(parts_t)
    street_s = sum(m.tasks[ti].service_s for ti in seq if m.tasks[ti].kind == "streets")
    work_min = (walk_s + dwell_s + street_s) / 60
    return PlanRoute(
        worker=workers[veh.worker].name,
        shift=veh.shift + 1,
        start=origin + pd.Timedelta(seconds=veh.open_s),
        end=origin + pd.Timedelta(seconds=veh.close_s),
        coords=net.to_wgs84(xy),
        times_s=times,
        timetable=timetable,
        travel_m=travel_m,
        street_m=street_m,
        dwell_min=dwell_s / 60,
        work_min=work_min,
    )


def _reason(m: _Model, ti: int) -> str:
    task = m.tasks[ti]
    on_duty = [
        v
        for v in range(m.nv)
        if m.vehicles[v].open_s <= task.close_s
        and m.vehicles[v].close_s >= task.open_s + task.service_s
    ]
    if not on_duty:
        return "no_worker_on_shift"
    node = m.node_of_task(ti)
    for v in on_duty:
        veh = m.vehicles[v]
        arrive = veh.open_s + int(m.travel_s[v, node])
        begin = max(arrive, task.open_s)
        back = begin + task.service_s + int(m.travel_s[node, m.nv + v])
        if (
            m.travel_m[v, node] < _UNREACHABLE_M
            and begin <= task.close_s
            and back <= veh.close_s
            and back - veh.open_s <= veh.span_s
        ):
            return "not_enough_workers"
    return "too_far"


def _unmet(
    m: _Model,
    done: set[int],
    areas: list[_Area],
    pieces: list[_Piece],
    origin: pd.Timestamp,
) -> list[dict[str, Any]]:
    out = []
    for ti, task in enumerate(m.tasks):
        if ti in done:
            continue
        code = _reason(m, ti)
        zh, en = REASONS[code]
        if task.kind == "visit":
            area = areas[task.area]
            row: dict[str, Any] = {
                "kind": "visit",
                **_visit_slot(area, task, origin),
                "dwell_min": round(task.service_s / 60, 2),
                "lon": round(area.lon, 7),
                "lat": round(area.lat, 7),
            }
        else:
            piece = pieces[task.piece]
            a, b = m.shifts[task.shift]
            row = {
                "kind": "streets",
                "piece": task.piece + 1,
                "shift": task.shift + 1,
                "streets": piece.names,
                "length_m": round(piece.length_m, 1),
                "shift_start": _iso(origin, a),
                "shift_end": _iso(origin, b),
            }
        row.update({"reason": code, "reason_zh": zh, "reason_en": en})
        out.append(row)
    return out


@dataclass(frozen=True)
class EventPlanOptions:
    """How :func:`plan_event` plans: shifts, default visits, street pieces and the solver.

    Attributes
    ----------
    shift_hours : float, optional
        Shift length: shifts tile the window (default the whole window up to
        12 hours, else 8-hour shifts).
    frequency_min, dwell_min : float
        Defaults for areas without their own (dwell by priority: 15/12/10 min).
    piece_min : float
        Minutes of main street per piece of the postman walk.
    speed_mps : float
        Walking speed.
    time_limit_s : float
        OR-Tools search time in all.
    method : {"decomposed", "direct"}
        See the module notes.
    balance_tolerance : float
        ``decomposed`` evens the loads until the largest is within this share
        of the smallest (0.1: 10 %) where single moves can do it.

    Examples
    --------
    >>> EventPlanOptions(time_limit_s=0).check()
    Traceback (most recent call last):
    ...
    gridmap.common.errors.BadInput: time_limit_s must be > 0 and at most 600
    """

    shift_hours: float | None = None
    frequency_min: float = 60.0
    dwell_min: float | None = None
    piece_min: float = 15.0
    speed_mps: float = WALK_SPEED_MPS
    time_limit_s: float = 5.0
    method: Method = "decomposed"
    balance_tolerance: float = 0.1

    def check(self) -> None:
        """Raise :class:`~gridmap.common.errors.BadInput` for a value out of range."""
        if self.method not in METHODS:
            raise BadInput(f"method must be one of {', '.join(METHODS)}", field="method")
        if not (math.isfinite(self.speed_mps) and 0.3 <= self.speed_mps <= 20):
            raise BadInput("speed_mps must be between 0.3 and 20", field="speed_mps")
        if not (math.isfinite(self.piece_min) and 2 <= self.piece_min <= 240):
            raise BadInput("piece_min must be between 2 and 240 minutes", field="piece_min")
        tolerance = self.balance_tolerance
        if not (math.isfinite(tolerance) and 0 <= tolerance <= 10):
            raise BadInput("balance_tolerance must be between 0 and 10", field="balance_tolerance")
        if not (math.isfinite(self.time_limit_s) and 0 < self.time_limit_s <= 600):
            raise BadInput("time_limit_s must be > 0 and at most 600", field="time_limit_s")


def plan_event(
    net: StreetNetwork,
    areas: gpd.GeoDataFrame,
    workers: Sequence[EventWorker],
    *,
    start: pd.Timestamp | str,
    end: pd.Timestamp | str,
    options: EventPlanOptions = EventPlanOptions(),
) -> EventPlan:
    """Plan the shift routes of an event: every key area every period, main streets every shift.

    Parameters
    ----------
    net : StreetNetwork
        The area's street network; its *required* edges are the main streets
        to walk once per shift (see :func:`require_streets`).
    areas : GeoDataFrame
        Key areas in force (WGS84) with optional ``id``, ``name``,
        ``priority`` (1 highest), ``frequency_min`` (visit once every so many
        minutes), ``dwell_min``, ``valid_from``, ``valid_to``.
    workers : sequence of EventWorker
        Workers with their posts, shifts and duty limits.
    start, end : Timestamp or str
        The event window (with a time zone).
    options : EventPlanOptions
        Shift length, default visit frequency and dwell, street pieces, walking
        speed and the solver's method and time.

    Returns
    -------
    EventPlan

    Raises
    ------
    gridmap.common.errors.BadInput
        For a bad window, shift, worker list or key area.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> from gridmap.patrol.network import example_streets, street_network
    >>> net = street_network(example_streets())
    >>> _ = require_streets(net, [1], None)
    >>> areas = gpd.GeoDataFrame({"name": ["东", "西"], "dwell_min": [5, 5]}, crs=4326,
    ...     geometry=[shapely.Point(24.94, 60.17), shapely.Point(24.95, 60.17)])
    >>> plan = plan_event(net, areas, [EventWorker("李", (24.945, 60.17))],
    ...     start="2026-10-01T08:00+08:00", end="2026-10-01T10:00+08:00",
    ...     options=EventPlanOptions(time_limit_s=0.3))
    >>> plan.complete, plan.visits_required, len(plan.routes[0].visits)
    (True, 4, 4)
    """
    options.check()
    if not workers:
        raise BadInput("at least one worker is needed", field="workers")
    names = [w.name for w in workers]
    if len(set(names)) != len(names):
        raise BadInput("worker names must be unique", field="workers")
    t0, t1 = event_window(start, end, max_days=3)
    shifts = _shifts(t0, t1, options.shift_hours)
    for w in workers:
        if w.shifts is not None and any(not 1 <= s <= len(shifts) for s in w.shifts):
            raise BadInput(
                f"worker {w.name}: shifts must be between 1 and {len(shifts)}", field="workers"
            )
        if w.max_hours is not None and not (math.isfinite(w.max_hours) and w.max_hours > 0):
            raise BadInput(f"worker {w.name}: max_hours must be positive", field="workers")
    horizon = round((t1 - t0).total_seconds())
    speed_mps, method, time_limit_s = options.speed_mps, options.method, options.time_limit_s
    area_list, validity = _areas(areas, net, t0, t1, options.frequency_min, options.dwell_min)
    pieces, street_info = _pieces(net, options.piece_min * 60 * speed_mps)
    m = _build_model(net, area_list, validity, pieces, workers, shifts, horizon, speed_mps)
    clock = _time.perf_counter()
    stages: dict[str, float] = {}
    if method == "direct":
        routes, objective = _solve_direct(m, time_limit_s)
    else:
        routes, objective, stages = _solve_decomposed(m, time_limit_s, options.balance_tolerance)
    solve_s = _time.perf_counter() - clock
    plan_routes = [
        _route(m, v, routes.get(v, []), area_list, pieces, workers, t0) for v in range(m.nv)
    ]
    done = {ti for seq in routes.values() for ti in seq}
    return EventPlan(
        start=t0,
        end=t1,
        shifts=[
            (i + 1, t0 + pd.Timedelta(seconds=a), t0 + pd.Timedelta(seconds=b))
            for i, (a, b) in enumerate(shifts)
        ],
        routes=plan_routes,
        unmet=_unmet(m, done, area_list, pieces, t0),
        visits_required=sum(1 for t in m.tasks if t.kind == "visit"),
        streets=street_info,
        workers_needed=_workers_needed(m),
        method=method,
        solve_s=solve_s,
        objective=objective,
        stages={k: round(v, 3) for k, v in stages.items()},
    )
