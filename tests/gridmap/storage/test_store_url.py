"""A store's URL opens the same store again, from any working directory."""

from __future__ import annotations

import os
from pathlib import Path

import geopandas as gpd
import pytest
import shapely

from gridmap.storage import open_store


@pytest.mark.parametrize("given", ["gridmap.duckdb", "./gridmap.duckdb"])
def test_relative_file_round_trips(
    given: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `gridmap demo` serves by reopening its store from the URL: with the relative
    # default path the server once opened an empty /gridmap.duckdb instead.
    monkeypatch.chdir(tmp_path)
    store = open_store(given, migrate=True)
    store.write(
        "roads",
        gpd.GeoDataFrame(
            {"name": ["合成道路 synthetic road"], "source_id": ["r1"]},
            geometry=[shapely.LineString([(24.9, 60.1), (24.91, 60.1)])],
            crs=4326,
        ),
    )
    url = store.url
    store.close()
    assert url == f"duckdb:///{tmp_path / 'gridmap.duckdb'}"
    monkeypatch.chdir(os.sep)
    again = open_store(url)
    try:
        assert again.count("roads") == 1
    finally:
        again.close()
