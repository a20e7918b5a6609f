"""The ``gridmap`` command line (typer): an edge of the system, like ``api/``.

It reads settings (``GRIDMAP_DATABASE_URL``), draws progress bars and, for
``serve``, ``demo`` and ``map render``, reaches out to the web service and the
map renderers. Nothing in the core imports it (import-linter: ``gridmap.cli``
→ ``api`` → ``layers`` → the rest of ``gridmap``).

One module per command group; each command opens the store with
:func:`gridmap.cli.common.open_store`. This module only assembles them: the
root application, the order ``gridmap --help`` lists them in, and :func:`main`.

========================================  ==========================
commands                                  module
========================================  ==========================
``init``, ``backup``, ``restore``         :mod:`gridmap.cli.store`
``db …``                                  :mod:`gridmap.cli.db`
``import …``, ``export …``                :mod:`gridmap.cli.data`
``grids …``                               :mod:`gridmap.cli.grids`
``map …``                                 :mod:`gridmap.cli.maps`
``serve``                                 :mod:`gridmap.cli.serve`
``demo``                                  :mod:`gridmap.cli.demo`
``users …``, ``token``                    :mod:`gridmap.cli.users`
``workers …``                             :mod:`gridmap.cli.workers`
``units …``                               :mod:`gridmap.cli.units`
``kpis``                                  :mod:`gridmap.cli.events`
``patrol …``                              :mod:`gridmap.cli.patrol`
``report``                                :mod:`gridmap.cli.reports`
``batch …``                               :mod:`gridmap.cli.batch`
========================================  ==========================
"""

from __future__ import annotations

import typer

from gridmap.cli import (
    batch,
    data,
    db,
    demo,
    events,
    grids,
    maps,
    patrol,
    reports,
    serve,
    store,
    units,
    users,
    workers,
)
from gridmap.cli.common import (
    DOMAIN_ERROR_EXIT,
    console,
    out,
    print_error,
)
from gridmap.common.errors import GridmapError
from gridmap.storage import DEFAULT_URL

__all__ = ["DOMAIN_ERROR_EXIT", "app", "console", "main", "out"]

app = typer.Typer(
    name="gridmap",
    help=(
        "gridmap — GIS patrol and grid mapping for grid-based community governance "
        "(网格化服务管理).\n\nThe store is chosen by GRIDMAP_DATABASE_URL (or --database-url): "
        "postgresql://… → PostGIS; a path or duckdb:///path → embedded DuckDB; "
        f"unset → {DEFAULT_URL}."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

# The order here is the order `gridmap --help` lists them in: commands, then groups.
app.command()(store.init)
app.command()(serve.serve)
app.command()(demo.demo)
app.command()(users.token)
app.command("kpis")(events.kpis_cmd)
app.command("backup")(store.backup_cmd)
app.command("restore")(store.restore_cmd)
app.command("report")(reports.report_cmd)
app.add_typer(data.import_app, name="import")
app.add_typer(data.export_app, name="export")
app.add_typer(grids.grids_app, name="grids")
app.add_typer(maps.map_app, name="map")
app.add_typer(users.users_app, name="users")
app.add_typer(workers.workers_app, name="workers")
app.add_typer(units.units_app, name="units")
app.add_typer(patrol.patrol_app, name="patrol")
app.add_typer(batch.batch_app, name="batch")
app.add_typer(db.db_app, name="db")


def main() -> None:
    """Entry point of the ``gridmap`` command and ``python -m gridmap``.

    A domain error or a missing optional extra that escaped a command's own
    handling still ends as one line and exit status 1, not a traceback.
    """
    import sys

    from gridmap.common.extras import missing_extra

    try:
        app(prog_name="gridmap")
    except GridmapError as exc:
        print_error(exc.message)
        sys.exit(DOMAIN_ERROR_EXIT)
    except ModuleNotFoundError as exc:
        extra = missing_extra(exc)
        if extra is None:
            raise
        print_error(extra.message)
        sys.exit(DOMAIN_ERROR_EXIT)
