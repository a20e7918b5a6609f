"""OGC API Tiles: Mapbox Vector Tiles of every collection on WebMercatorQuad and WorldCRS84Quad.

Routes: ``/tileMatrixSets``, ``/tileMatrixSets/{tms}``,
``/collections/{layer}/tiles``, ``/collections/{layer}/tiles/{tms}``,
``/collections/{layer}/tiles/{tms}/{z}/{y}/{x}``, the TileJSON 3.0.0 document
``/collections/{layer}/tiles/{tms}/tilejson.json`` and a MapLibre style of
every collection the caller may see, ``/styles/default.json``. ``{tms}`` is
``WebMercatorQuad`` (tiles cut by the store, ``ST_AsMVT``) or
``WorldCRS84Quad`` (longitude/latitude tiles for CGCS2000 basemaps such as
天地图, cut by :mod:`layers.crs84tiles` from the features the store reads).

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
from gridmap.common.errors import BadInput, NotFound
from gridmap.common.model import layer_schema
from gridmap.geo.tiles import MAX_ZOOM
from layers.catalog import LayerDef
from layers.crs84tiles import CRS84_TMS, crs84_tile, crs84_tile_bounds, crs84_zooms

__all__ = ["MVT", "TMS_ID", "TMS_IDS", "router", "tile_properties"]

router = APIRouter(tags=["OGC API Tiles"])

MVT = "application/vnd.mapbox-vector-tile"
TMS_ID = "WebMercatorQuad"
#: Tile matrix sets offered: id → (title, CRS URI).
TMS_IDS: dict[str, tuple[str, str]] = {
    TMS_ID: ("Google Maps Compatible for the World", "http://www.opengis.net/def/crs/EPSG/0/3857"),
    CRS84_TMS: (
        "CRS84 for the World (CGCS2000 / 天地图 basemaps)",
        "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
    ),
}
_PLAIN = [Depends(query_guard(["f"]))]
_TILE = [Depends(query_guard(["filter", "filter-lang", "filter-crs", "datetime"]))]
_INDEX = re.compile(r"0|[1-9][0-9]{0,9}")

LayerPath = Annotated[str, Path(description="Collection (layer) name, e.g. `buildings`.")]
TmsPath = Annotated[
    str, Path(description="Tile matrix set id: `WebMercatorQuad` or `WorldCRS84Quad`.")
]


@cache
def _tms(tms_id: str = TMS_ID) -> morecantile.TileMatrixSet:
    return morecantile.tms.get(tms_id)


def _tms_uri(tms_id: str) -> str:
    return f"http://www.opengis.net/def/tilematrixset/OGC/1.0/{tms_id}"


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _check_tms(tms: str) -> None:
    if tms not in TMS_IDS:
        raise NotFound(
            f"tile matrix set {tms[:40]!r} is not offered; use {' or '.join(TMS_IDS)} "
            "(不支持该瓦片矩阵集)"
        )


def _matrix_size(tms: str, z: int) -> tuple[int, int]:
    """Columns and rows of tile matrix *z* of *tms*."""
    m = _tms(tms).matrix(z)
    return int(m.matrixWidth), int(m.matrixHeight)


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
    """The tile matrix sets offered (WebMercatorQuad and WorldCRS84Quad)."""
    return {
        "tileMatrixSets": [
            {
                "id": tms,
                "title": title,
                "uri": _tms_uri(tms),
                "crs": crs,
                "links": [
                    {
                        "href": f"{_base(request)}/tileMatrixSets/{tms}",
                        "rel": "self",
                        "type": ogc.JSON,
                    }
                ],
            }
            for tms, (title, crs) in TMS_IDS.items()
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
    return JSONResponse(_tms(tms).model_dump(mode="json", exclude_none=True, by_alias=True))


def _zooms(ldef: LayerDef, tms: str = TMS_ID) -> tuple[int, int]:
    """The layer's levels on *tms* (its zoom range is in WebMercatorQuad levels)."""
    lo, hi = max(0, ldef.min_zoom), min(MAX_ZOOM, ldef.max_zoom)
    return crs84_zooms(lo, hi) if tms == CRS84_TMS else (lo, hi)


def _tileset(ldef: LayerDef, base: str, tms: str = TMS_ID) -> dict[str, Any]:
    url = f"{base}/collections/{ldef.name}/tiles/{tms}"
    lo, hi = _zooms(ldef, tms)
    limits = []
    for z in range(lo, hi + 1):
        cols, rows = _matrix_size(tms, z)
        limits.append(
            {
                "tileMatrix": str(z),
                "minTileRow": 0,
                "maxTileRow": rows - 1,
                "minTileCol": 0,
                "maxTileCol": cols - 1,
            }
        )
    return {
        "title": f"{ldef.title()} (MVT, {tms})",
        "dataType": "vector",
        "crs": TMS_IDS[tms][1],
        "tileMatrixSetURI": _tms_uri(tms),
        "tileMatrixSetLimits": limits,
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
                "href": f"{base}/tileMatrixSets/{tms}",
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
            {
                "href": f"{url}/tilejson.json",
                "rel": "describedby",
                "type": ogc.JSON,
                "title": "TileJSON 3.0.0",
            },
        ],
    }


@router.get("/collections/{layer}/tiles", summary="Tilesets of a collection", dependencies=_PLAIN)
def tilesets(layer: LayerPath, request: Request, role: RoleDep) -> dict[str, Any]:
    """The vector tilesets of the layer (WebMercatorQuad and WorldCRS84Quad)."""
    ldef = ogc.collection(layer, role)
    base = _base(request)
    entries = []
    for tms in TMS_IDS:
        ts = _tileset(ldef, base, tms)
        entry = {k: ts[k] for k in ("title", "dataType", "crs", "tileMatrixSetURI")}
        entry["links"] = [ts["links"][0], ts["links"][1]]
        entries.append(entry)
    return {
        "links": [
            {"href": f"{base}/collections/{ldef.name}/tiles", "rel": "self", "type": ogc.JSON}
        ],
        "tilesets": entries,
    }


@router.get("/collections/{layer}/tiles/{tms}", summary="Tileset metadata", dependencies=_PLAIN)
def tileset(layer: LayerPath, tms: TmsPath, request: Request, role: RoleDep) -> dict[str, Any]:
    """Tile matrix limits, layers and the tile URL template of the layer's tileset."""
    ldef = ogc.collection(layer, role)
    _check_tms(tms)
    return _tileset(ldef, _base(request), tms)


def tilejson_document(
    ldef: LayerDef,
    role: str,
    base: str,
    tms: str = TMS_ID,
    extent: tuple[float, float, float, float] | None = None,
) -> dict[str, Any]:
    """The TileJSON 3.0.0 document of *ldef*'s tiles on *tms* (MapLibre, QGIS, Leaflet plugins).

    ``tiles`` is an ``{z}/{x}/{y}`` template (rows and columns in the OGC
    ``{z}/{y}/{x}`` path order); ``vector_layers`` lists the fields *role* sees;
    ``bounds`` and ``center`` are the layer's *extent* when known.
    """
    lo, hi = _zooms(ldef, tms)
    lat_max = 85.0511287798066 if tms == TMS_ID else 90.0
    box = [-180.0, -lat_max, 180.0, lat_max]
    if extent is not None:
        box = [
            max(-180.0, extent[0]),
            max(-lat_max, extent[1]),
            min(180.0, extent[2]),
            min(lat_max, extent[3]),
        ]
    template = f"{base}/collections/{ldef.name}/tiles/{tms}/{{z}}/{{y}}/{{x}}"
    fields = {
        fd.name: fd.title() for fd in ldef.fields_for(role) if fd.name in _tile_fields(ldef, role)
    }
    return {
        "tilejson": "3.0.0",
        "name": ldef.name,
        "description": ldef.title(),
        "version": "1.0.0",
        "scheme": "xyz",
        "tiles": [template],
        "minzoom": lo,
        "maxzoom": hi,
        "bounds": box,
        "center": [(box[0] + box[2]) / 2, (box[1] + box[3]) / 2, lo],
        "crs": TMS_IDS[tms][1],
        "tileMatrixSet": tms,
        "vector_layers": [
            {
                "id": ldef.name,
                "description": ldef.title(),
                "minzoom": lo,
                "maxzoom": hi,
                "fields": fields,
            }
        ],
    }


def _tile_fields(ldef: LayerDef, role: str) -> set[str]:
    return set(tile_properties(ldef, role))


@router.get(
    "/collections/{layer}/tiles/{tms}/tilejson.json",
    summary="TileJSON 3.0.0 of a tileset",
    dependencies=_PLAIN,
)
def tilejson(
    layer: LayerPath, tms: TmsPath, request: Request, store: StoreDep, role: RoleDep
) -> dict[str, Any]:
    """TileJSON of the layer's vector tiles on *tms*, for MapLibre GL, QGIS and others."""
    ldef = ogc.collection(layer, role)
    _check_tms(tms)
    extent = store.bounds(ldef.name)
    return tilejson_document(ldef, role, _base(request), tms, extent)


def _hex(value: Any, default: str) -> str:
    text = str(value or default)
    return text if re.fullmatch(r"#[0-9a-fA-F]{3,8}", text) else default


def _style_layers(ldef: LayerDef) -> list[dict[str, Any]]:
    """MapLibre layers drawing *ldef* with its catalog style (Leaflet path options)."""
    st = dict(ldef.style)
    color = _hex(st.get("color"), "#3388ff")
    fill = _hex(st.get("fillColor"), color)
    opacity = float(st.get("opacity", 1.0))
    base = {"source": ldef.name, "source-layer": ldef.name, "minzoom": _zooms(ldef)[0]}
    geom = (ldef.geometry_type or "").lower()
    if "polygon" in geom:
        out = []
        if st.get("fill", True):
            out.append(
                {
                    "id": f"{ldef.name}-fill",
                    "type": "fill",
                    **base,
                    "paint": {
                        "fill-color": fill,
                        "fill-opacity": float(st.get("fillOpacity", 0.2)),
                    },
                }
            )
        out.append(
            {
                "id": f"{ldef.name}-line",
                "type": "line",
                **base,
                "paint": {
                    "line-color": color,
                    "line-width": float(st.get("weight", 1)),
                    "line-opacity": opacity,
                },
            }
        )
        return out
    if "line" in geom:
        return [
            {
                "id": f"{ldef.name}-line",
                "type": "line",
                **base,
                "paint": {
                    "line-color": color,
                    "line-width": float(st.get("weight", 2)),
                    "line-opacity": opacity,
                },
            }
        ]
    return [
        {
            "id": f"{ldef.name}-circle",
            "type": "circle",
            **base,
            "paint": {
                "circle-color": fill,
                "circle-radius": float(st.get("radius", 4)),
                "circle-stroke-color": color,
                "circle-stroke-width": 1,
                "circle-opacity": float(st.get("fillOpacity", 0.8)),
            },
        }
    ]


@router.get(
    "/styles/default.json", summary="MapLibre style of the collections", dependencies=_PLAIN
)
def default_style(request: Request, role: RoleDep) -> dict[str, Any]:
    """A MapLibre GL style (version 8) drawing every collection the caller may see.

    Each collection is a vector source given by its WebMercatorQuad TileJSON;
    colours come from the layer catalog (the same as the folium maps). No
    basemap is included: add 天地图 or OSM raster tiles beside it.
    """
    base = _base(request)
    shown = ogc.collections(role)
    return {
        "version": 8,
        "name": "gridmap 网格化服务管理",
        "metadata": {"gridmap:titles": {d.name: d.title() for d in shown}},
        "center": [116.39, 39.9],
        "zoom": 12,
        "sources": {
            d.name: {
                "type": "vector",
                "url": f"{base}/collections/{d.name}/tiles/{TMS_ID}/tilejson.json",
            }
            for d in shown
        },
        "layers": [
            {"id": "background", "type": "background", "paint": {"background-color": "#f8f8f8"}},
            *(layer for d in shown for layer in _style_layers(d)),
        ],
    }


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
    tile's ``ETag`` covers them. On ``WorldCRS84Quad`` tile coordinates are
    longitude/latitude scaled to the tile (CGCS2000 basemaps such as 天地图).
    """
    ldef = ogc.collection(layer, role)
    _check_tms(tms)
    zi, yi, xi = _index(z, "z"), _index(y, "y"), _index(x, "x")
    when = parse_datetime(datetime)
    timed = time_filter(layer_schema(ldef.name), when) if when is not None else None
    cql = all_of(layer_filter(ldef, filter, filter_lang, filter_crs, role), timed)
    lo, hi = _zooms(ldef, tms)
    if not (lo <= zi <= hi):
        raise NotFound(
            f"layer {ldef.name!r} has {tms} tiles at levels {lo}–{hi}, not {zi} "
            "(该图层在此级别无瓦片)"
        )
    cols, rows = _matrix_size(tms, zi)
    if xi >= cols or yi >= rows:
        raise NotFound(
            f"tile {zi}/{yi}/{xi} is outside the {tms} tile matrix: level {zi} has rows "
            f"0–{rows - 1} and columns 0–{cols - 1} (瓦片超出范围)"
        )
    props = tile_properties(ldef, role)
    where = area_where(ldef.name, caller)
    with store.scoped(caller.areas):
        if tms == TMS_ID:
            data = store.tile(ldef.name, zi, xi, yi, where=where, properties=props, cql=cql)
        else:
            left, bottom, right, top = crs84_tile_bounds(zi, xi, yi)
            pad_x, pad_y = (right - left) * 64 / 4096, (top - bottom) * 64 / 4096
            box = (
                max(-180.0, left - pad_x),
                max(-90.0, bottom - pad_y),
                min(180.0, right + pad_x),
                min(90.0, top + pad_y),
            )
            frame = store.read(ldef.name, bbox=box, where=where, cql=cql)
            data = crs84_tile(frame, ldef.name, zi, xi, yi, properties=props)
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
