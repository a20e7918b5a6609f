"""Query and path parameters of the OGC API: strict parsing with clear errors.

Every function raises :class:`gridmap.common.errors.BadInput` (400) or
:class:`gridmap.common.errors.NotFound` (404) naming the parameter; none lets a
malformed value reach the store.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Annotated, Literal

from fastapi import Query, Request

from gridmap.common.errors import BadInput, NotFound
from gridmap.storage import BBox, check_bbox

__all__ = [
    "CRS84",
    "MAX_ID",
    "FilterCrs",
    "FilterLang",
    "FilterText",
    "check_crs",
    "clamp_limit",
    "parse_bbox",
    "parse_item_id",
    "query_guard",
]

#: The only CRS served: WGS84 longitude/latitude (OGC API Features Part 2 URI).
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
_CRS84_NAMES = frozenset({CRS84, "[OGC:CRS84]", "OGC:CRS84"})

#: Largest feature id (ids are signed 64-bit integers in both stores).
MAX_ID = 2**63 - 1

_ID = re.compile(r"[1-9][0-9]{0,18}")


def clip(text: str, size: int = 60) -> str:
    return text if len(text) <= size else text[:size] + "…"


def query_guard(allowed: Iterable[str]) -> Callable[[Request], None]:
    """A dependency refusing unknown and repeated query parameters.

    OGC API Features asks servers to reject parameters they do not know
    instead of silently ignoring them (a misspelt ``bbox`` would otherwise
    return everything).

    Examples
    --------
    >>> guard = query_guard(["limit", "f"])
    >>> callable(guard)
    True
    """
    known = frozenset(allowed)
    listing = ", ".join(sorted(known)) or "none"

    def guard(request: Request) -> None:
        seen: set[str] = set()
        for key, _ in request.query_params.multi_items():
            if key not in known:
                raise BadInput(
                    f"unknown query parameter {clip(key)!r}; this resource accepts: {listing}",
                    field=key,
                )
            if key in seen:
                raise BadInput(f"query parameter {key!r} is repeated; give it once", field=key)
            seen.add(key)

    return guard


def parse_bbox(text: str | None) -> BBox | None:
    """Parse ``minx,miny,maxx,maxy`` (WGS84 degrees); exactly four finite numbers.

    Examples
    --------
    >>> parse_bbox("24.9,60.1,25.0,60.2")
    (24.9, 60.1, 25.0, 60.2)
    """
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 4:
        raise BadInput(
            f"bbox needs 4 comma-separated numbers minx,miny,maxx,maxy; got {len(parts)} value(s)",
            field="bbox",
        )
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise BadInput(f"bbox values must be numbers, got {clip(text)!r}", field="bbox") from None
    return check_bbox(values)


def clamp_limit(limit: int | None, *, default: int, maximum: int) -> int:
    """The page size to use: *default* when absent, at most *maximum* (OGC allows clamping).

    Examples
    --------
    >>> clamp_limit(20000, default=100, maximum=10000)
    10000
    """
    if limit is None:
        return default
    if limit < 1:
        raise BadInput("limit must be a positive integer", field="limit")
    return min(limit, maximum)


def parse_item_id(text: str, *, layer: str) -> int:
    """A feature id: a positive integer below 2^63; anything else is not found.

    Examples
    --------
    >>> parse_item_id("42", layer="buildings")
    42
    """
    if not _ID.fullmatch(text) or int(text) > MAX_ID:
        raise NotFound(
            f"no feature {clip(text)!r} in {layer}: feature ids are positive integers below 2^63"
        )
    return int(text)


def check_crs(value: str | None, *, field: str) -> None:
    """Accept a ``crs``/``bbox-crs`` value only when it names CRS84 (the only CRS served).

    Examples
    --------
    >>> check_crs("http://www.opengis.net/def/crs/OGC/1.3/CRS84", field="crs")
    """
    if value is not None and value not in _CRS84_NAMES:
        raise BadInput(
            f"{field} {clip(value)!r} is not supported; the only CRS is {CRS84}", field=field
        )


#: ``filter`` of OGC API Features Part 3 (items and tiles): CQL2 over the queryables.
FilterText = Annotated[
    str | None,
    Query(
        description="CQL2 filter (OGC API Features Part 3) over the queryables, e.g. "
        "`floors > 3 AND S_INTERSECTS(geometry, BBOX(24.93,60.16,24.96,60.18))`; "
        "only matching features are answered.",
        max_length=50_000,
    ),
]
#: ``filter-lang``: the language of ``filter``.
FilterLang = Annotated[
    Literal["cql2-text", "cql2-json"] | None,
    Query(alias="filter-lang", description="Language of `filter` (default cql2-text)."),
]
#: ``filter-crs``: CRS of geometry literals in ``filter``.
FilterCrs = Annotated[
    str | None,
    Query(alias="filter-crs", description="CRS of geometry literals; only CRS84."),
]
