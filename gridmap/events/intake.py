"""Report intake: validate, locate, route, detect duplicates, store exactly once.

A report (from the grid workers' phone app, a patrol, the 12345 hotline or
the public) names its coordinate system explicitly; it is converted to WGS84
at the edge, located by point-in-polygon to its grid, community and town,
assigned to the grid's workers and to the party responsible for its
category, checked against open events of the same category nearby (a
duplicate is linked through ``duplicate_of``, never deleted), and stored.

The phone app may add ``observed_at`` (when the worker saw the problem: an
ISO 8601 instant with a zone, at most :data:`OBSERVED_SKEW` ahead of the
server's clock and at most a configurable window old) and ``accuracy_m`` (the
GPS accuracy of the point in metres, ``0 < accuracy_m <= 10000``).

Grid edges: grids are drawn along streets, so a worker standing on the
boundary street may be placed a few metres inside the neighbouring grid. A
principal who does not cover the point's grid is still accepted when the
point lies within ``min(accuracy_m, edge_tolerance_m)`` metres of one of
their own grids, measured in metres in the local UTM zone
(:mod:`gridmap.geo.projection`). The event is stored at the reported point and
routed to the grid that contains it (its grid, community, town and workers);
the reporter's own grid is kept in ``reporter_grid_code``. Without
``accuracy_m`` there is no tolerance.

With an ``Idempotency-Key`` the whole intake runs in one transaction that
first claims the key: a retried request gets the stored response, a request
reusing the key with another body gets :class:`IdempotencyKeyReused`, and a
report is stored exactly once even when the client retries after a timeout.

Placement can come from the in-memory ``/locate`` index
(:class:`gridmap.geo.locate.Locator`, refreshed by its cache's freshness rule)
instead of reading grids and admin units per report; whatever it cannot
answer exactly as the store would (a report not made now, a point in no
current grid) goes to the store. :func:`report_batch` stores many reports,
each once per key, with one duplicate query and bulk writes for the whole batch.

:func:`report_once` is the intake of ``POST /events`` and Open311 create: on
PostGIS it sends one read (next id, nearby open events) and one write (key
claim with its stored answer, event, ``report`` transition, webhook outbox
rows only when a subscription wants them) and commits
(:mod:`gridmap.storage.intake_sql`); other stores take :func:`idempotent`
around :func:`report_event`, with the same outcome.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import geopandas as gpd
import numpy as np
import orjson
import pandas as pd
import shapely

from gridmap.common.errors import BadInput, GridmapError, OutsideJurisdiction
from gridmap.common.timeparse import iso_utc, parse_instant
from gridmap.events import webhooks
from gridmap.events.errors import ConcurrentUpdate, IdempotencyKeyReused, NotPermitted
from gridmap.events.media import MEDIA_NAME
from gridmap.events.states import OPEN_STATES, STATES
from gridmap.events.taxonomy import EVENT_KINDS, URGENCIES, Taxonomy, default_taxonomy
from gridmap.geo.chinacrs import is_chinese_crs, to_wgs84
from gridmap.geo.h3cells import one_point_cells
from gridmap.geo.locate import Locator
from gridmap.geo.projection import local_crs, position_crs, positions_to_wgs84, to_local
from gridmap.security.access import Principal
from gridmap.security.privacy import mask_name, mask_phone
from gridmap.storage import AllOf, Cmp, Prefix, Store, intake_sql
from gridmap.storage.base import StoreUnavailable
from gridmap.storage.limits import StatementTimeout

__all__ = [
    "CHANNELS",
    "DEFAULT_EDGE_TOLERANCE_M",
    "DEFAULT_OBSERVED_MAX_AGE_HOURS",
    "MAX_ACCURACY_M",
    "OBSERVED_SKEW",
    "Location",
    "Placement",
    "Report",
    "check_observed_at",
    "event_document",
    "find_duplicate",
    "hide_foreign_duplicates",
    "idempotent",
    "list_events",
    "locate_point",
    "nearest_own_grid",
    "parse_location",
    "parse_report",
    "report_batch",
    "report_event",
    "report_once",
    "request_hash",
]

#: Where reports come from.
CHANNELS: dict[str, tuple[str, str]] = {
    "patrol": ("网格员巡查", "Grid worker patrol"),
    "app": ("网格通", "Grid app"),
    "hotline_12345": ("12345热线", "12345 hotline"),
    "public": ("群众上报", "Public report"),
    "open311": ("Open311", "Open311"),
}
_REPORTERS = frozenset({"city_admin", "town_coordinator", "community_staff", "grid_worker"})
_REPORT_FIELDS = frozenset(
    {
        "category",
        "subcategory",
        "description",
        "urgency",
        "location",
        "kind",
        "channel",
        "reporter",
        "contact",
        "photos",
        "observed_at",
        "accuracy_m",
    }
)
#: How far ``observed_at`` may lie ahead of the server's clock (a phone clock running fast).
OBSERVED_SKEW = pd.Timedelta(minutes=5)
#: How old ``observed_at`` may be, in hours, unless the caller says otherwise.
DEFAULT_OBSERVED_MAX_AGE_HOURS = 72.0
#: The largest tolerance, in metres, a point outside the reporter's grids gets.
DEFAULT_EDGE_TOLERANCE_M = 50.0
#: The largest ``accuracy_m`` accepted (a worse fix says nothing about the place).
MAX_ACCURACY_M = 10_000.0
_INSTANT = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}(:?\d{2})?)"
)
KEY = re.compile(r"[\x21-\x7e]{1,200}")
#: Columns locating an event in the area hierarchy, most precise first.
_AREA_COLUMNS = ("grid_code", "community_code", "town_code")
_EARTH_M = 6_371_008.8


@dataclass(frozen=True)
class Location:
    """A WGS84 point and the system it was sent in."""

    lon: float
    lat: float
    crs: str


@dataclass(frozen=True)
class Report:
    """A validated report, WGS84 location included."""

    category: str
    description: str
    location: Location
    urgency: str = "normal"
    kind: str = "event"
    subcategory: str | None = None
    channel: str = "patrol"
    reporter: str | None = None
    contact: str | None = None
    photos: tuple[str, ...] = ()
    observed_at: pd.Timestamp | None = None
    accuracy_m: float | None = None
    media_url: str | None = None


@dataclass(frozen=True)
class Placement:
    """Where a point falls: grid, community, town and the grid's workers."""

    grid_code: str | None
    community_code: str | None
    town_code: str | None
    workers: tuple[str, ...] = field(default_factory=tuple)


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        kind = "null" if value is None else type(value).__name__
        raise BadInput(f"location.{name} must be a number, got {kind}", field=f"location.{name}")
    try:
        out = float(value)
    except OverflowError:
        raise BadInput(
            f"location.{name} is not a finite number", field=f"location.{name}"
        ) from None
    if not math.isfinite(out):
        raise BadInput(f"location.{name} is not a finite number", field=f"location.{name}")
    return out


def parse_location(value: Any) -> Location:
    """Validate a ``{"lon", "lat", "crs"}`` object and convert it to WGS84.

    ``crs`` is required: ``wgs84``, ``gcj02``, ``bd09``, ``cgcs2000`` or
    ``EPSG:n`` (any geographic or projected system pyproj knows; for a
    projected one ``lon``/``lat`` are its x/y).

    Examples
    --------
    >>> parse_location({"lon": 24.94, "lat": 60.17, "crs": "wgs84"})
    Location(lon=24.94, lat=60.17, crs='wgs84')
    """
    if not isinstance(value, Mapping):
        raise BadInput(
            'location must be an object {"lon": X, "lat": Y, "crs": "wgs84"}', field="location"
        )
    extra = sorted(set(value) - {"lon", "lat", "crs"})
    if extra:
        raise BadInput(
            f"unknown location member {extra[0][:40]!r}; give lon, lat and crs",
            field="location",
        )
    if "lon" not in value or "lat" not in value:
        raise BadInput("location needs both lon and lat", field="location")
    x, y = _number(value["lon"], "lon"), _number(value["lat"], "lat")
    crs = value.get("crs")
    if crs is None:
        raise BadInput(
            "location.crs is missing: state the coordinate system "
            "(wgs84, gcj02, bd09, cgcs2000 or EPSG:n)",
            field="location.crs",
        )
    if not isinstance(crs, str) or len(crs) > 40:
        raise BadInput("location.crs must be a short string such as 'wgs84'", field="location.crs")
    if is_chinese_crs(crs):
        if not (-180.0 <= x <= 180.0):
            raise BadInput(f"longitude {x} outside [-180, 180]", field="location.lon")
        if not (-90.0 <= y <= 90.0):
            raise BadInput(f"latitude {y} outside [-90, 90]", field="location.lat")
        lon, lat = to_wgs84(x, y, crs)
        return Location(float(lon), float(lat), crs.lower())
    m = re.fullmatch(r"(?i)epsg:(\d{1,6})", crs.strip())
    if not m:
        raise BadInput(
            f"unknown crs {crs!r}; use wgs84, gcj02, bd09, cgcs2000 or EPSG:n",
            field="location.crs",
        )
    name = f"EPSG:{int(m.group(1))}"
    try:
        source = position_crs(name)  # geographic or projected; geocentric and others refused
    except BadInput as exc:
        if exc.message.startswith("unknown crs"):
            exc = BadInput(f"unknown crs {crs!r}: no such EPSG code")
        raise BadInput(f"location.{exc.message}", field="location.crs") from None
    outside = BadInput(
        f"location: coordinates ({x}, {y}) are outside the area of {crs}", field="location"
    )
    if source.is_geographic and not (abs(x) <= 180 and abs(y) <= 90):
        raise outside
    lons, lats = positions_to_wgs84([x], [y], name)  # NaN where the crs does not reach
    east, north = float(lons[0]), float(lats[0])
    if not (math.isfinite(east) and math.isfinite(north)) or abs(north) > 90 or abs(east) > 180:
        raise outside
    return Location(east, north, name)


def _text(body: Mapping[str, Any], name: str, *, size: int, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise BadInput(f"{name} is required", field=name)
        return None
    if not isinstance(value, str):
        raise BadInput(f"{name} must be a string", field=name)
    if required and not value.strip():
        raise BadInput(f"{name} must not be empty", field=name)
    if len(value) > size:
        raise BadInput(f"{name} is longer than {size} characters", field=name)
    return value


def _instant(body: Mapping[str, Any], name: str) -> pd.Timestamp | None:
    """An ISO 8601 instant with a zone, in UTC (``None`` when absent)."""
    value = body.get(name)
    if value is None:
        return None
    example = "e.g. 2026-11-01T08:30:00+08:00 or 2026-11-01T00:30:00Z"
    if not isinstance(value, str) or len(value) > 40:
        raise BadInput(f"{name} must be an ISO 8601 time with a zone ({example})", field=name)
    if not _INSTANT.fullmatch(value.strip()):
        raise BadInput(
            f"{name} needs a date, a time and a time zone ({example}), got {value[:40]!r}",
            field=name,
        )
    return parse_instant(value, field=name, dates=False)


def _accuracy(body: Mapping[str, Any]) -> float | None:
    value = body.get("accuracy_m")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadInput("accuracy_m must be a number of metres", field="accuracy_m")
    try:
        out = float(value)
    except OverflowError:
        out = math.inf
    if not (math.isfinite(out) and 0.0 < out <= MAX_ACCURACY_M):
        raise BadInput(
            "accuracy_m must be a finite number of metres, "
            f"0 < accuracy_m <= {MAX_ACCURACY_M:g}, got {str(value)[:40]}",
            field="accuracy_m",
        )
    return out


def _choice(body: Mapping[str, Any], name: str, table: Mapping[str, Any], default: str) -> str:
    value = body.get(name, default)
    if value is None:
        return default
    if not isinstance(value, str) or value not in table:
        raise BadInput(f"unknown {name} {repr(value)[:60]}; one of: {', '.join(table)}", field=name)
    return value


def parse_report(body: Any, *, taxonomy: Taxonomy | None = None) -> Report:
    """Validate a ``POST /events`` body; ``BadInput`` names the offending field.

    ``observed_at`` must be an ISO 8601 instant with a zone (checked against
    the clock by :func:`report_event`, which knows the time of the report);
    ``accuracy_m`` a finite number of metres, ``0 < accuracy_m <= 10000``.

    Examples
    --------
    >>> r = parse_report({"category": "dispute", "description": "邻里噪音",
    ...                   "location": {"lon": 24.94, "lat": 60.17, "crs": "wgs84"}})
    >>> r.category, r.urgency, r.kind
    ('dispute', 'normal', 'event')
    >>> r = parse_report({"category": "dispute", "description": "邻里噪音",
    ...                   "location": {"lon": 24.94, "lat": 60.17, "crs": "wgs84"},
    ...                   "observed_at": "2026-11-01T08:30:00+08:00", "accuracy_m": 12})
    >>> r.observed_at, r.accuracy_m
    (Timestamp('2026-11-01 00:30:00+0000', tz='UTC'), 12.0)
    """
    tax = taxonomy or default_taxonomy()
    if not isinstance(body, Mapping):
        raise BadInput("the report must be a JSON object", field="body")
    unknown = sorted(set(body) - _REPORT_FIELDS)
    if unknown:
        raise BadInput(
            f"unknown field {unknown[0][:60]!r}; fields: {', '.join(sorted(_REPORT_FIELDS))}",
            field=unknown[0][:60],
        )
    if "category" not in body:
        raise BadInput("category is required", field="category")
    kind = _choice(body, "kind", EVENT_KINDS, "event")
    category = body["category"]
    subcategory = body.get("subcategory")
    tax.check(category, subcategory, kind)
    if "location" not in body:
        raise BadInput("location is required", field="location")
    photos = body.get("photos") or []
    if not isinstance(photos, list) or not all(
        isinstance(p, str) and MEDIA_NAME.fullmatch(p) for p in photos
    ):
        raise BadInput(
            "photos must be a list of media names returned by POST /events/media", field="photos"
        )
    if len(photos) > 20:
        raise BadInput("photos has more than 20 entries", field="photos")
    return Report(
        category=str(category),
        subcategory=subcategory,
        description=_text(body, "description", size=5000, required=True) or "",
        location=parse_location(body["location"]),
        urgency=_choice(body, "urgency", URGENCIES, "normal"),
        kind=kind,
        channel=_choice(body, "channel", CHANNELS, "patrol"),
        reporter=_text(body, "reporter", size=100),
        contact=_text(body, "contact", size=100),
        photos=tuple(photos),
        observed_at=_instant(body, "observed_at"),
        accuracy_m=_accuracy(body),
    )


def _valid_now(frame: pd.DataFrame, now: pd.Timestamp) -> np.ndarray:
    if frame.empty:
        return np.zeros(0, dtype=bool)
    start = pd.to_datetime(frame["valid_from"], utc=True)
    end = pd.to_datetime(frame["valid_to"], utc=True)
    ok = (start.isna() | (start <= now)) & (end.isna() | (end > now))
    return ok.to_numpy(dtype=bool)


#: How far the time of a report may be from the clock for the locator to place it.
_LOCATOR_SKEW = pd.Timedelta(minutes=5)


def _place_from_locator(
    locator: Locator, lon: float, lat: float, when: pd.Timestamp
) -> Placement | None:
    """:func:`locate_point` answered from the in-memory locator, or ``None`` when it cannot say.

    The locator holds the grids and admin units in force (``valid_to`` null)
    as of its last freshness check (:class:`gridmap.geo.locate.LocatorCache`).
    It answers only for a report made now (within :data:`_LOCATOR_SKEW` of
    the clock) that falls in a grid whose ``valid_from`` has come: anything
    else (a replayed scenario, a point in no grid, a grid redrawn for a later
    date) goes to the store, so the answer is the one :func:`locate_point`
    gives from the store, with the same tie rule (lowest grid code).
    """
    if abs(when - pd.Timestamp.now(tz="UTC")) > _LOCATOR_SKEW:
        return None
    gpos, upos = locator.covering(lon, lat)
    grids = [
        locator.grid_rows[i]
        for i in gpos.tolist()
        if locator.grid_rows[i][3] is None or locator.grid_rows[i][3] <= when
    ]
    if not grids:
        return None
    grid_code, community, workers, _ = min(grids, key=lambda g: g[0])
    units = [locator.admin_rows[i] for i in upos.tolist()]
    if community is None:
        found = sorted(str(c) for c, lv in units if lv == "community" and c is not None)
        community = found[0] if found else None
    towns = sorted(str(c) for c, lv in units if lv == "town" and c is not None)
    town: str | None = towns[0] if towns else None
    if town is None and community is not None and len(community) >= 9:
        town = community[:9]
    if community is None and len(grid_code) >= 12:
        community = grid_code[:12]
    return Placement(grid_code, community, town, workers)


def locate_point(
    store: Store,
    lon: float,
    lat: float,
    *,
    now: pd.Timestamp | None = None,
    locator: Locator | None = None,
) -> Placement | None:
    """The grid, community and town a WGS84 point lies in (``None`` when in none).

    With a *locator* (the ``/locate`` index, :class:`gridmap.geo.locate.Locator`)
    a report made now inside a current grid is placed without a database
    round trip (:func:`_place_from_locator`); otherwise, and without one,
    from the store.

    Examples
    --------
    >>> from gridmap.storage import open_store
    >>> locate_point(open_store(":memory:", migrate=True), 24.94, 60.17) is None
    True
    """
    when = now if now is not None else pd.Timestamp.now(tz="UTC")
    if locator is not None:
        placed = _place_from_locator(locator, lon, lat, when)
        if placed is not None:
            return placed
    point = shapely.Point(lon, lat)
    # A zero-area box is an invalid polygon to PostGIS' ST_Intersects: pad it by ~0.1 mm.
    eps = 1e-9
    box = (
        max(lon - eps, -180.0),
        max(lat - eps, -90.0),
        min(lon + eps, 180.0),
        min(lat + eps, 90.0),
    )
    grids = store.read("grids", bbox=box)
    grid_code: str | None = None
    workers: tuple[str, ...] = ()
    community: str | None = None
    if not grids.empty:
        assert isinstance(grids, gpd.GeoDataFrame)
        inside = shapely.covers(grids.geometry.to_numpy(), point) & _valid_now(grids, when)
        hits = grids.loc[inside].sort_values("code")
        if len(hits):
            row = hits.iloc[0]
            grid_code = str(row["code"])
            community = row["community_code"] if isinstance(row["community_code"], str) else None
            w = row["workers"]
            workers = tuple(str(x) for x in w) if isinstance(w, list | tuple) else ()
    units = store.read("admin_units", bbox=box)
    town: str | None = None
    if not units.empty:
        assert isinstance(units, gpd.GeoDataFrame)
        units = units.loc[shapely.covers(units.geometry.to_numpy(), point)]
        for level in ("community", "town"):
            codes = sorted(units.loc[units["level"] == level, "code"].dropna().astype(str))
            if level == "community" and community is None and codes:
                community = codes[0]
            if level == "town" and codes:
                town = codes[0]
    if town is None and community is not None and len(community) >= 9:
        town = community[:9]
    if community is None and grid_code is not None and len(grid_code) >= 12:
        community = grid_code[:12]
    if grid_code is None and community is None:
        return None
    return Placement(grid_code, community, town, workers)


def _jurisdiction_hint(store: Store, loc: Location) -> str:
    """Why a point is outside: swapped axes, China offsets, or plainly elsewhere."""
    if loc.lon == 0.0 and loc.lat == 0.0:
        return "(0, 0) is not a location (null island): the device sent no position"
    if -90 <= loc.lon <= 90 and locate_point(store, loc.lat, loc.lon) is not None:
        return "latitude and longitude look swapped: give lon (x) first"
    if loc.crs in ("wgs84", "epsg:4326", "cgcs2000", "epsg:4490"):
        for other in ("gcj02", "bd09"):
            lon, lat = to_wgs84(loc.lon, loc.lat, other)
            if locate_point(store, float(lon), float(lat)) is not None:
                return (
                    f"the point looks like {other.upper()} coordinates sent as {loc.crs}: set crs"
                )
    return "it lies in no grid or community of the jurisdiction"


def nearest_own_grid(
    store: Store,
    principal: Principal,
    lon: float,
    lat: float,
    *,
    now: pd.Timestamp | None = None,
) -> tuple[str, float] | None:
    """The principal's grid nearest to a WGS84 point, and its distance in metres.

    Only grids in force at *now* count; distances are measured in the UTM
    zone of the point (:func:`gridmap.geo.projection.local_crs`), 0 inside a
    grid. ``None`` when the principal has no grid (or sees everything:
    every grid is theirs, and the question does not arise).

    Examples
    --------
    >>> from gridmap.storage import open_store
    >>> from gridmap.security.access import Principal
    >>> s = open_store(":memory:", migrate=True)
    >>> nearest_own_grid(s, Principal("w", "grid_worker", ("990100001001001",)),
    ...                  24.94, 60.17) is None
    True
    """
    if principal.sees_everything or not principal.areas:
        return None
    when = now if now is not None else pd.Timestamp.now(tz="UTC")
    grids = store.read("grids", where={"code": Prefix(tuple(principal.areas))})
    if grids.empty:
        return None
    assert isinstance(grids, gpd.GeoDataFrame)
    grids = grids.loc[_valid_now(grids, when) & grids.geometry.notna().to_numpy()]
    if grids.empty:
        return None
    crs = local_crs((lon, lat, lon, lat))
    point = to_local(gpd.GeoSeries([shapely.Point(lon, lat)], crs=4326), crs).iloc[0]
    dist = to_local(grids.geometry, crs).distance(point).to_numpy(dtype=float)
    order = np.lexsort((grids["code"].astype(str).to_numpy(), dist))
    best = int(order[0])
    return str(grids["code"].iloc[best]), float(dist[best])


def _metres(value: float) -> str:
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def _edge_reporter_grid(
    store: Store,
    principal: Principal,
    loc: Location,
    place: Placement,
    *,
    accuracy_m: float | None,
    tolerance_m: float,
    now: pd.Timestamp,
) -> tuple[str, float]:
    """The reporter's own grid when *loc* is within the edge tolerance of it, else refuse."""
    where = place.grid_code or place.community_code
    nearest = nearest_own_grid(store, principal, loc.lon, loc.lat, now=now)
    allowed = 0.0 if accuracy_m is None else min(accuracy_m, max(tolerance_m, 0.0))
    if nearest is not None and nearest[1] <= allowed:
        if place.grid_code is not None:
            return nearest
        raise NotPermitted(
            f"该位置位于 {where},不在任何网格内,无法转给相邻网格 / "
            f"the location lies in {where} but in no grid: there is no neighbouring grid "
            "to route it to"
        )
    if nearest is None:
        raise NotPermitted(
            f"该位置位于 {where},不在您负责的区域内 / "
            f"the location lies in {where}, outside the areas of {principal.name!r}"
        )
    dist = _metres(nearest[1])
    tolerance = (
        "no tolerance without accuracy_m" if accuracy_m is None else f"tolerance {allowed:g} m"
    )
    raise NotPermitted(
        f"该位置位于 {where},不在您负责的网格内(距最近网格 {dist} 米) / "
        f"the location lies in {where}, {dist} m outside your grids ({tolerance})"
    )


def check_observed_at(
    observed_at: pd.Timestamp,
    *,
    now: pd.Timestamp,
    max_age_hours: float = DEFAULT_OBSERVED_MAX_AGE_HOURS,
) -> pd.Timestamp:
    """*observed_at* if plausible at *now*; a time slightly ahead is taken as *now*.

    Refused (``BadInput`` on ``observed_at``) when it lies more than
    :data:`OBSERVED_SKEW` ahead of *now* or more than *max_age_hours* before it.
    A time ahead by less than the skew is a phone clock running fast: the
    problem was seen at the latest when it was reported, so *now* is kept.

    Examples
    --------
    >>> now = pd.Timestamp("2026-11-02T00:00:00Z")
    >>> check_observed_at(pd.Timestamp("2026-11-01T20:00:00Z"), now=now)
    Timestamp('2026-11-01 20:00:00+0000', tz='UTC')
    >>> check_observed_at(pd.Timestamp("2026-11-02T00:03:00Z"), now=now)
    Timestamp('2026-11-02 00:00:00+0000', tz='UTC')
    >>> check_observed_at(pd.Timestamp("2026-10-29T00:00:00Z"), now=now, max_age_hours=24)
    Traceback (most recent call last):
    gridmap.common.errors.BadInput: observed_at 2026-10-29T00:00:00Z is more than 24 hours ...
    """
    when = now.tz_convert("UTC") if now.tzinfo is not None else now.tz_localize("UTC")
    seen = observed_at.tz_convert("UTC")
    if seen > when + OBSERVED_SKEW:
        raise BadInput(
            f"observed_at {iso_utc(seen)} is in the future (the server's time is {iso_utc(when)}; "
            f"{OBSERVED_SKEW.total_seconds() / 60:g} minutes of clock skew are allowed)",
            field="observed_at",
        )
    if seen < when - pd.Timedelta(hours=max_age_hours):
        raise BadInput(
            f"observed_at {iso_utc(seen)} is more than {max_age_hours:g} hours before the report "
            f"({iso_utc(when)}): report problems while they are current",
            field="observed_at",
        )
    return min(seen, when)


def _degrees_box(lon: float, lat: float, radius_m: float) -> tuple[float, float, float, float]:
    dlat = math.degrees(radius_m / _EARTH_M)
    dlon = dlat / max(math.cos(math.radians(lat)), 1e-6)
    return (
        max(lon - dlon, -180.0),
        max(lat - dlat, -90.0),
        min(lon + dlon, 180.0),
        min(lat + dlat, 90.0),
    )


def _haversine(lon: float, lat: float, lons: np.ndarray, lats: np.ndarray) -> np.ndarray:
    p1, p2 = np.radians(lat), np.radians(lats)
    dphi, dlmb = p2 - p1, np.radians(lons - lon)
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlmb / 2) ** 2
    return np.asarray(2 * _EARTH_M * np.arcsin(np.sqrt(np.clip(a, 0, 1))), dtype=float)


def _sphere_m(lon: float, lat: float, lon2: float, lat2: float) -> float:
    """:func:`_haversine` of one pair, in plain floats (numpy costs more than it saves here).

    >>> round(_sphere_m(116.39, 39.9, 116.39, 39.9009), 1) == round(float(
    ...     _haversine(116.39, 39.9, np.array([116.39]), np.array([39.9009]))[0]), 1)
    True
    """
    p1, p2 = math.radians(lat), math.radians(lat2)
    a = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon) / 2) ** 2
    )
    return 2 * _EARTH_M * math.asin(math.sqrt(min(max(a, 0.0), 1.0)))


def find_duplicate(
    store: Store,
    *,
    category: str,
    lon: float,
    lat: float,
    now: pd.Timestamp,
    radius_m: float = 50.0,
    days: float = 7.0,
) -> int | None:
    """The open event this report probably duplicates, or ``None``.

    Same category, within *radius_m* metres, reported in the last *days*
    days, still open. The nearest one wins; when it is itself a duplicate,
    its original is returned, so chains never form.

    Examples
    --------
    >>> from gridmap.storage import open_store
    >>> s = open_store(":memory:", migrate=True)
    >>> find_duplicate(s, category="dispute", lon=24.9, lat=60.1,
    ...                now=pd.Timestamp("2026-11-01", tz="UTC")) is None
    True
    """
    since = now - pd.Timedelta(days=days)
    near = store.read(
        "events",
        bbox=_degrees_box(lon, lat, radius_m),
        where={
            "category": category,
            "status": sorted(OPEN_STATES),
            "reported_at": Cmp(">=", since.to_pydatetime()),
        },
    )
    if near.empty:
        return None
    assert isinstance(near, gpd.GeoDataFrame)
    dist = _haversine(lon, lat, near.geometry.x.to_numpy(), near.geometry.y.to_numpy())
    ok = dist <= radius_m
    if not ok.any():
        return None
    best = near.loc[ok].assign(_d=dist[ok]).sort_values(["_d", "id"]).iloc[0]
    original = best["duplicate_of"]
    return int(original) if pd.notna(original) else int(best["id"])


def request_hash(body: Any) -> str:
    """A stable digest of a request body (keys sorted), for Idempotency-Key checks.

    Examples
    --------
    >>> request_hash({"a": 1, "b": 2}) == request_hash({"b": 2, "a": 1})
    True
    """
    text = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def idempotent(
    store: Store,
    *,
    principal: Principal,
    key: str | None,
    digest: str,
    create: Callable[[], tuple[int, dict[str, Any], int | None]],
    now: pd.Timestamp | None = None,
) -> tuple[int, dict[str, Any], bool]:
    """Run *create* at most once per (principal, key); replay its stored answer.

    Parameters
    ----------
    store : Store
        Holds the ``idempotency_keys`` layer.
    principal : Principal
        Keys are scoped per principal.
    key : str or None
        The ``Idempotency-Key``; ``None`` runs *create* without protection.
    digest : str
        :func:`request_hash` of the request body.
    create : callable
        Does the work inside the transaction; returns (status, body, event id).
    now : Timestamp, optional
        When the key is claimed.

    Returns
    -------
    status, body, replayed : int, dict, bool

    Raises
    ------
    IdempotencyKeyReused
        The key was used before with another body.

    Examples
    --------
    >>> from gridmap.storage import open_store
    >>> from gridmap.security.access import SYSTEM
    >>> s = open_store(":memory:", migrate=True)
    >>> make = lambda: (201, {"id": 1}, 1)
    >>> idempotent(s, principal=SYSTEM, key="k1", digest="d", create=make)
    (201, {'id': 1}, False)
    >>> idempotent(s, principal=SYSTEM, key="k1", digest="d", create=make)
    (201, {'id': 1}, True)
    """
    if key is None:
        with store.transaction():
            status, body, _ = create()
        return status, body, False
    if not KEY.fullmatch(key):
        raise BadInput(
            "Idempotency-Key must be 1-200 printable ASCII characters without spaces",
            field="Idempotency-Key",
        )
    when = now if now is not None else pd.Timestamp.now(tz="UTC")
    skey = "idem:" + hashlib.sha256(f"{principal.name}\x1f{key}".encode()).hexdigest()
    where = {"principal": principal.name, "key": key}
    with store.transaction():
        claim = pd.DataFrame(
            [
                {
                    "source_key": skey,
                    "principal": principal.name,
                    "key": key,
                    "request_hash": digest,
                    "created_at": when,
                }
            ]
        )
        if store.write("idempotency_keys", claim).inserted == 1:
            status, body, event_id = create()
            row = store.read("idempotency_keys", where=where)
            store.update(
                "idempotency_keys",
                pd.DataFrame(
                    [
                        {
                            "id": int(row["id"].iloc[0]),
                            "status_code": status,
                            "response": json.dumps(body, ensure_ascii=False),
                            "event_id": event_id,
                        }
                    ]
                ),
            )
            return status, body, False
    stored = store.read("idempotency_keys", where=where)
    if stored.empty:  # pragma: no cover - the claim exists once inserted
        raise ConcurrentUpdate("the Idempotency-Key is being used by another request; retry")
    row = stored.iloc[0]
    if row["request_hash"] != digest:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was already used with a different request body; "
            "use a new key for a new report"
        )
    if row["response"] is None:
        raise ConcurrentUpdate("the request with this Idempotency-Key is still running; retry")
    return int(row["status_code"]), dict(json.loads(str(row["response"]))), True


@dataclass(frozen=True)
class IntakeRules:
    """How reports are checked, placed and deduplicated (the API fills it from its settings).

    Parameters
    ----------
    taxonomy : Taxonomy, optional
        Categories, time limits and responsible parties (default: the built-in one).
    duplicate_radius_m, duplicate_days : float
        What counts as a duplicate of an open event (:func:`find_duplicate`).
    observed_max_age_hours : float
        How old ``observed_at`` may be (:func:`check_observed_at`).
    edge_tolerance_m : float
        The cap of the grid-edge tolerance: a point outside the principal's
        grids is accepted within ``min(accuracy_m, edge_tolerance_m)`` metres
        of one of them, routed to the grid that contains it, and the
        principal's grid recorded in ``reporter_grid_code``.
    """

    taxonomy: Taxonomy | None = None
    duplicate_radius_m: float = 50.0
    duplicate_days: float = 7.0
    observed_max_age_hours: float = DEFAULT_OBSERVED_MAX_AGE_HOURS
    edge_tolerance_m: float = DEFAULT_EDGE_TOLERANCE_M

    @property
    def tax(self) -> Taxonomy:
        """The taxonomy in force."""
        return self.taxonomy or default_taxonomy()


class KeyClaim(NamedTuple):
    """An ``Idempotency-Key`` request: the key, the body's digest, and how to answer it.

    *respond* turns the stored event (a row mapping, ``duplicate_of`` blanked
    where the principal may not read the original) into ``(status, answer)``;
    the answer is stored with the key and replayed to retries.
    """

    key: str | None
    digest: str
    respond: Callable[[dict[str, Any]], tuple[int, dict[str, Any]]]


class _Checked(NamedTuple):
    """A report that passed the checks: when, where it goes, the edge grid, ``observed_at``."""

    when: pd.Timestamp
    place: Placement
    edge: tuple[str, float] | None
    observed: pd.Timestamp | None


def report_event(
    store: Store,
    report: Report,
    *,
    principal: Principal,
    rules: IntakeRules = IntakeRules(),
    now: pd.Timestamp | None = None,
    synthetic: bool = False,
    locator: Locator | None = None,
) -> dict[str, Any]:
    """Locate, route and store one report; return the stored event as a dict.

    Parameters
    ----------
    store : Store
        Where grids, admin units and events live.
    report : Report
        From :func:`parse_report`.
    principal : Principal
        Who reports; a principal limited to areas reports inside them, or
        within the edge tolerance of one of their grids.
    rules : IntakeRules
        Taxonomy, duplicate radius and days, ``observed_at`` age, edge tolerance.
    now : Timestamp, optional
        The time of the report (default: the current time).
    synthetic : bool
        Marks generated events.
    locator : Locator, optional
        The in-memory ``/locate`` index: placement without reading grids and
        admin units from the store (:func:`locate_point`).

    Raises
    ------
    BadInput
        ``observed_at`` in the future or too old.
    OutsideJurisdiction
        The point lies in no grid or community (the message says why when it
        can: swapped axes, GCJ-02/BD-09 values sent as WGS84, (0, 0)).
    NotPermitted
        The principal may not report, or not at this place (a grid worker
        outside their grids beyond the tolerance; the message, in Chinese and
        English, gives the distance to their nearest grid).

    Examples
    --------
    >>> from gridmap.storage import open_store
    >>> from gridmap.security.access import SYSTEM
    >>> r = parse_report({"category": "dispute", "description": "x",
    ...                   "location": {"lon": 0, "lat": 0, "crs": "wgs84"}})
    >>> report_event(open_store(":memory:", migrate=True), r, principal=SYSTEM)
    Traceback (most recent call last):
    gridmap.common.errors.OutsideJurisdiction: location (0.0, 0.0) is outside the jurisdiction: ...
    """
    when = now if now is not None else pd.Timestamp.now(tz="UTC")
    checked = _check_report(
        store, report, principal=principal, when=when, rules=rules, locator=locator
    )
    edge = checked.edge
    loc = report.location
    duplicate = find_duplicate(
        store,
        category=report.category,
        lon=loc.lon,
        lat=loc.lat,
        now=when,
        radius_m=rules.duplicate_radius_m,
        days=rules.duplicate_days,
    )
    row = _event_row(
        report,
        checked,
        principal=principal,
        tax=rules.tax,
        duplicate=duplicate,
        synthetic=synthetic,
    )
    source_id = row["source_id"]
    frame = _event_frame([row], [report])
    with store.transaction():
        store.write("events", frame)
        stored = store.read("events", where={"source": "api", "source_id": source_id})
        event_id = int(stored["id"].iloc[0])
        record = pd.DataFrame(
            [
                _transition_record(
                    event_id,
                    report,
                    principal=principal,
                    when=when,
                    duplicate=duplicate,
                    edge=edge,
                )
            ]
        )
        store.write("event_transitions", record)
        webhooks.enqueue(store, stored.iloc[0], record.iloc[0])  # outbox, same transaction
    out: dict[str, Any] = {str(k): v for k, v in stored.iloc[0].to_dict().items()}
    return out


def report_once(
    store: Store,
    report: Report,
    *,
    principal: Principal,
    claim: KeyClaim,
    rules: IntakeRules = IntakeRules(),
    now: pd.Timestamp | None = None,
    locator: Locator | None = None,
) -> tuple[int, dict[str, Any], bool]:
    """Store one report exactly once per key and answer it: the intake of ``POST /events``.

    The same outcome as :func:`idempotent` around :func:`report_event` followed
    by :func:`hide_foreign_duplicates` and *respond*, through the lean path of
    :mod:`gridmap.storage.intake_sql` on a store that supports it (PostGIS: one
    read and one write statement and a commit per report, no DataFrame);
    other stores take the generic calls.

    Parameters
    ----------
    store : Store
        Where the report goes.
    report : Report
        From :func:`parse_report`.
    principal : Principal
        Who reports; keys are scoped per principal.
    claim : KeyClaim
        The ``Idempotency-Key`` (or ``None``), :func:`request_hash` of the
        request body, and *respond*, which turns the stored event into
        ``(status, answer)``.
    rules : IntakeRules
        As for :func:`report_event`.

    Returns
    -------
    status, body, replayed : int, dict, bool

    Examples
    --------
    >>> from gridmap.storage import open_store
    >>> from gridmap.security.access import SYSTEM
    >>> r = parse_report({"category": "dispute", "description": "x",
    ...                   "location": {"lon": 116.39, "lat": 39.9, "crs": "gcj02"}})
    >>> spaced = KeyClaim("two words", "d", lambda row: (201, {"id": row["id"]}))
    >>> report_once(open_store(":memory:", migrate=True), r, principal=SYSTEM, claim=spaced)
    Traceback (most recent call last):
    gridmap.common.errors.BadInput: Idempotency-Key must be 1-200 printable ASCII characters ...
    """
    key, digest, respond = claim
    # PostgreSQL keeps microseconds: the answer must show what a later read shows.
    when = now if now is not None else pd.Timestamp.now(tz="UTC")
    if when.nanosecond:  # pandas' floor costs ~10 µs even when there is nothing to cut
        when = when.floor("us")
    if not intake_sql.supports(store):

        def create() -> tuple[int, dict[str, Any], int | None]:
            row = report_event(
                store, report, principal=principal, rules=rules, now=when, locator=locator
            )
            hide_foreign_duplicates(store, [row], principal=principal)
            status, doc = respond(row)
            return status, doc, int(row["id"])

        return idempotent(
            store, principal=principal, key=key, digest=digest, create=create, now=when
        )
    if key is not None and not KEY.fullmatch(key):
        raise BadInput(
            "Idempotency-Key must be 1-200 printable ASCII characters without spaces",
            field="Idempotency-Key",
        )
    try:
        checked = _check_report(
            store, report, principal=principal, when=when, rules=rules, locator=locator
        )
    except GridmapError:
        # A retry of a stored report is answered as stored, even if it would not pass now.
        stored = None if key is None else _stored_answer(store, principal, key, digest)
        if stored is None:
            raise
        return stored
    # Two statements, each committing by itself (intake_sql): no transaction around them.
    out = _store_lean(store, report, principal=principal, claim=claim, rules=rules, checked=checked)
    if out is not None:
        return out[0], out[1], False
    assert key is not None
    stored = _stored_answer(store, principal, key, digest)
    if stored is None:  # pragma: no cover - a claimed key stays claimed once committed
        raise ConcurrentUpdate("the Idempotency-Key is being used by another request; retry")
    return stored


def _stored_answer(
    store: Store, principal: Principal, key: str, digest: str
) -> tuple[int, dict[str, Any], bool] | None:
    """The stored answer of *key* (``None`` when the key is not stored): replay or refuse."""
    found = store.read("idempotency_keys", where={"principal": principal.name, "key": key})
    if found.empty:
        return None
    row = found.iloc[0]
    if row["request_hash"] != digest:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was already used with a different request body; "
            "use a new key for a new report"
        )
    if row["response"] is None or pd.isna(row["response"]):
        raise ConcurrentUpdate("the request with this Idempotency-Key is still running; retry")
    return int(row["status_code"]), dict(json.loads(str(row["response"]))), True


def _store_lean(
    store: Store,
    report: Report,
    *,
    principal: Principal,
    claim: KeyClaim,
    rules: IntakeRules,
    checked: _Checked,
) -> tuple[int, dict[str, Any]] | None:
    """Duplicates, then key, event, audit and outbox in one statement (``None``: key taken)."""
    key, digest, respond = claim
    when, edge = checked.when, checked.edge
    radius_m, days = rules.duplicate_radius_m, rules.duplicate_days
    loc = report.location
    event_id, near = intake_sql.prepare_report(
        store,
        point=(loc.lon, loc.lat),
        box=_degrees_box(loc.lon, loc.lat, radius_m),
        category=report.category,
        statuses=sorted(OPEN_STATES),
        since=when - pd.Timedelta(days=days),
        reported_at=when,
    )
    duplicate: int | None = None
    readable = True
    if near:
        dist = [_sphere_m(loc.lon, loc.lat, c.lon, c.lat) for c in near]
        ok = [i for i in range(len(near)) if dist[i] <= radius_m]
        if ok:
            best = near[min(ok, key=lambda i: (dist[i], near[i].id))]
            duplicate = best.duplicate_of if best.duplicate_of is not None else best.id
            areas = best.target_areas
            code = None if areas is None else next((c for c in areas if c), None)
            readable = principal.sees_everything or (areas is not None and principal.covers(code))
    row = _event_row(
        report, checked, principal=principal, tax=rules.tax, duplicate=duplicate, synthetic=False
    )
    row["id"] = event_id
    row["source_key"] = f"api:{row['source_id']}"
    row.update(one_point_cells(loc.lon, loc.lat))
    record = _transition_record(
        event_id, report, principal=principal, when=when, duplicate=duplicate, edge=edge
    )
    shown = {**row, "geometry": shapely.Point(loc.lon, loc.lat)}
    if not readable:
        shown["duplicate_of"] = None
    status, doc = respond(shown)
    key_row = None
    if key is not None:
        skey = hashlib.sha256(f"{principal.name}\x1f{key}".encode()).hexdigest()
        key_row = {
            "source_key": "idem:" + skey,
            "principal": principal.name,
            "key": key,
            "request_hash": digest,
            "status_code": status,
            "response": orjson.dumps(doc).decode(),
            "event_id": event_id,
            "created_at": when,
        }
    stored = intake_sql.insert_report(
        store,
        claim=key_row,
        event={k: v for k, v in row.items() if k != "geometry"},
        lon=loc.lon,
        lat=loc.lat,
        transition=record,
        outbox=webhooks.outbox_rows(row, record),
    )
    return (status, doc) if stored else None


def _check_report(
    store: Store,
    report: Report,
    *,
    principal: Principal,
    when: pd.Timestamp,
    rules: IntakeRules,
    locator: Locator | None,
) -> _Checked:
    """Who may report here, and where: the placement, the edge grid and ``observed_at``."""
    if principal.role not in _REPORTERS and principal.role != "external_system":
        raise NotPermitted(f"role {principal.role!r} may not report events")
    observed = (
        None
        if report.observed_at is None
        else check_observed_at(
            report.observed_at, now=when, max_age_hours=rules.observed_max_age_hours
        )
    )
    loc = report.location
    place = locate_point(store, loc.lon, loc.lat, now=when, locator=locator)
    if place is None:
        raise OutsideJurisdiction(
            f"location ({loc.lon}, {loc.lat}) is outside the jurisdiction: "
            + _jurisdiction_hint(store, loc)
        )
    code = place.grid_code or place.community_code
    edge: tuple[str, float] | None = None
    if not principal.covers(code):
        edge = _edge_reporter_grid(
            store,
            principal,
            loc,
            place,
            accuracy_m=report.accuracy_m,
            tolerance_m=rules.edge_tolerance_m,
            now=when,
        )
    return _Checked(when, place, edge, observed)


def _event_row(
    report: Report,
    checked: _Checked,
    *,
    principal: Principal,
    tax: Taxonomy,
    duplicate: int | None,
    synthetic: bool,
) -> dict[str, Any]:
    """The ``events`` row of a checked report, under a new random ``source_id``."""
    when, place, edge, observed = checked
    limits = tax.limits(report.category, report.subcategory)
    step = limits.step("reported", report.urgency)
    row = {
        "kind": report.kind,
        "category": report.category,
        "subcategory": report.subcategory,
        "status": "reported",
        "urgency": report.urgency,
        "description": report.description,
        "channel": report.channel,
        "reporter": report.reporter or principal.name,
        "contact": report.contact,
        "reported_by": principal.name,
        "grid_code": place.grid_code,
        "community_code": place.community_code,
        "town_code": place.town_code,
        "assigned_to": list(place.workers),
        "responsible": tax.responsible(report.category, report.subcategory),
        "reported_at": when,
        "updated_at": when,
        "due_at": when + pd.Timedelta(hours=limits.total(report.urgency)),
        "step_due_at": None if step is None else when + pd.Timedelta(hours=step),
        "version": 1,
        "duplicate_of": duplicate,
        "self_handled": False,
        "rework_count": 0,
        "extension_count": 0,
        "photos": list(report.photos) or None,
        "synthetic": synthetic,
        "source": "api",
        "source_id": secrets.token_hex(16),  # random as uuid4().hex, without the UUID object
        "observed_at": observed,
        "accuracy_m": report.accuracy_m,
        "reporter_grid_code": None if edge is None else edge[0],
        "media_url": report.media_url,
    }
    return row


def _transition_record(
    event_id: int,
    report: Report,
    *,
    principal: Principal,
    when: pd.Timestamp,
    duplicate: int | None,
    edge: tuple[str, float] | None,
) -> dict[str, Any]:
    """The ``report`` transition (the audit record) of a stored event."""
    loc = report.location
    return {
        "source_key": f"event:{event_id}:v1",
        "event_id": event_id,
        "seq": 1,
        "action": "report",
        "from_status": None,
        "to_status": "reported",
        "actor": principal.name,
        "actor_role": principal.role,
        "at": when,
        "note": None,
        "photos": list(report.photos) or None,
        "details": json.dumps(_report_details(duplicate, loc, report, edge), sort_keys=True),
    }


def _event_frame(rows: list[dict[str, Any]], reports: list[Report]) -> gpd.GeoDataFrame:
    frame = gpd.GeoDataFrame(
        rows,
        geometry=[shapely.Point(r.location.lon, r.location.lat) for r in reports],
        crs=4326,
    )
    for col in ("reported_at", "updated_at", "due_at", "step_due_at", "observed_at"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    return frame


def _report_details(
    duplicate: int | None, loc: Location, report: Report, edge: tuple[str, float] | None
) -> dict[str, Any]:
    """What the ``report`` transition records besides the event itself."""
    out: dict[str, Any] = {"duplicate_of": duplicate, "crs": loc.crs}
    if report.accuracy_m is not None:
        out["accuracy_m"] = report.accuracy_m
    if edge is not None:
        out["edge_tolerance"] = {"reporter_grid": edge[0], "distance_m": round(edge[1], 2)}
    return out


def _plain(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def hide_foreign_duplicates(
    store: Store, rows: list[dict[str, Any]], *, principal: Principal
) -> list[dict[str, Any]]:
    """Blank ``duplicate_of`` in *rows* where it names an event *principal* may not read.

    Duplicate detection looks across areas (a report near another grid's open
    event is linked to it), but the link is only a hint to callers who may
    read the other event; to anyone else it would reveal that an event exists
    there and its id. The rows are changed in place and returned.

    Examples
    --------
    >>> from gridmap.storage import open_store
    >>> w = Principal("w", "grid_worker", ("990100001001003",))
    >>> hide_foreign_duplicates(open_store(":memory:", migrate=True),
    ...                         [{"id": 2, "duplicate_of": 1}], principal=w)
    [{'id': 2, 'duplicate_of': None}]
    """
    wanted = {int(d) for r in rows if (d := _plain(r.get("duplicate_of"))) is not None}
    if not wanted or principal.sees_everything:
        return rows
    found = store.read("events", ids=sorted(wanted))
    readable = {
        int(e["id"])
        for e in found.to_dict("records")
        if principal.covers(
            next((c for k in _AREA_COLUMNS if isinstance(c := e.get(k), str) and c), None)
        )
    }
    for r in rows:
        d = _plain(r.get("duplicate_of"))
        if d is not None and int(d) not in readable:
            r["duplicate_of"] = None
    return rows


def event_document(
    row: Mapping[str, Any],
    *,
    principal: Principal,
    taxonomy: Taxonomy | None = None,
) -> dict[str, Any]:
    """The JSON shape of an event for *principal* (personal data masked or left out).

    Viewers and external systems never see the reporter or the contact;
    other roles see them masked (张*, 138****1234).

    Examples
    --------
    >>> from gridmap.security.access import Principal
    >>> doc = event_document({"id": 3, "status": "reported", "reporter": "王五",
    ...                       "category": "dispute", "version": 1},
    ...                      principal=Principal("v", "viewer"))
    >>> doc["id"], doc["status"], "reporter" in doc
    (3, 'reported', False)
    """
    tax = taxonomy or default_taxonomy()
    geom = row.get("geometry")
    location = None
    if isinstance(geom, shapely.Point) and not geom.is_empty:
        location = {"lon": round(geom.x, 7), "lat": round(geom.y, 7), "crs": "wgs84"}
    status = str(row.get("status") or "reported")
    category = row.get("category")
    names = None
    if isinstance(category, str) and category in tax.categories:
        sub = row.get("subcategory")
        sub = (
            sub if isinstance(sub, str) and sub in tax.categories[category].subcategories else None
        )
        names = {"zh": tax.name(category, sub, lang="zh"), "en": tax.name(category, sub, lang="en")}
    assigned = row.get("assigned_to")
    photos = row.get("photos")
    doc: dict[str, Any] = {
        "id": int(row["id"]),
        "kind": _plain(row.get("kind")) or "event",
        "category": _plain(category),
        "subcategory": _plain(row.get("subcategory")),
        "category_name": names,
        "status": status,
        "status_name": dict(zip(("zh", "en"), STATES.get(status, (status, status)), strict=True)),
        "urgency": _plain(row.get("urgency")),
        "description": _plain(row.get("description")),
        "channel": _plain(row.get("channel")),
        "location": location,
        "grid_code": _plain(row.get("grid_code")),
        "community_code": _plain(row.get("community_code")),
        "town_code": _plain(row.get("town_code")),
        "responsible": _plain(row.get("responsible")),
        "assigned_to": list(assigned) if isinstance(assigned, list | tuple) else [],
        "reported_at": iso_utc(row.get("reported_at")),
        "updated_at": iso_utc(row.get("updated_at")),
        "step_due_at": iso_utc(row.get("step_due_at")),
        "due_at": iso_utc(row.get("due_at")),
        "closed_at": iso_utc(row.get("closed_at")),
        "duplicate_of": _plain(row.get("duplicate_of")),
        "self_handled": bool(_plain(row.get("self_handled")) or False),
        "rework_count": int(_plain(row.get("rework_count")) or 0),
        "extension_count": int(_plain(row.get("extension_count")) or 0),
        "pending_extension_hours": _plain(row.get("pending_extension_hours")),
        "escalated_to": _plain(row.get("escalated_to")),
        "supervised_at": iso_utc(row.get("supervised_at")),
        "photos": list(photos) if isinstance(photos, list | tuple) else [],
        "observed_at": iso_utc(row.get("observed_at")),
        "accuracy_m": _plain(row.get("accuracy_m")),
        "reporter_grid_code": _plain(row.get("reporter_grid_code")),
        "version": int(_plain(row.get("version")) or 0),
        "synthetic": bool(_plain(row.get("synthetic")) or False),
    }
    if principal.sees_personal_data:
        doc["reporter"] = mask_name(_plain(row.get("reporter")))
        doc["contact"] = mask_phone(_plain(row.get("contact")))
    return doc


def list_events(
    store: Store,
    *,
    principal: Principal,
    filters: Mapping[str, Any] | None = None,
    reported_from: pd.Timestamp | None = None,
    reported_to: pd.Timestamp | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[pd.DataFrame, int]:
    """A page of events the principal may see, and the total number matching.

    *filters* are equality filters on event columns (``status``,
    ``category``, ``kind``, ``grid_code`` …); the principal's areas are
    applied as a prefix filter on ``grid_code``.

    Examples
    --------
    >>> from gridmap.storage import open_store
    >>> from gridmap.security.access import SYSTEM
    >>> page, total = list_events(open_store(":memory:", migrate=True), principal=SYSTEM)
    >>> total
    0
    """
    where: dict[str, Any] = dict(filters or {})
    if not principal.sees_everything:
        code = where.get("grid_code")
        if isinstance(code, str) and not principal.covers(code):
            return pd.DataFrame(), 0
        if code is None:
            where["grid_code"] = Prefix(tuple(principal.areas))
    bounds = []
    if reported_from is not None:
        bounds.append(Cmp(">=", reported_from.to_pydatetime()))
    if reported_to is not None:
        bounds.append(Cmp("<", reported_to.to_pydatetime()))
    if bounds:
        where["reported_at"] = AllOf(tuple(bounds))
    total = store.count("events", where=where)
    page = store.read("events", where=where, limit=limit, offset=offset)
    return page, total


#: What one item of :func:`report_batch` comes to: (status, response body, replayed)
#: or the domain error the same report alone would have raised.
BatchResult = tuple[int, dict[str, Any], bool] | GridmapError


def _nearest_duplicate(
    lon: float,
    lat: float,
    cand_lon: np.ndarray,
    cand_lat: np.ndarray,
    cand_order: list[tuple[int, int]],
    radius_m: float,
) -> int | None:
    """Position in the candidates of the nearest one within *radius_m* (ties: lowest order)."""
    if not len(cand_lon):
        return None
    dist = _haversine(lon, lat, cand_lon, cand_lat)
    ok = np.flatnonzero(dist <= radius_m)
    if not len(ok):
        return None
    return int(min(ok, key=lambda i: (dist[i], cand_order[i])))


def report_batch(
    store: Store,
    items: list[tuple[str, Any]],
    *,
    principal: Principal,
    rules: IntakeRules = IntakeRules(),
    now: pd.Timestamp | None = None,
    locator: Locator | None = None,
) -> list[BatchResult]:
    """Store many reports, each once per Idempotency-Key, with bulk writes.

    The same outcome, item by item in order, as :func:`idempotent` around
    :func:`report_event` for each ``(key, body)``: a key seen before with the
    same body replays its stored answer, with another body is
    :class:`IdempotencyKeyReused`; a report that fails validation, placement
    or permission gets its own error and stores nothing; duplicates are found
    among the stored open events and among the earlier reports of the batch.
    The stored reports go in one transaction: their key claims, events,
    audit records and stored answers as a few bulk writes, not one round
    trip per report. When another request holds one of the keys, the whole
    transaction is rolled back and :class:`ConcurrentUpdate` raised (retry).

    Examples
    --------
    >>> from gridmap.storage import open_store
    >>> from gridmap.security.access import SYSTEM
    >>> body = {"category": "dispute", "description": "x",
    ...         "location": {"lon": 0, "lat": 0, "crs": "wgs84"}}
    >>> [type(r).__name__ for r in report_batch(open_store(":memory:", migrate=True),
    ...                                         [("k1", body)], principal=SYSTEM)]
    ['OutsideJurisdiction']
    """
    tax = rules.tax
    when = now if now is not None else pd.Timestamp.now(tz="UTC")
    results: list[BatchResult | None] = [None] * len(items)
    digests = [request_hash(body) for _, body in items]
    good_keys = sorted({k for k, _ in items if isinstance(k, str) and KEY.fullmatch(k)})
    known = store.read(
        "idempotency_keys", where={"principal": principal.name, "key": good_keys or [""]}
    )
    stored_keys = {str(r["key"]): r for r in known.to_dict("records")}
    first_of: dict[str, int] = {}
    pending: list[tuple[int, Report, _Checked]] = []
    for i, (key, body) in enumerate(items):
        try:
            if not KEY.fullmatch(key):
                raise BadInput(
                    "Idempotency-Key must be 1-200 printable ASCII characters without spaces",
                    field="Idempotency-Key",
                )
            if key in stored_keys or key in first_of:
                same = (
                    stored_keys[key]["request_hash"]
                    if key in stored_keys
                    else digests[first_of[key]]
                )
                if same != digests[i]:
                    raise IdempotencyKeyReused(
                        "this Idempotency-Key was already used with a different request body; "
                        "use a new key for a new report"
                    )
                if key in stored_keys:
                    row = stored_keys[key]
                    if row["response"] is None or pd.isna(row["response"]):
                        raise ConcurrentUpdate(
                            "the request with this Idempotency-Key is still running; retry"
                        )
                    doc = dict(json.loads(str(row["response"])))
                    results[i] = (int(row["status_code"]), doc, True)
                continue  # an earlier item of this batch: filled in below
            first_of[key] = i
            report = parse_report(body, taxonomy=tax)
            checked = _check_report(
                store, report, principal=principal, when=when, rules=rules, locator=locator
            )
            pending.append((i, report, checked))
        except (StoreUnavailable, StatementTimeout):
            raise  # the whole batch: retrying it stores each report once
        except GridmapError as exc:
            results[i] = exc
            if first_of.get(key) == i:
                del first_of[key]  # a failed report claims nothing: a later item may
    if pending:
        _store_batch(
            store,
            pending,
            results,
            [items[i][0] for i, *_ in pending],
            [digests[i] for i, *_ in pending],
            principal=principal,
            rules=rules,
            when=when,
        )
    for i, (key, _) in enumerate(items):
        if results[i] is None:  # a repeat of an earlier item of this batch
            first = results[first_of[key]]
            assert first is not None
            results[i] = first if isinstance(first, GridmapError) else (first[0], first[1], True)
    return [r for r in results if r is not None]


def _store_batch(
    store: Store,
    pending: list[tuple[int, Report, _Checked]],
    results: list[BatchResult | None],
    keys: list[str],
    digests: list[str],
    *,
    principal: Principal,
    rules: IntakeRules,
    when: pd.Timestamp,
) -> None:
    """Duplicates, then claims, events, audit and answers of the checked reports, in bulk."""
    tax, radius_m, days = rules.tax, rules.duplicate_radius_m, rules.duplicate_days
    reports = [p[1] for p in pending]
    lons = np.array([r.location.lon for r in reports])
    lats = np.array([r.location.lat for r in reports])
    pad = _degrees_box(float(lons.mean()), float(lats.mean()), radius_m)
    half_w, half_h = (pad[2] - pad[0]) / 2 * 2, (pad[3] - pad[1]) / 2 * 2
    box = (
        max(float(lons.min()) - half_w, -180.0),
        max(float(lats.min()) - half_h, -90.0),
        min(float(lons.max()) + half_w, 180.0),
        min(float(lats.max()) + half_h, 90.0),
    )
    since = when - pd.Timedelta(days=days)
    near = store.read(  # one indexed query for the whole batch
        "events",
        bbox=box,
        where={
            "category": sorted({r.category for r in reports}),
            "status": sorted(OPEN_STATES),
            "reported_at": Cmp(">=", since.to_pydatetime()),
        },
    )
    by_cat: dict[str, tuple[list[float], list[float], list[tuple[int, int]], list[Any]]] = {}
    if not near.empty:
        assert isinstance(near, gpd.GeoDataFrame)
        for cat, x, y, eid, dup in zip(
            near["category"],
            near.geometry.x,
            near.geometry.y,
            near["id"],
            near["duplicate_of"],
            strict=True,
        ):
            xs, ys, order, target = by_cat.setdefault(str(cat), ([], [], [], []))
            xs.append(float(x))
            ys.append(float(y))
            order.append((0, int(eid)))
            target.append(("id", int(dup) if pd.notna(dup) else int(eid)))
    dups: list[Any] = []  # ("id", event id) | ("batch", position in pending) | None
    for n, r in enumerate(reports):
        xs, ys, order, target = by_cat.setdefault(r.category, ([], [], [], []))
        hit = _nearest_duplicate(
            r.location.lon, r.location.lat, np.array(xs), np.array(ys), order, radius_m
        )
        dups.append(None if hit is None else target[hit])
        # later reports of the batch may duplicate this one (ids follow stored ones)
        xs.append(r.location.lon)
        ys.append(r.location.lat)
        order.append((1, n))
        target.append(dups[-1] if dups[-1] is not None else ("batch", n))
    rows = [
        _event_row(
            r,
            p[2],
            principal=principal,
            tax=tax,
            duplicate=d[1] if d is not None and d[0] == "id" else None,
            synthetic=False,
        )
        for r, p, d in zip(reports, pending, dups, strict=True)
    ]
    source_ids = [str(row["source_id"]) for row in rows]
    claims = pd.DataFrame(
        {
            "source_key": [
                "idem:" + hashlib.sha256(f"{principal.name}\x1f{k}".encode()).hexdigest()
                for k in keys
            ],
            "principal": principal.name,
            "key": keys,
            "request_hash": digests,
            "created_at": when,
        }
    )
    with store.transaction():
        if store.write("idempotency_keys", claims).inserted != len(claims):
            raise ConcurrentUpdate(
                "another request is storing reports with some of these Idempotency-Keys; retry"
            )
        store.write("events", _event_frame(rows, reports))
        stored = store.read("events", where={"source": "api", "source_id": source_ids})
        ids = dict(zip(stored["source_id"], stored["id"].astype(int), strict=True))
        event_ids = [int(ids[s]) for s in source_ids]
        final = [None if d is None else (d[1] if d[0] == "id" else event_ids[d[1]]) for d in dups]
        late = [
            (e, f) for e, f, d in zip(event_ids, final, dups, strict=True) if d and d[0] == "batch"
        ]
        if late:
            store.update(
                "events",
                pd.DataFrame({"id": [e for e, _ in late], "duplicate_of": [f for _, f in late]}),
            )
            stored = store.read("events", where={"source": "api", "source_id": source_ids})
        records = pd.DataFrame(
            [
                _transition_record(
                    e, r, principal=principal, when=when, duplicate=f, edge=p[2].edge
                )
                for e, r, f, p in zip(event_ids, reports, final, pending, strict=True)
            ]
        )
        store.write("event_transitions", records)
        webhooks.enqueue_many(store, stored, records)  # outbox, same transaction
        by_id = {int(r["id"]): r for _, r in stored.iterrows()}
        rows_out = [{str(k): v for k, v in by_id[e].to_dict().items()} for e in event_ids]
        hide_foreign_duplicates(store, rows_out, principal=principal)
        docs = [event_document(r, principal=principal, taxonomy=tax) for r in rows_out]
        claimed = store.read("idempotency_keys", where={"principal": principal.name, "key": keys})
        claim_id = dict(zip(claimed["key"], claimed["id"].astype(int), strict=True))
        store.update(
            "idempotency_keys",
            pd.DataFrame(
                {
                    "id": [claim_id[k] for k in keys],
                    "status_code": 201,
                    "response": [json.dumps(d, ensure_ascii=False) for d in docs],
                    "event_id": event_ids,
                }
            ),
        )
    for p, doc in zip(pending, docs, strict=True):
        results[p[0]] = (201, doc, False)
