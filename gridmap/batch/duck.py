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

    Parameters
    ----------
    lake : path
        Lake directory with ``events`` (and ``grids`` unless given).
    resolution : int
        H3 resolution (7–11).
    grids : GeoDataFrame, optional
        Grids to assign events to (default: the lake's ``grids`` layer).
    threads, memory_limit : optional
        DuckDB's ``threads`` and ``memory_limit`` (e.g. ``"4GB"``).
    permutations : int
        Gi* permutations per town.
    hotspots : bool
        Compute hot spots per town.

    Returns
    -------
    BatchResult
        Equal to :func:`gridmap.batch.single.run_single` on the same lake.

    Examples
    --------
    >>> import tempfile, shapely, pandas as pd
    >>> from pathlib import Path
    >>> from gridmap.batch.lake import PartitionWriter
    >>> lake = Path(tempfile.mkdtemp())
    >>> g = gpd.GeoDataFrame({"code": ["990100001001001"]},
    ...                      geometry=[shapely.box(24.9, 60.1, 25.0, 60.2)], crs=4326)
    >>> ev = gpd.GeoDataFrame({"id": [1], "status": ["closed"], "grid_code": [None],
    ...     "reported_at": pd.to_datetime(["2026-09-01"], utc=True)},
    ...     geometry=shapely.points([24.95], [60.15]), crs=4326)
    >>> _ = PartitionWriter(lake / "grids", "grids").write(g)
    >>> _ = PartitionWriter(lake / "events", "events").write(ev)
    >>> run_duckdb(lake, hotspots=False).heat["count"].tolist()
    [1]
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
