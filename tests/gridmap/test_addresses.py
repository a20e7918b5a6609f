"""Address lookup over the store's buildings and roads (gridmap.geo.addresses), on both stores.

Footprints are small synthetic squares and lines in central Helsinki with
Finnish and Chinese addresses; the Open311 tests use the real demo buildings.
"""

from __future__ import annotations

import geopandas as gpd
import pytest
import shapely

from gridmap.common.errors import BadInput
from gridmap.geo.addresses import lookup_address, normalize_address
from gridmap.storage import Store

X, Y = 24.9400, 60.1700
D = 0.0001  # about 6 m east-west, 11 m north-south


def _square(dx: float, dy: float, size: float = 1.0) -> shapely.Polygon:
    return shapely.box(X + dx * D, Y + dy * D, X + (dx + size) * D, Y + (dy + size) * D)


@pytest.fixture
def places(store: Store) -> Store:
    buildings = gpd.GeoDataFrame(
        {
            "name": ["Ateneum", None, None, None, None, "Oodi", "Oodi"],
            "address": [
                "Kaivokatu 2",
                "Annankatu 25",
                "Annankatu 27",
                "演示路８号",
                "Torikatu 1",
                None,
                None,
            ],
        },
        geometry=[
            _square(0, 0, 3),
            _square(10, 0),
            _square(12, 0),
            _square(20, 0),
            _square(30, 0),
            _square(40, 0),
            _square(40, 80),  # a second "Oodi" about 900 m north
        ],
        crs=4326,
    )
    roads = gpd.GeoDataFrame(
        {"name": ["Mannerheimintie", "Mannerheimintie", "Kujatie"]},
        geometry=[
            shapely.LineString([(X, Y - 0.001), (X, Y - 0.004)]),
            shapely.LineString([(X, Y - 0.004), (X, Y - 0.008)]),
            shapely.LineString([(X + 0.002, Y - 0.001), (X + 0.0025, Y - 0.001)]),
        ],
        crs=4326,
    )
    store.write("buildings", buildings)
    store.write("roads", roads)
    return store


def test_normalize_folds_case_width_and_punctuation() -> None:
    assert normalize_address(" Kaivokatu 2, HELSINKI ") == "kaivokatu 2 helsinki"
    assert normalize_address("演示路８号") == "演示路8号"
    assert normalize_address("  ,, ") == ""


def test_exact_fuzzy_and_road_matches(places: Store) -> None:
    ateneum = _square(0, 0, 3)
    for text in ("Kaivokatu 2", "KAIVOKATU 2", "Ateneum", "Kaivokatu 2, Helsinki", "Ateneumm"):
        found = lookup_address(places, text)
        assert ateneum.contains(shapely.Point(found.lon, found.lat)), text
        assert found.source == "building"
    assert lookup_address(places, "Kaivokatu 2").exact
    assert not lookup_address(places, "Ateneumm").exact
    chinese = lookup_address(places, "演示路8号")
    assert chinese.matched == "演示路８号" and _square(20, 0).contains(
        shapely.Point(chinese.lon, chinese.lat)
    )
    road = lookup_address(places, "Kujatie")
    assert road.source == "road" and road.lat == pytest.approx(Y - 0.001)
    assert X + 0.002 < road.lon < X + 0.0025


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("Nowhere Street 9", "matches no building or road"),
        ("Annankatu 26", "matches no building or road"),  # no such number: never 25 or 27
        ("Annankatu", "ambiguous"),  # 25 and 27 equally close
        ("Mannerheimintie", "ambiguous"),  # a road 780 m long
        ("Oodi", "ambiguous"),  # two buildings 900 m apart
    ],
)
def test_unknown_and_ambiguous_addresses_are_bad_input(
    places: Store, text: str, fragment: str
) -> None:
    with pytest.raises(BadInput, match=fragment) as exc:
        lookup_address(places, text)
    assert exc.value.field == "address_string"


def test_an_empty_store_finds_nothing(store: Store) -> None:
    with pytest.raises(BadInput, match="matches no building or road"):
        lookup_address(store, "Kaivokatu 2")
