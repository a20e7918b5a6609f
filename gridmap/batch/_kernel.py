"""The computation every batch path shares: partial aggregates of one chunk, and their sum.

A chunk of events (any number of rows) becomes two small tables whose size
depends on the grids and H3 cells touched, never on the number of events:

- ``cells``: events per (assigned ``grid_code``, H3 ``cell``): ``count``, ``open``;
- ``kpi``: events per (assigned ``grid_code``, ``month``): ``reported``, ``closed``.

Partials add up (:func:`combine`), so the single-process path folds them
chunk by chunk, the Dask path reduces them in a tree, and the DuckDB path
computes the same two tables in SQL. :func:`finish` turns the sums into the
results (:class:`BatchResult`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridmap.analytics.hotspots import hot_spots, study_cells
from gridmap.common.errors import BadInput
from gridmap.division.assign import PointGridIndex
from gridmap.events.states import OPEN_STATES
from gridmap.geo.h3cells import cell_strings, check_resolution, latlng_to_cells

__all__ = [
    "CELL_KEYS",
    "KPI_KEYS",
    "BatchResult",
    "GridIndex",
    "Partial",
    "combine",
    "finish",
    "partial_aggregates",
]

CELL_KEYS = ["grid_code", "cell"]
KPI_KEYS = ["grid_code", "month"]
_OPEN = sorted(OPEN_STATES)


@dataclass(frozen=True)
class GridIndex:
    """Grid polygons ready for point-in-polygon joins (small: broadcast to every worker).

    Assignment is :class:`gridmap.division.assign.PointGridIndex`, the one
    point → grid rule of gridmap, over the grids in the order of :attr:`codes`:
    its "first grid wins" is "smallest code wins" because :meth:`from_frame`
    sorts the codes.

    Attributes
    ----------
    codes : numpy.ndarray of str
        Grid codes, sorted, so that a point in two overlapping grids gets the
        smallest code on every path.
    geometries : numpy.ndarray of shapely geometries
        The grid polygons (WGS84), in the order of *codes*.
    """

    codes: np.ndarray
    geometries: np.ndarray
    _points: PointGridIndex = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Built once per index and reused by every chunk (the DuckDB path calls
        # assign_xy once per vector of 2,048 rows).
        object.__setattr__(self, "_points", PointGridIndex(self.geometries))

    def __reduce__(self) -> tuple[Any, ...]:
        # Ship codes and polygons only (the raster can be tens of MB): a worker
        # receiving a broadcast copy builds its own raster once.
        return (type(self), (self.codes, self.geometries))

    @classmethod
    def from_frame(cls, grids: gpd.GeoDataFrame) -> GridIndex:
        """Build the index from a ``grids`` layer frame (``code`` and geometry).

        Examples
        --------
        >>> g = gpd.GeoDataFrame({"code": ["b", "a"]},
        ...                      geometry=[shapely.box(1, 0, 2, 1), shapely.box(0, 0, 1, 1)])
        >>> GridIndex.from_frame(g).codes.tolist()
        ['a', 'b']
        """
        if "code" not in grids.columns:
            raise BadInput("grids need a 'code' column", field="grids")
        ok = grids["code"].notna().to_numpy() & ~shapely.is_missing(grids.geometry.values)
        sub = grids.loc[ok]
        order = np.argsort(sub["code"].astype(str).to_numpy(), kind="stable")
        codes = sub["code"].astype(str).to_numpy()[order].astype(object)
        geoms = np.asarray(sub.geometry.values, dtype=object)[order]
        return cls(codes, geoms)

    def assign(self, points: np.ndarray) -> np.ndarray:
        """The grid code whose interior holds each point (``None`` outside every grid).

        Examples
        --------
        >>> g = GridIndex(np.array(["a"], dtype=object), np.array([shapely.box(0, 0, 1, 1)]))
        >>> g.assign(shapely.points([0.5, 3.0], [0.5, 3.0])).tolist()
        ['a', None]
        """
        pts = np.asarray(points, dtype=object)
        return self.codes_of(self.assign_xy(shapely.get_x(pts), shapely.get_y(pts)))

    def codes_of(self, index: np.ndarray) -> np.ndarray:
        """Grid codes of grid positions (``-1`` → ``None``)."""
        out = np.full(len(index), None, dtype=object)
        ok = index >= 0
        out[ok] = self.codes[index[ok]]
        return out

    def assign_xy(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Position (in :attr:`codes`) of the grid whose interior holds each point; ``-1`` if none.

        No point geometry is built except for the few points near a grid
        boundary that need an exact test. Where grids overlap a point keeps the
        first grid in the order of :attr:`codes` (the smallest code). Interior
        only, as ``ST_Within`` (``predicate="within"``): a point on a boundary,
        e.g. on the edge two grids share, belongs to no grid.

        Examples
        --------
        >>> g = GridIndex(np.array(["a", "b"], dtype=object),
        ...               np.array([shapely.box(0, 0, 2, 2), shapely.box(1, 1, 3, 3)]))
        >>> g.assign_xy(np.array([0.5, 1.5, 2.5, 2.0, np.nan]),
        ...             np.array([0.5, 1.5, 2.5, 0.0, 1.0])).tolist()
        [0, 0, 1, -1, -1]
        """
        return self._points.query(x, y, predicate="within")


@dataclass(frozen=True)
class Partial:
    """Additive aggregates of some events (see the module notes)."""

    cells: pd.DataFrame
    kpi: pd.DataFrame
    events: int


@dataclass(frozen=True)
class BatchResult:
    """What a batch run computes, identical on every path.

    Attributes
    ----------
    events : int
        Events read.
    grid_counts : pandas.DataFrame
        ``grid_code`` (``None`` for events outside every grid), ``count``.
    heat : pandas.DataFrame
        H3 heat map: ``h3`` (hex str), ``count``, ``open``, ordered by ``h3``.
    kpis_grid, kpis_town : pandas.DataFrame
        ``grid_code`` (or ``town_code``), ``month`` (``YYYY-MM``, UTC),
        ``reported``, ``closed``, ``closure_rate``.
    hotspots : pandas.DataFrame
        Gi* per town: ``town_code``, ``h3``, ``count``, ``gi_z``, ``p_z``, ``class``.
    """

    events: int
    grid_counts: pd.DataFrame
    heat: pd.DataFrame
    kpis_grid: pd.DataFrame
    kpis_town: pd.DataFrame
    hotspots: pd.DataFrame


def _xy(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates of the events: ``x``/``y`` columns when read so, else the point geometry."""
    if "x" in frame and "y" in frame:
        return (
            frame["x"].to_numpy(dtype="float64", na_value=np.nan),
            frame["y"].to_numpy(dtype="float64", na_value=np.nan),
        )
    geom = frame["geometry"]
    if isinstance(geom, gpd.GeoSeries):
        pts = np.asarray(geom.values, dtype=object)
    else:
        pts = np.asarray(shapely.from_wkb(geom.to_numpy(dtype=object)), dtype=object)
    return shapely.get_x(pts), shapely.get_y(pts)


#: Month number of a missing report time (see :func:`month_numbers`).
_NO_MONTH = np.iinfo("int64").min


def month_numbers(reported_at: pd.Series) -> np.ndarray:
    """Months since 1970-01 (UTC) of each timestamp, as int64; a sentinel where missing.

    Examples
    --------
    >>> month_labels(month_numbers(pd.Series(pd.to_datetime(
    ...     ["2026-09-30T23:30:00+08:00", "2026-10-01T00:00:00Z", None], utc=True)))).tolist()
    ['2026-09', '2026-10', None]
    """
    at = pd.to_datetime(reported_at, utc=True)
    naive = at.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")
    return naive.astype("datetime64[M]").astype("int64")  # NaT → int64 min = _NO_MONTH


def month_labels(numbers: np.ndarray) -> np.ndarray:
    """``YYYY-MM`` of month numbers (:func:`month_numbers`); ``None`` for the missing ones."""
    nums = np.asarray(numbers, dtype="int64")
    out = np.full(len(nums), None, dtype=object)
    ok = nums != _NO_MONTH
    if ok.any():
        uniq, inverse = np.unique(nums[ok], return_inverse=True)
        labels = np.datetime_as_string(uniq.astype("datetime64[M]"), unit="M").astype(object)
        out[ok] = labels[inverse]
    return out


def month_keys(reported_at: pd.Series) -> np.ndarray:
    """``YYYY-MM`` (UTC) of each timestamp; ``None`` where it is missing.

    Examples
    --------
    >>> month_keys(pd.Series(pd.to_datetime(["2026-09-30T23:30:00+08:00", None]))).tolist()
    ['2026-09', None]
    """
    return month_labels(month_numbers(reported_at))


def partial_aggregates(frame: pd.DataFrame, grids: GridIndex, resolution: int) -> Partial:
    """Partial aggregates of one chunk of events.

    Parameters
    ----------
    frame : pandas.DataFrame or geopandas.GeoDataFrame
        Events with ``geometry`` (points, WGS84; shapely objects or WKB),
        ``status`` and ``reported_at``.
    grids : GridIndex
        The grids to assign events to.
    resolution : int
        H3 resolution of the heat map.

    Returns
    -------
    Partial

    Examples
    --------
    >>> g = GridIndex(np.array(["990100001001001"], dtype=object),
    ...               np.array([shapely.box(24.9, 60.1, 25.0, 60.2)]))
    >>> ev = gpd.GeoDataFrame({"status": ["closed", "reported"],
    ...     "reported_at": pd.to_datetime(["2026-09-01", "2026-10-01"], utc=True)},
    ...     geometry=shapely.points([24.95, 30.0], [60.15, 30.0]))
    >>> p = partial_aggregates(ev, g, 9)
    >>> p.kpi.to_dict("records")[0]
    {'grid_code': '990100001001001', 'month': '2026-09', 'reported': 1, 'closed': 1}
    """
    res = check_resolution(resolution)
    x, y = _xy(frame)
    grid = grids.assign_xy(x, y)
    cells = latlng_to_cells(x, y, res)
    status = frame["status"].astype(object).reset_index(drop=True)
    is_open = status.isin(_OPEN).to_numpy()
    closed = (status == "closed").to_numpy()
    counted = (status != "merged").to_numpy()  # folded duplicates are not reported events
    ones = np.ones(len(x), dtype="int64")
    # Group on integer keys (grid position, H3 id, month number): the labels are
    # attached to the few aggregated rows only.
    base = pd.DataFrame({"g": grid, "cell": cells, "count": ones, "open": is_open.astype("int64")})
    cell_agg = base[cells != 0].groupby(["g", "cell"], sort=False)[["count", "open"]].sum()
    cell_agg = cell_agg.reset_index()
    months = month_numbers(frame["reported_at"].reset_index(drop=True))
    kpi = pd.DataFrame({"g": grid, "m": months, "reported": ones, "closed": closed.astype("int64")})
    kpi_agg = kpi[counted].groupby(["g", "m"], sort=False)[["reported", "closed"]].sum()
    kpi_agg = kpi_agg.reset_index()
    cells_out = pd.DataFrame(
        {
            "grid_code": grids.codes_of(cell_agg["g"].to_numpy()),
            "cell": cell_agg["cell"].to_numpy(dtype="uint64"),
            "count": cell_agg["count"].to_numpy(dtype="int64"),
            "open": cell_agg["open"].to_numpy(dtype="int64"),
        }
    )
    kpi_out = pd.DataFrame(
        {
            "grid_code": grids.codes_of(kpi_agg["g"].to_numpy()),
            "month": month_labels(kpi_agg["m"].to_numpy()),
            "reported": kpi_agg["reported"].to_numpy(dtype="int64"),
            "closed": kpi_agg["closed"].to_numpy(dtype="int64"),
        }
    )
    return Partial(cells_out, kpi_out, len(x))


def typed(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for col in ("grid_code", "month"):
        if col in out:
            out[col] = pd.Series(
                [None if pd.isna(v) else str(v) for v in out[col]], index=out.index, dtype=object
            )
    if "cell" in out:
        out["cell"] = out["cell"].astype("uint64")
    for col in ("count", "open", "reported", "closed"):
        if col in out:
            out[col] = out[col].astype("int64")
    return out


def empty_partial() -> Partial:
    """A partial of no events (the neutral element of :func:`combine`)."""
    cells = pd.DataFrame(
        {
            "grid_code": pd.Series([], dtype=object),
            "cell": pd.Series([], dtype="uint64"),
            "count": pd.Series([], dtype="int64"),
            "open": pd.Series([], dtype="int64"),
        }
    )
    kpi = pd.DataFrame(
        {
            "grid_code": pd.Series([], dtype=object),
            "month": pd.Series([], dtype=object),
            "reported": pd.Series([], dtype="int64"),
            "closed": pd.Series([], dtype="int64"),
        }
    )
    return Partial(cells, kpi, 0)


def combine(parts: Iterable[Partial]) -> Partial:
    """Sum partial aggregates (associative and commutative, so any reduction order works).

    Examples
    --------
    >>> p = empty_partial()
    >>> combine([p, p]).events
    0
    """
    items = list(parts)
    if not items:
        return empty_partial()
    cells = pd.concat([p.cells for p in items], ignore_index=True)
    kpi = pd.concat([p.kpi for p in items], ignore_index=True)
    cells = cells.groupby(CELL_KEYS, dropna=False, sort=False)[["count", "open"]].sum()
    kpi = kpi.groupby(KPI_KEYS, dropna=False, sort=False)[["reported", "closed"]].sum()
    return Partial(
        typed(cells.reset_index()), typed(kpi.reset_index()), sum(p.events for p in items)
    )


def _kpi_table(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    out = frame.groupby([key, "month"], dropna=False, sort=True)[["reported", "closed"]].sum()
    out = out.reset_index()
    out["closure_rate"] = out["closed"] / out["reported"]
    out = out.sort_values([key, "month"], na_position="last", kind="stable")
    return typed(out.reset_index(drop=True)).astype({"closure_rate": "float64"})


def town_hotspots(
    town: str,
    counts: pd.Series,
    town_grids: gpd.GeoDataFrame,
    resolution: int,
    *,
    permutations: int = 199,
    seed: int = 0,
) -> pd.DataFrame:
    """Gi* hot spots of one town: *counts* per cell (hex) over the town's study cells.

    The study region is the H3 cells whose centres lie in the town's grids,
    plus any cell holding events of the town; cells without events count 0.
    """
    study = set(study_cells(town_grids, resolution).tolist()) | set(counts.index)
    full = counts.reindex(sorted(study), fill_value=0).astype("int64")
    if len(full) == 0:
        return pd.DataFrame(columns=["town_code", "h3", "count", "gi_z", "p_z", "class"])
    hs = hot_spots(full, permutations=permutations, seed=seed)
    out = pd.DataFrame(
        {
            "town_code": town,
            "h3": full.index.to_numpy(dtype=object),
            "count": hs["count"].to_numpy(dtype="int64"),
            "gi_z": hs["gi_z"].to_numpy(dtype="float64"),
            "p_z": hs["p_z"].to_numpy(dtype="float64"),
            "class": hs["class"].to_numpy(dtype=object),
        }
    )
    return out


def hotspot_jobs(
    total: Partial, grids: gpd.GeoDataFrame
) -> list[tuple[str, pd.Series, gpd.GeoDataFrame]]:
    """(town, counts per cell, town grids) for every town with assigned events."""
    cells = total.cells.dropna(subset=["grid_code"])
    if cells.empty:
        return []
    town = cells["grid_code"].str[:9]
    jobs = []
    for code, part in cells.groupby(town.to_numpy(), sort=True):
        per_cell = part.groupby("cell")["count"].sum()
        counts = pd.Series(
            per_cell.to_numpy(dtype="int64"), index=cell_strings(per_cell.index.to_numpy())
        )
        town_grids = grids[grids["code"].astype(str).str[:9] == code]
        jobs.append((str(code), counts, town_grids))
    return jobs


def finish(
    total: Partial,
    grids: gpd.GeoDataFrame,
    resolution: int,
    *,
    hotspots: list[pd.DataFrame] | None = None,
    permutations: int = 199,
) -> BatchResult:
    """Results from the summed partials (hot spots computed here unless given)."""
    cells = total.cells
    by_grid = cells.groupby("grid_code", dropna=False, sort=True)["count"].sum().reset_index()
    by_grid = by_grid.sort_values("grid_code", na_position="last", kind="stable")
    heat_sum = cells.groupby("cell", sort=True)[["count", "open"]].sum()
    heat = pd.DataFrame(
        {
            "h3": cell_strings(heat_sum.index.to_numpy()),
            "count": heat_sum["count"].to_numpy(dtype="int64"),
            "open": heat_sum["open"].to_numpy(dtype="int64"),
        }
    )
    kpi = total.kpi
    kpis_grid = _kpi_table(kpi, "grid_code")
    kpi_town = kpi.assign(town_code=kpi["grid_code"].str[:9]).drop(columns="grid_code")
    kpis_town = _kpi_table(kpi_town, "town_code")
    if hotspots is None:
        hotspots = [
            town_hotspots(t, c, g, resolution, permutations=permutations)
            for t, c, g in hotspot_jobs(total, grids)
        ]
    hs = (
        pd.concat(hotspots, ignore_index=True)
        if hotspots
        else pd.DataFrame(columns=["town_code", "h3", "count", "gi_z", "p_z", "class"])
    )
    return BatchResult(
        events=total.events,
        grid_counts=typed(by_grid.reset_index(drop=True)),
        heat=heat,
        kpis_grid=kpis_grid,
        kpis_town=kpis_town,
        hotspots=hs.reset_index(drop=True),
    )
