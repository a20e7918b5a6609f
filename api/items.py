"""Feature pages: what ``/collections/{layer}/items`` reads and the links around it.

The store filters by bbox and pages by ``id``. The ``datetime`` filter is not
a store feature yet: a request with ``datetime`` reads the bbox-filtered rows
and filters them here, so ``numberMatched`` and paging stay exact.
TODO: push ``datetime`` down to SQL once ``Store.read``/``count`` take a time range.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from starlette.datastructures import URL

from api.ogc import GEOJSON, JSON, time_extent
from api.temporal import TimeRange, time_columns, time_mask
from gridmap.errors import BadInput
from gridmap.model import LayerSchema
from gridmap.storage import BBox, Store

__all__ = ["Page", "collection_facts", "page_members", "read_page"]


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
) -> Page:
    """Read one page of *schema*'s features, ordered by id.

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
        rows = store.read(schema.name, bbox=bbox)
        rows = rows.loc[time_mask(rows, schema, when)]
        return Page(rows.iloc[offset : offset + limit], len(rows), offset, limit)
    matched = store.count(schema.name, bbox=bbox)
    if offset >= matched:
        return Page(store.read(schema.name, limit=0), matched, offset, limit)
    frame = store.read(schema.name, bbox=bbox, limit=limit, offset=offset)
    return Page(frame, matched, offset, limit)


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

    TODO: ask the store for min/max of the time column instead of reading the layer.
    """
    bounds = store.bounds(schema.name)
    cols = time_columns(schema)
    if cols is None or bounds is None:
        return bounds, None
    frame = store.read(schema.name)
    first = time_extent(frame[cols[0]])
    if first is None:
        return bounds, None
    last = first[1]
    if cols[1] is not None:
        ends = frame[cols[1]]
        last = None if ends.isna().any() else max(ends.max(), last)
    return bounds, (first[0], last)
