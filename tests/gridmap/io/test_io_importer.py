"""gridmap.io.importer end to end against the real embedded store."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from gridmap.common.errors import BadInput, ImportFailed, UnknownLayer, UnsupportedFormat
from gridmap.geo.chinacrs import from_wgs84
from gridmap.io.importer import ImportReport, ReadOptions, import_layer, import_osm
from gridmap.io.osm import DemoHierarchy, OsmConfig
from gridmap.storage import Store

Counts = Callable[[Store], dict[str, int]]


def normalized(frame: gpd.GeoDataFrame) -> np.ndarray:
    """Geometries as comparable MultiPolygons, whatever ring start and orientation."""
    geoms = np.asarray(frame.geometry.values)
    multi = np.array(
        [g if g.geom_type.startswith("Multi") else shapely.MultiPolygon([g]) for g in geoms]
    )
    return shapely.normalize(multi)


def by_source_id(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    return frame.sort_values("source_id").reset_index(drop=True)


def write_geojson(frame: gpd.GeoDataFrame, path: Path) -> Path:
    frame.to_file(path, driver="GeoJSON")
    return path


def shifted(frame: gpd.GeoDataFrame, system: str) -> gpd.GeoDataFrame:
    def fn(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(from_wgs84(xy[:, 0], xy[:, 1], system))

    out = frame.copy()
    out["geometry"] = shapely.transform(np.asarray(frame.geometry.values), fn)
    return out


# ----------------------------------------------------------------------------- files


def test_import_geojson_twice_inserts_nothing_the_second_time(
    store: Store, tmp_path: Path, beijing: gpd.GeoDataFrame
) -> None:
    path = write_geojson(beijing, tmp_path / "footprints.geojson")
    first = import_layer(store, path, layer="buildings")
    assert (first.read, first.rejected, first.inserted, first.skipped) == (40, 0, 40, 0)
    assert first.ok + first.repaired == 40
    assert first.ignored_columns == ("osm_id",)
    second = import_layer(store, path, layer="buildings")
    assert (second.inserted, second.skipped) == (0, 40)
    assert store.count("buildings") == 40
    stored = store.read("buildings")
    assert (stored["source"] == "footprints").all()
    assert stored["area_m2"].gt(0).all()  # measured when the file has none
    assert set(stored.geom_type) == {"MultiPolygon"}


@pytest.mark.parametrize("system", ["gcj02", "bd09"])
def test_chinese_web_map_files_import_to_the_original_coordinates(
    store: Store, tmp_path: Path, beijing: gpd.GeoDataFrame, system: str
) -> None:
    frame = beijing.assign(source_id=[f"b{i}" for i in range(len(beijing))])
    path = write_geojson(shifted(frame, system), tmp_path / f"{system}.geojson")
    report = import_layer(store, path, layer="buildings", read=ReadOptions(crs=system))
    assert report.inserted == len(beijing)
    stored = by_source_id(store.read("buildings"))
    original = by_source_id(frame)
    assert shapely.equals_exact(normalized(stored), normalized(original), tolerance=1e-7).all()
    moved = shapely.get_coordinates(normalized(original))
    back = shapely.get_coordinates(normalized(stored))
    assert np.abs(back - moved).max() < 1e-7


@pytest.mark.parametrize(("epsg", "tolerance"), [(3857, 1e-9), (4490, 0.0)])
def test_projected_and_cgcs2000_geopackages(
    store: Store, tmp_path: Path, beijing: gpd.GeoDataFrame, epsg: int, tolerance: float
) -> None:
    frame = beijing.assign(source_id=[f"b{i}" for i in range(len(beijing))])
    source = frame.to_crs(epsg) if epsg != 4490 else frame.set_crs(4490, allow_override=True)
    path = tmp_path / f"epsg{epsg}.gpkg"
    pyogrio.write_dataframe(source, path, layer="buildings")
    assert import_layer(store, path, layer="buildings").inserted == len(frame)
    stored = by_source_id(store.read("buildings"))
    assert shapely.equals_exact(
        normalized(stored), normalized(by_source_id(frame)), tolerance=tolerance
    ).all()


def test_csv_events_with_types_and_bad_values(store: Store, tmp_path: Path) -> None:
    text = (
        "id,category,status,reported_at,synthetic,经度,纬度,remark\n"
        "e1,dispute,reported,2024-05-01T08:30:00+08:00,是,116.391349,39.907375,x\n"
        "e2,safety_hazard,closed,not a date,false,116.4609,39.9087,y\n"
        "e3,city_management,reported,2024-05-02 10:00,maybe,116.40,39.91,z\n"
        "e4,dispute,reported,2024-05-02,true,,39.91,no coordinates\n"
    )
    path = tmp_path / "events.csv"
    path.write_text(text, encoding="utf-8-sig")
    report = import_layer(store, path, layer="events", source="hotline")
    assert (report.read, report.ok, report.repaired, report.rejected) == (4, 1, 2, 1)
    assert report.ignored_columns == ("经度", "纬度", "remark")
    rows = report.rows
    assert "reported_at: 'not a date' is not a valid timestamp" in rows.reason.iloc[1]
    assert "synthetic: 'maybe' is not a valid bool" in rows.reason.iloc[2]
    assert rows.reason.iloc[3] == "missing or non-numeric 经度/纬度"
    stored = store.read("events").sort_values("source_id").reset_index(drop=True)
    assert stored["source_id"].tolist() == ["e1", "e2", "e3"]
    assert (stored["source"] == "hotline").all()
    assert stored["reported_at"].iloc[0] == pd.Timestamp("2024-05-01T00:30:00Z")
    assert stored["synthetic"].tolist()[:2] == [True, False]
    assert pd.isna(stored["reported_at"].iloc[1]) and pd.isna(stored["synthetic"].iloc[2])
    assert stored.geometry.iloc[0].equals(shapely.Point(116.391349, 39.907375))


def test_duplicate_ids_fall_back_to_content_keys(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "pois.csv"
    path.write_text("id,name,lon,lat\n1,a,116.39,39.9\n1,b,116.40,39.9\n2,c,116.41,39.9\n")
    report = import_layer(store, path, layer="key_areas")
    assert report.inserted == 3
    assert any("duplicate" in n for n in report.notes)
    assert store.read("key_areas")["source_id"].isna().all()
    assert import_layer(store, path, layer="key_areas").inserted == 0


def test_identical_rows_are_stored_once_and_said_so(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "twins.csv"
    path.write_text("n,category,lon,lat\n1,dispute,116.39,39.9\n2,dispute,116.39,39.9\n")
    report = import_layer(store, path, layer="events")
    assert (report.inserted, report.skipped) == (1, 1)
    assert report.notes == (
        "1 row(s) repeat another row of the file (same geometry and events columns) "
        "and are stored once",
    )


def test_ids_become_source_ids_not_store_ids(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "roads.csv"
    path.write_text(
        'id,name,class,geometry\n1000,长安街,primary,"LINESTRING (116.38 39.9, 116.4 39.9)"\n'
    )
    import_layer(store, path, layer="roads")
    stored = store.read("roads")
    assert stored["id"].tolist() == [1] and stored["source_id"].tolist() == ["1000"]
    assert stored["length_m"].iloc[0] == pytest.approx(1707, rel=0.01)


def test_workers_table_without_geometry(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "workers.csv"
    path.write_text('name,role,grid_codes\n张三,grid_worker,"370285001001001,370285001001002"\n')
    report = import_layer(store, path, layer="workers")
    assert report.inserted == 1
    assert store.read("workers")["grid_codes"].iloc[0] == ["370285001001001", "370285001001002"]


def test_multi_layer_geopackage_picks_the_layer_named_like_the_target(
    store: Store, tmp_path: Path, beijing: gpd.GeoDataFrame
) -> None:
    path = tmp_path / "city.gpkg"
    pyogrio.write_dataframe(beijing.head(5), path, layer="buildings")
    pyogrio.write_dataframe(
        beijing.head(2).set_geometry(beijing.head(2).representative_point()), path, layer="pois"
    )
    assert import_layer(store, path, layer="buildings").inserted == 5
    assert (
        import_layer(store, path, layer="key_areas", read=ReadOptions(file_layer="pois")).inserted
        == 2
    )


def test_progress_of_a_file_import(store: Store, tmp_path: Path, beijing: gpd.GeoDataFrame) -> None:
    steps: list[str] = []
    path = write_geojson(beijing.head(3), tmp_path / "b.geojson")
    import_layer(store, path, layer="buildings", progress=lambda s, d, t: steps.append(s))
    assert steps == ["read", "repair", "write buildings", "done"]


def test_report_table() -> None:
    rows = pd.DataFrame(
        {
            "status": ["ok", "repaired", "repaired", "rejected"],
            "reason": [
                "",
                "ring winding corrected",
                "ring winding corrected; reduced to 2-D (Z/M values dropped)",
                "null geometry",
            ],
        }
    )
    report = ImportReport("buildings", "/x/a.gpkg", 4, 1, 2, 1, 2, 1, rows, ("foo",), ("n",))
    lines = report.to_table()
    assert lines[0] == "buildings ← a.gpkg"
    assert lines[1] == "  read 4 · ok 1 · repaired 2 · rejected 1 · inserted 2 · skipped 1"
    assert "  repaired     2 × ring winding corrected" in lines
    assert "  repaired     1 × reduced to 2-D (Z/M values dropped)" in lines
    assert "  rejected     1 × null geometry" in lines
    assert lines[-2:] == ["  columns not imported: foo", "  note: n"]


# ----------------------------------------------------------------------------- bad input


@pytest.fixture
def loaded(store: Store, tmp_path: Path, beijing: gpd.GeoDataFrame) -> Store:
    """A store that already holds one import, to see that failures change nothing."""
    import_layer(store, write_geojson(beijing, tmp_path / "first.geojson"), layer="buildings")
    return store


def _truncated(tmp_path: Path, beijing: gpd.GeoDataFrame) -> Path:
    whole = tmp_path / "whole.gpkg"
    pyogrio.write_dataframe(beijing, whole)
    cut = tmp_path / "truncated.gpkg"
    cut.write_bytes(whole.read_bytes()[:8192])
    return cut


def _garbage(tmp_path: Path, beijing: gpd.GeoDataFrame) -> Path:
    path = tmp_path / "garbage.geojson"
    path.write_bytes(random.Random(7).randbytes(5000))
    return path


def _no_columns(tmp_path: Path, beijing: gpd.GeoDataFrame) -> Path:
    path = tmp_path / "nocoords.csv"
    path.write_text("name,address\na,b\n")
    return path


@pytest.mark.parametrize(
    ("make", "kwargs", "error", "match"),
    [
        (_truncated, {}, BadInput, r"truncated\.gpkg"),
        (_garbage, {}, BadInput, r"garbage\.geojson: cannot read"),
        (_no_columns, {}, BadInput, r"nocoords\.csv: no coordinate columns"),
        (_no_columns, {"read": ReadOptions(crs="EPSG:99999")}, BadInput, "unknown CRS"),
        (_no_columns, {"layer": "parcels"}, UnknownLayer, "unknown layer 'parcels'"),
    ],
    ids=["truncated gpkg", "garbage bytes", "missing columns", "unknown crs", "unknown layer"],
)
def test_bad_files_leave_the_store_unchanged(
    loaded: Store,
    tmp_path: Path,
    beijing: gpd.GeoDataFrame,
    counts: Counts,
    make: Callable[[Path, gpd.GeoDataFrame], Path],
    kwargs: dict[str, str],
    error: type[Exception],
    match: str,
) -> None:
    before = counts(loaded)
    path = make(tmp_path, beijing)
    args = {"layer": "buildings", **kwargs}
    with pytest.raises(error, match=match):
        import_layer(loaded, path, **args)
    assert counts(loaded) == before


def test_unknown_suffix_and_missing_file(loaded: Store, tmp_path: Path, counts: Counts) -> None:
    before = counts(loaded)
    (tmp_path / "table.xlsx").write_bytes(b"PK")
    with pytest.raises(UnsupportedFormat, match=r"table\.xlsx"):
        import_layer(loaded, tmp_path / "table.xlsx", layer="buildings")
    with pytest.raises(BadInput, match="no such file"):
        import_layer(loaded, tmp_path / "gone.geojson", layer="buildings")
    assert counts(loaded) == before


def test_all_rows_rejected_is_reported_not_raised(store: Store, tmp_path: Path) -> None:
    doc = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {"n": 1}, "geometry": None},
            {
                "type": "Feature",
                "properties": {"n": 2},
                "geometry": {"type": "Point", "coordinates": [116.39, 39.9]},
            },
        ],
    }
    path = tmp_path / "points.geojson"
    path.write_text(json.dumps(doc))
    report = import_layer(store, path, layer="buildings")
    assert (report.read, report.rejected, report.inserted) == (2, 2, 0)
    assert report.rows.reason.tolist() == ["null geometry", "not a polygon (Point)"]
    assert store.count("buildings") == 0


# ----------------------------------------------------------------------------- OSM


def test_import_osm_helsinki(store: Store, helsinki: Path) -> None:
    steps: list[tuple[str, int, int]] = []
    reports = import_osm(store, helsinki, progress=lambda s, d, t: steps.append((s, d, t)))
    b = reports["buildings"]
    assert (b.read, b.ok, b.repaired, b.rejected, b.inserted) == (486, 474, 9, 3, 483)
    assert reports["roads"].inserted == 2469
    assert reports["key_areas"].inserted == 38
    units = reports["admin_units"]
    assert (units.read, units.inserted) == (3, 3)
    assert "no community boundary" in units.notes[0]
    assert store.count("buildings") == 483
    assert steps[-1][1] == steps[-1][2] and {s for s, _, _ in steps} >= {"write roads", "commit"}
    # Repaired footprints are measured again after repair.
    stored = store.read("buildings").set_index("source_id")
    repaired = b.rows.index[b.rows.status == "repaired"]
    assert len(repaired) == 9
    assert (stored["area_m2"] > 0).all()


def test_import_osm_twice_inserts_nothing(store: Store, test_pbf: Path, counts: Counts) -> None:
    first = import_osm(store, test_pbf)
    assert first["buildings"].inserted == 2193
    assert first["roads"].inserted == 331
    assert first["key_areas"].inserted == 3
    before = counts(store)
    second = import_osm(store, test_pbf)
    assert all(r.inserted == 0 for r in second.values())
    assert second["buildings"].skipped == 2193
    assert counts(store) == before


def test_generated_hierarchy_covers_the_extract(store: Store, helsinki: Path) -> None:
    config = OsmConfig(
        hierarchy=DemoHierarchy(city_code="370285", town_code="002", community_code="003")
    )
    import_osm(store, helsinki, config=config)
    units = store.read("admin_units").set_index("code")
    assert units.loc["370285", "level"] == "city"
    assert units.loc["370285002", "parent_code"] == "370285"
    assert units.loc["370285002003", "parent_code"] == "370285002"
    assert units.loc["370285002003", "name"] == "演示社区"
    community = units.loc["370285002003", "geometry"]
    buildings = store.read("buildings").geometry
    roads = store.read("roads").geometry
    assert community.covers(shapely.union_all(np.asarray(buildings.values)))
    assert community.covers(shapely.union_all(np.asarray(roads.values)))


def test_failure_in_the_middle_leaves_the_store_unchanged(
    store: Store, test_pbf: Path, helsinki: Path, counts: Counts
) -> None:
    import_osm(store, test_pbf)
    before = counts(store)

    def fail_at_roads(step: str, done: int, total: int) -> None:
        if step == "write roads":  # buildings are written by now
            raise RuntimeError("connection lost")

    with pytest.raises(
        ImportFailed, match="failed at roads: connection lost; the store is unchanged"
    ):
        import_osm(store, helsinki, progress=fail_at_roads)
    assert counts(store) == before
    # And the same import succeeds afterwards.
    assert import_osm(store, helsinki)["buildings"].inserted == 483


def test_failure_on_an_empty_store(store: Store, helsinki: Path, counts: Counts) -> None:
    def fail_at_commit(step: str, done: int, total: int) -> None:
        if step == "commit":
            raise RuntimeError("disk full")

    with pytest.raises(ImportFailed):
        import_osm(store, helsinki, progress=fail_at_commit)
    assert set(counts(store).values()) == {0}


def test_bad_extract_leaves_the_store_unchanged(
    store: Store, tmp_path: Path, test_pbf: Path, counts: Counts
) -> None:
    import_osm(store, test_pbf)
    before = counts(store)
    junk = tmp_path / "junk.osm.pbf"
    junk.write_bytes(random.Random(3).randbytes(3000))
    with pytest.raises(BadInput, match=r"junk\.osm\.pbf"):
        import_osm(store, junk)
    assert counts(store) == before
