"""gridmap.io.readers: every format, every CRS, and clear errors for bad files."""

from __future__ import annotations

import json
import random
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from gridmap.common.errors import BadInput, UnsupportedFormat
from gridmap.geo.chinacrs import from_wgs84
from gridmap.io.readers import GEOMETRY_NOTES, layer_names, parse_crs, read_file, read_table


def coords(frame: gpd.GeoDataFrame) -> np.ndarray:
    return shapely.get_coordinates(np.asarray(frame.geometry.values))


def same_shapes(a: gpd.GeoDataFrame, b: gpd.GeoDataFrame, tol: float) -> bool:
    """Equal within *tol* degrees, whatever the ring start and orientation."""
    left = shapely.normalize(np.asarray(a.geometry.values))
    right = shapely.normalize(np.asarray(b.geometry.values))
    return bool(shapely.equals_exact(left, right, tolerance=tol).all())


def shifted(frame: gpd.GeoDataFrame, system: str) -> gpd.GeoDataFrame:
    """The same features with coordinates stated in GCJ-02 or BD-09."""

    def fn(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(from_wgs84(xy[:, 0], xy[:, 1], system))

    out = frame.copy()
    out["geometry"] = shapely.transform(np.asarray(frame.geometry.values), fn)
    return out


def write_text(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


# ----------------------------------------------------------------------------- formats


def test_geojson_without_crs_is_wgs84(tmp_path: Path, beijing: gpd.GeoDataFrame) -> None:
    path = tmp_path / "buildings.geojson"
    beijing.to_file(path, driver="GeoJSON")
    frame = read_file(path)
    assert frame.crs.to_epsg() == 4326
    assert list(frame.index) == list(range(len(beijing)))
    assert {"name", "floors", "osm_id"} <= set(frame.columns)
    assert frame.geometry.name == "geometry"
    np.testing.assert_allclose(coords(frame), coords(beijing), atol=1e-12)
    assert frame.attrs[GEOMETRY_NOTES] == {}


@pytest.mark.parametrize("system", ["gcj02", "bd09", "GCJ-02", "BD-09"])
def test_chinese_web_map_coordinates_come_back_to_wgs84(
    tmp_path: Path, beijing: gpd.GeoDataFrame, system: str
) -> None:
    path = tmp_path / "amap.geojson"
    shifted(beijing, system).to_file(path, driver="GeoJSON")
    frame = read_file(path, crs=system)
    np.testing.assert_allclose(coords(frame), coords(beijing), atol=1e-7, rtol=0)
    # Without --crs the offset (hundreds of metres) stays in.
    raw = read_file(path)
    assert np.abs(coords(raw) - coords(beijing)).max() > 1e-3


def test_web_mercator_geopackage_is_converted(tmp_path: Path, beijing: gpd.GeoDataFrame) -> None:
    path = tmp_path / "mercator.gpkg"
    pyogrio.write_dataframe(beijing.to_crs(3857), path, layer="buildings")
    frame = read_file(path)
    assert frame.crs.to_epsg() == 4326
    np.testing.assert_allclose(coords(frame), coords(beijing), atol=1e-9, rtol=0)


def test_legacy_geojson_crs_member_is_honoured(tmp_path: Path, beijing: gpd.GeoDataFrame) -> None:
    merc = beijing.head(3).to_crs(3857)
    features = [
        {"type": "Feature", "properties": {"n": i}, "geometry": shapely.geometry.mapping(g)}
        for i, g in enumerate(merc.geometry)
    ]
    doc = {
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::3857"}},
        "features": features,
    }
    path = write_text(tmp_path / "legacy.geojson", json.dumps(doc))
    frame = read_file(path)
    np.testing.assert_allclose(coords(frame), coords(beijing.head(3)), atol=1e-9, rtol=0)


@pytest.mark.parametrize("crs", [None, "cgcs2000", "EPSG:4490"])
def test_cgcs2000_is_taken_as_wgs84(
    tmp_path: Path, beijing: gpd.GeoDataFrame, crs: str | None
) -> None:
    path = tmp_path / "tianditu.gpkg"
    pyogrio.write_dataframe(beijing.set_crs(4490, allow_override=True), path)
    frame = read_file(path, crs=crs)
    assert frame.crs.to_epsg() == 4326
    np.testing.assert_array_equal(coords(frame), coords(beijing))


def test_shapefile_plain_and_zipped(tmp_path: Path, beijing: gpd.GeoDataFrame) -> None:
    folder = tmp_path / "shp"
    folder.mkdir()
    pyogrio.write_dataframe(beijing.to_crs(3857), folder / "b.shp")
    plain = read_file(folder / "b.shp")
    archive = tmp_path / "b.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for part in folder.iterdir():
            zf.write(part, part.name)
    zipped = read_file(archive)
    for frame in (plain, zipped):
        assert len(frame) == len(beijing)
        assert same_shapes(frame, beijing, 1e-8)


def test_geoparquet_and_plain_parquet(tmp_path: Path, beijing: gpd.GeoDataFrame) -> None:
    beijing.to_crs(3857).to_parquet(tmp_path / "b.parquet")
    frame = read_file(tmp_path / "b.parquet")
    np.testing.assert_allclose(coords(frame), coords(beijing), atol=1e-9, rtol=0)
    pts = pd.DataFrame({"longitude": [116.39, 116.40], "latitude": [39.90, 39.91], "n": [1, 2]})
    pts.to_parquet(tmp_path / "plain.parquet")
    frame = read_file(tmp_path / "plain.parquet")
    assert frame.geometry.iloc[1].equals(shapely.Point(116.40, 39.91))


# ----------------------------------------------------------------------------- CSV


@pytest.mark.parametrize(
    ("header", "encoding"),
    [
        ("name,lon,lat", "utf-8"),
        ("name,LNG,Lat", "utf-8-sig"),
        ("name,longitude,latitude", "utf-8"),
        ("name,x,y", "utf-8"),
        ("名称,经度,纬度", "gb18030"),
    ],
)
def test_csv_coordinate_columns_are_found(tmp_path: Path, header: str, encoding: str) -> None:
    text = f"{header}\n天安门,116.391349,39.907375\n国贸,116.4609,39.9087\n"
    frame = read_file(write_text(tmp_path / "pois.csv", text, encoding))
    assert frame.crs.to_epsg() == 4326
    assert frame.geometry.iloc[0].equals(shapely.Point(116.391349, 39.907375))
    assert frame.iloc[0, 0] == "天安门"


def test_csv_columns_stay_text_and_formula_guard_is_removed(tmp_path: Path) -> None:
    text = "code,name,lon,lat\n001,'=HYPERLINK(x),116.39,39.9\n002,'',116.4,39.9\n"
    frame = read_file(write_text(tmp_path / "t.csv", text))
    assert frame["code"].tolist() == ["001", "002"]
    assert frame["name"].tolist() == ["=HYPERLINK(x)", "''"]


def test_csv_explicit_columns_full_width_digits_and_missing_values(tmp_path: Path) -> None:
    text = "a,b,c\n1,１１６.３９,３９.９\n2,,39.9\n3,abc,39.9\n"
    frame = read_file(write_text(tmp_path / "t.csv", text), lon="b", lat="c")
    assert frame.geometry.iloc[0].equals(shapely.Point(116.39, 39.9))
    assert frame.geometry.iloc[1] is None and frame.geometry.iloc[2] is None
    assert frame.attrs[GEOMETRY_NOTES] == {
        1: "missing or non-numeric b/c",
        2: "missing or non-numeric b/c",
    }


def test_projected_csv_needs_crs(tmp_path: Path) -> None:
    merc = gpd.GeoSeries(
        [shapely.Point(116.39, 39.9), shapely.Point(116.4, 39.91)], crs=4326
    ).to_crs(3857)
    text = "id,x,y\n" + "".join(f"{i},{p.x!r},{p.y!r}\n" for i, p in enumerate(merc))
    path = write_text(tmp_path / "merc.csv", text)
    with pytest.raises(BadInput, match=r"merc\.csv.*looks projected, pass --crs"):
        read_file(path)
    frame = read_file(path, crs="EPSG:3857")
    assert frame.geometry.iloc[0].distance(shapely.Point(116.39, 39.9)) < 1e-9
    with pytest.raises(BadInput, match="check --crs wgs84"):
        read_file(path, crs="wgs84")


def test_a_few_stray_rows_are_left_for_repair(tmp_path: Path) -> None:
    rows = "".join(f"{i},116.{i},39.9\n" for i in range(9)) + "9,116.5,91.0\n"
    frame = read_file(write_text(tmp_path / "t.csv", "id,lon,lat\n" + rows))
    assert len(frame) == 10
    assert frame.geometry.iloc[9].y == 91.0


def test_csv_wkt_ewkt_and_curves(tmp_path: Path) -> None:
    merc = gpd.GeoSeries([shapely.Point(116.39, 39.9)], crs=4326).to_crs(3857).iloc[0]
    text = (
        "name,geometry\n"
        f'a,"SRID=3857;POINT ({merc.x!r} {merc.y!r})"\n'
        'b,"POINT ZM (12957000 4852000 1 2)"\n'
        'c,"not wkt"\n'
        "d,\n"
    )
    frame = read_file(write_text(tmp_path / "ewkt.csv", text))
    assert frame.geometry.iloc[0].distance(shapely.Point(116.39, 39.9)) < 1e-9
    assert frame.attrs[GEOMETRY_NOTES] == {2: "unparseable WKT"}
    assert frame.geometry.iloc[3] is None
    curves = 'name,wkt\narc,"CIRCULARSTRING (116.39 39.9, 116.40 39.91, 116.41 39.9)"\n'
    frame = read_file(write_text(tmp_path / "curve.csv", curves))
    assert frame.geometry.iloc[0].geom_type == "LineString"
    assert shapely.get_num_coordinates(frame.geometry.iloc[0]) > 10
    assert frame.attrs[GEOMETRY_NOTES] == {0: "curve linearized"}
    mixed = 'name,geometry\na,"SRID=3857;POINT (1 2)"\nb,"SRID=4326;POINT (1 2)"\n'
    with pytest.raises(BadInput, match="several SRIDs"):
        read_file(write_text(tmp_path / "mixed.csv", mixed))
    unknown = 'name,geometry\na,"SRID=999999;POINT (1 2)"\n'
    with pytest.raises(BadInput, match="SRID=999999, which is not a known EPSG code"):
        read_file(write_text(tmp_path / "unknown.csv", unknown))


def test_empty_wkt_column_falls_back_to_lon_lat(tmp_path: Path) -> None:
    text = "name,geometry,lon,lat\na,,116.39,39.9\n"
    frame = read_file(write_text(tmp_path / "t.csv", text))
    assert frame.geometry.iloc[0].equals(shapely.Point(116.39, 39.9))


def test_unclosed_ring_is_closed_and_noted(tmp_path: Path) -> None:
    doc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"n": "unclosed"},
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[116.39, 39.9], [116.4, 39.9], [116.4, 39.91]]],
                },
            },
            {
                "type": "Feature",
                "properties": {"n": "fine"},
                "geometry": {"type": "Point", "coordinates": [116.39, 39.9]},
            },
        ],
    }
    frame = read_file(write_text(tmp_path / "open.geojson", json.dumps(doc)))
    assert frame.attrs[GEOMETRY_NOTES] == {0: "unclosed ring closed"}
    ring = frame.geometry.iloc[0].exterior
    assert ring.is_closed and shapely.get_num_coordinates(ring) == 4
    assert frame["n"].tolist() == ["unclosed", "fine"]


def test_multi_layer_geopackage(tmp_path: Path, beijing: gpd.GeoDataFrame) -> None:
    path = tmp_path / "two.gpkg"
    pyogrio.write_dataframe(beijing.head(2), path, layer="a")
    pyogrio.write_dataframe(beijing.head(3), path, layer="b", append=False)
    assert layer_names(path) == ["a", "b"]
    with pytest.raises(BadInput, match=r"two\.gpkg: holds 2 layers \(a, b\)"):
        read_file(path)
    assert len(read_file(path, layer="b")) == 3
    with pytest.raises(BadInput, match="no layer 'c'; layers are: a, b"):
        read_file(path, layer="c")


def test_read_table_without_geometry(tmp_path: Path) -> None:
    table = read_table(write_text(tmp_path / "w.csv", "name,role\n张三,grid_worker\n"))
    assert table.to_dict("records") == [{"name": "张三", "role": "grid_worker"}]


# ----------------------------------------------------------------------------- CRS names


@pytest.mark.parametrize(
    ("name", "expected"),
    [("gcj02", "gcj02"), ("GCJ-02", "gcj02"), ("bd09", "bd09"), ("BD09LL", "bd09")],
)
def test_parse_crs_chinese_systems(name: str, expected: str) -> None:
    assert parse_crs(name) == expected


@pytest.mark.parametrize(
    ("name", "epsg"),
    [
        ("wgs84", 4326),
        ("WGS-84", 4326),
        ("cgcs2000", 4326),
        ("EPSG:4490", 4326),
        ("EPSG:3857", 3857),
    ],
)
def test_parse_crs_pyproj(name: str, epsg: int) -> None:
    parsed = parse_crs(name)
    assert not isinstance(parsed, str) and parsed.to_epsg() == epsg


@pytest.mark.parametrize("name", ["foo", "EPSG:99999", "", "   "])
def test_unknown_crs_is_refused(tmp_path: Path, name: str) -> None:
    path = write_text(tmp_path / "p.csv", "lon,lat\n116.39,39.9\n")
    with pytest.raises(BadInput, match="unknown CRS") as info:
        read_file(path, crs=name)
    assert info.value.field == "crs"


# ----------------------------------------------------------------------------- bad files


def garbage(n: int = 4096) -> bytes:
    return random.Random(42).randbytes(n)


@pytest.mark.parametrize("suffix", [".geojson", ".gpkg", ".parquet", ".csv", ".shp", ".zip"])
def test_garbage_bytes_give_a_clear_error(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"junk{suffix}"
    path.write_bytes(garbage())
    with pytest.raises(BadInput, match=rf"junk\{suffix}"):
        read_file(path)


def test_truncated_geopackage(tmp_path: Path, beijing: gpd.GeoDataFrame) -> None:
    whole = tmp_path / "whole.gpkg"
    pyogrio.write_dataframe(beijing, whole)
    data = whole.read_bytes()
    cut = tmp_path / "cut.gpkg"
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises(BadInput, match=r"cut\.gpkg: cannot read"):
        read_file(cut)


def test_missing_empty_and_directory(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match=r"nothere\.geojson: no such file"):
        read_file(tmp_path / "nothere.geojson")
    (tmp_path / "empty.geojson").write_bytes(b"")
    with pytest.raises(BadInput, match=r"empty\.geojson: the file is empty"):
        read_file(tmp_path / "empty.geojson")
    (tmp_path / "dir.gpkg").mkdir()
    with pytest.raises(BadInput, match="is a directory"):
        read_file(tmp_path / "dir.gpkg")


@pytest.mark.parametrize("name", ["data.txt", "data.xlsx", "noext", "city.osm.pbf"])
def test_unsupported_suffix(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text("x")
    with pytest.raises(UnsupportedFormat, match=name.replace(".", r"\.")):
        read_file(path)


def test_csv_without_coordinate_columns(tmp_path: Path) -> None:
    path = write_text(tmp_path / "nocoords.csv", "name,address\na,b\n")
    with pytest.raises(BadInput, match=r"nocoords\.csv: no coordinate columns.*'name', 'address'"):
        read_file(path)
    with pytest.raises(BadInput, match="no lon column 'east'"):
        read_file(path, lon="east", lat="address")


def test_csv_that_is_not_text(tmp_path: Path) -> None:
    path = tmp_path / "bin.csv"
    path.write_bytes(b"lon,lat\n\x00\x01\x02\xff\xfe")
    with pytest.raises(BadInput, match=r"bin\.csv: not a text file"):
        read_file(path)


def test_broken_json(tmp_path: Path) -> None:
    path = write_text(tmp_path / "broken.geojson", '{"type": "FeatureCollection", "features": [')
    with pytest.raises(BadInput, match=r"broken\.geojson: cannot read"):
        read_file(path)
