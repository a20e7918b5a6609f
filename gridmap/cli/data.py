"""``gridmap import …`` and ``gridmap export …``: data into and out of the store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gridmap.cli.common import (
    DbOpt,
    ReportOpt,
    data_vault,
    errors,
    open_store,
    out,
    print_import,
    progress,
)
from gridmap.common.model import LAYERS

__all__ = ["export_app", "import_app"]

import_app = typer.Typer(help="Import data into the store (导入数据).", no_args_is_help=True)
export_app = typer.Typer(help="Export layers from the store (导出数据).", no_args_is_help=True)


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
    from gridmap.division.coverage import coverage
    from gridmap.io.importer import import_osm

    with open_store(database_url) as store:
        with progress() as update:
            reports = import_osm(store, file, town_prefix=town_prefix, progress=update)
        cover = coverage(store)
    print_import(f"imported {file.name}", dict(reports), report_file)
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
    from gridmap.io.importer import ReadOptions, import_layer

    with open_store(database_url) as store:
        with progress() as step:
            report = import_layer(
                store,
                file,
                layer=layer,
                read=ReadOptions(crs=crs, lon=lon, lat=lat),
                update=update,
                progress=step,
            )
        if layer == "grids" and report.inserted:  # imported grids get their statistics
            from gridmap.division.stats import refresh_grid_statistics

            refresh_grid_statistics(store)
    print_import(f"imported {file.name}", {layer: report}, report_file)


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
    from gridmap.units.hierarchy import import_code_table

    with open_store(database_url) as store:
        report = import_code_table(store, file)
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
    from gridmap.population.registers import import_registers

    with errors():
        vault = data_vault()
    with open_store(database_url) as store:
        report = import_registers(store, vault, file, kind=kind)
    for line in report.lines():
        out.print(line, markup=False, highlight=False)
    if report_file is not None:
        report.rows.to_csv(report_file, index=False, encoding="utf-8-sig")
        out.print(f"per-row report (逐行报告): {report_file}")


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

    with open_store(database_url, read_only=True) as store:
        n = export_layer(store, name, out_file)
    out.print(f"wrote {n} features to {out_file}")


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
    with open_store(database_url) as store, progress() as step:
        summary = export_lake(store, out_dir, layers=names, chunk_rows=chunk_rows, progress=step)
    for layer, rows in summary.rows.items():
        out.print(f"{layer}: {rows} rows in {summary.files[layer]} files under {out_dir / layer}")
