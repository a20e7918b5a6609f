"""The DuckDB batch path: SQL straight over the lake's Parquet files.

DuckDB reads the Hive-partitioned GeoParquet in place and aggregates in one
streaming pass (events are assigned to grids and binned to H3 by vectorized
functions it calls on each batch: the same assignment as the other paths).
The SQL lives in :mod:`gridmap.storage.lakequery` (the one package that talks
to database engines); this module feeds it the grid assignment and H3 binning
and shapes the result like the other paths.
"""

from __future__ import annotations

import os

import geopandas as gpd

from gridmap.batch._kernel import BatchResult, GridIndex, Partial, finish, typed
from gridmap.batch.lake import lake_layer
from gridmap.batch.single import lake_grids
from gridmap.events.states import OPEN_STATES
from gridmap.geo.h3cells import check_resolution, latlng_to_cells

__all__ = ["run_duckdb"]


def run_duckdb(
    lake: str | os.PathLike[str],
    *,
    resolution: int = 9,
    grids: gpd.GeoDataFrame | None = None,
    threads: int | None = None,
    memory_limit: str | None = None,
    permutations: int = 199,
    hotspots: bool = True,
) -> BatchResult:
    """The batch results of the lake's events, computed by DuckDB.

    Takes the parameters of :func:`gridmap.batch.single.run_single` but
    *chunk_rows*, and returns what it returns on the same lake.

    Parameters
    ----------
    threads, memory_limit : optional
        DuckDB's ``threads`` and ``memory_limit`` (e.g. ``"4GB"``).

    Examples
    --------
    >>> from gridmap.batch.lake import example_lake
    >>> run_duckdb(example_lake(), hotspots=False).heat["count"].tolist()
    [1, 1]
    """
    from gridmap.storage.lakequery import lake_partials

    res = check_resolution(resolution)
    frame = lake_grids(lake, grids)
    index = GridIndex.from_frame(frame)
    cells, kpi, n = lake_partials(
        lake_layer(lake, "events"),
        grid_fn=index.assign_xy,
        resolution=res,
        cell_fn=latlng_to_cells,
        open_states=sorted(OPEN_STATES),
        threads=threads,
        memory_limit=memory_limit,
    )
    cells.insert(0, "grid_code", index.codes_of(cells.pop("grid").to_numpy(dtype="int64")))
    kpi.insert(0, "grid_code", index.codes_of(kpi.pop("grid").to_numpy(dtype="int64")))
    total = Partial(typed(cells), typed(kpi), n)
    return finish(total, frame, res, hotspots=None if hotspots else [], permutations=permutations)
