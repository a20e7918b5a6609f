"""``PostGISStore.feature_page``: GeoJSON features and ``numberMatched`` from one statement.

PostGIS only (the embedded store keeps the frame path). The page must hold the
rows :meth:`read` returns, written as :func:`api.geojson.feature_collection`
writes them from that frame, and ``numberMatched`` must equal :meth:`count`
for every limit and offset, counted or deduced from a short page.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from api.geojson import feature_collection
from gridmap.common.errors import BadInput
from gridmap.common.model import layer_schema
from gridmap.storage import Prefix, open_store
from gridmap.storage.cql import parse_filter
from gridmap.storage.featurejson import FeaturePages, page_query
from gridmap.storage.postgis import PostGISStore

pytestmark = pytest.mark.postgis

AREA = "990100001001002"


def _grids() -> gpd.GeoDataFrame:
    """Five grids whose columns cover every column type, edge values included."""
    stamps = pd.to_datetime(
        pd.Series(
            [
                "2026-01-01T00:00:00Z",
                "2026-01-01T08:00:00.000001Z",
                "1969-12-31T23:59:59.5Z",
                None,
                "2026-06-30T23:59:59.999999Z",
            ]
        ),
        utc=True,
        format="ISO8601",
    )
    return gpd.GeoDataFrame(
        {
            "code": [f"99010000100100{i}" for i in (1, 2, 2, 3, 2)],
            "name": ["一", None, "", 'tab\there "q" \\ 𠮷', "control \x1f char"],
            "households": [1, None, 0, -5, 10**12 + 1],
            "workers": [["张三", "李四"], [], None, ["", None], ["x"]],
            "area_m2": [1.0, 0.1, None, 1e15, -2.5e-7],
            "valid_from": stamps,
            "valid_to": [None, stamps[0], None, None, stamps[1]],
            "source": "test",
            "source_id": [f"g{i}" for i in range(5)],
        },
        geometry=[shapely.box(24.9 + i / 100, 60.1, 24.905 + i / 100, 60.105) for i in range(5)],
        crs=4326,
    )


@pytest.fixture
def pg(pg_migrated_url: str) -> Iterator[PostGISStore]:
    store = open_store(pg_migrated_url, migrate=True)
    assert isinstance(store, PostGISStore)
    try:
        store.write("grids", _grids())
        yield store
    finally:
        store.close()


def _frame_page(store: PostGISStore, props: list[str], **read: Any) -> list[dict[str, Any]]:
    frame = store.read("grids", **read)
    return json.loads(feature_collection(frame, properties=props, members={}))["features"]  # type: ignore[no-any-return]


def test_the_postgis_store_writes_pages(pg: PostGISStore) -> None:
    assert isinstance(pg, FeaturePages)


def test_page_equals_the_frame_path(pg: PostGISStore) -> None:
    props = ["code", "name", "households", "workers", "area_m2", "valid_from", "valid_to"]
    page = pg.feature_page("grids", properties=props, limit=10)
    features = json.loads(f"[{page.features}]")
    assert features == _frame_page(pg, props)
    for a, b in zip(features, _frame_page(pg, props), strict=True):
        for name in props:  # 1.0 stays a float, integers stay integers
            assert type(a["properties"][name]) is type(b["properties"][name]), name
    assert features[2]["properties"]["valid_from"] == "1969-12-31T23:59:59.500000Z"
    assert features[4]["properties"]["households"] == 10**12 + 1
    assert (page.returned, page.matched) == (5, 5)


def test_no_properties_and_property_order(pg: PostGISStore) -> None:
    none = json.loads(f"[{pg.feature_page('grids', properties=[], limit=1).features}]")
    assert none[0]["properties"] == {}
    order = ["valid_to", "code"]
    one = json.loads(f"[{pg.feature_page('grids', properties=order, limit=1).features}]")
    assert list(one[0]["properties"]) == order


def test_latitude_first(pg: PostGISStore) -> None:
    page = pg.feature_page("grids", properties=[], limit=1, lat_first=True)
    ring = json.loads(page.features)["geometry"]["coordinates"][0]
    assert ring[0] == [60.1, 24.905]


def test_number_matched_is_exact_for_every_page(pg: PostGISStore) -> None:
    """Counted for full or empty pages, deduced from short ones: always ``count()``."""
    filters = [
        None,
        parse_filter("households >= 0", properties={"households": "int"}),
        parse_filter("households > 100000", properties={"households": "int"}),
    ]
    for cql in filters:
        total = pg.count("grids", cql=cql)
        for limit in (1, 2, 3, 5, 6):
            for offset in range(0, 8):
                page = pg.feature_page("grids", properties=[], limit=limit, offset=offset, cql=cql)
                ids = pg.read("grids", limit=limit, offset=offset, cql=cql)["id"].tolist()
                got = [f["id"] for f in json.loads(f"[{page.features}]")]
                where = (cql and cql.tree, limit, offset)
                assert (got, page.returned, page.matched) == (ids, len(ids), total), where


def test_huge_offset_reads_an_empty_page(pg: PostGISStore) -> None:
    page = pg.feature_page("grids", properties=["code"], limit=10, offset=10**30)
    assert (page.features, page.returned, page.matched) == ("", 0, 5)


def test_area_scope_and_row_level_security(pg: PostGISStore) -> None:
    ids = pg.read("grids", where={"code": Prefix((AREA,))})["id"].tolist()
    with pg.scoped([AREA]):
        # The caller's filter and, without it, row-level security as the last line.
        for where in ({"code": Prefix((AREA,))}, None):
            page = pg.feature_page("grids", properties=["code"], limit=2, where=where)
            got = [f["id"] for f in json.loads(f"[{page.features}]")]
            assert got == ids[:2] and page.matched == len(ids) == 3
    with pg.scoped([]):
        page = pg.feature_page("grids", properties=["code"], limit=2)
        assert (page.returned, page.matched) == (0, 0)


def test_bbox_filter(pg: PostGISStore) -> None:
    box = (24.9, 60.1, 24.915, 60.105)
    page = pg.feature_page("grids", properties=[], limit=10, bbox=box)
    got = [f["id"] for f in json.loads(f"[{page.features}]")]
    assert got == pg.read("grids", bbox=box)["id"].tolist() and page.matched == len(got)


def test_bad_requests(pg: PostGISStore) -> None:
    with pytest.raises(BadInput, match="no geometry"):
        pg.feature_page("workers", properties=[], limit=1)
    with pytest.raises(BadInput, match="unknown property"):
        pg.feature_page("grids", properties=["code", "nope"], limit=1)
    with pytest.raises(BadInput):
        pg.feature_page("grids", properties=[], limit=1, offset=-1)
    with pytest.raises(KeyError):
        page_query(layer_schema("grids"), ["nope"], "", limit=1, offset=0)
