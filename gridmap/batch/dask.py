"""The Dask batch path: dask-geopandas over the lake on a dask.distributed cluster.

The events of the lake are read with :func:`dask_geopandas.read_parquet`
(one partition per Parquet file); each partition is assigned to grids by a
spatial join against the grids, which are broadcast once to every worker
(``Client.scatter(..., broadcast=True)``), binned to H3 and reduced to the
small partial aggregates of :mod:`gridmap.batch._kernel`. The partials are
summed in a tree (fan-in 8), so no worker ever holds more than a few
partitions; hot spots then run per town as independent tasks.

Without a scheduler address a ``LocalCluster`` is started for the run (and
closed after it); with one (``tcp://host:8786``, from the CLI's
``--scheduler`` / ``GRIDMAP_DASK_SCHEDULER``) the run uses that cluster, whose
workers need gridmap installed and the lake on a path they can read.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from gridmap.batch._kernel import (
    BatchResult,
    GridIndex,
    Partial,
    combine,
    finish,
    hotspot_jobs,
    partial_aggregates,
    town_hotspots,
)
from gridmap.batch.lake import lake_layer, partition_keys
from gridmap.batch.single import EVENT_COLUMNS, _grids
from gridmap.errors import BadInput
from gridmap.heat import check_resolution

__all__ = ["dask_client", "read_lake_dask", "run_dask"]

_FAN_IN = 8


@contextmanager
def dask_client(
    scheduler: str | None = None,
    *,
    n_workers: int = 2,
    threads_per_worker: int = 1,
    processes: bool = True,
    memory_limit: str | int = "auto",
) -> Iterator[Any]:
    """A ``distributed.Client``: connected to *scheduler*, or to a new ``LocalCluster``.

    Examples
    --------
    >>> with dask_client(n_workers=1, processes=False) as client:
    ...     client.submit(sum, [1, 2]).result()
    3
    """
    from distributed import Client, LocalCluster

    if scheduler:
        with Client(scheduler) as client:
            yield client
        return
    if int(n_workers) < 1:
        raise BadInput(f"n_workers must be at least 1, got {n_workers}", field="n_workers")
    with (
        LocalCluster(
            n_workers=int(n_workers),
            threads_per_worker=int(threads_per_worker),
            processes=processes,
            memory_limit=memory_limit,
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def read_lake_dask(
    lake: str | os.PathLike[str], layer: str, *, columns: Sequence[str] | None = None
) -> Any:
    """A lake layer as a dask-geopandas GeoDataFrame (one partition per file).

    Partition columns (``month``, ``county``) are read as strings: left to
    guess, pyarrow takes ``county=990100`` for a number and fails on ``none``.

    Examples
    --------
    >>> read_lake_dask("/nonexistent", "events")
    Traceback (most recent call last):
    ...
    gridmap.errors.BadInput: the lake has no 'events' layer: /nonexistent/events
    """
    import dask_geopandas
    import pyarrow as pa
    import pyarrow.dataset as ds

    path = lake_layer(lake, layer)
    keys = partition_keys(layer)
    options: dict[str, Any] = {}
    if keys:
        schema = pa.schema([(k, pa.string()) for k in keys])
        options["dataset"] = {"partitioning": ds.partitioning(schema, flavor="hive")}
    return dask_geopandas.read_parquet(
        str(path), columns=None if columns is None else list(columns), **options
    )


def _partition_partial(part: pd.DataFrame, grids: GridIndex, resolution: int) -> Partial:
    return partial_aggregates(part, grids, resolution)


def _combine(*parts: Partial) -> Partial:
    return combine(parts)


def run_dask(
    lake: str | os.PathLike[str],
    *,
    resolution: int = 9,
    grids: gpd.GeoDataFrame | None = None,
    scheduler: str | None = None,
    n_workers: int = 2,
    processes: bool = True,
    memory_limit: str | int = "auto",
    permutations: int = 199,
    hotspots: bool = True,
    client: Any | None = None,
) -> BatchResult:
    """The batch results of the lake's events, computed on a Dask cluster.

    Parameters
    ----------
    lake : path
        Lake directory with ``events`` (and ``grids`` unless given).
    resolution : int
        H3 resolution (7–11).
    grids : GeoDataFrame, optional
        Grids to assign events to (default: the lake's ``grids`` layer).
    scheduler : str, optional
        Address of a running scheduler; default: a ``LocalCluster`` of
        *n_workers* single-threaded workers (*processes* false runs them as
        threads of this process).
    memory_limit : str or int
        Per-worker memory limit of the local cluster.
    permutations : int
        Gi* permutations per town.
    hotspots : bool
        Compute hot spots per town.
    client : distributed.Client, optional
        Use this client (and leave it open) instead of starting one.

    Returns
    -------
    BatchResult
        Equal to :func:`gridmap.batch.single.run_single` on the same lake.

    Examples
    --------
    >>> import tempfile, shapely
    >>> from gridmap.batch.lake import PartitionWriter
    >>> lake = Path(tempfile.mkdtemp())
    >>> g = gpd.GeoDataFrame({"code": ["990100001001001"]},
    ...                      geometry=[shapely.box(24.9, 60.1, 25.0, 60.2)], crs=4326)
    >>> ev = gpd.GeoDataFrame({"id": [1], "status": ["closed"], "grid_code": [None],
    ...     "reported_at": pd.to_datetime(["2026-09-01"], utc=True)},
    ...     geometry=shapely.points([24.95], [60.15]), crs=4326)
    >>> _ = PartitionWriter(lake / "grids", "grids").write(g)
    >>> _ = PartitionWriter(lake / "events", "events").write(ev)
    >>> r = run_dask(lake, n_workers=1, processes=False, hotspots=False)
    >>> r.grid_counts.values.tolist()
    [['990100001001001', 1]]
    """
    res = check_resolution(resolution)
    frame = _grids(lake, grids)
    events_path = lake_layer(lake, "events")
    if client is not None:
        return _run(client, events_path, frame, res, permutations, hotspots)
    with dask_client(
        scheduler, n_workers=n_workers, processes=processes, memory_limit=memory_limit
    ) as own:
        return _run(own, events_path, frame, res, permutations, hotspots)


def _run(
    client: Any,
    events_path: Path,
    grids: gpd.GeoDataFrame,
    resolution: int,
    permutations: int,
    hotspots: bool,
) -> BatchResult:
    from dask.delayed import delayed

    ddf = read_lake_dask(events_path.parent, "events", columns=EVENT_COLUMNS)
    index = client.scatter(GridIndex.from_frame(grids), broadcast=True)
    level = [
        delayed(_partition_partial)(part, index, resolution)
        for part in ddf.to_delayed(optimize_graph=True)
    ]
    while len(level) > 1:
        level = [delayed(_combine)(*level[i : i + _FAN_IN]) for i in range(0, len(level), _FAN_IN)]
    total: Partial = client.compute(level[0]).result()
    found: list[pd.DataFrame] = []
    if hotspots:
        jobs = hotspot_jobs(total, grids)
        futures = [
            client.submit(
                town_hotspots, town, counts, town_grids, resolution, permutations=permutations
            )
            for town, counts, town_grids in jobs
        ]
        found = list(client.gather(futures))
    return finish(total, grids, resolution, hotspots=found, permutations=permutations)
