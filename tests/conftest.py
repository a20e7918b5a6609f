"""Test fixtures: a real PostgreSQL/PostGIS server and the two stores.

The PostGIS server is started once per test session from Debian's
``postgresql-15-postgis-3`` binaries. PostgreSQL refuses to run as root, so
when the tests run as root the server runs as the ``postgres`` user
(``runuser``). Each test gets a fresh database created from a template with
the PostGIS extension by pytest-postgresql's ``DatabaseJanitor``.
A PostGIS test is never skipped: if the server cannot start, the run fails.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pytest_postgresql.janitor import DatabaseJanitor

from gridmap.storage import Store, open_store

PG_BIN = Path(os.environ.get("GRIDMAP_PG_BIN", "/usr/lib/postgresql/15/bin"))
TEMPLATE_DB = "gridmap_template"


@dataclass(frozen=True)
class PgServer:
    host: str
    port: int
    user: str

    def url(self, dbname: str) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{dbname}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    initdb = PG_BIN / "initdb"
    if not initdb.exists():
        pytest.fail(
            f"PostgreSQL binaries not found at {PG_BIN}: run the README's test command, "
            "which installs postgresql-15-postgis-3"
        )
    base = Path(tempfile.mkdtemp(prefix="gridmap-pg-"))
    data = base / "data"
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    port = _free_port()
    subprocess.run(
        _as_postgres([str(initdb), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                      "--locale=C.UTF-8", "--no-sync"]),
        check=True, capture_output=True,
    )
    opts = (
        f"-c port={port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={base} "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 "
        "-c shared_buffers=256MB"
    )
    subprocess.run(
        _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", opts, "-l",
                      str(base / "server.log"), "-w", "-t", "60", "start"]),
        check=True, capture_output=True,
    )
    server = PgServer("127.0.0.1", port, "postgres")
    try:
        janitor = DatabaseJanitor(
            user=server.user, host=server.host, port=port, dbname=TEMPLATE_DB, version=15,
            as_template=True,
        )
        janitor.init()
        import psycopg

        with psycopg.connect(server.url(TEMPLATE_DB), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        yield server
    finally:
        subprocess.run(
            _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    """URL of a fresh database (PostGIS extension created, no gridmap schema)."""
    name = "t_" + uuid.uuid4().hex[:12]
    janitor = DatabaseJanitor(
        user=pg_server.user, host=pg_server.host, port=pg_server.port, dbname=name,
        template_dbname=TEMPLATE_DB, version=15,
    )
    janitor.init()
    try:
        yield pg_server.url(name)
    finally:
        janitor.drop()


@pytest.fixture(params=["duckdb", pytest.param("postgis", marks=pytest.mark.postgis)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of an empty store, once for each backend."""
    if request.param == "postgis":
        return str(request.getfixturevalue("pg_url"))
    return f"duckdb:///{tmp_path / 'gridmap.duckdb'}"


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """A migrated store, once for each backend (the conformance suite runs on both)."""
    s = open_store(store_url, migrate=True)
    try:
        yield s
    finally:
        s.close()


def wait_for_port(host: str, port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"{host}:{port} did not open within {timeout}s")
