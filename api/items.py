"""Feature pages: what ``/collections/{layer}/items`` reads and the links around it.

The store filters by bbox and time and pages by ``id``. A layer with one
timestamp column (events) filters ``datetime`` in SQL; a layer of validity
periods (grids: ``valid_from``/``valid_to``, open-ended) or of dates is
filtered here after the bbox, keeping ``numberMatched`` and paging exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from starlette.datastructures import URL

from api.ogc import GEOJSON, JSON, time_extent
from api.params import check_crs
from api.temporal import TimeRange, time_columns, time_mask
from gridmap.access import Principal
from gridmap.errors import BadInput
from gridmap.model import LayerSchema, layer_schema
from gridmap.storage import AllOf, BBox, Cmp, Prefix, Store
from gridmap.storage.cql import CqlFilter, parse_filter
from layers.catalog import LayerDef

__all__ = [
    "AREA_COLUMN",
    "Page",
    "area_where",
    "collection_facts",
    "layer_filter",
    "page_members",
    "read_page",
]


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


def read_page(
    store: Store,
    schema: LayerSchema,
    *,
    bbox: BBox | None,
    when: TimeRange | None,
    limit: int,
    offset: int,
    where: dict[str, Any] | None = None,
    cql: CqlFilter | None = None,
) -> Page:
    """Read one page of *schema*'s features, ordered by id.

    *where* narrows the rows further (the caller's area).

    Raises
    ------
    gridmap.errors.BadInput
        If *when* is given for a layer without time.
    """
    if when is not None:
        if time_columns(schema) is None:
            raise BadInput(
                f"layer {schema.name!r} has no time column; the datetime parameter is not "
                "supported for it",
                field="datetime",
            )
        timed = _time_where(schema, when)
        if timed is not None:
            both = {**(where or {}), **timed}
            matched = store.count(schema.name, bbox=bbox, where=both, cql=cql)
            if offset >= matched:
                return Page(store.read(schema.name, limit=0), matched, offset, limit)
            frame = store.read(
                schema.name, bbox=bbox, where=both, limit=limit, offset=offset, cql=cql
            )
            return Page(frame, matched, offset, limit)
        rows = store.read(schema.name, bbox=bbox, where=where, cql=cql)
        rows = rows.loc[time_mask(rows, schema, when)]
        return Page(rows.iloc[offset : offset + limit], len(rows), offset, limit)
    matched = store.count(schema.name, bbox=bbox, where=where, cql=cql)
    if offset >= matched:
        return Page(store.read(schema.name, limit=0), matched, offset, limit)
    frame = store.read(schema.name, bbox=bbox, where=where, limit=limit, offset=offset, cql=cql)
    return Page(frame, matched, offset, limit)


def layer_filter(
    ldef: LayerDef, text: str | None, lang: str | None, crs: str | None
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
    schema = layer_schema(ldef.name)
    types: dict[str, str] = {c.name: c.type for c in schema.columns if c.name in ldef.queryables}
    types["id"] = "int"
    if schema.geometry_type:
        types["geometry"] = "geometry"
    return parse_filter(text, lang, properties=types)


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
    >>> from gridmap.access import Principal
    >>> area_where("events", Principal("w", "grid_worker", ("990100001001003",)))
    {'grid_code': Prefix(prefixes=('990100001001003',))}
    """
    column = AREA_COLUMN.get(layer)
    if column is None or principal.sees_everything:
        return None
    return {column: Prefix(tuple(principal.areas))}


def _time_where(schema: LayerSchema, when: TimeRange) -> dict[str, AllOf] | None:
    """SQL filter for a single timestamp column; None when it must be filtered in pandas."""
    cols = time_columns(schema)
    if cols is None or cols[1] is not None or schema.column(cols[0]).type != "timestamp":
        return None
    cmps = []
    if when.start is not None:
        cmps.append(Cmp(">=", when.start.to_pydatetime()))
    if when.end is not None:
        cmps.append(Cmp("<=", when.end.to_pydatetime()))
    return {cols[0]: AllOf(tuple(cmps))}


def page_members(page: Page, url: URL, collection_url: str) -> dict[str, Any]:
    """``links``, counts and ``timeStamp`` of a FeatureCollection page.

    ``next`` and ``prev`` repeat the request's query with another ``offset``
    (and the effective ``limit``).
    """
    links: list[dict[str, str]] = [
        {"href": str(url), "rel": "self", "type": GEOJSON, "title": "This page"},
        {"href": collection_url, "rel": "collection", "type": JSON, "title": "The collection"},
    ]
    if page.offset + page.returned < page.matched:
        nxt = url.include_query_params(offset=page.offset + page.limit, limit=page.limit)
        links.append({"href": str(nxt), "rel": "next", "type": GEOJSON, "title": "Next page"})
    if page.offset > 0:
        prev = url.include_query_params(offset=max(0, page.offset - page.limit), limit=page.limit)
        links.append({"href": str(prev), "rel": "prev", "type": GEOJSON, "title": "Previous page"})
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
