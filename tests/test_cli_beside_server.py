"""The CLI beside a running server, and a store file that cannot be used (issue 20).

A DuckDB file is opened by one process at a time (read-only opens too are
refused while another process writes it). So while ``gridmap serve`` holds
the file, ``gridmap token``, ``users add``, ``kpis``, ``report`` and ``db
check`` each print one line saying what to do and exit 1 — no traceback; once
the server has stopped, the read-only commands open the file read-only.

A file DuckDB cannot use (here: blocks damaged under a running server, found
by their checksums) makes the API answer 503 and the server exit with status
3, naming ``gridmap db check`` and ``gridmap db recover``; ``db recover`` then
copies what is readable into a fresh file and keeps the old one.

Real processes and files throughout; events are synthetic, on the real
Helsinki demo grids.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import httpx
import numpy as np
import pytest
import shapely
from typer.testing import CliRunner

from gridmap.cli import app
from gridmap.storage import open_store
from tests.conftest import free_port, wait_for_port
from tests.events_world import make_world

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class WorldFile:
    """A store file with the demo grids and users; a demo admin's token; a point in a grid."""

    path: Path
    token: str
    area: str
    point: tuple[float, float]


@dataclass
class Served:
    path: Path
    url: str
    base: str
    proc: subprocess.Popen[bytes]
    world: WorldFile
    #: Where a block of building geometries starts in the file (if buildings were added).
    block: int | None = None

    def output(self) -> str:
        self.proc.wait(120)
        assert self.proc.stdout is not None
        return self.proc.stdout.read().decode(errors="replace")

    def report(self, key: str) -> httpx.Response:
        lon, lat = self.world.point
        return httpx.post(
            f"{self.base}/events",
            headers={"Authorization": f"Bearer {self.world.token}", "Idempotency-Key": key},
            json={
                "category": "dispute",
                "description": "合成事件 synthetic report beside the CLI",
                "location": {"lon": lon, "lat": lat, "crs": "wgs84"},
            },
            timeout=60,
        )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> WorldFile:
    from gridmap.common.settings import SecuritySettings
    from gridmap.security.auth import demo_users, get_user, issue_token

    path = tmp_path_factory.mktemp("beside") / "world.duckdb"
    store = open_store(f"duckdb:///{path}", migrate=True)
    try:
        w = make_world(store)
        demo_users(store, grid_code=w.code(0), password="synthetic-demo-password")
        admin = get_user(store, "demo_admin")
        assert admin is not None
        token = issue_token(admin, SecuritySettings().token_config(), minutes=60)
    finally:
        store.close()
    return WorldFile(path, token, w.code(0)[:9], w.point(0))


def _serve(world: WorldFile, folder: Path, *, buildings: int = 0) -> Served:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "gridmap.duckdb"
    shutil.copyfile(world.path, path)
    block = _add_buildings(path, buildings) if buildings else None
    port = free_port()
    url = f"duckdb:///{path}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "gridmap", "serve", "--port", str(port)],
        cwd=ROOT,
        env=dict(os.environ, GRIDMAP_DATABASE_URL=url, PYTHONPATH=str(ROOT)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    served = Served(path, url, f"http://127.0.0.1:{port}", proc, world, block)
    try:
        wait_for_port("127.0.0.1", port, timeout=120)
    except TimeoutError:
        proc.kill()
        raise AssertionError(served.output()) from None
    return served


def _buildings_frame(n: int, seed: int = 20) -> gpd.GeoDataFrame:
    """*n* synthetic round buildings near the demo grids."""
    rng = np.random.default_rng(seed)
    x = 24.90 + rng.random(n) * 0.1
    y = 60.15 + rng.random(n) * 0.05
    return gpd.GeoDataFrame(
        {"source": "synthetic", "source_id": [f"b{seed}-{i}" for i in range(n)]},
        geometry=shapely.buffer(shapely.points(x, y), 0.0002, quad_segs=16),
        crs="EPSG:4326",
    )


def _add_buildings(path: Path, n: int) -> int:
    """Write *n* synthetic buildings (megabytes of geometry) into the store file.

    Returns the byte offset of a block holding only building geometries (the
    middle one of them): DuckDB's file is three 4 KiB headers, then 256 KiB
    blocks numbered from 0.
    """
    store = open_store(f"duckdb:///{path}")
    try:
        assert store.write("buildings", _buildings_frame(n)).inserted == n
        store.sql("CHECKPOINT")  # type: ignore[attr-defined]
        blocks = store.sql(  # type: ignore[attr-defined]
            "SELECT block_id FROM pragma_storage_info('buildings') WHERE block_id >= 0 "
            "GROUP BY block_id HAVING bool_and(column_name = 'geometry') ORDER BY 1"
        )
    finally:
        store.close()
    assert len(blocks) >= 3, blocks
    return 3 * 4096 + int(blocks[len(blocks) // 2][0]) * 256 * 1024


#: Synthetic buildings in the served file: megabytes of geometry the server has not read.
BUILDINGS = 6000


@pytest.fixture(scope="module")
def served(world: WorldFile, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    s = _serve(world, tmp_path_factory.mktemp("served"), buildings=BUILDINGS)
    try:
        r = s.report("beside-1")
        assert r.status_code == 201, r.text
        yield s
    finally:
        if s.proc.poll() is None:
            s.proc.send_signal(signal.SIGTERM)
            s.output()


COMMANDS = {
    "token": ["token", "demo_admin"],
    "users add": ["users", "add", "wang_beside", "--role", "viewer"],
    "kpis": ["kpis", "--format", "csv"],
    "report": ["report", "--area", "AREA", "--from", "2026-01-01", "--to", "2026-02-01"],
    "db check": ["db", "check"],
}


def _one_clear_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert "Traceback" not in output and "IOException" not in output, output
    return lines[0]


def _args(name: str, world: WorldFile, folder: Path) -> list[str]:
    args = [a.replace("AREA", world.area) for a in COMMANDS[name]]
    if name == "report":
        args += ["--out", str(folder / "report.json")]
    return args


@pytest.mark.parametrize("name", list(COMMANDS))
def test_a_command_beside_the_server_says_what_to_do(
    served: Served, tmp_path: Path, name: str
) -> None:
    result = CliRunner().invoke(
        app, [*_args(name, served.world, tmp_path), "--database-url", served.url]
    )
    assert result.exit_code == 1, result.output
    line = _one_clear_line(result.output)
    assert "in use by another process" in line and f"PID {served.proc.pid}" in line
    assert "Stop that process" in line and "PostGIS" in line


def test_the_real_command_prints_one_line_and_exits_1(served: Served) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "gridmap", "token", "demo_admin", "--database-url", served.url],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == ""
    assert "in use by another process" in _one_clear_line(proc.stderr)


def test_a_damaged_file_answers_503_the_server_exits_and_recover_saves_the_rest(
    served: Served, tmp_path: Path
) -> None:
    """After the tests above, on the same server: its file damaged under it."""
    s = served
    try:
        assert s.report("before-damage").status_code == 201
        # one block of building geometries damaged on disk under the running
        # server, which has not read the buildings yet
        assert s.block is not None
        with open(s.path, "r+b") as f:
            f.seek(s.block)
            f.write(b"\xa5" * (256 * 1024))
        first = httpx.get(f"{s.base}/collections/buildings/items?limit=6000", timeout=60)
        out = s.output()
    finally:
        if s.proc.poll() is None:
            s.proc.kill()
    assert first.status_code == 503, first.text
    assert first.json()["code"] == "store_invalidated"
    assert "restart" in first.json()["description"]
    assert first.headers["Retry-After"]
    assert "Traceback" not in first.text
    assert s.proc.returncode == 3, out
    assert "gridmap db check" in out and "gridmap db recover" in out, out

    # the operator's side: check names the damage, recover saves the rest and
    # keeps the old file as it was
    check = CliRunner().invoke(app, ["db", "check", "--database-url", s.url])
    assert check.exit_code == 1, check.output
    assert "Corrupt database file" in check.output and "gridmap db recover" in check.output
    assert "Traceback" not in check.output
    damaged = hashlib.sha256(s.path.read_bytes()).hexdigest()
    recover = CliRunner().invoke(app, ["db", "recover", "--database-url", s.url])
    assert recover.exit_code == 1, recover.output  # some rows were lost ...
    assert "unreadable rows of buildings" in recover.output and "Traceback" not in recover.output
    kept = list(s.path.parent.glob("gridmap.duckdb.broken-*"))
    assert len(kept) == 1 and hashlib.sha256(kept[0].read_bytes()).hexdigest() == damaged
    again = CliRunner().invoke(app, ["db", "check", "--database-url", s.url])
    assert again.exit_code == 0, again.output
    store = open_store(s.url)  # ... the rest is there, and the store takes writes
    try:
        assert 0 < store.count("buildings") < BUILDINGS
        assert store.count("events") == 2  # both acknowledged, one just before the damage
        assert store.count("grids") == store.count("grids", bbox=(-180.0, -90.0, 180.0, 90.0)) > 0
        assert store.write("buildings", _buildings_frame(10, seed=21)).inserted == 10
    finally:
        store.close()

    # no server any more: every command works, the read-only ones read-only
    for name in COMMANDS:
        result = CliRunner().invoke(app, [*_args(name, s.world, tmp_path), "--database-url", s.url])
        assert result.exit_code == 0, (name, result.output)
    from gridmap.storage.duckdb import DuckDBStore

    reader = DuckDBStore(s.path, read_only=True)  # held while `kpis` reads too
    try:
        result = CliRunner().invoke(app, ["kpis", "--format", "json", "--database-url", s.url])
        assert result.exit_code == 0, result.output
        assert reader.count("events") == 2
    finally:
        reader.close()
