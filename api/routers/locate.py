"""``/locate``: which admin units, grid, workers and key areas cover a point.

``GET /locate?lon=&lat=&crs=`` answers one point, ``POST /locate`` with
``{"points": [[lon, lat], …], "crs": …}`` up to 10,000 at once. ``crs`` is
required (wgs84, gcj02, bd09, cgcs2000 or EPSG:n). A point outside the
jurisdiction is not an error: 200 with ``admin_units: []``, ``grid: null``,
``workers: []``. Malformed coordinates are 400 naming the problem. What the
caller sees of grids and workers follows :func:`gridmap.geo.locate.answer`.

``GET /locate`` is the hot path of other systems (hotlines, dispatch), so it
is written for throughput: an async endpoint that reads its query by hand
(the parameters are documented through ``openapi_extra``), answers from the
cached :class:`~gridmap.geo.locate.Locator` without a database round trip, and
only hops to the thread pool when the store is due for a change check or the
caller presents credentials (verifying them reads the store).
"""

from __future__ import annotations

import math
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.deps import StoreDep
from api.params import query_guard
from api.security import ANONYMOUS, CallerPrincipal, get_optional_principal
from gridmap.common.errors import BadInput, UnsupportedFormat
from gridmap.geo.locate import (
    DEFAULT_RADIUS_M,
    MAX_POINTS,
    MAX_RADIUS_M,
    Locator,
    LocatorCache,
    locate_points,
    paused_gc,
)
from gridmap.security.access import Principal
from gridmap.storage import Store

__all__ = ["LocateRequest", "app_locator_cache", "router", "shared_locator"]

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


def _cache(request: Request) -> LocatorCache:
    return app_locator_cache(request.app)


def app_locator_cache(app: Any) -> LocatorCache:
    """The app's one :class:`~gridmap.geo.locate.LocatorCache` (made on first use).

    The service's lifespan fills it before the first request (``api.main``),
    so the first reports of the day do not wait for the index to be built.
    """
    cache: LocatorCache | None = getattr(app.state, "locator_cache", None)
    if cache is None:
        cache = LocatorCache()
        app.state.locator_cache = cache
    return cache


def _locator(request: Request, store: Store) -> Locator:
    return _cache(request).get(store)


def shared_locator(request: Request, store: Store) -> Locator:
    """The app's one cached :class:`~gridmap.geo.locate.Locator` (blocking: call off the loop).

    ``/locate`` and report intake share it, and its freshness rule: the store
    is asked whether the lookup layers changed at most once a second.
    """
    return _locator(request, store)


async def _current_locator(request: Request) -> Locator:
    """The cached locator without leaving the event loop, unless a store check is due."""
    store: Store = request.app.state.store
    locator = _cache(request).current(store)  # also while an intake thread checks it
    if locator is None:
        locator = await run_in_threadpool(_locator, request, store)
    return locator


async def _caller(request: Request) -> Principal:
    """:data:`~api.security.CallerPrincipal` of *request*, without a thread hop when anonymous.

    The same rule as :func:`api.security.get_optional_principal` (a bearer
    token, else an API key, else the anonymous viewer; a present but
    invalid credential is a 401), which checks any credential presented.
    """
    scheme, token = get_authorization_scheme_param(request.headers.get("authorization"))
    bearer = token if token and scheme.lower() == "bearer" else None
    api_key = request.headers.get("x-api-key") or None
    if not bearer and not api_key:
        request.state.principal = ANONYMOUS
        return ANONYMOUS
    return await get_optional_principal(request, bearer, api_key)


_guard = query_guard(["lon", "lat", "crs", "radius"])


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


def _query_parameter(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {**schema, "description": description},
    }


_GET_PARAMETERS = [
    _query_parameter("lon", "x (longitude)", {"type": "string", "examples": ["24.9414"]}),
    _query_parameter("lat", "y (latitude)", {"type": "string", "examples": ["60.1713"]}),
    _query_parameter("crs", _CRS_HELP, {"type": "string", "examples": ["wgs84"]}),
    _query_parameter(
        "radius",
        "Key-area search radius (metres).",
        {"type": "number", "minimum": 0, "maximum": MAX_RADIUS_M, "default": DEFAULT_RADIUS_M},
    ),
]


@router.get(
    "/locate",
    summary="Admin units, grid and workers at one point",
    response_class=Response,
    openapi_extra={
        "parameters": _GET_PARAMETERS,
        "security": [{"OAuth2PasswordBearer": []}, {"APIKeyHeader": []}],
    },
    responses={
        200: {"content": {"application/json": {}}, "description": "What covers the point."},
        400: {"description": "Malformed coordinates, missing or unknown crs."},
        401: {"description": "A credential was presented and is not valid."},
    },
)
async def locate_one(request: Request) -> Response:
    """One point → ``{"admin_units": [...], "grid": {"code": …} | null, "workers": [...]}``.

    Also ``key_areas`` within *radius* metres, nearest first. 200 with nulls
    outside the jurisdiction. Query: ``lon``, ``lat``, ``crs`` (required) and
    ``radius`` (metres, default 200).
    """
    _guard(request)
    caller = await _caller(request)
    query = request.query_params
    x, y = _number(query.get("lon"), "lon"), _number(query.get("lat"), "lat")
    radius = query.get("radius")
    radius_m = DEFAULT_RADIUS_M if radius is None else _number(radius, "radius")
    locator = await _current_locator(request)
    found = locate_points(locator, [[x, y]], query.get("crs"), caller, radius_m=radius_m)[0]
    return Response(orjson.dumps(found), media_type="application/json")


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        where = ".".join(str(p) for p in err.get("loc", ())) or "body"
        parts.append(f"{where}: {err.get('msg', 'invalid value')}")
    return "invalid body " + "; ".join(parts)


def _locate_body(body: bytes, locator: Locator, caller: Principal) -> bytes:
    with paused_gc(len(body) // 20):  # about one point per 20 bytes of JSON
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
