"""``/locate``: which admin units, grid, workers and key areas cover a point.

``GET /locate?lon=&lat=&crs=`` answers one point, ``POST /locate`` with
``{"points": [[lon, lat], …], "crs": …}`` up to 10,000 at once. ``crs`` is
required (wgs84, gcj02, bd09, cgcs2000 or EPSG:n). A point outside the
jurisdiction is not an error: 200 with ``admin_units: []``, ``grid: null``,
``workers: []``. Malformed coordinates are 400 naming the problem. What the
caller sees of grids and workers follows :func:`gridmap.locate.answer`.
"""

from __future__ import annotations

import math
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.deps import StoreDep
from api.params import query_guard
from api.security import CallerPrincipal
from gridmap.access import Principal
from gridmap.errors import BadInput, UnsupportedFormat
from gridmap.locate import (
    DEFAULT_RADIUS_M,
    MAX_POINTS,
    MAX_RADIUS_M,
    Locator,
    LocatorCache,
    locate_points,
)
from gridmap.storage import Store

__all__ = ["LocateRequest", "router"]

router = APIRouter(tags=["Lookup 定位"])

Coordinate = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Position = Annotated[list[Coordinate], Field(min_length=2, max_length=2)]
Radius = Annotated[float, Field(ge=0, le=MAX_RADIUS_M, allow_inf_nan=False)]

_CRS_HELP = "Coordinate system of the position(s): wgs84, gcj02, bd09, cgcs2000 or EPSG:n."


class LocateRequest(BaseModel):
    """Body of ``POST /locate``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"points": [[24.9414, 60.1713]], "crs": "wgs84"}]},
    )

    points: Annotated[list[Position], Field(min_length=1, max_length=MAX_POINTS)]
    crs: Annotated[str, Field(min_length=1, max_length=100, description=_CRS_HELP)]
    radius: Radius = DEFAULT_RADIUS_M


def _locator(request: Request, store: Store) -> Locator:
    cache: LocatorCache | None = getattr(request.app.state, "locator_cache", None)
    if cache is None:
        cache = LocatorCache()
        request.app.state.locator_cache = cache
    return cache.get(store)


def _number(text: str | None, name: str) -> float:
    if text is None or not text.strip():
        raise BadInput(f"{name} is required", field=name)
    try:
        value = float(text)
    except ValueError:
        shown = text if len(text) <= 40 else text[:40] + "…"
        raise BadInput(f"{name} must be a number, got {shown!r}", field=name) from None
    if not math.isfinite(value):
        raise BadInput(f"{name} must be a finite number", field=name)
    return value


@router.get(
    "/locate",
    summary="Admin units, grid and workers at one point",
    dependencies=[Depends(query_guard(["lon", "lat", "crs", "radius"]))],
    response_class=Response,
    responses={
        200: {"content": {"application/json": {}}, "description": "What covers the point."},
        400: {"description": "Malformed coordinates, missing or unknown crs."},
    },
)
def locate_one(
    request: Request,
    store: StoreDep,
    caller: CallerPrincipal,
    lon: Annotated[str | None, Query(description="x (longitude)", examples=["24.9414"])] = None,
    lat: Annotated[str | None, Query(description="y (latitude)", examples=["60.1713"])] = None,
    crs: Annotated[str | None, Query(description=_CRS_HELP, examples=["wgs84"])] = None,
    radius: Annotated[
        float, Query(ge=0, le=MAX_RADIUS_M, description="Key-area search radius (metres).")
    ] = DEFAULT_RADIUS_M,
) -> Response:
    """One point → ``{"admin_units": [...], "grid": {"code": …} | null, "workers": [...]}``.

    Also ``key_areas`` within *radius* metres, nearest first. 200 with nulls
    outside the jurisdiction.
    """
    x, y = _number(lon, "lon"), _number(lat, "lat")
    locator = _locator(request, store)
    found = locate_points(locator, [[x, y]], crs, caller, radius_m=radius)[0]
    return Response(orjson.dumps(found), media_type="application/json")


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        where = ".".join(str(p) for p in err.get("loc", ())) or "body"
        parts.append(f"{where}: {err.get('msg', 'invalid value')}")
    return "invalid body " + "; ".join(parts)


def _locate_body(body: bytes, locator: Locator, caller: Principal) -> bytes:
    try:
        req = LocateRequest.model_validate_json(body)
    except ValidationError as exc:
        raise BadInput(_validation_message(exc), field="body") from None
    results = locate_points(locator, req.points, req.crs, caller, radius_m=req.radius)
    return orjson.dumps({"count": len(results), "results": results})


@router.post(
    "/locate",
    summary="Admin units, grid and workers of up to 10,000 points",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": LocateRequest.model_json_schema()}},
        }
    },
    response_class=Response,
    responses={
        200: {"content": {"application/json": {}}, "description": "One answer per point."},
        400: {"description": "Malformed body, coordinates or crs; more than 10,000 points."},
        415: {"description": "The body is not JSON."},
    },
)
async def locate_many(request: Request, store: StoreDep, caller: CallerPrincipal) -> Response:
    """Many points → ``{"results": [...], "count": n}``, aligned to ``points``.

    The body is ``{"points": [[x, y], …], "crs": …, "radius": metres}``.
    """
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise UnsupportedFormat("POST /locate takes an application/json body")
    body = await request.body()
    locator = await run_in_threadpool(_locator, request, store)
    data = await run_in_threadpool(_locate_body, body, locator, caller)
    return Response(data, media_type="application/json")
