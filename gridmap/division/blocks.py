"""Street blocks (街区): the community polygon cut by the road network.

Blocks are the building stones of the street-following division: the
community is split by every road line (``polygonize`` of the roads clipped to
the community together with the community boundary), so the blocks tile the
community with no gaps and no overlaps. Blocks that share a building (a
footprint crossing a road line, e.g. a passage under a house) are merged into
one *unit*, so that no grid boundary can ever cut a building.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from gridmap.geo.projection import local_crs

__all__ = ["BLOCK_ROAD_CLASSES_EXCLUDED", "Units", "street_blocks", "street_units"]

#: Road classes that never bound a block (indoor ways, lifts).
BLOCK_ROAD_CLASSES_EXCLUDED: frozenset[str] = frozenset({"corridor", "elevator", "proposed"})


@dataclass
class Units:
    """Indivisible pieces a community is divided into, and what they hold.

    Attributes
    ----------
    geometry : numpy.ndarray
        Unit polygons (WGS84); together they tile the community.
    building_unit : pandas.Series
        Unit number of each building (aligned to the buildings' index; -1 for a
        building outside the community).
    weight : numpy.ndarray
        Weight of each unit (sum over its buildings, or another measure).
    centroid : numpy.ndarray
        ``(n, 2)`` unit centres in metres (local UTM).
    area : numpy.ndarray
        Unit areas in square metres.
    neighbours : list of dict
        For each unit, neighbour unit → shared boundary length in metres.
    splittable : numpy.ndarray of bool
        False for units that could not be split below the upper limit.
    """

    geometry: np.ndarray
    building_unit: pd.Series
    weight: np.ndarray
    centroid: np.ndarray
    area: np.ndarray
    neighbours: list[dict[int, float]]
    splittable: np.ndarray

    def __len__(self) -> int:
        return len(self.geometry)


def street_blocks(
    community: BaseGeometry,
    roads: gpd.GeoDataFrame | gpd.GeoSeries | None,
    *,
    exclude_classes: frozenset[str] = BLOCK_ROAD_CLASSES_EXCLUDED,
) -> np.ndarray:
    """Split *community* into street blocks along *roads*.

    Parameters
    ----------
    community : shapely geometry
        Polygon or MultiPolygon (WGS84), islands and holes allowed.
    roads : GeoDataFrame or GeoSeries, optional
        Road lines (WGS84); a ``class`` column, when present, drops
        *exclude_classes*. None or empty gives the community as one block.
    exclude_classes : frozenset of str
        Road classes that do not bound blocks.

    Returns
    -------
    numpy.ndarray
        Block polygons tiling the community (no gaps, no overlaps).

    Examples
    --------
    >>> import shapely, geopandas as gpd
    >>> square = shapely.box(0, 0, 2, 2)
    >>> cross = gpd.GeoSeries([shapely.LineString([(1, -1), (1, 3)]),
    ...                        shapely.LineString([(-1, 1), (3, 1)])], crs=4326)
    >>> blocks = street_blocks(square, cross)
    >>> len(blocks), float(shapely.area(blocks).sum())
    (4, 4.0)
    """
    polys = shapely.get_parts(shapely.get_parts(community))
    polys = polys[shapely.area(polys) > 0]
    if roads is None or len(roads) == 0:
        return polys
    if isinstance(roads, gpd.GeoDataFrame) and "class" in roads.columns:
        roads = roads[~roads["class"].isin(sorted(exclude_classes))]
    lines = np.asarray(roads.geometry.values if hasattr(roads, "geometry") else roads.values)
    lines = lines[~(shapely.is_missing(lines) | shapely.is_empty(lines))]
    lines = lines[shapely.intersects(community, lines)]
    if len(lines) == 0:
        return polys
    clipped = shapely.intersection(lines, community)
    edges = shapely.union_all(np.concatenate([clipped, [shapely.boundary(community)]]))
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(edges)))
    faces = faces[shapely.area(faces) > 0]
    inside = shapely.contains_properly(community, shapely.point_on_surface(faces))
    # a face whose inner point is on the boundary (degenerate) is judged by overlap
    borderline = ~inside
    if borderline.any():
        share = shapely.area(shapely.intersection(faces[borderline], community)) / shapely.area(
            faces[borderline]
        )
        inside[borderline] = share > 0.5
    return np.asarray(faces[inside])


def _metric(geoms: np.ndarray, crs_of: BaseGeometry) -> np.ndarray:
    crs = local_crs(shapely.bounds(crs_of).tolist())
    return np.asarray(gpd.GeoSeries(geoms, crs=4326).to_crs(crs).values)


def street_units(
    community: BaseGeometry,
    roads: gpd.GeoDataFrame | gpd.GeoSeries | None,
    buildings: gpd.GeoDataFrame,
    *,
    weight: np.ndarray,
    split_above: float | None = None,
    exclude_classes: frozenset[str] = BLOCK_ROAD_CLASSES_EXCLUDED,
) -> Units:
    """Street blocks merged where a building spans several, split where too heavy.

    Parameters
    ----------
    community : shapely geometry
        The community polygon (WGS84).
    roads : GeoDataFrame or GeoSeries, optional
        Road lines (WGS84).
    buildings : GeoDataFrame
        Building footprints (WGS84).
    weight : numpy.ndarray
        Weight of each building (same order as *buildings*).
    split_above : float, optional
        Units heavier than this are cut between buildings (straight cuts that
        cross no footprint) into pieces no heavier, where possible.
    exclude_classes : frozenset of str
        Road classes that do not bound blocks.

    Returns
    -------
    Units
        The units, their weights, adjacency and the unit of each building.

    Examples
    --------
    >>> import numpy as np, shapely, geopandas as gpd
    >>> road = gpd.GeoSeries([shapely.LineString([(1, -1), (1, 3)])], crs=4326)
    >>> houses = gpd.GeoDataFrame(geometry=[shapely.box(0.2, 0.2, 0.4, 0.4),
    ...                                     shapely.box(1.2, 0.2, 1.4, 0.4)], crs=4326)
    >>> u = street_units(shapely.box(0, 0, 2, 2), road, houses, weight=np.array([3.0, 4.0]))
    >>> len(u), sorted(u.weight.tolist())
    (2, [3.0, 4.0])
    """
    blocks = street_blocks(community, roads, exclude_classes=exclude_classes)
    fp = np.asarray(buildings.geometry.values)
    present = ~(shapely.is_missing(fp) | shapely.is_empty(fp))
    rep = np.full(len(fp), None, dtype=object)
    rep[present] = shapely.point_on_surface(fp[present])
    # 1. merge blocks that share a building (footprint overlapping several blocks)
    tree = shapely.STRtree(blocks)
    bi, ki = tree.query(fp[present], predicate="intersects")
    bidx = np.flatnonzero(present)[bi]
    parent = np.arange(len(blocks))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = int(parent[i])
        return i

    if len(bi):
        shared = shapely.area(shapely.intersection(fp[bidx], blocks[ki]))
        total = shapely.area(fp[bidx])
        real = shared > 0.01 * np.maximum(total, 1e-30)
        frame = pd.DataFrame({"b": bidx[real], "k": ki[real]})
        first = frame.groupby("b")["k"].transform("first").to_numpy()
        for a, c in zip(first, frame["k"].to_numpy(), strict=True):
            ra, rc = find(int(a)), find(int(c))
            if ra != rc:
                parent[max(ra, rc)] = min(ra, rc)
    roots = np.array([find(i) for i in range(len(blocks))], dtype=int)
    _, group = np.unique(roots, return_inverse=True)
    if len(np.unique(group)) < len(blocks):
        merged = np.array(
            [shapely.union_all(blocks[group == g]) for g in range(group.max() + 1)], dtype=object
        )
    else:
        merged = blocks
    # 2. each building to the unit holding its representative point
    unit_of = _locate(merged, rep, fp)
    w = np.asarray(weight, dtype=float)
    # 3. split units over the limit between buildings
    splittable = np.ones(len(merged), dtype=bool)
    if split_above is not None and split_above > 0:
        merged, unit_of, splittable = _split_heavy(merged, unit_of, fp, w, split_above)
    uw = np.bincount(unit_of[unit_of >= 0], weights=w[unit_of >= 0], minlength=len(merged))
    metric = _metric(merged, community)
    cen = shapely.get_coordinates(shapely.point_on_surface(metric))
    return Units(
        geometry=merged,
        building_unit=pd.Series(unit_of, index=buildings.index, name="unit"),
        weight=uw,
        centroid=cen,
        area=shapely.area(metric),
        neighbours=_adjacency(merged, metric),
        splittable=splittable,
    )


def _locate(units: np.ndarray, rep: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """Unit of each building: the one containing its point, else the most overlapped."""
    out = np.full(len(rep), -1, dtype=int)
    ok = np.array([r is not None for r in rep], dtype=bool)
    if not ok.any() or len(units) == 0:
        return out
    tree = shapely.STRtree(units)
    pi, ui = tree.query(rep[ok], predicate="intersects")
    idx = np.flatnonzero(ok)
    seen = pd.Series(ui, index=idx[pi])
    seen = seen[~seen.index.duplicated(keep="first")]
    out[seen.index.to_numpy()] = seen.to_numpy()
    lost = np.flatnonzero(ok & (out < 0))
    if len(lost):
        fi, ui2 = tree.query(fp[lost], predicate="intersects")
        if len(fi):
            area = shapely.area(shapely.intersection(fp[lost[fi]], units[ui2]))
            best = pd.DataFrame({"b": lost[fi], "u": ui2, "a": area}).sort_values(
                ["b", "a"], ascending=[True, False]
            )
            best = best.drop_duplicates("b")
            out[best["b"].to_numpy()] = best["u"].to_numpy()
    return out


def _adjacency(units: np.ndarray, metric: np.ndarray) -> list[dict[int, float]]:
    """Rook adjacency with shared boundary lengths in metres."""
    nb: list[dict[int, float]] = [{} for _ in range(len(units))]
    if len(units) < 2:
        return nb
    tree = shapely.STRtree(metric)
    a, b = tree.query(metric, predicate="intersects")
    keep = a < b
    a, b = a[keep], b[keep]
    shared = shapely.length(
        shapely.intersection(shapely.boundary(metric[a]), shapely.boundary(metric[b]))
    )
    for i, j, s in zip(a.tolist(), b.tolist(), shared.tolist(), strict=True):
        if s > 1e-3:
            nb[i][j] = s
            nb[j][i] = s
    # pieces that meet their neighbours only within rounding: link them weakly
    lonely = np.array([i for i in range(len(nb)) if not nb[i]], dtype=int)
    if len(lonely):
        li, lj = tree.query(metric[lonely], predicate="dwithin", distance=0.05)
        for i, j in zip(lonely[li].tolist(), lj.tolist(), strict=True):
            if i != j:
                nb[i][j] = nb[j][i] = max(nb[j].get(i, 0.0), 1e-3)
    return nb


def _split_heavy(
    units: np.ndarray, unit_of: np.ndarray, fp: np.ndarray, w: np.ndarray, limit: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut units heavier than *limit* along straight lines that cross no building."""
    uw = np.bincount(unit_of[unit_of >= 0], weights=w[unit_of >= 0], minlength=len(units))
    heavy = np.flatnonzero(uw > limit)
    if len(heavy) == 0:
        return units, unit_of, np.ones(len(units), dtype=bool)
    geoms: list[BaseGeometry] = []
    members: list[np.ndarray] = []
    ok_flags: list[bool] = []
    for u in range(len(units)):
        mine = np.flatnonzero(unit_of == u)
        if u not in set(heavy.tolist()):
            geoms.append(units[u])
            members.append(mine)
            ok_flags.append(True)
            continue
        for g, m, ok in _cut(units[u], mine, fp, w, limit):
            geoms.append(g)
            members.append(m)
            ok_flags.append(ok)
    # explode multi-part pieces; buildings follow their representative point
    out_geoms: list[BaseGeometry] = []
    out_ok: list[bool] = []
    new_of = unit_of.copy()
    for g, m, ok in zip(geoms, members, ok_flags, strict=True):
        parts = shapely.get_parts(g)
        parts = parts[shapely.area(parts) > 0]
        base = len(out_geoms)
        out_geoms.extend(parts.tolist())
        out_ok.extend([ok] * len(parts))
        if len(m) == 0:
            continue
        if len(parts) == 1:
            new_of[m] = base
        else:
            rep = shapely.point_on_surface(fp[m])
            local = _locate(parts, rep, fp[m])
            new_of[m] = np.where(local >= 0, base + local, base)
    return np.array(out_geoms, dtype=object), new_of, np.array(out_ok, dtype=bool)


def _cut(
    poly: BaseGeometry, mine: np.ndarray, fp: np.ndarray, w: np.ndarray, limit: float
) -> list[tuple[BaseGeometry, np.ndarray, bool]]:
    """Recursive bisection of one unit between building footprints."""
    stack = [(poly, mine)]
    done: list[tuple[BaseGeometry, np.ndarray, bool]] = []
    while stack:
        g, m = stack.pop()
        if w[m].sum() <= limit or len(m) <= 1:
            done.append((g, m, bool(w[m].sum() <= limit)))
            continue
        lo = _halve(g, m, fp, w)
        a, b = _split_between(g, fp[m[lo]], fp[m[~lo]])
        if shapely.is_empty(a) or shapely.is_empty(b):
            done.append((g, m, False))
            continue
        stack.append((a, m[lo]))
        stack.append((b, m[~lo]))
    return done


def _halve(g: BaseGeometry, m: np.ndarray, fp: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Mask of the buildings west (or south) of the weighted median along the longer side."""
    minx, miny, maxx, maxy = shapely.bounds(g).tolist()
    xscale = float(np.cos(np.radians((miny + maxy) / 2.0)))
    axis = 0 if (maxx - minx) * xscale >= (maxy - miny) else 1
    xy = shapely.get_coordinates(shapely.point_on_surface(fp[m]))
    order = np.lexsort((xy[:, 1 - axis], xy[:, axis]))
    cum = np.cumsum(w[m][order])
    k = int(np.searchsorted(cum, cum[-1] / 2.0))
    k = min(max(k, 0), len(m) - 2)
    lo = np.zeros(len(m), dtype=bool)
    lo[order[: k + 1]] = True
    return lo


def _split_between(
    g: BaseGeometry, a: np.ndarray, b: np.ndarray
) -> tuple[BaseGeometry, BaseGeometry]:
    """Cut *g* in two along a line running between footprints *a* and footprints *b*.

    The line is the Voronoi boundary between the two groups' outlines; each
    footprint then lies whole on its own side.
    """
    minx, miny, maxx, maxy = shapely.bounds(g).tolist()
    step = max(maxx - minx, maxy - miny) / 60.0
    pa = shapely.get_coordinates(shapely.segmentize(shapely.boundary(a), step))
    pb = shapely.get_coordinates(shapely.segmentize(shapely.boundary(b), step))
    pts = np.concatenate([pa, pb])
    side = np.concatenate([np.zeros(len(pa), dtype=bool), np.ones(len(pb), dtype=bool)])
    pts, first = np.unique(pts, axis=0, return_index=True)
    side = side[first]
    cells = shapely.get_parts(
        shapely.voronoi_polygons(
            shapely.multipoints(pts), extend_to=shapely.envelope(g), ordered=True
        )
    )
    if len(cells) != len(pts):
        return shapely.Polygon(), shapely.Polygon()
    region_a = shapely.union_all(np.concatenate([cells[~side], a]))
    region_a = shapely.difference(region_a, shapely.union_all(b))
    piece_a = _polygonal(shapely.intersection(g, region_a))
    # fragments of one side that hold none of its buildings go to the other side
    parts = shapely.get_parts(piece_a)
    held = np.zeros(len(parts), dtype=bool)
    if len(parts):
        idx, _ = shapely.STRtree(a).query(parts, predicate="intersects")
        held[idx] = True
    piece_a = shapely.union_all(parts[held]) if held.any() else shapely.Polygon()
    piece_b = _polygonal(shapely.difference(g, piece_a))
    parts_b = shapely.get_parts(piece_b)
    if len(parts_b) > 1:
        held_b = np.zeros(len(parts_b), dtype=bool)
        idx, _ = shapely.STRtree(b).query(parts_b, predicate="intersects")
        held_b[idx] = True
        if (~held_b).any() and held_b.any():
            piece_a = shapely.union_all(np.concatenate([[piece_a], parts_b[~held_b]]))
            piece_b = shapely.union_all(parts_b[held_b])
    return piece_a, piece_b


def _polygonal(g: BaseGeometry) -> BaseGeometry:
    parts = shapely.get_parts(g)
    parts = parts[np.isin(shapely.get_type_id(parts), [3, 6]) & (shapely.area(parts) > 0)]
    return shapely.union_all(parts) if len(parts) else shapely.Polygon()
