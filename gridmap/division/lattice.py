"""Regular grids clipped to a community: H3 hexagons and metric squares.

``--method h3 --resolution N`` and ``--method square --size-m N``. Cells are
clipped to the community, so they tile it without gaps or overlaps (adjacent
H3 cells share their vertices exactly; squares are cut in one local UTM grid
and share theirs too). H3 takes latitude first: that is wrapped here once.
"""

from __future__ import annotations

from collections.abc import Callable

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from gridmap.common.errors import BadInput
from gridmap.division.balanced import (
    Division,
    buildings_inside,
    check_code,
    check_community,
    check_limits,
    finish_grids,
)
from gridmap.division.bisect import assign_grid_codes, grid_codes
from gridmap.division.regions import Limits
from gridmap.geo.projection import local_crs

__all__ = ["MAX_CELLS", "divide_h3", "divide_square", "h3_cells"]

#: Upper bound of lattice cells before clipping (a community holds at most 999 grids).
MAX_CELLS = 5000


def h3_cells(area: BaseGeometry, resolution: int) -> gpd.GeoDataFrame:
    """H3 cells (``h3`` index, hexagon polygon) that overlap *area* (WGS84).

    Examples
    --------
    >>> import shapely
    >>> cells = h3_cells(shapely.box(24.94, 60.17, 24.945, 60.172), 9)
    >>> len(cells) >= 2, cells.crs.to_epsg()
    (True, 4326)
    """
    if not 0 <= resolution <= 15:
        raise BadInput(f"H3 resolution must be 0…15, got {resolution}", field="resolution")
    edge_m = float(h3.average_hexagon_edge_length(resolution, unit="m"))
    cell_m2 = float(h3.average_hexagon_area(resolution, unit="m^2"))
    crs = local_crs(list(shapely.bounds(area)))
    metric = gpd.GeoSeries([area], crs=4326).to_crs(crs)
    if float(metric.area.iloc[0]) / cell_m2 > MAX_CELLS:
        raise BadInput(
            f"resolution {resolution} gives more than {MAX_CELLS} cells for this area; "
            "use a coarser resolution",
            field="resolution",
        )
    cover = metric.buffer(2.5 * edge_m).to_crs(4326).iloc[0]
    cells: set[str] = set()
    for part in shapely.get_parts(cover):
        cells.update(h3.geo_to_cells(part.__geo_interface__, resolution))
    ids = sorted(cells)
    polys = [shapely.Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(c)]) for c in ids]
    out = gpd.GeoDataFrame({"h3": ids}, geometry=polys, crs=4326)
    return out[out.intersects(area)].reset_index(drop=True)


def _square_cells(area: BaseGeometry, size_m: float) -> np.ndarray:
    if not np.isfinite(size_m) or size_m <= 0:
        raise BadInput(
            f"square size must be a positive number of metres, got {size_m}",
            field="size_m",
        )
    crs = local_crs(list(shapely.bounds(area)))
    minx, miny, maxx, maxy = gpd.GeoSeries([area], crs=4326).to_crs(crs).total_bounds
    nx = int(np.ceil((maxx - minx) / size_m)) or 1
    ny = int(np.ceil((maxy - miny) / size_m)) or 1
    if nx * ny > MAX_CELLS:
        raise BadInput(
            f"{size_m:g} m squares give {nx * ny} cells for this area; use larger squares",
            field="size_m",
        )
    # one shared vertex lattice, projected once, so neighbouring squares share corners exactly
    xs = minx + size_m * np.arange(nx + 1)
    ys = maxy - size_m * np.arange(ny + 1)
    gx, gy = np.meshgrid(xs, ys)
    pts = gpd.GeoSeries(gpd.points_from_xy(gx.ravel(), gy.ravel()), crs=crs).to_crs(4326)
    lon = pts.x.to_numpy().reshape(gx.shape)
    lat = pts.y.to_numpy().reshape(gx.shape)
    polys = []
    for j in range(ny):
        for i in range(nx):
            ring = [
                (lon[j, i], lat[j, i]),
                (lon[j + 1, i], lat[j + 1, i]),
                (lon[j + 1, i + 1], lat[j + 1, i + 1]),
                (lon[j, i + 1], lat[j, i + 1]),
            ]
            polys.append(shapely.Polygon(ring))
    return np.array(polys, dtype=object)


def _clip_division(
    cells_of: Callable[[BaseGeometry], np.ndarray],
    community: BaseGeometry,
    buildings: gpd.GeoDataFrame,
    community_code: str,
    limits: tuple[float, float, float] | None,
) -> Division:
    """Check the inputs, then clip the cells ``cells_of(community)`` into grids."""
    check_code(community_code)
    community = check_community(community)
    lim = check_limits(*limits) if limits else Limits(1.0, 0.0, float("inf"))
    clipped = shapely.intersection(cells_of(community), community)
    parts = [shapely.get_parts(g) for g in clipped]
    keep = np.array(
        [bool(len(p)) and bool(np.isin(shapely.get_type_id(p), [3, 6]).any()) for p in parts]
    )
    polys = np.array(
        [
            shapely.union_all(p[np.isin(shapely.get_type_id(p), [3, 6])])
            for p, k in zip(parts, keep, strict=True)
            if k
        ],
        dtype=object,
    )
    polys = polys[shapely.area(polys) > 0]
    grids = gpd.GeoDataFrame(geometry=polys, crs=4326)
    grids["code"] = grid_codes(grids, community_code)
    b = buildings_inside(buildings, community)
    codes = assign_grid_codes(b, grids)
    out = finish_grids(grids, b, codes, community_code=community_code)
    out["weight"] = out["households"].astype(float)
    out["status"] = [
        "over_max" if w > lim.high else "under_min" if w < lim.low else "ok" for w in out["weight"]
    ]
    out["reason"] = [
        "" if s == "ok" else "a regular lattice does not follow households" for s in out["status"]
    ]
    full = pd.Series(None, index=buildings.index, dtype=object, name="grid_code")
    full.loc[codes.index] = codes
    return Division(out, full, lim, "households")


def divide_h3(
    community: BaseGeometry,
    buildings: gpd.GeoDataFrame,
    *,
    community_code: str,
    resolution: int = 9,
    limits: tuple[float, float, float] | None = None,
) -> Division:
    """Grids from H3 cells of *resolution* clipped to the community.

    Parameters
    ----------
    community : shapely geometry
        Community polygon (WGS84).
    buildings : GeoDataFrame
        Buildings (WGS84) with ``households``/``residents``.
    community_code : str
        12-digit community code.
    resolution : int
        H3 resolution (9 ≈ 0.1 km² cells).
    limits : tuple of (target, min, max), optional
        Marks grids outside these household bounds in ``status`` (a lattice
        ignores them when cutting).

    Returns
    -------
    Division
        Grids and the grid code of each building.

    Examples
    --------
    >>> import shapely, geopandas as gpd
    >>> b = gpd.GeoDataFrame({"households": [10]}, geometry=[shapely.Point(24.941, 60.171)],
    ...                      crs=4326)
    >>> d = divide_h3(shapely.box(24.94, 60.17, 24.95, 60.175), b,
    ...               community_code="990100001001", resolution=9)
    >>> int(d.grids["households"].sum()), bool(d.grids["code"].str.len().eq(15).all())
    (10, True)
    """
    return _clip_division(
        lambda area: np.asarray(h3_cells(area, int(resolution)).geometry.values),
        community,
        buildings,
        community_code,
        limits,
    )


def divide_square(
    community: BaseGeometry,
    buildings: gpd.GeoDataFrame,
    *,
    community_code: str,
    size_m: float = 250.0,
    limits: tuple[float, float, float] | None = None,
) -> Division:
    """Grids from squares of *size_m* metres (local UTM) clipped to the community.

    Parameters and result as :func:`divide_h3`, with *size_m*, the side of a
    square in metres, in place of its *resolution*.

    Examples
    --------
    >>> import shapely, geopandas as gpd
    >>> b = gpd.GeoDataFrame({"households": [10]}, geometry=[shapely.Point(24.941, 60.171)],
    ...                      crs=4326)
    >>> d = divide_square(shapely.box(24.94, 60.17, 24.95, 60.175), b,
    ...                   community_code="990100001001", size_m=300)
    >>> len(d.grids), int(d.grids["households"].sum())
    (4, 10)
    """
    return _clip_division(
        lambda area: _square_cells(area, float(size_m)),
        community,
        buildings,
        community_code,
        limits,
    )
