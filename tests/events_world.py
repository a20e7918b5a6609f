"""The fixture world of the event tests: the real Helsinki demo (grids on real streets).

Admin units, grids (15-digit codes) and workers come from ``gridmap.demo.job`` run
once per session on an embedded store; each test copies them into its own
store (DuckDB or PostGIS). Every event in these tests is synthetic.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import geopandas as gpd
import pandas as pd
import shapely

from gridmap.demo.job import run_demo
from gridmap.storage import Store, open_store

LAYERS = ("admin_units", "grids", "workers")


@lru_cache(maxsize=1)
def demo_layers() -> dict[str, pd.DataFrame]:
    """Admin units, grids and workers of the Helsinki demo (built once)."""
    s = open_store(":memory:", migrate=True)
    try:
        run_demo(s, events=0)
        return {name: s.read(name) for name in LAYERS}
    finally:
        s.close()


@dataclass(frozen=True)
class World:
    """A store holding the demo grids, and handy points inside them."""

    store: Store
    grids: gpd.GeoDataFrame

    def code(self, i: int) -> str:
        return str(self.grids["code"].iloc[i])

    def point(self, i: int) -> tuple[float, float]:
        """A point well inside grid *i* (its representative point)."""
        p = shapely.point_on_surface(self.grids.geometry.iloc[i])
        return (float(p.x), float(p.y))

    def body(self, i: int, category: str = "dispute", **extra: object) -> dict[str, object]:
        lon, lat = self.point(i)
        return {
            "category": category,
            "description": f"合成事件 synthetic test report in grid {self.code(i)}",
            "location": {"lon": lon, "lat": lat, "crs": "wgs84"},
            **extra,
        }


def make_world(store: Store) -> World:
    """Copy the demo's admin units, grids and workers into *store*."""
    layers = demo_layers()
    for name in LAYERS:
        frame = layers[name].drop(columns="id")
        store.write(name, frame)
    grids = store.read("grids")
    assert isinstance(grids, gpd.GeoDataFrame)
    return World(store, grids.sort_values("code").reset_index(drop=True))
