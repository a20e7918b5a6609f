"""``/locate`` against a brute-force point-in-polygon, bad coordinates, privacy.

The world is the real Helsinki extract divided into grids by ``run_demo``
(buildings and streets from OSM; events SYNTHETIC).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.main import create_app
from gridmap.common.settings import SecuritySettings
from gridmap.demo.job import run_demo
from gridmap.geo.locate import LOOKUP_LAYERS, Locator, LocatorCache
from gridmap.security.auth import add_user, issue_api_key, issue_token
from gridmap.storage import Store, open_store
from gridmap.storage.changes import data_version
from tests.api.conftest import _settings


@pytest.fixture(scope="module")
def world() -> Iterator[Store]:
    store = open_store(":memory:", migrate=True)
    run_demo(store, events=50)
    try:
        yield store
    finally:
        store.close()


def _app(store: Store, *, check_seconds: float | None = None) -> FastAPI:
    app = create_app(_settings(), store=store)
    if check_seconds is not None:
        app.state.locator_cache = LocatorCache(check_seconds=check_seconds)
    return app


def _bearer(store: Store, name: str, role: str, areas: list[str]) -> dict[str, str]:
    """Authorization header of a real user added to *store* (token signed like the app's)."""
    user = add_user(store, name, role=role, areas=areas)
    token = issue_token(user, SecuritySettings().token_config())
    return {"Authorization": f"Bearer {token}"}


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
    headers = _bearer(world, "locate_wb", "grid_worker", [b["code"]])
    with TestClient(_app(world)) as c:
        body = {"points": [[pa.x, pa.y], [pb.x, pb.y]], "crs": "wgs84"}
        ra, rb = c.post("/locate", json=body, headers=headers).json()["results"]
        # GET answers the same as POST for the same caller.
        for p, expected in ((pa, ra), (pb, rb)):
            one = c.get("/locate", params={"lon": p.x, "lat": p.y, "crs": "wgs84"}, headers=headers)
            assert one.json() == expected
        bad = c.get(
            "/locate",
            params={"lon": pb.x, "lat": pb.y, "crs": "wgs84"},
            headers={"Authorization": "Bearer not-a-token"},
        )
    assert ra["grid"] is None and ra["workers"] == []
    assert a["code"] not in str(ra)
    assert rb["grid"]["code"] == b["code"]
    names = [w["name"] for w in rb["workers"]]
    assert names and all("*" in n for n in names)
    full = world.read("workers")["name"].tolist()
    assert not any(n in full for n in names)
    # A credential that does not verify is refused, never treated as anonymous.
    assert bad.status_code == 401


def test_api_key_callers_see_roles_not_names(world: Store) -> None:
    add_user(world, "locate_hotline", role="external_system")
    key = issue_api_key(world, "locate_hotline")
    p = world.read("grids", where={"valid_to": None}).geometry.iloc[2].representative_point()
    with TestClient(_app(world)) as c:
        r = c.get(
            "/locate", params={"lon": p.x, "lat": p.y, "crs": "wgs84"}, headers={"X-API-Key": key}
        )
        wrong = c.get(
            "/locate", params={"lon": p.x, "lat": p.y, "crs": "wgs84"}, headers={"X-API-Key": "x"}
        )
    assert r.status_code == 200 and r.json()["grid"] is not None
    assert r.json()["workers"] and all(set(w) == {"role"} for w in r.json()["workers"])
    assert wrong.status_code == 401


def test_get_is_documented_in_the_openapi_document(client: TestClient) -> None:
    op = client.app.openapi()["paths"]["/locate"]["get"]  # type: ignore[attr-defined]
    assert [p["name"] for p in op["parameters"]] == ["lon", "lat", "crs", "radius"]
    assert {"OAuth2PasswordBearer": []} in op["security"]


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


def test_current_answers_without_io_only_what_get_would(world: Store) -> None:
    cache = LocatorCache(check_seconds=3600)
    assert cache.current(world) is None  # never built: the caller must build (get)
    first = cache.get(world)
    assert cache.current(world) is first  # checked within check_seconds
    cache.check_seconds = 0
    assert cache.current(world) is None  # a check is due: the caller must check (get)
    entry = cache._entries[world]
    with entry.lock:  # another thread is checking: get would answer this one
        assert cache.current(world) is first
        assert cache.get(world) is first


def test_locator_reads_the_same_grids_on_both_stores(filled: Store) -> None:
    loc = Locator.from_store(filled)
    assert sorted(loc.grids["code"]) == ["990100001001002", "990100001001003"]
    found = loc.locate(np.array([24.94]), np.array([60.17]))
    assert len(found.grid) == 1


def _copy_lookup_layers(source: Store, target: Store) -> None:
    """The demo's grids (every version), admin units, key areas and workers, ids kept."""
    for layer in LOOKUP_LAYERS:
        target.write(layer, source.read(layer))


def _random_points(store: Store, n: int, seed: int) -> np.ndarray:
    """*n* random points over the grids' extent (and a margin), plus 40 grid vertices."""
    minx, miny, maxx, maxy = store.bounds("grids")  # type: ignore[misc]
    rng = np.random.default_rng(seed)
    xs = rng.uniform(minx - 0.002, maxx + 0.002, n)
    ys = rng.uniform(miny - 0.002, maxy + 0.002, n)
    grids = store.read("grids", where={"valid_to": None})
    verts = shapely.get_coordinates(np.asarray(grids.geometry.values))
    verts = verts[rng.choice(len(verts), 40, replace=False)]
    return np.vstack([np.column_stack([xs, ys]), verts])


def test_get_and_post_match_brute_force_on_both_stores(world: Store, store: Store) -> None:
    _copy_lookup_layers(world, store)
    pts = _random_points(store, 400, seed=11)
    expected = _brute_force(store, pts[:, 0], pts[:, 1])
    with TestClient(_app(store)) as c:
        r = c.post("/locate", json={"points": pts.tolist(), "crs": "wgs84"})
        assert r.status_code == 200, r.text
        many = r.json()["results"]
        assert [None if a["grid"] is None else a["grid"]["code"] for a in many] == expected
        # The one-point path answers exactly what the batch path answers.
        for i in range(0, len(pts), 11):
            one = c.get("/locate", params={"lon": pts[i, 0], "lat": pts[i, 1], "crs": "wgs84"})
            assert one.status_code == 200
            assert one.json() == many[i]
    assert sum(code is not None for code in expected) > 200 and None in expected


def _grid_at(c: TestClient, x: float, y: float) -> Any:
    r = c.get("/locate", params={"lon": x, "lat": y, "crs": "wgs84"})
    assert r.status_code == 200, r.text
    return r.json()


def test_the_next_request_sees_grid_edits_on_both_stores(world: Store, store: Store) -> None:
    _copy_lookup_layers(world, store)
    grids = store.read("grids", where={"valid_to": None}).sort_values("id")
    first = grids.iloc[0]
    inside = first.geometry.representative_point()
    away = (float(grids.total_bounds[2]) + 0.01, float(grids.total_bounds[3]) + 0.01)
    with TestClient(_app(store, check_seconds=0)) as c:
        assert _grid_at(c, inside.x, inside.y)["grid"]["code"] == first["code"]
        assert _grid_at(c, *away)["grid"] is None
        # A new grid far from the others.
        new = grids.iloc[[0]].copy()
        new["code"] = "990100001001999"
        new["source_id"] = "test/new-grid"
        new["geometry"] = [
            shapely.box(away[0] - 0.001, away[1] - 0.001, away[0] + 0.001, away[1] + 0.001)
        ]
        store.write("grids", new.drop(columns=["id"]))
        assert _grid_at(c, *away)["grid"]["code"] == "990100001001999"
        # Redrawn (the old version closed, a new one with the same code written).
        now = pd.Timestamp.now(tz="UTC")
        old_id = int(store.read("grids", where={"code": "990100001001999"})["id"].iloc[0])
        with store.transaction():
            store.update("grids", pd.DataFrame({"id": [old_id], "valid_to": [now]}))
            redrawn = new.drop(columns=["id"]).assign(source_id="test/new-grid@2", valid_from=now)
            redrawn["geometry"] = [
                shapely.box(away[0] + 0.002, away[1], away[0] + 0.004, away[1] + 0.002)
            ]
            store.write("grids", redrawn)
        assert _grid_at(c, *away)["grid"] is None
        assert _grid_at(c, away[0] + 0.003, away[1] + 0.001)["grid"]["code"] == "990100001001999"
        # Retired in place (valid_to set, same row count): no longer answered.
        store.update("grids", pd.DataFrame({"id": [int(first["id"])], "valid_to": [now]}))
        assert _grid_at(c, inside.x, inside.y)["grid"] is None
        # Workers reassigned (same row count): the new crew is answered.
        workers = store.read("workers")
        crew = workers[[first["code"] in (g or []) for g in workers["grid_codes"]]]
        target = grids.iloc[1]
        p1 = target.geometry.representative_point()
        before = len(_grid_at(c, p1.x, p1.y)["workers"])
        store.update(
            "workers",
            pd.DataFrame(
                {"id": crew["id"].astype(int), "grid_codes": [[target["code"]]] * len(crew)}
            ),
        )
        assert len(_grid_at(c, p1.x, p1.y)["workers"]) == before + len(crew)


def test_data_version_changes_with_every_kind_of_write(world: Store, store: Store) -> None:
    _copy_lookup_layers(world, store)
    seen = {data_version(store, LOOKUP_LAYERS)}
    assert data_version(store, LOOKUP_LAYERS) in seen  # stable while nothing changes
    units = store.read("admin_units")
    store.update("admin_units", pd.DataFrame({"id": [int(units["id"].iloc[0])], "name": ["新名"]}))
    seen.add(data_version(store, LOOKUP_LAYERS))
    key = store.read("key_areas", limit=1)
    store.update("key_areas", pd.DataFrame({"id": [int(key["id"].iloc[0])], "kind": ["school"]}))
    seen.add(data_version(store, LOOKUP_LAYERS))
    store.delete("workers", where={"id": int(store.read("workers", limit=1)["id"].iloc[0])})
    seen.add(data_version(store, LOOKUP_LAYERS))
    # Other layers do not disturb the locator.
    store.write("events", world.read("events", limit=3))
    seen.add(data_version(store, LOOKUP_LAYERS))
    assert len(seen) == 4


@pytest.mark.postgis
def test_another_connection_s_write_is_seen(world: Store, pg_url: str) -> None:
    """Another process (here a second pool on the same database) edits; the cache notices."""
    mine = open_store(pg_url, migrate=True)
    theirs = open_store(pg_url)
    try:
        _copy_lookup_layers(world, mine)
        cache = LocatorCache(check_seconds=0)
        first = cache.get(mine)
        grid = theirs.read("grids", where={"valid_to": None}, limit=1)
        theirs.update("grids", pd.DataFrame({"id": [int(grid["id"].iloc[0])], "name": ["改名"]}))
        second = cache.get(mine)
        assert second is not first
        assert "改名" in second.grids["name"].tolist()
    finally:
        theirs.close()
        mine.close()
