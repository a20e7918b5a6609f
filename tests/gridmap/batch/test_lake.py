"""``export_lake`` on both stores: partitions, DuckDB and dask-geopandas reading, bad inputs.

Events are synthetic (seeded, on the real Helsinki streets).
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import duckdb
import geopandas as gpd
import pandas as pd
import pytest
from typer.testing import CliRunner

from gridmap.batch.dask import read_lake_dask
from gridmap.batch.lake import export_lake, iter_store_chunks, read_lake_layer
from gridmap.batch.single import aggregate_frame, run_single
from gridmap.batch.synthetic import write_synthetic_lake
from gridmap.cli import app
from gridmap.common.errors import BadInput
from gridmap.demo.synthetic import synthetic_events
from gridmap.division.bisect import assign_grid_codes
from gridmap.storage import Store, open_store
from tests.gridmap.batch.conftest import Helsinki, outside_events


def fill(store: Store, world: Helsinki, n: int = 900) -> gpd.GeoDataFrame:
    store.write("admin_units", world.admin_units.drop(columns="id"))
    store.write("grids", world.grids.drop(columns="id"))
    ev = synthetic_events(world.roads, world.buildings, n=n, seed=11)
    ev["grid_code"] = assign_grid_codes(ev, world.grids)
    store.write("events", ev)
    extra = outside_events(40, 1).drop(columns="id")
    extra["source_id"] = [f"outside-{i}" for i in range(len(extra))]
    store.write("events", extra)
    out = store.read("events")
    assert isinstance(out, gpd.GeoDataFrame)
    return out


def test_export_lake_partitions_and_readers(store: Store, world: Helsinki, tmp_path: Path) -> None:
    stored = fill(store, world)
    summary = export_lake(store, tmp_path / "lake", chunk_rows=97)  # many pages
    assert summary.rows == {"events": 940, "grids": len(world.grids), "admin_units": 3}
    events_dir = tmp_path / "lake" / "events"
    for path in events_dir.rglob("*.parquet"):
        month = path.parent.parent.name.removeprefix("month=")
        county = path.parent.name.removeprefix("county=")
        frame = gpd.read_parquet(path)
        assert "month" not in frame.columns and "county" not in frame.columns
        assert (frame["reported_at"].dt.tz_convert("UTC").dt.strftime("%Y-%m") == month).all()
        expected = frame["grid_code"].fillna("none").str[:6].replace("none", "none")
        assert (expected.where(frame["grid_code"].notna(), "none") == county).all()
    assert {p.name for p in events_dir.glob("month=*")} == {
        "month=2026-09",
        "month=2026-10",
        "month=2026-11",
    }
    assert {p.name for p in events_dir.glob("*/county=*")} == {"county=990100", "county=none"}
    # DuckDB reads the lake directly, partition columns from the folder names.
    rows = duckdb.sql(
        f"SELECT month, county, count(*) FROM read_parquet('{events_dir}/**/*.parquet', "
        "hive_partitioning = true, hive_types = {'county': 'VARCHAR'}) GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    assert sum(r[2] for r in rows) == 940
    assert {r[1] for r in rows} == {"990100", "none"}
    ids = duckdb.sql(
        f"SELECT id FROM read_parquet('{events_dir}/**/*.parquet', hive_partitioning = true)"
    ).df()["id"]
    assert sorted(ids) == sorted(stored["id"])
    # dask-geopandas reads it too, geometry and CRS intact.
    ddf = read_lake_dask(tmp_path / "lake", "events", columns=["id", "county", "geometry"])
    frame = ddf.compute()
    assert len(frame) == 940 and frame.crs.to_epsg() == 4326
    assert set(frame["county"]) == {"990100", "none"}
    back = read_lake_layer(tmp_path / "lake", "events")
    merged = back.merge(stored[["id", "geometry"]], on="id", suffixes=("", "_stored"))
    assert merged.geometry.geom_equals_exact(gpd.GeoSeries(merged["geometry_stored"]), 1e-9).all()
    # The lake gives the same analytics as the stored events.
    grids = read_lake_layer(tmp_path / "lake", "grids")
    assert isinstance(grids, gpd.GeoDataFrame)
    got = run_single(tmp_path / "lake", resolution=9, chunk_rows=100, hotspots=False)
    want = aggregate_frame(stored, grids, resolution=9, hotspots=False)
    for name in ("grid_counts", "heat", "kpis_grid", "kpis_town"):
        pd.testing.assert_frame_equal(getattr(got, name), getattr(want, name))


def test_export_replaces_a_layer_and_keyset_pages(
    store: Store, world: Helsinki, tmp_path: Path
) -> None:
    fill(store, world, n=120)
    pages = list(iter_store_chunks(store, "events", chunk_rows=50))
    assert [len(p) for p in pages] == [50, 50, 50, 10]
    assert pd.concat(pages)["id"].is_unique
    export_lake(store, tmp_path, layers=["events"])
    export_lake(store, tmp_path, layers=["events"])  # again: replaced, not doubled
    total = duckdb.sql(
        f"SELECT count(*) FROM read_parquet('{tmp_path}/events/**/*.parquet')"
    ).fetchone()
    assert total == (160,)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp")]


def test_export_bad_inputs(tmp_path: Path) -> None:
    store = open_store(":memory:", migrate=True)
    try:
        with pytest.raises(BadInput, match="unknown layer 'nope'"):
            export_lake(store, tmp_path / "lake", layers=["events", "nope"])
        assert not (tmp_path / "lake").exists()  # refused before writing anything
        blocker = tmp_path / "a-file"
        blocker.write_text("not a directory")
        with pytest.raises(BadInput, match="cannot write the lake"):
            export_lake(store, blocker / "lake")
        with pytest.raises(BadInput, match="chunk_rows"):
            export_lake(store, tmp_path / "lake", chunk_rows=0)
    finally:
        store.close()


def test_single_path_memory_is_flat(world: Helsinki, tmp_path: Path) -> None:
    small = write_synthetic_lake(
        world.roads,
        world.buildings,
        tmp_path / "small",
        n=30_000,
        grids=world.grids,
        chunk_rows=10_000,
    )
    large = write_synthetic_lake(
        world.roads,
        world.buildings,
        tmp_path / "large",
        n=60_000,
        grids=world.grids,
        chunk_rows=10_000,
    )

    def peak(lake: Path) -> int:
        tracemalloc.start()
        try:
            run_single(lake, resolution=9, chunk_rows=5_000, hotspots=False)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    peak(small)  # warm caches and imports
    p1, p2 = peak(small), peak(large)
    assert p2 < 1.3 * p1, (p1, p2)  # twice the events, not twice the memory


def test_cli_export_lake_and_batch_run(world: Helsinki, tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path / 'g.duckdb'}"
    store = open_store(url, migrate=True)
    try:
        fill(store, world, n=300)
    finally:
        store.close()
    runner = CliRunner()
    res = runner.invoke(
        app, ["export", "lake", "--out", str(tmp_path / "lake"), "--database-url", url]
    )
    assert res.exit_code == 0, res.output
    assert "events: 340 rows" in res.output
    res = runner.invoke(
        app,
        [
            "batch",
            "run",
            "--lake",
            str(tmp_path / "lake"),
            "--out",
            str(tmp_path / "out"),
            "--engine",
            "duckdb",
        ],
    )
    assert res.exit_code == 0, res.output
    heat = pd.read_parquet(tmp_path / "out" / "heat.parquet")
    assert heat["count"].sum() == 340
    res = runner.invoke(
        app,
        [
            "export",
            "lake",
            "--out",
            str(tmp_path / "x"),
            "--layers",
            "bogus",
            "--database-url",
            url,
        ],
    )
    assert res.exit_code == 1 and "unknown layer" in res.output
