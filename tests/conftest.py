"""Test fixtures: a real PostgreSQL/PostGIS server and the two stores.

The PostGIS server is started once per test session from Debian's
``postgresql-15-postgis-3`` binaries. PostgreSQL refuses to run as root, so
when the tests run as root the server runs as the ``postgres`` user
(``runuser``). Each test gets a fresh database created from a template with
the PostGIS extension by pytest-postgresql's ``DatabaseJanitor``.
A PostGIS test is never skipped: if the server cannot start, the run fails.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from pytest_postgresql.janitor import DatabaseJanitor

from gridmap.storage import Store, open_store
from gridmap.storage.pgserver import PgServer
from gridmap.storage.pgserver import pg_server as start_pg_server

TEMPLATE_DB = "gridmap_template"
#: The same with gridmap's schema migrated: a fresh migrated database is a copy of it
#: (``CREATE DATABASE … TEMPLATE``, ~0.3 s) instead of running every migration (~1 s+).
MIGRATED_TEMPLATE_DB = "gridmap_template_migrated"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    try:
        ctx = start_pg_server()
        server = ctx.__enter__()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        janitor = DatabaseJanitor(
            user=server.user,
            host=server.host,
            port=server.port,
            dbname=TEMPLATE_DB,
            version=15,
            as_template=True,
        )
        janitor.init()
        with psycopg.connect(server.url(TEMPLATE_DB), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        DatabaseJanitor(
            user=server.user,
            host=server.host,
            port=server.port,
            dbname=MIGRATED_TEMPLATE_DB,
            template_dbname=TEMPLATE_DB,
            version=15,
            as_template=True,
        ).init()
        open_store(server.url(MIGRATED_TEMPLATE_DB), migrate=True).close()
        yield server
    finally:
        ctx.__exit__(None, None, None)


@contextmanager
def fresh_pg_url(
    server: PgServer, prefix: str = "t_", *, migrated: bool = False, template: str | None = None
) -> Iterator[str]:
    """URL of a new database (PostGIS created, no gridmap schema), dropped at the end.

    With *migrated*, the database is a copy of one on which every migration ran
    (what ``open_store(url, migrate=True)`` would make of an empty database).
    With *template*, it is a copy of that database (which nobody may be connected to).
    """
    name = prefix + uuid.uuid4().hex[:12]
    janitor = DatabaseJanitor(
        user=server.user,
        host=server.host,
        port=server.port,
        dbname=name,
        template_dbname=template or (MIGRATED_TEMPLATE_DB if migrated else TEMPLATE_DB),
        version=15,
    )
    janitor.init()
    try:
        yield server.url(name)
    finally:
        janitor.drop()


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    """URL of a fresh database (PostGIS extension created, no gridmap schema)."""
    with fresh_pg_url(pg_server) as url:
        yield url


@pytest.fixture
def pg_migrated_url(pg_server: PgServer) -> Iterator[str]:
    """URL of a fresh database with gridmap's schema (a copy of the migrated template)."""
    with fresh_pg_url(pg_server, migrated=True) as url:
        yield url


@pytest.fixture(params=["duckdb", pytest.param("postgis", marks=pytest.mark.postgis)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of an empty store, once for each backend.

    A test that uses the ``store`` fixture gets a PostGIS database copied from
    the migrated template (``store`` migrates anyway); the others get one with
    no gridmap schema, to test migrations themselves.
    """
    if request.param == "postgis":
        if "store" in request.fixturenames:
            with fresh_pg_url(request.getfixturevalue("pg_server"), migrated=True) as url:
                yield url
        else:
            yield str(request.getfixturevalue("pg_url"))
    else:
        yield f"duckdb:///{tmp_path / 'gridmap.duckdb'}"


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """A migrated store, once for each backend (the conformance suite runs on both)."""
    s = open_store(store_url, migrate=True)
    try:
        yield s
    finally:
        s.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"{host}:{port} did not open within {timeout}s")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A skipped PostGIS test is a failed test: the real server must always be exercised."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.skipped and item.get_closest_marker("postgis") is not None:
        report.outcome = "failed"
        report.longrepr = f"PostGIS test {item.nodeid} was skipped; PostGIS tests must run"
