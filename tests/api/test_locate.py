"""``/locate`` against a brute-force point-in-polygon, bad coordinates, privacy.

The world is the real Helsinki extract divided into grids by ``run_demo``
(buildings and streets from OSM; events SYNTHETIC).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pyproj
import pytest
import shapely
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.main import create_app
from api.security import get_optional_principal
from gridmap.access import Principal
from gridmap.demo import run_demo
from gridmap.locate import Locator, LocatorCache
from gridmap.storage import Store, open_store
from tests.api.conftest import _settings


@pytest.fixture(scope="module")
def world() -> Iterator[Store]:
    store = open_store(":memory:", migrate=True)
    run_demo(store, events=50)
    try:
        yield store
    finally:
        store.close()


def _app(store: Store, principal: Principal | None = None) -> FastAPI:
    app = create_app(_settings(), store=store)
    if principal is not None:
        app.dependency_overrides[get_optional_principal] = lambda: principal
    return app


@pytest.fixture(scope="module")
def client(world: Store) -> Iterator[TestClient]:
    with TestClient(_app(world)) as c:
        yield c


def _brute_force(world: Store, xs: np.ndarray, ys: np.ndarray) -> list[str | None]:
    grids = world.read("grids", where={"valid_to": None}).sort_values("id")
    out: list[str | None] = []
    for x, y in zip(xs, ys, strict=True):
        p = shapely.Point(x, y)
        hit = [c for c, g in zip(grids["code"], grids.geometry, strict=True) if g.intersects(p)]
        out.append(hit[0] if hit else None)
    return out


def test_post_matches_brute_force_point_in_polygon(world: Store, client: TestClient) -> None:
    minx, miny, maxx, maxy = world.bounds("grids")
    rng = np.random.default_rng(7)
    n = 600
    xs = rng.uniform(minx - 0.002, maxx + 0.002, n)
    ys = rng.uniform(miny - 0.002, maxy + 0.002, n)
    # Vertices of grid boundaries (shared edges): the lowest grid id wins.
    grids = world.read("grids", where={"valid_to": None})
    verts = shapely.get_coordinates(np.asarray(grids.geometry.values))[:50]
    xs, ys = np.concatenate([xs, verts[:, 0]]), np.concatenate([ys, verts[:, 1]])
    r = client.post("/locate", json={"points": np.column_stack([xs, ys]).tolist(), "crs": "wgs84"})
    assert r.status_code == 200, r.text
    got = [None if a["grid"] is None else a["grid"]["code"] for a in r.json()["results"]]
    assert got == _brute_force(world, xs, ys)
    assert any(g is None for g in got) and sum(g is not None for g in got) > n // 2


def test_get_one_point_in_a_grid(world: Store, client: TestClient) -> None:
    grids = world.read("grids", where={"valid_to": None})
    p = grids.geometry.iloc[3].representative_point()
    r = client.get("/locate", params={"lon": p.x, "lat": p.y, "crs": "wgs84"})
    assert r.status_code == 200
    body = r.json()
    assert body["grid"]["code"] == grids["code"].iloc[3]
    assert [u["level"] for u in body["admin_units"]] == ["city", "town", "community"]
    # An anonymous viewer learns that a worker covers the grid, never the name.
    assert body["workers"] and all(set(w) == {"role"} for w in body["workers"])
    assert all(k["distance_m"] <= 200 for k in body["key_areas"])
    dists = [k["distance_m"] for k in body["key_areas"]]
    assert dists == sorted(dists)


def test_key_areas_match_metric_distances(world: Store, client: TestClient) -> None:
    keys = world.read("key_areas")
    p = keys.geometry.iloc[0].representative_point()
    r = client.get("/locate", params={"lon": p.x, "lat": p.y, "crs": "wgs84", "radius": 500})
    got = r.json()["key_areas"]
    metric = keys.to_crs(32635)  # UTM 35N, the zone of Helsinki
    here = shapely.Point(
        *pyproj.Transformer.from_crs(4326, 32635, always_xy=True).transform(p.x, p.y)
    )
    expected = sorted(
        (round(float(g.distance(here)), 1), int(i))
        for i, g in zip(keys["id"], metric.geometry, strict=True)
        if g.distance(here) <= 500
    )[:5]
    assert [k["id"] for k in got] == [i for _, i in expected]
    assert [k["distance_m"] for k in got] == pytest.approx([d for d, _ in expected], abs=0.2)


def test_outside_the_jurisdiction_is_200_with_nulls(client: TestClient) -> None:
    for q in ({"lon": 0, "lat": 0, "crs": "wgs84"}, {"lon": 116.4, "lat": 39.9, "crs": "gcj02"}):
        r = client.get("/locate", params=q)
        assert r.status_code == 200
        assert r.json()["grid"] is None and r.json()["admin_units"] == []


def test_crs_conversions_reach_the_same_grid(world: Store, client: TestClient) -> None:
    p = world.read("grids", where={"valid_to": None}).geometry.iloc[5].representative_point()
    mx, my = pyproj.Transformer.from_crs(4326, 3857, always_xy=True).transform(p.x, p.y)
    codes = set()
    for q in (
        {"lon": p.x, "lat": p.y, "crs": "wgs84"},
        {"lon": p.x, "lat": p.y, "crs": "EPSG:4490"},
        {"lon": p.x, "lat": p.y, "crs": "cgcs2000"},
        {"lon": mx, "lat": my, "crs": "EPSG:3857"},
    ):
        r = client.get("/locate", params=q)
        assert r.status_code == 200, (q, r.text)
        codes.add(r.json()["grid"]["code"])
    assert len(codes) == 1


BAD_GET = [
    ("lon=nan&lat=60&crs=wgs84", "finite"),
    ("lon=inf&lat=60&crs=wgs84", "finite"),
    ("lon=-inf&lat=60&crs=wgs84", "finite"),
    ("lon=1e400&lat=60&crs=wgs84", "finite"),
    ("lon=abc&lat=60&crs=wgs84", "number"),
    ("lon=null&lat=60&crs=wgs84", "number"),
    ("lon=&lat=60&crs=wgs84", "required"),
    ("lat=60&crs=wgs84", "required"),
    ("lon=24&lat=90.0000001&crs=wgs84", "latitude"),
    ("lon=24&lat=-90.0000001&crs=wgs84", "latitude"),
    ("lon=180.5&lat=60&crs=wgs84", "longitude"),
    ("lon=24&lat=60", "crs is required"),
    ("lon=24&lat=60&crs=", "crs is required"),
    ("lon=24&lat=60&crs=mars", "unknown crs"),
    ("lon=24&lat=60&crs=EPSG:999999", "unknown crs"),
    ("lon=24&lat=60&crs=wgs84&crs=gcj02", "repeated"),
    ("lon=24&lat=60&crs=wgs84&srs=x", "unknown query parameter"),
    ("lon=24&lat=60&crs=wgs84&radius=-1", "radius"),
    ("lon=24&lat=60&crs=wgs84&radius=1e9", "radius"),
]


@pytest.mark.parametrize(("query", "fragment"), BAD_GET)
def test_bad_get_is_400_naming_the_problem(client: TestClient, query: str, fragment: str) -> None:
    r = client.get(f"/locate?{query}")
    assert r.status_code == 400, r.text
    assert fragment in r.json()["description"]


BAD_POST: list[tuple[bytes | dict[str, object], str]] = [
    ({"points": [[24.9, 60.1]]}, "crs"),
    ({"points": [[24.9, 60.1]], "crs": "nope"}, "unknown crs"),
    ({"points": [], "crs": "wgs84"}, "points"),
    ({"points": [[]], "crs": "wgs84"}, "points.0"),
    ({"points": [[24.9]], "crs": "wgs84"}, "points.0"),
    ({"points": [[24.9, 60.1, 0, 0]], "crs": "wgs84"}, "points.0"),
    ({"points": [["24.9", 60.1]], "crs": "wgs84"}, "points.0.0"),
    ({"points": [[None, 60.1]], "crs": "wgs84"}, "points.0.0"),
    ({"points": [[True, 60.1]], "crs": "wgs84"}, "points.0.0"),
    ({"points": None, "crs": "wgs84"}, "points"),
    ({"points": [[24.9, 90.0000001]], "crs": "wgs84"}, "latitude"),
    ({"points": [[24.9, 60.1]] * 10_001, "crs": "wgs84"}, "10000"),
    ({"points": [[24.9, 60.1]], "crs": "wgs84", "extra": 1}, "extra"),
    (b'{"points": [[NaN, 60.1]], "crs": "wgs84"}', "points.0.0"),
    (b'{"points": [[Infinity, 60.1]], "crs": "wgs84"}', "points.0.0"),
    (b'{"points": [[1e400, 60.1]], "crs": "wgs84"}', "points.0.0"),
    (b'{"points": [[24.9, 60.1]], "crs": "wgs84"', "body"),
    (b"\xff\xfe", "body"),
]


@pytest.mark.parametrize(("body", "fragment"), BAD_POST, ids=range(len(BAD_POST)))
def test_bad_post_is_400_naming_the_problem(
    client: TestClient, body: bytes | dict[str, object], fragment: str
) -> None:
    if isinstance(body, bytes):
        r = client.post("/locate", content=body, headers={"Content-Type": "application/json"})
    else:
        r = client.post("/locate", json=body)
    assert r.status_code == 400, r.text
    assert fragment in r.json()["description"]


def test_wrong_content_type_is_415(client: TestClient) -> None:
    r = client.post("/locate", content=b"points=1", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415


def test_workers_masked_inside_the_area_and_hidden_outside(world: Store) -> None:
    grids = world.read("grids", where={"valid_to": None}).sort_values("code")
    a, b = grids.iloc[0], grids.iloc[-1]
    pa, pb = a.geometry.representative_point(), b.geometry.representative_point()
    worker = Principal("wb", "grid_worker", (b["code"],))
    with TestClient(_app(world, worker)) as c:
        body = {"points": [[pa.x, pa.y], [pb.x, pb.y]], "crs": "wgs84"}
        ra, rb = c.post("/locate", json=body).json()["results"]
    assert ra["grid"] is None and ra["workers"] == []
    assert a["code"] not in str(ra)
    assert rb["grid"]["code"] == b["code"]
    names = [w["name"] for w in rb["workers"]]
    assert names and all("*" in n for n in names)
    full = world.read("workers")["name"].tolist()
    assert not any(n in full for n in names)


def test_cache_rebuilds_when_the_store_changes(world: Store) -> None:
    cache = LocatorCache(check_seconds=0)
    first = cache.get(world)
    assert cache.get(world) is first
    key = world.read("key_areas", limit=1).copy()
    key["source_id"] = "test/extra"
    world.write("key_areas", key.drop(columns=["id"]))
    try:
        assert cache.get(world) is not first
    finally:
        world.delete("key_areas", where={"source_id": "test/extra"})


def test_locator_reads_the_same_grids_on_both_stores(filled: Store) -> None:
    loc = Locator.from_store(filled)
    assert sorted(loc.grids["code"]) == ["990100001001002", "990100001001003"]
    started = time.perf_counter()
    found = loc.locate(np.array([24.94]), np.array([60.17]))
    assert time.perf_counter() - started < 5
    assert len(found.grid) == 1
