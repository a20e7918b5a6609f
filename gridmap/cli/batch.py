"""``gridmap batch …``: batch analytics at scale over a Parquet lake (批量分析)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gridmap.cli.common import cli_settings, errors, out

__all__ = ["batch_app"]

batch_app = typer.Typer(help="Batch analytics at scale (批量分析).", no_args_is_help=True)


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
            help="Dask scheduler address (default: GRIDMAP_DASK_SCHEDULER, else a local cluster).",
        ),
    ] = None,
    workers: Annotated[int, typer.Option("--workers", help="Local Dask workers.")] = 2,
) -> None:
    """Assignment, H3 heat map, KPI roll-ups and hot spots over a lake; results as Parquet."""
    from gridmap.batch import run_batch
    from gridmap.common.errors import BadInput

    options: dict[str, object] = {"resolution": resolution}
    with errors():
        if engine == "dask":
            from gridmap.batch.dask import DaskCluster

            scheduler = scheduler or cli_settings().tools.dask_scheduler
            options.update(cluster=DaskCluster(scheduler=scheduler, n_workers=workers))
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BadInput(f"cannot write to {out_dir}: {exc.strerror}", field="out") from None
        result = run_batch(str(lake), engine=engine, **options)
        for name in ("grid_counts", "heat", "kpis_grid", "kpis_town", "hotspots"):
            getattr(result, name).to_parquet(out_dir / f"{name}.parquet", index=False)
    out.print(f"{result.events} events → {len(result.heat)} H3 cells; tables in {out_dir}")
