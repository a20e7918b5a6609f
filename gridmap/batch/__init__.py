"""Batch analytics at scale: the Parquet lake and three interchangeable engines.

- :mod:`gridmap.batch.lake` — ``export_lake``: layers to Hive-partitioned
  GeoParquet (``month=YYYY-MM/county=NNNNNN``), streamed in chunks;
- :mod:`gridmap.batch.single` — one process, pandas, chunk by chunk (flat memory);
- :mod:`gridmap.batch.dask` — dask-geopandas on a dask.distributed cluster;
- :mod:`gridmap.batch.duck` — DuckDB SQL over the Parquet files.

Each computes the same :class:`BatchResult`: events assigned to grids,
the H3 heat map, KPI roll-ups (reported, closed, closure rate by grid/town
and month) and Gi* hot spots per town.
"""

from gridmap.batch._kernel import BatchResult, GridIndex
from gridmap.batch.lake import LakeSummary, export_lake
from gridmap.batch.synthetic import write_synthetic_lake

__all__ = [
    "ENGINES",
    "BatchResult",
    "GridIndex",
    "LakeSummary",
    "export_lake",
    "run_batch",
    "write_synthetic_lake",
]

#: Batch engines by name.
ENGINES: tuple[str, ...] = ("single", "dask", "duckdb")


def run_batch(lake: str, *, engine: str = "single", **options: object) -> BatchResult:
    """Run the batch analytics on *lake* with *engine* (one of :data:`ENGINES`).

    Examples
    --------
    >>> run_batch("/nonexistent", engine="spark")
    Traceback (most recent call last):
    ...
    gridmap.common.errors.BadInput: unknown engine 'spark'; one of: single, dask, duckdb
    """
    from gridmap.common.errors import BadInput

    if engine == "single":
        from gridmap.batch.single import run_single

        return run_single(lake, **options)  # type: ignore[arg-type]
    if engine == "dask":
        from gridmap.batch.dask import run_dask

        return run_dask(lake, **options)  # type: ignore[arg-type]
    if engine == "duckdb":
        from gridmap.batch.duck import run_duckdb

        return run_duckdb(lake, **options)  # type: ignore[arg-type]
    raise BadInput(f"unknown engine {engine[:40]!r}; one of: {', '.join(ENGINES)}", field="engine")
