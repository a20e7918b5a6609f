"""The Dask batch path: one task per lake file on a dask.distributed cluster.

Each task streams one Parquet file of the lake's events in record batches
(:func:`gridmap.batch.lake.iter_file_batches`: points as ``x``/``y`` floats
from the GeoParquet bbox column, no geometry objects), assigns them to grids
with the :class:`~gridmap.batch._kernel.GridIndex` broadcast once to every
worker (``Client.scatter(..., broadcast=True)``), bins them to H3 and returns
the small partial aggregates of :mod:`gridmap.batch._kernel`. Hot spots then
run per town as independent tasks.

Worker memory does not grow with the lake (issue 11):

- a task reads and aggregates its file in one go, so no partition of events
  waits in a worker's memory for the task that consumes it. With
  dask-geopandas partitions, read tasks ran ahead of their consumers and a
  worker held up to three GeoDataFrames of a whole file (a shapely object per
  event), each ~50 MB of RSS that Dask's size estimate put at ~10 MB; the
  more files, the more often that happened;
- a task's memory is one record batch (*chunk_rows*), whatever the size of
  its file, with no geometry objects, and Arrow's pool returns its freed
  pages after each file (they piled up over many files otherwise);
- at most two tasks per worker thread are submitted at a time, and each
  result is folded into the running total and released as it arrives: the
  scheduler's graph and the futures held stay the same size for 10 files or
  10,000.

Without a scheduler address a ``LocalCluster`` is started for the run (and
closed after it); with one (``tcp://host:8786``, from the CLI's
``--scheduler`` / ``GRIDMAP_DASK_SCHEDULER``) the run uses that cluster, whose
workers need gridmap installed and the lake on a path they can read.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from typing import Any

import geopandas as gpd
import pandas as pd

from gridmap.batch._kernel import (
    BatchResult,
    GridIndex,
    Partial,
    combine,
    empty_partial,
    finish,
    hotspot_jobs,
    partial_aggregates,
    town_hotspots,
)
from gridmap.batch.lake import (
    DEFAULT_CHUNK_ROWS,
    iter_file_batches,
    lake_files,
    lake_layer,
    partition_keys,
)
from gridmap.batch.single import EVENT_COLUMNS, lake_grids
from gridmap.common.errors import BadInput
from gridmap.geo.h3cells import check_resolution

__all__ = ["DaskCluster", "dask_client", "file_partial", "fold", "read_lake_dask", "run_dask"]

#: Partials summed at a time (one ``combine`` per this many, not one per partial).
_FAN_IN = 8
#: Tasks in flight per worker thread: one running, one queued so no thread idles
#: between a result and the next submission.
_TASKS_PER_THREAD = 2


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
    gridmap.common.errors.BadInput: the lake has no 'events' layer: /nonexistent/events
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


def fold(parts: Iterable[Partial]) -> Partial:
    """Sum partials as they come, holding at most :data:`_FAN_IN` of them at a time.

    Examples
    --------
    >>> fold([empty_partial()] * 20).events
    0
    """
    total = empty_partial()
    held: list[Partial] = []
    for part in parts:
        held.append(part)
        if len(held) == _FAN_IN:
            total = combine([total, *held])
            held = []
    return combine([total, *held]) if held else total


def file_partial(
    path: str, grids: GridIndex, resolution: int, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> Partial:
    """Partial aggregates of one lake file of events, streamed in record batches (a worker's task).

    Examples
    --------
    >>> from gridmap.batch.lake import example_lake, read_lake_layer
    >>> lake = example_lake()
    >>> g = GridIndex.from_frame(read_lake_layer(lake, "grids"))
    >>> [path] = lake_files(lake, "events")
    >>> file_partial(str(path), g, 9, chunk_rows=1).kpi[["reported", "closed"]].values.tolist()
    [[2, 1]]
    """
    batches = iter_file_batches([path], columns=EVENT_COLUMNS, chunk_rows=chunk_rows, xy=True)
    return fold(partial_aggregates(batch, grids, resolution) for batch in batches)


@dataclass(frozen=True)
class DaskCluster:
    """Where :func:`run_dask` runs: a scheduler's address, or a local cluster's shape.

    Attributes
    ----------
    scheduler : str, optional
        Address of a running scheduler; default: a ``LocalCluster`` of
        *n_workers* single-threaded workers (*processes* false runs them as
        threads of this process).
    n_workers : int
        Workers of the local cluster.
    processes : bool
        Workers as processes (true) or threads of this process.
    memory_limit : str or int
        Per-worker memory limit of the local cluster.
    """

    scheduler: str | None = None
    n_workers: int = 2
    processes: bool = True
    memory_limit: str | int = "auto"


def run_dask(
    lake: str | os.PathLike[str],
    *,
    resolution: int = 9,
    grids: gpd.GeoDataFrame | None = None,
    cluster: DaskCluster = DaskCluster(),
    permutations: int = 199,
    hotspots: bool = True,
    client: Any | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> BatchResult:
    """The batch results of the lake's events, computed on a Dask cluster.

    Takes the parameters of :func:`gridmap.batch.single.run_single` and
    returns what it returns on the same lake.

    Parameters
    ----------
    cluster : DaskCluster
        A running scheduler's address, or the local cluster to start
        (default: two single-threaded worker processes).
    client : distributed.Client, optional
        Use this client (and leave it open) instead of starting one.
    chunk_rows : int
        Events a task holds in memory at a time (one record batch).

    Examples
    --------
    >>> from gridmap.batch.lake import example_lake
    >>> r = run_dask(example_lake(), cluster=DaskCluster(n_workers=1, processes=False),
    ...              hotspots=False)
    >>> r.grid_counts.values.tolist()
    [['990100001001001', 2]]
    """
    res = check_resolution(resolution)
    if int(chunk_rows) < 1:
        raise BadInput(f"chunk_rows must be at least 1, got {chunk_rows}", field="chunk_rows")
    frame = lake_grids(lake, grids)
    files = [str(p) for p in lake_files(lake, "events")]
    job = _Job(files, frame, res, int(chunk_rows), permutations, hotspots)
    if client is not None:
        return _run(client, job)
    with dask_client(
        cluster.scheduler,
        n_workers=cluster.n_workers,
        processes=cluster.processes,
        memory_limit=cluster.memory_limit,
    ) as own:
        return _run(own, job)


@dataclass(frozen=True)
class _Job:
    files: list[str]
    grids: gpd.GeoDataFrame
    resolution: int
    chunk_rows: int
    permutations: int
    hotspots: bool


def _run(client: Any, job: _Job) -> BatchResult:
    total = _sum_files(client, job)
    found: list[pd.DataFrame] = []
    if job.hotspots:
        futures = [
            client.submit(
                town_hotspots,
                town,
                counts,
                town_grids,
                job.resolution,
                permutations=job.permutations,
            )
            for town, counts, town_grids in hotspot_jobs(total, job.grids)
        ]
        found = list(client.gather(futures))
    return finish(total, job.grids, job.resolution, hotspots=found, permutations=job.permutations)


def _sum_files(client: Any, job: _Job) -> Partial:
    """One :func:`file_partial` task per file, a bounded window of them in flight.

    Submitting every file up front (one graph of one task per file plus a
    reduction tree) let the scheduler run read tasks ahead of their
    consumers; here a new task goes out only when a result comes back, and
    every result is released as soon as it is fetched (it is then folded into
    the total, :data:`_FAN_IN` at a time).
    """
    from distributed import as_completed

    index = client.scatter(GridIndex.from_frame(job.grids), broadcast=True)
    threads = sum(client.nthreads().values()) or 1
    window = max(2, _TASKS_PER_THREAD * threads)
    todo = iter(job.files)
    inflight: set[Any] = set()
    done = as_completed()

    def submit(path: str) -> None:
        future = client.submit(
            file_partial, path, index, job.resolution, job.chunk_rows, pure=False
        )
        inflight.add(future)
        done.add(future)

    def results() -> Iterator[Partial]:
        for path in islice(todo, window):
            submit(path)
        for future in done:
            part: Partial = future.result()
            inflight.discard(future)
            future.release()
            nxt = next(todo, None)
            if nxt is not None:
                submit(nxt)
            yield part

    try:
        return fold(results())
    finally:
        # On an error, stop and drop the tasks still queued; either way drop the
        # grids. (Releases reach the scheduler asynchronously.)
        if inflight:
            client.cancel(list(inflight))
            for future in inflight:
                future.release()
        done.clear()
        index.release()
