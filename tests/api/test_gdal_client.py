"""A client nobody here wrote: GDAL's OAPIF driver (through pyogrio) reads the service.

The service runs in uvicorn on a loopback port, over a DuckDB file holding real
Helsinki buildings (486) and walkable streets (2,321). GDAL needs the landing
page, the conformance classes, the collections and paging by ``next`` links;
the test checks it gets every feature with the store's ids and geometries.

pyogrio reads with ``use_arrow=True``: its other reading path keeps Python's GIL
while GDAL waits for HTTP answers, which would starve the server thread.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import pyogrio
import pytest
import shapely
from fastapi import FastAPI, Request

from api.main import create_app
from gridmap.storage import Store, open_store


@pytest.fixture
def served(
    tmp_path: Path, dataset: dict[str, gpd.GeoDataFrame], make_settings: Any, serve: Any
) -> Iterator[tuple[str, Store, list[str]]]:
    """(base URL, store, request log) of the service running in uvicorn over a DuckDB file."""
    store = open_store(f"duckdb:///{tmp_path / 'gridmap.duckdb'}", migrate=True)
    for name in ("buildings", "roads"):
        store.write(name, dataset[name])
    app: FastAPI = create_app(make_settings(max_limit=1000), store=store)
    requests: list[str] = []

    @app.middleware("http")
    async def log(request: Request, call_next: Any) -> Any:
        requests.append(str(request.url))
        return await call_next(request)

    try:
        with serve(app) as base:
            yield base, store, requests
    finally:
        store.close()


@pytest.mark.timeout(120)
def test_gdal_oapif_reads_every_feature(served: tuple[str, Store, list[str]]) -> None:
    base, store, requests = served
    layers = {name for name, _ in pyogrio.list_layers(f"OAPIF:{base}/")}
    assert {"buildings", "roads", "grids"} <= layers and "events" not in layers  # anonymous
    for name, expected_count in (("roads", 2321), ("buildings", 486)):
        got = pyogrio.read_dataframe(
            f"OAPIF:{base}/", layer=name, fid_as_index=True, use_arrow=True
        )
        stored = store.read(name)
        assert len(got) == len(stored) == expected_count
        assert sorted(got.index) == stored["id"].tolist()
        by_id = dict(zip(stored["id"], stored.geometry, strict=True))
        same = [
            shapely.equals_exact(g, by_id[i], 0)
            for i, g in zip(got.index, got.geometry, strict=True)
        ]
        assert all(same), f"{same.count(False)} geometries differ in {name}"
        assert (
            got.loc[stored["id"], "source_id"].to_numpy() == stored["source_id"].to_numpy()
        ).all()
    pages = [u for u in requests if "/collections/roads/items" in u]
    assert any("offset=2000" in u for u in pages), pages  # GDAL followed next links past 1,000
