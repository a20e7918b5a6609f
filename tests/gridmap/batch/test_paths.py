"""The three batch paths (one process, Dask LocalCluster, DuckDB) give the same results.

Events are synthetic (seeded, on the real Helsinki streets).
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest

from gridmap.analytics.binning import bin_counts
from gridmap.batch import BatchResult, run_batch
from gridmap.batch.dask import DaskCluster, run_dask
from gridmap.batch.duck import run_duckdb
from gridmap.batch.single import aggregate_frame, run_single
from gridmap.common.errors import BadInput
from gridmap.division.bisect import assign_grid_codes
from gridmap.events.kpis import kpis
from tests.gridmap.batch.conftest import Helsinki

FIELDS = ("grid_counts", "heat", "kpis_grid", "kpis_town", "hotspots")


def assert_same(a: BatchResult, b: BatchResult) -> None:
    assert a.events == b.events
    for name in FIELDS:
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), check_exact=False)


@pytest.fixture(scope="module")
def reference(lake: Path) -> BatchResult:
    return run_single(lake, resolution=9, chunk_rows=30_000)


def test_reference_is_sane(reference: BatchResult, world: Helsinki) -> None:
    assert reference.events == 150_500
    table = reference.grid_counts
    assert table["count"].sum() == 150_500
    outside = table[table["grid_code"].isna()]
    assert outside["count"].tolist() == [500]  # the events placed outside every grid
    assert set(table["grid_code"].dropna()) <= set(world.grids["code"])
    assert reference.heat["count"].sum() == 150_500
    town = reference.kpis_town.dropna(subset=["town_code"])
    assert set(town["month"]) == {"2026-09", "2026-10", "2026-11"}
    assert ((town["closure_rate"] > 0.5) & (town["closure_rate"] < 0.7)).all()
    assert set(reference.hotspots["town_code"]) == {"990100001"}
    assert reference.hotspots["class"].str.startswith("hot").any()


def test_chunk_size_does_not_change_results(lake: Path, reference: BatchResult) -> None:
    assert_same(reference, run_single(lake, resolution=9, chunk_rows=7_001))


def test_duckdb_equals_single(lake: Path, reference: BatchResult) -> None:
    assert_same(reference, run_duckdb(lake, resolution=9, threads=2))


def test_dask_equals_single(lake: Path, reference: BatchResult) -> None:
    assert_same(
        reference, run_dask(lake, resolution=9, cluster=DaskCluster(n_workers=2, processes=False))
    )


def test_definitions_match_the_single_machine_functions(world: Helsinki) -> None:
    from gridmap.demo.synthetic import synthetic_events

    ev = synthetic_events(world.roads, world.buildings, n=5_000, seed=3)
    result = aggregate_frame(ev, world.grids, resolution=8, hotspots=False)
    ev["grid_code"] = assign_grid_codes(ev, world.grids)
    # Assignment = gridmap.division.bisect.assign_grid_codes.
    expected = ev["grid_code"].value_counts(dropna=False)
    got = result.grid_counts.set_index("grid_code")["count"]
    assert got.sort_index().to_dict() == expected.sort_index().to_dict()
    # KPIs = gridmap.events.kpis.kpis summed over months.
    table = kpis(ev.dropna(subset=["grid_code"]), by="grid")
    per_grid = result.kpis_grid.dropna(subset=["grid_code"]).groupby("grid_code")
    sums = per_grid[["reported", "closed"]].sum()
    pd.testing.assert_series_equal(
        sums["reported"], table["reported"], check_names=False, check_index_type=False
    )
    pd.testing.assert_series_equal(
        sums["closed"], table["closed"], check_names=False, check_index_type=False
    )
    # Heat = gridmap.analytics.binning.bin_counts.
    points = pd.DataFrame({"lon": ev.geometry.x, "lat": ev.geometry.y, "status": ev["status"]})
    pd.testing.assert_frame_equal(result.heat, bin_counts(points, 8))


def test_bad_inputs(tmp_path: Path, lake: Path) -> None:
    with pytest.raises(BadInput, match="unknown engine"):
        run_batch(str(lake), engine="spark")
    with pytest.raises(BadInput, match="the lake has no"):
        run_single(tmp_path)
    with pytest.raises(BadInput, match="resolution"):
        run_single(lake, resolution=12)
    with pytest.raises(BadInput, match="chunk_rows"):
        run_single(lake, chunk_rows=0)
    with pytest.raises(BadInput, match="'code'"):
        run_single(lake, grids=gpd.GeoDataFrame(geometry=[]))
