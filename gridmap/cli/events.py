"""``gridmap kpis``: event KPIs (考核指标) by grid, community, town, worker, category, period."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from gridmap.cli.common import DbOpt, errors, open_store, out

__all__ = ["kpis_cmd"]


def kpis_cmd(
    by: Annotated[
        str, typer.Option(help="grid, community, town, worker, category or period.")
    ] = "grid",
    start: Annotated[
        str | None, typer.Option("--from", help="Reported from (ISO date or time, UTC).")
    ] = None,
    end: Annotated[str | None, typer.Option("--to", help="Reported before (exclusive).")] = None,
    period: Annotated[str, typer.Option(help="day, week or month (with --by period).")] = "month",
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
    database_url: DbOpt = None,
) -> None:
    """Event KPIs (考核指标): reported, closed, 结案率, 按期结案率, 返工率, 延期率, times …"""
    import json as _json

    import pandas as pd

    from gridmap.common.errors import BadInput
    from gridmap.common.timeparse import parse_instant
    from gridmap.events.intake import list_events
    from gridmap.events.kpis import kpi_records, kpis
    from gridmap.security.access import SYSTEM

    with errors():
        if fmt not in ("table", "csv", "json"):
            raise BadInput("--format must be table, csv or json", field="format")
        # the one time parser (ISO 8601, years 1-9999); times without a zone are UTC
        t0 = None if start is None else parse_instant(start, field="--from", tz="UTC")
        t1 = None if end is None else parse_instant(end, field="--to", tz="UTC")
    with open_store(database_url, read_only=True) as store:
        events, _ = list_events(
            store, principal=SYSTEM, reported_from=t0, reported_to=t1, limit=10_000_000
        )
        rows = kpi_records(kpis(events, by=by, period=period))
    if fmt == "json":
        print(_json.dumps(rows, ensure_ascii=False, indent=1))
        return
    frame = pd.DataFrame(rows)
    if fmt == "csv":
        print(frame.to_csv(index=False), end="")
        return
    # One column per group, one row per figure: readable in a terminal.
    table = Table(title=f"KPIs by {by} 考核指标")
    table.add_column(by)
    for key in frame[by] if not frame.empty else []:
        table.add_column(str(key), justify="right")
    for col in frame.columns:
        if col != by:
            table.add_row(col, *["" if v is None or v != v else str(v) for v in frame[col]])
    out.print(table)
