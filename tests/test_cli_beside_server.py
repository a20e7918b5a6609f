"""The CLI beside a running server, and a store file that cannot be used (issue 20).

A DuckDB file is opened by one process at a time (read-only opens too are
refused while another process writes it). So while ``gridmap serve`` holds
the file, ``gridmap token``, ``users add``, ``kpis``, ``report`` and ``db
check`` each print one line saying what to do and exit 2 — no traceback; once
the server has stopped, the read-only commands open the file read-only.

A file DuckDB cannot use (here: blocks damaged under a running server, found
by their checksums) makes the API answer 503 and the server exit with status
3, naming ``gridmap db check`` and ``gridmap db recover``; ``db recover`` then
copies what is readable into a fresh file and keeps the old one.

Real processes and files throughout; events are synthetic, on the real
Helsinki demo grids.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
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

    def output(self) -> str:
        self.proc.wait(60)
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
    from api.security import SecuritySettings
    from gridmap.auth import demo_users, get_user, issue_token

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


def _serve(world: WorldFile, folder: Path) -> Served:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "gridmap.duckdb"
    shutil.copyfile(world.path, path)
    port = free_port()
    url = f"duckdb:///{path}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "gridmap", "serve", "--port", str(port)],
        cwd=ROOT,
        env=dict(os.environ, GRIDMAP_DATABASE_URL=url, PYTHONPATH=str(ROOT)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    served = Served(path, url, f"http://127.0.0.1:{port}", proc, world)
    try:
        wait_for_port("127.0.0.1", port, timeout=120)
    except TimeoutError:
        proc.kill()
        raise AssertionError(served.output()) from None
    return served


@pytest.fixture(scope="module")
def served(world: WorldFile, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    s = _serve(world, tmp_path_factory.mktemp("served"))
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
    assert result.exit_code == 2, result.output
    line = _one_clear_line(result.output)
    assert "in use by another process" in line and f"PID {served.proc.pid}" in line
    assert "Stop that process" in line and "PostGIS" in line


def test_the_real_command_prints_one_line_and_exits_2(served: Served) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "gridmap", "token", "demo_admin", "--database-url", served.url],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert "in use by another process" in _one_clear_line(proc.stderr)


def test_once_the_server_stops_the_commands_work(served: Served, tmp_path: Path) -> None:
    served.proc.send_signal(signal.SIGTERM)
    out = served.output()
    assert served.proc.returncode in (0, -signal.SIGTERM), out
    wal = Path(f"{served.path}.wal")
    assert not wal.exists() or wal.stat().st_size == 0  # closed cleanly
    for name in COMMANDS:
        result = CliRunner().invoke(
            app, [*_args(name, served.world, tmp_path), "--database-url", served.url]
        )
        assert result.exit_code == 0, (name, result.output)
    # the read-only commands opened the file read-only: two of them at once
    from gridmap.storage.duckdb import DuckDBStore

    reader = DuckDBStore(served.path, read_only=True)
    try:
        result = CliRunner().invoke(app, ["kpis", "--format", "json", "--database-url", served.url])
        assert result.exit_code == 0, result.output
        assert reader.count("events") == 1
    finally:
        reader.close()


def test_a_damaged_file_under_the_server_answers_503_and_the_server_exits(
    world: WorldFile, tmp_path: Path
) -> None:
    s = _serve(world, tmp_path / "damaged")
    try:
        assert s.report("before-damage").status_code == 201
        # blocks of the file damaged on disk under the running server
        size = s.path.stat().st_size
        with open(s.path, "r+b") as f:
            f.seek(3 * 4096)
            f.write(b"\xa5" * (size - 3 * 4096))
        answers = [
            httpx.get(f"{s.base}/collections/{layer}/items", timeout=60)
            for layer in ("grids", "admin_units")
        ]
        out = s.output()
    finally:
        if s.proc.poll() is None:
            s.proc.kill()
    first = answers[0]
    assert first.status_code == 503, first.text
    assert first.json()["code"] == "store_invalidated"
    assert "restart" in first.json()["description"]
    assert first.headers["Retry-After"]
    assert "Traceback" not in first.text
    assert s.proc.returncode == 3, out
    assert "gridmap db check" in out and "gridmap db recover" in out, out

    # the operator's side: check says what is damaged, recover keeps the old file
    check = CliRunner().invoke(app, ["db", "check", "--database-url", s.url])
    assert check.exit_code in (1, 2), check.output
    assert "Traceback" not in check.output
    recover = CliRunner().invoke(app, ["db", "recover", "--database-url", s.url])
    assert "Traceback" not in recover.output
    kept = list(s.path.parent.glob("gridmap.duckdb.broken-*"))
    if recover.exit_code == 2:  # nothing readable at all: said so, file untouched
        assert "cannot be read" in recover.output and not kept
        return
    assert kept and kept[0].stat().st_size == size, recover.output
    again = CliRunner().invoke(app, ["db", "check", "--database-url", s.url])
    assert again.exit_code == 0, again.output
