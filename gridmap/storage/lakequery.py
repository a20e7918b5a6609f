"""DuckDB over the Parquet lake: the batch aggregates in SQL (the lake's DuckDB path).

This lives in ``gridmap.storage`` because it is the only package that talks
to a database engine. The lake is read in place with
``read_parquet(..., hive_partitioning = true)``; grids come from the caller
as WKB; events are assigned with DuckDB's spatial join (``ST_Within``, the
smallest code where grids overlap). H3 cells come from *cell_fn*, registered
as a vectorized (Arrow) scalar function, since the H3 extension is not
shipped on PyPI and nothing is downloaded.
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

_QUERY = """
CREATE TEMP TABLE assigned AS
SELECT e.ev AS ev, min(g.code) AS grid_code,
       any_value(e.x) AS x, any_value(e.y) AS y,
       any_value(e.status) AS status, any_value(e.reported_at) AS reported_at
FROM (
    SELECT row_number() OVER () AS ev, geometry,
           ST_X(geometry) AS x, ST_Y(geometry) AS y, status, reported_at
    FROM read_parquet(?, hive_partitioning = true,
                      hive_types = {'month': 'VARCHAR', 'county': 'VARCHAR'})
) e
LEFT JOIN gridmap_grids g ON ST_Within(e.geometry, g.geometry)
GROUP BY e.ev
"""


def lake_partials(
    events_path: Path,
    grid_codes: Sequence[str],
    grid_wkb: Sequence[bytes],
    *,
    resolution: int,
    cell_fn: CellFn,
    open_states: Sequence[str],
    threads: int | None = None,
    memory_limit: str | None = None,
    files_per_query: int = 4,
) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Per (grid_code, cell) and per (grid_code, month) sums of the lake's events.

    Parameters
    ----------
    events_path : Path
        The lake's ``events`` folder.
    grid_codes, grid_wkb : sequences
        Grid codes and their polygons (WKB, WGS84).
    resolution : int
        H3 resolution passed to *cell_fn*.
    cell_fn : callable
        ``cell_fn(lon, lat, resolution) -> uint64 array`` (0 for no cell).
    open_states : sequence of str
        Statuses counted as open.
    threads, memory_limit : optional
        DuckDB settings (default: DuckDB's own).
    files_per_query : int
        Parquet files joined per query (memory grows with it, not with the lake).

    Returns
    -------
    (cells, kpi, events)
        ``cells``: ``grid_code``, ``cell`` (uint64), ``count``, ``open``;
        ``kpi``: ``grid_code``, ``month``, ``reported``, ``closed``; the number of events.
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

        con.create_function(
            "gridmap_h3_cell", h3_cell, ["DOUBLE", "DOUBLE"], "UBIGINT", type=PythonUDFType.ARROW
        )
        grids = pa.table(
            {"code": pa.array(list(grid_codes), pa.string()), "wkb": pa.array(list(grid_wkb))}
        )
        con.register("grids_arrow", grids)
        con.execute(
            "CREATE TEMP TABLE gridmap_grids AS "
            "SELECT code, ST_GeomFromWKB(wkb) AS geometry FROM grids_arrow"
        )
        files = sorted(
            str(f)
            for f in events_path.rglob("*.parquet")
            if not any(part.startswith((".", "_")) for part in f.relative_to(events_path).parts)
        )
        states = list(open_states)
        marks = ", ".join("?" for _ in states) or "NULL"
        cell_parts: list[pd.DataFrame] = []
        kpi_parts: list[pd.DataFrame] = []
        n = 0
        # A few files per query: the per-event join table stays the size of a group of
        # files, so memory does not grow with the lake.
        for start in range(0, len(files), files_per_query):
            con.execute("DROP TABLE IF EXISTS assigned")
            con.execute("DROP TABLE IF EXISTS celled")
            con.execute(_QUERY, [files[start : start + files_per_query]])
            con.execute(
                "CREATE TEMP TABLE celled AS SELECT *, gridmap_h3_cell(x, y) AS cell FROM assigned"
            )
            cell_parts.append(
                con.execute(
                    f"SELECT grid_code, cell, count(*) AS count, "
                    f"count(*) FILTER (WHERE status IN ({marks})) AS open "
                    "FROM celled WHERE cell <> 0 GROUP BY ALL",
                    states,
                ).df()
            )
            kpi_parts.append(
                con.execute(
                    "SELECT grid_code, strftime(reported_at, '%Y-%m') AS month, "
                    "count(*) AS reported, count(*) FILTER (WHERE status = 'closed') AS closed "
                    "FROM celled WHERE status IS DISTINCT FROM 'merged' GROUP BY ALL"
                ).df()
            )
            row = con.execute("SELECT count(*) FROM assigned").fetchone()
            n += int(row[0]) if row else 0
        cells = _sum(cell_parts, ["grid_code", "cell"], ["count", "open"])
        kpi = _sum(kpi_parts, ["grid_code", "month"], ["reported", "closed"])
    finally:
        con.close()
    return cells, kpi, n


def _sum(parts: list[pd.DataFrame], keys: list[str], values: list[str]) -> pd.DataFrame:
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=keys + values)
    out = frame.groupby(keys, dropna=False, sort=False)[values].sum().reset_index()
    return out
