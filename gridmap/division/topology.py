"""Topology check (拓扑检查) of grid polygons, and an optional fix.

Checks, per grid and with the geometry of each problem: **gaps** (parts of a
community no grid covers), **overlaps** (area two grids share), **slivers**
(tiny or very thin grid parts), **outside_community** (a grid crossing its
community's boundary) and **cuts_building** (a footprint split between grids).
The fix clips grids to their community, gives each overlap to the larger grid,
and gives each gap and detached sliver to the neighbour with the longest shared
edge.
"""

from __future__ import annotations

from typing import Any, cast

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import pyproj
import shapely
from shapely.geometry.base import BaseGeometry

from gridmap.geo.projection import local_crs, to_local, to_metric, to_wgs84

#: Snap-rounding grid of fix_topology's fallback (degrees: about 0.1 mm).
DEG_SNAP = 1e-9


def _robust(op: Any, *args: Any, grid_size: float) -> Any:
    """GEOS overlay *op* (intersection, difference, union_all) that does not fail.

    Floating-point overlay can raise "TopologyException: side location
    conflict" on nearly coincident edges, e.g. dissolved street blocks whose
    shared edges carry vertices on one side only, once projected to metres
    (a 5,000-building town did). Then the operation is repeated with
    snap-rounding to *grid_size* (far below the check's tolerance), and if a
    projected geometry has become invalid (a ring touching itself), on the
    inputs made valid.
    """
    try:
        return op(*args)
    except shapely.errors.GEOSException:
        pass
    try:
        return op(*args, grid_size=grid_size)
    except shapely.errors.GEOSException:
        valid = [
            shapely.make_valid(
                np.asarray(x, dtype=object), method="structure", keep_collapsed=False
            )
            for x in args
        ]
        return op(*valid, grid_size=grid_size)


def footprint_shares(
    footprints: np.ndarray, polygons: np.ndarray, *, grid_size: float
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], npt.NDArray[np.float64]]:
    """Every intersecting (footprint, polygon) pair and the footprint's area share in it.

    Returns positions into *footprints* and *polygons* and the shares; the
    intersections go through :func:`_robust` with *grid_size* (units of the
    geometries' CRS).
    """
    fi, pi = shapely.STRtree(polygons).query(footprints, predicate="intersects")
    inside = shapely.area(
        _robust(shapely.intersection, footprints[fi], polygons[pi], grid_size=grid_size)
    )
    return fi, pi, inside / np.maximum(shapely.area(footprints[fi]), 1e-30)


__all__ = ["PROBLEMS", "check_topology", "fix_topology"]

#: Problem kinds with zh-CN and English names.
PROBLEMS: dict[str, tuple[str, str]] = {
    "gap": ("缝隙", "Gap"),
    "overlap": ("重叠", "Overlap"),
    "sliver": ("碎片", "Sliver"),
    "outside_community": ("越出社区边界", "Crosses the community boundary"),
    "cuts_building": ("切割楼栋", "Cuts a building"),
}

COLUMNS = ["problem", "codes", "community_code", "area_m2", "detail", "geometry"]


def _polygonal(g: BaseGeometry) -> np.ndarray:
    parts = shapely.get_parts(shapely.get_parts(g))
    return np.asarray(parts[np.isin(shapely.get_type_id(parts), [3]) & (shapely.area(parts) > 0)])


def _thinness(metric: np.ndarray) -> np.ndarray:
    """Polsby-Popper compactness of metric polygons (1 for a disc, near 0 for a strip)."""
    perim = shapely.length(metric)
    return np.where(perim > 0, 4 * np.pi * shapely.area(metric) / np.maximum(perim, 1e-30) ** 2, 0)


def _metric_crs(*frames: gpd.GeoDataFrame | None) -> pyproj.CRS | None:
    """The local metric CRS of the first frame with a geometry (None if none has one)."""
    for frame in frames:
        if frame is None or not len(frame):
            continue
        geo = frame.geometry
        present = geo[~(geo.isna() | geo.is_empty).to_numpy()]
        if len(present):
            return local_crs(present)
    return None


def _in_metres(frame: gpd.GeoDataFrame | None, crs: pyproj.CRS) -> np.ndarray:
    """The geometries of *frame* in the metric *crs*, as an array (empty for no frame)."""
    if frame is None or not len(frame):
        return np.empty(0, dtype=object)
    return np.asarray(to_local(frame.geometry, crs).values, dtype=object)


def _wide(parts: np.ndarray, min_area_m2: float, tolerance_m: float) -> np.ndarray:
    """Which metric *parts* are real problems: not too small, and wider than *tolerance_m*.

    A strip narrower than the tolerance is rounding, however long: the shared
    edge of two grids drawn in different coordinates, or a straight edge that
    another polygon follows through more vertices.
    """
    if not len(parts):
        return np.zeros(0, dtype=bool)
    core = shapely.buffer(parts, -tolerance_m / 2.0, join_style="mitre")
    keep: np.ndarray = (shapely.area(parts) >= min_area_m2) & ~shapely.is_empty(core)
    return keep


def check_topology(
    grids: gpd.GeoDataFrame,
    communities: gpd.GeoDataFrame | None = None,
    buildings: gpd.GeoDataFrame | None = None,
    *,
    min_area_m2: float = 1.0,
    sliver_m2: float = 100.0,
    sliver_thinness: float = 0.05,
    tolerance_m: float = 0.05,
) -> gpd.GeoDataFrame:
    """Report gaps, overlaps, slivers, boundary crossings and cut buildings.

    The check runs in the local metric CRS of the grids (see
    :mod:`gridmap.geo.projection`), so tolerances and areas are metres: in WGS84
    degrees an edge that is straight in metres bends, and two grids sharing it
    through different vertices seem to overlap or leave a gap.

    Parameters
    ----------
    grids : GeoDataFrame
        Grid polygons (any CRS; none means WGS84) with ``code`` (and
        ``community_code``).
    communities : GeoDataFrame, optional
        Community polygons with ``code``; needed for gaps and crossings.
    buildings : GeoDataFrame, optional
        Footprints; needed for cut buildings.
    min_area_m2 : float
        Gaps, overlaps and crossings smaller than this are ignored (rounding).
    sliver_m2, sliver_thinness : float
        A grid part smaller than *sliver_m2* or with Polsby-Popper thinness
        below *sliver_thinness* is a sliver (a grid's only part is never one).
    tolerance_m : float
        Gaps, overlaps and crossings no wider than this (in metres) are
        ignored, however long they are (rounding of shared edges).

    Returns
    -------
    GeoDataFrame
        One row per problem: ``problem`` (see :data:`PROBLEMS`), ``codes`` (the
        grids concerned, comma-separated), ``community_code``, ``area_m2``,
        ``detail`` and the problem's geometry (WGS84). Empty when all is well.

    Examples
    --------
    >>> import shapely, geopandas as gpd
    >>> c = gpd.GeoDataFrame({"code": ["990100001001"]},
    ...                      geometry=[shapely.box(24.9, 60.1, 24.92, 60.11)], crs=4326)
    >>> g = gpd.GeoDataFrame({"code": ["a", "b"], "community_code": "990100001001"},
    ...     geometry=[shapely.box(24.9, 60.1, 24.911, 60.11),
    ...               shapely.box(24.91, 60.1, 24.919, 60.11)], crs=4326)
    >>> check_topology(g, c)["problem"].tolist()
    ['overlap', 'gap']
    """
    crs = _metric_crs(grids, communities)
    if crs is None:
        return gpd.GeoDataFrame(pd.DataFrame(columns=COLUMNS), geometry="geometry", crs=4326)
    check = _Checker(grids, crs, min_area_m2=min_area_m2, tolerance_m=tolerance_m)
    check.overlaps()
    check.slivers(sliver_m2, sliver_thinness)
    if communities is not None and len(communities):
        cgeoms = _in_metres(communities, crs)
        ccol = (
            communities["code"] if "code" in communities else pd.Series("", index=communities.index)
        )
        for cg, code in zip(cgeoms, ccol.astype(str).tolist(), strict=True):
            check.community(cg, code)
    check.cut_buildings(_in_metres(buildings, crs))
    frame = pd.DataFrame(check.rows, columns=COLUMNS)
    metric = gpd.GeoSeries(frame["geometry"].to_numpy(dtype=object), crs=crs, index=frame.index)
    frame["area_m2"] = np.round(shapely.area(np.asarray(metric.values)), 2).astype("float64")
    frame["geometry"] = to_wgs84(metric)
    return gpd.GeoDataFrame(frame, geometry="geometry", crs=4326)


class _Checker:
    """The grids of :func:`check_topology` in metres, and the problems found so far."""

    def __init__(
        self, grids: gpd.GeoDataFrame, crs: pyproj.CRS, *, min_area_m2: float, tolerance_m: float
    ) -> None:
        self.geoms = _in_metres(grids, crs)
        self.min_area_m2 = min_area_m2
        self.tolerance_m = tolerance_m
        self.snap = min(1e-3, tolerance_m / 10)  # metres, for _robust
        self.codes = (
            grids["code"].astype(str).to_numpy()
            if "code" in grids
            else np.arange(len(grids)).astype(str)
        )
        self.ccodes = (
            grids["community_code"].astype(str).to_numpy()
            if "community_code" in grids
            else np.full(len(grids), "", dtype=object)
        )
        self.tree = shapely.STRtree(self.geoms) if len(self.geoms) else None
        self.rows: list[dict[str, object]] = []

    def add(
        self, problem: str, geom: BaseGeometry, which: list[str], comm: str, detail: str
    ) -> None:
        self.rows.append(
            {
                "problem": problem,
                "codes": ",".join(which),
                "community_code": comm,
                "detail": detail,
                "geometry": geom,
            }
        )

    def real(self, g: BaseGeometry) -> np.ndarray:
        """The polygon parts of *g* that are problems, not rounding."""
        parts = _polygonal(g)
        kept: np.ndarray = parts[_wide(parts, self.min_area_m2, self.tolerance_m)]
        return kept

    def overlaps(self) -> None:
        geoms, codes = self.geoms, self.codes
        if len(geoms) <= 1:
            return
        a, b = shapely.STRtree(geoms).query(geoms, predicate="intersects")
        keep = a < b
        a, b = a[keep], b[keep]
        inter = _robust(shapely.intersection, geoms[a], geoms[b], grid_size=self.snap)
        for i, j, g in zip(a.tolist(), b.tolist(), inter, strict=True):
            for part in self.real(g):
                detail = "two grids cover this area"
                self.add("overlap", part, [codes[i], codes[j]], self.ccodes[i], detail)

    def slivers(self, sliver_m2: float, sliver_thinness: float) -> None:
        """Small or thin parts of multi-part grids."""
        for i, g in enumerate(self.geoms):
            parts = _polygonal(g)
            if len(parts) <= 1:
                continue
            area = shapely.area(parts)
            small = (area < sliver_m2) | (_thinness(parts) < sliver_thinness)
            largest = int(np.argmax(area))
            for k in np.flatnonzero(small).tolist():
                if k != largest:
                    detail = f"detached part of {area[k]:.1f} m²"
                    self.add("sliver", parts[k], [self.codes[i]], self.ccodes[i], detail)

    def _grids_of(self, cg: BaseGeometry, code: str) -> np.ndarray:
        """The grids of community *code*: by ``community_code``, else those meeting it."""
        if (self.ccodes == code).any():
            return np.flatnonzero(self.ccodes == code)
        if self.tree is None:
            return np.array([], int)
        return np.asarray(self.tree.query(cg, predicate="intersects"))

    def community(self, cg: BaseGeometry, code: str) -> None:
        """Gaps in community *cg* and its grids reaching outside it."""
        geoms, snap = self.geoms, self.snap
        mine = self._grids_of(cg, code)
        cover = (
            _robust(shapely.union_all, geoms[mine], grid_size=snap)
            if len(mine)
            else shapely.Polygon()
        )
        for part in self.real(_robust(shapely.difference, cg, cover, grid_size=snap)):
            near: list[int] = (
                self.tree.query(part, predicate="dwithin", distance=self.tolerance_m).tolist()
                if self.tree is not None
                else []
            )
            self.add("gap", part, [self.codes[k] for k in near], code, "no grid covers this area")
        for k in mine.tolist():
            for part in self.real(_robust(shapely.difference, geoms[k], cg, grid_size=snap)):
                detail = "grid reaches outside its community"
                self.add("outside_community", part, [self.codes[k]], code, detail)

    def cut_buildings(self, fp: np.ndarray) -> None:
        """Buildings (metric footprints *fp*) cut by a grid boundary."""
        if not (len(fp) and len(self.geoms)):
            return
        ok = ~(shapely.is_missing(fp) | shapely.is_empty(fp))
        fi, gi, share = footprint_shares(fp[ok], self.geoms, grid_size=self.snap)
        idx = np.flatnonzero(ok)[fi]
        if not len(idx):
            return
        cut = pd.DataFrame({"b": idx, "g": gi})[(share > 0.01) & (share < 0.99)]
        for bidx, grp in cut.groupby("b"):
            if len(grp) >= 2:
                gs = grp["g"].tolist()
                self.add(
                    "cuts_building",
                    fp[int(cast(int, bidx))],
                    [self.codes[k] for k in gs],
                    self.ccodes[gs[0]],
                    "a grid boundary runs through this building",
                )


def _longest_edge(piece: BaseGeometry, geoms: np.ndarray, exclude: int = -1) -> int:
    tree = shapely.STRtree(geoms)
    near = tree.query(piece, predicate="dwithin", distance=1e-9)
    best, best_len = -1, 0.0
    ring = shapely.boundary(piece)
    for k in near.tolist():
        if k == exclude:
            continue
        length = float(shapely.length(shapely.intersection(ring, shapely.buffer(geoms[k], 1e-9))))
        if length > best_len:
            best, best_len = k, length
    return best


def fix_topology(
    grids: gpd.GeoDataFrame,
    community: BaseGeometry,
    *,
    sliver_m2: float = 100.0,
) -> tuple[gpd.GeoDataFrame, list[str]]:
    """Repair grids of one community: clip, resolve overlaps, fill gaps, absorb slivers.

    Parameters
    ----------
    grids : GeoDataFrame
        The community's grids (WGS84) with ``code``.
    community : shapely geometry
        The community polygon.
    sliver_m2 : float
        Detached grid parts smaller than this join their best neighbour.

    Returns
    -------
    (GeoDataFrame, list of str)
        The repaired grids (same rows) and what was done.

    Examples
    --------
    >>> import shapely, geopandas as gpd
    >>> g = gpd.GeoDataFrame({"code": ["a", "b"]},
    ...     geometry=[shapely.box(0, 0, 0.6, 1), shapely.box(0.5, 0, 0.9, 1)], crs=4326)
    >>> fixed, actions = fix_topology(g, shapely.box(0, 0, 1, 1))
    >>> [round(float(a), 2) for a in shapely.area(fixed.geometry.values)], len(actions)
    ([0.6, 0.4], 2)
    """
    geoms = _robust(
        shapely.intersection, np.asarray(grids.geometry.values), community, grid_size=DEG_SNAP
    )
    codes = grids["code"].astype(str).tolist()
    actions: list[str] = []
    order = np.argsort(-shapely.area(geoms), kind="stable")
    for pos, i in enumerate(order.tolist()):
        for j in order[pos + 1 :].tolist():
            inter = shapely.area(
                _robust(shapely.intersection, geoms[i], geoms[j], grid_size=DEG_SNAP)
            )
            if inter > 0:
                geoms[j] = _robust(shapely.difference, geoms[j], geoms[i], grid_size=DEG_SNAP)
                actions.append(f"overlap of {codes[i]} and {codes[j]} given to {codes[i]}")
    cover = _robust(shapely.union_all, geoms, grid_size=DEG_SNAP)
    gaps = _polygonal(_robust(shapely.difference, community, cover, grid_size=DEG_SNAP))
    for gap in gaps:
        k = _longest_edge(gap, geoms)
        if k >= 0:
            geoms[k] = _robust(shapely.union_all, [geoms[k], gap], grid_size=DEG_SNAP)
            actions.append(f"gap joined to {codes[k]}")
        else:
            actions.append("gap touching no grid left as is")
    for i in range(len(geoms)):
        parts = _polygonal(geoms[i])
        if len(parts) <= 1:
            continue
        metric = np.asarray(to_metric(gpd.GeoSeries(parts, crs=4326))[0].values)
        largest = int(np.argmax(shapely.area(metric)))
        for k in range(len(parts)):
            if k == largest or shapely.area(metric[k]) >= sliver_m2:
                continue
            target = _longest_edge(parts[k], geoms, exclude=i)
            if target >= 0:
                geoms[target] = _robust(
                    shapely.union_all, [geoms[target], parts[k]], grid_size=DEG_SNAP
                )
                geoms[i] = _robust(shapely.difference, geoms[i], parts[k], grid_size=DEG_SNAP)
                actions.append(f"sliver of {codes[i]} joined to {codes[target]}")
    out = grids.copy()
    out["geometry"] = [
        shapely.union_all(p) if len(p := _polygonal(g)) else shapely.Polygon() for g in geoms
    ]
    gone = shapely.is_empty(np.asarray(out.geometry.values))
    actions.extend(
        f"{codes[i]} lay wholly under other grids: removed" for i in np.flatnonzero(gone)
    )
    out = out[~gone]
    return gpd.GeoDataFrame(out, geometry="geometry", crs=4326), actions
