"""The address index is read once per store and rebuilt after its buildings or roads change.

Both stores (the conformance ``store`` fixture). Footprints are small synthetic
squares in central Helsinki, as in ``test_addresses.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import geopandas as gpd
import pytest
import shapely

from gridmap.common.errors import BadInput
from gridmap.geo.addresses import SHARED_CACHE, AddressCache, lookup_address
from gridmap.storage import Store

X, Y = 24.9400, 60.1700
D = 0.0001


def _square(dx: float) -> shapely.Polygon:
    return shapely.box(X + dx * D, Y, X + (dx + 1) * D, Y + D)


def _buildings(names: list[str], at: list[float]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"address": names, "source_id": [f"b/{n}" for n in names]},
        geometry=[_square(dx) for dx in at],
        crs=4326,
    )


@pytest.fixture
def counted(store: Store, monkeypatch: pytest.MonkeyPatch) -> tuple[Store, list[str]]:
    """The store with two buildings and a road, and the layers read from it since."""
    store.write("buildings", _buildings(["Kaivokatu 2", "Annankatu 25"], [0, 10]))
    store.write(
        "roads",
        gpd.GeoDataFrame(
            {"name": ["Kujatie"]},
            geometry=[shapely.LineString([(X + 0.002, Y - 0.001), (X + 0.0025, Y - 0.001)])],
            crs=4326,
        ),
    )
    reads: list[str] = []
    read: Callable[..., Any] = store.read

    def counting(layer: str, *args: Any, **kwargs: Any) -> Any:
        reads.append(layer)
        return read(layer, *args, **kwargs)

    monkeypatch.setattr(store, "read", counting)
    return store, reads


def test_second_lookup_reads_nothing_and_a_write_is_seen(
    counted: tuple[Store, list[str]],
) -> None:
    store, reads = counted
    cache = AddressCache(check_seconds=0)  # asks the store for changes on every lookup
    first = lookup_address(store, "Kaivokatu 2", cache=cache)
    assert first.matched == "Kaivokatu 2" and first.exact
    assert sorted(reads) == ["buildings", "roads"]
    index = cache.get(store)
    second = lookup_address(store, "Annankatu 25", cache=cache)
    assert second.matched == "Annankatu 25"
    assert lookup_address(store, "kujatie", cache=cache).source == "road"
    assert sorted(reads) == ["buildings", "roads"]  # no layer read again
    assert cache.get(store) is index  # the same index object, reused

    with pytest.raises(BadInput, match="matches no building"):
        lookup_address(store, "Uudenmaankatu 9", cache=cache)
    store.write("buildings", _buildings(["Uudenmaankatu 9"], [30]))
    found = lookup_address(store, "Uudenmaankatu 9", cache=cache)
    assert found.matched == "Uudenmaankatu 9" and found.exact
    assert X + 30 * D < found.lon < X + 31 * D
    assert sorted(reads) == ["buildings", "buildings", "roads", "roads"]  # read once more
    assert cache.get(store) is not index


def test_default_cache_is_shared_between_calls(counted: tuple[Store, list[str]]) -> None:
    store, reads = counted
    SHARED_CACHE.clear()
    try:
        lookup_address(store, "Kaivokatu 2")
        lookup_address(store, "Annankatu 25")
        lookup_address(store, "Kaivokatu 2")
        assert sorted(reads) == ["buildings", "roads"]
    finally:
        SHARED_CACHE.clear()


def test_stores_do_not_share_an_index(store: Store, tmp_path: Any) -> None:
    from gridmap.storage import open_store

    other = open_store(f"duckdb:///{tmp_path / 'other.duckdb'}", migrate=True)
    try:
        store.write("buildings", _buildings(["Kaivokatu 2"], [0]))
        other.write("buildings", _buildings(["Torikatu 1"], [5]))
        cache = AddressCache(check_seconds=60)
        assert lookup_address(store, "Kaivokatu 2", cache=cache).matched == "Kaivokatu 2"
        assert lookup_address(other, "Torikatu 1", cache=cache).matched == "Torikatu 1"
        with pytest.raises(BadInput):
            lookup_address(other, "Kaivokatu 2", cache=cache)
    finally:
        other.close()
