"""``gridmap init``, ``gridmap backup`` and ``gridmap restore``: the store as a whole."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gridmap.cli.common import DbOpt, database_url_or_default, errors, open_store, out

__all__ = ["backup_cmd", "init", "restore_cmd"]


def init(database_url: DbOpt = None) -> None:
    """Create or upgrade the schema (创建/升级数据库结构) without losing data."""
    # a missing privilege (PostGIS) is one line naming it and the SQL granting it
    with open_store(database_url, migrate=False) as store:
        before = store.schema_version()
        after = store.migrate()
        if before < 11 <= after:  # events stored before migration 011 get their H3 cells
            from gridmap.analytics.queries import fill_event_cells

            fill_event_cells(store)
    out.print(f"schema version {before} → {after} ({store.url})")


def backup_cmd(
    out_file: Annotated[Path, typer.Argument(help="Backup file to write.")],
    database_url: DbOpt = None,
) -> None:
    """Back up the store to one file (备份): pg_dump -Fc (PostGIS) or a checkpointed copy."""
    from gridmap.storage.backup import backup

    with errors():
        path = backup(database_url_or_default(database_url), out_file)
    out.print(f"backup written to {path} ({path.stat().st_size:,} bytes)")


def restore_cmd(
    in_file: Annotated[Path, typer.Argument(help="Backup file from `gridmap backup`.")],
    database_url: DbOpt = None,
) -> None:
    """Replace the store's contents with a backup (恢复), all or nothing; stop the API first."""
    from gridmap.storage.backup import restore

    url = database_url_or_default(database_url)
    with errors():
        restore(url, in_file)
    with open_store(url) as store:  # upgrades a backup taken before the latest migrations
        version = store.schema_version()
    out.print(f"restored {in_file} into {url} (schema version {version})")
