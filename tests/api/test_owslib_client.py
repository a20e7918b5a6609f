"""A second client nobody here wrote: OWSLib's OGC API - Features reader.

The service runs in uvicorn on a loopback port over a DuckDB file with the
real Helsinki buildings and streets; OWSLib reads the landing page,
conformance, collections, one collection, its queryables and pages of items,
and the features it gets are the store's.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
import shapely
from owslib.ogcapi.features import Features
from shapely.geometry import shape

from api.main import create_app
from gridmap.storage import Store, open_store


@pytest.fixture
def served(
    tmp_path: Path, dataset: dict[str, gpd.GeoDataFrame], make_settings: Any, serve: Any
) -> Iterator[tuple[str, Store]]:
    store = open_store(f"duckdb:///{tmp_path / 'gridmap.duckdb'}", migrate=True)
    for name in ("buildings", "roads"):
        store.write(name, dataset[name])
    try:
        with serve(create_app(make_settings(), store=store)) as base:
            yield base, store
    finally:
        store.close()


@pytest.mark.timeout(120)
def test_owslib_reads_collections_and_items(served: tuple[str, Store]) -> None:
    base, store = served
    w = Features(f"{base}/")
    conformance = w.conformance()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in conformance
    ids = {c["id"] for c in w.collections()["collections"]}
    assert {"buildings", "roads", "grids"} <= ids and "events" not in ids
    meta = w.collection("buildings")
    assert meta["id"] == "buildings" and "extent" in meta
    assert "properties" in w.collection_queryables("buildings")
    # walk every page of buildings through OWSLib
    stored = store.read("buildings").set_index("id")
    seen: dict[int, Any] = {}
    offset = 0
    while True:
        page = w.collection_items("buildings", limit=200, offset=offset)
        for f in page["features"]:
            seen[int(f["id"])] = f
        if page["numberReturned"] < 200:
            break
        offset += 200
    assert set(seen) == set(stored.index)
    for fid, f in list(seen.items())[:50]:
        assert shapely.equals_exact(shape(f["geometry"]), stored.loc[fid, "geometry"], 1e-12)
    bbox = [24.94, 60.165, 24.95, 60.17]
    inside = w.collection_items("buildings", bbox=bbox, limit=1000)
    expected = stored.index[shapely.intersects(stored.geometry.values, shapely.box(*bbox))]
    assert sorted(int(f["id"]) for f in inside["features"]) == sorted(expected)
    one = w.collection_item("buildings", str(next(iter(seen))))
    assert one["type"] == "Feature"
