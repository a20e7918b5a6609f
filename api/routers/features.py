"""OGC API Features Part 1 (core, GeoJSON, OpenAPI 3.0) over the spatial layers.

Routes: ``/``, ``/conformance``, ``/api``, ``/docs``, ``/collections``,
``/collections/{layer}``, ``/collections/{layer}/items``,
``/collections/{layer}/items/{item_id}``, ``/collections/{layer}/queryables``.
The caller's role decides which layers and fields are published.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from functools import cache
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse

from api import ogc
from api.crs import parse_bbox_in, parse_crs, reproject_frame
from api.deps import RoleDep, SettingsDep, StoreDep
from api.exports import EXPORT_FORMATS, export_response
from api.geojson import feature_collection, feature_collection_text, feature_document
from api.items import (
    JsonPage,
    Page,
    PageQuery,
    all_of,
    area_where,
    collection_facts,
    disclose_events,
    layer_filter,
    page_members,
    queryable_params,
    queryables_filter,
    read_json_page,
    read_page,
    time_filter,
)
from api.openapi import api_document
from api.params import (
    CRS84,
    FilterCrs,
    FilterLang,
    FilterText,
    clamp_limit,
    parse_item_id,
    query_guard,
)
from api.security import CallerPrincipal
from api.temporal import TimeRange, parse_datetime
from gridmap.common.errors import NotFound
from gridmap.common.model import layer_schema
from gridmap.security import disclosure as disclosure
from gridmap.security.access import Principal
from gridmap.storage import BBox, Store
from gridmap.storage.cql import CqlFilter
from layers.catalog import CATALOG, LayerDef

__all__ = ["router"]

router = APIRouter(tags=["OGC API Features"])

_PLAIN = [Depends(query_guard(["f"]))]
#: Layers whose items may be asked unmasked (``unmask``, ``reason``): audited, see docs/roles.md.
_UNMASKABLE = frozenset({"events"})
_UNMASK_PARAMS = ("unmask", "reason")
_ITEM_PARAMS = (
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
)


@cache
def _items_guard(layer: str) -> Callable[[Request], None]:
    ldef = CATALOG.get(layer)
    names = [n for n in queryable_params(ldef) if n not in _ITEM_PARAMS] if ldef else []
    extra = _UNMASK_PARAMS if layer in _UNMASKABLE else ()
    return query_guard([*_ITEM_PARAMS, *extra, *names])


@cache
def _item_guard(layer: str) -> Callable[[Request], None]:
    return query_guard(["f", "crs", *(_UNMASK_PARAMS if layer in _UNMASKABLE else ())])


def _check_items_query(layer: LayerPath, request: Request) -> None:
    """Refuse unknown and repeated parameters; the layer's queryables are known ones."""
    _items_guard(layer if layer in CATALOG else "")(request)


def _check_item_query(layer: LayerPath, request: Request) -> None:
    """Refuse unknown and repeated parameters of one item (``unmask`` only where allowed)."""
    _item_guard(layer if layer in CATALOG else "")(request)


_ITEMS = [Depends(_check_items_query)]
_ONE = [Depends(_check_item_query)]

Format = Annotated[
    Literal["json"] | None, Query(description="Output format (only JSON is offered).")
]
PageFormat = Annotated[
    Literal["json", "html"] | None,
    Query(
        description="Output format: `json` or `html` (a page for people). Without it, "
        "`Accept: text/html` (a browser) gets HTML and every other client JSON."
    ),
]
GeoFormat = Annotated[
    Literal["json", "geojson", "html"] | None,
    Query(
        description="Output format: `json`/`geojson` (GeoJSON) or `html` (a page with a map). "
        "Without it, `Accept: text/html` (a browser) gets HTML and every other client GeoJSON."
    ),
]
ItemsFormat = Annotated[
    Literal["json", "geojson", "html", "gpkg", "fgb", "parquet", "csv"] | None,
    Query(
        description="Output format: `json`/`geojson` (GeoJSON), `html` (a page with a map), "
        "or a file of every matching feature (the same filters and area; `limit`/`offset` "
        "page it only when given; geometries in CRS84): `gpkg` (GeoPackage), `fgb` "
        "(FlatGeobuf), `parquet` (GeoParquet) or `csv` (geometry as WKT). "
        "导出格式: GeoPackage、FlatGeobuf、GeoParquet、CSV."
    ),
]
_NEGOTIATED = {"Vary": "Accept"}
_DOC_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {ogc.JSON: {}, ogc.HTML: {"schema": {"type": "string"}}},
        "description": "The document as JSON, or as an HTML page (`f=html`).",
    }
}
LayerPath = Annotated[str, Path(description="Collection (layer) name, e.g. `buildings`.")]
Crs = Annotated[
    str | None,
    Query(
        description="CRS of the geometries: CRS84 (default), EPSG:4326 or EPSG:4490 "
        "(latitude first), or EPSG:3857; as a URI (`http://www.opengis.net/def/crs/EPSG/0/4326`) "
        "or short (`EPSG:4326`).",
        examples=[CRS84],
    ),
]
Unmask = Annotated[
    bool,
    Query(
        description="`events` only: reporter and contact in clear (查看明文) instead of masked "
        "(张*, 138****1234). City admins and town/community coordinators with the unmask "
        "grant, own area only; one audit row per event; more than 100 events need `reason`. "
        "Other callers: 403. Never on tiles."
    ),
]
Reason = Annotated[
    str | None,
    Query(max_length=500, description="`events` only: why unmasking (审计事由), audited."),
]


def _unmask_first(caller: Principal, unmask: bool, reason: str | None) -> str | None:
    """Refuse ``unmask`` before reading anything when the caller's role or grant lacks it."""
    return disclosure.check_unmask(caller, reason=reason) if unmask else None


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _geojson(body: bytes, *, crs: str = CRS84, headers: dict[str, str] | None = None) -> Response:
    extra = {"Content-Crs": f"<{crs}>", **_NEGOTIATED, **(headers or {})}
    return Response(body, media_type=ogc.GEOJSON, headers=extra)


def _html(request: Request, f: str | None) -> bool:
    return ogc.wants_html(f, request.headers.get("accept"))


def _page(template: str, request: Request, json_href: str, **context: Any) -> HTMLResponse:
    """An HTML view; *json_href* is its JSON alternate."""
    html = ogc.html_page(template, base=_base(request), json_href=json_href, **context)
    return HTMLResponse(html, headers=dict(_NEGOTIATED))


def _json(doc: dict[str, Any]) -> JSONResponse:
    return JSONResponse(doc, headers=dict(_NEGOTIATED))


def _columns(ldef: LayerDef, role: str) -> list[tuple[str, str]]:
    """(name, bilingual label) of the properties *role* sees, for HTML tables."""
    return [(fd.name, fd.title()) for fd in ldef.fields_for(role)]


def _describe(store: StoreDep, name: str, role: str, base: str) -> dict[str, Any]:
    ldef = ogc.collection(name, role)
    bounds, times = collection_facts(store, layer_schema(name))
    return ogc.collection_document(ldef, base, bounds=bounds, times=times)


@router.get(
    "/",
    summary="Landing page",
    dependencies=_PLAIN,
    response_class=JSONResponse,
    responses=_DOC_RESPONSES,
)
def landing(request: Request, f: PageFormat = None) -> Response:
    """Links to the API definition, the conformance classes and the collections."""
    doc = ogc.landing_document(_base(request))
    if _html(request, f):
        return _page("landing.html", request, f"{_base(request)}/?f=json", doc=doc)
    return _json(doc)


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


@router.get(
    "/collections",
    summary="Feature collections",
    dependencies=_PLAIN,
    response_class=JSONResponse,
    responses=_DOC_RESPONSES,
)
def collections(request: Request, store: StoreDep, role: RoleDep, f: PageFormat = None) -> Response:
    """Every layer the caller may see, with its extent."""
    base = _base(request)
    described = [_describe(store, c.name, role, base) for c in ogc.collections(role)]
    doc = ogc.collections_document(base, described)
    if _html(request, f):
        return _page("collections.html", request, f"{base}/collections?f=json", doc=doc)
    return _json(doc)


@router.get(
    "/collections/{layer}",
    summary="One feature collection",
    dependencies=_PLAIN,
    response_class=JSONResponse,
    responses=_DOC_RESPONSES,
)
def collection(
    layer: LayerPath, request: Request, store: StoreDep, role: RoleDep, f: PageFormat = None
) -> Response:
    """Title, extent, CRS and links of one layer."""
    doc = _describe(store, layer, role, _base(request))
    if _html(request, f):
        url = f"{_base(request)}/collections/{doc['id']}"
        return _page(
            "collection.html", request, f"{url}?f=json", doc=doc, map_data=ogc.extent_feature(doc)
        )
    return _json(doc)


@router.get(
    "/collections/{layer}/queryables",
    summary="Queryable properties (JSON Schema)",
    dependencies=_PLAIN,
    response_class=JSONResponse,
)
def queryables(layer: LayerPath, request: Request, role: RoleDep, f: Format = None) -> JSONResponse:
    """The layer's queryable properties as a JSON Schema (2020-12)."""
    doc = ogc.queryables_document(ogc.collection(layer, role), _base(request), role)
    return JSONResponse(doc, media_type="application/schema+json")


@router.get(
    "/collections/{layer}/items",
    summary="Features (GeoJSON)",
    dependencies=_ITEMS,
    response_class=Response,
    responses={
        200: {
            "content": {
                ogc.GEOJSON: {},
                **{media: {} for media, _ in EXPORT_FORMATS.values()},
            },
            "description": "A GeoJSON FeatureCollection, or a file (`f=gpkg|fgb|parquet|csv`).",
        }
    },
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
            description="minx,miny,maxx,maxy in `bbox-crs` (default CRS84: WGS84 longitude "
            "and latitude in degrees); features intersecting it.",
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
        Query(
            alias="bbox-crs",
            description="CRS of `bbox`: CRS84 (default), EPSG:4326, EPSG:4490 or EPSG:3857.",
            examples=[CRS84],
        ),
    ] = None,
    filter: FilterText = None,
    filter_lang: FilterLang = None,
    filter_crs: FilterCrs = None,
    crs: Crs = None,
    f: ItemsFormat = None,
    unmask: Unmask = False,
    reason: Reason = None,
) -> Response:
    """A page of the layer's features, ordered by id, with ``next``/``prev`` links.

    Each queryable may also be given as a parameter of its own, ``name=value``
    (equality, all of them together, and with ``filter``: OGC API Features
    Part 3 "queryables as query parameters"), e.g. ``?use=apartments&floors=5``.

    Only features in the caller's area are served (and, on PostGIS, row-level
    security enforces it again). Events show reporter and contact masked
    (``unmask=true``: in clear, audited, to whom docs/roles.md allows).
    """
    ldef = ogc.collection(layer, role)
    why = _unmask_first(caller, unmask, reason)
    out_crs = parse_crs(crs, field="crs")
    box = parse_bbox_in(bbox, parse_crs(bbox_crs, field="bbox-crs"))
    by_params = queryables_filter(ldef, dict(request.query_params), role)
    cql = all_of(layer_filter(ldef, filter, filter_lang, filter_crs, role), by_params)
    html = _html(request, f)
    props = ogc.properties(ldef, role)
    schema = layer_schema(ldef.name)
    when = parse_datetime(datetime)
    size = clamp_limit(limit, default=settings.default_limit, maximum=settings.max_limit)
    where = area_where(ldef.name, caller)
    if f in EXPORT_FORMATS:
        frame = _export_frame(store, caller.areas, ldef, box, when, cql, where, limit, offset)
        frame = disclose_events(
            store,
            ldef.name,
            frame,
            caller,
            role=role,
            unmask=unmask,
            reason=why,
            surface=f"items.{f}",
        )
        return _export(frame, ldef, props, f)
    with store.scoped(caller.areas):
        # GeoJSON written by the store when it can (PostGIS), else a frame.
        page: Page | JsonPage | None = None
        wanted = PageQuery(box, when, size, offset, where=where, cql=cql)
        if not html and not unmask:
            page = read_json_page(store, schema, wanted, properties=props, crs=out_crs)
        if page is None:
            page = read_page(store, schema, wanted)
    if isinstance(page, Page):
        shown = disclose_events(
            store, ldef.name, page.frame, caller, role=role, unmask=unmask, reason=why
        )
        page = dataclasses.replace(page, frame=shown)
    collection_url = f"{_base(request)}/collections/{ldef.name}"
    members = page_members(page, request.url, collection_url, html=html)
    queryables_link = {
        "href": f"{collection_url}/queryables",
        "rel": ogc.QUERYABLES_REL,
        "type": "application/schema+json",
    }
    headers = {"Link": ogc.link_header([*members["links"], queryables_link])}
    if isinstance(page, JsonPage):
        body = feature_collection_text(page.features, members=members)
        return _geojson(body, crs=out_crs, headers=headers)
    if html:
        response = _items_page(request, ldef, role, page, members)
        response.headers.update(headers)
        return response
    frame = reproject_frame(page.frame, out_crs)
    body = feature_collection(frame, properties=props, members=members)
    return _geojson(body, crs=out_crs, headers=headers)


def _export_frame(
    store: Store,
    areas: Sequence[str],
    ldef: LayerDef,
    box: BBox | None,
    when: TimeRange | None,
    cql: CqlFilter | None,
    where: dict[str, Any] | None,
    limit: int | None,
    offset: int,
) -> pd.DataFrame:
    """Every matching feature (or the page asked for), for a file export."""
    if when is not None:
        cql = all_of(cql, time_filter(layer_schema(ldef.name), when))
    with store.scoped(areas):
        return store.read(ldef.name, bbox=box, where=where, cql=cql, limit=limit, offset=offset)


def _export(frame: pd.DataFrame, ldef: LayerDef, props: list[str], kind: str) -> StreamingResponse:
    """*frame* (already disclosed as the caller may see it) as a file (:mod:`api.exports`)."""
    keep = ["id", *(p for p in props if p != "id"), "geometry"]
    frame = frame[[c for c in keep if c in frame.columns]]
    body, media, headers = export_response(frame, ldef.name, kind)
    return StreamingResponse(body, media_type=media, headers=headers)


def _items_page(
    request: Request, ldef: LayerDef, role: str, page: Page, members: dict[str, Any]
) -> HTMLResponse:
    """The HTML view of a page of features: a map (CRS84), paging links and a table."""
    props = ogc.properties(ldef, role)
    doc = json.loads(feature_collection(page.frame, properties=props, members=members))
    rels = {link["rel"]: link["href"] for link in members["links"]}
    collection_url = rels["collection"]
    return _page(
        "items.html",
        request,
        rels["alternate"],
        json_type=ogc.GEOJSON,
        doc=doc,
        collection=ldef,
        collection_url=collection_url,
        items_url=f"{collection_url}/items",
        columns=_columns(ldef, role),
        offset=page.offset,
        next_href=rels.get("next"),
        prev_href=rels.get("prev"),
        map_data={"type": "FeatureCollection", "features": doc["features"]},
    )


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
    unmask: Unmask = False,
    reason: Reason = None,
) -> Response:
    """One feature by id, with links to itself and its collection (404 outside your area).

    Events show reporter and contact masked (``unmask=true``: in clear, audited).
    """
    ldef = ogc.collection(layer, role)
    why = _unmask_first(caller, unmask, reason)
    out_crs = parse_crs(crs, field="crs")
    fid = parse_item_id(item_id, layer=ldef.name)
    with store.scoped(caller.areas):
        frame = store.read(ldef.name, ids=[fid], where=area_where(ldef.name, caller))
    if frame.empty:
        raise NotFound(f"{ldef.name} {fid} not found")
    frame = disclose_events(store, ldef.name, frame, caller, role=role, unmask=unmask, reason=why)
    url = f"{_base(request)}/collections/{ldef.name}"
    self_url = f"{url}/items/{frame['id'].iloc[0]}"
    html = _html(request, f)
    own, other = (ogc.HTML, ogc.GEOJSON) if html else (ogc.GEOJSON, ogc.HTML)
    links = [
        {"href": f"{self_url}?f=html" if html else self_url, "rel": "self", "type": own},
        {"href": f"{self_url}?f={'json' if html else 'html'}", "rel": "alternate", "type": other},
        {"href": url, "rel": "collection", "type": ogc.JSON},
    ]
    props = ogc.properties(ldef, role)
    if html:
        doc = json.loads(feature_document(frame, properties=props, members={"links": links}))
        return _page(
            "item.html",
            request,
            links[1]["href"],
            json_type=ogc.GEOJSON,
            doc=doc,
            collection=ldef,
            collection_url=url,
            columns=_columns(ldef, role),
            map_data=doc,
        )
    body = feature_document(
        reproject_frame(frame, out_crs), properties=props, members={"links": links}
    )
    return _geojson(body, crs=out_crs, headers={"Link": ogc.link_header(links)})
