"""The topology check works in metres: rounding of shared edges is no overlap, 2 m are.

Two grids side by side near Helsinki are drawn exactly in UTM 35N (EPSG:32635,
the local CRS :mod:`gridmap.geo.projection` picks there) and stored in WGS84, as an
import from a metric source would be. Their shared edge is the same line in
metres, but not in degrees: once through different vertices (a straight line in
metres bends in degrees, so the two grids' polylines cross), once through the
same vertices moved by 1e-9 degrees (the rounding of a round trip through
another system). Neither is an overlap or a gap; a real 2 m overlap is one,
with its area in square metres.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pyproj
import pytest
import shapely

from gridmap.division.topology import check_topology
from gridmap.geo.projection import area_m2, to_wgs84

UTM35N = pyproj.CRS.from_epsg(32635)
X0, Y0 = 385_000.0, 6_670_000.0  # Helsinki, in UTM 35N
WIDTH, HEIGHT = 1_000.0, 400.0  # the shared edge runs 1 km east-west
COMMUNITY = "990100001001"


def _grids(
    south_edge: list[float], north_edge: list[float], *, north_from: float = Y0
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Grids south and north of the line y = Y0 and their community, in WGS84.

    *south_edge*, *north_edge*: the x of each grid's vertices on the shared edge.
    """
    south = shapely.Polygon(
        [(X0, Y0 - HEIGHT), (X0 + WIDTH, Y0 - HEIGHT), *[(x, Y0) for x in south_edge[::-1]]]
    )
    north = shapely.Polygon(
        [*[(x, north_from) for x in north_edge], (X0 + WIDTH, Y0 + HEIGHT), (X0, Y0 + HEIGHT)]
    )
    community = shapely.Polygon(
        [
            (X0, Y0 - HEIGHT),
            (X0 + WIDTH, Y0 - HEIGHT),
            (X0 + WIDTH, Y0),
            (X0 + WIDTH, Y0 + HEIGHT),
            (X0, Y0 + HEIGHT),
            (X0, Y0),
        ]
    )
    grids = gpd.GeoDataFrame(
        {"code": [f"{COMMUNITY}001", f"{COMMUNITY}002"], "community_code": COMMUNITY},
        geometry=[south, north],
        crs=UTM35N,
    )
    communities = gpd.GeoDataFrame({"code": [COMMUNITY]}, geometry=[community], crs=UTM35N)
    return to_wgs84(grids), to_wgs84(communities)


def _bent() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """The shared edge through other vertices on each side: the polylines cross in degrees."""
    return _grids([X0, X0 + 250.0, X0 + WIDTH], [X0, X0 + 750.0, X0 + WIDTH])


def _rounded() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """The same vertices on both sides, the north grid's moved by ±1e-9 degrees."""
    edge = np.linspace(X0, X0 + WIDTH, 41).tolist()
    grids, communities = _grids(edge, edge)
    north = shapely.get_coordinates(grids.geometry.iloc[1])
    shared = np.arange(1, 40)  # the inner vertices of the shared edge
    north[shared, 1] += np.where(shared % 2 == 0, 1e-9, -1e-9)
    grids.loc[grids.index[1], "geometry"] = shapely.Polygon(north)
    return grids, communities


@pytest.mark.parametrize("case", [_bent, _rounded], ids=["bent", "rounded"])
def test_a_shared_edge_exact_in_metres_is_no_overlap_or_gap(case: object) -> None:
    assert callable(case)
    grids, communities = case()
    south, north = np.asarray(grids.geometry.values)
    # In degrees the two grids do not share their edge: they overlap a little
    # and leave a little gap, along the whole kilometre.
    assert shapely.area(shapely.intersection(south, north)) > 0
    assert shapely.area(shapely.difference(communities.geometry.iloc[0], south | north)) > 0
    edge = shapely.LineString(shapely.get_coordinates(south)[2:-1])
    apart = shapely.distance(shapely.points(shapely.get_coordinates(north)[1:-4]), edge)
    assert 5e-10 < apart.max() < 1e-6  # degrees
    problems = check_topology(grids, communities)
    assert problems.empty, problems[["problem", "codes", "area_m2"]]


def test_a_real_two_metre_overlap_is_reported_in_square_metres() -> None:
    edge = [X0, X0 + 250.0, X0 + WIDTH]
    grids, communities = _grids(edge, [X0, X0 + 750.0, X0 + WIDTH], north_from=Y0 - 2.0)
    problems = check_topology(grids, communities)
    assert problems["problem"].tolist() == ["overlap"], problems[["problem", "area_m2"]]
    overlap = problems.iloc[0]
    assert overlap["codes"] == f"{COMMUNITY}001,{COMMUNITY}002"
    assert overlap["community_code"] == COMMUNITY
    assert overlap["area_m2"] == pytest.approx(2.0 * WIDTH, rel=1e-6)
    # The geometry comes back in WGS84 (and measures the same there).
    assert problems.crs.to_epsg() == 4326
    minx, miny, maxx, maxy = problems.total_bounds
    assert 24.9 < minx < maxx < 24.96 and 60.1 < miny < maxy < 60.2
    assert float(area_m2(problems.geometry).iloc[0]) == pytest.approx(2.0 * WIDTH, rel=1e-6)


def test_narrower_than_the_tolerance_is_rounding() -> None:
    edge = [X0, X0 + WIDTH]
    grids, communities = _grids(edge, edge, north_from=Y0 - 0.02)  # 2 cm: below 5 cm
    assert check_topology(grids, communities).empty
    found = check_topology(grids, communities, tolerance_m=0.01)
    assert found["problem"].tolist() == ["overlap"]
    assert found["area_m2"].iloc[0] == pytest.approx(0.02 * WIDTH, rel=1e-4)


def _bench_town(n: int) -> tuple[shapely.Geometry, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """The synthetic town of benchmarks/bench_division.py (real Helsinki streets)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_division.py"
    spec = importlib.util.spec_from_file_location("bench_division_town", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    community, buildings, roads, _ = module.town(n, area=1.0)
    return community, buildings, roads


@pytest.mark.timeout(300)
def test_check_topology_survives_grids_that_break_float_overlay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Dissolved street blocks as they were before the coverage cleaning: their shared
    edges carry vertices on one side only, and once projected to metres GEOS's
    floating overlay raised "TopologyException: side location conflict" inside
    check_topology (5,000-building town). It now falls back to snap-rounding and
    reports the tiling as clean."""
    import gridmap.division.balanced as balanced
    from gridmap.division import GridSize, divide_balanced

    community, buildings, roads = _bench_town(5_000)
    monkeypatch.setattr(balanced, "as_coverage", lambda geoms, footprints: geoms)
    d = divide_balanced(
        community, buildings, roads, community_code="990100001001", size=GridSize(300, 200, 500)
    )
    grids = np.asarray(d.grids.geometry.values)
    assert not shapely.coverage_is_valid(grids)  # the hard input is really there
    frame = gpd.GeoDataFrame({"code": ["990100001001"]}, geometry=[community], crs=4326)
    problems = check_topology(d.grids, frame, buildings)
    assert not {"overlap", "gap", "outside_community"} & set(problems["problem"])
    # and the division as shipped is a valid coverage, checked the same way
    monkeypatch.undo()
    clean = divide_balanced(
        community, buildings, roads, community_code="990100001001", size=GridSize(300, 200, 500)
    )
    assert shapely.coverage_is_valid(np.asarray(clean.grids.geometry.values))
    assert clean.grids["code"].tolist() == d.grids["code"].tolist()
    assert not {"overlap", "gap", "outside_community"} & set(
        check_topology(clean.grids, frame, buildings)["problem"]
    )
