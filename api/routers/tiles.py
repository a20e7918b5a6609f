"""OGC API Tiles: Mapbox Vector Tiles of every collection on WebMercatorQuad.

Routes: ``/tileMatrixSets``, ``/tileMatrixSets/WebMercatorQuad``,
``/collections/{layer}/tiles``, ``/collections/{layer}/tiles/WebMercatorQuad``
and ``/collections/{layer}/tiles/WebMercatorQuad/{z}/{y}/{x}``.

Tiles obey the same rules as items: only rows in the caller's area, only the
fields the caller's role may see. A tile without features is ``204``; a tile
outside the tile matrix or the layer's zoom range is ``404``; a non-integer
index is ``400``. Tiles carry a strong ``ETag`` (``If-None-Match`` → ``304``)
and ``Cache-Control`` (``private`` for authenticated callers, whose tiles
depend on their area).
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import cache
from typing import Annotated, Any

import morecantile
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from api import ogc
from api.deps import RoleDep, StoreDep
from api.items import all_of, area_where, layer_filter, time_filter
from api.params import FilterCrs, FilterLang, FilterText, query_guard
from api.security import ANONYMOUS, CallerPrincipal
from api.temporal import parse_datetime
from gridmap.errors import BadInput, NotFound
from gridmap.model import layer_schema
from gridmap.storage.base import MAX_ZOOM
from layers.catalog import LayerDef

__all__ = ["MVT", "TMS_ID", "router", "tile_properties"]

router = APIRouter(tags=["OGC API Tiles"])

MVT = "application/vnd.mapbox-vector-tile"
TMS_ID = "WebMercatorQuad"
_TMS_URI = "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
_PLAIN = [Depends(query_guard(["f"]))]
_TILE = [Depends(query_guard(["filter", "filter-lang", "filter-crs", "datetime"]))]
_INDEX = re.compile(r"0|[1-9][0-9]{0,9}")

LayerPath = Annotated[str, Path(description="Collection (layer) name, e.g. `buildings`.")]
TmsPath = Annotated[str, Path(description="Tile matrix set id (only `WebMercatorQuad`).")]


@cache
def _tms() -> morecantile.TileMatrixSet:
    return morecantile.tms.get(TMS_ID)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _check_tms(tms: str) -> None:
    if tms != TMS_ID:
        raise NotFound(f"tile matrix set {tms[:40]!r} is not offered; use {TMS_ID}")


def _index(text: str, name: str) -> int:
    if not _INDEX.fullmatch(text):
        raise BadInput(f"tile {name} must be a non-negative integer, got {text[:20]!r}", field=name)
    return int(text)


def tile_properties(ldef: LayerDef, role: str) -> list[str]:
    """Tile properties for *role*: the fields it may see, without import bookkeeping.

    Examples
    --------
    >>> from layers.catalog import CATALOG
    >>> "workers" in tile_properties(CATALOG["grids"], "viewer")
    False
    """
    return [n for n in ogc.properties(ldef, role) if n not in ("source", "source_id")]


@router.get("/tileMatrixSets", summary="Tile matrix sets", dependencies=_PLAIN)
def tile_matrix_sets(request: Request) -> dict[str, Any]:
    """The tile matrix sets offered (WebMercatorQuad only)."""
    url = f"{_base(request)}/tileMatrixSets/{TMS_ID}"
    return {
        "tileMatrixSets": [
            {
                "id": TMS_ID,
                "title": "Google Maps Compatible for the World",
                "uri": _TMS_URI,
                "links": [{"href": url, "rel": "self", "type": ogc.JSON}],
            }
        ]
    }


@router.get(
    "/tileMatrixSets/{tms}",
    summary="One tile matrix set definition",
    dependencies=_PLAIN,
    response_class=JSONResponse,
)
def tile_matrix_set(tms: TmsPath) -> JSONResponse:
    """The OGC 2D Tile Matrix Set document (from morecantile)."""
    _check_tms(tms)
    return JSONResponse(_tms().model_dump(mode="json", exclude_none=True, by_alias=True))


def _tileset(ldef: LayerDef, base: str) -> dict[str, Any]:
    url = f"{base}/collections/{ldef.name}/tiles/{TMS_ID}"
    lo, hi = max(0, ldef.min_zoom), min(MAX_ZOOM, ldef.max_zoom)
    return {
        "title": f"{ldef.title()} (MVT)",
        "dataType": "vector",
        "crs": "http://www.opengis.net/def/crs/EPSG/0/3857",
        "tileMatrixSetURI": _TMS_URI,
        "tileMatrixSetLimits": [
            {
                "tileMatrix": str(z),
                "minTileRow": 0,
                "maxTileRow": 2**z - 1,
                "minTileCol": 0,
                "maxTileCol": 2**z - 1,
            }
            for z in range(lo, hi + 1)
        ],
        "layers": [
            {
                "id": ldef.name,
                "dataType": "vector",
                "minTileMatrix": str(lo),
                "maxTileMatrix": str(hi),
                "geometryType": (ldef.geometry_type or "").lower(),
            }
        ],
        "links": [
            {"href": url, "rel": "self", "type": ogc.JSON},
            {
                "href": f"{base}/tileMatrixSets/{TMS_ID}",
                "rel": "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme",
                "type": ogc.JSON,
            },
            {
                "href": url + "/{tileMatrix}/{tileRow}/{tileCol}",
                "rel": "item",
                "type": MVT,
                "templated": True,
            },
            {"href": f"{base}/collections/{ldef.name}", "rel": "collection", "type": ogc.JSON},
        ],
    }


@router.get("/collections/{layer}/tiles", summary="Tilesets of a collection", dependencies=_PLAIN)
def tilesets(layer: LayerPath, request: Request, role: RoleDep) -> dict[str, Any]:
    """The vector tilesets of the layer (one: WebMercatorQuad)."""
    ldef = ogc.collection(layer, role)
    base = _base(request)
    ts = _tileset(ldef, base)
    entry = {k: ts[k] for k in ("title", "dataType", "crs", "tileMatrixSetURI")}
    entry["links"] = [ts["links"][0], ts["links"][1]]
    return {
        "links": [
            {"href": f"{base}/collections/{ldef.name}/tiles", "rel": "self", "type": ogc.JSON}
        ],
        "tilesets": [entry],
    }


@router.get("/collections/{layer}/tiles/{tms}", summary="Tileset metadata", dependencies=_PLAIN)
def tileset(layer: LayerPath, tms: TmsPath, request: Request, role: RoleDep) -> dict[str, Any]:
    """Tile matrix limits, layers and the tile URL template of the layer's tileset."""
    ldef = ogc.collection(layer, role)
    _check_tms(tms)
    return _tileset(ldef, _base(request))


@router.get(
    "/collections/{layer}/tiles/{tms}/{z}/{y}/{x}",
    summary="A Mapbox Vector Tile",
    dependencies=_TILE,
    response_class=Response,
    responses={
        200: {"content": {MVT: {}}, "description": "The tile."},
        204: {"description": "No feature in this tile."},
        304: {"description": "Not modified (If-None-Match)."},
        400: {"description": "A tile index is not an integer, or a bad filter or datetime."},
        404: {"description": "Outside the tile matrix or the layer's zoom range."},
    },
)
def tile(
    layer: LayerPath,
    tms: TmsPath,
    z: Annotated[str, Path(description="Zoom level (tile matrix).", examples=["15"])],
    y: Annotated[str, Path(description="Tile row.", examples=["9484"])],
    x: Annotated[str, Path(description="Tile column.", examples=["18654"])],
    request: Request,
    store: StoreDep,
    role: RoleDep,
    caller: CallerPrincipal,
    filter: FilterText = None,
    filter_lang: FilterLang = None,
    filter_crs: FilterCrs = None,
    datetime: Annotated[
        str | None,
        Query(
            description="RFC 3339 instant or interval (`start/end`, `..` open), with a time "
            "zone; layers with a time column only (events, grids, patrol routes).",
            examples=["2026-11-01T00:00:00Z/.."],
        ),
    ] = None,
) -> Response:
    """One vector tile of the layer's features in the caller's area.

    ``filter`` and ``datetime`` select features exactly as on ``/items``; the
    tile's ``ETag`` covers them.
    """
    ldef = ogc.collection(layer, role)
    _check_tms(tms)
    zi, yi, xi = _index(z, "z"), _index(y, "y"), _index(x, "x")
    when = parse_datetime(datetime)
    timed = time_filter(layer_schema(ldef.name), when) if when is not None else None
    cql = all_of(layer_filter(ldef, filter, filter_lang, filter_crs, role), timed)
    if not (max(0, ldef.min_zoom) <= zi <= min(MAX_ZOOM, ldef.max_zoom)):
        raise NotFound(
            f"layer {ldef.name!r} has tiles at zoom {ldef.min_zoom}–{min(MAX_ZOOM, ldef.max_zoom)}"
        )
    if xi >= 2**zi or yi >= 2**zi:
        raise NotFound(f"tile {zi}/{yi}/{xi} is outside the WebMercatorQuad tile matrix")
    with store.scoped(caller.areas):
        data = store.tile(
            ldef.name,
            zi,
            xi,
            yi,
            where=area_where(ldef.name, caller),
            properties=tile_properties(ldef, role),
            cql=cql,
        )
    private = caller is not ANONYMOUS
    headers = {
        "Cache-Control": f"{'private' if private else 'public'}, max-age=300",
        "Vary": "Authorization, X-API-Key",
    }
    if not data:
        return Response(status_code=204, headers=headers)
    digest = hashlib.sha1(data, usedforsecurity=False)
    if cql is not None:  # the same bytes under another filter are another representation
        digest.update(b"\0" + json.dumps(cql.tree, sort_keys=True, default=str).encode())
    etag = '"' + digest.hexdigest() + '"'
    headers["ETag"] = etag
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(data, media_type=MVT, headers=headers)
