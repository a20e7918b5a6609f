"""Patrols: planned routes, GPS tracks (sensitive) and measured coverage.

Routes: ``POST /patrol/routes`` (GeoJSON Feature, or GPX / KML with ``?format=gpx|kml``,
in WGS84 or, for Chinese phone map apps, GCJ-02 with ``&crs=gcj02``),
``POST /patrol/tracks`` (JSON or multipart upload), ``GET /patrol/tracks``,
``GET /patrol/tracks/{id}``, ``GET /patrol/coverage``. The work happens in
:mod:`gridmap.patrol.service`; tracks are visible only to the worker, the
coordinators whose area covers the grid, and city administrators (auditors).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, Response

from api.deps import SettingsDep, StoreDep
from api.routers._json import parse_json, read_json
from api.security import CurrentPrincipal
from api.validation import check_form
from gridmap.common.errors import BadInput, UnsupportedFormat
from gridmap.patrol import service

__all__ = ["router"]

router = APIRouter(tags=["Patrol 巡查"])

_PRIVATE = {"Cache-Control": "no-store"}


_EXPORTS = {
    "gpx": (service.route_gpx, "application/gpx+xml"),
    "kml": (service.route_kml, "application/vnd.google-earth.kml+xml"),
}


@router.post("/patrol/routes", summary="Plan a patrol route for a grid 规划巡查路线")
async def plan_route(
    request: Request,
    store: StoreDep,
    principal: CurrentPrincipal,
    format: Annotated[
        Literal["geojson", "gpx", "kml"],
        Query(description="geojson (default), gpx or kml (for phone map apps)"),
    ] = "geojson",
    crs: Annotated[
        Literal["wgs84", "gcj02"] | None,
        Query(
            description="Coordinates of a gpx or kml export: wgs84 (default) or gcj02 "
            "(Amap/Gaode, Tencent). GeoJSON is always WGS84 (RFC 7946)."
        ),
    ] = None,
) -> Response:
    """Plan a route: ``{"grid": CODE, "mode": "streets"|"points"|"mixed", ...}``."""
    if format == "geojson" and crs not in (None, "wgs84"):
        raise BadInput(
            "GeoJSON is always WGS84 (RFC 7946): crs applies to gpx and kml", field="crs"
        )
    req = service.RouteRequest.from_json(await read_json(request))
    feature = service.plan_route(store, req, principal=principal)
    if format in _EXPORTS:
        write, media_type = _EXPORTS[format]
        system = crs or "wgs84"
        return Response(
            write(feature, name=service.route_title(req.grid, req.mode), crs=system),
            media_type=media_type,
            headers={
                "Content-Disposition": (
                    f'attachment; filename="route-{req.grid}-{system}.{format}"'
                )
            },
        )
    return JSONResponse(feature, media_type="application/geo+json")


async def _upload(request: Request) -> tuple[bytes, dict[str, Any]]:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        form = await request.form()
        file = form.get("file")
        if file is None or isinstance(file, str):
            raise BadInput("multipart upload needs a 'file' part", field="file")
        data = await file.read()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        check_form(fields)
        return data, fields
    body = await read_json(request) if ctype else parse_json(await request.body())
    if not isinstance(body, dict):
        raise BadInput("the body must be a JSON object", field="body")
    track = body.get("track")
    if isinstance(track, dict | list):
        data = json.dumps(track).encode("utf-8")
        body.setdefault("format", "geojson")
    elif isinstance(track, str):
        data = track.encode("utf-8")
    else:
        raise BadInput("'track' must hold the GPX/CSV text or a GeoJSON object", field="track")
    return data, {k: v for k, v in body.items() if k != "track"}


@router.post("/patrol/tracks", status_code=201, summary="Upload a GPS track 上传巡查轨迹")
async def upload_track(
    request: Request, store: StoreDep, principal: CurrentPrincipal
) -> JSONResponse:
    """Store a track (GPX, GeoJSON or CSV in any CRS) and report its flags."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in ("application/json", "multipart/form-data"):
        raise UnsupportedFormat("send application/json or multipart/form-data")
    data, fields = await _upload(request)
    for name in ("grid", "crs", "format", "worker"):
        if name in fields and fields[name] is not None and not isinstance(fields[name], str):
            raise BadInput(f"{name} must be a string", field=name)
    grid = fields.get("grid")
    if not isinstance(grid, str) or not grid:
        raise BadInput("say which grid the track belongs to (grid)", field="grid")
    track = service.parse_upload(data, format=fields.get("format"), crs=fields.get("crs"))
    saved = service.save_track(
        store, track, grid=grid, worker=fields.get("worker"), principal=principal
    )
    return JSONResponse(saved, status_code=201, headers=_PRIVATE)


def _track_feature(row: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "id": int(row["id"]),
        "geometry": {"type": "LineString", "coordinates": list(map(list, row.geometry.coords))}
        if row.geometry.geom_type == "LineString"
        else json.loads(json.dumps(row.geometry.__geo_interface__)),
        "properties": {
            "worker": row["worker"],
            "grid_code": row["grid_code"],
            "started_at": row["started_at"].isoformat(),
            "ended_at": row["ended_at"].isoformat(),
            "point_count": int(row["point_count"]),
            "length_m": float(row["length_m"]),
            "flags": list(row["flags"] or []),
        },
    }


@router.get("/patrol/tracks", summary="Tracks the caller may see 巡查轨迹")
def list_tracks(
    store: StoreDep,
    principal: CurrentPrincipal,
    grid: Annotated[str | None, Query(max_length=15, pattern=r"^\d{6,15}$")] = None,
    date: Annotated[str | None, Query(max_length=10)] = None,
    worker: Annotated[str | None, Query(max_length=200)] = None,
) -> JSONResponse:
    """GeoJSON FeatureCollection of visible tracks."""
    rows = service.read_tracks(store, principal, grid=grid, day=date, worker=worker)
    feats = [_track_feature(r) for _, r in rows.iterrows()]
    return JSONResponse(
        {"type": "FeatureCollection", "features": feats},
        media_type="application/geo+json",
        headers=_PRIVATE,
    )


@router.get("/patrol/tracks/{track_id}", summary="One track 巡查轨迹")
def get_track(track_id: int, store: StoreDep, principal: CurrentPrincipal) -> JSONResponse:
    """One track (404 when absent or not visible to the caller)."""
    if not 0 < track_id < 2**62:
        raise BadInput("track id out of range", field="track_id")
    rows = service.read_tracks(store, principal, track_id=track_id)
    return JSONResponse(
        _track_feature(rows.iloc[0]), media_type="application/geo+json", headers=_PRIVATE
    )


@router.get("/patrol/coverage", summary="Measured patrol coverage 巡查覆盖率")
def coverage(
    store: StoreDep,
    principal: CurrentPrincipal,
    grid: Annotated[str, Query(min_length=15, max_length=15, pattern=r"^\d{15}$")],
    date: Annotated[str | None, Query(max_length=10)] = None,
    worker: Annotated[str | None, Query(max_length=200)] = None,
    accuracy_m: Annotated[float, Query(gt=0, le=1000)] = 20.0,
    reach_m: Annotated[float, Query(gt=0, le=1000)] = 30.0,
) -> JSONResponse:
    """Covered street length and share, households reached, key areas, band."""
    report = service.coverage_report(
        store, principal, grid=grid, day=date, worker=worker, accuracy_m=accuracy_m, reach_m=reach_m
    )
    return JSONResponse(report, headers=_PRIVATE)


# -- event security plans (issue 21) ---------------------------------------------
# POST /patrol/plans plans shift routes for a major event (重大活动安保) and stores
# them (Idempotency-Key: a replay answers the stored plan); GET /patrol/plans lists
# the caller's plans; GET /patrol/plans/{id} (routes as GeoJSON, key areas with
# their windows), /routes (one worker's GPX or KML, WGS84 or GCJ-02), /print.pdf
# (the A4 plan: a page per worker with map and timetable), /compliance (uploaded
# tracks against the plan, and events in the hot-spot areas before/during/after);
# POST /patrol/plans/hotspot-areas turns current hot spots into temporary key areas.
# The work happens in gridmap.patrol.plans.
@router.post("/patrol/plans", summary="Plan a major-event security patrol 重大活动安保巡逻方案")
async def plan_event(
    request: Request,
    store: StoreDep,
    principal: CurrentPrincipal,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Response:
    """Shift routes per worker visiting every key area at its frequency, main streets per shift.

    The answer lists what could not be met (``unmet``, with the reason) and
    is stored (201) unless ``"save": false`` (200). A replay with the same
    ``Idempotency-Key`` answers the stored plan (``Idempotent-Replayed: true``)
    without planning again; the same key with another body is refused (422).
    """
    from starlette.concurrency import run_in_threadpool

    from gridmap.patrol import plans

    body = await read_json(request)
    req = plans.PlanRequest.from_json(body)
    status, answer, replayed = await run_in_threadpool(
        plans.make_plan_once,
        store,
        req,
        key=idempotency_key,
        digest=plans.plan_digest(body),
        principal=principal,
    )
    headers = {"Idempotent-Replayed": "true"} if replayed else {}
    if answer.get("id") is not None:
        headers["Location"] = f"/patrol/plans/{answer['id']}"
    return JSONResponse(answer, status_code=status, headers=headers)


@router.get("/patrol/plans", summary="Stored event plans 安保巡逻方案列表")
def list_plans(store: StoreDep, principal: CurrentPrincipal) -> JSONResponse:
    """The event plans of the caller's area, newest first (``plans``: id, name, window, …)."""
    from gridmap.patrol import plans

    return JSONResponse({"plans": plans.list_plans(store, principal=principal)})


@router.post(
    "/patrol/plans/hotspot-areas",
    status_code=201,
    summary="Hot spots as temporary key areas for an event 热点转临时重点区域",
)
async def hotspot_areas(request: Request, store: StoreDep, principal: CurrentPrincipal) -> Response:
    """Current hot-spot cells (99 %/95 %) of an area as key areas valid for the event window."""
    from starlette.concurrency import run_in_threadpool

    from gridmap.patrol import plans

    args = plans.hotspot_request(await read_json(request))
    rows = await run_in_threadpool(plans.hotspot_key_areas, store, principal=principal, **args)
    cols = ["id", "name", "priority", "frequency_min", "dwell_min", "hotspot_cells"]
    feats = [
        {
            "type": "Feature",
            "id": int(r["id"]),
            "geometry": r.geometry.__geo_interface__,
            "properties": {
                **{c: r[c] for c in cols[1:]},
                "priority": int(r["priority"]),
                "hotspot_cells": list(r["hotspot_cells"]),
                "valid_from": r["valid_from"].isoformat(),
                "valid_to": r["valid_to"].isoformat(),
            },
        }
        for _, r in rows.iterrows()
    ]
    return JSONResponse(
        {"type": "FeatureCollection", "features": feats},
        status_code=201,
        media_type="application/geo+json",
    )


@router.get("/patrol/plans/{plan_id}", summary="A stored event plan 安保巡逻方案")
def get_plan(plan_id: int, store: StoreDep, principal: CurrentPrincipal) -> JSONResponse:
    """The plan, what it could not meet, and its routes (404 outside the caller's area)."""
    from gridmap.patrol import plans

    return JSONResponse(plans.read_plan(store, plan_id, principal=principal))


@router.get("/patrol/plans/{plan_id}/routes", summary="A worker's event route as GPX/KML")
def plan_route_file(
    plan_id: int,
    store: StoreDep,
    principal: CurrentPrincipal,
    worker: Annotated[str, Query(min_length=1, max_length=200)],
    shift: Annotated[int | None, Query(ge=1, le=100)] = None,
    format: Annotated[Literal["gpx", "kml"], Query()] = "gpx",
    crs: Annotated[
        Literal["wgs84", "gcj02"],
        Query(description="wgs84 (default) or gcj02 (Amap/Gaode, Tencent)"),
    ] = "wgs84",
) -> Response:
    """One worker's route (and stops) for a shift, for phone map apps."""
    from gridmap.patrol import plans

    text, filename = plans.plan_export(
        store, plan_id, worker=worker, shift=shift, format=format, crs=crs, principal=principal
    )
    return Response(
        text,
        media_type=_EXPORTS[format][1],
        headers={"Content-Disposition": f'attachment; filename="{filename}"', **_PRIVATE},
    )


@router.get(
    "/patrol/plans/{plan_id}/print.pdf",
    summary="The printable plan (A4 PDF) 打印安保巡逻方案",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
)
def plan_pdf(
    plan_id: int, store: StoreDep, settings: SettingsDep, principal: CurrentPrincipal
) -> Response:
    """A page per worker and shift: the route on a map with its key areas, and the timetable."""
    from gridmap.patrol import plans
    from gridmap.patrol.printout import render_plan_pdf

    tz = settings.time_zone
    plan = plans.read_plan(store, plan_id, principal=principal)
    return Response(
        render_plan_pdf(plan, tz=tz),
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'inline; filename="event-plan-{plan_id}.pdf"',
            **_PRIVATE,
        },
    )


@router.get("/patrol/plans/{plan_id}/compliance", summary="Was the plan followed? 方案执行情况")
def plan_compliance(
    plan_id: int,
    store: StoreDep,
    principal: CurrentPrincipal,
    accuracy_m: Annotated[float, Query(gt=0, le=1000)] = 20.0,
    dwell_share: Annotated[float, Query(ge=0, le=1)] = 0.8,
    late_after_min: Annotated[float, Query(ge=0, le=1440)] = 5.0,
) -> JSONResponse:
    """Key-area visits made/missed (with times), main streets covered per shift, lateness."""
    from gridmap.patrol import plans

    report = plans.plan_compliance(
        store,
        plan_id,
        principal=principal,
        accuracy_m=accuracy_m,
        dwell_share=dwell_share,
        late_after_min=late_after_min,
    )
    return JSONResponse(report, headers=_PRIVATE)
