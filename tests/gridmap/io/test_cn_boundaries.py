"""Real Chinese boundary files into ``admin_units``: codes, names and GCJ-02 coordinates.

The files are the GeoJSON of the npm package ``china-geojson`` 1.0.0 (a
devDependency in ``package.json``, installed by ``npm ci``): China's provinces
and the county- or prefecture-level units of each, in GCJ-02 coordinates,
feature ``id`` = administrative code, properties ``name``, ``cp``,
``childNum``. Aliyun DataV GeoAtlas files are built from the same real
features with DataV's property names.

Coordinates are checked with an oracle independent of :mod:`gridmap.geo.chinacrs`:
every stored WGS84 vertex is converted back to GCJ-02 with ``prcoords`` (the
forward transform, a closed formula, so no iteration error of its own) and
must equal the file's vertex within 1e-7 degrees (about 1 cm).

Every test runs on the embedded DuckDB store and on a real PostGIS.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import prcoords
import pyproj
import pytest
import shapely
from coord_convert import transform as cc
from typer.testing import CliRunner

from gridmap.cli import app
from gridmap.common.errors import BadInput, UnknownLayer
from gridmap.io.importer import ReadOptions, import_layer
from gridmap.storage import Store

REPO = Path(__file__).resolve().parents[3]
CHINA_GEOJSON = REPO / "node_modules" / "china-geojson" / "src" / "geojson"

TOL_DEG = 1e-7
# Vertices that repair adds to a self-intersecting outline (see _check_coordinates).
REPAIR_TOL_DEG = 1e-4
# GCJ-02 moves points by 100-700 m in most of China (domain.md); over every
# vertex of china-geojson the shift runs from 26 m (west Gansu/Qinghai, where
# the offset's north and east parts nearly cancel) to 701 m (Heilongjiang).
SHIFT_M = (20.0, 720.0)
TYPICAL_SHIFT_M = (100.0, 700.0)
GEOD = pyproj.Geod(ellps="WGS84")

Counts = Callable[[Store], dict[str, int]]

# Municipalities (6-digit county ids), Hainan (6-digit county ids and two
# 4-digit prefecture ids), China (2-digit province ids), two provinces (4-digit
# prefecture ids), from the far west (Xinjiang) to the south (Hainan).
FILES = [
    "bei_jing_geo.json",
    "shang_hai_geo.json",
    "chong_qing_geo.json",
    "hai_nan_geo.json",
    "china.json",
    "shan_dong_geo.json",
    "xin_jiang_geo.json",
]


def _expected_code(fid: str | None) -> str | None:
    """The code gridmap takes from a feature id: county, town or community codes only."""
    return fid if fid is not None and len(fid) in (6, 9, 12) else None


@pytest.fixture(scope="module")
def geojson_dir() -> Path:
    """Where ``npm ci`` put china-geojson (a missing package fails, never skips)."""
    if not (CHINA_GEOJSON / "bei_jing_geo.json").is_file():
        pytest.fail(f"{CHINA_GEOJSON} is missing: run `npm ci` in {REPO}")
    return CHINA_GEOJSON


def _features(path: Path) -> list[dict[str, Any]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return list(data["features"])


def _feature_id(feature: dict[str, Any]) -> str | None:
    # GDAL reads a text feature id into an "id" column; china.json has its id in
    # the properties instead. Either way that is what gridmap sees as "id".
    # An empty id is no id (gridmap reads "" as missing).
    value = feature.get("id", feature["properties"].get("id"))
    return None if value is None or value == "" else str(value)


def _back_to_gcj02(geom: shapely.Geometry) -> shapely.Geometry:
    """A stored WGS84 geometry in GCJ-02, vertex by vertex, with prcoords' forward formula."""

    def forward(xy: np.ndarray) -> np.ndarray:
        out = np.empty_like(xy)
        with warnings.catch_warnings():
            # prcoords warns for points outside China (returned as they are).
            warnings.simplefilter("ignore")
            for i, (lon, lat) in enumerate(xy):
                g_lat, g_lon = prcoords.wgs_gcj((float(lat), float(lon)))
                out[i] = (g_lon, g_lat)
        return out

    return shapely.transform(geom, forward)


def _canonical(geom: shapely.Geometry) -> shapely.Geometry:
    """Polygon parts as one normalized MultiPolygon (ring order and winding made canonical)."""
    return shapely.normalize(shapely.MultiPolygon(list(shapely.get_parts(geom))))


def _rings(geom: shapely.Geometry) -> list[np.ndarray]:
    """Coordinates of every ring of every polygon part, in the geometry's own order."""
    out = []
    for part in shapely.get_parts(geom):
        out.append(shapely.get_coordinates(part.exterior))
        out.extend(shapely.get_coordinates(r) for r in part.interiors)
    return out


def _in_china_box(xy: np.ndarray) -> np.ndarray:
    # coord_convert's own test of the GCJ-02 box (an independent copy of it).
    return np.array([not cc.outOfChina(float(x), float(y)) for x, y in xy], dtype=bool)


def _check_coordinates(
    stored: shapely.Geometry, original: shapely.Geometry
) -> tuple[float, np.ndarray]:
    """Assert the stored geometry is the file's, shifted by GCJ-02; return max error and shifts.

    A valid file polygon must come back vertex for vertex, in order (a ring may
    be reversed: winding is corrected). An invalid one was repaired
    (``make_valid``, after the shift to WGS84): then every stored vertex is one
    of the file's, or one of the few points repair added where the outline
    crosses itself.
    """
    back = _back_to_gcj02(stored)
    if shapely.is_valid(original):
        # Same parts and rings in the same order; a ring may only be reversed.
        mine, theirs = _rings(back), _rings(original)
        assert [len(r) for r in mine] == [len(r) for r in theirs]
        error = max(
            min(float(np.abs(a - b).max()), float(np.abs(a - b[::-1]).max()))
            for a, b in zip(mine, theirs, strict=True)
        )
    else:
        points = np.asarray(shapely.points(shapely.get_coordinates(back)), dtype=object)
        vertices = np.asarray(shapely.points(shapely.get_coordinates(original)), dtype=object)
        tree = shapely.STRtree(vertices)
        _, nearest = tree.query_nearest(points, return_distance=True, all_matches=False)
        made = nearest > TOL_DEG
        error = float(nearest[~made].max())
        # Points the repair made where the outline crosses itself are computed on
        # straight WGS84 segments, which GCJ-02 bends a little: they lie within
        # metres of the file's outline (2.3 m at most on china.json's 25 km
        # segments), and are few.
        assert made.sum() <= 10
        if made.any():
            off = shapely.distance(points[made], shapely.boundary(original))
            assert float(off.max()) < REPAIR_TOL_DEG
    assert error < TOL_DEG
    wgs = shapely.get_coordinates(stored)
    gcj = shapely.get_coordinates(back)
    _, _, metres = GEOD.inv(wgs[:, 0], wgs[:, 1], gcj[:, 0], gcj[:, 1])
    metres = np.asarray(metres)
    inside = _in_china_box(gcj)
    if inside.any():
        assert SHIFT_M[0] < metres[inside].min() and metres[inside].max() < SHIFT_M[1]
    # Outside the GCJ-02 box the file's coordinates are WGS84 already.
    assert (metres[~inside] == 0).all()
    return error, metres[inside]


@pytest.mark.parametrize("name", FILES)
def test_china_geojson_imports_with_codes_names_and_exact_coordinates(
    store: Store, geojson_dir: Path, name: str
) -> None:
    path = geojson_dir / name
    features = _features(path)
    report = import_layer(store, path, layer="admin_units", read=ReadOptions(crs="gcj02"))

    assert (report.read, report.rejected, report.inserted) == (len(features), 0, len(features))
    assert store.count("admin_units") == len(features)
    assert {"cp", "childNum"} <= set(report.ignored_columns)
    units = store.read("admin_units").set_index("source_id", drop=False)
    ids = [_feature_id(f) for f in features]
    expected = [_expected_code(fid) for fid in ids]
    # Every id is unique, so it is the source id too (idempotent re-imports).
    assert sorted(units["source_id"].dropna()) == sorted(i for i in ids if i is not None)
    assert sorted(units["code"].dropna()) == sorted(c for c in expected if c is not None)
    short = sum(1 for fid, code in zip(ids, expected, strict=True) if fid and not code)
    told = [n for n in report.notes if "not taken as the administrative code" in n]
    assert told == (
        [n for n in told if n.startswith(f"{short} 'id' value(s) such as")] if short else []
    )
    # No level, kind or parent in these files: gridmap invents none.
    assert units[["level", "kind", "parent_code"]].isna().all().all()
    assert (units["source"] == path.stem).all()

    errors, shifts = [], []
    for feature, fid in zip(features, ids, strict=True):
        if fid is None:  # china.json's 南海诸岛 has no id: found by name
            row = units[units["name"] == feature["properties"]["name"]].iloc[0]
        else:
            row = units.loc[fid]
        code = _expected_code(fid)
        assert pd.isna(row["code"]) if code is None else row["code"] == code
        assert row["name"] == feature["properties"]["name"]  # Chinese text intact
        error, shift = _check_coordinates(
            row["geometry"], shapely.geometry.shape(feature["geometry"])
        )
        errors.append(error)
        shifts.append(shift)
    assert max(errors) < TOL_DEG
    # The shift was applied, and is a few hundred metres as a rule.
    median = float(np.median(np.concatenate(shifts)))
    assert TYPICAL_SHIFT_M[0] < median < TYPICAL_SHIFT_M[1]

    again = import_layer(store, path, layer="admin_units", read=ReadOptions(crs="gcj02"))
    assert (again.inserted, again.skipped) == (0, len(features))
    assert store.count("admin_units") == len(features)


def _datav_feature(
    feature: dict[str, Any], adcode: int, level: str, parent: int | None
) -> dict[str, Any]:
    """A real china-geojson feature with Aliyun DataV GeoAtlas's properties."""
    cp = feature["properties"].get("cp") or [0.0, 0.0]
    props: dict[str, Any] = {
        "adcode": adcode,
        "name": feature["properties"]["name"],
        "center": cp,
        "centroid": cp,
        "childrenNum": 0,
        "level": level,
        "parent": None if parent is None else {"adcode": parent},
        "subFeatureIndex": 0,
        "acroutes": [100000] if parent is None else [100000, parent],
    }
    return {"type": "Feature", "properties": props, "geometry": feature["geometry"]}


@pytest.fixture
def datav_file(geojson_dir: Path, tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """DataV-style file of real outlines: a province, a prefecture, two districts, one street.

    DataV stops at districts; the street-level row borrows 东城区's outline
    under the code of 东华门街道 so that DataV's ``street`` level is covered too.
    """
    by_id = {_feature_id(f): f for f in _features(geojson_dir / "bei_jing_geo.json")}
    china = {f["properties"]["name"]: f for f in _features(geojson_dir / "china.json")}
    shandong = {_feature_id(f): f for f in _features(geojson_dir / "shan_dong_geo.json")}
    rows = [
        _datav_feature(china["北京"], 110000, "province", 100000),
        _datav_feature(shandong["3702"], 370200, "city", 370000),
        _datav_feature(by_id["110101"], 110101, "district", 110000),
        _datav_feature(by_id["110105"], 110105, "district", 110000),
        _datav_feature(by_id["110101"], 110101001, "street", 110101),
    ]
    rows[-1]["properties"]["name"] = "东华门街道"
    path = tmp_path / "110000_full.json"
    path.write_text(
        json.dumps({"type": "FeatureCollection", "features": rows}, ensure_ascii=False),
        encoding="utf-8",
    )
    return path, {"features": rows}


def test_datav_file_maps_adcode_parent_and_levels(
    store: Store, datav_file: tuple[Path, dict[str, Any]]
) -> None:
    path, data = datav_file
    report = import_layer(store, path, layer="admin_units", read=ReadOptions(crs="gcj02"))
    assert (report.read, report.rejected, report.inserted) == (5, 0, 5)
    units = store.read("admin_units").set_index("code")
    assert sorted(units.index) == ["110000", "110101", "110101001", "110105", "370200"]
    assert units["parent_code"].to_dict() == {
        "110000": "100000",
        "370200": "370000",
        "110101": "110000",
        "110105": "110000",
        "110101001": "110101",
    }
    assert units.loc["110101", "name"] == "东城区"
    assert units.loc["110101001", "name"] == "东华门街道"
    # DataV's district is gridmap's city (6-digit county code), its street a town;
    # province and prefecture ("city" in DataV) are above gridmap's levels.
    levels = units["level"].where(units["level"].notna(), None).to_dict()
    assert levels == {
        "110000": None,
        "370200": None,
        "110101": "city",
        "110105": "city",
        "110101001": "town",
    }
    assert units["kind"].isna().all()
    reasons = report.rows["reason"].tolist()
    assert "level: Amap/DataV 'province' is above gridmap's levels" in reasons[0]
    assert "level: Amap/DataV 'city' is above gridmap's levels" in reasons[1]
    assert not any("level" in r for r in reasons[2:])
    assert any("district → city" in n for n in report.notes)
    assert {"center", "centroid", "childrenNum", "acroutes"} <= set(report.ignored_columns)
    for feature in data["features"]:
        code = str(feature["properties"]["adcode"])
        _check_coordinates(units.geometry.loc[code], shapely.geometry.shape(feature["geometry"]))
    assert (
        import_layer(store, path, layer="admin_units", read=ReadOptions(crs="gcj02")).inserted == 0
    )


def test_parent_given_as_json_text_and_code_as_chinese_column(
    store: Store, geojson_dir: Path, tmp_path: Path
) -> None:
    # Some tools write DataV's parent object as JSON text, and Chinese tables
    # name the code column 区划代码: both are mapped the same way.
    feature = next(f for f in _features(geojson_dir / "bei_jing_geo.json") if f["id"] == "110108")
    props = {"区划代码": "110108", "name": "海淀区", "parent": json.dumps({"adcode": 110000})}
    path = tmp_path / "haidian.geojson"
    path.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {"type": "Feature", "properties": props, "geometry": feature["geometry"]}
                ],
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    report = import_layer(store, path, layer="admin_units", read=ReadOptions(crs="gcj02"))
    assert report.inserted == 1 and report.ignored_columns == ()
    unit = store.read("admin_units").iloc[0]
    assert (unit["code"], unit["parent_code"], unit["name"]) == ("110108", "110000", "海淀区")


# ----------------------------------------------------------------------------- bad input


@pytest.fixture
def beijing_store(store: Store, geojson_dir: Path) -> Store:
    """The store with Beijing's districts imported, so that "unchanged" means something."""
    import_layer(
        store, geojson_dir / "bei_jing_geo.json", layer="admin_units", read=ReadOptions(crs="gcj02")
    )
    assert store.count("admin_units") == 18
    return store


def _cli(store: Store, *args: str) -> Any:
    return CliRunner().invoke(app, ["import", "layer", *args, "--database-url", store.url])


def test_cli_imports_a_boundary_file(store: Store, geojson_dir: Path, tmp_path: Path) -> None:
    path = geojson_dir / "bei_jing_geo.json"
    report = tmp_path / "report.csv"
    result = _cli(
        store, str(path), "--layer", "admin_units", "--crs", "gcj02", "--report", str(report)
    )
    assert result.exit_code == 0, result.output
    units = store.read("admin_units")
    assert len(units) == 18 and units["code"].str.fullmatch(r"11\d{4}").all()
    assert set(units["name"]) >= {"东城区", "西城区", "密云县"}
    # The reasons behind the counts are printed, and every row is in the CSV report.
    assert "admin_units: repaired    18 × ring winding corrected" in result.output
    assert "columns not imported: cp, childNum" in result.output.replace("\n", " ")
    rows = pd.read_csv(report, encoding="utf-8-sig")
    assert list(rows.columns) == ["layer", "row", "status", "reason"]
    assert len(rows) == 18 and set(rows["status"]) == {"repaired"}


@pytest.mark.parametrize("crs", ["gcj-2000", "mars", "EPSG:999999"])
def test_unknown_crs_is_refused_and_nothing_changes(
    beijing_store: Store, geojson_dir: Path, counts: Counts, crs: str
) -> None:
    before = counts(beijing_store)
    path = geojson_dir / "shang_hai_geo.json"
    with pytest.raises(BadInput, match=rf"unknown CRS '{crs}'; use wgs84, cgcs2000, gcj02") as info:
        import_layer(beijing_store, path, layer="admin_units", read=ReadOptions(crs=crs))
    assert info.value.field == "crs"
    result = _cli(beijing_store, str(path), "--layer", "admin_units", "--crs", crs)
    assert result.exit_code == 1 and "error: unknown CRS" in result.output, result.output
    assert counts(beijing_store) == before


@pytest.mark.parametrize("crs", ["EPSG:3857", "EPSG:32650", "EPSG:4547"])
def test_projected_crs_for_degrees_is_refused_and_nothing_changes(
    beijing_store: Store, geojson_dir: Path, counts: Counts, crs: str
) -> None:
    # Read as metres the degrees would land near (0, 0), or on the equator for UTM
    # and CGCS2000 Gauss-Krüger (EPSG:4547).
    before = counts(beijing_store)
    path = geojson_dir / "shang_hai_geo.json"
    with pytest.raises(BadInput, match=rf"--crs {crs} is projected.*looks like degrees") as info:
        import_layer(beijing_store, path, layer="admin_units", read=ReadOptions(crs=crs))
    assert info.value.field == "crs"
    assert counts(beijing_store) == before


def test_truncated_file_is_refused_and_nothing_changes(
    beijing_store: Store, geojson_dir: Path, counts: Counts, tmp_path: Path
) -> None:
    before = counts(beijing_store)
    raw = (geojson_dir / "shang_hai_geo.json").read_bytes()
    for cut in (len(raw) // 2, len(raw) - 3):  # mid-feature, and just the closing brackets
        path = tmp_path / f"shang_hai_{cut}.json"
        path.write_bytes(raw[:cut])
        with pytest.raises(BadInput, match=rf"{path.name}: cannot read the file") as info:
            import_layer(beijing_store, path, layer="admin_units", read=ReadOptions(crs="gcj02"))
        assert info.value.field == "path"
        result = _cli(beijing_store, str(path), "--layer", "admin_units", "--crs", "gcj02")
        assert result.exit_code == 1 and "cannot read the file" in result.output, result.output
    assert counts(beijing_store) == before


def test_unknown_layer_is_refused_and_nothing_changes(
    beijing_store: Store, geojson_dir: Path, counts: Counts
) -> None:
    before = counts(beijing_store)
    path = geojson_dir / "shang_hai_geo.json"
    with pytest.raises(
        UnknownLayer, match=r"unknown layer 'districts'; known layers: .*admin_units"
    ):
        import_layer(beijing_store, path, layer="districts", read=ReadOptions(crs="gcj02"))
    result = _cli(beijing_store, str(path), "--layer", "districts", "--crs", "gcj02")
    assert result.exit_code == 1 and "unknown layer 'districts'" in result.output, result.output
    assert counts(beijing_store) == before


def test_gcj02_outside_china_is_the_identity(
    beijing_store: Store, geojson_dir: Path, tmp_path: Path
) -> None:
    """Documented in gridmap.geo.chinacrs: outside mainland China's box GCJ-02 equals WGS84.

    Beijing's districts moved 100 degrees west (to Central Europe) and imported
    with ``--crs gcj02`` keep their coordinates exactly, as in the reference
    algorithm (``coord_convert.outOfChina``); nothing is refused.
    """
    source = geojson_dir / "bei_jing_geo.json"
    data = json.loads(source.read_text(encoding="utf-8"))
    for feature in data["features"]:
        moved = shapely.transform(
            shapely.geometry.shape(feature["geometry"]), lambda xy: xy - np.array([100.0, 0.0])
        )
        feature["geometry"] = shapely.geometry.mapping(moved)
        feature["id"] = "9" + feature["id"][1:]  # other codes, so the rows are new
    path = tmp_path / "moved.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    report = import_layer(beijing_store, path, layer="admin_units", read=ReadOptions(crs="gcj02"))
    assert (report.inserted, report.rejected) == (18, 0)
    units = beijing_store.read("admin_units", where={"source": "moved"}).set_index("code")
    for feature in data["features"]:
        original = shapely.geometry.shape(feature["geometry"])
        xy = shapely.get_coordinates(original)
        assert all(cc.outOfChina(float(x), float(y)) for x, y in xy)
        stored = units.loc[feature["id"], "geometry"]
        a, b = _canonical(stored), _canonical(original)
        np.testing.assert_array_equal(shapely.get_coordinates(a), shapely.get_coordinates(b))
    assert beijing_store.count("admin_units") == 36
