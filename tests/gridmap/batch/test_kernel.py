"""The shared batch kernel: grid assignment without point objects, month keys, x/y reads.

Grids are the real Helsinki demo grids; points are synthetic (uniform over the
grids' extent, plus points exactly on grid corners and edges).
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from gridmap.batch._kernel import GridIndex, month_keys, partial_aggregates
from gridmap.batch.lake import PartitionWriter, iter_lake_batches
from tests.gridmap.batch.conftest import Helsinki, outside_events


def _within_min(index: GridIndex, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The reference: STRtree ``within`` and the smallest code per point."""
    tree = shapely.STRtree(index.geometries)
    pt, grid = tree.query(shapely.points(x, y), predicate="within")
    out = np.full(len(x), -1, dtype="int64")
    first = pd.Series(grid).groupby(pt).min()
    out[first.index.to_numpy()] = first.to_numpy()
    return out


def test_assign_xy_equals_within_and_smallest_code(world: Helsinki) -> None:
    index = GridIndex.from_frame(world.grids)
    x0, y0, x1, y1 = world.grids.total_bounds
    rng = np.random.default_rng(11)
    n = 20_000
    x = rng.uniform(x0 - 0.01, x1 + 0.01, n)
    y = rng.uniform(y0 - 0.01, y1 + 0.01, n)
    # Exactly on grid vertices (on a boundary: in no interior, unless inside a neighbour)
    # and missing or infinite coordinates.
    corners = shapely.get_coordinates(shapely.boundary(index.geometries))[:500]
    x = np.concatenate([x, corners[:, 0], [np.nan, 1e400, 24.9]])
    y = np.concatenate([y, corners[:, 1], [60.2, 60.2, np.nan]])
    got = index.assign_xy(x, y)
    np.testing.assert_array_equal(got, _within_min(index, x, y))
    assert (got >= 0).sum() > n // 10
    assert (got[n : n + len(corners)] == -1).mean() > 0.9
    assert (got[-3:] == -1).all()


def test_overlapping_grids_give_the_smallest_code() -> None:
    index = GridIndex(
        np.array(["b", "a"], dtype=object),
        np.array([shapely.box(0, 0, 2, 2), shapely.box(1, 1, 3, 3)]),
    )
    x = np.array([1.5, 0.5, 2.5])
    y = np.array([1.5, 0.5, 2.5])
    assert index.codes_of(index.assign_xy(x, y)).tolist() == ["b", "b", "a"]
    ordered = GridIndex.from_frame(
        gpd.GeoDataFrame(
            {"code": ["b", "a"]}, geometry=[shapely.box(0, 0, 2, 2), shapely.box(1, 1, 3, 3)]
        )
    )
    assert ordered.codes_of(ordered.assign_xy(x, y)).tolist() == ["a", "b", "a"]


def test_month_keys_are_utc_months() -> None:
    at = pd.Series(
        pd.to_datetime(
            ["2026-09-30T23:30:00-01:00", "2026-10-01T07:00:00+08:00", None, "1969-12-31T23:00Z"],
            utc=True,
            format="ISO8601",
        )
    )
    assert month_keys(at).tolist() == ["2026-10", "2026-09", None, "1969-12"]


@pytest.mark.parametrize("xy", [True, False])
def test_xy_columns_and_wkb_give_the_same_partials(
    world: Helsinki, tmp_path: Path, xy: bool
) -> None:
    from gridmap.demo.synthetic import synthetic_events

    ev = synthetic_events(world.roads, world.buildings, n=3_000, seed=5)
    ev["id"] = np.arange(1, len(ev) + 1)
    ev = pd.concat([ev, outside_events(50, 10_000)], ignore_index=True)
    PartitionWriter(tmp_path / "events", "events").write(ev)
    index = GridIndex.from_frame(world.grids)
    expected = partial_aggregates(ev, index, 9)
    batches = list(
        iter_lake_batches(tmp_path, "events", columns=("geometry", "status", "reported_at"), xy=xy)
    )
    assert all(("x" in b) == xy for b in batches)
    frame = pd.concat(batches, ignore_index=True)
    got = partial_aggregates(frame, index, 9)
    assert got.events == expected.events == 3_050
    for name in ("cells", "kpi"):
        keys = ["grid_code", "cell"] if name == "cells" else ["grid_code", "month"]
        a = getattr(got, name).sort_values(keys).reset_index(drop=True)
        b = getattr(expected, name).sort_values(keys).reset_index(drop=True)
        pd.testing.assert_frame_equal(a, b)
