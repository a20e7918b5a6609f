"""Reading events and population from the store for analytics: filters, scope, counts per cell.

What this module owns:

- **Filters and scope** — :class:`EventQuery` (category, status, channel, time
  window, area, bbox; checked against the vocabularies) and :func:`scope_prefixes`
  (the principal's areas narrowed to the area asked for).
- **Counts per cell in the store** — :func:`event_cell_counts` counts events per H3
  cell with a ``GROUP BY`` over the ``h3_r7`` … ``h3_r11`` cells each event carries
  (filled on write by :func:`gridmap.geo.h3cells.point_cells`, migration 011);
  only rows without cells travel to Python, where
  :func:`gridmap.analytics.binning.bin_counts` bins them. :func:`fill_event_cells`
  backfills those cells.
- **Points** — :func:`read_event_points` fetches coordinates and the few columns
  needed where each event matters (emerging hot spots), and
  :func:`read_population_points` a point inside each building with its residents
  and households (the denominators of rates).

Every filter runs in the store, limited to the principal's areas by a prefix filter
on ``grid_code`` (and, on PostGIS, by row-level security as well); duplicates folded
into another event (status ``merged``) are left out unless asked for. Heat maps
(:mod:`gridmap.analytics.heat`) and hot spots (:mod:`gridmap.analytics.hotspots`)
read through here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import shapely

from gridmap.analytics.binning import bin_counts, cell_ints
from gridmap.common.errors import BadInput
from gridmap.common.model import EVENT_CATEGORIES
from gridmap.events.intake import CHANNELS
from gridmap.events.states import OPEN_STATES, STATES
from gridmap.geo.h3cells import cell_column, cell_strings, check_resolution, point_cells
from gridmap.security.access import Principal
from gridmap.storage import AllOf, Cmp, Prefix, Store, where_sql

__all__ = [
    "EventQuery",
    "event_cell_counts",
    "fill_event_cells",
    "read_event_points",
    "read_population_points",
    "scope_prefixes",
]


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class EventQuery:
    """Filters of a heat-map or hot-spot request (all optional, combined with AND).

    Parameters
    ----------
    category, status, channel : str, optional
        Exact values (checked against the vocabularies).
    start, end : pandas.Timestamp, optional
        Time window on ``reported_at``: ``start <= t < end`` (time-zone aware).
    area : str, optional
        An admin unit or grid code (6, 9, 12 or 15 digits): events whose
        grid code starts with it.
    bbox : tuple of 4 floats, optional
        WGS84 (minx, miny, maxx, maxy).

    Examples
    --------
    >>> EventQuery(category="dispute").categories
    ('dispute',)
    """

    category: str | None = None
    status: str | None = None
    channel: str | None = None
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None
    area: str | None = None
    bbox: tuple[float, float, float, float] | None = None

    def __post_init__(self) -> None:
        if self.category is not None and self.category not in EVENT_CATEGORIES:
            known = ", ".join(EVENT_CATEGORIES)
            raise BadInput(
                f"unknown category {self.category[:40]!r}; one of: {known}", field="category"
            )
        if self.status is not None and self.status not in STATES:
            raise BadInput(f"unknown status {self.status[:40]!r}", field="status")
        if self.channel is not None and self.channel not in CHANNELS:
            known = ", ".join(CHANNELS)
            raise BadInput(
                f"unknown channel {self.channel[:40]!r}; one of: {known}", field="channel"
            )
        if self.area is not None and not (
            self.area.isascii() and self.area.isdigit() and len(self.area) in (6, 9, 12, 15)
        ):
            raise BadInput("area must be an admin unit or grid code of 6–15 digits", field="area")
        for name in ("start", "end"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise BadInput(f"{name} needs a time zone", field=name)
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise BadInput("from must be earlier than to", field="from")

    @property
    def categories(self) -> tuple[str, ...] | None:
        """The categories selected (``None``: all)."""
        return None if self.category is None else (self.category,)


def scope_prefixes(principal: Principal, area: str | None) -> tuple[str, ...]:
    """Code prefixes a query may read: the principal's areas narrowed to *area*.

    Examples
    --------
    >>> p = Principal("li", "community_staff", ("990100001001",))
    >>> scope_prefixes(p, "990100001001003"), scope_prefixes(p, "990100002")
    (('990100001001003',), ())
    >>> scope_prefixes(p, "990100001")
    ('990100001001',)
    """
    mine = tuple(principal.areas)
    if area is None:
        return mine
    if principal.covers(area):
        return (area,)
    return tuple(a for a in mine if a.startswith(area))


@dataclass(frozen=True)
class _Rows:
    """Which rows of a layer a query reads: ``where`` filters, a bbox on *point*, extra SQL."""

    where: Mapping[str, Any]
    bbox: Any = None
    extra: str = ""
    point: str = "geometry"


def _select(
    store: Store,
    layer: str,
    columns: str,
    rows: _Rows,
    *,
    select_params: Sequence[Any] = (),
    tail: str = "",
) -> list[tuple[Any, ...]]:
    from gridmap.common.model import layer_schema

    ph = "?" if store.dialect == "duckdb" else "%s"
    clause, params = where_sql(layer_schema(layer), rows.where, placeholder=ph)
    parts = [clause.removeprefix(" WHERE ")] if clause else []
    if rows.extra:
        parts.append(rows.extra)
    bbox, point = rows.bbox, rows.point
    if bbox is not None:
        parts.append(
            f"ST_X({point}) >= {ph} AND ST_X({point}) <= {ph} "
            f"AND ST_Y({point}) >= {ph} AND ST_Y({point}) <= {ph}"
        )
        params += [bbox[0], bbox[2], bbox[1], bbox[3]]
    sql = f"SELECT {columns.replace('{ph}', ph)} FROM {layer}"
    if parts:
        sql += " WHERE " + " AND ".join(f"({p})" for p in parts)
    sql += tail
    return store.sql(sql, [*select_params, *params])  # type: ignore[attr-defined, no-any-return]


def _event_rows(query: EventQuery, prefixes: tuple[str, ...]) -> _Rows:
    """The events an event query reads: ``where`` filters, bbox and the extra SQL condition."""
    where: dict[str, Any] = {"grid_code": Prefix(prefixes)}
    for col in ("category", "status", "channel"):
        value = getattr(query, col)
        if value is not None:
            where[col] = value
    bounds = []
    if query.start is not None:
        bounds.append(Cmp(">=", query.start.to_pydatetime()))
    if query.end is not None:
        bounds.append(Cmp("<", query.end.to_pydatetime()))
    if bounds:
        where["reported_at"] = AllOf(tuple(bounds))
    extra = "" if query.status is not None else "status IS NULL OR status <> 'merged'"
    return _Rows(where, query.bbox, extra)


def read_event_points(store: Store, query: EventQuery, *, principal: Principal) -> pd.DataFrame:
    """Coordinates, status, grid code and time of the events *principal* may see.

    Only the columns needed are read and every filter runs in the store; the
    principal's areas are applied as a prefix filter on ``grid_code`` (and,
    on PostGIS, by row-level security as well). Duplicates folded into another
    event (status ``merged``) are left out unless asked for.

    Returns
    -------
    pandas.DataFrame
        ``lon``, ``lat``, ``status``, ``grid_code``, ``reported_at``.

    Examples
    --------
    >>> from gridmap.storage import open_store
    >>> from gridmap.security.access import SYSTEM
    >>> read_event_points(open_store(":memory:", migrate=True), EventQuery(),
    ...                   principal=SYSTEM).columns.tolist()
    ['lon', 'lat', 'status', 'grid_code', 'reported_at']
    """
    columns = ["lon", "lat", "status", "grid_code", "reported_at"]
    prefixes = scope_prefixes(principal, query.area)
    if not prefixes:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in columns})
    select = "ST_X(geometry), ST_Y(geometry), status, grid_code, reported_at"
    with store.scoped(prefixes):
        rows = _select(store, "events", select, _event_rows(query, prefixes))
    frame = pd.DataFrame.from_records(rows, columns=columns)
    frame["lon"] = frame["lon"].astype("float64")
    frame["lat"] = frame["lat"].astype("float64")
    frame["reported_at"] = pd.to_datetime(frame["reported_at"], utc=True)
    return frame


# --------------------------------------------------------------------------- pre-binned cells


def _merge_counts(parts: Sequence[pd.DataFrame]) -> pd.DataFrame:
    filled = [p for p in parts if len(p)]
    if not filled:
        return pd.DataFrame(
            {
                "h3": pd.Series(dtype=object),
                "count": pd.Series(dtype="int64"),
                "open": pd.Series(dtype="int64"),
            }
        )
    sums = pd.concat(filled, ignore_index=True).groupby("cell", sort=True)[["count", "open"]].sum()
    return pd.DataFrame(
        {
            "h3": cell_strings(sums.index.to_numpy(dtype="uint64")),
            "count": sums["count"].to_numpy("int64"),
            "open": sums["open"].to_numpy("int64"),
        }
    )


def event_cell_counts(
    store: Store,
    query: EventQuery,
    *,
    principal: Principal,
    resolution: int,
    open_states: Iterable[str] = OPEN_STATES,
) -> pd.DataFrame:
    """Events per H3 cell, counted in the store: the same answer as :func:`bin_counts`.

    Rows with stored cells (``h3_r7`` … ``h3_r11``, filled on write) are
    counted by a ``GROUP BY`` on the column of *resolution*, so only one row
    per cell leaves the store. Rows without (written before migration 011
    and not yet backfilled by :func:`fill_event_cells`) send only their
    longitude, latitude and status to Python, where they are binned; both
    parts are added up. Filters and the principal's areas run in the store
    (and row-level security on PostGIS).

    Returns
    -------
    pandas.DataFrame
        ``h3`` (hex str), ``count``, ``open``, one row per non-empty cell, by cell.

    Examples
    --------
    >>> from gridmap.storage import open_store
    >>> from gridmap.security.access import SYSTEM
    >>> event_cell_counts(open_store(":memory:", migrate=True), EventQuery(),
    ...                   principal=SYSTEM, resolution=9).columns.tolist()
    ['h3', 'count', 'open']
    """
    resolution = check_resolution(resolution)
    prefixes = scope_prefixes(principal, query.area)
    if not prefixes:
        return _merge_counts([])
    events = _event_rows(query, prefixes)
    states = sorted(set(open_states))
    marks = ", ".join(["{ph}"] * len(states)) or "NULL"
    column = cell_column(resolution)
    counted = f"{column}, count(*), count(*) FILTER (WHERE status IN ({marks}))"
    with store.scoped(prefixes):
        rows = _select(store, "events", counted, events, select_params=states, tail=" GROUP BY 1")
        # One scan in the usual case: a NULL group means rows without stored cells.
        missing = any(r[0] is None for r in rows)
        rest = (
            _select(
                store,
                "events",
                "ST_X(geometry), ST_Y(geometry), status",
                dataclasses.replace(
                    events,
                    extra=f"({events.extra}) AND {column} IS NULL"
                    if events.extra
                    else f"{column} IS NULL",
                ),
            )
            if missing
            else []
        )
    pushed = pd.DataFrame.from_records(
        [r for r in rows if r[0] is not None], columns=["cell", "count", "open"]
    )
    pushed["cell"] = pushed["cell"].astype("int64").astype("uint64")
    parts = [pushed]
    if rest:
        pts = pd.DataFrame.from_records(rest, columns=["lon", "lat", "status"])
        binned = bin_counts(
            pts.astype({"lon": "float64", "lat": "float64"}), resolution, open_states=states
        )
        binned.insert(0, "cell", cell_ints(binned.pop("h3").to_numpy()))
        parts.append(binned)
    return _merge_counts(parts)


def fill_event_cells(store: Store, *, batch: int = 200_000) -> int:
    """Backfill the ``h3_r*`` cells of events stored without them; return how many were filled.

    Stores fill the cells on write; this covers rows written before migration
    011. Idempotent: rows that have their cells are not touched.

    Examples
    --------
    >>> from gridmap.storage import open_store
    >>> fill_event_cells(open_store(":memory:", migrate=True))
    0
    """
    done, last = 0, None
    while True:
        after = "" if last is None else f" AND id > {int(last)}"
        rows = store.sql(  # type: ignore[attr-defined]
            "SELECT id, ST_AsBinary(geometry) FROM events "
            f"WHERE h3_r11 IS NULL{after} ORDER BY id LIMIT {int(batch)}"
        )
        if not rows:
            return done
        ids = np.array([r[0] for r in rows], dtype="int64")
        geoms = shapely.from_wkb(np.array([bytes(r[1]) for r in rows], dtype=object))
        cells = point_cells(geoms)
        ok = cells["h3_r11"].notna().to_numpy()
        if ok.any():
            update = cells[ok].reset_index(drop=True)
            update.insert(0, "id", ids[ok])
            done += store.update("events", update)
        last = int(ids[-1])
        if len(rows) < batch:
            return done


def read_population_points(
    store: Store, query: EventQuery, *, principal: Principal
) -> pd.DataFrame:
    """A point inside each building with its residents and households, in the same scope.

    Returns
    -------
    pandas.DataFrame
        ``lon``, ``lat``, ``residents``, ``households``.

    Examples
    --------
    >>> from gridmap.storage import open_store
    >>> from gridmap.security.access import SYSTEM
    >>> read_population_points(open_store(":memory:", migrate=True), EventQuery(),
    ...                        principal=SYSTEM).empty
    True
    """
    columns = ["lon", "lat", "residents", "households"]
    prefixes = scope_prefixes(principal, query.area)
    if not prefixes:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in columns})
    select = (
        "ST_X(ST_PointOnSurface(geometry)), ST_Y(ST_PointOnSurface(geometry)), "
        "residents, households"
    )
    with store.scoped(prefixes):
        rows = _select(
            store,
            "buildings",
            select,
            _Rows({"grid_code": Prefix(prefixes)}, query.bbox, point="ST_PointOnSurface(geometry)"),
        )
    return pd.DataFrame.from_records(rows, columns=columns)
