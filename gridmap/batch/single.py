"""The single-process batch path: the lake streamed in chunks through pandas.

Memory is flat: one chunk of events (``chunk_rows``) plus the running
aggregates, whose size depends on grids, H3 cells and months, never on the
number of events. This is also the reference the Dask and DuckDB paths are
tested against.
"""

from __future__ import annotations

import os

import geopandas as gpd
import pandas as pd

from gridmap.batch._kernel import (
    BatchResult,
    GridIndex,
    combine,
    empty_partial,
    finish,
    partial_aggregates,
)
from gridmap.batch.lake import DEFAULT_CHUNK_ROWS, iter_lake_batches, read_lake_layer
from gridmap.geo.h3cells import check_resolution

__all__ = ["EVENT_COLUMNS", "aggregate_frame", "run_single"]

#: The event columns the batch analytics read.
EVENT_COLUMNS = ("geometry", "status", "reported_at")


def lake_grids(lake: str | os.PathLike[str], grids: gpd.GeoDataFrame | None) -> gpd.GeoDataFrame:
    if grids is not None:
        return grids
    frame = read_lake_layer(lake, "grids")
    assert isinstance(frame, gpd.GeoDataFrame)
    return frame


def run_single(
    lake: str | os.PathLike[str],
    *,
    resolution: int = 9,
    grids: gpd.GeoDataFrame | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    permutations: int = 199,
    hotspots: bool = True,
) -> BatchResult:
    """Assignment, H3 heat map, KPI roll-ups and hot spots of the lake's events, one process.

    The reference engine: the Dask and DuckDB engines take the parameters
    below except *chunk_rows* and return the same result.

    Parameters
    ----------
    lake : path
        Lake directory (see :mod:`gridmap.batch.lake`) with ``events`` and,
        unless *grids* is given, ``grids``.
    resolution : int
        H3 resolution (7–11).
    grids : GeoDataFrame, optional
        Grids to assign events to (default: the lake's ``grids`` layer).
    chunk_rows : int
        Events held in memory at a time.
    permutations : int
        Gi* permutations per town.
    hotspots : bool
        Compute hot spots per town (the slowest step on small data).

    Returns
    -------
    BatchResult

    Examples
    --------
    >>> from gridmap.batch.lake import example_lake
    >>> r = run_single(example_lake(), hotspots=False)
    >>> r.kpis_town[["town_code", "month", "reported", "closed"]].values.tolist()
    [['990100001', '2026-09', 2, 1]]
    """
    res = check_resolution(resolution)
    frame = lake_grids(lake, grids)
    index = GridIndex.from_frame(frame)
    total = empty_partial()
    batches = iter_lake_batches(
        lake, "events", columns=EVENT_COLUMNS, chunk_rows=chunk_rows, xy=True
    )
    for chunk in batches:
        total = combine([total, partial_aggregates(chunk, index, res)])
        del chunk  # the next batch is decoded before the loop rebinds the name
    return finish(total, frame, res, hotspots=None if hotspots else [], permutations=permutations)


def aggregate_frame(
    events: pd.DataFrame,
    grids: gpd.GeoDataFrame,
    *,
    resolution: int = 9,
    permutations: int = 199,
    hotspots: bool = True,
) -> BatchResult:
    """The batch results of events already in memory (e.g. ``store.read("events")``).

    Examples
    --------
    >>> import shapely
    >>> g = gpd.GeoDataFrame({"code": ["990100001001001"]},
    ...                      geometry=[shapely.box(24.9, 60.1, 25.0, 60.2)], crs=4326)
    >>> ev = gpd.GeoDataFrame({"status": ["closed"],
    ...     "reported_at": pd.to_datetime(["2026-09-01"], utc=True)},
    ...     geometry=shapely.points([24.95], [60.15]), crs=4326)
    >>> aggregate_frame(ev, g, hotspots=False).grid_counts.values.tolist()
    [['990100001001001', 1]]
    """
    res = check_resolution(resolution)
    total = partial_aggregates(events, GridIndex.from_frame(grids), res)
    return finish(total, grids, res, hotspots=None if hotspots else [], permutations=permutations)
