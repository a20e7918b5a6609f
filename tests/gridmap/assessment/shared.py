"""The scripted month as session fixtures, shared by every module that reads it.

Test modules list this module in ``pytest_plugins``; the month is then built
once per store and test session (not once per module). The tests only read
it; the CLI test closes and reopens the DuckDB store (``Month.store`` is
swapped in place), which leaves the data as it was.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gridmap.storage import open_store
from gridmap.storage.pgserver import PgServer
from tests.conftest import fresh_pg_url
from tests.gridmap.assessment.month import Month, build_month


@pytest.fixture(scope="session")
def month_duckdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Month, str]]:
    """The month in an embedded store file, and its URL."""
    url = f"duckdb:///{tmp_path_factory.mktemp('month') / 'm.duckdb'}"
    m = build_month(open_store(url, migrate=True))
    try:
        yield m, url
    finally:
        m.store.close()


@pytest.fixture(scope="session")
def month_postgis(pg_server: PgServer) -> Iterator[tuple[Month, str]]:
    """The month in a database of the session's PostGIS server, and its URL."""
    with fresh_pg_url(pg_server, "m_") as url:
        m = build_month(open_store(url, migrate=True))
        try:
            yield m, url
        finally:
            m.store.close()
