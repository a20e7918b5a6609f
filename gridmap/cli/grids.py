"""``gridmap grids …``: grid division, rebalancing, topology checks and statistics (网格划分)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from gridmap.cli.common import DbOpt, errors, open_store, out, progress
from gridmap.common.errors import BadInput

__all__ = ["grids_app"]

grids_app = typer.Typer(help="Grid division and codes (网格划分).", no_args_is_help=True)


CommunityOpt = Annotated[
    str | None,
    typer.Option(
        "--community", help="12-digit community code (社区编码); default: every community."
    ),
]
TargetOpt = Annotated[
    float, typer.Option("--target", help="Target households per grid (目标户数).")
]
MinOpt = Annotated[float, typer.Option("--min", help="Fewest households per grid (最少户数).")]
MaxOpt = Annotated[float, typer.Option("--max", help="Most households per grid (最多户数).")]
WeightOpt = Annotated[
    str,
    typer.Option(
        "--weight",
        help="Balance on: households, residents, buildings, events, street_length "
        "or a numeric building column.",
    ),
]


def _grids_table(title: str, grids: Any) -> Table:
    table = Table(title=title)
    heads = (
        ("网格编码\ncode", "left"),
        ("户数\nhouseholds", "right"),
        ("人口\nresidents", "right"),
        ("楼栋\nbuildings", "right"),
        ("权重\nweight", "right"),
        ("面积 m²\narea", "right"),
        ("状态\nstatus", "left"),
        ("原因\nreason", "left"),
    )
    for head, justify in heads:
        table.add_column(head, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for row in grids.itertuples():
        style = "" if row.status == "ok" else "bold red"
        table.add_row(
            str(row.code),
            str(row.households),
            str(row.residents),
            str(row.buildings),
            f"{row.weight:.0f}",
            f"{row.area_m2:,.0f}",
            str(row.status),
            str(row.reason),
            style=style,
        )
    return table


def _saved_summary(saved: Any) -> str:
    g = saved.division.grids
    w = g["weight"]
    return (
        f"{saved.community_code}: {len(g)} grids 网格 · weight 权重 min {w.min():.0f} / "
        f"mean {w.mean():.0f} / max {w.max():.0f} · within limits 达标 "
        f"{int((g['status'] == 'ok').sum())}/{len(g)} · unchanged 未变 {len(saved.kept)} · "
        f"closed 关闭 {len(saved.closed)} · new rows 新增 {len(saved.added)}"
    )


@grids_app.command("generate")
def grids_generate(
    community: CommunityOpt = None,
    method: Annotated[
        str,
        typer.Option(help="balanced (along streets, 沿街均衡), h3, square or bisect."),
    ] = "balanced",
    target: TargetOpt = 300,
    min_households: MinOpt = 200,
    max_households: MaxOpt = 500,
    weight: WeightOpt = "households",
    resolution: Annotated[int, typer.Option(help="H3 resolution for --method h3.")] = 9,
    size_m: Annotated[
        float, typer.Option("--size-m", help="Square side in metres for --method square.")
    ] = 250.0,
    compactness: Annotated[
        float, typer.Option(help="Preference for compact shapes (0 = balance only).")
    ] = 0.05,
    fresh: Annotated[
        bool, typer.Option(help="Divide from scratch instead of starting from the grids in force.")
    ] = False,
    orphans: Annotated[
        str,
        typer.Option(
            "--orphans",
            help="Buildings outside every community (不在任何社区的楼栋): none (report them), "
            "assign (into the nearest community) or community (into a new 未划分区域 "
            "community with a code). Only with every community (no --community).",
        ),
    ] = "none",
    database_url: DbOpt = None,
) -> None:
    """Divide communities into grids (网格划分), number them (15-digit codes), keep history.

    Codes stay stable: a redrawn grid that mostly overlaps an old one keeps its
    code; changed grids are closed (valid_to) and kept, new rows are valid from now.
    Buildings and households left in no grid are reported after.
    """
    from gridmap.division.coverage import ORPHAN_MODES, coverage, place_orphans
    from gridmap.division.service import DivisionOptions, generate_grids

    placed = None
    with errors():
        if orphans not in ORPHAN_MODES:
            raise BadInput(f"--orphans must be one of {', '.join(ORPHAN_MODES)}", field="orphans")
        if orphans != "none" and community is not None:
            raise BadInput("--orphans works on every community: leave out --community")
    with open_store(database_url) as store:
        if orphans != "none":
            placed = place_orphans(store, orphans)
        with progress() as step:
            saved = generate_grids(
                store,
                community=community,
                options=DivisionOptions(
                    target=target,
                    low=min_households,
                    high=max_households,
                    weight=weight,
                    method=method,
                    resolution=resolution,
                    size_m=size_m,
                    compactness=compactness,
                ),
                fresh=fresh,
                progress=step,
            )
        cover = coverage(store)
    if placed is not None and placed.placed:
        where = placed.created or ", ".join(placed.grown)
        out.print(
            f"orphans 归属: {placed.placed} buildings ({placed.households} households) → {where}",
            markup=False,
        )
    for s in saved:
        out.print(
            _grids_table(
                f"{s.community_code} · {method} · {len(s.division.grids)} grids 网格",
                s.division.grids,
            )
        )
        out.print(_saved_summary(s))
        for note in s.division.notes:
            out.print(f"note 说明: {note}")
    for line in cover.lines():
        out.print(line, markup=False, highlight=False, soft_wrap=True)


@grids_app.command("rebalance")
def grids_rebalance(
    community: CommunityOpt = None,
    target: TargetOpt = 300,
    min_households: MinOpt = 200,
    max_households: MaxOpt = 500,
    weight: WeightOpt = "households",
    database_url: DbOpt = None,
) -> None:
    """Rebalance (网格调整): change only grids now outside [min, max], and as few neighbours."""
    from gridmap.division.balanced import GridSize
    from gridmap.division.service import rebalance_grids

    with open_store(database_url) as store, progress() as step:
        saved = rebalance_grids(
            store,
            community=community,
            size=GridSize(target=target, low=min_households, high=max_households, weight=weight),
            progress=step,
        )
    for s in saved:
        changed = s.division.grids[s.division.grids["code"].isin(s.added)]
        out.print(_grids_table(f"{s.community_code} · changed grids 调整的网格", changed))
        out.print(_saved_summary(s))


@grids_app.command("check")
def grids_check(
    community: CommunityOpt = None,
    fix: Annotated[
        bool, typer.Option(help="Repair (fill gaps, resolve overlaps, absorb slivers) and save.")
    ] = False,
    out_file: Annotated[
        Path | None,
        typer.Option("--out", help="Write the problems with geometry (.geojson, .gpkg)."),
    ] = None,
    database_url: DbOpt = None,
) -> None:
    """Topology check (拓扑检查): gaps, overlaps, slivers, boundary crossings, cut buildings."""
    from gridmap.division.service import check_grids
    from gridmap.division.topology import PROBLEMS

    with open_store(database_url) as store:
        problems, actions = check_grids(store, community=community, fix=fix)
    table = Table(title=f"{len(problems)} topology problems 拓扑问题")
    for head in ("问题\nproblem", "网格\ngrids", "面积 m²\narea", "说明\ndetail"):
        table.add_column(head, overflow="fold")
    for row in problems.itertuples():
        zh, en = PROBLEMS.get(str(row.problem), ("", str(row.problem)))
        table.add_row(f"{en} {zh}", str(row.codes), f"{row.area_m2:,.1f}", str(row.detail))
    out.print(table)
    for a in actions:
        out.print(f"fixed 已修复: {a}")
    if out_file is not None and len(problems):
        problems.to_file(out_file)
        out.print(f"problems written to {out_file}")


@grids_app.command("stats")
def grids_stats(
    community: CommunityOpt = None,
    months: Annotated[
        int, typer.Option(min=1, max=120, help="Statistics period in months (统计期, 月).")
    ] = 12,
    weights: Annotated[
        str,
        typer.Option(
            help="Workload weights in hours per month, e.g. "
            "household=0.05,street_km=6,event=2,key_area_visit=5 (any subset).",
        ),
    ] = "",
    database_url: DbOpt = None,
) -> None:
    """Refresh per-grid statistics (网格统计) and the workload index (工作量指数).

    Buildings, households, residents, area, street length, events by category,
    open events and workload of the grids in force, stored on the grids layer
    (so /collections/grids/items shows them). The workload index is 1.0 for the
    median grid of each community; see gridmap.division.stats.WorkloadWeights.
    """
    from gridmap.division.stats import WorkloadWeights, refresh_grid_statistics

    with errors():
        w = WorkloadWeights.parse(weights)
    with open_store(database_url) as store:
        units = store.read("admin_units", where={"level": "community"})
        codes = [community] if community else sorted(str(c) for c in units["code"])
        parts = []
        with progress() as step:
            for i, code in enumerate(codes):
                step(f"statistics 统计 {code}", i, len(codes))
                parts.append(
                    refresh_grid_statistics(store, community=code, months=months, weights=w)
                )
            step("done 完成", len(codes), len(codes))
    for code, stats in zip(codes, parts, strict=True):
        for table in _stats_tables(f"{code} · {len(stats)} grids 网格", stats):
            out.print(table)


def _stats_tables(title: str, stats: Any) -> list[Table]:
    """Two tables: base figures and workload, then events by category."""
    from gridmap.common.model import EVENT_CATEGORIES
    from gridmap.division.stats import CATEGORY_COLUMNS

    first = [
        ("网格编码\ncode", "code", "{}"),
        ("楼栋\nbuildings", "buildings", "{}"),
        ("户数\nhouseholds", "households", "{}"),
        ("人口\nresidents", "residents", "{}"),
        ("面积 m²\narea", "area_m2", "{:,.0f}"),
        ("街巷 m\nstreets", "street_length_m", "{:,.0f}"),
        ("重点区域 次/日\nkey visits/day", "key_area_visits", "{:.1f}"),
        ("工时/月\nhours/month", "workload_hours", "{:.1f}"),
        ("工作量指数\nworkload", "workload", "{:.2f}"),
    ]
    second = [
        ("网格编码\ncode", "code", "{}"),
        ("事件\nevents", "events_total", "{}"),
        ("未结\nopen", "events_open", "{}"),
        *((f"{EVENT_CATEGORIES[c][0]}\n{c}", col, "{}") for c, col in CATEGORY_COLUMNS.items()),
    ]
    tables = []
    for caption, heads in (
        (f"{title} · statistics 统计", first),
        (f"{title} · events by category 分类事件", second),
    ):
        table = Table(title=caption)
        for head, col, _fmt in heads:
            if col == "code":  # a 15-digit code is never folded: it is copied and searched
                table.add_column(head, justify="left", no_wrap=True, min_width=15)
            else:
                table.add_column(head, justify="right", overflow="fold")
        for row in stats.to_dict("records"):
            table.add_row(*(fmt.format(row[col]) for _h, col, fmt in heads))
        tables.append(table)
    return tables
