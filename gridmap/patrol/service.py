"""Patrol jobs over a store: plan a grid's route, keep tracks, measure coverage.

The API router and the CLI call these functions; each takes the store and the
acting principal and does the reading, checking and writing around the
algorithms of :mod:`gridmap.patrol`.
"""

from __future__ import annotations

import hashlib
import json
import math
import xml.sax.saxutils as sax
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridmap.common.errors import BadInput, NotFound
from gridmap.common.timeparse import parse_day
from gridmap.geo.projection import length_m
from gridmap.patrol.coverage import measure_coverage
from gridmap.patrol.network import StreetNetwork, street_network
from gridmap.patrol.postman import PostmanRoute, postman_route
from gridmap.patrol.tracks import Track, can_see_track, parse_track
from gridmap.patrol.visits import VisitPlan, key_point_route, mixed_route
from gridmap.security.access import SYSTEM, Principal
from gridmap.security.auth import PermissionDenied
from gridmap.storage import Prefix, Store

__all__ = [
    "EXPORT_CRS",
    "MODES",
    "RouteRequest",
    "coverage_report",
    "grid_network",
    "json_object",
    "plan_route",
    "read_tracks",
    "route_gpx",
    "route_kml",
    "route_title",
    "save_track",
]

MODES = ("streets", "points", "mixed")
_GRID_CODE_LEN = 15
_PLANNERS = frozenset({"city_admin", "town_coordinator", "community_staff", "grid_worker"})


def json_object(body: Any, known: set[str]) -> dict[str, Any]:
    """*body* as a JSON object of only *known* fields (``BadInput`` names the first other one).

    Examples
    --------
    >>> json_object({"grid": "1", "colour": "red"}, {"grid"})
    Traceback (most recent call last):
    ...
    gridmap.common.errors.BadInput: unknown field(s): colour
    """
    if not isinstance(body, dict):
        raise BadInput("the body must be a JSON object", field="body")
    unknown = sorted(set(body) - known)
    if unknown:
        raise BadInput(f"unknown field(s): {', '.join(unknown)[:100]}", field=unknown[0])
    return body


@dataclass(frozen=True)
class RouteRequest:
    """A checked ``POST /patrol/routes`` body.

    Examples
    --------
    >>> RouteRequest.from_json({"grid": "990100001001001", "mode": "streets"}).budget_min
    240.0
    """

    grid: str
    mode: str
    start: tuple[float, float] | None = None
    budget_min: float = 240.0
    network: str = "walk"
    time_limit_s: float = 2.0

    @classmethod
    def from_json(cls, body: Any) -> RouteRequest:
        """Check a decoded JSON body; ``BadInput`` names the offending field."""
        body = json_object(body, {"grid", "mode", "start", "budget_min", "network", "time_limit_s"})
        grid = body.get("grid")
        if not isinstance(grid, str) or not (grid.isascii() and grid.isdigit()):
            raise BadInput("grid must be a 15-digit grid code", field="grid")
        if len(grid) != _GRID_CODE_LEN:
            raise BadInput(
                f"grid must be a 15-digit grid code, got {len(grid)} digits", field="grid"
            )
        mode = body.get("mode")
        if mode not in MODES:
            raise BadInput(
                f"mode must be one of {', '.join(MODES)}, got {mode!r}"[:200], field="mode"
            )
        budget = _number(body.get("budget_min", 240.0), "budget_min")
        if budget <= 0 or budget > 1440:
            raise BadInput("budget_min must be > 0 and at most 1440 minutes", field="budget_min")
        limit = _number(body.get("time_limit_s", 2.0), "time_limit_s")
        if not 0 < limit <= 30:
            raise BadInput("time_limit_s must be > 0 and at most 30", field="time_limit_s")
        network = body.get("network", "walk")
        if network not in ("walk", "drive"):
            raise BadInput("network must be walk or drive", field="network")
        return cls(grid, mode, _start(body.get("start")), budget, network, limit)


def _number(v: Any, name: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise BadInput(f"{name} must be a number", field=name)
    f = float(v)
    if not math.isfinite(f):
        raise BadInput(f"{name} must be finite", field=name)
    return f


def _start(v: Any) -> tuple[float, float] | None:
    if v is None:
        return None
    if not isinstance(v, dict):
        raise BadInput('start must be {"lon": X, "lat": Y, "crs": ...}', field="start")
    lon, lat = _number(v.get("lon"), "start.lon"), _number(v.get("lat"), "start.lat")
    crs = v.get("crs", "wgs84")
    if not isinstance(crs, str):
        raise BadInput("start.crs must be a string", field="start.crs")
    if abs(lon) > 180 or abs(lat) > 90:
        raise BadInput("start lies outside lon [-180, 180] / lat [-90, 90]", field="start")
    from gridmap.patrol.tracks import convert_coords

    x, y, _ = convert_coords(np.array([lon]), np.array([lat]), crs)
    return float(x[0]), float(y[0])


def _grid(store: Store, code: str) -> pd.Series:
    grids = store.read("grids", where={"code": code})
    if len(grids) == 0:
        raise NotFound(f"unknown grid {code!r}")
    row: pd.Series = grids.iloc[-1]
    return row


def _check_area(principal: Principal, code: str) -> None:
    if principal.role not in _PLANNERS or not principal.covers(code):
        raise PermissionDenied(f"{principal.role} {principal.name!r} may not plan for grid {code}")


def grid_network(store: Store, code: str, *, network: str = "walk") -> StreetNetwork:
    """The street network of grid *code* (required streets inside it, 300 m margin).

    Raises
    ------
    gridmap.common.errors.NotFound
        For an unknown grid.
    """
    grid = _grid(store, code)
    area = grid.geometry
    minx, miny, maxx, maxy = shapely.bounds(shapely.buffer(area, 0.006))
    roads = store.read("roads", bbox=(minx, miny, maxx, maxy))
    assert isinstance(roads, gpd.GeoDataFrame)
    return street_network(roads, mode=network, area=area)  # type: ignore[arg-type]


def _grid_stops(store: Store, code: str) -> gpd.GeoDataFrame:
    area = _grid(store, code).geometry
    minx, miny, maxx, maxy = shapely.bounds(area)
    ka = store.read("key_areas", bbox=(minx, miny, maxx, maxy))
    assert isinstance(ka, gpd.GeoDataFrame)
    return ka[ka.intersects(area)]


def plan_route(
    store: Store, request: RouteRequest, *, principal: Principal = SYSTEM
) -> dict[str, Any]:
    """Plan a grid's patrol route and return it as a GeoJSON Feature.

    Examples
    --------
    >>> from gridmap.storage import open_store
    >>> from gridmap.demo.job import run_demo
    >>> s = open_store(":memory:", migrate=True); _ = run_demo(s, events=0)
    >>> f = plan_route(s, RouteRequest("990100001001001", "streets"))
    >>> f["geometry"]["type"], f["properties"]["covers_all_required"]
    ('LineString', True)
    """
    _check_area(principal, request.grid)
    net = grid_network(store, request.grid, network=request.network)
    plan: PostmanRoute | VisitPlan
    if request.mode == "streets":
        plan = postman_route(net, start=request.start)
        walk_min = plan.length_m / 1.2 / 60
        if walk_min > request.budget_min:
            raise BadInput(
                f"the required streets take {walk_min:.0f} min, more than budget_min "
                f"{request.budget_min:.0f}",
                field="budget_min",
            )
    else:
        stops = _grid_stops(store, request.grid)
        if request.mode == "points":
            if len(stops) == 0:
                raise BadInput(f"grid {request.grid} has no key points to visit", field="mode")
            plan = key_point_route(
                net,
                stops,
                start=request.start,
                budget_min=request.budget_min,
                time_limit_s=request.time_limit_s,
            )
        else:
            plan = mixed_route(net, stops, start=request.start, budget_min=request.budget_min)
    return route_feature(plan, grid=request.grid, mode=request.mode, budget_min=request.budget_min)


def route_feature(
    plan: PostmanRoute | VisitPlan, *, grid: str, mode: str, budget_min: float | None = None
) -> dict[str, Any]:
    """A planned route as a GeoJSON Feature (WGS84, coordinates rounded to ~1 cm)."""
    geom = plan.geometry()
    coords = np.round(shapely.get_coordinates(geom), 7).tolist()
    props: dict[str, Any] = {"grid_code": grid, "mode": mode, "length_m": round(plan.length_m, 1)}
    streets = plan if isinstance(plan, PostmanRoute) else plan.streets
    if streets is not None:
        req = {(min(u, v), max(u, v), k) for u, v, k in streets.network.required_edges}
        done = {(min(u, v), max(u, v), k) for u, v, k in streets.edges}
        props.update(
            {
                "required_length_m": round(streets.required_length_m, 1),
                "lower_bound_m": round(streets.lower_bound_m, 1),
                "exact": streets.exact,
                "covers_all_required": req <= done,
                "steps": [
                    {
                        "street": s.street,
                        "turn": s.turn,
                        "distance_m": round(s.distance_m, 1),
                        "zh": s.text_zh,
                        "en": s.text_en,
                    }
                    for s in streets.steps
                ],
            }
        )
        props["connectors_added"] = len(streets.network.connectors)
    if isinstance(plan, VisitPlan):
        props["duration_min"] = round(plan.duration_min, 1)
        props["stops"] = json.loads(plan.stops.to_json(orient="records"))
        props["dropped"] = json.loads(
            plan.dropped.to_json(orient="records") if len(plan.dropped) else "[]"
        )
    else:
        props["duration_min"] = round(plan.length_m / 1.2 / 60, 1)
    if budget_min is not None:
        props["budget_min"] = budget_min
    return {
        "type": "Feature",
        "geometry": {"type": "LineString", "coordinates": coords},
        "properties": props,
    }


#: Coordinate systems route exports (GPX, KML) can be written in.
EXPORT_CRS = ("wgs84", "gcj02")
_CRS_LABEL = {
    "wgs84": "WGS84 (GPS, 天地图)",
    "gcj02": "GCJ-02 (高德/腾讯 Amap/Tencent)",
}
_MODE_LABEL = {
    "streets": ("街巷全覆盖", "all streets"),
    "points": ("重点点位", "key points"),
    "mixed": ("街巷+点位", "streets and key points"),
}


def _export_crs(crs: str) -> str:
    key = crs.strip().lower().replace("-", "").replace("_", "") if isinstance(crs, str) else ""
    if key not in EXPORT_CRS:
        raise BadInput(
            f"crs must be one of {', '.join(EXPORT_CRS)} for a route export, got {str(crs)[:20]!r}",
            field="crs",
        )
    return key


def _export_points(
    feature: dict[str, Any], crs: str
) -> tuple[list[tuple[float, float]], list[tuple[float, float, dict[str, Any]]]]:
    """The route's positions and its stops (lon, lat, stop) in *crs*, from WGS84."""
    from gridmap.geo import chinacrs

    line = np.asarray(feature["geometry"]["coordinates"], dtype=np.float64).reshape(-1, 2)
    stops = list(feature.get("properties", {}).get("stops", []) or [])
    s_xy = np.array([[float(s["lon"]), float(s["lat"])] for s in stops], dtype=np.float64)
    xy = np.vstack([line, s_xy.reshape(-1, 2)])
    if crs != "wgs84" and len(xy):
        x, y = chinacrs.from_wgs84(xy[:, 0], xy[:, 1], crs)
        xy = np.column_stack([x, y])
    pts = [(float(x), float(y)) for x, y in xy]
    n = len(line)
    return pts[:n], [(x, y, s) for (x, y), s in zip(pts[n:], stops, strict=True)]


def _stop_label(stop: dict[str, Any]) -> str:
    return f"{stop.get('order', '')}. {stop.get('name') or ''}".strip()


def route_gpx(feature: dict[str, Any], *, name: str = "patrol route", crs: str = "wgs84") -> str:
    """GPX 1.1 text of a route Feature: one track, plus waypoints for the stops.

    Parameters
    ----------
    feature : dict
        A route Feature of :func:`plan_route` (WGS84).
    name : str
        The track's name.
    crs : {"wgs84", "gcj02"}
        The coordinate system written: GPX readers assume WGS84, but Chinese
        phone map apps (Amap/Gaode, Tencent) draw GCJ-02 positions; the
        system written is named in the file's ``<metadata><desc>``.

    Examples
    --------
    >>> f = {"geometry": {"coordinates": [[24.94, 60.17], [24.95, 60.17]]},
    ...      "properties": {"stops": [{"lon": 24.95, "lat": 60.17, "name": "<b>", "order": 1}]}}
    >>> "&lt;b&gt;" in route_gpx(f)
    True
    >>> f = {"geometry": {"coordinates": [[120.5, 36.86], [120.51, 36.86]]}}
    >>> '<trkpt lat="36.8604619" lon="120.5049368"/>' in route_gpx(f, crs="gcj02")
    True
    """
    crs = _export_crs(crs)
    line, stops = _export_points(feature, crs)
    esc = sax.escape
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<gpx version="1.1" creator="gridmap" xmlns="http://www.topografix.com/GPX/1/1">',
        f"<metadata><name>{esc(name)}</name>"
        f"<desc>坐标系 coordinate system: {esc(_CRS_LABEL[crs])}</desc></metadata>",
    ]
    for lon, lat, s in stops:
        dwell = s.get("dwell_min")
        desc = f"<desc>dwell {dwell:.0f} min</desc>" if isinstance(dwell, int | float) else ""
        out.append(
            f'<wpt lat="{lat:.7f}" lon="{lon:.7f}"><name>{esc(_stop_label(s))}</name>{desc}</wpt>'
        )
    out.append(f"<trk><name>{esc(name)}</name><trkseg>")
    for lon, lat in line:
        out.append(f'<trkpt lat="{lat:.7f}" lon="{lon:.7f}"/>')
    out.append("</trkseg></trk></gpx>")
    return "\n".join(out) + "\n"


def route_kml(feature: dict[str, Any], *, name: str = "patrol route", crs: str = "wgs84") -> str:
    """KML 2.2 text of a route Feature: the route as a LineString, start, end and stops.

    Names are bilingual (巡查路线 Patrol route, 起点 Start, 终点 End); the turn
    list, when the route has one, is the route's description.

    Parameters
    ----------
    feature : dict
        A route Feature of :func:`plan_route` (WGS84).
    name : str
        The document's name.
    crs : {"wgs84", "gcj02"}
        The coordinate system written (KML readers assume WGS84; Chinese
        phone map apps expect GCJ-02); named in the document's description.

    Examples
    --------
    >>> import xml.etree.ElementTree as ET
    >>> f = {"geometry": {"coordinates": [[24.94, 60.17], [24.95, 60.17]]}, "properties": {}}
    >>> root = ET.fromstring(route_kml(f, name="<x>"))
    >>> ns = {"k": "http://www.opengis.net/kml/2.2"}
    >>> root.find("k:Document/k:Placemark/k:LineString/k:coordinates", ns).text
    '24.9400000,60.1700000 24.9500000,60.1700000'
    >>> [p.text for p in root.findall("k:Document/k:Placemark/k:name", ns)][1:]
    ['起点 Start', '终点 End']
    """
    crs = _export_crs(crs)
    line, stops = _export_points(feature, crs)
    if not line:
        raise BadInput("the route has no positions to export", field="geometry")
    esc = sax.escape
    props = feature.get("properties", {}) or {}
    mode_zh, mode_en = _MODE_LABEL.get(str(props.get("mode")), ("", ""))
    length = props.get("length_m")
    about = [f"坐标系 coordinate system: {_CRS_LABEL[crs]}"]
    if isinstance(length, int | float):
        about.append(f"长度 length: {length:.0f} m")
    if mode_zh:
        about.append(f"方式 mode: {mode_zh} {mode_en}")
    turns = [f"{s.get('zh', '')} / {s.get('en', '')}" for s in props.get("steps", []) or []]

    def coord(lon: float, lat: float) -> str:
        return f"{lon:.7f},{lat:.7f}"

    def point(label: str, lon: float, lat: float, style: str, desc: str = "") -> str:
        text = f"<description>{esc(desc)}</description>" if desc else ""
        return (
            f"<Placemark><name>{esc(label)}</name>{text}<styleUrl>#{style}</styleUrl>"
            f"<Point><coordinates>{coord(lon, lat)}</coordinates></Point></Placemark>"
        )

    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<kml xmlns="http://www.opengis.net/kml/2.2">',
        "<Document>",
        f"<name>{esc(name)}</name>",
        f"<description>{esc('; '.join(about))}</description>",
        '<Style id="route"><LineStyle><color>ff1f6fe5</color><width>4</width></LineStyle></Style>',
        '<Style id="start"><IconStyle><color>ff3cb44b</color></IconStyle></Style>',
        '<Style id="end"><IconStyle><color>ff3c3ce6</color></IconStyle></Style>',
        '<Style id="stop"><IconStyle><color>ff00a5ff</color></IconStyle></Style>',
        "<Placemark><name>巡查路线 Patrol route</name>"
        f"<description>{esc(chr(10).join(turns))}</description><styleUrl>#route</styleUrl>"
        "<LineString><tessellate>1</tessellate><coordinates>"
        + " ".join(coord(x, y) for x, y in line)
        + "</coordinates></LineString></Placemark>",
        point("起点 Start", *line[0], "start"),
        point("终点 End", *line[-1], "end"),
    ]
    if stops:
        out.append("<Folder><name>巡查点位 Stops</name>")
        for lon, lat, s in stops:
            dwell = s.get("dwell_min")
            desc = f"停留 dwell {dwell:.0f} min" if isinstance(dwell, int | float) else ""
            out.append(point(_stop_label(s), lon, lat, "stop", desc))
        out.append("</Folder>")
    out.append("</Document></kml>")
    return "\n".join(out) + "\n"


def route_title(grid: str, mode: str) -> str:
    """The bilingual name of a grid's route in exports.

    Examples
    --------
    >>> route_title("990100001001001", "streets")
    '巡查路线 Patrol route 990100001001001 街巷全覆盖 all streets'
    """
    zh, en = _MODE_LABEL.get(mode, (mode, ""))
    return f"巡查路线 Patrol route {grid} {zh} {en}".strip()


# -- tracks ---------------------------------------------------------------------
def save_track(
    store: Store,
    track: Track,
    *,
    grid: str,
    worker: str | None = None,
    principal: Principal = SYSTEM,
) -> dict[str, Any]:
    """Store a parsed track of *worker* in *grid* (the uploader's own by default).

    A grid worker may upload only their own tracks; coordinators may upload
    for workers in grids they cover.
    """
    worker = worker or principal.name
    if not isinstance(worker, str) or not worker.strip() or len(worker) > 200:
        raise BadInput("worker must be a non-empty name", field="worker")
    _grid(store, grid)
    if not can_see_track(principal, worker=worker, grid_code=grid):
        raise PermissionDenied(f"{principal.name!r} may not upload tracks for this worker or grid")
    started = track.started_at
    digest = hashlib.sha1(
        json.dumps(
            [worker, grid, track.offsets_s(), track.fixes[["lon", "lat"]].values.tolist()]
        ).encode("utf-8")
    ).hexdigest()
    frame = gpd.GeoDataFrame(
        {
            "worker": [worker],
            "grid_code": [grid],
            "started_at": [started],
            "ended_at": [track.ended_at],
            "track_date": [started.date()],
            "point_count": [len(track.fixes)],
            "length_m": [float(length_m(gpd.GeoSeries([track.line()], crs=4326)).iloc[0])],
            "offsets_s": [json.dumps(track.offsets_s())],
            "flags": [list(track.flags)],
            "crs_in": [track.crs_in],
            "uploaded_by": [principal.name],
            "uploaded_at": [pd.Timestamp.now(tz="UTC")],
            "source": ["upload"],
            "source_id": [digest],
        },
        geometry=[track.line()],
        crs=4326,
    )
    with store.scoped(principal.areas):
        store.write("patrol_tracks", frame)
        stored = store.read("patrol_tracks", where={"source": "upload", "source_id": digest})
    row = stored.iloc[-1]
    return {
        "id": int(row["id"]),
        "worker": worker,
        "grid_code": grid,
        "started_at": started.isoformat(),
        "ended_at": track.ended_at.isoformat(),
        "point_count": len(track.fixes),
        "length_m": round(float(frame["length_m"].iloc[0]), 1),
        "flags": list(track.flags),
    }


def read_tracks(
    store: Store,
    principal: Principal,
    *,
    grid: str | None = None,
    day: str | None = None,
    worker: str | None = None,
    track_id: int | None = None,
) -> gpd.GeoDataFrame:
    """Tracks *principal* may see (filtered by grid, day, worker or id).

    Rows the principal may not see are never returned (404 for a single id).
    """
    if principal.role not in _PLANNERS:
        raise PermissionDenied(f"role {principal.role!r} may not see patrol tracks")
    where: dict[str, Any] = {}
    if not principal.sees_everything:
        where["grid_code"] = Prefix(tuple(principal.areas))
    if grid is not None:
        if principal.sees_everything or principal.covers(grid):
            where["grid_code"] = grid
        else:
            where["grid_code"] = Prefix(())
    nothing = False
    if principal.role == "grid_worker":
        where["worker"] = principal.name
        nothing = worker is not None and worker != principal.name
    elif worker is not None:
        where["worker"] = worker
    if day is not None:
        where["track_date"] = parse_day(day, field="date")
    with store.scoped(principal.areas):
        rows = store.read(
            "patrol_tracks",
            where=where,
            ids=[track_id] if track_id is not None else None,
            limit=0 if nothing else None,
        )
    assert isinstance(rows, gpd.GeoDataFrame)
    keep = [
        can_see_track(principal, worker=w, grid_code=g)
        for w, g in zip(rows["worker"], rows["grid_code"], strict=True)
    ]
    rows = rows.loc[keep]
    if track_id is not None and len(rows) == 0:
        raise NotFound(f"no patrol track {track_id}")
    return rows


def track_fixes(row: pd.Series) -> pd.DataFrame:
    coords = shapely.get_coordinates(row.geometry)
    offsets = json.loads(row["offsets_s"] or "[]")
    if len(offsets) != len(coords):
        offsets = np.linspace(0, (row["ended_at"] - row["started_at"]).total_seconds(), len(coords))
    t = pd.Timestamp(row["started_at"]) + pd.to_timedelta(np.asarray(offsets, float), unit="s")
    return pd.DataFrame({"time": t, "lon": coords[:, 0], "lat": coords[:, 1]})


def coverage_report(
    store: Store,
    principal: Principal,
    *,
    grid: str,
    day: str | None = None,
    worker: str | None = None,
    accuracy_m: float = 20.0,
    reach_m: float = 30.0,
) -> dict[str, Any]:
    """Patrol coverage of *grid* on *day* (per worker and in total) with the band."""
    _grid(store, grid)
    if not principal.covers(grid):
        raise PermissionDenied(f"grid {grid} is outside the caller's area")
    tracks = read_tracks(store, principal, grid=grid, day=day, worker=worker)
    net = grid_network(store, grid)
    streets = net.edges_frame()
    streets = streets[streets["required"].astype(bool)]
    bbox = tuple(float(v) for v in shapely.bounds(_grid(store, grid).geometry))
    buildings = store.read("buildings", where={"grid_code": grid})
    key_areas = store.read("key_areas", bbox=bbox)  # type: ignore[arg-type]
    assert isinstance(buildings, gpd.GeoDataFrame) and isinstance(key_areas, gpd.GeoDataFrame)

    def measure(rows: gpd.GeoDataFrame) -> dict[str, Any]:
        res = measure_coverage(
            [track_fixes(r) for _, r in rows.iterrows()],
            streets,
            accuracy_m=accuracy_m,
            buildings=buildings,
            reach_m=reach_m,
            key_areas=key_areas,
        )
        out = res.summary()
        out["key_area_visits"] = [
            {"name": n, "dwell_min": round(float(d), 1), "visited": bool(v)}
            for n, d, v in zip(
                res.key_areas.get("name", []),
                res.key_areas.get("dwell_min", []),
                res.key_areas.get("visited", []),
                strict=True,
            )
        ]
        out["flags"] = sorted({f for fl in rows["flags"] for f in (fl or [])})
        return out

    per_worker = {str(w): measure(part) for w, part in tracks.groupby("worker")}
    report = {
        "grid_code": grid,
        "date": day,
        "tracks": len(tracks),
        "accuracy_m": accuracy_m,
        "total": measure(tracks),
        "workers": per_worker,
    }
    return report


def parse_upload(data: bytes | str, *, format: str | None, crs: str | None) -> Track:
    """Parse an uploaded track (``crs`` is required: tracks arrive in any system)."""
    if crs is None:
        raise BadInput(
            "say which coordinate system the track is in (crs=wgs84|gcj02|…)", field="crs"
        )
    if format is not None and format not in ("gpx", "geojson", "csv"):
        raise BadInput(f"format must be gpx, geojson or csv, got {format[:20]!r}", field="format")
    return parse_track(data, format=format, crs=crs)  # type: ignore[arg-type]
