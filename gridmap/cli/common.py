"""What every command shares: consoles, settings, options, errors, progress, the store.

Commands open the store with :func:`open_store` (``with open_store(url) as
store:``): the URL from ``--database-url`` or the settings, the field-encryption
vault, the read-only fallback and closing are done there once; domain errors
inside the block end as one line and exit status 1 (:func:`errors`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from gridmap import storage
from gridmap.common.errors import BadInput, GridmapError
from gridmap.common.settings import Settings
from gridmap.storage import Store

if TYPE_CHECKING:
    from gridmap.security.privacy import Vault

__all__ = [
    "DOMAIN_ERROR_EXIT",
    "DbOpt",
    "ReportOpt",
    "cli_settings",
    "console",
    "data_vault",
    "database_url_or_default",
    "errors",
    "open_store",
    "out",
    "print_error",
    "print_import",
    "progress",
]

#: Progress bars, errors and notes (standard error).
console = Console(stderr=True)
#: Results (standard output).
out = Console()

#: Exit status of a command stopped by a domain error (bad input, a missing row, a
#: busy store, a missing optional extra); 2 stays click's code for usage errors.
DOMAIN_ERROR_EXIT = 1


def cli_settings(**values: Any) -> Settings:
    """The settings tree (:mod:`gridmap.common.settings`), as the service reads it.

    *values* replace parts of it (``store=StoreSettings(database_url=...)``);
    the rest comes from the ``GRIDMAP_*`` environment variables. A bad value
    is a domain error naming the variable (exit status 1 inside :func:`errors`).
    """
    from pydantic import ValidationError

    try:
        return Settings(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or exc.title
        raise BadInput(f"bad setting {where}: {first['msg']}", field=where) from None


DbOpt = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="Store URL; default from GRIDMAP_DATABASE_URL, else ./gridmap.duckdb.",
        show_default=False,
    ),
]

ReportOpt = Annotated[
    Path | None,
    typer.Option(
        "--report",
        help="Write the per-row report (逐行报告: layer, row, status, reason) to this CSV file.",
    ),
]


def database_url_or_default(url: str | None) -> str:
    """*url* (``--database-url``), else ``GRIDMAP_DATABASE_URL``, else ``./gridmap.duckdb``."""
    return url or cli_settings().store.database_url


def print_error(message: str) -> None:
    """Print one ``error:`` line on standard error (the text is not markup)."""
    console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)


@contextmanager
def errors() -> Iterator[None]:
    """Turn domain errors into one clear line and exit code 1 (no traceback).

    A lazy import of an optional extra's package that is not installed
    (``ModuleNotFoundError``) becomes the line naming the extra to install
    (:func:`gridmap.common.extras.missing_extra`).
    """
    from gridmap.common.extras import missing_extra

    try:
        yield
    except GridmapError as exc:
        print_error(exc.message)
        raise typer.Exit(DOMAIN_ERROR_EXIT) from None
    except ModuleNotFoundError as exc:
        extra = missing_extra(exc)
        if extra is None:
            raise
        print_error(extra.message)
        raise typer.Exit(DOMAIN_ERROR_EXIT) from None


def data_vault() -> Vault:
    """The field-encryption keys from ``GRIDMAP_DATA_KEY``, as the API derives them.

    Events' reporters and contacts are encrypted at rest with them
    (:mod:`gridmap.storage.fieldcrypt`), like residents' fields.
    """
    from gridmap.security.privacy import Vault as _Vault

    key = cli_settings().security.data_key.get_secret_value()
    return _Vault.from_secret(key)


def _connect(url: str | None, *, migrate: bool, read_only: bool) -> Store:
    """Open the store; *read_only* commands open an embedded file read-only.

    Several read-only commands may share a DuckDB file; none may open it while
    a writer (``gridmap serve``) holds it: that raises ``StoreBusy``, which
    :func:`errors` prints as one line. A file whose schema needs upgrading, or
    that does not exist yet, is opened for writing (and migrated) instead.
    """
    url = database_url_or_default(url)
    vault = data_vault()
    if read_only:
        try:
            store = storage.open_store(url, read_only=True, vault=vault)
        except BadInput:  # no file yet
            return storage.open_store(url, migrate=migrate, vault=vault)
        try:
            store.migrate()  # read-only: checks that the schema is current
        except BadInput:
            store.close()
            return storage.open_store(url, migrate=migrate, vault=vault)
        return store
    return storage.open_store(url, migrate=migrate, vault=vault)


@contextmanager
def open_store(
    url: str | None, *, migrate: bool = True, read_only: bool = False
) -> Iterator[Store]:
    """The one way a command opens the store: ``with open_store(database_url) as store:``.

    Parameters
    ----------
    url
        ``--database-url``; ``None`` reads ``GRIDMAP_DATABASE_URL`` (else
        ``./gridmap.duckdb``).
    migrate
        Upgrade the schema on opening (``init`` opens without, to report the
        versions before and after).
    read_only
        Open an embedded file read-only (several readers may share it); a file
        that does not exist yet or needs upgrading is opened for writing.

    Yields
    ------
    Store
        The open store, with the data key's vault; closed when the block ends,
        whatever happens in it. Domain errors, in opening or in the block, end
        the command with one ``error:`` line and exit status 1.
    """
    with errors():
        store = _connect(url, migrate=migrate, read_only=read_only)
        try:
            yield store
        finally:
            store.close()


@contextmanager
def progress() -> Iterator[Callable[[str, int, int], None]]:
    """One progress bar on standard error; yields ``update(step, done, total)``."""
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task("starting", total=1)

        def update(step: str, done: int, total: int) -> None:
            # One bar per job; the text names the current step.
            bar.update(task, description=step, completed=done, total=max(total, 1))

        yield update


def _report_table(title: str, rows: dict[str, Any]) -> Table:
    table = Table(title=title)
    table.add_column("layer 图层")
    keys = ("read", "ok", "repaired", "rejected", "inserted", "updated", "skipped")
    for key in keys:
        table.add_column(key, justify="right")
    for layer, rep in rows.items():
        table.add_row(layer, *(str(getattr(rep, k, "")) for k in keys))
    return table


def print_import(title: str, reports: dict[str, Any], report_file: Path | None) -> None:
    """The counts table, then each layer's repair/rejection reasons and notes; per-row CSV."""
    out.print(_report_table(title, reports))
    for rep in reports.values():
        for line in rep.to_table()[2:]:  # the first two repeat the table's row
            out.print(f"{rep.layer}: {line.strip()}", markup=False, highlight=False)
    if report_file is not None:
        import pandas as pd

        frames = [
            rep.rows.rename_axis("row").reset_index().assign(layer=rep.layer)
            for rep in reports.values()
        ]
        rows = pd.concat(frames, ignore_index=True)[["layer", "row", "status", "reason"]]
        rows.to_csv(report_file, index=False, encoding="utf-8-sig")
        out.print(f"per-row report (逐行报告): {report_file}")
