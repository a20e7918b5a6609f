"""DuckDB over the Parquet lake: the batch aggregates in SQL (the lake's DuckDB path).

This lives in ``gridmap.storage`` because it is the only package that talks
to a database engine. The lake is read in place with
``read_parquet(..., hive_partitioning = true)``; grids come from the caller
as a vectorized point-in-polygon function (*grid_fn*, the same assignment as
the other engines: interior only, the smallest code where grids overlap) and
H3 cells come from *cell_fn*; both are registered as vectorized (Arrow)
scalar functions (the H3 extension is not shipped on PyPI and nothing is
downloaded). One query scans every file once and aggregates both partial
tables with ``GROUPING SETS``: DuckDB streams the files through a hash
aggregate whose size depends on grids, cells and months only, so memory
stays flat and time grows linearly with the events.

Session 1 joined the events to the grids with DuckDB's ``SPATIAL_JOIN`` and
kept the smallest code per event with a ``GROUP BY`` over a row number: the
per-event state made memory grow with the lake (2 GB at 10⁷ events), and
splitting the lake into groups of files to bound it made time grow 23× for
10× the events (docs/scale.md, section 5).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
from duckdb.func import PythonUDFType

from gridmap.storage.duckdb import spatial_extension_path

__all__ = ["lake_partials"]

CellFn = Callable[[np.ndarray, np.ndarray, int], np.ndarray]
GridFn = Callable[[np.ndarray, np.ndarray], np.ndarray]

_QUERY = """
SELECT grid, cell, month, GROUPING(cell) AS by_month,
       count(*) FILTER (WHERE cell <> 0) AS count,
       count(*) FILTER (WHERE cell <> 0 AND status IN ({open})) AS open,
       count(*) FILTER (WHERE status IS DISTINCT FROM 'merged') AS reported,
       count(*) FILTER (WHERE status = 'closed') AS closed
FROM (
    SELECT gridmap_grid(x, y) AS grid, gridmap_h3_cell(x, y) AS cell, status, month
    FROM (
        SELECT ST_X(geometry) AS x, ST_Y(geometry) AS y, status,
               strftime(reported_at, '%Y-%m') AS month
        FROM read_parquet(?, hive_partitioning = true,
                          hive_types = {{'month': 'VARCHAR', 'county': 'VARCHAR'}})
    ) e
) a
GROUP BY GROUPING SETS ((grid, cell), (grid, month))
"""


def lake_partials(
    events_path: Path,
    *,
    grid_fn: GridFn,
    resolution: int,
    cell_fn: CellFn,
    open_states: Sequence[str],
    threads: int | None = None,
    memory_limit: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Per (grid, cell) and per (grid, month) sums of the lake's events.

    Parameters
    ----------
    events_path : Path
        The lake's ``events`` folder.
    grid_fn : callable
        ``grid_fn(lon, lat) -> int64 array``: the position of each point's grid,
        ``-1`` outside every grid (``GridIndex.assign_xy``).
    resolution : int
        H3 resolution passed to *cell_fn*.
    cell_fn : callable
        ``cell_fn(lon, lat, resolution) -> uint64 array`` (0 for no cell).
    open_states : sequence of str
        Statuses counted as open.
    threads, memory_limit : optional
        DuckDB settings (default: DuckDB's own).

    Returns
    -------
    (cells, kpi, events)
        ``cells``: ``grid`` (position, -1 for none), ``cell`` (uint64), ``count``, ``open``;
        ``kpi``: ``grid``, ``month`` (``YYYY-MM`` or None), ``reported``, ``closed``;
        the number of events.
    """
    con = duckdb.connect(config={"autoinstall_known_extensions": "false"})
    try:
        con.execute(f"LOAD '{spatial_extension_path()}'")
        con.execute("SET TimeZone = 'UTC'")
        if threads is not None:
            con.execute(f"SET threads = {int(threads)}")
        if memory_limit is not None:
            con.execute("SET memory_limit = ?", [str(memory_limit)])
        res = int(resolution)

        def h3_cell(x: pa.Array, y: pa.Array) -> pa.Array:
            lon = x.to_numpy(zero_copy_only=False)
            lat = y.to_numpy(zero_copy_only=False)
            return pa.array(cell_fn(lon, lat, res), pa.uint64())

        def grid_of(x: pa.Array, y: pa.Array) -> pa.Array:
            lon = x.to_numpy(zero_copy_only=False)
            lat = y.to_numpy(zero_copy_only=False)
            return pa.array(grid_fn(lon, lat), pa.int64())

        for name, fn, out in (
            ("gridmap_h3_cell", h3_cell, "UBIGINT"),
            ("gridmap_grid", grid_of, "BIGINT"),
        ):
            con.create_function(
                name, fn, ["DOUBLE", "DOUBLE"], out, type=PythonUDFType.ARROW, side_effects=False
            )
        files = sorted(
            str(f)
            for f in events_path.rglob("*.parquet")
            if not any(part.startswith((".", "_")) for part in f.relative_to(events_path).parts)
        )
        states = list(open_states)
        marks = ", ".join("?" for _ in states) or "NULL"
        frame = con.execute(_QUERY.format(open=marks), [*states, files]).df()
        row = con.execute(
            "SELECT count(*) FROM read_parquet(?, hive_partitioning = true, "
            "hive_types = {'month': 'VARCHAR', 'county': 'VARCHAR'})",
            [files],
        ).fetchone()
        n = int(row[0]) if row else 0
    finally:
        con.close()
    by_month = frame["by_month"].to_numpy() == 1
    cells = frame.loc[~by_month & (frame["count"].to_numpy() > 0)]
    kpi = frame.loc[by_month & (frame["reported"].to_numpy() > 0)]
    cells = cells[["grid", "cell", "count", "open"]].reset_index(drop=True)
    kpi = kpi[["grid", "month", "reported", "closed"]].reset_index(drop=True)
    return cells, kpi, n
