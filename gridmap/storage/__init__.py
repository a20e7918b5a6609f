"""Storage: the ``Store`` protocol and its two implementations.

``open_store(url)`` picks one from ``GRIDMAP_DATABASE_URL``-style URLs:
``postgresql://…`` → PostGIS; ``duckdb:///path``, a plain path or ``:memory:``
→ the embedded DuckDB store; ``None`` → ``./gridmap.duckdb``.
This package is the only place that imports a database driver.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from gridmap.storage._sql import AllOf, Cmp, Prefix, where_sql
from gridmap.storage.base import BBox, Store, TileEncoding, WriteResult, check_bbox

if TYPE_CHECKING:
    from gridmap.security.privacy import Vault

__all__ = [
    "DEFAULT_URL",
    "AllOf",
    "BBox",
    "Cmp",
    "Prefix",
    "Store",
    "TileEncoding",
    "WriteResult",
    "check_bbox",
    "latest_migration",
    "open_store",
    "where_sql",
]

DEFAULT_URL = "./gridmap.duckdb"


def latest_migration(dialect: str) -> int:
    """The highest migration this gridmap ships for *dialect* (``duckdb`` or ``postgis``).

    Examples
    --------
    >>> latest_migration("duckdb") == latest_migration("postgis") >= 31
    True
    """
    from gridmap.storage._sql import migrations

    return max((m.version for m in migrations(dialect)), default=0)


def open_store(
    url: str | None = None,
    *,
    migrate: bool = False,
    read_only: bool = False,
    vault: Vault | None = None,
) -> Store:
    """Open the store named by *url* (see module docs).

    Parameters
    ----------
    url : str, optional
        ``postgresql://user:pass@host:port/db``, ``duckdb:///path/file.duckdb``,
        a file path, or ``:memory:``. Default ``./gridmap.duckdb``.
    migrate : bool
        Create or upgrade the schema on open.
    read_only : bool
        Open an embedded store's file read-only (several processes may read
        one file at once; none while another writes it). PostGIS ignores it.
    vault : Vault, optional
        Keys of the columns encrypted at rest (``events.reporter``, ``contact``;
        :mod:`gridmap.storage.fieldcrypt`), from ``GRIDMAP_DATA_KEY``. Default:
        the development data key (what the API uses when the key is unset).

    Examples
    --------
    >>> store = open_store(":memory:", migrate=True)
    >>> store.dialect
    'duckdb'
    """
    url = url or DEFAULT_URL
    store: Store
    if url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        from gridmap.storage.postgis import PostGISStore

        store = PostGISStore(url.replace("postgresql+psycopg://", "postgresql://"), vault=vault)
    else:
        path = url.removeprefix("duckdb://")
        if path.startswith("/") and url.startswith("duckdb:///"):
            path = path[1:] if path.startswith("//") else path
        from gridmap.storage.duckdb import DuckDBStore

        store = DuckDBStore(
            path if path == ":memory:" else Path(path), read_only=read_only, vault=vault
        )
    if migrate:
        store.migrate()
        # Months of events made before writers need them (PostGIS; see the module).
        from gridmap.storage.partitions import prepare_event_months

        prepare_event_months(store)
    return store
