"""``gridmap workers …``: grid workers and the grids they work (网格员与负责网格)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from gridmap.cli.common import DbOpt, open_store, out

__all__ = ["workers_app"]

workers_app = typer.Typer(
    help="Grid workers and the grids they work (网格员与负责网格).", no_args_is_help=True
)


def _worker_line(worker: Any) -> str:
    grids = ", ".join(worker.grids) or "none 无"
    area = worker.area_code or "-"
    return f"worker 网格员 {worker.name}: grids 负责网格 {grids} (area 区域 {area})"


@workers_app.command("assign")
def workers_assign(
    user: Annotated[str, typer.Argument(help="User name of a grid worker (用户名).")],
    grids: Annotated[list[str], typer.Argument(help="15-digit grid codes (网格编码).")],
    database_url: DbOpt = None,
) -> None:
    """Give a grid worker grids (分配网格).

    Their areas become the grids they work; /locate there names them and
    events reported there are assigned to them at once.
    """
    from gridmap.units.workers import assign_grids

    with open_store(database_url) as store:
        worker = assign_grids(store, user, grids)
    out.print(_worker_line(worker), markup=False, highlight=False)


@workers_app.command("unassign")
def workers_unassign(
    user: Annotated[str, typer.Argument(help="User name of a grid worker (用户名).")],
    grids: Annotated[list[str], typer.Argument(help="15-digit grid codes (网格编码).")],
    database_url: DbOpt = None,
) -> None:
    """Take grids from a grid worker (取消分配网格)."""
    from gridmap.units.workers import unassign_grids

    with open_store(database_url) as store:
        worker = unassign_grids(store, user, grids)
    out.print(_worker_line(worker), markup=False, highlight=False)


@workers_app.command("list")
def workers_list(
    area: Annotated[
        str | None,
        typer.Option(help="Only workers of this area: a town, community or grid code (区域)."),
    ] = None,
    database_url: DbOpt = None,
) -> None:
    """List grid workers and their grids (网格员列表).

    Workers who are users are listed by user name; other workers' names are masked.
    """
    from rich.text import Text

    from gridmap.units.workers import list_workers

    with open_store(database_url, read_only=True) as store:
        rows = list_workers(store, area=area)
    title = "workers 网格员" + (f" · {area}" if area else "")
    table = Table(title=title, caption="account 账号: a user of gridmap (assign by this name)")
    for col in ("name 姓名", "account 账号", "role 角色", "area 区域", "grids 负责网格"):
        table.add_column(col)
    for r in rows:
        cells = (r.name, "yes" if r.account else "", r.role, r.area_code, ", ".join(r.grids))
        table.add_row(*(Text(c or "") for c in cells))
    out.print(table)
