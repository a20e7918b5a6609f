"""The ``gridmap`` command line (typer).

This is an edge of the system, like ``api/``: it reads settings
(``GRIDMAP_DATABASE_URL``), draws progress bars and, for ``serve``, ``demo``
and ``map render``, reaches out to the web service and the map renderers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic_settings import BaseSettings, SettingsConfigDict
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from gridmap.errors import BadInput, GridmapError
from gridmap.model import LAYERS
from gridmap.storage import DEFAULT_URL, Store, open_store
from gridmap.timezone import DEFAULT_TIME_ZONE

if TYPE_CHECKING:
    from gridmap.privacy import Vault

__all__ = ["app"]

console = Console(stderr=True)
out = Console()


class CliSettings(BaseSettings):
    """Settings the CLI reads from the environment (prefix ``GRIDMAP_``).

    ``time_zone`` (``GRIDMAP_TIME_ZONE``) is where reports read and show dates;
    ``tiles_url``, ``tiles_attribution`` and ``basemap_crs`` name the basemap of
    ``map render`` (as for the service's map pages); ``rules_file``
    (``GRIDMAP_RULES_FILE``) the assessment rules of ``report``.
    """

    model_config = SettingsConfigDict(env_prefix="GRIDMAP_", extra="ignore")
    database_url: str = DEFAULT_URL
    time_zone: str = DEFAULT_TIME_ZONE
    tiles_url: str | None = None
    tiles_attribution: str | None = None
    basemap_crs: str = "wgs84"
    rules_file: Path | None = None


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
import_app = typer.Typer(help="Import data into the store (导入数据).", no_args_is_help=True)
export_app = typer.Typer(help="Export layers from the store (导出数据).", no_args_is_help=True)
grids_app = typer.Typer(help="Grid division and codes (网格划分).", no_args_is_help=True)
map_app = typer.Typer(help="Interactive maps (地图).", no_args_is_help=True)
app.add_typer(import_app, name="import")
app.add_typer(export_app, name="export")
app.add_typer(grids_app, name="grids")
app.add_typer(map_app, name="map")

DbOpt = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="Store URL; default from GRIDMAP_DATABASE_URL, else ./gridmap.duckdb.",
        show_default=False,
    ),
]


def _open(url: str | None, *, migrate: bool = True, read_only: bool = False) -> Store:
    """Open the store; *read_only* commands open an embedded file read-only.

    Several read-only commands may share a DuckDB file; none may open it while
    a writer (``gridmap serve``) holds it: that raises ``StoreBusy``, which
    :func:`_errors` prints as one line. A file whose schema needs upgrading, or
    that does not exist yet, is opened for writing (and migrated) instead.
    """
    url = url or CliSettings().database_url
    vault = _data_vault()
    if read_only:
        try:
            store = open_store(url, read_only=True, vault=vault)
        except BadInput:  # no file yet
            return open_store(url, migrate=migrate, vault=vault)
        try:
            store.migrate()  # read-only: checks that the schema is current
        except BadInput:
            store.close()
            return open_store(url, migrate=migrate, vault=vault)
        return store
    return open_store(url, migrate=migrate, vault=vault)


def _data_vault() -> Vault:
    """The field-encryption keys from ``GRIDMAP_DATA_KEY``, as the API derives them.

    Events' reporters and contacts are encrypted at rest with them
    (:mod:`gridmap.storage.fieldcrypt`), like residents' fields.
    """
    from pydantic import ValidationError

    from api.security import SecuritySettings
    from gridmap.privacy import Vault as _Vault

    try:
        key = SecuritySettings().data_key.get_secret_value()
    except ValidationError as exc:
        raise BadInput(f"security settings: {exc.errors()[0]['msg']}", field="data_key") from None
    return _Vault.from_secret(key)


#: Exit status of a command stopped by a domain error (bad input, a missing row, a
#: busy store, a missing optional extra); 2 stays click's code for usage errors.
DOMAIN_ERROR_EXIT = 1


@contextmanager
def _errors() -> Iterator[None]:
    """Turn domain errors into one clear line and exit code 1 (no traceback).

    A lazy import of an optional extra's package that is not installed
    (``ModuleNotFoundError``) becomes the line naming the extra to install
    (:func:`gridmap.extras.missing_extra`).
    """
    from gridmap.extras import missing_extra

    try:
        yield
    except GridmapError as exc:
        console.print(f"[bold red]error:[/] {escape(exc.message)}", soft_wrap=True)
        raise typer.Exit(DOMAIN_ERROR_EXIT) from None
    except ModuleNotFoundError as exc:
        extra = missing_extra(exc)
        if extra is None:
            raise
        console.print(f"[bold red]error:[/] {escape(extra.message)}", soft_wrap=True)
        raise typer.Exit(DOMAIN_ERROR_EXIT) from None


@contextmanager
def _progress() -> Iterator[Callable[[str, int, int], None]]:
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


def _print_import(title: str, reports: dict[str, Any], report_file: Path | None) -> None:
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


ReportOpt = Annotated[
    Path | None,
    typer.Option(
        "--report",
        help="Write the per-row report (逐行报告: layer, row, status, reason) to this CSV file.",
    ),
]


@app.command()
def init(database_url: DbOpt = None) -> None:
    """Create or upgrade the schema (创建/升级数据库结构) without losing data."""
    with _errors():
        store = _open(database_url, migrate=False)
        try:  # a missing privilege (PostGIS) is one line naming it and the SQL granting it
            before = store.schema_version()
            after = store.migrate()
            if before < 11 <= after:  # events stored before migration 011 get their H3 cells
                from gridmap.heat import fill_event_cells

                fill_event_cells(store)
        finally:
            store.close()
    out.print(f"schema version {before} → {after} ({store.url})")


@import_app.command("osm")
def import_osm_cmd(
    file: Annotated[Path, typer.Argument(help="OpenStreetMap extract (.osm.pbf).")],
    town_prefix: Annotated[
        str | None,
        typer.Option(
            "--town-prefix",
            help="Give towns and communities valid codes (区划代码) under this 9-digit town "
            "code (the first town's, e.g. 370285001) or 6-digit county code, north → south, "
            "west → east, when the extract's boundaries carry none.",
        ),
    ] = None,
    database_url: DbOpt = None,
    report_file: ReportOpt = None,
) -> None:
    """Import buildings (楼栋), roads (道路), key places (重点场所) and boundaries from OSM.

    Then reports the buildings and households outside every community
    (they would be in no grid: see `gridmap grids generate --orphans`).
    """
    from gridmap.coverage import coverage
    from gridmap.io.importer import import_osm

    with _errors():
        store = _open(database_url)
        try:
            with _progress() as progress:
                reports = import_osm(store, file, town_prefix=town_prefix, progress=progress)
            cover = coverage(store)
        finally:
            store.close()
    _print_import(f"imported {file.name}", dict(reports), report_file)
    for line in cover.lines():
        out.print(line, markup=False, highlight=False, soft_wrap=True)


@import_app.command("layer")
def import_layer_cmd(
    file: Annotated[
        Path, typer.Argument(help="GeoJSON, GeoPackage, Shapefile, GeoParquet or CSV.")
    ],
    layer: Annotated[str, typer.Option(help=f"Target layer: {', '.join(LAYERS)}.")],
    crs: Annotated[
        str | None,
        typer.Option(
            help="Coordinates' system: wgs84, gcj02 (高德/腾讯), bd09 (百度), cgcs2000, EPSG:n."
        ),
    ] = None,
    lon: Annotated[str | None, typer.Option(help="CSV longitude column.")] = None,
    lat: Annotated[str | None, typer.Option(help="CSV latitude column.")] = None,
    update: Annotated[
        bool,
        typer.Option(
            "--update",
            help="Replace stored rows (same source id) that the file changes, attributes "
            "and geometry; without it they are reported and left as they are.",
        ),
    ] = False,
    database_url: DbOpt = None,
    report_file: ReportOpt = None,
) -> None:
    """Import one file into a layer: repaired or rejected per row, all or nothing, idempotent."""
    from gridmap.io.importer import import_layer

    with _errors():
        store = _open(database_url)
        with _progress() as progress:
            report = import_layer(
                store,
                file,
                layer=layer,
                crs=crs,
                lon=lon,
                lat=lat,
                update=update,
                progress=progress,
            )
        if layer == "grids" and report.inserted:  # imported grids get their statistics
            from gridmap.division.stats import refresh_grid_statistics

            refresh_grid_statistics(store)
        store.close()
    _print_import(f"imported {file.name}", {layer: report}, report_file)


@export_app.command("layer")
def export_layer_cmd(
    name: Annotated[str, typer.Argument(help=f"Layer: {', '.join(LAYERS)}.")],
    out_file: Annotated[
        Path,
        typer.Option(
            "--out", help="Output file; format from the suffix (.gpkg, .geojson, .parquet, .csv)."
        ),
    ],
    database_url: DbOpt = None,
) -> None:
    """Export a layer to a file (导出图层)."""
    from gridmap.io.export import export_layer

    with _errors():
        store = _open(database_url, read_only=True)
        n = export_layer(store, name, out_file)
        store.close()
    out.print(f"wrote {n} features to {out_file}")


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
    from gridmap.coverage import ORPHAN_MODES, coverage, place_orphans
    from gridmap.division.service import generate_grids

    placed = None
    with _errors():
        if orphans not in ORPHAN_MODES:
            raise BadInput(f"--orphans must be one of {', '.join(ORPHAN_MODES)}", field="orphans")
        if orphans != "none" and community is not None:
            raise BadInput("--orphans works on every community: leave out --community")
        store = _open(database_url)
        if orphans != "none":
            placed = place_orphans(store, orphans)
        with _progress() as progress:
            saved = generate_grids(
                store,
                community=community,
                method=method,
                target=target,
                low=min_households,
                high=max_households,
                weight=weight,
                resolution=resolution,
                size_m=size_m,
                compactness=compactness,
                fresh=fresh,
                progress=progress,
            )
        cover = coverage(store)
        store.close()
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
    from gridmap.division.service import rebalance_grids

    with _errors():
        store = _open(database_url)
        with _progress() as progress:
            saved = rebalance_grids(
                store,
                community=community,
                target=target,
                low=min_households,
                high=max_households,
                weight=weight,
                progress=progress,
            )
        store.close()
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

    with _errors():
        store = _open(database_url)
        problems, actions = check_grids(store, community=community, fix=fix)
        store.close()
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

    with _errors():
        w = WorkloadWeights.parse(weights)
        store = _open(database_url)
        units = store.read("admin_units", where={"level": "community"})
        codes = [community] if community else sorted(str(c) for c in units["code"])
        parts = []
        with _progress() as progress:
            for i, code in enumerate(codes):
                progress(f"statistics 统计 {code}", i, len(codes))
                parts.append(
                    refresh_grid_statistics(store, community=code, months=months, weights=w)
                )
            progress("done 完成", len(codes), len(codes))
        store.close()
    for code, stats in zip(codes, parts, strict=True):
        for table in _stats_tables(f"{code} · {len(stats)} grids 网格", stats):
            out.print(table)


def _stats_tables(title: str, stats: Any) -> list[Table]:
    """Two tables: base figures and workload, then events by category."""
    from gridmap.division.stats import CATEGORY_COLUMNS
    from gridmap.model import EVENT_CATEGORIES

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


@map_app.command("render")
def map_render(
    out_file: Annotated[Path, typer.Option("--out", help="HTML file to write.")],
    lang: Annotated[str, typer.Option(help="zh, en or zh-en (bilingual).")] = "zh-en",
    area: Annotated[
        str | None,
        typer.Option(help="Only this area: a county, town, community or grid code."),
    ] = None,
    role: Annotated[
        str,
        typer.Option(
            help="Who the file is for. The default, viewer (the public), sees no events and "
            "no personal data; a staff role sees events with reporters and phones masked."
        ),
    ] = "viewer",
    title: Annotated[
        str | None, typer.Option(help="Map title (default: the area's name and code).")
    ] = None,
    layers: Annotated[
        str | None,
        typer.Option(help="Comma-separated layers (default: every layer the role may see)."),
    ] = None,
    tiles_url: Annotated[
        str | None,
        typer.Option(help="XYZ URL of a basemap (default GRIDMAP_TILES_URL; none: no tiles)."),
    ] = None,
    attribution: Annotated[
        str | None,
        typer.Option(help="Attribution of the basemap (default GRIDMAP_TILES_ATTRIBUTION)."),
    ] = None,
    basemap_crs: Annotated[
        str | None,
        typer.Option(help="wgs84 or gcj02 (Gaode tiles; default GRIDMAP_BASEMAP_CRS)."),
    ] = None,
    database_url: DbOpt = None,
) -> None:
    """Write a self-contained interactive map (assets inlined) for sharing.

    What a shared file holds is chosen by --role: by default the public's view
    (viewer), with no events, no reporter names, phones or event descriptions.
    """
    settings = CliSettings()
    with _errors():
        store = _open(database_url)
        try:
            _write_map(
                store,
                out_file,
                lang=lang,
                inline=True,
                area=area,
                role=role,
                title=title,
                layers=None if layers is None else [x.strip() for x in layers.split(",")],
                tiles_url=tiles_url if tiles_url is not None else settings.tiles_url,
                attribution=attribution if attribution is not None else settings.tiles_attribution,
                basemap_crs=basemap_crs or settings.basemap_crs,
            )
        finally:
            store.close()
    out.print(f"map written to {out_file} (for role {role})")


def _map_data(
    store: Store, *, area: str | None, role: str, layers: list[str] | None
) -> tuple[dict[str, Any], str | None]:
    """The layers *role* may see (of *area*, if given) and the area's name."""
    import geopandas as gpd
    import shapely

    from layers.catalog import CATALOG, check_role, get_layer

    check_role(role)
    if layers is not None:
        for name in layers:
            ldef = get_layer(name)
            if not ldef.is_spatial:
                raise BadInput(
                    f"layer {name!r} has no geometry and cannot be drawn", field="layers"
                )
            if not ldef.is_visible_to(role):
                raise BadInput(
                    f"role {role!r} may not see layer {name!r}: leave it out or name a role "
                    "that may (--role)",
                    field="layers",
                )
    names = [
        n
        for n, ldef in CATALOG.items()
        if ldef.is_spatial and ldef.is_visible_to(role) and (layers is None or n in layers)
    ]
    bbox = None
    label = None
    if area is not None:
        if not (area.isascii() and area.isdigit() and len(area) in (6, 9, 12, 15)):
            raise BadInput("--area must be a 6, 9, 12 or 15 digit code", field="area")
        table = "grids" if len(area) == 15 else "admin_units"
        units = store.read(table, where={"code": area})
        if len(units) == 0:
            raise BadInput(f"no area {area} in the store", field="area")
        label = f"{units['name'].iloc[-1] or area}（{area}）"
        if isinstance(units, gpd.GeoDataFrame):
            bbox = tuple(float(v) for v in shapely.bounds(shapely.union_all(units.geometry.values)))
    data: dict[str, Any] = {}
    for name in names:
        columns = {c.name for c in CATALOG[name].fields}
        where: dict[str, Any] = {}
        box = None
        if area is not None:
            from gridmap.storage import Prefix

            if name in ("grids", "admin_units"):
                where["code"] = Prefix((area,))
            elif "grid_code" in columns:
                where["grid_code"] = Prefix((area,))
            else:
                box = bbox
        frame = store.read(name, where=where or None, bbox=box, limit=20_000)  # type: ignore[arg-type]
        if "valid_to" in frame and len(frame):
            frame = frame[frame["valid_to"].isna()]  # the grids in force
        data[name] = frame
    return data, label


def _write_map(
    store: Store,
    path: Path,
    *,
    lang: str,
    inline: bool,
    area: str | None = None,
    role: str = "viewer",
    title: str | None = None,
    layers: list[str] | None = None,
    tiles_url: str | None = None,
    attribution: str | None = None,
    basemap_crs: str = "wgs84",
) -> None:
    from layers.assets import copy_assets
    from layers.render import map_html, render_map

    data, label = _map_data(store, area=area, role=role, layers=layers)
    heading = title or (f"{label} 网格地图 Grid map" if label else "网格地图 Grid map")
    path.parent.mkdir(parents=True, exist_ok=True)
    base = "assets/"
    m = render_map(
        data,
        lang=lang,
        base_url=base,
        title=heading,
        role=role,
        tiles_url=tiles_url,
        attr=attribution,
        basemap_crs=basemap_crs,
    )
    if not inline:
        copy_assets(path.parent)
    path.write_text(map_html(m, inline=inline), encoding="utf-8")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    database_url: DbOpt = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Worker processes (one per core). More than one needs PostGIS: the "
            "embedded DuckDB file is opened by one process only.",
        ),
    ] = 1,
    root_path: Annotated[
        str,
        typer.Option(
            help="URL prefix the service is mounted under behind a reverse proxy "
            "(e.g. /gridmap): links and redirects carry it.",
        ),
    ] = "",
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated addresses of proxies trusted to set X-Forwarded-For/"
            "-Proto ('*' for any); default: uvicorn's (127.0.0.1, or "
            "FORWARDED_ALLOW_IPS).",
            show_default=False,
        ),
    ] = None,
    log_level: Annotated[
        str | None,
        typer.Option(
            help="critical, error, warning, info, debug or trace; default "
            "GRIDMAP_LOG_LEVEL, else info. GRIDMAP_LOG_FORMAT=json writes JSON lines.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve the HTTP API: OGC API Features, maps, /docs, /healthz, /readyz, /metrics.

    SIGTERM or Ctrl-C stop it cleanly (the store is closed, an embedded file
    checkpointed). If the store's database becomes unusable (DuckDB
    invalidated the file) requests answer 503 and the server exits with
    status 3, naming the file and `gridmap db check`/`gridmap db recover`,
    for its supervisor to restart it.
    """
    import os

    import uvicorn

    from api.logs import configure_logging
    from api.main import create_app
    from api.settings import Settings

    levels = ("critical", "error", "warning", "info", "debug", "trace")
    if log_level is not None and log_level.lower() not in levels:
        raise typer.BadParameter(f"one of {', '.join(levels)}", param_hint="--log-level")
    if root_path and (not root_path.startswith("/") or root_path.endswith("/")):
        raise typer.BadParameter(
            "a path starting with / and not ending with / (e.g. /gridmap)",
            param_hint="--root-path",
        )
    overrides: dict[str, Any] = {}
    if database_url:
        overrides["database_url"] = database_url
    if log_level:
        overrides["log_level"] = log_level.lower()
    with _errors():
        try:
            settings = Settings(**overrides)
        except ValueError as exc:  # pydantic: a bad GRIDMAP_* value
            raise BadInput(f"bad setting: {exc}") from None
    configure_logging(settings.log_format, settings.log_level)
    server_options: dict[str, Any] = {
        "root_path": root_path,
        "log_level": settings.log_level,
        "access_log": False,  # api.middleware.Observe logs each request, with its id
        "proxy_headers": True,
    }
    if forwarded_allow_ips is not None:
        server_options["forwarded_allow_ips"] = forwarded_allow_ips
    if workers == 1:
        with _errors():  # a busy or unusable store, a bad taxonomy or rules file: one line
            _open(settings.database_url).close()
            application = create_app(settings)
        _serve_app(application, host=host, port=port, **server_options)
        return
    if not settings.database_url.startswith(("postgresql://", "postgres://", "postgresql+")):
        with _errors():
            raise BadInput(
                f"--workers {workers} needs a PostGIS store (GRIDMAP_DATABASE_URL=postgresql://…): "
                "the embedded DuckDB file is opened by one process only"
            )
    # Each worker process builds its own application from the environment.
    os.environ["GRIDMAP_DATABASE_URL"] = settings.database_url
    os.environ["GRIDMAP_LOG_LEVEL"] = settings.log_level
    uvicorn.run(
        "api.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None if settings.log_format == "json" else uvicorn.config.LOGGING_CONFIG,
        **server_options,
    )


def _serve_app(app: Any, *, host: str, port: int, log_level: str = "info", **options: Any) -> None:
    """Run *app* under uvicorn until SIGTERM/Ctrl-C, or until its store becomes unusable.

    The application's lifespan owns the store and closes it when the server
    stops: uvicorn re-raises SIGTERM after its shutdown, so nothing after
    ``run()`` would run then. A store failure (``app.state.store_failure``,
    set by ``api.errors``) stops the server through ``app.state.stop_serving``;
    the process then exits with status 3 for its supervisor to restart it.
    """
    import uvicorn

    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, **options)
    if getattr(app.state, "settings", None) is not None and app.state.settings.log_format == "json":
        from api.logs import configure_logging

        # uvicorn.Config set up its text handlers just now: JSON lines instead.
        configure_logging("json", log_level)
    server = uvicorn.Server(config)
    app.state.stop_serving = lambda: setattr(server, "should_exit", True)
    server.run()
    failure = getattr(app.state, "store_failure", None)
    if failure:
        console.print(f"[bold red]error:[/] {escape(str(failure))}", soft_wrap=True)
        raise typer.Exit(3)
    if not server.started:  # as uvicorn.run: the start-up failed
        raise typer.Exit(3)


@app.command()
def demo(
    serve_api: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Start the API after.")
    ] = True,
    port: Annotated[int, typer.Option(help="API port.")] = 8000,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the map.")] = Path(
        "gridmap-demo"
    ),
    events: Annotated[int, typer.Option(help="Synthetic events to generate.")] = 600,
    database_url: DbOpt = None,
) -> None:
    """The whole job on the bundled real OSM extract (Helsinki), embedded store, offline.

    Imports the extract, creates a city/town/community hierarchy, divides it into
    grids, generates seeded SYNTHETIC events on real streets, writes a map and
    starts the API on 127.0.0.1.
    """
    from gridmap.demo import run_demo

    with _errors():
        store = _open(database_url)
        with _progress() as progress:
            summary = run_demo(store, events=events, progress=progress)
        map_path = out_dir / "map.html"
        _write_map(
            store,
            map_path,
            lang="zh-en",
            inline=False,
            role="city_admin",
            title="gridmap demo 演示（合成事件 synthetic events）",
        )
        from gridmap.auth import demo_users

        first_grid = str(store.read("grids", limit=1)["code"].iloc[0])
        creds = demo_users(store, grid_code=first_grid)
    table = Table(
        title="gridmap demo 演示", caption="Helsinki OSM extract; events are synthetic 合成数据"
    )
    table.add_column("layer 图层")
    table.add_column("features 要素", justify="right")
    for layer, n in summary.counts.items():
        table.add_row(layer, str(n))
    out.print(table)
    out.print(f"store 数据库:  {store.url}")
    out.print(f"map 地图:      {map_path.resolve()}")
    users = Table(title="demo users 演示用户 (one per role)")
    users.add_column("user 用户")
    users.add_column("role 角色")
    users.add_column("area 区域")
    for name, (role, area) in creds.users.items():
        users.add_row(name, role, "all 全市" if area in ("", "*") else area)
    out.print(users)
    out.print(f"password 密码:  {creds.password}   (POST /auth/token, form username/password)")
    out.print(f"API key (demo_system, header X-API-Key): {creds.api_key}")
    if not serve_api:
        store.close()
        return
    from api.main import create_app
    from api.settings import Settings

    base = f"http://127.0.0.1:{port}"
    out.print(f"API:          {base}/  ·  {base}/collections  ·  {base}/docs")
    out.print(f"map page:     {base}/maps/overview")
    out.print(f"sign in 登录:  {base}/login  ·  网格通 field app (demo_worker): {base}/app/")
    out.print("Ctrl-C stops the server.")
    # The server opens the store itself and closes it (checkpointed) when it
    # stops, on SIGTERM too (a store handed to it would be left open then).
    store.close()
    settings = Settings(database_url=store.url)
    _serve_app(create_app(settings), host="127.0.0.1", port=port, log_level="warning")


# -- users and credentials (issue 5) ----------------------------------------------
users_app = typer.Typer(help="Users and credentials (用户与凭据).", no_args_is_help=True)
app.add_typer(users_app, name="users")


def _token_config() -> Any:
    from api.security import SecuritySettings

    return SecuritySettings().token_config()


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="Unique user name.")],
    role: Annotated[
        str,
        typer.Option(
            help="city_admin, town_coordinator, community_staff, "
            "grid_worker, viewer or external_system."
        ),
    ],
    area: Annotated[
        list[str] | None,
        typer.Option(
            "--area",
            help="Area code prefix (town 9, community 12, grid 15 digits); repeat for several.",
        ),
    ] = None,
    unmask: Annotated[
        bool, typer.Option("--unmask", help="May see personal data unmasked (audited).")
    ] = False,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read a password from standard input.")
    ] = False,
    database_url: DbOpt = None,
) -> None:
    """Create a user (a password enables the OAuth2 login; `gridmap token` works without)."""
    import sys

    from gridmap import audit
    from gridmap.access import SYSTEM
    from gridmap.auth import add_user

    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else None
    with _errors():
        store = _open(database_url)
        user = add_user(
            store, name, role=role, areas=area or [], password=password, can_unmask=unmask
        )
        audit.record(store, SYSTEM, "user.add", f"users:{user.name}", {"role": user.role})
        store.close()
    areas = ", ".join(a or "*" for a in user.areas)
    out.print(f"user {user.name} ({user.role}) areas: {areas}")


@users_app.command("list")
def users_list(database_url: DbOpt = None) -> None:
    """List users (never their secrets)."""
    from gridmap.auth import list_users

    with _errors():
        store = _open(database_url, read_only=True)
        users = list_users(store)
        store.close()
    table = Table(title="users 用户")
    for col in ("name", "role", "areas", "unmask", "password", "api key", "disabled"):
        table.add_column(col)
    for u in users:
        table.add_row(
            u.name,
            u.role,
            ", ".join(a or "*" for a in u.areas),
            "yes" if u.can_unmask else "",
            "yes" if u.password_hash else "",
            "yes" if u.api_key_hash else "",
            "DISABLED" if u.disabled else "",
        )
    out.print(table)


@users_app.command("disable")
def users_disable(
    name: Annotated[str, typer.Argument(help="User name.")],
    enable: Annotated[bool, typer.Option("--enable", help="Re-enable instead.")] = False,
    database_url: DbOpt = None,
) -> None:
    """Disable a user: their tokens and API key stop working at once."""
    from gridmap import audit
    from gridmap.access import SYSTEM
    from gridmap.auth import set_disabled

    with _errors():
        store = _open(database_url)
        set_disabled(store, name, not enable)
        audit.record(store, SYSTEM, "user.disable", f"users:{name}", {"disabled": not enable})
        store.close()
    out.print(f"user {name} {'enabled' if enable else 'disabled'}")


@users_app.command("api-key")
def users_api_key(
    name: Annotated[str, typer.Argument(help="User name (usually an external_system).")],
    database_url: DbOpt = None,
) -> None:
    """Print a new API key for NAME once (only its digest is stored); send it as X-API-Key."""
    from gridmap import audit
    from gridmap.access import SYSTEM
    from gridmap.auth import issue_api_key

    with _errors():
        store = _open(database_url)
        key = issue_api_key(store, name)
        audit.record(store, SYSTEM, "api_key.issue", f"users:{name}")
        store.close()
    print(key)


# -- grid workers and their grids (issue 19 item 3, issue 18 item 2) ------------------
workers_app = typer.Typer(
    help="Grid workers and the grids they work (网格员与负责网格).", no_args_is_help=True
)
app.add_typer(workers_app, name="workers")


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
    from gridmap.workers import assign_grids

    with _errors():
        store = _open(database_url)
        try:
            worker = assign_grids(store, user, grids)
        finally:
            store.close()
    out.print(_worker_line(worker), markup=False, highlight=False)


@workers_app.command("unassign")
def workers_unassign(
    user: Annotated[str, typer.Argument(help="User name of a grid worker (用户名).")],
    grids: Annotated[list[str], typer.Argument(help="15-digit grid codes (网格编码).")],
    database_url: DbOpt = None,
) -> None:
    """Take grids from a grid worker (取消分配网格)."""
    from gridmap.workers import unassign_grids

    with _errors():
        store = _open(database_url)
        try:
            worker = unassign_grids(store, user, grids)
        finally:
            store.close()
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

    from gridmap.workers import list_workers

    with _errors():
        store = _open(database_url, read_only=True)
        try:
            rows = list_workers(store, area=area)
        finally:
            store.close()
    title = "workers 网格员" + (f" · {area}" if area else "")
    table = Table(title=title, caption="account 账号: a user of gridmap (assign by this name)")
    for col in ("name 姓名", "account 账号", "role 角色", "area 区域", "grids 负责网格"):
        table.add_column(col)
    for r in rows:
        cells = (r.name, "yes" if r.account else "", r.role, r.area_code, ", ".join(r.grids))
        table.add_row(*(Text(c or "") for c in cells))
    out.print(table)


# -- codes and hierarchy, registers (issue 19 items 1, 2 and 4) ------------------------
units_app = typer.Typer(
    help="Administrative units and their codes (行政区划与区划代码).", no_args_is_help=True
)
app.add_typer(units_app, name="units")


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

    from gridmap.hierarchy import list_units

    with _errors():
        store = _open(database_url, read_only=True)
        try:
            units = list_units(store, level=level, closed=closed, under=under)
        finally:
            store.close()
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
    from gridmap.hierarchy import set_code

    with _errors():
        store = _open(database_url)
        try:
            done = set_code(store, old, new)
        finally:
            store.close()
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
    from gridmap.hierarchy import rename_unit

    with _errors():
        store = _open(database_url)
        try:
            unit = rename_unit(store, code, name, name_en=name_en)
        finally:
            store.close()
    out.print(_unit_line(unit), markup=False, highlight=False)


@units_app.command("set-parent")
def units_set_parent(
    code: Annotated[str, typer.Argument(help="Unit code.")],
    parent: Annotated[str, typer.Argument(help="Code of its new parent (上级), a higher level.")],
    database_url: DbOpt = None,
) -> None:
    """Put a unit under another parent (调整上级)."""
    from gridmap.hierarchy import set_parent

    with _errors():
        store = _open(database_url)
        try:
            unit = set_parent(store, code, parent)
        finally:
            store.close()
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
    from gridmap.hierarchy import close_unit

    with _errors():
        store = _open(database_url)
        try:
            unit = close_unit(store, code)
        finally:
            store.close()
    out.print(_unit_line(unit), markup=False, highlight=False)


@import_app.command("codes")
def import_codes_cmd(
    file: Annotated[
        Path, typer.Argument(help="Code table (.csv or .xlsx): 区划代码, 名称, 上级代码.")
    ],
    database_url: DbOpt = None,
    report_file: Annotated[
        Path | None,
        typer.Option("--report", help="Write every row's outcome to this CSV file."),
    ] = None,
) -> None:
    """Set official codes (区划代码) on the units whose names match within their parent."""
    from gridmap.hierarchy import import_code_table

    with _errors():
        store = _open(database_url)
        try:
            report = import_code_table(store, file)
        finally:
            store.close()
    out.print(
        f"{file.name}: {len(report.rows)} rows · matched 匹配 {report.matched} · "
        f"unmatched 未匹配 {report.unmatched}",
        markup=False,
    )
    for r in report.rows.itertuples():
        if r.status == "matched":
            out.print(f"  row {r.row}: {r.name} {r.reason}", markup=False, highlight=False)
        elif r.status == "unmatched":
            out.print(
                f"  row {r.row}: {r.code} {r.name}: {r.reason}", markup=False, highlight=False
            )
    if report_file is not None:
        report.rows.to_csv(report_file, index=False, encoding="utf-8-sig")
        out.print(f"per-row report (逐行报告): {report_file}")


@import_app.command("registers")
def import_registers_cmd(
    file: Annotated[Path, typer.Argument(help="Register sheet (.csv or .xlsx).")],
    kind: Annotated[str, typer.Option("--kind", help="households (户) or residents (实有人口).")],
    database_url: DbOpt = None,
    report_file: Annotated[
        Path | None,
        typer.Option("--report", help="Write every row's outcome (row, status, reason) as CSV."),
    ] = None,
) -> None:
    """Import households or residents from a sheet (台账导入): per-row report, idempotent.

    Names, document numbers and phones are checked, stored encrypted (the
    data key GRIDMAP_DATA_KEY, as the API's) and shown masked; a row already
    registered (same household number in the grid, same document) is skipped.
    """
    from api.security import SecuritySettings
    from gridmap.privacy import Vault
    from gridmap.registers import import_registers

    with _errors():
        vault = Vault.from_secret(SecuritySettings().data_key.get_secret_value())
        store = _open(database_url)
        try:
            report = import_registers(store, vault, file, kind=kind)
        finally:
            store.close()
    for line in report.lines():
        out.print(line, markup=False, highlight=False)
    if report_file is not None:
        report.rows.to_csv(report_file, index=False, encoding="utf-8-sig")
        out.print(f"per-row report (逐行报告): {report_file}")


@app.command()
def token(
    name: Annotated[str, typer.Argument(help="User name.")],
    expires_minutes: Annotated[
        int | None, typer.Option("--expires-minutes", help="Lifetime (default from settings).")
    ] = None,
    database_url: DbOpt = None,
) -> None:
    """Print a bearer token for NAME (scripts and tests): Authorization: Bearer <token>.

    Signed with GRIDMAP_SECRET_KEY, which must be the API's.
    """
    from gridmap import audit
    from gridmap.access import SYSTEM
    from gridmap.auth import get_user, issue_token

    with _errors():
        store = _open(database_url)
        user = get_user(store, name)
        if user is None or user.disabled:
            store.close()
            console.print(f"[bold red]error:[/] no active user {name!r}")
            raise typer.Exit(DOMAIN_ERROR_EXIT)
        text = issue_token(user, _token_config(), minutes=expires_minutes)
        audit.record(store, SYSTEM, "token.issue", f"users:{name}")
        store.close()
    print(text)


@app.command("kpis")
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

    from gridmap.access import SYSTEM
    from gridmap.errors import BadInput
    from gridmap.events.intake import list_events
    from gridmap.events.kpis import kpi_records, kpis
    from gridmap.timeparse import parse_instant

    with _errors():
        if fmt not in ("table", "csv", "json"):
            raise BadInput("--format must be table, csv or json", field="format")
        # the one time parser (ISO 8601, years 1-9999); times without a zone are UTC
        t0 = None if start is None else parse_instant(start, field="--from", tz="UTC")
        t1 = None if end is None else parse_instant(end, field="--to", tz="UTC")
        store = _open(database_url, read_only=True)
        try:
            events, _ = list_events(
                store, principal=SYSTEM, reported_from=t0, reported_to=t1, limit=10_000_000
            )
            rows = kpi_records(kpis(events, by=by, period=period))
        finally:
            store.close()
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


# -- patrol (issue 9) -------------------------------------------------------------
patrol_app = typer.Typer(help="Patrol routes and coverage (巡查).", no_args_is_help=True)
app.add_typer(patrol_app, name="patrol")


@patrol_app.command("plan")
def patrol_plan(
    grid: Annotated[str, typer.Option("--grid", help="15-digit grid code.")],
    mode: Annotated[str, typer.Option("--mode", help="streets, points or mixed.")] = "streets",
    budget_min: Annotated[float, typer.Option("--budget-min", help="Shift minutes.")] = 240.0,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the route (.gpx or .geojson).")
    ] = None,
    database_url: DbOpt = None,
) -> None:
    """Plan a grid's patrol route (规划巡查路线) and print its turn-by-turn steps."""
    import json as _json

    from gridmap.patrol.service import RouteRequest, plan_route, route_gpx

    with _errors():
        store = _open(database_url)
        try:
            req = RouteRequest.from_json({"grid": grid, "mode": mode, "budget_min": budget_min})
            feature = plan_route(store, req)
        finally:
            store.close()
        props = feature["properties"]
        console.print(
            f"route {grid} ({mode}): {props['length_m']:.0f} m, {props['duration_min']:.0f} min"
        )
        for i, step in enumerate(props.get("steps", [])[:40], start=1):
            console.print(f"{i:>3}. {step['zh']} / {step['en']}")
        if out is not None:
            suffix = out.suffix.lower()
            if suffix == ".gpx":
                out.write_text(route_gpx(feature, name=f"{grid} {mode}"), encoding="utf-8")
            elif suffix in (".geojson", ".json"):
                out.write_text(_json.dumps(feature, ensure_ascii=False), encoding="utf-8")
            else:
                console.print("[bold red]error:[/] --out must end in .gpx or .geojson")
                raise typer.Exit(2)
            console.print(f"wrote {out}")


# -- event security plans (issue 21) ---------------------------------------------
@patrol_app.command("plan-event")
def patrol_plan_event(
    start: Annotated[str, typer.Option("--start", help="Window start, ISO 8601 with zone.")],
    end: Annotated[str, typer.Option("--end", help="Window end, ISO 8601 with zone.")],
    area: Annotated[
        str | None, typer.Option("--area", help="City, town, community or grid code.")
    ] = None,
    grids: Annotated[
        str | None, typer.Option("--grids", help="Comma-separated 15-digit grid codes.")
    ] = None,
    polygon: Annotated[
        Path | None, typer.Option("--polygon", help="GeoJSON file: the area's polygon.")
    ] = None,
    polygon_crs: Annotated[str, typer.Option("--polygon-crs", help="wgs84, gcj02, …")] = "wgs84",
    worker: Annotated[
        list[str] | None,
        typer.Option("--worker", help="NAME@LON,LAT[@SHIFT+SHIFT] (repeat per worker)."),
    ] = None,
    worker_crs: Annotated[
        str, typer.Option("--worker-crs", help="CRS of --worker positions.")
    ] = "wgs84",
    workers_file: Annotated[
        Path | None, typer.Option("--workers", help="JSON file: the API's workers list.")
    ] = None,
    shift_hours: Annotated[float | None, typer.Option("--shift-hours")] = None,
    frequency_min: Annotated[
        float, typer.Option("--frequency-min", help="Default visit frequency (minutes).")
    ] = 60.0,
    dwell_min: Annotated[float | None, typer.Option("--dwell-min")] = None,
    road_class: Annotated[
        list[str] | None, typer.Option("--road-class", help="Main street class (repeat).")
    ] = None,
    hotspots: Annotated[
        bool,
        typer.Option("--hotspots", help="First turn --area's hot spots into key areas."),
    ] = False,
    time_limit: Annotated[float, typer.Option("--time-limit", help="Solver seconds.")] = 5.0,
    name: Annotated[str | None, typer.Option("--name")] = None,
    save: Annotated[bool, typer.Option("--save/--no-save")] = True,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Folder for GPX and KML per worker.")
    ] = None,
    crs: Annotated[str, typer.Option("--crs", help="Exports in wgs84 or gcj02.")] = "wgs84",
    pdf: Annotated[
        Path | None,
        typer.Option("--pdf", help="Write the printable plan (A4 PDF: map and timetable)."),
    ] = None,
    database_url: DbOpt = None,
) -> None:
    """Plan a major-event security patrol (重大活动安保): shift routes, key areas, main streets."""
    import json as _json

    from gridmap.errors import BadInput
    from gridmap.patrol import plans

    with _errors():
        if sum(x is not None for x in (area, grids, polygon)) != 1:
            raise BadInput("give exactly one of --area, --grids, --polygon", field="area")
        if polygon is not None:
            geo = _json.loads(polygon.read_text(encoding="utf-8"))
            geo = geo.get("geometry", geo) if geo.get("type") == "Feature" else geo
            area_json: dict[str, object] = {"polygon": geo, "crs": polygon_crs}
        elif grids is not None:
            area_json = {"grids": [g.strip() for g in grids.split(",") if g.strip()]}
        else:
            area_json = {"code": area}
        crew = [plans.worker_spec(w, crs=worker_crs) for w in worker or []]
        if workers_file is not None:
            crew += _json.loads(workers_file.read_text(encoding="utf-8"))
        body: dict[str, object] = {
            "area": area_json,
            "start": start,
            "end": end,
            "workers": crew,
            "frequency_min": frequency_min,
            "time_limit_s": time_limit,
            "save": save,
        }
        for key, value in (
            ("name", name),
            ("shift_hours", shift_hours),
            ("dwell_min", dwell_min),
            ("road_classes", road_class),
        ):
            if value is not None:
                body[key] = value
        req = plans.PlanRequest.from_json(body, max_time_limit_s=600)
        if pdf is not None and not save:
            raise BadInput("--pdf prints a saved plan: drop --no-save", field="pdf")
        store = _open(database_url)
        try:
            if hotspots:
                if area is None:
                    raise BadInput("--hotspots needs --area", field="area")
                made = plans.hotspot_key_areas(store, area=area, start=req.start, end=req.end)
                console.print(f"hot spots → temporary key areas: {len(made)}")
            answer = plans.make_plan(store, req)
            stored = None if pdf is None else plans.read_plan(store, int(answer["id"]))
        finally:
            store.close()
        s = answer["summary"]
        out.print(
            f"plan {answer['id'] or '(not saved)'} area {answer['area_code']}: "
            f"{s['visits_planned']}/{s['visits_required']} visits, "
            f"{s['street_pieces_unmet']} street pieces unmet, travel {s['travel_m']:.0f} m, "
            f"balance {s['balance']}, complete {s['complete']}"
        )
        for f in answer["routes"]["features"]:
            p = f["properties"]
            out.print(
                f"  {escape(str(p['worker']))} shift {p['shift']}: {p['visits']} visits, "
                f"{p['length_m']:.0f} m, load {p['work_min']:.0f} min"
            )
        for u in answer["unmet"][:50]:
            what = u.get("name") or u.get("key_area") if u["kind"] == "visit" else u["streets"]
            when = u.get("slot_start") or u.get("shift_start")
            out.print(
                f"  [red]not met[/] {u['kind']} {escape(str(what))} {when}: "
                f"{u['reason_zh']} / {u['reason_en']}"
            )
        if not answer["summary"]["complete"]:
            out.print(f"  workers needed (estimate): {s['workers_needed']}")
        if out_dir is not None:
            for path in plans.write_route_files(answer, out_dir, crs=crs):
                console.print(f"wrote {path}")
        if stored is not None and pdf is not None:
            from gridmap.patrol.printout import render_plan_pdf

            pdf.write_bytes(render_plan_pdf(stored))
            console.print(f"wrote {pdf}")


@patrol_app.command("compliance")
def patrol_compliance(
    plan_id: Annotated[int, typer.Argument(help="Event plan id.")],
    database_url: DbOpt = None,
) -> None:
    """Was an event plan followed? Visits made/missed, streets covered, lateness (JSON)."""
    import json as _json

    from gridmap.patrol import plans

    with _errors():
        store = _open(database_url)
        try:
            report = plans.plan_compliance(store, plan_id)
        finally:
            store.close()
    out.print_json(_json.dumps(report, ensure_ascii=False, default=str))


# -- backup and restore (issue 5) --------------------------------------------------
@app.command("backup")
def backup_cmd(
    out_file: Annotated[Path, typer.Argument(help="Backup file to write.")],
    database_url: DbOpt = None,
) -> None:
    """Back up the store to one file (备份): pg_dump -Fc (PostGIS) or a checkpointed copy."""
    from gridmap.storage.backup import backup

    with _errors():
        path = backup(database_url or CliSettings().database_url, out_file)
    out.print(f"backup written to {path} ({path.stat().st_size:,} bytes)")


@app.command("restore")
def restore_cmd(
    in_file: Annotated[Path, typer.Argument(help="Backup file from `gridmap backup`.")],
    database_url: DbOpt = None,
) -> None:
    """Replace the store's contents with a backup (恢复), all or nothing; stop the API first."""
    from gridmap.storage.backup import restore

    url = database_url or CliSettings().database_url
    with _errors():
        restore(url, in_file)
        store = _open(url)  # upgrades a backup taken before the latest migrations
        version = store.schema_version()
        store.close()
    out.print(f"restored {in_file} into {url} (schema version {version})")


def main() -> None:
    """Entry point of the ``gridmap`` command and ``python -m gridmap``.

    A domain error or a missing optional extra that escaped a command's own
    handling still ends as one line and exit status 1, not a traceback.
    """
    import sys

    from gridmap.extras import missing_extra

    try:
        app(prog_name="gridmap")
    except GridmapError as exc:
        console.print(f"[bold red]error:[/] {escape(exc.message)}", soft_wrap=True)
        sys.exit(DOMAIN_ERROR_EXIT)
    except ModuleNotFoundError as exc:
        extra = missing_extra(exc)
        if extra is None:
            raise
        console.print(f"[bold red]error:[/] {escape(extra.message)}", soft_wrap=True)
        sys.exit(DOMAIN_ERROR_EXIT)


# -- batch analytics and the Parquet lake (issue 11) -----------------------------
batch_app = typer.Typer(help="Batch analytics at scale (批量分析).", no_args_is_help=True)
app.add_typer(batch_app, name="batch")


@export_app.command("lake")
def export_lake_cmd(
    out_dir: Annotated[Path, typer.Option("--out", help="Lake directory (created if needed).")],
    layers: Annotated[
        str, typer.Option("--layers", help="Comma-separated layers to export.")
    ] = "events,grids,admin_units",
    chunk_rows: Annotated[int, typer.Option("--chunk-rows", help="Rows per chunk.")] = 50_000,
    database_url: DbOpt = None,
) -> None:
    """Export layers to Hive-partitioned GeoParquet (month=YYYY-MM/county=NNNNNN) (导出数据湖)."""
    from gridmap.batch.lake import export_lake

    names = [n.strip() for n in layers.split(",") if n.strip()]
    with _errors():
        store = _open(database_url)
        try:
            with _progress() as progress:
                summary = export_lake(
                    store, out_dir, layers=names, chunk_rows=chunk_rows, progress=progress
                )
        finally:
            store.close()
    for layer, rows in summary.rows.items():
        out.print(f"{layer}: {rows} rows in {summary.files[layer]} files under {out_dir / layer}")


@batch_app.command("run")
def batch_run_cmd(
    lake: Annotated[Path, typer.Option("--lake", help="Lake directory (gridmap export lake).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for the result tables.")],
    engine: Annotated[str, typer.Option("--engine", help="single, dask or duckdb.")] = "single",
    resolution: Annotated[int, typer.Option("--resolution", help="H3 resolution 7–11.")] = 9,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            envvar="GRIDMAP_DASK_SCHEDULER",
            help="Dask scheduler address (default: a local cluster).",
        ),
    ] = None,
    workers: Annotated[int, typer.Option("--workers", help="Local Dask workers.")] = 2,
) -> None:
    """Assignment, H3 heat map, KPI roll-ups and hot spots over a lake; results as Parquet."""
    from gridmap.batch import run_batch
    from gridmap.errors import BadInput

    options: dict[str, object] = {"resolution": resolution}
    if engine == "dask":
        options.update(scheduler=scheduler, n_workers=workers)
    with _errors():
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BadInput(f"cannot write to {out_dir}: {exc.strerror}", field="out") from None
        result = run_batch(str(lake), engine=engine, **options)
        for name in ("grid_counts", "heat", "kpis_grid", "kpis_town", "hotspots"):
            getattr(result, name).to_parquet(out_dir / f"{name}.parquet", index=False)
    out.print(f"{result.events} events → {len(result.heat)} H3 cells; tables in {out_dir}")


@app.command("report")
def report_cmd(
    area: Annotated[str, typer.Option("--area", help="Area code (town, community or grid).")],
    start: Annotated[
        str, typer.Option("--from", help="Period start (ISO date, in the time zone).")
    ],
    end: Annotated[
        str, typer.Option("--to", help="Period end, exclusive (ISO date, in the time zone).")
    ],
    out_path: Annotated[
        Path | None, typer.Option("--out", help="HTML, .json or .pdf file to write.")
    ] = None,
    pdf_path: Annotated[
        Path | None, typer.Option("--pdf", help="Also write the report as PDF here.")
    ] = None,
    time_zone: Annotated[
        str | None,
        typer.Option(
            "--time-zone", help="IANA time zone of the dates (default GRIDMAP_TIME_ZONE)."
        ),
    ] = None,
    rules_file: Annotated[
        Path | None,
        typer.Option(
            "--rules",
            help="Assessment rules (考核细则), a TOML or JSON file (default GRIDMAP_RULES_FILE, "
            "else the rules shipped with gridmap).",
        ),
    ] = None,
    database_url: DbOpt = None,
) -> None:
    """Period report for leadership (工作报告): figures, rankings, charts, as HTML, JSON or PDF.

    Figures come with the previous period and the same period last year;
    dates are read and shown in the time zone (default Asia/Shanghai).
    """
    import json as _json

    from gridmap.access import SYSTEM
    from gridmap.assessment.pdf import render_pdf
    from gridmap.assessment.report import period_report, render_html
    from gridmap.assessment.rules import load_rules
    from gridmap.errors import BadInput

    targets = [p for p in (out_path, pdf_path) if p is not None]
    with _errors():
        rules = load_rules(rules_file or CliSettings().rules_file)
        if not targets:
            raise BadInput("say where to write the report: --out FILE and/or --pdf FILE.pdf")
        kinds = {p: p.suffix.lower() for p in targets}
        if pdf_path is not None:
            kinds[pdf_path] = ".pdf"
        store = _open(database_url, read_only=True)
        try:
            report = period_report(
                store,
                SYSTEM,
                area=area,
                start=start,
                end=end,
                charts=any(k != ".json" for k in kinds.values()),
                tz=time_zone or CliSettings().time_zone,
                rules=rules,
            )
        finally:
            store.close()
        for path, kind in kinds.items():
            if kind == ".pdf":
                path.write_bytes(render_pdf(report))
            elif kind == ".json":
                text = _json.dumps(report.to_dict(), ensure_ascii=False, indent=1)
                path.write_text(text, encoding="utf-8")
            else:
                path.write_text(render_html(report), encoding="utf-8")
    written = ", ".join(str(p) for p in kinds)
    out.print(f"report of {area} ({report.area_name}) written to {written}")


db_app = typer.Typer(
    help="Store maintenance: partitions, archive, check and recover (数据库维护).",
    no_args_is_help=True,
)
app.add_typer(db_app, name="db")


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

    with _errors():
        store = _open(database_url)
        try:
            made = ensure_partitions(store, months_ahead(datetime.now(UTC).date(), ahead))
            parts = list_partitions(store)
        finally:
            store.close()
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

    with _errors():
        store = _open(database_url)
        try:
            summary = archive_month(store, month, out_dir)
        finally:
            store.close()
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

    url = database_url or CliSettings().database_url
    with _errors():
        path = embedded_file(url)
        if path is None:
            store = _open(url, migrate=False)
            try:
                version = store.schema_version()
                counts = {name: store.count(name) for name in LAYERS}
            finally:
                store.close()
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

    url = database_url or CliSettings().database_url
    with _errors():
        path = embedded_file(url)
        if path is None:
            raise BadInput(
                "db recover is for the embedded (DuckDB) store; for PostGIS restore a "
                "`gridmap backup` with `gridmap restore`"
            )
        rec = recover_file(path, vault=_data_vault())
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


if __name__ == "__main__":  # pragma: no cover
    main()
