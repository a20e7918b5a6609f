"""How the embedded store replays a leftover write-ahead log, and how it reports a bad file.

The store replays a log left by a killed process with its R-tree indexes
dropped, checkpoints, and builds them again, keeping the list of indexes to
build in the file until they are (gridmap.storage.duckdb._attach). These
tests kill real processes at the points that matter and damage real files.
Geometries are synthetic.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely

from gridmap.storage import open_store
from gridmap.storage.base import StoreInvalidated
from gridmap.storage.duckdb import DuckDBStore

EVERYWHERE = (-180.0, -90.0, 180.0, 90.0)

#: A process that writes rows of an R-tree layer and dies without closing the file.
_WRITER = textwrap.dedent(
    """
    import os, sys
    import duckdb, duckdb_extension_spatial
    from pathlib import Path
    ext = sorted((Path(duckdb_extension_spatial.__file__).parent / "extensions").glob(
        f"v{duckdb.__version__}/spatial.duckdb_extension"))[-1]
    con = duckdb.connect(":memory:")
    con.execute(f"LOAD '{ext}'")
    con.execute(f"ATTACH '{sys.argv[1]}' AS gridmap")
    con.execute("USE gridmap")
    for i in range(5):
        con.execute(
            "INSERT INTO buildings (source_key, geometry) "
            "VALUES (?, ST_Buffer(ST_Point(?, 60.17), 0.0002))",
            [f"w{i}", 24.94 + i * 0.001],
        )
    os._exit(0)
    """
)


def _buildings(n: int, seed: int = 1) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    return gpd.GeoDataFrame(
        {"source": "synthetic", "source_id": [f"s{seed}-{i}" for i in range(n)]},
        geometry=shapely.buffer(
            shapely.points(24.9 + rng.random(n) * 0.1, 60.15 + rng.random(n) * 0.05),
            0.0002,
            quad_segs=16,
        ),
        crs="EPSG:4326",
    )


@pytest.fixture
def store_file(tmp_path: Path) -> Path:
    path = tmp_path / "gridmap.duckdb"
    store = open_store(f"duckdb:///{path}", migrate=True)
    try:
        store.write("buildings", _buildings(20))
    finally:
        store.close()
    return path


def _leave_log(path: Path) -> None:
    """Five buildings written by a process killed before it closed the file."""
    subprocess.run([sys.executable, "-c", _WRITER, str(path)], check=True)
    assert Path(f"{path}.wal").stat().st_size > 0


_HALF_REPLAY = textwrap.dedent(
    """
    import os, sys
    import duckdb, duckdb_extension_spatial
    from pathlib import Path
    ext = sorted((Path(duckdb_extension_spatial.__file__).parent / "extensions").glob(
        f"v{duckdb.__version__}/spatial.duckdb_extension"))[-1]
    con = duckdb.connect(":memory:")
    con.execute(f"LOAD '{ext}'")
    con.execute("SET checkpoint_threshold = '1000TB'")
    con.execute(f"ATTACH '{sys.argv[1]}' AS gridmap")
    rtrees = con.execute(
        "SELECT index_name, sql FROM duckdb_indexes() "
        "WHERE database_name = 'gridmap' AND sql ILIKE '%USING RTREE%'"
    ).fetchall()
    # the store's first step, as gridmap.storage.duckdb._rebuild_rtrees takes it
    con.execute("BEGIN TRANSACTION")
    con.execute(
        "CREATE TABLE gridmap.gridmap_rtree_rebuild "
        "(index_name VARCHAR PRIMARY KEY, sql VARCHAR NOT NULL)"
    )
    for name, sql in rtrees:
        con.execute("INSERT INTO gridmap.gridmap_rtree_rebuild VALUES (?, ?)", [name, sql])
        con.execute(f'DROP INDEX gridmap."{name}"')
    con.execute("COMMIT")
    os._exit(0)  # killed before the checkpoint and the rebuild
    """
)


def test_a_replay_killed_half_way_is_finished_at_the_next_open(store_file: Path) -> None:
    _leave_log(store_file)
    subprocess.run([sys.executable, "-c", _HALF_REPLAY, str(store_file)], check=True)
    store = DuckDBStore(store_file)
    try:
        indexes = {r[0] for r in store.sql("SELECT index_name FROM duckdb_indexes()")}
        assert "buildings_geometry_rtree" in indexes and "events_geometry_rtree" in indexes
        assert not store.sql(
            "SELECT 1 FROM duckdb_tables() WHERE table_name = 'gridmap_rtree_rebuild'"
        )
        assert store.count("buildings", bbox=EVERYWHERE) == store.count("buildings") == 25
        assert store.write("buildings", _buildings(3, seed=2)).inserted == 3
        assert store.count("buildings", bbox=EVERYWHERE) == 28
    finally:
        store.close()
    assert not Path(f"{store_file}.wal").exists() or Path(f"{store_file}.wal").stat().st_size == 0


def test_a_read_only_open_replays_a_leftover_log_first(store_file: Path) -> None:
    _leave_log(store_file)
    store = DuckDBStore(store_file, read_only=True)
    try:
        assert store.count("buildings", bbox=EVERYWHERE) == store.count("buildings") == 25
    finally:
        store.close()
    writer = open_store(f"duckdb:///{store_file}")  # and the file takes writes afterwards
    try:
        assert writer.write("buildings", _buildings(3, seed=3)).inserted == 3
    finally:
        writer.close()


def test_a_damaged_block_is_said_once_and_nothing_more_is_sent(store_file: Path) -> None:
    store = DuckDBStore(store_file)
    try:
        store.write("buildings", _buildings(6000, seed=4))
        store.sql("CHECKPOINT")
        blocks = store.sql(
            "SELECT block_id FROM pragma_storage_info('buildings') WHERE block_id >= 0 "
            "GROUP BY block_id HAVING bool_and(column_name = 'geometry') ORDER BY 1"
        )
    finally:
        store.close()
    with open(store_file, "r+b") as f:  # three 4 KiB headers, then 256 KiB blocks
        f.seek(3 * 4096 + int(blocks[len(blocks) // 2][0]) * 256 * 1024)
        f.write(b"\xa5" * (256 * 1024))
    store = DuckDBStore(store_file)
    try:
        with pytest.raises(StoreInvalidated) as caught:
            store.read("buildings")
        message = caught.value.message
        assert str(store_file) in message and "Corrupt database file" in message
        assert "gridmap db check" in message and "gridmap db recover" in message
        assert store.invalidated == message
        with pytest.raises(StoreInvalidated):  # every later call, without touching DuckDB
            store.count("admin_units")
        with pytest.raises(StoreInvalidated), store.transaction():
            pass
    finally:
        store.close()
    # a new open works again for what is readable (the process is not stuck)
    store = DuckDBStore(store_file)
    try:
        assert store.count("admin_units") == 0
    finally:
        store.close()


@pytest.mark.postgis
def test_db_check_and_recover_on_postgis(pg_url: str) -> None:
    """`db check` reads a PostGIS store too; `db recover` is for the embedded file only."""
    from typer.testing import CliRunner

    from gridmap.cli import app

    open_store(pg_url, migrate=True).close()
    check = CliRunner().invoke(app, ["db", "check", "--database-url", pg_url])
    assert check.exit_code == 0, check.output
    assert "schema version" in check.output and "buildings: 0 rows" in check.output
    assert "password" not in check.output.lower()
    recover = CliRunner().invoke(app, ["db", "recover", "--database-url", pg_url])
    assert recover.exit_code == 1 and "gridmap restore" in recover.output, recover.output
