"""gridmap.io.export: every format round-trips what was imported."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from gridmap.common.errors import BadInput, UnknownLayer, UnsupportedFormat
from gridmap.io.export import export_layer, guard_formula
from gridmap.io.importer import import_layer
from gridmap.storage import Store

FORMATS = (".gpkg", ".geojson", ".parquet", ".csv")
NASTY = [
    "=cmd|' /C calc'!A0",
    "+86 138 0000 0000",
    "-1",
    "@SUM(A1)",
    "\tTab",
    "'=quoted",
    "𠮷野家 <img onerror=x>",
]


def comparable(frame: pd.DataFrame) -> pd.DataFrame:
    """Attributes without the store id, missing values as None, ordered by source id."""
    out = frame.drop(columns=["id", "geometry"]).sort_values("source_id").reset_index(drop=True)
    return out.astype(object).where(out.notna(), None)


def geometries(frame: gpd.GeoDataFrame) -> np.ndarray:
    return np.asarray(frame.sort_values("source_id").geometry.values)


@pytest.fixture
def source_files(tmp_path: Path, beijing: gpd.GeoDataFrame) -> dict[str, Path]:
    """A GeoJSON of buildings and one of events, with awkward text values."""
    buildings = beijing.assign(
        source_id=[f"b{i}" for i in range(len(beijing))],
        address=[NASTY[i % len(NASTY)] for i in range(len(beijing))],
        use=["apartments"] * len(beijing),
    )
    b_path = tmp_path / "buildings.geojson"
    buildings.to_file(b_path, driver="GeoJSON")
    events = gpd.GeoDataFrame(
        {
            "source_id": ["e1", "e2", "e3"],
            "category": ["dispute", "safety_hazard", "city_management"],
            "description": [NASTY[0], "井盖缺失", None],
            "reported_at": ["2024-05-01T08:30:00+08:00", "2024-05-02T12:00:00Z", None],
            "synthetic": [True, False, None],
        },
        geometry=[
            shapely.Point(116.391349, 39.907375),
            shapely.Point(116.4609, 39.9087),
            shapely.Point(116.4, 39.91),
        ],
        crs=4326,
    )
    e_path = tmp_path / "events.geojson"
    events.to_file(e_path, driver="GeoJSON")
    return {"buildings": b_path, "events": e_path}


def test_every_format_round_trips(
    store: Store,
    fresh_store: Callable[[str], Store],
    source_files: dict[str, Path],
    tmp_path: Path,
) -> None:
    for layer, path in source_files.items():
        import_layer(store, path, layer=layer)
    for suffix in FORMATS:
        again = fresh_store(suffix.strip("."))
        for layer in source_files:
            original = store.read(layer)
            out = tmp_path / f"export_{layer}{suffix}"
            assert export_layer(store, layer, out) == len(original)
            report = import_layer(again, out, layer=layer)
            assert report.rejected == 0, report.to_table()
            back = again.read(layer)
            assert len(back) == len(original), (layer, suffix)
            assert shapely.equals_exact(
                geometries(back), geometries(original), tolerance=1e-9
            ).all()
            pd.testing.assert_frame_equal(comparable(back), comparable(original), check_dtype=False)
            # Importing an export into the store it came from adds nothing.
            assert import_layer(store, out, layer=layer).inserted == 0, (layer, suffix)


def test_csv_guards_formulas_and_keeps_coordinates(
    store: Store, source_files: dict[str, Path], tmp_path: Path
) -> None:
    import_layer(store, source_files["events"], layer="events")
    out = tmp_path / "events.csv"
    export_layer(store, "events", out)
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: Excel opens UTF-8 Chinese text right
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    first = next(r for r in rows if r["source_id"] == "e1")
    assert first["description"] == "'" + NASTY[0]
    assert float(first["lon"]) == 116.391349 and float(first["lat"]) == 39.907375
    assert first["geometry"] == "POINT (116.391349 39.907375)"
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), value


def test_guard_formula_leaves_other_values_alone() -> None:
    cells = pd.Series(["=1", "x=1", 5, None, "", "''+1"], dtype=object)
    assert guard_formula(cells).tolist() == ["'=1", "x=1", 5, None, "", "'''+1"]


def test_geojson_is_plain_wgs84(
    store: Store, source_files: dict[str, Path], tmp_path: Path
) -> None:
    import_layer(store, source_files["events"], layer="events")
    out = tmp_path / "events.geojson"
    export_layer(store, "events", out)
    doc = json.loads(out.read_text())
    assert doc["type"] == "FeatureCollection" and len(doc["features"]) == 3
    assert "crs" not in doc or "CRS84" in json.dumps(doc["crs"]) or "4326" in json.dumps(doc["crs"])
    lons = sorted(f["geometry"]["coordinates"][0] for f in doc["features"])
    assert lons[0] == 116.391349


def test_export_replaces_the_file_and_leaves_no_temporary_files(
    store: Store, source_files: dict[str, Path], tmp_path: Path
) -> None:
    import_layer(store, source_files["buildings"], layer="buildings")
    folder = tmp_path / "out"
    folder.mkdir()
    target = folder / "b.gpkg"
    target.write_bytes(b"old content")
    assert export_layer(store, "buildings", target) == 40
    assert export_layer(store, "buildings", target) == 40
    assert [p.name for p in folder.iterdir()] == ["b.gpkg"]


@pytest.mark.parametrize("suffix", FORMATS)
def test_empty_layer(store: Store, tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"empty{suffix}"
    assert export_layer(store, "roads", out) == 0
    assert out.exists()


def test_export_errors(store: Store, tmp_path: Path) -> None:
    with pytest.raises(UnsupportedFormat, match=r"roads\.xlsx"):
        export_layer(store, "roads", tmp_path / "roads.xlsx")
    with pytest.raises(UnknownLayer):
        export_layer(store, "parcels", tmp_path / "parcels.gpkg")
    with pytest.raises(UnsupportedFormat, match="has no geometry"):
        export_layer(store, "workers", tmp_path / "workers.geojson")
    with pytest.raises(BadInput, match="no such directory"):
        export_layer(store, "roads", tmp_path / "missing" / "roads.gpkg")
    # nothing was written besides the store's own files
    assert all(p.name.startswith("gridmap.duckdb") for p in tmp_path.iterdir())


def test_table_without_geometry_round_trips(
    store: Store, fresh_store: Callable[[str], Store], tmp_path: Path
) -> None:
    path = tmp_path / "workers.csv"
    path.write_text(
        'name,role,grid_codes,phone\n张三,grid_worker,"370285001001001,370285001001002",+86 138\n'
        "李四,grid_worker,,\n",
        encoding="utf-8",
    )
    import_layer(store, path, layer="workers")
    original = store.read("workers").drop(columns="id")
    for suffix in (".csv", ".parquet", ".gpkg"):
        out = tmp_path / f"w{suffix}"
        assert export_layer(store, "workers", out) == 2
        again = fresh_store("w" + suffix.strip("."))
        import_layer(again, out, layer="workers")
        back = again.read("workers").drop(columns="id")
        assert back.to_dict("records") == original.to_dict("records"), suffix
    assert original["grid_codes"].iloc[0] == ["370285001001001", "370285001001002"]
