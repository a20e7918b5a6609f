"""Heat maps and hot spots of events: ``GET /heatmap`` and ``GET /hotspots``.

Both answer a GeoJSON FeatureCollection of H3 cells with properties ``h3``
and ``count`` (``/heatmap`` adds ``open``, ``merged`` and, with ``rate``,
``rate``; ``/hotspots`` adds ``class`` — ``hot_99`` … ``cold_99``, ``none`` —
``gi_z``, ``p_value``, ``suppressed`` and, with ``windows``, ``pattern``).

``GET /heatmap/tiles/WebMercatorQuad/{z}/{y}/{x}`` serves the same cells as
Mapbox Vector Tiles (layer ``heatmap``) for big areas: the H3 resolution
follows the zoom (:func:`gridmap.analytics.heat.tile_resolution`), the filters and
privacy rules are those of ``/heatmap``; an empty tile is ``204``; tiles
carry an ``ETag`` (``If-None-Match`` → ``304``) and ``Cache-Control: private``.

Filters: ``category``, ``status``, ``channel``, ``from``/``to`` (ISO 8601 with
a zone, on ``reported_at``), ``area`` (admin unit or grid code), ``bbox``;
``resolution`` 7–11 is required. Only events in the caller's areas are
counted. Small counts (< ``GRIDMAP_PRIVACY_MIN_COUNT``, default 3) are
merged or blanked for roles without detail rights and for sensitive
categories (see :func:`gridmap.analytics.smallcounts.needs_protection`).
"""

from __future__ import annotations

import hashlib
import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from api.deps import PrivacyDep, StoreDep
from api.geojson import feature_collection
from api.params import parse_bbox, query_guard
from api.routers.events import parse_time
from api.security import CurrentPrincipal
from gridmap.analytics.heat import heatmap_cells, heatmap_tile_cells
from gridmap.analytics.hotspots import hotspot_cells
from gridmap.analytics.queries import EventQuery
from gridmap.common.errors import BadInput, NotFound
from gridmap.geo.h3cells import check_resolution
from gridmap.geo.tiles import MAX_ZOOM
from layers.heat import heat_tile

__all__ = ["router"]

router = APIRouter(tags=["Analytics 热力图与热点"])

_FILTERS = ["resolution", "category", "status", "channel", "from", "to", "area", "bbox"]
_GEOJSON = "application/geo+json"


def _resolution(text: str) -> int:
    if not (text.isascii() and text.isdigit() and len(text) <= 2):
        raise BadInput(
            f"resolution must be an integer from 7 to 11, got {text[:20]!r}", field="resolution"
        )
    return check_resolution(int(text))


Text = Annotated[str | None, Query(max_length=40)]
Rate = Annotated[Literal["per_1000_residents", "per_1000_households"] | None, Query()]


def _query(
    category: Text = None,
    status: Text = None,
    channel: Text = None,
    from_: Annotated[str | None, Query(alias="from", max_length=40)] = None,
    to: Text = None,
    area: Text = None,
    bbox: Annotated[str | None, Query(max_length=200)] = None,
) -> EventQuery:
    """The event filters both routes share, parsed once (a query dependency)."""
    start, end = parse_time(from_, "from"), parse_time(to, "to")
    if start is not None and end is not None and start >= end:
        raise BadInput("from must be earlier than to", field="from")
    return EventQuery(
        category=category,
        status=status,
        channel=channel,
        start=start,
        end=end,
        area=area,
        bbox=parse_bbox(bbox),
    )


def _res(resolution: Annotated[str, Query(max_length=10)]) -> int:
    """The required ``resolution`` parameter (7–11)."""
    return _resolution(resolution)


EventQueryDep = Annotated[EventQuery, Depends(_query)]
ResolutionDep = Annotated[int, Depends(_res)]


def _answer(frame: Any, properties: list[str], members: dict[str, Any]) -> Response:
    frame = frame.reset_index(drop=True)
    frame.insert(0, "id", range(1, len(frame) + 1))
    members = {**members, "numberReturned": len(frame), "synthetic_note": _NOTE}
    body = feature_collection(frame, properties=properties, members=members)
    return Response(body, media_type=_GEOJSON)


_NOTE = "counts of stored events; demo and test events are synthetic"


@router.get(
    "/heatmap",
    summary="Events per H3 cell (事件热力图)",
    dependencies=[Depends(query_guard([*_FILTERS, "rate"]))],
    response_class=Response,
)
def get_heatmap(
    store: StoreDep,
    privacy: PrivacyDep,
    principal: CurrentPrincipal,
    res: ResolutionDep,
    query: EventQueryDep,
    rate: Rate = None,
) -> Response:
    """Events per H3 cell (count, open, optional rate) in the caller's areas."""
    cells = heatmap_cells(
        store, query, principal=principal, resolution=res, rate=rate, min_count=privacy.min_count
    )
    props = ["h3", "count", "open", "merged"] + (["rate"] if rate else [])
    members = {"resolution": res, "rate": rate, "protected": cells.attrs["protected"]}
    return _answer(cells, props, members)


@router.get(
    "/hotspots",
    summary="Getis-Ord Gi* hot spots on H3 cells (热点分析)",
    dependencies=[Depends(query_guard([*_FILTERS, "windows"]))],
    response_class=Response,
)
def get_hotspots(
    store: StoreDep,
    privacy: PrivacyDep,
    principal: CurrentPrincipal,
    res: ResolutionDep,
    query: EventQueryDep,
    windows: Annotated[int | None, Query(ge=3, le=24)] = None,
) -> Response:
    """Hot and cold spots (FDR-corrected), optionally with emerging patterns over *windows*."""
    cells = hotspot_cells(
        store,
        query,
        principal=principal,
        resolution=res,
        windows=windows,
        min_count=privacy.min_count,
    )
    props = ["h3", "count", "class", "gi_z", "p_value", "suppressed"]
    props += ["pattern"] if windows else []
    members = {"resolution": res, "protected": cells.attrs["protected"]}
    return _answer(cells, props, members)


_MVT = "application/vnd.mapbox-vector-tile"
_INDEX = re.compile(r"0|[1-9][0-9]{0,9}")


def _tile_index(text: str, name: str) -> int:
    if not _INDEX.fullmatch(text):
        raise BadInput(f"tile {name} must be a non-negative integer, got {text[:20]!r}", field=name)
    return int(text)


@router.get(
    "/heatmap/tiles/WebMercatorQuad/{z}/{y}/{x}",
    summary="Heat-map H3 cells as a vector tile (事件热力图瓦片)",
    dependencies=[Depends(query_guard([*_FILTERS[1:-1], "rate"]))],
    response_class=Response,
    responses={
        200: {"content": {_MVT: {}}, "description": "The tile (layer `heatmap`)."},
        204: {"description": "No cell in this tile."},
        304: {"description": "Not modified (If-None-Match)."},
        404: {"description": "Outside the WebMercatorQuad tile matrix."},
    },
)
def get_heatmap_tile(
    request: Request,
    store: StoreDep,
    privacy: PrivacyDep,
    principal: CurrentPrincipal,
    z: Annotated[str, Path(description="Zoom level (tile matrix).", examples=["14"])],
    y: Annotated[str, Path(description="Tile row.", examples=["4742"])],
    x: Annotated[str, Path(description="Tile column.", examples=["9327"])],
    query: EventQueryDep,
    rate: Rate = None,
) -> Response:
    """Events per H3 cell in one tile, as on ``/heatmap`` (resolution from the zoom)."""
    zi, yi, xi = _tile_index(z, "z"), _tile_index(y, "y"), _tile_index(x, "x")
    if zi > MAX_ZOOM or xi >= 2**zi or yi >= 2**zi:
        raise NotFound(f"tile {zi}/{yi}/{xi} is outside the WebMercatorQuad tile matrix")
    cells = heatmap_tile_cells(
        store,
        query,
        principal=principal,
        z=zi,
        x=xi,
        y=yi,
        rate=rate,
        min_count=privacy.min_count,
    )
    props = ["h3", "count", "open", "merged"] + (["rate"] if rate else [])
    data = heat_tile(cells, zi, xi, yi, properties=props)
    headers = {"Cache-Control": "private, max-age=60", "Vary": "Authorization, X-API-Key"}
    if not data:
        return Response(status_code=204, headers=headers)
    etag = '"' + hashlib.sha1(data, usedforsecurity=False).hexdigest() + '"'
    headers["ETag"] = etag
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(data, media_type=_MVT, headers=headers)
