"""gridmap.io.repair with the bad geometries of quality.md."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from gridmap.common.errors import BadInput
from gridmap.io.readers import read_file
from gridmap.io.repair import repair

# (name, WKT or None, expected status, expected reason fragment)
POLYGON_CASES = [
    ("valid", "POLYGON ((0 0, 1 0, 1 1, 0 1, 0 0))", "ok", ""),
    ("wrong winding", "POLYGON ((0 0, 0 1, 1 1, 1 0, 0 0))", "repaired", "ring winding corrected"),
    ("bow-tie", "POLYGON ((0 0, 2 2, 2 0, 0 2, 0 0))", "repaired", "bow-tie split into 2 parts"),
    (
        "spike",
        "POLYGON ((0 0, 10 0, 10 10, 15 15, 10 10, 0 10, 0 0))",
        "repaired",
        "spike or loop removed",
    ),
    ("zero area", "POLYGON ((0 0, 1 1, 2 2, 0 0))", "rejected", "ring collapsed to zero area"),
    ("ring of 3 points", "POLYGON ((0 0, 1 1, 0 0))", "rejected", "ring collapsed to zero area"),
    (
        "hole outside shell",
        "POLYGON ((0 0, 10 0, 10 10, 0 10, 0 0), (20 20, 21 20, 21 21, 20 21, 20 20))",
        "repaired",
        "hole outside shell repaired",
    ),
    (
        "overlapping parts",
        "MULTIPOLYGON (((0 0, 2 0, 2 2, 0 2, 0 0)), ((1 1, 3 1, 3 3, 1 3, 1 1)))",
        "repaired",
        "overlapping parts merged",
    ),
    ("EMPTY", "POLYGON EMPTY", "rejected", "empty geometry"),
    ("null", None, "rejected", "null geometry"),
    ("NaN", "POLYGON ((0 0, 1 0, NaN 1, 0 0))", "rejected", "non-finite coordinates"),
    ("infinite", "POLYGON ((0 0, 1e400 0, 1 1, 0 0))", "rejected", "non-finite coordinates"),
    ("4-D", "POLYGON ZM ((0 0 1 2, 1 0 1 2, 1 1 1 2, 0 1 1 2, 0 0 1 2))", "repaired", "2-D"),
    ("latitude 90.0000001", "POLYGON ((0 0, 1 0, 1 90.0000001, 0 0))", "rejected", "outside"),
    ("a line", "LINESTRING (0 0, 1 1)", "rejected", "not a polygon (LineString)"),
    (
        "collection",
        "GEOMETRYCOLLECTION (POINT (5 5), POLYGON ((0 0, 1 0, 1 1, 0 1, 0 0)))",
        "repaired",
        "kept the polygon parts of a GeometryCollection",
    ),
]


def frame_of(wkts: list[str | None]) -> gpd.GeoDataFrame:
    with np.errstate(all="ignore"):
        geoms = [None if w is None else shapely.from_wkt(w) for w in wkts]
    return gpd.GeoDataFrame({"k": range(len(wkts))}, geometry=geoms, crs=4326)


@pytest.mark.parametrize(
    ("name", "wkt", "status", "reason"), POLYGON_CASES, ids=[c[0] for c in POLYGON_CASES]
)
def test_polygon_layer_cases(name: str, wkt: str | None, status: str, reason: str) -> None:
    kept, report = repair(frame_of([wkt]), "Polygon")
    assert report.status.iloc[0] == status, report.reason.iloc[0]
    assert reason in report.reason.iloc[0]
    if status == "rejected":
        assert kept.empty
    else:
        geom = kept.geometry.iloc[0]
        assert geom.geom_type == "MultiPolygon"
        assert geom.is_valid and geom.area > 0
        assert not shapely.has_z(geom)
        assert all(shapely.is_ccw(p.exterior) for p in geom.geoms)


def test_swapped_latitude_and_longitude_get_a_hint() -> None:
    _, report = repair(frame_of(["POINT (39.9 116.39)", "POINT (500000 4400000)"]), "Point")
    assert report.reason.tolist() == [
        "coordinates outside longitude [-180, 180] / latitude [-90, 90] "
        "(latitude and longitude swapped?)",
        "coordinates outside longitude [-180, 180] / latitude [-90, 90]",
    ]


def test_report_is_aligned_to_the_input_index() -> None:
    wkts = [c[1] for c in POLYGON_CASES]
    frame = frame_of(wkts)
    frame.index = [f"row{i}" for i in range(len(frame))]
    kept, report = repair(frame, "Polygon")
    assert list(report.index) == list(frame.index)
    assert list(report.columns) == ["status", "reason"]
    assert report.status.tolist() == [c[2] for c in POLYGON_CASES]
    assert set(kept.index) == set(report.index[report.status != "rejected"])
    assert kept["k"].tolist() == frame.loc[kept.index, "k"].tolist()
    assert (report.reason[report.status == "ok"] == "").all()
    assert (report.reason[report.status != "ok"] != "").all()


def test_bowtie_keeps_both_triangles() -> None:
    kept, _ = repair(frame_of(["POLYGON ((0 0, 2 2, 2 0, 0 2, 0 0))"]), "Polygon")
    geom = kept.geometry.iloc[0]
    assert len(geom.geoms) == 2 and geom.area == pytest.approx(2.0)


def test_line_layer() -> None:
    wkts = [
        "LINESTRING (0 0, 1 1)",
        "MULTILINESTRING ((0 0, 1 1), (2 2, 2 2))",
        "LINESTRING (3 3, 3 3)",
        "POLYGON ((0 0, 1 0, 1 1, 0 0))",
        "LINESTRING Z (0 0 5, 1 1 5)",
        "GEOMETRYCOLLECTION (POINT (0 0), LINESTRING (0 0, 1 0))",
    ]
    kept, report = repair(frame_of(wkts), "LineString")
    assert report.status.tolist() == [
        "ok",
        "repaired",
        "rejected",
        "rejected",
        "repaired",
        "repaired",
    ]
    assert report.reason.iloc[1] == "dropped 1 zero-length part(s)"
    assert report.reason.iloc[2] == "degenerate line (zero length)"
    assert report.reason.iloc[3] == "not a line (Polygon)"
    assert set(kept.geom_type) == {"MultiLineString"}
    assert kept.geometry.loc[1].equals(shapely.from_wkt("MULTILINESTRING ((0 0, 1 1))"))


def test_point_layer() -> None:
    wkts = [
        "POINT (1 2)",
        "MULTIPOINT ((1 2))",
        "MULTIPOINT ((1 2), (3 4))",
        "POINT (NaN NaN)",
        "POINT (0 0)",
    ]
    kept, report = repair(frame_of(wkts), "Point")
    assert report.status.tolist() == ["ok", "repaired", "rejected", "rejected", "ok"]
    assert report.reason.iloc[2] == "not a point (MultiPoint)"
    assert set(kept.geom_type) == {"Point"}


def test_geometry_layer_accepts_every_type_and_repairs_polygons() -> None:
    wkts = [
        "POINT (1 2)",
        "LINESTRING (0 0, 1 1)",
        "POLYGON ((0 0, 2 2, 2 0, 0 2, 0 0))",
        "LINESTRING (1 1, 1 1)",
        "POLYGON ((0 0, 1 1, 2 2, 0 0))",
    ]
    kept, report = repair(frame_of(wkts), "Geometry")
    assert report.status.tolist() == ["ok", "ok", "repaired", "rejected", "rejected"]
    assert kept.geometry.iloc[2].is_valid


def test_unknown_geometry_type() -> None:
    with pytest.raises(BadInput, match="unknown geometry type"):
        repair(frame_of(["POINT (1 2)"]), "Circle")


def test_empty_frame() -> None:
    kept, report = repair(gpd.GeoDataFrame(geometry=gpd.GeoSeries([], crs=4326)), "Polygon")
    assert kept.empty and report.empty
    assert list(report.columns) == ["status", "reason"]


def test_bad_geometries_read_from_geojson_text(tmp_path: Path) -> None:
    def feature(name: str, geometry: object) -> dict[str, object]:
        return {"type": "Feature", "properties": {"name": name}, "geometry": geometry}

    features = [
        feature(
            "unclosed ring", {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]}
        ),
        feature("ring of 3 points", {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [0, 0]]]}),
        feature("null", None),
        feature(
            "4-D point",
            {"type": "Polygon", "coordinates": [[[0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 0, 1]]]},
        ),
        feature("valid", {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}),
    ]
    path = tmp_path / "bad.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    kept, report = repair(read_file(path), "Polygon")
    assert report.status.tolist() == ["repaired", "rejected", "rejected", "repaired", "ok"]
    assert report.reason.iloc[0] == "unclosed ring closed"
    assert "ring collapsed to zero area" in report.reason.iloc[1]
    assert report.reason.iloc[2] == "null geometry"
    assert kept["name"].tolist() == ["unclosed ring", "4-D point", "valid"]


def test_unparseable_rows_are_rejected_with_the_reader_note(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text('name,geometry\na,"POINT (1 2)"\nb,"POINT (oops)"\nc,\n')
    _kept, report = repair(read_file(path), "Point")
    assert report.status.tolist() == ["ok", "rejected", "rejected"]
    assert report.reason.tolist() == ["", "unparseable WKT", "null geometry"]


def test_a_million_vertices() -> None:
    n = 1_000_000
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False)
    ring = np.column_stack([116.39 + 0.01 * np.cos(angles), 39.9 + 0.01 * np.sin(angles)])
    big = shapely.Polygon(np.vstack([ring, ring[:1]]))
    clockwise = shapely.Polygon(np.vstack([ring, ring[:1]])[::-1])
    bowtie = shapely.Polygon(np.vstack([ring[: n // 2], ring[n // 2 :][::-1], ring[:1]]))
    frame = gpd.GeoDataFrame(geometry=[big, clockwise, bowtie], crs=4326)
    kept, report = repair(frame, "Polygon")
    assert report.status.tolist()[:2] == ["ok", "repaired"]
    assert report.status.iloc[2] in ("repaired", "rejected")
    assert shapely.get_num_coordinates(kept.geometry.iloc[0]) == n + 1
    assert kept.geometry.iloc[1].area == pytest.approx(kept.geometry.iloc[0].area, rel=1e-12)
    assert shapely.is_ccw(kept.geometry.iloc[1].geoms[0].exterior)


polygon_rings = st.lists(
    st.tuples(st.floats(-10, 10, allow_nan=False), st.floats(-10, 10, allow_nan=False)),
    min_size=3,
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(st.lists(polygon_rings, min_size=1, max_size=6))
def test_random_polygons_never_break_repair(rings: list[list[tuple[float, float]]]) -> None:
    geoms = [shapely.Polygon([*r, r[0]]) for r in rings]
    frame = gpd.GeoDataFrame(geometry=geoms, crs=4326)
    kept, report = repair(frame, "Polygon")
    assert list(report.index) == list(frame.index)
    assert set(report.status) <= {"ok", "repaired", "rejected"}
    assert len(kept) == int((report.status != "rejected").sum())
    if len(kept):
        values = np.asarray(kept.geometry.values)
        assert shapely.is_valid(values).all()
        assert (shapely.area(values) > 0).all()
        assert set(shapely.get_type_id(values)) == {6}
