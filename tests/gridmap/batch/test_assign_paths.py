"""One point → grid rule on every path: batch kernel, single-machine assignment, statistics.

The batch paths (:class:`gridmap.batch.GridIndex`, ``ST_Within``: a point on a
boundary is in no grid), :func:`gridmap.division.bisect.assign_points` and the grid
statistics (``intersects``: a point on a boundary counts in a grid touching it)
all answer through :func:`gridmap.division.assign.locate_in_grids` with the grids
sorted by code, so where several grids hold a point the smallest code wins. The
hard cases are the ones checked here: points exactly on a shared edge or corner,
and points in overlapping grids, with the grids given out of code order.

The synthetic grids are boxes with exactly representable edges; the real ones
are the Helsinki demo grids, probed at their own vertices (exactly on their
boundaries) and at random points.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridmap.batch import GridIndex
from gridmap.batch.single import aggregate_frame
from gridmap.division.assign import Predicate, locate_in_grids
from gridmap.division.bisect import assign_points
from gridmap.division.stats import grid_statistics
from tests.gridmap.batch.conftest import Helsinki

A, B, C = "990100001001001", "990100001001002", "990100001001003"

#: Given out of code order: C | A share the edge x = 24.91; B overlaps A's corner.
GRIDS = gpd.GeoDataFrame(
    {"code": [C, B, A], "community_code": "990100001001"},
    geometry=[
        shapely.box(24.90, 60.10, 24.91, 60.11),  # C
        shapely.box(24.915, 60.105, 24.925, 60.115),  # B, over A's top right quarter
        shapely.box(24.91, 60.10, 24.92, 60.11),  # A
    ],
    crs=4326,
)

#: (x, y, grid by "within", grid by "intersects")
CASES = [
    (24.91, 60.105, None, A),  # on the edge C and A share
    (24.91, 60.11, None, A),  # on the corner C and A share
    (24.905, 60.105, C, C),  # inside C only
    (24.9175, 60.1075, A, A),  # inside A and B: the smallest code
    (24.915, 60.1075, A, A),  # on B's edge, inside A
    (24.92, 60.1075, B, A),  # on A's edge, inside B
    (24.9175, 60.11, B, A),  # on A's top edge, inside B
    (24.915, 60.11, None, A),  # where A's top edge crosses B's left edge
    (24.9225, 60.1125, B, B),  # inside B only
    (24.95, 60.15, None, None),  # outside every grid
]


def _reference(points: np.ndarray, grids: gpd.GeoDataFrame, predicate: Predicate) -> list[object]:
    """``sjoin`` and the smallest code among the matches: the rule, independently."""
    pts = gpd.GeoDataFrame(geometry=points, crs=4326)
    joined = gpd.sjoin(pts, grids[["code", "geometry"]], predicate=predicate)
    smallest = joined.groupby(level=0)["code"].min()
    return [smallest.get(i) for i in range(len(points))]


def _events(x: np.ndarray, y: np.ndarray) -> gpd.GeoDataFrame:
    n = len(x)
    return gpd.GeoDataFrame(
        {
            "status": "reported",
            "category": "dispute",
            "reported_at": pd.Timestamp("2026-10-01", tz="UTC"),
        },
        geometry=shapely.points(x, y),
        index=pd.RangeIndex(n),
        crs=4326,
    )


def _statistics_counts(grids: gpd.GeoDataFrame, x: np.ndarray, y: np.ndarray) -> pd.Series:
    stats = grid_statistics(grids, events=_events(x, y), at="2026-11-01T00:00Z")
    return pd.Series(stats["events_total"].to_numpy(), index=grids["code"].to_numpy())


def _counts(codes: Sequence[object], grids: gpd.GeoDataFrame) -> pd.Series:
    found = pd.Series([c for c in codes if c is not None], dtype=object).value_counts()
    return found.reindex(grids["code"].to_numpy(), fill_value=0).astype("int64")


def test_edges_and_overlaps_give_one_answer_on_every_path() -> None:
    x = np.array([c[0] for c in CASES])
    y = np.array([c[1] for c in CASES])
    within = [c[2] for c in CASES]
    intersects = [c[3] for c in CASES]
    points = np.asarray(shapely.points(x, y), dtype=object)
    assert _reference(points, GRIDS, "within") == within
    assert _reference(points, GRIDS, "intersects") == intersects

    # Batch kernel (every batch path calls it): interior only, smallest code.
    assert GridIndex.from_frame(GRIDS).assign(points).tolist() == within
    # Single machine, grids in code order: the same answer for the same predicate.
    by_code = GRIDS.sort_values("code")
    pts = gpd.GeoSeries(points, crs=4326)
    assert assign_points(pts, by_code, predicate="within").tolist() == within
    assert assign_points(pts, by_code, predicate="intersects").tolist() == intersects
    # The whole batch run over events at these points.
    result = aggregate_frame(_events(x, y), GRIDS, hotspots=False).grid_counts
    got = dict(zip(result["grid_code"], result["count"], strict=True))
    assert got == {A: 2, B: 3, C: 1, None: 4} == dict(Counter(within))
    # Statistics count an event on a boundary in the smallest code touching it.
    counts = _statistics_counts(GRIDS, x, y)
    pd.testing.assert_series_equal(counts, _counts(intersects, GRIDS), check_names=False)


def test_real_grids_agree_at_their_vertices(world: Helsinki) -> None:
    grids = world.grids[["code", "community_code", "geometry"]].reset_index(drop=True)
    shuffled = grids.sample(frac=1.0, random_state=3).reset_index(drop=True)
    index = GridIndex.from_frame(shuffled)
    # Every vertex lies exactly on a grid boundary (most on an edge two grids share).
    corners = shapely.get_coordinates(shapely.boundary(index.geometries))
    corners = np.unique(corners, axis=0)
    rng = np.random.default_rng(5)
    x0, y0, x1, y1 = grids.total_bounds
    x = np.concatenate([corners[:, 0], rng.uniform(x0, x1, 3_000)])
    y = np.concatenate([corners[:, 1], rng.uniform(y0, y1, 3_000)])
    points = np.asarray(shapely.points(x, y), dtype=object)

    batch = index.assign_xy(x, y)
    single = locate_in_grids(points, index.geometries, predicate="within")
    np.testing.assert_array_equal(batch, single)
    assert index.codes_of(batch).tolist() == _reference(points, shuffled, "within")
    on_edge = batch[: len(corners)]
    assert (on_edge == -1).mean() > 0.9  # a vertex is in no grid's interior

    touching = index.codes_of(locate_in_grids(points, index.geometries, predicate="intersects"))
    assert touching.tolist() == _reference(points, shuffled, "intersects")
    assert (touching[: len(corners)] != None).all()  # noqa: E711 (elementwise)
    counts = _statistics_counts(shuffled, x, y)
    pd.testing.assert_series_equal(counts, _counts(touching.tolist(), shuffled), check_names=False)
