"""OGC API Features Part 1 (core, GeoJSON, OpenAPI 3.0) over the spatial layers.

Routes: ``/``, ``/conformance``, ``/api``, ``/docs``, ``/collections``,
``/collections/{layer}``, ``/collections/{layer}/items``,
``/collections/{layer}/items/{item_id}``, ``/collections/{layer}/queryables``.
The caller's role decides which layers and fields are published.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from api import ogc
from api.crs import parse_bbox_in, parse_crs, reproject_frame
from api.deps import RoleDep, SettingsDep, StoreDep
from api.geojson import feature_collection, feature_document
from api.items import area_where, collection_facts, layer_filter, page_members, read_page
from api.openapi import api_document
from api.params import CRS84, clamp_limit, parse_item_id, query_guard
from api.security import CallerPrincipal
from api.temporal import parse_datetime
from gridmap.errors import NotFound
from gridmap.model import layer_schema

__all__ = ["router"]

router = APIRouter(tags=["OGC API Features"])

_PLAIN = [Depends(query_guard(["f"]))]
_ONE = [Depends(query_guard(["f", "crs"]))]
_ITEMS = [
    Depends(
        query_guard(
            [
                "f",
                "bbox",
                "bbox-crs",
                "crs",
                "datetime",
                "limit",
                "offset",
                "filter",
                "filter-lang",
                "filter-crs",
            ]
        )
    )
]

Format = Annotated[
    Literal["json"] | None, Query(description="Output format (only JSON is offered).")
]
GeoFormat = Annotated[
    Literal["json", "geojson"] | None, Query(description="Output format (GeoJSON).")
]
LayerPath = Annotated[str, Path(description="Collection (layer) name, e.g. `buildings`.")]
Crs = Annotated[
    str | None, Query(description="CRS of the output; only CRS84 is offered.", examples=[CRS84])
]


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _geojson(body: bytes, *, crs: str = CRS84) -> Response:
    return Response(body, media_type=ogc.GEOJSON, headers={"Content-Crs": f"<{crs}>"})


def _describe(store: StoreDep, name: str, role: str, base: str) -> dict[str, Any]:
    ldef = ogc.collection(name, role)
    bounds, times = collection_facts(store, layer_schema(name))
    return ogc.collection_document(ldef, base, bounds=bounds, times=times)


@router.get("/", summary="Landing page", dependencies=_PLAIN)
def landing(request: Request, f: Format = None) -> dict[str, Any]:
    """Links to the API definition, the conformance classes and the collections."""
    return ogc.landing_document(_base(request))


@router.get("/conformance", summary="Conformance classes", dependencies=_PLAIN)
def conformance(f: Format = None) -> dict[str, Any]:
    """The OGC API conformance classes this service implements."""
    return ogc.conformance_document()


@router.get("/api", summary="API definition (OpenAPI 3.0)", dependencies=_PLAIN)
def api_definition(request: Request, settings: SettingsDep, f: Format = None) -> JSONResponse:
    """The OpenAPI 3.0 document of the service."""
    return JSONResponse(api_document(request.app, settings), media_type=ogc.OPENAPI_MEDIA_TYPE)


@router.get("/docs", include_in_schema=False, dependencies=_PLAIN)
def docs(request: Request) -> HTMLResponse:
    """Interactive documentation (Swagger UI) of ``/api``."""
    vendor = f"{_base(request)}/static/vendor/swagger-ui-dist"
    return get_swagger_ui_html(
        openapi_url=f"{_base(request)}/api",
        title="gridmap API",
        swagger_js_url=f"{vendor}/swagger-ui-bundle.js",
        swagger_css_url=f"{vendor}/swagger-ui.css",
        swagger_favicon_url=f"{vendor}/favicon-32x32.png",
    )


@router.get("/collections", summary="Feature collections", dependencies=_PLAIN)
def collections(
    request: Request, store: StoreDep, role: RoleDep, f: Format = None
) -> dict[str, Any]:
    """Every layer the caller may see, with its extent."""
    base = _base(request)
    described = [_describe(store, c.name, role, base) for c in ogc.collections(role)]
    return ogc.collections_document(base, described)


@router.get("/collections/{layer}", summary="One feature collection", dependencies=_PLAIN)
def collection(
    layer: LayerPath, request: Request, store: StoreDep, role: RoleDep, f: Format = None
) -> dict[str, Any]:
    """Title, extent, CRS and links of one layer."""
    return _describe(store, layer, role, _base(request))


@router.get(
    "/collections/{layer}/queryables",
    summary="Queryable properties (JSON Schema)",
    dependencies=_PLAIN,
    response_class=JSONResponse,
)
def queryables(layer: LayerPath, request: Request, role: RoleDep, f: Format = None) -> JSONResponse:
    """The layer's queryable properties as a JSON Schema (2020-12)."""
    doc = ogc.queryables_document(ogc.collection(layer, role), _base(request))
    return JSONResponse(doc, media_type="application/schema+json")


@router.get(
    "/collections/{layer}/items",
    summary="Features (GeoJSON)",
    dependencies=_ITEMS,
    response_class=Response,
    responses={200: {"content": {ogc.GEOJSON: {}}, "description": "A GeoJSON FeatureCollection."}},
)
def items(
    layer: LayerPath,
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    role: RoleDep,
    caller: CallerPrincipal,
    bbox: Annotated[
        str | None,
        Query(
            description="minx,miny,maxx,maxy in WGS84 degrees (CRS84); features intersecting it.",
            examples=["24.93,60.16,24.96,60.18"],
        ),
    ] = None,
    datetime: Annotated[
        str | None,
        Query(
            description="RFC 3339 instant or interval (`start/end`, `..` for an open end), "
            "with a time zone; layers with a time column only.",
            examples=["2026-11-01T00:00:00Z/.."],
        ),
    ] = None,
    limit: Annotated[
        int | None, Query(ge=1, description="Page size; larger values are clamped to the maximum.")
    ] = None,
    offset: Annotated[int, Query(ge=0, description="Features to skip (paging).")] = 0,
    bbox_crs: Annotated[
        str | None,
        Query(alias="bbox-crs", description="CRS of `bbox`; only CRS84.", examples=[CRS84]),
    ] = None,
    filter: Annotated[
        str | None,
        Query(
            description="CQL2 filter (OGC API Features Part 3) over the queryables, "
            "e.g. `floors > 3 AND S_INTERSECTS(geometry, BBOX(24.93,60.16,24.96,60.18))`.",
            max_length=50_000,
        ),
    ] = None,
    filter_lang: Annotated[
        Literal["cql2-text", "cql2-json"] | None,
        Query(alias="filter-lang", description="Language of `filter` (default cql2-text)."),
    ] = None,
    filter_crs: Annotated[
        str | None,
        Query(alias="filter-crs", description="CRS of geometry literals; only CRS84."),
    ] = None,
    crs: Crs = None,
    f: GeoFormat = None,
) -> Response:
    """A page of the layer's features, ordered by id, with ``next``/``prev`` links.

    Only features in the caller's area are served (and, on PostGIS, row-level
    security enforces it again).
    """
    ldef = ogc.collection(layer, role)
    out_crs = parse_crs(crs, field="crs")
    box = parse_bbox_in(bbox, parse_crs(bbox_crs, field="bbox-crs"))
    cql = layer_filter(ldef, filter, filter_lang, filter_crs)
    with store.scoped(caller.areas):
        page = read_page(
            store,
            layer_schema(ldef.name),
            bbox=box,
            when=parse_datetime(datetime),
            limit=clamp_limit(limit, default=settings.default_limit, maximum=settings.max_limit),
            offset=offset,
            where=area_where(ldef.name, caller),
            cql=cql,
        )
    members = page_members(page, request.url, f"{_base(request)}/collections/{ldef.name}")
    props = ogc.properties(ldef, role)
    frame = reproject_frame(page.frame, out_crs)
    body = feature_collection(frame, properties=props, members=members)
    return _geojson(body, crs=out_crs)


@router.get(
    "/collections/{layer}/items/{item_id}",
    summary="One feature (GeoJSON)",
    dependencies=_ONE,
    response_class=Response,
    responses={200: {"content": {ogc.GEOJSON: {}}, "description": "A GeoJSON Feature."}},
)
def item(
    layer: LayerPath,
    item_id: Annotated[str, Path(description="Feature id (a positive integer).")],
    request: Request,
    store: StoreDep,
    role: RoleDep,
    caller: CallerPrincipal,
    crs: Crs = None,
    f: GeoFormat = None,
) -> Response:
    """One feature by id, with links to itself and its collection (404 outside your area)."""
    ldef = ogc.collection(layer, role)
    out_crs = parse_crs(crs, field="crs")
    fid = parse_item_id(item_id, layer=ldef.name)
    with store.scoped(caller.areas):
        frame = store.read(ldef.name, ids=[fid], where=area_where(ldef.name, caller))
    if frame.empty:
        raise NotFound(f"{ldef.name} {fid} not found")
    url = f"{_base(request)}/collections/{ldef.name}"
    links = [
        {"href": f"{url}/items/{frame['id'].iloc[0]}", "rel": "self", "type": ogc.GEOJSON},
        {"href": url, "rel": "collection", "type": ogc.JSON},
    ]
    props = ogc.properties(ldef, role)
    body = feature_document(
        reproject_frame(frame, out_crs), properties=props, members={"links": links}
    )
    return _geojson(body, crs=out_crs)
