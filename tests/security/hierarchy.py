"""A small synthetic hierarchy for tests that need area codes to exist (users, workers)."""

from __future__ import annotations

import geopandas as gpd
import shapely

from gridmap.storage import Store


def add_units(store: Store, *, grid: str, x: float = 24.9) -> None:
    """Town, community and one grid in force for the 15-digit *grid*: a ~1 km box at lon *x*.

    The units are SYNTHETIC (named so); the city code (6 digits) is the grid's
    first six digits, its town and community the next prefixes.
    """
    box = shapely.MultiPolygon([shapely.box(x, 60.30, x + 0.018, 60.309)])
    town, community = grid[:9], grid[:12]
    store.write(
        "admin_units",
        gpd.GeoDataFrame(
            {
                "code": [town, community],
                "name": ["合成街道 Synthetic town", "合成社区 Synthetic community"],
                "level": ["town", "community"],
                "parent_code": [town[:6], town],
                "source_id": [f"test/{town}", f"test/{community}"],
            },
            geometry=[box, box],
            crs=4326,
        ),
    )
    store.write(
        "grids",
        gpd.GeoDataFrame(
            {"code": [grid], "community_code": [community], "source_id": [f"test/{grid}"]},
            geometry=[box],
            crs=4326,
        ),
    )
