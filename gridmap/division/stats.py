"""Per-grid statistics (网格统计) and the workload index (工作量指数).

For every grid in force: buildings, households and residents (majority-footprint
rule), area and street length in metres, events of the statistics period in
total and by first-level category, open events, key-area visits required per
day, and a workload index. Everything is computed with array operations
(``shapely.STRtree`` pairs, vectorized intersections, ``bincount``): joins and
clipping in WGS84, the coordinates the grids were drawn in, and measures in one
local metric CRS (:mod:`gridmap.geo.projection`); there is no loop over grids or rows.

:func:`grid_statistics` works on GeoDataFrames and returns a frame aligned to
the grids' index (momepy style); :func:`compute_grid_statistics` reads its inputs
from a store, :func:`refresh_grid_statistics` also writes the results as columns
of the ``grids`` layer (migration 009), so ``/collections/grids/items`` carries
them; :func:`statistics_table` reads them back, narrowed to a principal's areas.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import pyproj
import shapely

from gridmap.common.errors import BadInput, NotFound
from gridmap.common.model import EVENT_CATEGORIES, layer_schema
from gridmap.common.timeparse import parse_instant
from gridmap.division.assign import locate_in_grids
from gridmap.events.states import CLOSED_STATES
from gridmap.geo.projection import local_crs
from gridmap.security.access import ALL_AREAS
from gridmap.storage import Prefix, Store

__all__ = [
    "CATEGORY_COLUMNS",
    "STAT_COLUMNS",
    "TABLE_COLUMNS",
    "WorkloadWeights",
    "column_titles",
    "compute_grid_statistics",
    "grid_statistics",
    "refresh_grid_statistics",
    "statistics_table",
    "workload_index",
]

#: ``events_<category>`` column of each first-level event category.
CATEGORY_COLUMNS: dict[str, str] = {code: f"events_{code}" for code in EVENT_CATEGORIES}
#: The statistics columns of the ``grids`` layer written by :func:`refresh_grid_statistics`.
STAT_COLUMNS: tuple[str, ...] = (
    "households",
    "residents",
    "buildings",
    "area_m2",
    "street_length_m",
    "key_area_visits",
    "events_total",
    "events_open",
    *CATEGORY_COLUMNS.values(),
    "events_per_month",
    "workload_hours",
    "workload",
    "stats_from",
    "stats_at",
)
#: Columns of the statistics table (:func:`statistics_table`), in order.
TABLE_COLUMNS: tuple[str, ...] = ("code", "name", "community_code", *STAT_COLUMNS)

_INT_COLUMNS = ("households", "residents", "buildings", "events_total", "events_open")


@dataclass(frozen=True)
class WorkloadWeights:
    r"""Weights of the workload index, in hours of grid work per month.

    The workload of grid *g* in hours per month is

    .. math::

        h_g = w_h \cdot households_g + w_s \cdot street\_km_g
              + w_e \cdot events\_per\_month_g + w_k \cdot key\_area\_visits_g

    where ``key_area_visits`` is the sum, over the key areas (重点区域, 主要街道,
    重要路口, 重点场所) meeting the grid, of their required visits per day (a key
    area without a frequency counts once a day). The **workload index** is
    :math:`h_g / \tilde h`, with :math:`\tilde h` the median of :math:`h` over
    the grids of the same community, so the median grid of every community is
    1.0 (the mean is used when the median is 0; all grids get 1.0 when every
    grid's workload is 0). Only the ratios of the weights change the index; the
    defaults make :math:`h` read as hours per month:

    Parameters
    ----------
    household : float, default 0.05
        Hours per household per month: a door-knocking visit of 9 minutes each
        quarter (敲门行动).
    street_km : float, default 6.0
        Hours per kilometre of street per month: daily patrol on foot, about 22
        working days at 4 km/h.
    event : float, default 2.0
        Hours per event (verify, handle, inspect).
    key_area_visit : float, default 5.0
        Hours per month per required daily visit of a key area (10 minutes a day).

    Examples
    --------
    >>> float(WorkloadWeights().hours(300, 2.0, 10, 1.0))
    52.0
    """

    household: float = 0.05
    street_km: float = 6.0
    event: float = 2.0
    key_area_visit: float = 5.0

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not (np.isfinite(value) and value >= 0):
                raise BadInput(f"workload weight {name} must be a finite number ≥ 0", field=name)
        if not any(asdict(self).values()):
            raise BadInput("at least one workload weight must be positive", field="weights")

    @classmethod
    def parse(cls, text: str) -> WorkloadWeights:
        """Weights from ``"household=0.05,street_km=6,event=2,key_area_visit=5"`` (any subset).

        Examples
        --------
        >>> WorkloadWeights.parse("event=4, key_area_visit=0").event
        4.0
        """
        values: dict[str, float] = {}
        names = set(asdict(cls()))
        for part in (p.strip() for p in text.split(",")):
            if not part:
                continue
            name, sep, value = part.partition("=")
            name = name.strip()
            if not sep or name not in names:
                raise BadInput(
                    f"workload weights look like 'household=0.05,street_km=6', got {part[:40]!r}; "
                    f"weights: {', '.join(sorted(names))}",
                    field="weights",
                )
            try:
                values[name] = float(value)
            except ValueError:
                raise BadInput(f"weight {name} is not a number", field="weights") from None
        return cls(**values)

    def hours(
        self,
        households: npt.ArrayLike,
        street_km: npt.ArrayLike,
        events_per_month: npt.ArrayLike,
        key_area_visits: npt.ArrayLike,
    ) -> npt.NDArray[np.float64]:
        """Workload in hours per month (scalars or aligned arrays)."""
        return np.asarray(
            self.household * np.asarray(households, dtype=float)
            + self.street_km * np.asarray(street_km, dtype=float)
            + self.event * np.asarray(events_per_month, dtype=float)
            + self.key_area_visit * np.asarray(key_area_visits, dtype=float),
            dtype=float,
        )


def workload_index(hours: pd.Series, groups: pd.Series | None = None) -> pd.Series:
    """Hours divided by the median of their group (community): the median grid gets 1.0.

    Parameters
    ----------
    hours : pandas.Series
        Workload in hours per month (see :class:`WorkloadWeights`).
    groups : pandas.Series, optional
        Group of each row (community code), aligned to *hours*; one group if omitted.

    Returns
    -------
    pandas.Series
        float64, aligned to *hours*, named ``workload``.

    Examples
    --------
    >>> workload_index(pd.Series([10.0, 20.0, 40.0])).tolist()
    [0.5, 1.0, 2.0]
    >>> workload_index(pd.Series([0.0, 0.0, 6.0])).tolist()
    [0.0, 0.0, 3.0]
    """
    h = pd.to_numeric(hours, errors="coerce").astype("float64").fillna(0.0)
    g = pd.Series(0, index=h.index) if groups is None else groups.reindex(h.index)
    median = h.groupby(g).transform("median")
    mean = h.groupby(g).transform("mean")
    ref = median.where(median > 0, mean)
    out = (h / ref.where(ref > 0)).fillna(1.0)
    return out.rename("workload")


# --------------------------------------------------------------------------- pure


def _geoms(frame: gpd.GeoDataFrame | None) -> npt.NDArray[np.object_]:
    """The geometries of *frame* in WGS84, as an array (empty for no frame)."""
    if frame is None or frame.empty:
        return np.empty(0, dtype=object)
    series = frame.geometry if frame.crs is not None else frame.geometry.set_crs(4326)
    if series.crs.to_epsg() != 4326:
        series = series.to_crs(4326)
    return np.asarray(series.values, dtype=object)


def _metric(
    geoms: npt.NDArray[np.object_], crs: pyproj.CRS, measure: str
) -> npt.NDArray[np.float64]:
    """``area`` or ``length`` of WGS84 geometries, measured in the metric *crs*."""
    if len(geoms) == 0:
        return np.empty(0, dtype=np.float64)
    projected = gpd.GeoSeries(geoms, crs=4326).to_crs(crs)
    values = projected.area if measure == "area" else projected.length
    return np.asarray(values.to_numpy(dtype=float), dtype=np.float64)


def _numeric(frame: pd.DataFrame | None, column: str, default: float) -> npt.NDArray[np.float64]:
    if frame is None or frame.empty:
        return np.empty(0, dtype=float)
    if column not in frame:
        return np.full(len(frame), default, dtype=float)
    values = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    return np.asarray(values.fillna(default).to_numpy(dtype=float), dtype=np.float64)


def _code_order(grids: gpd.GeoDataFrame) -> npt.NDArray[np.intp]:
    """Positions of *grids* sorted by ``code`` (missing codes last; input order without codes).

    Handed to :func:`~gridmap.division.assign.locate_in_grids` in this order, its
    "first grid wins" is "smallest code wins", the rule of the batch paths.
    """
    if "code" not in grids:
        return np.arange(len(grids), dtype=np.intp)
    codes = grids["code"].astype("string")
    missing = codes.isna().to_numpy(dtype=bool)
    text = codes.fillna("").to_numpy(dtype=object)
    return np.asarray(np.lexsort((text, missing)), dtype=np.intp)


def _majority_grid(
    tree: shapely.STRtree,
    grids: npt.NDArray[np.object_],
    footprints: npt.NDArray[np.object_],
    crs: pyproj.CRS,
) -> npt.NDArray[np.int64]:
    """The grid holding the largest share of each footprint (-1 outside every grid).

    A footprint meeting a single grid goes to it without an intersection; the
    others compare the areas (in metres) of their intersections (ties and zero
    areas: the first grid).
    """
    n = len(footprints)
    out = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return out
    src, grid = tree.query(footprints, predicate="intersects")
    hits = np.bincount(src, minlength=n)
    single = hits[src] == 1
    out[src[single]] = grid[single]
    multi_src, multi_grid = src[~single], grid[~single]
    if len(multi_src):
        pieces = shapely.intersection(footprints[multi_src], grids[multi_grid])
        share = _metric(pieces, crs, "area")
        order = np.lexsort((multi_grid, -share, multi_src))
        s, g = multi_src[order], multi_grid[order]
        first = np.r_[True, s[1:] != s[:-1]]
        out[s[first]] = g[first]
    return out


def _sum_by(
    index: npt.NDArray[np.int64], values: npt.NDArray[np.float64], n: int
) -> npt.NDArray[np.float64]:
    keep = index >= 0
    return np.asarray(
        np.bincount(index[keep], weights=values[keep], minlength=n)[:n], dtype=np.float64
    )


def grid_statistics(
    grids: gpd.GeoDataFrame,
    *,
    buildings: gpd.GeoDataFrame | None = None,
    roads: gpd.GeoDataFrame | None = None,
    events: gpd.GeoDataFrame | None = None,
    key_areas: gpd.GeoDataFrame | None = None,
    at: pd.Timestamp | str | None = None,
    months: int = 12,
    weights: WorkloadWeights | None = None,
) -> pd.DataFrame:
    """Statistics of each grid, aligned to the index of *grids*.

    Parameters
    ----------
    grids : GeoDataFrame
        Grid polygons (any CRS; none means WGS84); ``community_code`` groups the
        workload normalisation (one group when absent); ``code`` orders the grids
        for events on a boundary (input order when absent).
    buildings : GeoDataFrame, optional
        Footprints with ``households`` and ``residents``. A building belongs to the
        grid that holds the largest share of its footprint (grids never cut a
        building, so this is the grid it lies in).
    roads : GeoDataFrame, optional
        Street lines, clipped to each grid and measured in metres.
    events : GeoDataFrame, optional
        Event points with ``category``, ``status`` and ``reported_at``; an event
        counts in the grid it lies in (so a redrawn grid counts the events on its
        ground); one on a grid boundary counts once, in the grid with the smallest
        ``code`` touching it (as where grids overlap). Duplicates (``duplicate_of``
        set) are left out.
    key_areas : GeoDataFrame, optional
        Key areas with ``visits_per_day``; one meeting several grids counts in each.
    at : pandas.Timestamp or str, optional
        End of the statistics period (default: now, UTC).
    months : int, default 12
        Length of the period: events reported in ``[at - months, at)`` are counted
        (``events_total``, ``events_<category>``, ``events_per_month``);
        ``events_open`` counts every event reported before *at* and still open.
    weights : WorkloadWeights, optional
        Weights of the workload (see :class:`WorkloadWeights` for the formula).

    Returns
    -------
    pandas.DataFrame
        The columns of :data:`STAT_COLUMNS`, one row per grid, index of *grids*.

    Examples
    --------
    >>> import shapely, geopandas as gpd
    >>> g = gpd.GeoDataFrame({"community_code": ["990100001001"] * 2},
    ...     geometry=[shapely.box(24.94, 60.17, 24.942, 60.171),
    ...               shapely.box(24.942, 60.17, 24.944, 60.171)], crs=4326)
    >>> b = gpd.GeoDataFrame({"households": [30], "residents": [60]},
    ...     geometry=[shapely.box(24.9405, 60.1702, 24.9415, 60.1708)], crs=4326)
    >>> r = gpd.GeoDataFrame(geometry=[shapely.LineString([(24.94, 60.1705), (24.944, 60.1705)])],
    ...     crs=4326)
    >>> s = grid_statistics(g, buildings=b, roads=r, at="2026-11-01T00:00Z")
    >>> s[["households", "buildings"]].values.tolist()
    [[30, 1], [0, 0]]
    >>> [round(v) for v in s["street_length_m"]], float(s["workload"].median())
    ([111, 111], 1.0)
    """
    if months <= 0:
        raise BadInput("months must be a positive number of months", field="months")
    weights = weights or WorkloadWeights()
    end = _utc(at)
    start = end - pd.DateOffset(months=int(months))
    n = len(grids)
    out = pd.DataFrame(index=grids.index)
    if n == 0:
        for col in STAT_COLUMNS:
            out[col] = pd.Series(dtype="float64")
        return out
    # Joins and clipping in WGS84, the coordinates the grids were drawn in (a street
    # along a shared grid edge lies exactly on it); measures in the local UTM zone.
    gw = _geoms(grids)
    crs = local_crs(grids.geometry if grids.crs is not None else grids.geometry.set_crs(4326))
    tree = shapely.STRtree(gw)
    by_code = _code_order(grids)

    # Buildings: majority footprint.
    b_grid = _majority_grid(tree, gw, _geoms(buildings), crs)
    out["households"] = _sum_by(b_grid, _numeric(buildings, "households", 0.0), n)
    out["residents"] = _sum_by(b_grid, _numeric(buildings, "residents", 0.0), n)
    out["buildings"] = np.bincount(b_grid[b_grid >= 0], minlength=n)[:n]

    # Area; street length: streets clipped to each grid (a street on the edge of two
    # grids belongs to both, as in patrol planning), in metres.
    out["area_m2"] = _metric(gw, crs, "area").round(1)
    rw = _geoms(roads)
    street = np.zeros(n)
    if len(rw):
        r_src, r_grid = tree.query(rw, predicate="intersects")
        pieces = _metric(shapely.intersection(rw[r_src], gw[r_grid]), crs, "length")
        street = _sum_by(r_grid, pieces, n)
    out["street_length_m"] = street.round(1)

    # Key areas × required frequency.
    kw = _geoms(key_areas)
    visits = np.zeros(n)
    if len(kw):
        k_src, k_grid = tree.query(kw, predicate="intersects")
        per_day = _numeric(key_areas, "visits_per_day", 1.0)
        visits = _sum_by(k_grid, per_day[k_src], n)
    out["key_area_visits"] = visits

    _event_counts(out, gw[by_code], by_code, events, start=start, end=end)
    out["events_per_month"] = out["events_total"] / float(months)

    hours = weights.hours(
        out["households"],
        out["street_length_m"] / 1000.0,
        out["events_per_month"],
        out["key_area_visits"],
    )
    out["workload_hours"] = np.round(hours, 2)
    groups = grids.get("community_code", None)
    out["workload"] = workload_index(pd.Series(hours, index=grids.index), groups)
    out["stats_from"] = start
    out["stats_at"] = end
    for col in (*_INT_COLUMNS, *CATEGORY_COLUMNS.values()):
        out[col] = np.round(out[col].to_numpy(dtype=float)).astype("int64")
    return out[list(STAT_COLUMNS)]


def _event_counts(
    out: pd.DataFrame,
    grids: npt.NDArray[np.object_],
    position: npt.NDArray[np.intp],
    events: gpd.GeoDataFrame | None,
    *,
    start: pd.Timestamp,
    end: pd.Timestamp,
) -> None:
    """Event columns of *out*: each event in the grid it lies in.

    *grids* are the WGS84 polygons sorted by code, *position* their rows in *out*.
    An event on a grid boundary counts in a grid touching it (``intersects``),
    the smallest code where several do (a shared edge, overlapping grids).
    """
    n = len(out)
    for col in ("events_total", "events_open", *CATEGORY_COLUMNS.values()):
        out[col] = np.zeros(n, dtype="int64")
    if events is None or events.empty:
        return
    ev = events
    if "duplicate_of" in ev:
        ev = ev[pd.to_numeric(ev["duplicate_of"], errors="coerce").isna().to_numpy()]
    reported = pd.to_datetime(ev.get("reported_at"), utc=True, errors="coerce")
    if not isinstance(reported, pd.Series):
        return
    before = (reported < end).fillna(False).to_numpy(dtype=bool)
    ev, reported = ev[before], reported[before]
    if ev.empty:
        return
    found = locate_in_grids(_geoms(ev), grids, predicate="intersects")
    e_grid = np.where(found >= 0, position[found], -1)
    status = ev["status"].astype("string") if "status" in ev else pd.Series("", index=ev.index)
    is_open = (~status.isin(sorted(CLOSED_STATES))).fillna(True).to_numpy(dtype=bool)
    out["events_open"] = np.bincount(e_grid[(e_grid >= 0) & is_open], minlength=n)[:n]
    in_period = (reported >= start).to_numpy(dtype=bool) & (e_grid >= 0)
    out["events_total"] = np.bincount(e_grid[in_period], minlength=n)[:n]
    category = ev["category"].astype("string") if "category" in ev else None
    if category is None:
        return
    for code, col in CATEGORY_COLUMNS.items():
        hit = in_period & (category == code).fillna(False).to_numpy(dtype=bool)
        out[col] = np.bincount(e_grid[hit], minlength=n)[:n]


def _utc(at: pd.Timestamp | str | None) -> pd.Timestamp:
    """The statistics time in UTC (now when absent), read by the one time parser."""
    if at is None:
        return pd.Timestamp.now(tz="UTC")
    return parse_instant(at, field="at", tz="UTC")


# --------------------------------------------------------------------------- store


def _frame(x: gpd.GeoDataFrame | pd.DataFrame) -> gpd.GeoDataFrame:
    assert isinstance(x, gpd.GeoDataFrame)
    return x


def _check_code(value: str | None, digits: int, field: str) -> None:
    if value is not None and not (len(value) == digits and value.isascii() and value.isdigit()):
        raise BadInput(f"{field} code must be {digits} digits, got {value[:40]!r}", field=field)


def _reaches(areas: Sequence[str], code: str) -> bool:
    """Whether a principal with *areas* sees *code* or something inside it."""
    return any(code.startswith(a) or a.startswith(code) for a in areas)


def _current(
    store: Store, *, community: str | None, grid: str | None, areas: Sequence[str]
) -> gpd.GeoDataFrame:
    """Grids in force of *community* / *grid* within *areas* (``NotFound`` if none may be)."""
    _check_code(community, 12, "community")
    _check_code(grid, 15, "grid")
    for code in (community, grid):
        if code is not None and not _reaches(areas, code):
            raise NotFound(f"{'grid' if code == grid else 'community'} {code} not found")
    if community is not None and not store.count(
        "admin_units", where={"code": community, "level": "community"}
    ):
        raise NotFound(f"community {community} not found")
    where: dict[str, object] = {"valid_to": None, "code": Prefix(tuple(areas))}
    if community is not None:
        where["community_code"] = community
    grids = _frame(store.read("grids", where=where))
    if grid is not None:
        grids = grids[(grids["code"] == grid).to_numpy()]
        if grids.empty:
            raise NotFound(f"grid {grid} not found")
    return grids.sort_values("code").reset_index(drop=True)


def compute_grid_statistics(
    store: Store,
    *,
    community: str | None = None,
    areas: Sequence[str] = ALL_AREAS,
    at: pd.Timestamp | str | None = None,
    months: int = 12,
    weights: WorkloadWeights | None = None,
) -> gpd.GeoDataFrame:
    """Statistics of the grids in force (of *community*, within *areas*), from *store*.

    Buildings, roads, events and key areas are read once, by the bounding box of
    the communities involved, and counted in the grid they lie in (buildings: the
    grid holding most of the footprint, neighbours' grids included); only the
    grids within *areas* are returned. The workload index is normalised over all
    grids in force of each community, so every caller gets the same figures.

    Returns
    -------
    GeoDataFrame
        ``id``, ``code``, ``name``, ``community_code``, the columns of
        :data:`STAT_COLUMNS` and the grid polygons, sorted by code.

    Raises
    ------
    gridmap.common.errors.NotFound
        Unknown community, or one outside *areas*.
    gridmap.common.errors.BadInput
        A malformed community code.

    Examples
    --------
    >>> from gridmap.storage import open_store
    >>> len(compute_grid_statistics(open_store(":memory:", migrate=True)))
    0
    """
    target = _current(store, community=community, grid=None, areas=areas)
    base = target[["id", "code", "name", "community_code", "geometry"]]
    if target.empty:
        empty = pd.DataFrame(columns=[*base.columns, *STAT_COLUMNS])
        return gpd.GeoDataFrame(empty, geometry="geometry", crs=4326)
    # Every grid of the communities involved (the workload index is relative to the
    # community) and the grids in force around them (a building straddling into a
    # neighbour's grid goes to whichever holds more of it): results only for *target*.
    communities = sorted({str(c) for c in target["community_code"]})
    whole = _frame(store.read("grids", where={"community_code": communities, "valid_to": None}))
    bbox = tuple(float(v) for v in whole.total_bounds)
    around = _frame(store.read("grids", bbox=bbox, where={"valid_to": None}))  # type: ignore[arg-type]
    grids = pd.concat([whole, around[~around["id"].isin(whole["id"])]], ignore_index=True)
    grids = gpd.GeoDataFrame(grids, geometry="geometry", crs=4326)
    layers = {
        name: _frame(store.read(name, bbox=bbox))  # type: ignore[arg-type]
        for name in ("buildings", "roads", "events", "key_areas")
    }
    stats = grid_statistics(
        grids,
        buildings=layers["buildings"],
        roads=layers["roads"],
        events=layers["events"],
        key_areas=layers["key_areas"],
        at=at,
        months=months,
        weights=weights,
    )
    stats.index = grids["id"].to_numpy()
    stats = stats.loc[base["id"].to_numpy()].reset_index(drop=True)
    out = pd.concat([base.drop(columns="geometry"), stats, base[["geometry"]]], axis=1)
    return gpd.GeoDataFrame(out, geometry="geometry", crs=4326)


def refresh_grid_statistics(
    store: Store,
    *,
    community: str | None = None,
    at: pd.Timestamp | str | None = None,
    months: int = 12,
    weights: WorkloadWeights | None = None,
) -> gpd.GeoDataFrame:
    """Compute the statistics of the grids in force and store them on the ``grids`` layer.

    One community, or every community when *community* is None (the workload
    index is normalised per community either way). Writes in one transaction;
    closed grids (history) keep the figures of their time.

    Returns
    -------
    GeoDataFrame
        What was written (see :func:`compute_grid_statistics`).

    Examples
    --------
    >>> from gridmap.storage import open_store
    >>> refresh_grid_statistics(open_store(":memory:", migrate=True)).empty
    True
    """
    stats = compute_grid_statistics(
        store, community=community, at=at, months=months, weights=weights
    )
    if len(stats):
        update = pd.DataFrame(stats[["id", *STAT_COLUMNS]])
        with store.transaction():
            store.update("grids", update)
    return stats


def statistics_table(
    store: Store,
    *,
    community: str | None = None,
    grid: str | None = None,
    areas: Sequence[str] = ALL_AREAS,
) -> pd.DataFrame:
    """The stored statistics of the grids in force, narrowed to *areas*.

    Parameters
    ----------
    store : Store
        Where the grids are.
    community : str, optional
        12-digit community code (must exist, and lie in or contain one of *areas*).
    grid : str, optional
        15-digit grid code (a grid in force within *areas*).
    areas : sequence of str
        The principal's code prefixes (``("",)``: everything).

    Returns
    -------
    pandas.DataFrame
        The columns of :data:`TABLE_COLUMNS`, one row per grid, sorted by code.

    Raises
    ------
    gridmap.common.errors.NotFound
        Unknown community or grid, or one outside *areas* (the same answer).
    gridmap.common.errors.BadInput
        Malformed codes.

    Examples
    --------
    >>> from gridmap.storage import open_store
    >>> list(statistics_table(open_store(":memory:", migrate=True)).columns[:3])
    ['code', 'name', 'community_code']
    """
    grids = _current(store, community=community, grid=grid, areas=areas)
    return pd.DataFrame(grids.reindex(columns=list(TABLE_COLUMNS))).reset_index(drop=True)


def column_titles() -> dict[str, tuple[str, str]]:
    """zh-CN and English titles of the statistics table's columns.

    Examples
    --------
    >>> column_titles()["workload"]
    ('工作量指数', 'Workload index')
    """
    schema = layer_schema("grids")
    return {c: (schema.column(c).title_zh, schema.column(c).title_en) for c in TABLE_COLUMNS}
