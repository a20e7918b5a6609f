"""Large synthetic event lakes for benchmarks and tests, generated chunk by chunk.

Every event is synthetic (``synthetic = true``, ``source = "synthetic"``)
and placed on the real streets and buildings given (see
:mod:`gridmap.demo.synthetic`); chunk *k* uses seed ``seed + k``, so a lake is
reproducible and any size is generated with the memory of one chunk.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np

from gridmap.batch.lake import PartitionWriter, check_dest
from gridmap.common.errors import BadInput
from gridmap.demo.synthetic import synthetic_events

__all__ = ["LEAN_COLUMNS", "write_synthetic_lake"]

#: Event columns written (the long free-text description is left out to save disk).
LEAN_COLUMNS = (
    "id",
    "category",
    "status",
    "urgency",
    "channel",
    "reported_at",
    "closed_at",
    "grid_code",
    "synthetic",
    "source",
    "source_id",
    "geometry",
)


def write_synthetic_lake(
    roads: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame,
    dest: str | os.PathLike[str],
    *,
    n: int,
    grids: gpd.GeoDataFrame | None = None,
    chunk_rows: int = 1_000_000,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write *n* synthetic events (and *grids*, if given) to a lake under *dest*.

    Events carry no ``grid_code`` (the batch paths assign them), so they all
    land in ``county=none`` partitions by month.

    Examples
    --------
    >>> import tempfile, shapely
    >>> roads = gpd.GeoDataFrame(geometry=[shapely.LineString([(24.94, 60.17), (24.95, 60.17)])],
    ...                          crs=4326)
    >>> lake = write_synthetic_lake(roads, roads.iloc[:0], tempfile.mkdtemp(), n=10, chunk_rows=4)
    >>> len(list((lake / "events").rglob("*.parquet"))) >= 3
    True
    """
    if n < 0:
        raise BadInput("n must not be negative", field="n")
    if chunk_rows < 1:
        raise BadInput(f"chunk_rows must be at least 1, got {chunk_rows}", field="chunk_rows")
    root = check_dest(Path(dest))
    if grids is not None:
        PartitionWriter(root / "grids", "grids").write(grids)
    writer = PartitionWriter(root / "events", "events")
    done = 0
    k = 0
    while done < n:
        size = min(chunk_rows, n - done)
        ev = synthetic_events(roads, buildings, n=size, seed=seed + k)
        ev["id"] = np.arange(done + 1, done + size + 1, dtype="int64")
        ev["grid_code"] = None
        ev["source_id"] = [f"seed{seed}-{done + i + 1}" for i in range(size)]
        writer.write(ev[list(LEAN_COLUMNS)])
        done += size
        k += 1
        if progress is not None:
            progress(done, n)
    return root
