"""H3 binning of events: counts per cell, cell polygons, rates per 1,000 residents.

What this module owns (vectorized, on arrays or (Geo)DataFrames):

- **Cells** — :func:`h3_index` (the H3 cell of each point of a GeoDataFrame),
  :func:`cell_polygons` (the hexagon of each cell, from the H3 C library through
  ``h3ronpy``) and :func:`cell_ints` (cell ids given as integers or hex strings).
- **Counts per cell** — :func:`bin_counts` / :func:`heat_cells`: events and open
  events per cell, binned in one call of :func:`gridmap.geo.h3cells.latlng_to_cells`
  (no per-point Python loop); :func:`heat_cells` adds the cell polygons.
- **Rates** — :func:`population_per_cell` (residents and households per cell, from
  building points) and :func:`add_rates` (events per 1,000 of them, :data:`RATES`).

Points become cells in :mod:`gridmap.geo.h3cells`, the one place that knows H3's
latitude-first axis order; everything here passes longitude, latitude.
Counting in the store lives in :mod:`gridmap.analytics.queries`, the small-count
rule in :mod:`gridmap.analytics.smallcounts` and the heat map that combines them in
:mod:`gridmap.analytics.heat`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyproj
import shapely
from h3ronpy import vector as h3v

from gridmap.common.errors import BadInput
from gridmap.events.states import OPEN_STATES
from gridmap.geo.h3cells import cell_strings, latlng_to_cells
from gridmap.geo.projection import WGS84

__all__ = [
    "RATES",
    "add_rates",
    "bin_counts",
    "cell_ints",
    "cell_polygons",
    "h3_index",
    "heat_cells",
    "population_per_cell",
]

#: Rates: events per 1,000 residents or per 1,000 households.
RATES: dict[str, str] = {"per_1000_residents": "residents", "per_1000_households": "households"}


# --------------------------------------------------------------------------- cells


def cell_ints(cells: Any) -> np.ndarray:
    """H3 cells as ``uint64`` ids, given as integers or as hexadecimal strings.

    Examples
    --------
    >>> cell_ints(["891126d338fffff"]).tolist()
    [617294884152279039]
    """
    arr = np.asarray(cells)
    if arr.dtype.kind in "uiUSO" and arr.size and arr.dtype.kind in "USO":
        return np.array([int(str(c), 16) for c in arr.ravel()], dtype="uint64")
    return arr.astype("uint64").ravel()


def cell_polygons(cells: Any) -> np.ndarray:
    """Hexagon (or pentagon) polygons of H3 cells, x = longitude.

    Parameters
    ----------
    cells : array-like of uint64 or of hexadecimal str

    Returns
    -------
    numpy.ndarray of shapely.Polygon

    Examples
    --------
    >>> poly = cell_polygons(["891126d338fffff"])[0]
    >>> poly.geom_type, len(poly.exterior.coords)
    ('Polygon', 7)
    """
    ints = cell_ints(cells)
    if ints.size == 0:
        return np.array([], dtype=object)
    wkb = h3v.cells_to_wkb_polygons(pa.array(ints, type=pa.uint64()))
    out: np.ndarray = shapely.from_wkb(pa.array(wkb).to_numpy(zero_copy_only=False))
    return out


def h3_index(gdf: gpd.GeoDataFrame, resolution: int) -> pd.Series:
    """The H3 cell (hex string) of each point of *gdf*, aligned to its index.

    Non-point geometries use their representative point; missing or empty
    geometries give ``None``.

    Examples
    --------
    >>> import shapely
    >>> pts = gpd.GeoDataFrame(geometry=[shapely.Point(24.94, 60.17)], crs=4326)
    >>> h3_index(pts, 9).tolist()
    ['891126d338fffff']
    """
    geom = gdf.geometry
    if geom.crs is not None and not pyproj.CRS(geom.crs).equals(WGS84, ignore_axis_order=True):
        geom = geom.to_crs(WGS84)
    arr = np.asarray(geom.values)
    pts = np.where(shapely.get_type_id(arr) == 0, arr, shapely.point_on_surface(arr))
    cells = latlng_to_cells(shapely.get_x(pts), shapely.get_y(pts), resolution)
    names = cell_strings(cells)
    names[cells == 0] = None
    return pd.Series(names, index=gdf.index, name="h3", dtype=object)


# --------------------------------------------------------------------------- counting


def bin_counts(
    points: pd.DataFrame, resolution: int, *, open_states: Iterable[str] = OPEN_STATES
) -> pd.DataFrame:
    """Events per H3 cell: ``count`` and, when *points* has ``status``, ``open``.

    Parameters
    ----------
    points : pandas.DataFrame
        Columns ``lon``, ``lat`` (WGS84) and optionally ``status``.
    resolution : int
        H3 resolution.
    open_states : iterable of str
        Statuses counted as open.

    Returns
    -------
    pandas.DataFrame
        One row per non-empty cell, ordered by cell: ``h3`` (hex str),
        ``count`` and ``open`` (int). Points without valid coordinates are left out.

    Examples
    --------
    >>> pts = pd.DataFrame({"lon": [24.94, 24.94, 24.95], "lat": [60.17, 60.17, 60.18],
    ...                     "status": ["closed", "reported", "reported"]})
    >>> bin_counts(pts, 9)[["count", "open"]].values.tolist()
    [[1, 1], [2, 1]]
    """
    cells = latlng_to_cells(points["lon"].to_numpy(), points["lat"].to_numpy(), resolution)
    keep = cells != 0
    # Hash-factorize the cell ids, then count with bincount: no sort of all points.
    codes, uniques = pd.factorize(cells[keep])
    counts = np.bincount(codes, minlength=len(uniques))
    opened: np.ndarray
    if "status" in points:
        is_open = points["status"].isin(list(open_states)).to_numpy()[keep]
        opened = np.bincount(codes, weights=is_open, minlength=len(uniques))
    else:
        opened = np.zeros(len(uniques))
    order = np.argsort(np.asarray(uniques, dtype="uint64"), kind="stable")
    out = pd.DataFrame(
        {
            "h3": cell_strings(np.asarray(uniques, dtype="uint64")[order]),
            "count": counts[order].astype("int64"),
            "open": opened[order].astype("int64"),
        }
    )
    if "status" not in points:
        out = out.drop(columns="open")
    return out


def heat_cells(points: pd.DataFrame, resolution: int) -> gpd.GeoDataFrame:
    """:func:`bin_counts` with the cell polygons: a GeoDataFrame ready to map or serve.

    Examples
    --------
    >>> pts = pd.DataFrame({"lon": [24.94, 24.95], "lat": [60.17, 60.18]})
    >>> heat_cells(pts, 8).geometry.geom_type.unique().tolist()
    ['Polygon']
    """
    counts = bin_counts(points, resolution)
    return gpd.GeoDataFrame(counts, geometry=cell_polygons(counts["h3"].to_numpy()), crs=WGS84)


def population_per_cell(points: pd.DataFrame, resolution: int) -> pd.DataFrame:
    """Residents and households per H3 cell, from building points.

    Parameters
    ----------
    points : pandas.DataFrame
        ``lon``, ``lat`` (a point inside each building) and ``residents``,
        ``households`` (missing counts as 0).
    resolution : int

    Returns
    -------
    pandas.DataFrame
        Indexed by cell (hex str): ``residents``, ``households``.

    Examples
    --------
    >>> b = pd.DataFrame({"lon": [24.94, 24.94], "lat": [60.17, 60.17],
    ...                   "residents": [30, 12], "households": [10, None]})
    >>> population_per_cell(b, 9).to_dict("records")
    [{'residents': 42.0, 'households': 10.0}]
    """
    cells = latlng_to_cells(points["lon"].to_numpy(), points["lat"].to_numpy(), resolution)
    frame = pd.DataFrame(
        {
            "cell": cells,
            "residents": pd.to_numeric(points["residents"], errors="coerce").fillna(0).to_numpy(),
            "households": pd.to_numeric(points["households"], errors="coerce").fillna(0).to_numpy(),
        }
    )
    frame = frame[frame["cell"] != 0]
    sums = frame.groupby("cell", sort=True)[["residents", "households"]].sum().astype("float64")
    sums.index = pd.Index(cell_strings(sums.index.to_numpy()), name="h3")
    return sums


def add_rates(cells: pd.DataFrame, population: pd.DataFrame, rate: str) -> pd.DataFrame:
    """Add ``rate`` (events per 1,000 residents or households) and its denominator.

    Cells without residents (or households) get a missing rate, never an infinite one.

    Examples
    --------
    >>> cells = pd.DataFrame({"h3": ["a", "b"], "count": [4, 2]})
    >>> pop = pd.DataFrame({"residents": [2000.0], "households": [800.0]},
    ...                    index=pd.Index(["a"], name="h3"))
    >>> add_rates(cells, pop, "per_1000_residents")["rate"].tolist()
    [2.0, nan]
    """
    if rate not in RATES:
        raise BadInput(f"rate must be one of {', '.join(RATES)}, got {rate[:40]!r}", field="rate")
    column = RATES[rate]
    denominator = cells["h3"].map(population[column]).astype("float64").fillna(0.0)
    out = cells.copy()
    out[column] = denominator.to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        values = np.where(denominator > 0, out["count"] / denominator * 1000.0, np.nan)
    out["rate"] = values
    return out
