"""Grid division (网格划分), first version: balanced recursive bisection.

This is the simple method the demo uses until the street-following divider of
the grids issue lands: the community's extent is cut, along its
longer side (judged in metres) at the household-weighted median of the building centroids,
and again on each half, until every part holds at most ``max_households``.
The parts tile the community with no gaps and no overlaps (each is the
intersection of a rectangle of a partition with the community polygon).

Grid codes follow the national 15-digit pattern: the 12-digit community code
plus a 3-digit sequence numbered west→east within rows running north→south.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from gridmap.common.errors import BadInput
from gridmap.geo.projection import local_crs

if TYPE_CHECKING:
    from gridmap.division.assign import Predicate

__all__ = ["assign_grid_codes", "assign_points", "divide_bisect", "grid_codes", "summarize_grids"]


@dataclass(frozen=True)
class _Cell:
    box: tuple[float, float, float, float]
    members: np.ndarray  # indices into the building arrays


def divide_bisect(
    community: BaseGeometry,
    buildings: gpd.GeoDataFrame,
    *,
    community_code: str,
    max_households: int = 500,
    weight: str = "households",
) -> gpd.GeoDataFrame:
    """Divide one community into grids of at most *max_households* by recursive bisection.

    Parameters
    ----------
    community : shapely geometry
        The community polygon in WGS84.
    buildings : GeoDataFrame
        Buildings in WGS84 with a *weight* column (households by default).
    community_code : str
        12-digit community code; grids get ``community_code + NNN``.
    max_households : int
        Upper bound of the weight per grid (a single building above it stays alone).
    weight : str
        Column to balance on.

    Returns
    -------
    GeoDataFrame
        One row per grid with ``code``, ``community_code``, ``households``,
        ``residents``, ``buildings`` and the grid polygon (WGS84).

    Examples
    --------
    >>> import shapely, geopandas as gpd
    >>> pts = [shapely.Point(24.94 + i * 1e-4, 60.17).buffer(2e-5) for i in range(4)]
    >>> b = gpd.GeoDataFrame({"households": [300] * 4}, geometry=pts, crs=4326)
    >>> g = divide_bisect(shapely.box(24.93, 60.16, 24.95, 60.18), b,
    ...                   community_code="990100001001", max_households=600)
    >>> len(g), int(g["households"].sum())
    (2, 1200)
    """
    if len(community_code) != 12 or not community_code.isdigit():
        raise BadInput(
            f"community code must be 12 digits, got {community_code!r}", field="community"
        )
    if max_households <= 0:
        raise BadInput("max_households must be positive", field="max_households")
    # Cut in lon/lat so that the cells tile the WGS84 community exactly (no
    # reprojection seams); the longer side is judged in metres (cos φ scale).
    inside = buildings[buildings.intersects(community)]
    pts = inside.geometry.representative_point()
    xy = shapely.get_coordinates(pts.values)
    w = pd.to_numeric(inside[weight], errors="coerce").fillna(0).to_numpy(dtype=float)
    minx, miny, maxx, maxy = community.bounds
    xscale = float(np.cos(np.radians((miny + maxy) / 2.0)))
    pad = 1e-6
    stack = [_Cell((minx - pad, miny - pad, maxx + pad, maxy + pad), np.arange(len(xy)))]
    leaves: list[_Cell] = []
    while stack:
        cell = stack.pop()
        if w[cell.members].sum() <= max_households or len(cell.members) <= 1:
            leaves.append(cell)
            continue
        stack.extend(_split(cell, xy, w, xscale))
    polys = shapely.intersection(shapely.box(*np.array([c.box for c in leaves]).T), community)
    keep = ~shapely.is_empty(polys)
    cells = gpd.GeoDataFrame(geometry=polys[keep], crs=4326)
    cells["community_code"] = community_code
    cells["code"] = grid_codes(cells, community_code)
    cells = cells.sort_values("code").reset_index(drop=True)
    return summarize_grids(cells, buildings)


def _split(cell: _Cell, xy: np.ndarray, w: np.ndarray, xscale: float) -> list[_Cell]:
    minx, miny, maxx, maxy = cell.box
    # Cut across the wider spread of the buildings (in metres), not of the box:
    # buildings in one row must be split along the row.
    pts = xy[cell.members]
    spread_x = float(np.ptp(pts[:, 0])) * xscale
    spread_y = float(np.ptp(pts[:, 1]))
    if spread_x == spread_y:
        axis = 0 if (maxx - minx) * xscale >= (maxy - miny) else 1
    else:
        axis = 0 if spread_x > spread_y else 1
    coords = xy[cell.members, axis]
    order = np.argsort(coords, kind="stable")
    cum = np.cumsum(w[cell.members][order])
    k = int(np.searchsorted(cum, cum[-1] / 2.0))
    k = min(max(k, 0), len(order) - 2)
    cut = (coords[order[k]] + coords[order[k + 1]]) / 2.0
    if coords[order[k]] == coords[order[k + 1]]:  # identical centroids: split by count
        cut = coords[order[k]]
        lo_mask = np.zeros(len(order), dtype=bool)
        lo_mask[order[: k + 1]] = True
    else:
        lo_mask = coords <= cut
    lo, hi = cell.members[lo_mask], cell.members[~lo_mask]
    if axis == 0:
        return [_Cell((minx, miny, cut, maxy), lo), _Cell((cut, miny, maxx, maxy), hi)]
    return [_Cell((minx, miny, maxx, cut), lo), _Cell((minx, cut, maxx, maxy), hi)]


def grid_codes(grids: gpd.GeoDataFrame, community_code: str) -> pd.Series:
    """Number grids west→east within rows running north→south (national convention).

    Rows are bands of the median grid height; the result is aligned to the index.

    Examples
    --------
    >>> import shapely, geopandas as gpd
    >>> g = gpd.GeoDataFrame(geometry=[shapely.box(1, 0, 2, 1), shapely.box(0, 1, 1, 2),
    ...                                shapely.box(0, 0, 1, 1)], crs=4326)
    >>> grid_codes(g, "990100001001").tolist()
    ['990100001001003', '990100001001001', '990100001001002']
    """
    if grids.empty:
        return pd.Series([], index=grids.index, dtype=object, name="code")
    metric = grids.geometry.to_crs(local_crs(grids.geometry)) if grids.crs else grids.geometry
    c = metric.representative_point()
    b = metric.bounds
    band = float(np.median(b["maxy"] - b["miny"])) or 1.0
    top = float(b["maxy"].max())
    row = np.floor((top - c.y.to_numpy()) / band).astype(int)
    order = np.lexsort((c.x.to_numpy(), row))
    seq = np.empty(len(grids), dtype=int)
    seq[order] = np.arange(1, len(grids) + 1)
    if seq.max() > 999:
        raise BadInput("a community cannot hold more than 999 grids", field="grids")
    return pd.Series([f"{community_code}{s:03d}" for s in seq], index=grids.index, name="code")


def assign_grid_codes(points_or_polys: gpd.GeoDataFrame, grids: gpd.GeoDataFrame) -> pd.Series:
    """The grid code covering each feature's representative point (None outside every grid).

    Aligned to the input index. A point on a shared edge goes to the first grid
    (in the order of *grids*) touching it: ``intersects``, not ``within``, so
    no building is left without a grid.

    Examples
    --------
    >>> import shapely, geopandas as gpd
    >>> g = gpd.GeoDataFrame({"code": ["a", "b"]}, geometry=[shapely.box(0, 0, 1, 1),
    ...                      shapely.box(1, 0, 2, 1)], crs=4326)
    >>> p = gpd.GeoDataFrame(geometry=shapely.points([[0.5, 0.5], [1, 0.5], [3, 3]]), crs=4326)
    >>> assign_grid_codes(p, g).tolist()
    ['a', 'a', None]
    """
    rep = points_or_polys.geometry.representative_point()
    return assign_points(rep, grids, predicate="intersects")


def assign_points(
    points: gpd.GeoDataFrame | gpd.GeoSeries,
    grids: gpd.GeoDataFrame,
    *,
    predicate: Predicate = "within",
    column: str = "code",
) -> pd.Series:
    """Grid *column* of each point, fast: the answer of ``gpd.sjoin`` without its cost.

    Most points are answered by a raster look-up, only points near a grid
    boundary by an exact test (:class:`gridmap.division.assign.PointGridIndex`).

    Parameters
    ----------
    points : GeoDataFrame or GeoSeries
        Points (reprojected to the grids' CRS when both have one).
    grids : GeoDataFrame
        Grid polygons with *column*.
    predicate : {"within", "intersects"}
        ``within`` (as ``sjoin(predicate="within")``): a point exactly on a
        boundary is in no grid; ``intersects``: it goes to the first grid, in
        the order of *grids*, touching it. A point in several grids
        (overlaps) always goes to the first.
    column : str
        Grid column to return.

    Returns
    -------
    pandas.Series
        Named ``grid_code``, aligned to *points*; None outside every grid.

    Examples
    --------
    >>> import shapely, geopandas as gpd
    >>> g = gpd.GeoDataFrame({"code": ["a", "b"]}, geometry=[shapely.box(0, 0, 1, 1),
    ...                      shapely.box(1, 0, 2, 1)], crs=4326)
    >>> pts = gpd.GeoSeries(shapely.points([[0.5, 0.5], [1, 0.5], [1.5, 0.2]]), crs=4326)
    >>> assign_points(pts, g).tolist()
    ['a', None, 'b']
    """
    # imported here: gridmap.division imports this module
    from gridmap.division.assign import locate_in_grids

    geo = points.geometry if isinstance(points, gpd.GeoDataFrame) else points
    if geo.crs is not None and grids.crs is not None and geo.crs != grids.crs:
        geo = geo.to_crs(grids.crs)
    pos = locate_in_grids(
        np.asarray(geo.values), np.asarray(grids.geometry.values), predicate=predicate
    )
    values = np.array(
        [None if pd.isna(v) else str(v) for v in grids[column].to_numpy(dtype=object)] + [None],
        dtype=object,
    )
    codes = values[pos]  # -1 picks the trailing None
    return pd.Series(codes, index=points.index, name="grid_code", dtype=object)


def summarize_grids(grids: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Add ``households``, ``residents`` and ``buildings`` sums from the buildings in each grid."""
    out = grids.copy()
    codes = assign_grid_codes(buildings, grids)
    agg = (
        pd.DataFrame(
            {
                "code": codes,
                "households": pd.to_numeric(buildings.get("households", 0), errors="coerce"),
                "residents": pd.to_numeric(buildings.get("residents", 0), errors="coerce"),
            }
        )
        .dropna(subset=["code"])
        .groupby("code")
        .agg(
            households=("households", "sum"),
            residents=("residents", "sum"),
            buildings=("code", "size"),
        )
    )
    for col in ("households", "residents", "buildings"):
        out[col] = out["code"].map(agg[col]).fillna(0).astype("int64")
    return out
