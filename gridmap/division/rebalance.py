"""Rebalance (网格调整): fix only the grids that now violate the limits.

When households grow (or shrink) some grids leave ``[min, max]``. Rebalancing
cuts the community into street blocks *and* along the current grid
boundaries, starts from the grids in force and moves blocks only between a
violating grid and its neighbours (widening the circle of neighbours ring by
ring only when needed), ignoring balance for grids already within the limits.
What cannot be fixed by moving blocks is merged or split; every grid left
untouched keeps its exact geometry.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from gridmap.division.balanced import (
    Division,
    GridSize,
    checked_inputs,
    explain,
    finish_grids,
    labels_from,
)
from gridmap.division.bisect import grid_codes
from gridmap.division.blocks import street_units
from gridmap.division.regions import (
    improve_regions,
    region_neighbours,
    relabel,
    repair_regions,
    warm_labels,
)

__all__ = ["rebalance_division"]


def rebalance_division(
    community: BaseGeometry,
    grids: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame,
    roads: gpd.GeoDataFrame | None,
    *,
    community_code: str,
    size: GridSize = GridSize(),
    max_rings: int = 3,
) -> Division:
    """Change only the grids outside the limits, touching as few neighbours as possible.

    Parameters
    ----------
    community : shapely geometry
        Community polygon (WGS84).
    grids : GeoDataFrame
        Grids in force, with ``code``.
    buildings, roads : GeoDataFrame
        Current buildings (with the weight column) and roads.
    community_code : str
        12-digit community code.
    size : GridSize
        Target, bounds and the building column (or ``buildings``) balanced on.
    max_rings : int
        How many rings of neighbours may be involved before merging/splitting.

    Returns
    -------
    Division
        Grids (unchanged ones with their exact old geometry and code), the code
        of each building, and the status of each grid.

    Examples
    --------
    >>> import shapely, geopandas as gpd
    >>> houses = [shapely.Point(24.9302 + 0.001 * i, 60.1705).buffer(1e-4) for i in range(4)]
    >>> b = gpd.GeoDataFrame({"households": [100, 100, 150, 50]}, geometry=houses, crs=4326)
    >>> old = gpd.GeoDataFrame({"code": ["990100001001001", "990100001001002"]},
    ...     geometry=[shapely.box(24.93, 60.17, 24.9325, 60.171),
    ...               shapely.box(24.9325, 60.17, 24.934, 60.171)], crs=4326)
    >>> d = rebalance_division(shapely.box(24.93, 60.17, 24.934, 60.171), old, b, None,
    ...                        community_code="990100001001",
    ...                        size=GridSize(target=250, low=150, high=350))
    >>> d.grids["households"].tolist()
    [200, 200]
    """
    limits, community, b, bw = checked_inputs(community, buildings, community_code, size)
    weight = size.weight
    old = np.asarray(grids.geometry.values)
    edges = gpd.GeoSeries(shapely.boundary(old), crs=4326)
    lines = (
        edges
        if roads is None or len(roads) == 0
        else pd.concat([gpd.GeoSeries(roads.geometry.values, crs=4326), edges], ignore_index=True)
    )
    units = street_units(
        community,
        gpd.GeoSeries(lines, crs=4326),
        b,
        weight=bw,
        split_above=max(limits.target / 2.0, limits.low / 2.0),
    )
    w = units.weight
    start = labels_from(units.geometry, old)
    lab = warm_labels(start, units.neighbours)
    k = int(lab.max()) + 1
    reg_w = np.bincount(lab, weights=w, minlength=k)
    bad = {r for r in range(k) if limits.violation(float(reg_w[r])) > 0}
    active = set(bad)
    side = float(np.sqrt(max(units.area.sum(), 1.0) / max(k, 1)))
    for _ in range(max_rings):
        if not bad:
            break
        ring = set(active)
        for r in list(active):
            ring |= region_neighbours(lab, units.neighbours, r)
        active = ring
        movable = np.zeros(k, dtype=bool)
        movable[sorted(active)] = True
        lab = improve_regions(
            lab,
            units.neighbours,
            w,
            limits,
            compactness=0.01,
            scale=side,
            movable=movable,
            balance=False,
        )
        reg_w = np.bincount(lab, weights=w, minlength=k)
        bad = {r for r in range(k) if limits.violation(float(reg_w[r])) > 0}
    if bad:
        lab = repair_regions(lab, units.neighbours, w, units.centroid, limits)
    lab = relabel(lab)
    k = int(lab.max()) + 1
    geoms = np.empty(k, dtype=object)
    for r in range(k):
        mine = lab == r
        same = [g for g in np.unique(start[mine]) if g >= 0 and np.array_equal(start == g, mine)]
        geoms[r] = old[same[0]] if same else shapely.union_all(units.geometry[mine])
    out = gpd.GeoDataFrame({"region": np.arange(k)}, geometry=geoms, crs=4326)
    out["weight"] = np.bincount(lab, weights=w, minlength=k)
    out["status"], out["reason"] = explain(units, lab, w, limits)
    out["code"] = grid_codes(out, community_code)
    unit_of = units.building_unit.to_numpy()
    codes = pd.Series(
        [None if u < 0 else out["code"].iat[int(lab[u])] for u in unit_of],
        index=b.index,
        dtype=object,
    )
    result = finish_grids(out, b, codes, community_code=community_code)
    full = pd.Series(None, index=buildings.index, dtype=object, name="grid_code")
    full.loc[codes.index] = codes
    return Division(result, full, limits, weight)
