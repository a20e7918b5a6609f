"""Event security plans over a store (重大活动安保): plan, save, export, follow, hot spots.

The API router (``/patrol/plans``) and the CLI (``gridmap patrol plan-event``)
call these functions; each takes the store and the acting principal and does
the reading, checking and writing around :func:`gridmap.patrol.eventplan.plan_event`
and :func:`gridmap.patrol.compliance.match_plan`.

A plan is one ``patrol_plans`` row and one ``patrol_routes`` row per worker and
shift (``mode`` "event", ``plan_id``, ``shift``, ``valid_from`` / ``valid_to``,
the timetable and each position's time). The routes' ``grid_code`` is the
plan's area code: the code every grid of the area starts with (a grid,
community, town or city code), so coordinators of that area see them in the
``patrol_routes`` collection and row-level security scopes them like grids.
"""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridmap.common.errors import BadGeometry, BadInput, NotFound
from gridmap.common.timeparse import parse_instant
from gridmap.patrol.compliance import MatchRules, match_plan
from gridmap.patrol.eventplan import (
    MAIN_ROAD_CLASSES,
    METHODS,
    EventPlan,
    EventPlanOptions,
    EventWorker,
    plan_event,
    require_streets,
)
from gridmap.patrol.network import StreetNetwork, street_network
from gridmap.patrol.service import EXPORT_CRS, json_object, route_gpx, route_kml
from gridmap.patrol.visits import default_dwell
from gridmap.security.access import SYSTEM, Principal
from gridmap.security.auth import PermissionDenied
from gridmap.storage import Prefix, Store

__all__ = [
    "HOTSPOT_FREQUENCY_MIN",
    "HotspotSelection",
    "PlanRequest",
    "event_network",
    "hotspot_key_areas",
    "hotspot_request",
    "key_areas_in_force",
    "list_plans",
    "make_plan",
    "make_plan_once",
    "plan_compliance",
    "plan_digest",
    "plan_export",
    "read_plan",
    "resolve_area",
    "worker_spec",
    "write_route_files",
]

_PLANNERS = frozenset({"city_admin", "town_coordinator", "community_staff"})
_MAX_WORKERS = 200
_MAX_GRIDS = 2000
_MAX_KEY_AREAS = 500
_MAX_AREA_M2 = 200e6
_MAX_VERTICES = 100_000
_SOURCE = "event-plan"
_HOTSPOT_SOURCE = "event-hotspots"

#: Visit frequency of temporary hot-spot areas by class (Koper: at least every 2 hours).
HOTSPOT_FREQUENCY_MIN: dict[str, float] = {"hot_99": 60.0, "hot_95": 120.0, "hot_90": 120.0}


# -- the request ----------------------------------------------------------------
def _number(v: Any, name: str, *, low: float, high: float) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise BadInput(f"{name} must be a number", field=name)
    f = float(v)
    if not (math.isfinite(f) and low <= f <= high):
        raise BadInput(f"{name} must be between {low:g} and {high:g}", field=name)
    return f


def _text(v: Any, name: str, *, limit: int = 200) -> str:
    if not isinstance(v, str) or not v.strip() or len(v) > limit or "\x00" in v:
        raise BadInput(f"{name} must be a non-empty text of at most {limit} characters", field=name)
    return v.strip()


def _point(v: Any, name: str) -> tuple[float, float]:
    if not isinstance(v, dict) or not {"lon", "lat"} <= set(v) or set(v) - {"lon", "lat", "crs"}:
        raise BadInput(f'{name} must be {{"lon": X, "lat": Y, "crs": ...}}', field=name)
    lon = _number(v["lon"], f"{name}.lon", low=-180, high=180)
    lat = _number(v["lat"], f"{name}.lat", low=-90, high=90)
    crs = v.get("crs", "wgs84")
    if not isinstance(crs, str) or len(crs) > 40:
        raise BadInput(f"{name}.crs must be a coordinate system name", field=f"{name}.crs")
    from gridmap.patrol.tracks import convert_coords

    x, y, _ = convert_coords(np.array([lon]), np.array([lat]), crs)
    if not (np.isfinite(x[0]) and np.isfinite(y[0])):
        raise BadInput(f"{name} cannot be converted to WGS84", field=name)
    return float(x[0]), float(y[0])


def _worker(v: Any, i: int) -> EventWorker:
    name = f"workers[{i}]"
    if not isinstance(v, dict):
        raise BadInput(f"{name} must be an object", field=name)
    unknown = set(v) - {"name", "start", "end", "shifts", "max_hours"}
    if unknown:
        raise BadInput(f"{name}: unknown field(s) {', '.join(sorted(unknown))[:80]}", field=name)
    shifts = v.get("shifts")
    if shifts is not None and (
        not isinstance(shifts, list)
        or not shifts
        or len(shifts) > 100
        or not all(isinstance(s, int) and not isinstance(s, bool) for s in shifts)
    ):
        raise BadInput(f"{name}.shifts must be a list of shift numbers", field=name)
    max_hours = v.get("max_hours")
    return EventWorker(
        name=_text(v.get("name"), f"{name}.name"),
        start=_point(v.get("start"), f"{name}.start"),
        end=None if v.get("end") is None else _point(v["end"], f"{name}.end"),
        shifts=None if shifts is None else tuple(int(s) for s in shifts),
        max_hours=None
        if max_hours is None
        else _number(max_hours, f"{name}.max_hours", low=0.25, high=24),
    )


def _polygon(v: Any, crs: Any) -> shapely.Geometry:
    if not isinstance(v, dict) or v.get("type") not in ("Polygon", "MultiPolygon"):
        raise BadInput("area.polygon must be a GeoJSON Polygon or MultiPolygon", field="area")
    if not isinstance(crs, str) or len(crs) > 40:
        raise BadInput("area.crs must be a coordinate system name", field="area.crs")
    try:
        geom = shapely.from_geojson(json.dumps(v, allow_nan=False))
    except (shapely.errors.GEOSException, ValueError, TypeError) as exc:
        raise BadGeometry(
            f"area.polygon is not valid GeoJSON: {str(exc)[:120]}", field="area"
        ) from None
    coords = shapely.get_coordinates(geom)
    if len(coords) > _MAX_VERTICES:
        raise BadInput(f"area.polygon has more than {_MAX_VERTICES} positions", field="area")
    from gridmap.patrol.tracks import convert_coords

    x, y, _ = convert_coords(coords[:, 0], coords[:, 1], crs)
    if not (np.isfinite(x).all() and np.isfinite(y).all()) or (np.abs(y) > 90).any():
        raise BadInput("area.polygon has positions outside lon/lat bounds", field="area")
    geom = shapely.set_coordinates(geom, np.column_stack([x, y]))
    geom = shapely.make_valid(geom, method="structure", keep_collapsed=False)
    parts = [g for g in shapely.get_parts(geom) if g.geom_type in ("Polygon", "MultiPolygon")]
    geom = shapely.union_all(parts) if parts else shapely.Polygon()
    if shapely.is_empty(geom) or shapely.area(geom) <= 0:
        raise BadGeometry("area.polygon encloses no area", field="area")
    from gridmap.geo.projection import area_m2

    if float(area_m2(gpd.GeoSeries([geom], crs=4326)).iloc[0]) > _MAX_AREA_M2:
        raise BadInput("area.polygon is larger than 200 km²", field="area")
    return geom


def _area_json(
    area: Any,
) -> tuple[tuple[str, ...] | None, str | None, shapely.Geometry | None]:
    """The ``area`` member: (grids, code, polygon), exactly one of them set."""
    if not isinstance(area, dict) or len({"grids", "code", "polygon"} & set(area)) != 1:
        raise BadInput(
            'area must be one of {"grids": [...]}, {"code": CODE} or {"polygon": ..., "crs": ...}',
            field="area",
        )
    if set(area) - {"grids", "code", "polygon", "crs"}:
        raise BadInput("area: unknown member(s)", field="area")
    if "grids" in area:
        g = area["grids"]
        if not isinstance(g, list) or not g or len(g) > _MAX_GRIDS:
            raise BadInput(f"area.grids must list 1–{_MAX_GRIDS} grid codes", field="area")
        for c in g:
            if not (isinstance(c, str) and c.isascii() and c.isdigit() and len(c) == 15):
                raise BadInput("area.grids must hold 15-digit grid codes", field="area")
        return tuple(sorted(set(g))), None, None
    if "code" in area:
        c = area["code"]
        if not (isinstance(c, str) and c.isascii() and c.isdigit() and len(c) in (6, 9, 12, 15)):
            raise BadInput("area.code must be a city, town, community or grid code", field="area")
        return None, c, None
    return None, None, _polygon(area["polygon"], area.get("crs", "wgs84"))


_FIELDS = {
    "name",
    "area",
    "start",
    "end",
    "shift_hours",
    "workers",
    "key_areas",
    "frequency_min",
    "dwell_min",
    "road_classes",
    "network",
    "piece_min",
    "time_limit_s",
    "method",
    "save",
}


@dataclass(frozen=True)
class PlanRequest:
    """A checked ``POST /patrol/plans`` body (see :meth:`from_json`).

    Examples
    --------
    >>> r = PlanRequest.from_json({"area": {"code": "990100001001"},
    ...     "start": "2026-10-01T08:00:00+08:00", "end": "2026-10-01T12:00:00+08:00",
    ...     "workers": [{"name": "李", "start": {"lon": 24.94, "lat": 60.17}}]})
    >>> r.code, r.workers[0].name, r.end - r.start
    ('990100001001', '李', Timedelta('0 days 04:00:00'))
    """

    start: pd.Timestamp
    end: pd.Timestamp
    workers: tuple[EventWorker, ...]
    grids: tuple[str, ...] | None = None
    code: str | None = None
    polygon: shapely.Geometry | None = None
    name: str | None = None
    shift_hours: float | None = None
    key_areas: tuple[int, ...] | None = None
    frequency_min: float = 60.0
    dwell_min: float | None = None
    road_classes: tuple[str, ...] = MAIN_ROAD_CLASSES
    network: str = "walk"
    piece_min: float = 15.0
    time_limit_s: float = 5.0
    method: str = "decomposed"
    save: bool = True

    @classmethod
    def from_json(cls, body: Any, *, max_time_limit_s: float = 30.0) -> PlanRequest:
        """Check a decoded JSON body; ``BadInput`` names the offending field.

        Body: ``area`` (one of ``{"grids": [CODE, …]}``, ``{"code": CODE}`` — a
        grid, community, town or city — or ``{"polygon": GeoJSON, "crs": …}``),
        ``start``/``end`` (ISO 8601 with a zone), ``workers`` (``name``,
        ``start`` and optional ``end`` as ``{"lon", "lat", "crs"}``,
        ``shifts``, ``max_hours``), and optional ``name``, ``shift_hours``,
        ``key_areas`` (ids; default: the areas in force with a visit
        frequency), ``frequency_min``, ``dwell_min``, ``road_classes``,
        ``network`` (walk/drive), ``piece_min``, ``time_limit_s``, ``method``,
        ``save``.
        """
        body = json_object(body, _FIELDS)
        grids, code, polygon = _area_json(body.get("area"))
        start = parse_instant(body.get("start"), field="start", dates=False)
        end = parse_instant(body.get("end"), field="end", dates=False)
        if not end > start:
            raise BadInput("end must be after start", field="end")
        if end - start > pd.Timedelta(days=3):
            raise BadInput("an event plan covers at most 3 days", field="end")
        workers = body.get("workers")
        if not isinstance(workers, list) or not 1 <= len(workers) <= _MAX_WORKERS:
            raise BadInput(f"workers must list 1–{_MAX_WORKERS} workers", field="workers")
        crew = tuple(_worker(w, i) for i, w in enumerate(workers))
        if len({w.name for w in crew}) != len(crew):
            raise BadInput("worker names must be unique", field="workers")
        ids = body.get("key_areas")
        if ids is not None:
            if (
                not isinstance(ids, list)
                or len(ids) > _MAX_KEY_AREAS
                or not all(
                    isinstance(i, int) and not isinstance(i, bool) and 0 < i < 2**62 for i in ids
                )
            ):
                raise BadInput(
                    f"key_areas must list up to {_MAX_KEY_AREAS} key area ids", field="key_areas"
                )
            ids = tuple(sorted(set(ids)))
        classes = body.get("road_classes", list(MAIN_ROAD_CLASSES))
        if (
            not isinstance(classes, list)
            or len(classes) > 50
            or not all(isinstance(c, str) and 0 < len(c) <= 40 for c in classes)
        ):
            raise BadInput(
                "road_classes must list road classes (e.g. primary)", field="road_classes"
            )
        network = body.get("network", "walk")
        if network not in ("walk", "drive"):
            raise BadInput("network must be walk or drive", field="network")
        method = body.get("method", "decomposed")
        if method not in METHODS:
            raise BadInput(f"method must be one of {', '.join(METHODS)}", field="method")
        save = body.get("save", True)
        if not isinstance(save, bool):
            raise BadInput("save must be true or false", field="save")
        opt = {k: body.get(k) for k in ("shift_hours", "dwell_min")}
        return cls(
            start=start,
            end=end,
            workers=crew,
            grids=grids,
            code=code,
            polygon=polygon,
            name=None if body.get("name") is None else _text(body["name"], "name"),
            shift_hours=None
            if opt["shift_hours"] is None
            else _number(opt["shift_hours"], "shift_hours", low=0.5, high=24),
            key_areas=ids,
            frequency_min=_number(
                body.get("frequency_min", 60.0), "frequency_min", low=5, high=1440
            ),
            dwell_min=None
            if opt["dwell_min"] is None
            else _number(opt["dwell_min"], "dwell_min", low=0, high=240),
            road_classes=tuple(dict.fromkeys(classes)),
            network=network,
            piece_min=_number(body.get("piece_min", 15.0), "piece_min", low=2, high=240),
            time_limit_s=_number(
                body.get("time_limit_s", 5.0), "time_limit_s", low=0.1, high=max_time_limit_s
            ),
            method=method,
            save=save,
        )

    def to_json(self) -> dict[str, Any]:
        """The request as stored with the plan (WGS84 positions, polygon as WKT)."""
        out = asdict(self)
        out["start"], out["end"] = self.start.isoformat(), self.end.isoformat()
        out["polygon"] = (
            None if self.polygon is None else shapely.to_wkt(self.polygon, rounding_precision=7)
        )
        out["workers"] = [asdict(w) for w in self.workers]
        return out


# -- area, key areas, streets -----------------------------------------------------
def _common_code(codes: list[str]) -> str:
    """The longest unit code (15, 12, 9 or 6 digits) that starts every grid code."""
    for n in (15, 12, 9, 6):
        if codes and all(len(c) >= n and c[:n] == codes[0][:n] for c in codes):
            return codes[0][:n]
    return ""


def _current(grids: pd.DataFrame, at: pd.Timestamp) -> pd.DataFrame:
    if "valid_to" not in grids:
        return grids
    to = pd.to_datetime(grids["valid_to"], utc=True)
    return grids.loc[(to.isna() | (to > at)).to_numpy()]


def resolve_area(store: Store, request: PlanRequest) -> tuple[shapely.Geometry, list[str], str]:
    """The plan's area (WGS84), its grid codes and its area code.

    Raises
    ------
    gridmap.common.errors.NotFound
        For unknown grids or a code with no grids.
    gridmap.common.errors.BadInput
        For a polygon outside every grid.
    """
    if request.grids is not None:
        rows = _current(store.read("grids", where={"code": list(request.grids)}), request.start)
        missing = sorted(set(request.grids) - set(rows["code"]))
        if missing:
            raise NotFound(f"unknown grid(s): {', '.join(missing[:5])}")
    elif request.code is not None:
        rows = _current(store.read("grids", where={"code": Prefix((request.code,))}), request.start)
        if len(rows) == 0:
            raise NotFound(f"no grids in area {request.code}")
    else:
        assert request.polygon is not None
        bbox = tuple(float(v) for v in shapely.bounds(request.polygon))
        rows = _current(store.read("grids", bbox=bbox), request.start)  # type: ignore[arg-type]
        if len(rows):
            geoms = np.asarray(rows.geometry.values, dtype=object)
            overlap = shapely.area(shapely.intersection(geoms, request.polygon))
            rows = rows.loc[overlap > 0]
        if len(rows) == 0:
            raise BadInput("the area polygon lies outside every grid", field="area")
    assert isinstance(rows, gpd.GeoDataFrame)
    codes = sorted(str(c) for c in rows["code"])
    area = (
        request.polygon if request.polygon is not None else shapely.union_all(rows.geometry.values)
    )
    return area, codes, _common_code(codes)


def _check_planner(principal: Principal, codes: list[str], area_code: str) -> None:
    if principal.role not in _PLANNERS:
        raise PermissionDenied(f"role {principal.role!r} may not make event plans")
    if not (principal.sees_everything or (area_code and principal.covers(area_code))):
        outside = [c for c in codes if not principal.covers(c)]
        why = (
            f"grid(s) {', '.join(outside[:3])}"
            if outside
            else f"area {area_code or 'several cities'}"
        )
        raise PermissionDenied(
            f"{principal.name!r} may not plan for {why}: outside the caller's area"
        )


def key_areas_in_force(
    store: Store,
    area: shapely.Geometry,
    start: pd.Timestamp,
    end: pd.Timestamp,
    *,
    ids: tuple[int, ...] | None = None,
) -> gpd.GeoDataFrame:
    """Key areas an event plan visits: those named by *ids*, or the ones in force.

    In force: inside *area*, valid during part of ``[start, end)`` and with a
    visit frequency (``frequency_min``); areas without one are daily patrol
    points, not event duty.
    """
    if ids is not None:
        rows = store.read("key_areas", ids=list(ids))
        missing = sorted(set(ids) - {int(i) for i in rows["id"]})
        if missing:
            raise NotFound(f"unknown key area(s): {', '.join(map(str, missing[:5]))}")
        assert isinstance(rows, gpd.GeoDataFrame)
        return rows
    bbox = tuple(float(v) for v in shapely.bounds(area))
    rows = store.read("key_areas", bbox=bbox)  # type: ignore[arg-type]
    assert isinstance(rows, gpd.GeoDataFrame)
    if len(rows) == 0:
        return rows
    frm = pd.to_datetime(rows["valid_from"], utc=True)
    to = pd.to_datetime(rows["valid_to"], utc=True)
    freq = pd.to_numeric(rows["frequency_min"], errors="coerce")
    keep = (
        rows.intersects(area) & (frm.isna() | (frm < end)) & (to.isna() | (to > start)) & (freq > 0)
    )
    return rows.loc[keep.to_numpy()]


def event_network(
    store: Store,
    area: shapely.Geometry,
    *,
    road_classes: tuple[str, ...] = MAIN_ROAD_CLASSES,
    network: str = "walk",
) -> StreetNetwork:
    """The area's street network whose required edges are its main streets."""
    minx, miny, maxx, maxy = shapely.bounds(shapely.buffer(area, 0.006))
    roads = store.read("roads", bbox=(minx, miny, maxx, maxy))
    assert isinstance(roads, gpd.GeoDataFrame)
    net = street_network(roads, mode=network, area=area)  # type: ignore[arg-type]
    classes = roads["class"] if "class" in roads else pd.Series(None, index=roads.index)
    require_streets(net, roads.loc[classes.isin(road_classes).to_numpy(), "id"], area)
    return net


# -- plan and save ----------------------------------------------------------------
def make_plan(
    store: Store, request: PlanRequest, *, principal: Principal = SYSTEM
) -> dict[str, Any]:
    """Plan an event's shift routes, save them (unless ``save`` is false) and answer the plan.

    Returns
    -------
    dict
        ``id`` (the stored plan, or None), ``name``, ``area_code``, ``grids``,
        ``summary``, ``unmet`` (what could not be met, with why) and
        ``routes`` (a GeoJSON FeatureCollection, one Feature per worker and shift).

    Examples
    --------
    >>> from gridmap.storage import open_store
    >>> from gridmap.demo.job import run_demo
    >>> s = open_store(":memory:", migrate=True); _ = run_demo(s, events=0)
    >>> req = PlanRequest.from_json({"area": {"grids": ["990100001001004"]},
    ...     "start": "2026-10-01T08:00:00+08:00", "end": "2026-10-01T10:00:00+08:00",
    ...     "workers": [{"name": "李", "start": {"lon": 24.9455, "lat": 60.1697}}],
    ...     "time_limit_s": 0.3})
    >>> plan = make_plan(s, req)
    >>> plan["id"], plan["summary"]["street_pieces_unmet"], len(plan["routes"]["features"])
    (1, 0, 1)
    """
    return _answer(store, _compute(store, request, principal), request, principal)


@dataclass(frozen=True)
class _Computed:
    plan: EventPlan
    area: shapely.Geometry
    codes: list[str]
    area_code: str


def _compute(store: Store, request: PlanRequest, principal: Principal) -> _Computed:
    """Check the caller and plan (the slow part: no transaction is held meanwhile)."""
    area, codes, area_code = resolve_area(store, request)
    _check_planner(principal, codes, area_code)
    areas = key_areas_in_force(store, area, request.start, request.end, ids=request.key_areas)
    net = event_network(store, area, road_classes=request.road_classes, network=request.network)
    if len(areas) == 0 and not net.required_edges:
        raise BadInput(
            "nothing to plan: no key areas in force with a visit frequency (frequency_min) "
            "and no main streets of the road classes in the area",
            field="key_areas",
        )
    plan = plan_event(
        net,
        areas,
        request.workers,
        start=request.start,
        end=request.end,
        options=EventPlanOptions(
            shift_hours=request.shift_hours,
            frequency_min=request.frequency_min,
            dwell_min=request.dwell_min,
            piece_min=request.piece_min,
            time_limit_s=request.time_limit_s,
            method=request.method,  # type: ignore[arg-type]
        ),
    )
    return _Computed(plan, area, codes, area_code)


def _answer(
    store: Store, done: _Computed, request: PlanRequest, principal: Principal
) -> dict[str, Any]:
    """Save the computed plan (unless ``save`` is false) and build the answer."""
    plan = done.plan
    plan_id = None
    route_ids: list[int | None] = [None] * len(plan.routes)
    if request.save:
        plan_id, route_ids = _save(
            store, plan, request, done.area, done.codes, done.area_code, principal
        )
    features = []
    for route, rid in zip(plan.routes, route_ids, strict=True):
        f = route.feature(plan.start)
        f["id"] = rid
        f["properties"]["plan_id"] = plan_id
        features.append(f)
    return {
        "id": plan_id,
        "name": request.name,
        "area_code": done.area_code,
        "grids": done.codes,
        "summary": plan.summary(),
        "unmet": plan.unmet,
        "routes": {"type": "FeatureCollection", "features": features},
    }


def plan_digest(body: Any) -> str:
    """The digest an ``Idempotency-Key`` of ``POST /patrol/plans`` is checked against.

    The endpoint is part of it, so a key already used for another kind of
    request (an event report) is refused rather than replayed.

    Examples
    --------
    >>> plan_digest({"a": 1, "b": 2}) == plan_digest({"b": 2, "a": 1})
    True
    """
    from gridmap.events.intake import request_hash

    return request_hash({"POST /patrol/plans": body})


def make_plan_once(
    store: Store,
    request: PlanRequest,
    *,
    key: str | None,
    digest: str,
    principal: Principal = SYSTEM,
    now: pd.Timestamp | None = None,
) -> tuple[int, dict[str, Any], bool]:
    """:func:`make_plan` at most once per (caller, ``Idempotency-Key``).

    The same key with the same body (:func:`plan_digest`) answers the stored
    plan again without planning; with another body it raises
    :class:`gridmap.events.errors.IdempotencyKeyReused` (422). The plan is
    computed outside the store's transaction; only saving it and claiming the
    key happen inside it, so two concurrent requests with one key store one plan.

    Returns
    -------
    status, answer, replayed : int, dict, bool
        201 for a stored plan, 200 for ``"save": false``.
    """
    from gridmap.events.intake import idempotent

    if key is not None:
        seen = _replay(store, principal, key, digest)
        if seen is not None:
            return seen[0], seen[1], True
    done = _compute(store, request, principal)

    def create() -> tuple[int, dict[str, Any], int | None]:
        answer = _answer(store, done, request, principal)
        return (201 if answer["id"] is not None else 200), answer, None

    return idempotent(store, principal=principal, key=key, digest=digest, create=create, now=now)


def _replay(
    store: Store, principal: Principal, key: str, digest: str
) -> tuple[int, dict[str, Any]] | None:
    """The stored answer of *key*, ``None`` when unused; refuse another body with it."""
    from gridmap.events.errors import IdempotencyKeyReused
    from gridmap.events.intake import KEY

    if not KEY.fullmatch(key):
        raise BadInput(
            "Idempotency-Key must be 1-200 printable ASCII characters without spaces",
            field="Idempotency-Key",
        )
    rows = store.read("idempotency_keys", where={"principal": principal.name, "key": key})
    if len(rows) == 0:
        return None
    row = rows.iloc[0]
    if row["request_hash"] != digest:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was already used with a different request body; "
            "use a new key for a new plan"
        )
    if row["response"] is None or row["status_code"] is None:
        return None  # still running: idempotent() decides (ConcurrentUpdate)
    return int(row["status_code"]), dict(json.loads(str(row["response"])))


def _save(
    store: Store,
    plan: EventPlan,
    request: PlanRequest,
    area: shapely.Geometry,
    codes: list[str],
    area_code: str,
    principal: Principal,
) -> tuple[int, list[int | None]]:
    key = uuid.uuid4().hex
    row = pd.DataFrame(
        {
            "name": [request.name],
            "area_code": [area_code],
            "grid_codes": [codes],
            "starts_at": [plan.start],
            "ends_at": [plan.end],
            "road_classes": [list(request.road_classes)],
            "workers": [[w.name for w in request.workers]],
            "area_wkt": [shapely.to_wkt(area, rounding_precision=7)],
            "unmet": [json.dumps(plan.unmet, ensure_ascii=False)],
            "summary": [json.dumps(plan.summary(), ensure_ascii=False)],
            "request": [json.dumps(request.to_json(), ensure_ascii=False)],
            "created_by": [principal.name],
            "created_at": [pd.Timestamp.now(tz="UTC")],
            "source": [_SOURCE],
            "source_id": [key],
        }
    )
    routes = gpd.GeoDataFrame(
        {
            "worker": [r.worker for r in plan.routes],
            "grid_code": area_code,
            "route_date": [r.start.tz_convert("UTC").date() for r in plan.routes],
            "mode": "event",
            "length_m": [round(r.travel_m + r.street_m, 1) for r in plan.routes],
            "shift": [r.shift for r in plan.routes],
            "valid_from": [r.start for r in plan.routes],
            "valid_to": [r.end for r in plan.routes],
            "work_min": [round(r.work_min, 1) for r in plan.routes],
            "timetable": [json.dumps(r.timetable, ensure_ascii=False) for r in plan.routes],
            "times_s": [json.dumps([round(float(t), 1) for t in r.times_s]) for r in plan.routes],
            "source": _SOURCE,
            "source_id": [f"{key}/{r.worker}/{r.shift}" for r in plan.routes],
        },
        geometry=[r.geometry() for r in plan.routes],
        crs=4326,
    )
    with store.transaction(), store.scoped(principal.areas):
        store.write("patrol_plans", row)
        stored = store.read("patrol_plans", where={"source": _SOURCE, "source_id": key})
        plan_id = int(stored["id"].iloc[0])
        routes["plan_id"] = plan_id
        if len(routes):
            store.write("patrol_routes", routes)
        saved = store.read("patrol_routes", where={"plan_id": plan_id})
    by_key = dict(zip(saved["source_id"], saved["id"], strict=True))
    return plan_id, [None if by_key.get(k) is None else int(by_key[k]) for k in routes["source_id"]]


# -- read, export -----------------------------------------------------------------
def _plan_rows(
    store: Store, plan_id: int, principal: Principal
) -> tuple[pd.Series, gpd.GeoDataFrame]:
    if principal.role not in _PLANNERS:
        raise PermissionDenied(f"role {principal.role!r} may not read event plans")
    if not 0 < plan_id < 2**62:
        raise BadInput("plan id out of range", field="plan_id")
    with store.scoped(principal.areas):
        plans = store.read("patrol_plans", ids=[plan_id])
        if len(plans) == 0 or not principal.covers(str(plans["area_code"].iloc[0] or "")):
            raise NotFound(f"no event plan {plan_id}")
        routes = store.read("patrol_routes", where={"plan_id": plan_id})
    assert isinstance(routes, gpd.GeoDataFrame)
    routes = routes.sort_values(["shift", "worker"]).reset_index(drop=True)
    return plans.iloc[0], routes


def _feature(row: pd.Series, origin: pd.Timestamp) -> dict[str, Any]:
    coords = np.round(shapely.get_coordinates(row.geometry), 7).tolist()
    timetable = json.loads(row["timetable"] or "[]")
    visits = [t for t in timetable if t.get("type") == "visit"]
    return {
        "type": "Feature",
        "id": int(row["id"]),
        "geometry": {"type": "LineString", "coordinates": coords},
        "properties": {
            "plan_id": int(row["plan_id"]),
            "worker": row["worker"],
            "shift": int(row["shift"]),
            "mode": "event",
            "grid_code": row["grid_code"],
            "valid_from": pd.Timestamp(row["valid_from"]).isoformat(),
            "valid_to": pd.Timestamp(row["valid_to"]).isoformat(),
            "length_m": float(row["length_m"]),
            "work_min": float(row["work_min"]),
            "visits": len(visits),
            "timetable": timetable,
            "time_origin": origin.isoformat(),
            "times_s": json.loads(row["times_s"] or "[]"),
            "stops": [
                {
                    "order": i + 1,
                    "name": v.get("name"),
                    "lon": v["lon"],
                    "lat": v["lat"],
                    "dwell_min": v.get("dwell_min"),
                    "arrive": v.get("arrive"),
                }
                for i, v in enumerate(visits)
            ],
        },
    }


def list_plans(
    store: Store, *, principal: Principal = SYSTEM, limit: int = 200
) -> list[dict[str, Any]]:
    """The stored event plans the caller may read, newest first (no routes).

    Each: ``id``, ``name``, ``area_code``, ``start``, ``end``, ``workers``
    (how many), ``visits_required``, ``visits_unmet``, ``complete``.
    """
    if principal.role not in _PLANNERS:
        raise PermissionDenied(f"role {principal.role!r} may not read event plans")
    with store.scoped(principal.areas):
        rows = store.read("patrol_plans")
    out = []
    for _, r in rows.sort_values("id", ascending=False).iterrows():
        if not principal.covers(str(r["area_code"] or "")):
            continue
        summary = json.loads(r["summary"] or "{}")
        out.append(
            {
                "id": int(r["id"]),
                "name": r["name"],
                "area_code": r["area_code"],
                "start": pd.Timestamp(r["starts_at"]).isoformat(),
                "end": pd.Timestamp(r["ends_at"]).isoformat(),
                "workers": len(r["workers"] if r["workers"] is not None else []),
                "visits_required": summary.get("visits_required"),
                "visits_unmet": summary.get("visits_unmet"),
                "complete": summary.get("complete"),
            }
        )
        if len(out) >= limit:
            break
    return out


def _iso_or_none(v: Any) -> str | None:
    return None if v is None or pd.isna(v) else pd.Timestamp(v).isoformat()


def _plan_key_areas(
    store: Store, plan: pd.Series, routes: gpd.GeoDataFrame
) -> tuple[dict[str, Any], bool]:
    """The key areas a plan visits (GeoJSON, with their windows) and whether any is synthetic.

    A hot-spot area (``hotspot_cells``) is synthetic when the events of the
    plan's area it came from are (the demo's events are).
    """
    ids: set[int] = set()
    for tt in routes["timetable"]:
        ids |= {int(t["key_area"]) for t in json.loads(tt or "[]") if t.get("type") == "visit"}
    for u in json.loads(plan["unmet"] or "[]"):
        if u.get("kind") == "visit" and isinstance(u.get("key_area"), int):
            ids.add(int(u["key_area"]))
    rows = store.read("key_areas", ids=sorted(ids)) if ids else None
    hot_ids: list[int] = []
    feats = []
    for _, r in (rows if rows is not None else pd.DataFrame()).iterrows():
        cells = r.get("hotspot_cells")
        cells = [] if cells is None else [str(c) for c in cells]
        if cells:
            hot_ids.append(int(r["id"]))
        feats.append(
            {
                "type": "Feature",
                "id": int(r["id"]),
                "geometry": json.loads(shapely.to_geojson(r.geometry)),
                "properties": {
                    "name": r["name"],
                    "priority": None if pd.isna(r["priority"]) else int(r["priority"]),
                    "valid_from": _iso_or_none(r["valid_from"]),
                    "valid_to": _iso_or_none(r["valid_to"]),
                    "frequency_min": None
                    if pd.isna(r["frequency_min"])
                    else float(r["frequency_min"]),
                    "dwell_min": None if pd.isna(r["dwell_min"]) else float(r["dwell_min"]),
                    "hotspot_cells": cells,
                    "synthetic": False,
                },
            }
        )
    synthetic = False
    if hot_ids:
        code = str(plan["area_code"] or "")
        where: dict[str, Any] = {"synthetic": True}
        if code:
            where["grid_code"] = Prefix((code,))
        synthetic = store.count("events", where=where) > 0
        for f in feats:
            f["properties"]["synthetic"] = synthetic and f["id"] in hot_ids
    return {"type": "FeatureCollection", "features": feats}, synthetic


def read_plan(store: Store, plan_id: int, *, principal: Principal = SYSTEM) -> dict[str, Any]:
    """A stored plan with its routes and key areas (404 when absent or outside the caller's area).

    ``key_areas`` holds the key areas the plan visits with their windows
    (``valid_from``/``valid_to``), frequency and dwell; ``synthetic`` says
    whether any of them came from synthetic events (hot spots of the demo).
    """
    plan, routes = _plan_rows(store, plan_id, principal)
    origin = pd.Timestamp(plan["starts_at"])
    with store.scoped(principal.areas):
        key_areas, synthetic = _plan_key_areas(store, plan, routes)
    return {
        "id": int(plan["id"]),
        "name": plan["name"],
        "area_code": plan["area_code"],
        "grids": list(plan["grid_codes"] or []),
        "start": origin.isoformat(),
        "end": pd.Timestamp(plan["ends_at"]).isoformat(),
        "created_by": plan["created_by"],
        "created_at": pd.Timestamp(plan["created_at"]).isoformat(),
        "summary": json.loads(plan["summary"] or "{}"),
        "unmet": json.loads(plan["unmet"] or "[]"),
        "routes": {
            "type": "FeatureCollection",
            "features": [_feature(r, origin) for _, r in routes.iterrows()],
        },
        "key_areas": key_areas,
        "synthetic": synthetic,
    }


def plan_export(
    store: Store,
    plan_id: int,
    *,
    worker: str,
    shift: int | None = None,
    format: str = "gpx",
    crs: str = "wgs84",
    principal: Principal = SYSTEM,
) -> tuple[str, str]:
    """One worker's route of a plan as GPX or KML in WGS84 or GCJ-02: (text, file name)."""
    if format not in ("gpx", "kml"):
        raise BadInput("format must be gpx or kml", field="format")
    if crs not in EXPORT_CRS:
        raise BadInput(f"crs must be one of {', '.join(EXPORT_CRS)}", field="crs")
    plan = read_plan(store, plan_id, principal=principal)
    feats = [
        f
        for f in plan["routes"]["features"]
        if f["properties"]["worker"] == worker
        and (shift is None or f["properties"]["shift"] == shift)
    ]
    if not feats:
        raise NotFound(f"plan {plan_id} has no route for worker {worker[:40]!r}")
    if len(feats) > 1:
        raise BadInput("the worker has several shifts in this plan: name the shift", field="shift")
    f = feats[0]
    n = f["properties"]["shift"]
    title = f"安保巡逻 Event patrol {plan['name'] or plan_id} {worker} 第{n}班 shift {n}"
    write = route_gpx if format == "gpx" else route_kml
    return write(f, name=title, crs=crs), f"plan-{plan_id}-shift-{n}-{crs}.{format}"


def worker_spec(text: str, *, crs: str = "wgs84") -> dict[str, Any]:
    """A ``workers`` entry from the CLI's ``NAME@LON,LAT[@SHIFT+SHIFT…]``.

    Examples
    --------
    >>> worker_spec("李四@120.38,36.07@1+2", crs="gcj02")
    {'name': '李四', 'start': {'lon': 120.38, 'lat': 36.07, 'crs': 'gcj02'}, 'shifts': [1, 2]}
    """
    parts = text.split("@")
    if len(parts) not in (2, 3) or not parts[0].strip():
        raise BadInput(f"--worker must be NAME@LON,LAT[@SHIFTS], got {text[:60]!r}", field="worker")
    try:
        lon, lat = (float(v) for v in parts[1].split(","))
        shifts = [int(v) for v in parts[2].split("+")] if len(parts) == 3 else None
    except ValueError:
        raise BadInput(
            f"--worker must be NAME@LON,LAT[@SHIFTS], got {text[:60]!r}", field="worker"
        ) from None
    out: dict[str, Any] = {"name": parts[0].strip(), "start": {"lon": lon, "lat": lat, "crs": crs}}
    if shifts is not None:
        out["shifts"] = shifts
    return out


def write_route_files(answer: dict[str, Any], folder: Path, *, crs: str = "wgs84") -> list[Path]:
    """Write every route of a plan answer as GPX and KML files (one per worker and shift)."""
    if crs not in EXPORT_CRS:
        raise BadInput(f"crs must be one of {', '.join(EXPORT_CRS)}", field="crs")
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    label = answer.get("id") or "draft"
    for i, f in enumerate(answer["routes"]["features"], start=1):
        p = f["properties"]
        title = (
            f"安保巡逻 Event patrol {answer.get('name') or label} {p['worker']} 第{p['shift']}班"
        )
        for suffix, write in (("gpx", route_gpx), ("kml", route_kml)):
            path = folder / f"plan-{label}-route-{i:03d}-shift-{p['shift']}-{crs}.{suffix}"
            path.write_text(write(f, name=title, crs=crs), encoding="utf-8")
            written.append(path)
    return written


# -- compliance -------------------------------------------------------------------
def plan_compliance(
    store: Store,
    plan_id: int,
    *,
    principal: Principal = SYSTEM,
    accuracy_m: float = 20.0,
    dwell_share: float = 0.8,
    late_after_min: float = 5.0,
) -> dict[str, Any]:
    """The plan against the tracks its workers uploaded: visits made/missed, streets, lateness.

    Tracks of the plan's workers that overlap the plan's window count (as the
    caller may see them); see :func:`gridmap.patrol.compliance.match_plan`.
    Hot-spot key areas also get the events in their cells during the window
    and in the same span before it (the outcome of the patrol).
    """
    from gridmap.patrol.service import read_tracks, track_fixes

    plan, routes = _plan_rows(store, plan_id, principal)
    start, end = pd.Timestamp(plan["starts_at"]), pd.Timestamp(plan["ends_at"])
    rows: list[dict[str, Any]] = []
    points: dict[Any, list[shapely.Point]] = {}
    for _, r in routes.iterrows():
        for t in json.loads(r["timetable"] or "[]"):
            if t.get("type") == "visit":
                rows.append({**t, "planned_worker": r["worker"], "planned_arrive": t["arrive"]})
                points.setdefault(t["key_area"], []).append(shapely.Point(t["lon"], t["lat"]))
    for u in json.loads(plan["unmet"] or "[]"):
        if u.get("kind") == "visit":
            rows.append({**u, "planned_worker": None, "planned_arrive": None})
            if "lon" in u:
                points.setdefault(u["key_area"], []).append(shapely.Point(u["lon"], u["lat"]))
    visits = pd.DataFrame(
        rows,
        columns=[
            "key_area",
            "name",
            "slot",
            "slot_start",
            "slot_end",
            "dwell_min",
            "planned_worker",
            "planned_arrive",
        ],
    )
    for col in ("slot_start", "slot_end", "planned_arrive"):
        visits[col] = pd.to_datetime(visits[col], utc=True)
    visits = visits.sort_values(["slot_start", "key_area"]).reset_index(drop=True)
    ids = [int(k) for k in points if isinstance(k, int | np.integer)]
    stored = store.read("key_areas", ids=ids) if ids else None
    geoms: dict[Any, shapely.Geometry] = {}
    if stored is not None and len(stored):
        geoms = dict(zip((int(i) for i in stored["id"]), stored.geometry.values, strict=True))
    zones = {
        k: shapely.union_all([*pts, *([geoms[k]] if k in geoms else [])])
        for k, pts in points.items()
    }
    tracks: list[tuple[str, pd.DataFrame]] = []
    for worker in sorted(set(routes["worker"]) | set(plan["workers"] or [])):
        for _, row in read_tracks(store, principal, worker=str(worker)).iterrows():
            if row["started_at"] < end and row["ended_at"] > start:
                fx = track_fixes(row)
                tracks.append((str(worker), fx[(fx["time"] >= start) & (fx["time"] <= end)]))
    request = json.loads(plan["request"] or "{}")
    area = shapely.from_wkt(plan["area_wkt"])
    net = event_network(
        store,
        area,
        road_classes=tuple(plan["road_classes"] or MAIN_ROAD_CLASSES),
        network=str(request.get("network", "walk")),
    )
    streets = net.edges_frame()
    streets = streets.loc[streets["required"].astype(bool).to_numpy()]
    summary = json.loads(plan["summary"] or "{}")
    shifts = [
        (int(s["shift"]), pd.Timestamp(s["start"]), pd.Timestamp(s["end"]))
        for s in summary.get("shifts", [])
    ]
    report = match_plan(
        visits,
        zones,
        tracks,
        streets=streets,
        shifts=shifts,
        rules=MatchRules(
            accuracy_m=accuracy_m, dwell_share=dwell_share, late_after_min=late_after_min
        ),
    )
    report.update(
        {
            "plan_id": int(plan["id"]),
            "name": plan["name"],
            "area_code": plan["area_code"],
            "start": start.isoformat(),
            "end": end.isoformat(),
        }
    )
    if stored is not None and len(stored) and "hotspot_cells" in stored:
        report["hotspots"] = _hotspot_outcome(store, stored, start, end, principal)
    return report


def _hotspot_outcome(
    store: Store,
    areas: gpd.GeoDataFrame,
    start: pd.Timestamp,
    end: pd.Timestamp,
    principal: Principal,
) -> dict[str, Any] | None:
    """Events inside the plan's hot-spot areas before, during and after the window.

    The spans before and after are as long as the window: the outcome of the
    loop hot spot → temporary key areas → patrol (issue 21).
    """
    hot = areas.loc[[bool(c is not None and len(c)) for c in areas["hotspot_cells"]]]
    if len(hot) == 0 or principal.role == "viewer":
        return None
    zone = shapely.union_all(hot.geometry.values)
    bbox = tuple(float(v) for v in shapely.bounds(zone))
    where = None if principal.sees_everything else {"grid_code": Prefix(tuple(principal.areas))}
    with store.scoped(principal.areas):
        events = store.read("events", bbox=bbox, where=where)  # type: ignore[arg-type]
    assert isinstance(events, gpd.GeoDataFrame)
    t = pd.to_datetime(events["reported_at"], utc=True)
    inside = events.within(zone).to_numpy() if len(events) else np.zeros(0, bool)
    span = end - start

    def count(a: pd.Timestamp, b: pd.Timestamp) -> int:
        return int((inside & ((t >= a) & (t < b)).to_numpy()).sum())

    before, during, after = count(start - span, start), count(start, end), count(end, end + span)
    return {
        "areas": len(hot),
        "events_before": before,
        "events_during": during,
        "events_after": after,
        "before": [(start - span).isoformat(), start.isoformat()],
        "after": [end.isoformat(), (end + span).isoformat()],
        # the span after the window is complete once it has passed
        "after_complete": bool(pd.Timestamp.now(tz="UTC") >= end + span),
        # change during and after the patrol against the span before (None: none before)
        "change_during": None if before == 0 else round((during - before) / before, 3),
        "change_after": None if before == 0 else round((after - before) / before, 3),
    }


# -- hot spots to key areas ---------------------------------------------------------
def hotspot_request(body: Any) -> dict[str, Any]:
    """Check a ``POST /patrol/plans/hotspot-areas`` body (arguments of :func:`hotspot_key_areas`).

    Examples
    --------
    >>> hotspot_request({"area": "990100001", "start": "2026-10-01T08:00:00+08:00",
    ...                  "end": "2026-10-01T12:00:00+08:00"})["hotspots"].min_class
    'hot_95'
    """
    body = json_object(body, {"area", "start", "end", "resolution", "min_class", "lookback_days"})
    area = body.get("area")
    if not (
        isinstance(area, str) and area.isascii() and area.isdigit() and len(area) in (6, 9, 12, 15)
    ):
        raise BadInput("area must be a city, town, community or grid code", field="area")
    start = parse_instant(body.get("start"), field="start", dates=False)
    end = parse_instant(body.get("end"), field="end", dates=False)
    if not end > start or end - start > pd.Timedelta(days=3):
        raise BadInput("end must be after start, at most 3 days later", field="end")
    min_class = body.get("min_class", "hot_95")
    if min_class not in HOTSPOT_FREQUENCY_MIN:
        raise BadInput(
            f"min_class must be one of {', '.join(HOTSPOT_FREQUENCY_MIN)}", field="min_class"
        )
    resolution = body.get("resolution", 9)
    if isinstance(resolution, bool) or not isinstance(resolution, int) or not 7 <= resolution <= 11:
        raise BadInput("resolution must be an integer from 7 to 11", field="resolution")
    return {
        "area": area,
        "start": start,
        "end": end,
        "hotspots": HotspotSelection(
            resolution=resolution,
            min_class=min_class,
            lookback_days=_number(body.get("lookback_days", 90), "lookback_days", low=1, high=3660),
        ),
    }


@dataclass(frozen=True)
class HotspotSelection:
    """Which hot spots become key areas.

    Attributes
    ----------
    resolution : int
        H3 resolution of the hot-spot cells.
    min_class : str
        The coldest class kept (``hot_95``: 95 % and 99 % hot spots).
    lookback_days : float
        Days of events before the window that the hot spots are drawn from.
    seed : int, optional
        Seed of the Gi* permutations.
    """

    resolution: int = 9
    min_class: str = "hot_95"
    lookback_days: float = 90.0
    seed: int | None = 0


def hotspot_key_areas(
    store: Store,
    *,
    area: str,
    start: pd.Timestamp,
    end: pd.Timestamp,
    principal: Principal = SYSTEM,
    hotspots: HotspotSelection = HotspotSelection(),
) -> gpd.GeoDataFrame:
    """Turn the current hot-spot cells of *area* into temporary key areas for an event window.

    Hot spots (Gi*, :func:`gridmap.analytics.hotspots.hotspot_cells`) of the events in
    the ``hotspots.lookback_days`` before *start*; cells of ``hotspots.min_class``
    or hotter (see :class:`HotspotSelection`) become
    ``key_areas`` rows valid from *start* to *end*, visited every
    :data:`HOTSPOT_FREQUENCY_MIN` minutes by class with a dwell by priority
    (15 min for 99 %, 12 min for 95 %), recording their cell in
    ``hotspot_cells``. Idempotent: the same window and cell are stored once.

    Returns
    -------
    GeoDataFrame
        The stored key areas (with ``id``), hottest first.
    """
    from gridmap.analytics.hotspots import GiStar, hotspot_cells, hotspots_as_key_areas
    from gridmap.analytics.queries import EventQuery

    if principal.role not in _PLANNERS:
        raise PermissionDenied(f"role {principal.role!r} may not make event plans")
    if not principal.covers(area):
        raise PermissionDenied(f"area {area} is outside the caller's area")
    if not end > start:
        raise BadInput("end must be after start", field="end")
    resolution, min_class, lookback_days = (
        hotspots.resolution,
        hotspots.min_class,
        hotspots.lookback_days,
    )
    if not (math.isfinite(lookback_days) and 1 <= lookback_days <= 3660):
        raise BadInput("lookback_days must be between 1 and 3660", field="lookback_days")
    query = EventQuery(area=area, start=start - pd.Timedelta(days=lookback_days), end=start)
    cells = hotspot_cells(
        store, query, principal=principal, resolution=resolution, gi=GiStar(seed=hotspots.seed)
    )
    frame = pd.DataFrame({"class": cells["class"].to_numpy(), "count": cells["count"].to_numpy()})
    frame.index = pd.Index(cells["h3"].to_numpy(), name="h3")
    grids = store.read("grids", where={"code": Prefix((area,))})
    assert isinstance(grids, gpd.GeoDataFrame)
    ka = hotspots_as_key_areas(frame, grids=grids if len(grids) else None, min_class=min_class)
    if len(ka) == 0:
        return ka
    cls = frame["class"].reindex(ka["source_id"]).to_numpy()
    window = f"{start.isoformat()}/{end.isoformat()}"
    ka["name"] = [f"活动热点 Event hot spot {c}" for c in ka["source_id"]]
    ka["frequency_min"] = [HOTSPOT_FREQUENCY_MIN.get(str(c), 120.0) for c in cls]
    ka["dwell_min"] = [default_dwell(p) for p in ka["priority"]]
    ka["valid_from"] = start
    ka["valid_to"] = end
    ka["hotspot_cells"] = [[str(c)] for c in ka["source_id"]]
    ka["source_id"] = [f"{window}/{c}" for c in ka["source_id"]]
    ka["source"] = _HOTSPOT_SOURCE
    store.write("key_areas", ka)
    stored = store.read(
        "key_areas", where={"source": _HOTSPOT_SOURCE, "source_id": list(ka["source_id"])}
    )
    assert isinstance(stored, gpd.GeoDataFrame)
    return stored.sort_values(["priority", "id"]).reset_index(drop=True)
