"""Balanced, street-following grid division (``--method balanced``).

A community is cut into street blocks (:mod:`gridmap.division.blocks`), blocks
sharing a building are merged and blocks heavier than the upper limit are cut
between buildings; the resulting units are grouped into contiguous regions of
about the target weight (:mod:`gridmap.division.regions`). A grid polygon is the
union of its units, so grids tile the community exactly, follow the streets and
never cut a building.

Where the limits cannot be met the result says so, grid by grid, in
``Division.report`` (``status`` and ``reason``); limits are never broken
silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from gridmap.common.errors import BadInput
from gridmap.division.bisect import grid_codes
from gridmap.division.blocks import Units, street_units
from gridmap.division.regions import Limits, build_regions, components, region_count
from gridmap.division.topology import DEG_SNAP, footprint_shares
from gridmap.geo.projection import area_m2, to_metric

__all__ = [
    "WEIGHTS",
    "Division",
    "GridSize",
    "check_limits",
    "divide_balanced",
    "finish_grids",
]

#: Weights a division can balance on besides any numeric building column.
WEIGHTS: dict[str, tuple[str, str]] = {
    "households": ("户数", "Households"),
    "residents": ("人口", "Residents"),
    "buildings": ("楼栋数", "Buildings"),
    "events": ("事件数", "Events"),
    "street_length": ("街道长度(米)", "Street length (m)"),
}

GRID_COLUMNS = [
    "code",
    "community_code",
    "households",
    "residents",
    "buildings",
    "weight",
    "area_m2",
    "parts",
    "status",
    "reason",
    "geometry",
]


@dataclass
class Division:
    """The result of dividing one community.

    Attributes
    ----------
    grids : GeoDataFrame
        One row per grid: ``code``, ``community_code``, ``households``,
        ``residents``, ``buildings``, ``weight`` (what was balanced),
        ``area_m2``, ``parts`` (polygon parts; 1 = contiguous), ``status``
        (``ok``, ``over_max``, ``under_min``) and ``reason``, geometry (WGS84).
    building_codes : pandas.Series
        Grid code of each building (aligned to the buildings' index; None outside).
    limits : Limits
        The target and bounds used.
    weight : str
        The weight balanced on.
    notes : list of str
        Anything else worth telling (e.g. buildings straddling the boundary).
    """

    grids: gpd.GeoDataFrame
    building_codes: pd.Series
    limits: Limits
    weight: str
    notes: list[str] = field(default_factory=list)

    @property
    def report(self) -> pd.DataFrame:
        """Grids outside the limits with the reason (empty when all are within)."""
        bad = self.grids[self.grids["status"] != "ok"]
        return pd.DataFrame(bad[["code", "weight", "status", "reason"]])

    @property
    def within_limits(self) -> bool:
        """True when every grid lies within the limits."""
        return bool((self.grids["status"] == "ok").all())


@dataclass(frozen=True)
class GridSize:
    """How much a grid should hold: the target weight, its bounds and what is weighed.

    ``target``, ``low`` and ``high`` are the ``--target``, ``--min`` and ``--max``
    of ``gridmap grids generate``; *weight* is ``households`` (default),
    ``residents``, ``buildings`` (count), ``events`` (count of past events),
    ``street_length`` (metres of road) or any numeric building column.

    Examples
    --------
    >>> GridSize(target=250, low=150, high=350).limits()
    Limits(target=250.0, low=150.0, high=350.0)
    """

    target: float = 300
    low: float = 200
    high: float = 500
    weight: str = "households"

    def limits(self) -> Limits:
        """The validated bounds (see :func:`check_limits`)."""
        return check_limits(self.target, self.low, self.high)


def check_limits(target: float, low: float, high: float) -> Limits:
    """Validate a target and bounds.

    Raises
    ------
    gridmap.common.errors.BadInput
        For min > max, a target outside [min, max], or non-positive values.

    Examples
    --------
    >>> check_limits(300, 200, 500)
    Limits(target=300.0, low=200.0, high=500.0)
    """
    vals = (target, low, high)
    if not all(np.isfinite(v) for v in vals):
        raise BadInput("target, min and max must be finite numbers", field="target")
    if low < 0 or high <= 0 or target <= 0:
        raise BadInput("target and max must be positive and min not negative", field="min")
    if low > high:
        raise BadInput(f"min ({low:g}) is greater than max ({high:g})", field="min")
    if not low <= target <= high:
        raise BadInput(
            f"target ({target:g}) lies outside [min, max] = [{low:g}, {high:g}]",
            field="target",
        )
    return Limits(float(target), float(low), float(high))


def checked_inputs(
    community: BaseGeometry, buildings: gpd.GeoDataFrame, community_code: str, size: GridSize
) -> tuple[Limits, BaseGeometry, gpd.GeoDataFrame, np.ndarray]:
    """Check a division's inputs: its limits, the community, its buildings and their weights."""
    check_code(community_code)
    limits = size.limits()
    community = check_community(community)
    b = buildings_inside(buildings, community)
    return limits, community, b, building_weight(b, size.weight)


def building_weight(buildings: gpd.GeoDataFrame, weight: str) -> np.ndarray:
    if weight == "buildings":
        return np.ones(len(buildings))
    col = "households" if weight in ("events", "street_length") else weight
    if col not in buildings.columns:
        if weight in WEIGHTS:
            return np.zeros(len(buildings))
        raise BadInput(f"unknown weight {weight!r}; use {', '.join(WEIGHTS)} or a building column")
    values = pd.to_numeric(buildings[col], errors="coerce").fillna(0).to_numpy(dtype=float)
    if (values < 0).any():
        raise BadInput(f"weight {weight!r} has negative values", field="weight")
    return np.asarray(values, dtype=float)


def _unit_weight(
    units: Units,
    weight: str,
    building_w: np.ndarray,
    roads: gpd.GeoDataFrame | None,
    points: gpd.GeoDataFrame | None,
) -> np.ndarray:
    if weight == "events":
        if points is None or len(points) == 0:
            return np.zeros(len(units))
        geoms = np.asarray(points.geometry.values)
        pi, ui = shapely.STRtree(units.geometry).query(geoms, predicate="intersects")
        first = pd.Series(ui, index=pi)
        first = first[~first.index.duplicated(keep="first")]
        return np.bincount(first.to_numpy(dtype=int), minlength=len(units)).astype(float)
    if weight == "street_length":
        if roads is None or len(roads) == 0:
            return np.zeros(len(units))
        metric_units, crs = to_metric(gpd.GeoSeries(units.geometry, crs=4326))
        lines = shapely.union_all(np.asarray(roads.geometry.to_crs(crs).values))
        g = np.asarray(metric_units.values)
        total = shapely.length(shapely.intersection(g, lines))
        on_edge = shapely.length(shapely.intersection(shapely.boundary(g), lines))
        return np.asarray(total - on_edge / 2.0)
    return units.weight


def divide_balanced(
    community: BaseGeometry,
    buildings: gpd.GeoDataFrame,
    roads: gpd.GeoDataFrame | None,
    *,
    community_code: str,
    size: GridSize = GridSize(),
    points: gpd.GeoDataFrame | None = None,
    compactness: float = 0.05,
    previous: gpd.GeoDataFrame | None = None,
) -> Division:
    """Divide one community into contiguous, street-following grids of balanced weight.

    Parameters
    ----------
    community : shapely geometry
        Community (社区/村居) polygon or multipolygon in WGS84.
    buildings : GeoDataFrame
        Building footprints in WGS84 with the weight column (``households``).
    roads : GeoDataFrame, optional
        Road lines in WGS84; grid boundaries follow them. Without roads the
        blocks are cut between buildings only.
    community_code : str
        12-digit community code; grids get ``community_code + NNN``.
    size : GridSize
        Target weight per grid, the bounds every grid should respect
        (``--target``, ``--min``, ``--max``) and the weight: ``households``
        (default), ``residents``, ``buildings`` (count), ``events`` (count of
        *points*), ``street_length`` (metres of road) or any numeric building
        column.
    points : GeoDataFrame, optional
        Past events for ``weight="events"``.
    compactness : float
        Preference for short grid boundaries (0 = balance only).
    previous : GeoDataFrame, optional
        Grids in force: the division starts from them and changes only what
        balance and limits ask for (stable shapes and codes).

    Returns
    -------
    Division
        Grids, the grid code of each building, and per grid whether it is within
        the limits and, if not, why.

    Raises
    ------
    gridmap.common.errors.BadInput
        For a malformed community code, bad limits or an unknown weight.

    Examples
    --------
    >>> import shapely, geopandas as gpd
    >>> houses = [shapely.box(x, y, x + 2e-4, y + 1e-4)
    ...           for x in (24.9300, 24.9310, 24.9320, 24.9330) for y in (60.1700, 60.1710)]
    >>> b = gpd.GeoDataFrame({"households": [100] * 8}, geometry=houses, crs=4326)
    >>> street = gpd.GeoDataFrame(geometry=[shapely.LineString([(24.9316, 60.16),
    ...                                                         (24.9316, 60.18)])], crs=4326)
    >>> d = divide_balanced(shapely.box(24.929, 60.169, 24.935, 60.172), b, street,
    ...                     community_code="990100001001", size=GridSize(400, 300, 500))
    >>> d.grids["households"].tolist(), d.within_limits
    ([400, 400], True)
    """
    limits, community, b, bw = checked_inputs(community, buildings, community_code, size)
    weight = size.weight
    split_above = max(limits.target / 2.0, limits.low / 2.0)
    units = street_units(community, roads, b, weight=bw, split_above=split_above)
    uw = _unit_weight(units, weight, bw, roads, points)
    initial = None
    if previous is not None and len(previous):
        initial = labels_from(units.geometry, np.asarray(previous.geometry.values))
    labels = build_regions(
        units.neighbours,
        uw,
        units.centroid,
        units.area,
        limits,
        compactness=compactness,
        initial=initial,
    )
    geoms = np.array(
        [shapely.union_all(units.geometry[labels == r]) for r in range(int(labels.max()) + 1)],
        dtype=object,
    )
    geoms = as_coverage(geoms, np.asarray(b.geometry.values))
    region_of_building = np.where(
        units.building_unit.to_numpy() >= 0, labels[np.maximum(units.building_unit, 0)], -1
    )
    grids = gpd.GeoDataFrame({"region": np.arange(len(geoms))}, geometry=geoms, crs=4326)
    grids["weight"] = np.bincount(labels, weights=uw, minlength=len(geoms))
    status, reason = explain(units, labels, uw, limits)
    grids["status"], grids["reason"] = status, reason
    grids["code"] = grid_codes(grids, community_code)
    codes = pd.Series(
        [None if r < 0 else grids["code"].iat[r] for r in region_of_building],
        index=b.index,
        dtype=object,
    )
    grids = finish_grids(grids, b, codes, community_code=community_code)
    full = pd.Series(None, index=buildings.index, dtype=object, name="grid_code")
    full.loc[codes.index] = codes
    notes = _straddling(buildings, community)
    return Division(grids, full, limits, weight, notes)


def _shares(geoms: np.ndarray, footprints: np.ndarray) -> set[tuple[int, int]]:
    """(footprint, grid) pairs where the grid holds more than 1e-6 of the footprint."""
    fi, gi, share = footprint_shares(footprints, geoms, grid_size=DEG_SNAP)
    keep = share > 1e-6
    return set(zip(fi[keep].tolist(), gi[keep].tolist(), strict=True))


def as_coverage(geoms: np.ndarray, footprints: np.ndarray) -> np.ndarray:
    """The grids as a valid polygon coverage: neighbours share edges vertex for vertex.

    Dissolving street units leaves T-junctions on shared edges (a vertex on
    one side, not on the other) and overlaps of a few 1e-15 degrees. GEOS's
    coverage cleaner (``shapely.coverage_clean``) snaps them away, so that the
    grids form a valid coverage: exact shared edges for vector tiles and
    topology checks, and the fast side-of-edge path of point assignment
    (:mod:`gridmap.division.assign`). The cleaned grids are kept only if they
    are a valid coverage, every grid keeps its area to 1e-9 and every building
    lies in the same grids as before; otherwise the grids are returned as they are.

    Examples
    --------
    >>> a = shapely.Polygon([(0, 0), (1, 0), (1, 1), (0, 1)])
    >>> b = shapely.Polygon([(1, 0), (2, 0), (2, 1), (1, 1), (1, 0.5)])  # T-junction at (1, .5)
    >>> house = np.array([shapely.box(0.2, 0.2, 0.4, 0.4)], dtype=object)
    >>> grids = np.array([a, b], dtype=object)
    >>> bool(shapely.coverage_is_valid(grids))
    False
    >>> bool(shapely.coverage_is_valid(as_coverage(grids, house)))
    True
    """
    geoms = np.asarray(geoms, dtype=object)
    if len(geoms) < 2 or shapely.coverage_is_valid(geoms):
        return geoms
    try:
        clean: np.ndarray = np.array(shapely.coverage_clean(geoms), dtype=object)  # type: ignore[attr-defined]
        moved = shapely.symmetric_difference(geoms, clean)
    except shapely.errors.GEOSException:
        return geoms
    before, after = shapely.area(geoms), shapely.area(clean)
    ok = (
        len(clean) == len(geoms)
        and bool(shapely.is_valid(clean).all())
        and not bool(shapely.is_empty(clean).any())
        and bool(np.all(np.abs(after - before) <= 1e-9 * np.maximum(before, 1e-300)))
        and bool(shapely.coverage_is_valid(clean))
    )
    # only footprints touching what moved can lie in other grids now
    fp = footprints[~(shapely.is_missing(footprints) | shapely.is_empty(footprints))]
    moved = moved[~shapely.is_empty(moved)]
    if ok and len(fp) and len(moved):
        near = fp[np.unique(shapely.STRtree(fp).query(moved, predicate="intersects")[1])]
        ok = _shares(clean, near) == _shares(geoms, near)
    return clean if ok else geoms


def finish_grids(
    grids: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame,
    building_codes: pd.Series,
    *,
    community_code: str,
) -> gpd.GeoDataFrame:
    """Add counts, area and contiguity to *grids* (which has ``code`` and geometry).

    Parameters
    ----------
    grids : GeoDataFrame
        Grids with ``code`` (and optionally ``weight``, ``status``, ``reason``).
    buildings : GeoDataFrame
        Buildings with ``households`` and ``residents``.
    building_codes : pandas.Series
        Grid code of each building (aligned to *buildings*).
    community_code : str
        Written to ``community_code``.

    Returns
    -------
    GeoDataFrame
        Columns of :data:`GRID_COLUMNS`, sorted by code.

    Examples
    --------
    >>> import shapely, geopandas as gpd, pandas as pd
    >>> g = gpd.GeoDataFrame({"code": ["990100001001001"]}, geometry=[shapely.box(0, 0, 1, 1)],
    ...                      crs=4326)
    >>> b = gpd.GeoDataFrame({"households": [5]}, geometry=[shapely.Point(0.5, 0.5)], crs=4326)
    >>> finish_grids(g, b, pd.Series(["990100001001001"]), community_code="990100001001")[
    ...     ["households", "buildings", "parts"]].values.tolist()
    [[5, 1, 1]]
    """
    out = grids.copy()
    out["community_code"] = community_code
    frame = pd.DataFrame(
        {
            "code": building_codes.reindex(buildings.index),
            "households": pd.to_numeric(buildings.get("households", 0), errors="coerce"),
            "residents": pd.to_numeric(buildings.get("residents", 0), errors="coerce"),
        }
    ).dropna(subset=["code"])
    agg = frame.groupby("code").agg(
        households=("households", "sum"), residents=("residents", "sum"), buildings=("code", "size")
    )
    for col in ("households", "residents", "buildings"):
        out[col] = out["code"].map(agg[col]).fillna(0).astype("int64")
    if "weight" not in out:
        out["weight"] = out["households"].astype(float)
    if "status" not in out:
        out["status"] = "ok"
        out["reason"] = ""
    out["area_m2"] = area_m2(out.geometry).round(1) if len(out) else pd.Series(dtype=float)
    out["parts"] = shapely.get_num_geometries(np.asarray(out.geometry.values)).astype("int64")
    out = out.sort_values("code").reset_index(drop=True)
    return gpd.GeoDataFrame(out[GRID_COLUMNS], geometry="geometry", crs=4326)


def explain(
    units: Units, labels: np.ndarray, uw: np.ndarray, limits: Limits
) -> tuple[list[str], list[str]]:
    """Status and reason per region."""
    k = int(labels.max()) + 1
    reg_w = np.bincount(labels, weights=uw, minlength=k)
    comp_of = np.zeros(len(labels), dtype=int)
    comps = components(units.neighbours)
    for i, c in enumerate(comps):
        comp_of[c] = i
    status: list[str] = []
    reason: list[str] = []
    for r in range(k):
        w = float(reg_w[r])
        mine = np.flatnonzero(labels == r)
        comp = comps[int(comp_of[mine[0]])]
        comp_total = float(uw[comp].sum())
        whole = len(comp) == len(mine)
        _, feasible = region_count(comp_total, limits)
        if w > limits.high:
            status.append("over_max")
            heavy = mine[uw[mine] > limits.high]
            if len(heavy):
                reason.append(
                    f"a block of {uw[heavy].max():g} cannot be split between buildings "
                    f"below max {limits.high:g} (one building, or weight not held by buildings)"
                )
            elif not feasible:
                reason.append(
                    f"this connected part ({comp_total:g}) cannot be divided into grids "
                    f"within [{limits.low:g}, {limits.high:g}]"
                )
            else:
                reason.append("no contiguous grouping of the blocks found within max")
        elif w < limits.low:
            status.append("under_min")
            if whole and len(comps) == 1:
                reason.append(f"the whole community ({comp_total:g}) is under min {limits.low:g}")
            elif whole:
                reason.append(
                    f"an isolated part (island, no street connection) of {comp_total:g} "
                    f"is under min {limits.low:g}"
                )
            elif not feasible:
                reason.append(
                    f"this connected part ({comp_total:g}) cannot be divided into grids "
                    f"within [{limits.low:g}, {limits.high:g}]"
                )
            else:
                reason.append("no contiguous grouping of the blocks found above min")
        else:
            status.append("ok")
            reason.append("")
    return status, reason


def labels_from(units: np.ndarray, grids: np.ndarray) -> np.ndarray:
    """Index of the grid holding each unit's inner point (-1 for none)."""
    rep = shapely.point_on_surface(units)
    ui, gi = shapely.STRtree(grids).query(rep, predicate="intersects")
    out = np.full(len(units), -1, dtype=int)
    out[ui[::-1]] = gi[::-1]
    return out


def check_code(code: str) -> None:
    if len(code) != 12 or not code.isdigit():
        raise BadInput(f"community code must be 12 digits, got {code!r}", field="community")


def check_community(community: BaseGeometry) -> BaseGeometry:
    if community is None or shapely.is_empty(community):
        raise BadInput("the community has no geometry", field="community")
    if shapely.get_type_id(community) not in (3, 6):
        raise BadInput("the community must be a polygon or multipolygon", field="community")
    if not shapely.is_valid(community):
        community = shapely.make_valid(community, method="structure")
    return community


def buildings_inside(buildings: gpd.GeoDataFrame, community: BaseGeometry) -> gpd.GeoDataFrame:
    geoms = np.asarray(buildings.geometry.values)
    ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    ok[ok] = shapely.intersects(community, geoms[ok])
    return buildings[ok]


def _straddling(buildings: gpd.GeoDataFrame, community: BaseGeometry) -> list[str]:
    geoms = np.asarray(buildings.geometry.values)
    ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    cross = np.zeros(len(geoms), dtype=bool)
    cross[ok] = shapely.intersects(community, geoms[ok]) & ~shapely.covers(community, geoms[ok])
    n = int(cross.sum())
    if not n:
        return []
    return [
        f"{n} building(s) straddle the community boundary; each is counted in the grid "
        "holding its representative point"
    ]
