"""``gridmap units …``: administrative units and their codes (行政区划与区划代码)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from gridmap.cli.common import DbOpt, open_store, out

__all__ = ["units_app"]

units_app = typer.Typer(
    help="Administrative units and their codes (行政区划与区划代码).", no_args_is_help=True
)


def _unit_line(unit: Any) -> str:
    state = "in force 有效" if unit.in_force else f"closed 已撤销 {unit.valid_to:%Y-%m-%d}"
    return (
        f"{unit.code} {unit.name or ''} ({unit.level}; parent 上级 {unit.parent_code or '-'}; "
        f"{state})"
    )


@units_app.command("list")
def units_list(
    level: Annotated[
        str | None, typer.Option(help="Only this level: city, town or community.")
    ] = None,
    under: Annotated[str | None, typer.Option(help="Only codes starting with this prefix.")] = None,
    closed: Annotated[bool, typer.Option("--closed", help="Also closed units.")] = False,
    database_url: DbOpt = None,
) -> None:
    """List the administrative units (区划列表): code, name, level, parent, grids."""
    from rich.text import Text

    from gridmap.units.hierarchy import list_units

    with open_store(database_url, read_only=True) as store:
        units = list_units(store, level=level, closed=closed, under=under)
    table = Table(title=f"admin units 行政区划 ({len(units)})")
    heads = ("code 代码", "name 名称", "level 层级", "kind 类型", "parent 上级")
    for head in (*heads, "children 下级", "grids 网格", "valid to 失效"):
        table.add_column(head, no_wrap=head.startswith(("code", "parent")))
    for u in units:
        cells = (u.code, u.name, u.level, u.kind, u.parent_code, str(u.children), str(u.grids))
        closed_at = "" if u.valid_to is None else f"{u.valid_to:%Y-%m-%d}"
        table.add_row(*(Text(c or "") for c in cells), closed_at)
    out.print(table)


@units_app.command("set-code")
def units_set_code(
    old: Annotated[str, typer.Argument(help="The unit's code now (any code an import gave).")],
    new: Annotated[str, typer.Argument(help="Its new code: 6, 9 or 12 digits by level.")],
    database_url: DbOpt = None,
) -> None:
    """Change a unit's code everywhere (修改区划代码), in one transaction.

    Child units, grids, buildings, key areas, events, patrol routes and tracks,
    households, residents, door-knocking, the workers layer and users' areas
    follow; a code already in use is refused.
    """
    from gridmap.units.hierarchy import set_code

    with open_store(database_url) as store:
        done = set_code(store, old, new)
    changed = ", ".join(f"{k} {v}" for k, v in done.changed.items()) or "nothing"
    out.print(f"{old} → {new}: rows changed 更新 {done.total} ({changed})", markup=False)


@units_app.command("rename")
def units_rename(
    code: Annotated[str, typer.Argument(help="Unit code.")],
    name: Annotated[str, typer.Argument(help="New name (名称).")],
    name_en: Annotated[str | None, typer.Option("--name-en", help="English name.")] = None,
    database_url: DbOpt = None,
) -> None:
    """Rename a unit (修改名称)."""
    from gridmap.units.hierarchy import rename_unit

    with open_store(database_url) as store:
        unit = rename_unit(store, code, name, name_en=name_en)
    out.print(_unit_line(unit), markup=False, highlight=False)


@units_app.command("set-parent")
def units_set_parent(
    code: Annotated[str, typer.Argument(help="Unit code.")],
    parent: Annotated[str, typer.Argument(help="Code of its new parent (上级), a higher level.")],
    database_url: DbOpt = None,
) -> None:
    """Put a unit under another parent (调整上级)."""
    from gridmap.units.hierarchy import set_parent

    with open_store(database_url) as store:
        unit = set_parent(store, code, parent)
    out.print(_unit_line(unit), markup=False, highlight=False)


@units_app.command("close")
def units_close(
    code: Annotated[str, typer.Argument(help="Unit code.")],
    database_url: DbOpt = None,
) -> None:
    """Close a unit (撤销): valid_to is set, the row and its grids' history are kept.

    A unit with units in force below it is refused; a community's grids in
    force are closed with it.
    """
    from gridmap.units.hierarchy import close_unit

    with open_store(database_url) as store:
        unit = close_unit(store, code)
    out.print(_unit_line(unit), markup=False, highlight=False)
