"""Feature pages: what ``/collections/{layer}/items`` reads and the links around it.

The store filters by bbox, CQL2 and time and pages by ``id``. ``datetime`` is
turned into a CQL2 filter on the layer's time (:func:`time_filter`): one
timestamp (events), dates (patrol routes: a date covers its whole UTC day) or
validity periods (grids: ``valid_from``/``valid_to``, open-ended), all in SQL,
so ``numberMatched`` and paging stay exact. The same filters select tiles.

A GeoJSON page comes from one of two paths with the same output: a store that
writes features itself (PostGIS, :class:`~gridmap.storage.featurejson.FeaturePages`)
answers :func:`read_json_page` with finished JSON, in CRS84 or with the axes
swapped (EPSG:4326/4490); every other case reads a frame (:func:`read_page`)
that :mod:`api.geojson` writes (DuckDB, EPSG:3857, the HTML page).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from starlette.datastructures import URL

from api.crs import SUPPORTED_CRS
from api.ogc import GEOJSON, HTML, JSON, time_extent
from api.params import check_crs
from api.temporal import TimeRange, time_columns
from gridmap.common.errors import BadInput
from gridmap.common.model import LayerSchema, layer_schema
from gridmap.common.timeparse import parse_day, parse_instant
from gridmap.security import disclosure as disclosure
from gridmap.security.access import Principal
from gridmap.storage import BBox, Prefix, Store
from gridmap.storage.cql import CqlFilter, parse_filter
from gridmap.storage.featurejson import FeaturePages
from layers.catalog import LayerDef

__all__ = [
    "AREA_COLUMN",
    "JsonPage",
    "Page",
    "PageQuery",
    "all_of",
    "area_where",
    "collection_facts",
    "disclose_events",
    "layer_filter",
    "page_members",
    "queryable_params",
    "queryables_filter",
    "read_json_page",
    "read_page",
    "time_filter",
]


@dataclass(frozen=True)
class PageQuery:
    """Which features a page holds: the filters and the window, by ``id``.

    *where* narrows the rows further (the caller's area); the time range
    *when* becomes part of the SQL filter (:func:`time_filter`).
    """

    bbox: BBox | None
    when: TimeRange | None
    limit: int
    offset: int
    where: dict[str, Any] | None = None
    cql: CqlFilter | None = None

    def filter(self, schema: LayerSchema) -> CqlFilter | None:
        """The CQL2 filter with the time range folded in (``BadInput`` if *schema* has no time)."""
        return self.cql if self.when is None else all_of(self.cql, time_filter(schema, self.when))


@dataclass(frozen=True)
class Page:
    """One page of features and the paging facts about it."""

    frame: pd.DataFrame
    matched: int
    offset: int
    limit: int

    @property
    def returned(self) -> int:
        """Number of features on the page."""
        return len(self.frame)


def read_page(store: Store, schema: LayerSchema, query: PageQuery) -> Page:
    """Read one page of *schema*'s features, ordered by id.

    Counting and paging happen in the store for every kind of layer time.

    Raises
    ------
    gridmap.common.errors.BadInput
        If the query has a time range for a layer without time.
    """
    cql, bbox, where = query.filter(schema), query.bbox, query.where
    limit, offset = query.limit, query.offset
    matched = store.count(schema.name, bbox=bbox, where=where, cql=cql)
    if offset >= matched:
        return Page(store.read(schema.name, limit=0), matched, offset, limit)
    frame = store.read(schema.name, bbox=bbox, where=where, limit=limit, offset=offset, cql=cql)
    return Page(frame, matched, offset, limit)


@dataclass(frozen=True)
class JsonPage:
    """One page of features as GeoJSON text (written by the store) and its paging facts."""

    features: str
    returned: int
    matched: int
    offset: int
    limit: int


def read_json_page(
    store: Store, schema: LayerSchema, query: PageQuery, *, properties: list[str], crs: str
) -> JsonPage | None:
    """The page :func:`read_page` would read, as GeoJSON features written by the store.

    ``features`` holds the Feature objects (comma-separated) with only
    *properties*, geometries in *crs*. ``None`` when the store cannot write
    them (DuckDB), *crs* needs more than swapping axes (EPSG:3857, whose
    numbers come from pyproj on the frame path) or a property is encrypted at
    rest (which SQL cannot decrypt): use :func:`read_page` then.

    Raises
    ------
    gridmap.common.errors.BadInput
        If the query has a time range for a layer without time.
    """
    epsg, lat_first = SUPPORTED_CRS[crs]
    if not isinstance(store, FeaturePages) or epsg not in (None, 4326, 4490):
        return None
    if any(c.encrypted and c.name in properties for c in schema.columns):
        return None  # encrypted at rest (events.reporter): decrypted on the frame path
    page = store.feature_page(
        schema.name,
        properties=properties,
        limit=query.limit,
        offset=query.offset,
        bbox=query.bbox,
        where=query.where,
        cql=query.filter(schema),
        lat_first=lat_first,
    )
    return JsonPage(page.features, page.returned, page.matched, query.offset, query.limit)


def _filter_types(ldef: LayerDef, role: str | None = None) -> dict[str, str]:
    """Property → column type of what *role*'s filters may use: queryables, ``id``, ``geometry``."""
    schema = layer_schema(ldef.name)
    allowed = ldef.queryables_for(role)
    types: dict[str, str] = {c.name: c.type for c in schema.columns if c.name in allowed}
    types["id"] = "int"
    if schema.geometry_type:
        types["geometry"] = "geometry"
    return types


def layer_filter(
    ldef: LayerDef, text: str | None, lang: str | None, crs: str | None, role: str | None = None
) -> CqlFilter | None:
    """The checked CQL2 filter of a request (``None`` without ``filter``).

    Only the layer's queryables (never personal fields), ``id`` and
    ``geometry`` may be used; geometry literals are CRS84.

    Examples
    --------
    >>> from layers.catalog import CATALOG
    >>> layer_filter(CATALOG["buildings"], "floors > 3", None, None).properties
    frozenset({'floors'})
    """
    if text is None:
        if lang is not None or crs is not None:
            raise BadInput("filter-lang and filter-crs need a filter", field="filter")
        return None
    check_crs(crs, field="filter-crs")
    return _without_nul(parse_filter(text, lang, properties=_filter_types(ldef, role)))


def _without_nul(flt: CqlFilter) -> CqlFilter:
    """*flt*, refused if a text in it holds NUL (PostgreSQL text cannot; it would fail, not miss).

    Examples
    --------
    >>> _without_nul(parse_filter("n = 'a" + chr(0) + "'", properties={"n": "text"}))
    Traceback (most recent call last):
    ...
    gridmap.common.errors.BadInput: filter: text must not contain NUL characters
    """
    stack: list[Any] = [flt.tree]
    while stack:  # iterative: trees may be deep
        node = stack.pop()
        if isinstance(node, str) and "\x00" in node:
            raise BadInput("filter: text must not contain NUL characters", field="filter")
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return flt


def queryable_params(ldef: LayerDef) -> list[str]:
    """Names of the query parameters that filter by a queryable (OGC API Features Part 3).

    Examples
    --------
    >>> from layers.catalog import CATALOG
    >>> "floors" in queryable_params(CATALOG["buildings"])
    True
    """
    return [n for n, t in _filter_types(ldef).items() if t in _PARAM_TYPES]


_PARAM_TYPES = frozenset({"text", "int", "float", "bool", "timestamp", "date"})


def _param_value(name: str, ctype: str, text: str) -> Any:
    try:
        if ctype == "int":
            return int(text)
        if ctype == "float":
            value = float(text)
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError(text)
            return value
    except ValueError:
        raise BadInput(f"{name} must be a number, got {text[:40]!r}", field=name) from None
    if ctype == "bool":
        if text not in ("true", "false"):
            raise BadInput(f"{name} must be true or false, got {text[:40]!r}", field=name)
        return text == "true"
    if ctype in ("timestamp", "date"):
        # The one time parser: a date-time with a zone or a YYYY-MM-DD date, years 1–9999,
        # refused in its words with the parameter named; the filter keeps the text.
        if ctype == "timestamp":
            parse_instant(text, field=name, dates=False)
        else:
            parse_day(text, field=name)
        return {ctype: text}
    if "\x00" in text:  # PostgreSQL text cannot hold NUL: the query would fail, not miss
        raise BadInput(f"{name} must not contain NUL characters", field=name)
    return text


def queryables_filter(
    ldef: LayerDef, params: Mapping[str, str], role: str | None = None
) -> CqlFilter | None:
    """``name=value`` query parameters of queryables as one CQL2 filter (equality, AND).

    Parameters that are not queryables of scalar type are left out (the
    caller refuses unknown ones). ``None`` when there is none.

    Raises
    ------
    gridmap.common.errors.BadInput
        If a value does not fit its property's type, or names a property
        *role* may not see.

    Examples
    --------
    >>> from layers.catalog import CATALOG
    >>> queryables_filter(CATALOG["buildings"], {"floors": "3", "limit": "5"}).tree
    {'op': '=', 'args': [{'property': 'floors'}, 3.0]}
    """
    types = _filter_types(ldef, role)
    hidden = {f.name for f in ldef.fields if f.roles is not None and role not in f.roles}
    for name in params:
        if name in hidden:
            raise BadInput(f"{name!r} is not a queryable for this role", field=name)
    args = [
        {"op": "=", "args": [{"property": name}, _param_value(name, types[name], text)]}
        for name, text in params.items()
        if types.get(name) in _PARAM_TYPES
    ]
    if not args:
        return None
    tree = args[0] if len(args) == 1 else {"op": "and", "args": args}
    try:
        return parse_filter(json.dumps(tree), "cql2-json", properties=types)
    except BadInput as exc:
        names = ", ".join(a["args"][0]["property"] for a in args)
        raise BadInput(f"{names}: {exc}", field=str(args[0]["args"][0]["property"])) from None


def _prop(name: str) -> dict[str, str]:
    return {"property": name}


def _literal(ctype: str, value: pd.Timestamp) -> dict[str, str]:
    utc = value.tz_convert("UTC")
    if ctype == "date":
        return {"date": utc.date().isoformat()}
    return {"timestamp": utc.isoformat().replace("+00:00", "Z")}


def time_filter(schema: LayerSchema, when: TimeRange) -> CqlFilter:
    """The ``datetime`` range *when* on *schema*'s time as a CQL2 filter (evaluated in SQL).

    Same meaning as :func:`api.temporal.time_mask`: a timestamp lies in the
    range; a date's whole (UTC) day meets it; a validity period
    (``valid_from``/``valid_to``, open-ended when ``valid_to`` is null) meets
    it; features without a time never match.

    Raises
    ------
    gridmap.common.errors.BadInput
        If the layer has no time column.

    Examples
    --------
    >>> from gridmap.common.model import layer_schema
    >>> from api.temporal import parse_datetime
    >>> f = time_filter(layer_schema("grids"), parse_datetime("2026-01-01T00:00:00Z/.."))
    >>> sorted(f.properties)
    ['valid_from', 'valid_to']
    """
    cols = time_columns(schema)
    if cols is None:
        raise BadInput(
            f"layer {schema.name!r} has no time column; the datetime parameter is not "
            "supported for it",
            field="datetime",
        )
    start_col, end_col = cols
    ctype = schema.column(start_col).type
    args: list[dict[str, Any]] = [
        {"op": "not", "args": [{"op": "isNull", "args": [_prop(start_col)]}]}
    ]
    if when.end is not None:
        args.append({"op": "<=", "args": [_prop(start_col), _literal(ctype, when.end)]})
    if when.start is not None:
        if end_col is None:
            args.append({"op": ">=", "args": [_prop(start_col), _literal(ctype, when.start)]})
        else:
            end_type = schema.column(end_col).type
            still = {"op": "isNull", "args": [_prop(end_col)]}
            after = {"op": ">=", "args": [_prop(end_col), _literal(end_type, when.start)]}
            args.append({"op": "or", "args": [after, still]})
    types = {c: schema.column(c).type for c in cols if c is not None}
    return parse_filter(json.dumps({"op": "and", "args": args}), "cql2-json", properties=types)


def all_of(*filters: CqlFilter | None) -> CqlFilter | None:
    """The conjunction of the given filters (``None`` ones left out; ``None`` if none is left).

    Examples
    --------
    >>> a = parse_filter("floors > 3", properties={"floors": "int"})
    >>> all_of(None, a) is a, all_of(None, None)
    (True, None)
    >>> all_of(a, a).tree["op"]
    'and'
    """
    given = [f for f in filters if f is not None]
    if len(given) <= 1:
        return given[0] if given else None
    used = frozenset().union(*(f.properties for f in given))
    return CqlFilter({"op": "and", "args": [f.tree for f in given]}, used)


#: The column holding a row's grid-level code, for area scoping.
AREA_COLUMN = {
    "grids": "code",
    "buildings": "grid_code",
    "events": "grid_code",
    "patrol_routes": "grid_code",
    "patrol_tracks": "grid_code",
    "doorknock_visits": "grid_code",
}


def area_where(layer: str, principal: Principal) -> dict[str, Any] | None:
    """Filter limiting *layer* to the principal's areas (``None``: nothing to limit).

    Examples
    --------
    >>> from gridmap.security.access import Principal
    >>> area_where("events", Principal("w", "grid_worker", ("990100001001003",)))
    {'grid_code': Prefix(prefixes=('990100001001003',))}
    """
    column = AREA_COLUMN.get(layer)
    if column is None or principal.sees_everything:
        return None
    return {column: Prefix(tuple(principal.areas))}


def disclose_events(
    store: Store,
    layer: str,
    frame: pd.DataFrame,
    caller: Principal,
    *,
    role: str | None = None,
    unmask: bool = False,
    reason: str | None = None,
    surface: str = "items",
) -> pd.DataFrame:
    """*frame* with the events' reporter and contact as the disclosure policy says.

    Rows of layers other than ``events`` pass unchanged. For ``events``:
    masked (张*, 138****1234) for roles whose ``items`` rule is ``full``,
    dropped for the others (:func:`gridmap.security.disclosure.contact_frame`).
    With *unmask* the caller's right is checked for every row (role, grant,
    area; more than :data:`~gridmap.security.disclosure.UNMASK_MAX_WITHOUT_REASON`
    rows need a *reason*) and one audit row per event is written before the
    clear values are handed back. *role* is the role the layer's fields were
    chosen for (``RoleDep``; default: the caller's), the caller the one
    whose permission, grant and area an unmask needs.

    Raises
    ------
    gridmap.security.disclosure.DisclosureDenied
        The caller may not unmask (403).
    gridmap.common.errors.BadInput
        Too many rows without a reason (400).
    """
    if layer != "events":
        return frame
    found = disclosure.rule_for(caller, "items") if role is None else disclosure.rule(role, "items")
    if unmask and not frame.empty:
        areas = [None if pd.isna(c) else str(c) for c in frame["grid_code"]]
        why = disclosure.check_unmask(caller, areas=areas, reason=reason)
        ids = [int(i) for i in frame["id"]]
        disclosure.audit_unmask(
            store, caller, zip(ids, areas, strict=True), surface=surface, reason=why
        )
    return disclosure.contact_frame(frame, found, unmask=unmask)


def page_members(
    page: Page | JsonPage, url: URL, collection_url: str, *, html: bool = False
) -> dict[str, Any]:
    """``links``, counts and ``timeStamp`` of a FeatureCollection page.

    ``next`` and ``prev`` repeat the request's query with another ``offset``
    (and the effective ``limit``). ``alternate`` is the same page in the other
    format (HTML for a GeoJSON page, GeoJSON for an HTML one).
    """
    own, other = (HTML, GEOJSON) if html else (GEOJSON, HTML)
    alternate = url.include_query_params(f="json" if html else "html")
    links: list[dict[str, str]] = [
        {"href": str(url), "rel": "self", "type": own, "title": "This page"},
        {"href": str(alternate), "rel": "alternate", "type": other, "title": "This page"},
        {"href": collection_url, "rel": "collection", "type": JSON, "title": "The collection"},
    ]
    if page.offset + page.returned < page.matched:
        nxt = url.include_query_params(offset=page.offset + page.limit, limit=page.limit)
        links.append({"href": str(nxt), "rel": "next", "type": own, "title": "Next page"})
    if page.offset > 0:
        prev = url.include_query_params(offset=max(0, page.offset - page.limit), limit=page.limit)
        links.append({"href": str(prev), "rel": "prev", "type": own, "title": "Previous page"})
    stamp = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return {
        "timeStamp": stamp,
        "numberMatched": page.matched,
        "numberReturned": page.returned,
        "links": links,
    }


def collection_facts(
    store: Store, schema: LayerSchema
) -> tuple[BBox | None, tuple[Any, Any] | None]:
    """Spatial extent and first/last time of a layer (times ``None`` without a time column).

    Both come from the store's min/max (no layer scan in Python).
    """
    bounds = store.bounds(schema.name)
    cols = time_columns(schema)
    if cols is None or bounds is None:
        return bounds, None
    lo, hi = store.column_range(schema.name, cols[0])
    if lo is None:
        return bounds, None
    first = time_extent(pd.Series([lo, hi]))
    if first is None:
        return bounds, None
    last = first[1]
    if cols[1] is not None:
        still_valid = store.count(schema.name, where={cols[1]: None}) > 0
        end_hi = store.column_range(schema.name, cols[1])[1]
        last = None if still_valid else max(end_hi, last) if end_hi is not None else last
    return bounds, (first[0], last)
