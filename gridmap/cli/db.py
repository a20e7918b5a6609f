"""``gridmap db …``: store maintenance — partitions, archive, check, recover (数据库维护)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from gridmap.cli.common import (
    DbOpt,
    console,
    data_vault,
    database_url_or_default,
    errors,
    open_store,
    out,
)
from gridmap.common.errors import BadInput
from gridmap.common.model import LAYERS

__all__ = ["db_app"]

db_app = typer.Typer(
    help="Store maintenance: partitions, archive, check and recover (数据库维护).",
    no_args_is_help=True,
)


@db_app.command("partitions")
def db_partitions_cmd(
    ahead: Annotated[
        int, typer.Option("--ahead", help="Also create this many months after the current one.")
    ] = 2,
    database_url: DbOpt = None,
) -> None:
    """Create the monthly event partitions ahead and list them (PostGIS; 事件分区)."""
    from datetime import UTC, datetime

    from gridmap.batch.archive import ensure_partitions, list_partitions, months_ahead

    with open_store(database_url) as store:
        made = ensure_partitions(store, months_ahead(datetime.now(UTC).date(), ahead))
        parts = list_partitions(store)
    if not parts:
        out.print("events are not partitioned in this store (PostGIS only, schema v8+)")
        return
    table = Table(title=f"events partitions 事件分区 ({made} created)")
    for col in ("table 表", "month 月份", "rows 行数"):
        table.add_column(col)
    for p in parts:
        table.add_row(p.table, p.month or "DEFAULT", str(p.rows))
    out.print(table)


@db_app.command("archive")
def db_archive_cmd(
    month: Annotated[str, typer.Option("--month", help="Month to archive, YYYY-MM (UTC).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Archive (lake) directory.")],
    database_url: DbOpt = None,
) -> None:
    """Export a month's closed events to GeoParquet, then detach them from the store (归档)."""
    from gridmap.batch.archive import archive_month

    with open_store(database_url) as store:
        summary = archive_month(store, month, out_dir)
    out.print(
        f"{summary.month}: {summary.rows} closed events archived in {summary.files} files "
        f"under {summary.dest / 'events'}; {summary.kept_open} open events kept in the store"
    )


@db_app.command("check")
def db_check_cmd(database_url: DbOpt = None) -> None:
    """Open the store and validate it (检查): every table read, every R-tree index complete.

    An embedded file left by a killed process has its write-ahead log replayed
    (and its R-tree indexes rebuilt) first, as any command does. Exit status 0
    when sound, 1 when damage was found or the file cannot be opened (then
    `gridmap db recover`), 2 when it is in use by another process.
    """
    from gridmap.storage.duckdb_repair import check_file, embedded_file

    url = database_url_or_default(database_url)
    with errors():
        path = embedded_file(url)
        if path is None:
            with open_store(url, migrate=False) as store:
                version = store.schema_version()
                counts = {name: store.count(name) for name in LAYERS}
            out.print(f"PostGIS store {url.split('@')[-1]}: schema version {version}")
            for name, n in counts.items():
                out.print(f"  {name}: {n} rows")
            return
        report = check_file(path)
    if report.wal_replayed and report.schema_version >= 0:
        out.print(
            "a write-ahead log left by a process that did not close the file was replayed "
            "and the R-tree indexes rebuilt"
        )
    if report.schema_version >= 0:
        out.print(
            f"{report.path}: schema version {report.schema_version} "
            f"(gridmap {report.latest_version}), {len(report.rows)} tables, "
            f"{sum(report.rows.values())} rows, {len(report.rtrees)} R-tree indexes",
            soft_wrap=True,
        )
    for note in report.notes:
        out.print(f"note: {note}", soft_wrap=True, markup=False)
    if report.ok:
        out.print("ok: every table reads and every R-tree index is complete")
        return
    for problem in report.problems:
        console.print(f"[bold red]problem:[/] {escape(problem)}", soft_wrap=True)
    console.print(
        "run `gridmap db recover` (stop the server first): it copies what is readable into "
        "a fresh file and keeps the old one",
        soft_wrap=True,
        markup=False,
    )
    raise typer.Exit(1)


@db_app.command("recover")
def db_recover_cmd(database_url: DbOpt = None) -> None:
    """Copy what is readable of an embedded store into a fresh file and swap it in (修复).

    The old file (and its write-ahead log) is kept beside it as
    FILE.broken-TIME. Stop the server first. PostGIS: use `gridmap backup` and
    `gridmap restore`.
    """
    from gridmap.storage.duckdb_repair import embedded_file, recover_file

    url = database_url_or_default(database_url)
    with errors():
        path = embedded_file(url)
        if path is None:
            raise BadInput(
                "db recover is for the embedded (DuckDB) store; for PostGIS restore a "
                "`gridmap backup` with `gridmap restore`"
            )
        rec = recover_file(path, vault=data_vault())
    for note in rec.notes:
        out.print(f"note: {note}", soft_wrap=True, markup=False)
    copied = sum(rec.copied.values())
    lost = sum(rec.lost.values())
    out.print(f"{copied} rows in {len(rec.copied)} tables copied into a fresh {rec.path}")
    for table, n in rec.lost.items():
        console.print(f"[bold red]lost:[/] {n} unreadable rows of {table}")
    out.print(f"the old file is kept as {rec.kept}", soft_wrap=True)
    if lost:
        raise typer.Exit(1)
