"""GET /heatmap/tiles/WebMercatorQuad/{z}/{y}/{x}: decoded tiles hold /heatmap's cells and counts.

Over the real Helsinki demo grids with seeded synthetic events, on both stores
(DuckDB and a real PostGIS). Tiles are decoded with ``mapbox-vector-tile``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import geopandas as gpd
import h3
import mapbox_vector_tile
import morecantile
import pytest
import shapely

from gridmap.analytics.heat import tile_resolution
from gridmap.geo.tiles import tile_bounds
from gridmap.security.access import Principal
from gridmap.storage import Store, open_store
from tests.api.test_analytics import ADMIN, brute_force, client_for, synthetic_events
from tests.events_world import World, make_world

TMS = morecantile.tms.get("WebMercatorQuad")


@pytest.fixture
def world(store: Store) -> tuple[World, gpd.GeoDataFrame]:
    w = make_world(store)
    events = synthetic_events(w)
    store.write("events", events)
    return w, events


@pytest.fixture(scope="module")
def empty_store() -> Iterator[Store]:
    s = open_store(":memory:", migrate=True)
    yield s
    s.close()


def tiles_over(grids: gpd.GeoDataFrame, z: int) -> list[tuple[int, int, int]]:
    """Every tile at zoom *z* touching the grids' extent, as (z, x, y)."""
    minx, miny, maxx, maxy = grids.total_bounds
    return [(t.z, t.x, t.y) for t in TMS.tiles(minx, miny, maxx, maxy, zooms=[z])]


def tile_cells(client: Any, z: int, x: int, y: int, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Decoded features of one heat-map tile ([] for a 204)."""
    r = client.get(f"/heatmap/tiles/WebMercatorQuad/{z}/{y}/{x}", params=params)
    if r.status_code == 204:
        return []
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    layer = mapbox_vector_tile.decode(r.content)["heatmap"]
    assert layer["extent"] == 4096
    return list(layer["features"])


def heatmap(client: Any, resolution: int, params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    r = client.get("/heatmap", params={"resolution": resolution, **params})
    assert r.status_code == 200, r.text
    return {f["properties"]["h3"]: f["properties"] for f in r.json()["features"]}


@pytest.mark.parametrize(
    ("principal", "params", "z"),
    [
        (ADMIN, {"category": "safety_hazard"}, 14),  # detail: exact counts, nothing merged
        (Principal("v", "viewer"), {}, 13),  # small counts merged into parents
    ],
    ids=["admin-z14", "viewer-z13"],
)
def test_tiles_hold_the_heatmap_cells(
    world: tuple[World, gpd.GeoDataFrame], principal: Principal, params: dict[str, Any], z: int
) -> None:
    w, _ = world
    res = tile_resolution(z)
    with client_for(w.store, principal) as client:
        expected = heatmap(client, res, params)
        seen: dict[str, dict[str, Any]] = {}
        for tz, tx, ty in tiles_over(w.grids, z):
            for f in tile_cells(client, tz, tx, ty, params):
                props = f["properties"]
                # A cell cut by a tile edge is in both tiles, with the same count.
                assert seen.setdefault(props["h3"], props) == props
    assert expected and set(seen) == set(expected)
    for cell, props in seen.items():
        want = expected[cell]
        assert props["count"] == want["count"], cell
        assert props.get("open") == want["open"] and props["merged"] == want["merged"]
    if principal.role == "viewer":
        assert min(p["count"] for p in seen.values()) >= 3
        assert any(p["merged"] for p in seen.values())
        assert all(p.get("open") is None or p["open"] >= 3 for p in seen.values())
    else:
        assert {h3.get_resolution(c) for c in seen} == {res}


def test_grid_worker_tiles_count_only_their_grid(world: tuple[World, gpd.GeoDataFrame]) -> None:
    w, events = world
    mine = w.code(3)
    worker = Principal("wang", "grid_worker", (mine,))
    params = {"category": "city_management"}
    z = 15
    total: dict[str, int] = {}
    with client_for(w.store, worker) as client:
        for tz, tx, ty in tiles_over(w.grids, z):
            for f in tile_cells(client, tz, tx, ty, params):
                total[f["properties"]["h3"]] = f["properties"]["count"]
        other = client.get(
            "/heatmap/tiles/WebMercatorQuad/15/0/0", params={**params, "area": w.code(4)}
        )
    selected = events[(events["grid_code"] == mine) & (events["category"] == "city_management")]
    assert total == dict(brute_force(selected, tile_resolution(z)))
    assert sum(total.values()) == len(selected) > 0
    assert other.status_code == 204


def test_tile_geometry_caching_and_empty_tiles(world: tuple[World, gpd.GeoDataFrame]) -> None:
    w, _ = world
    z = 14
    with client_for(w.store, ADMIN) as client:
        full = [t for t in tiles_over(w.grids, z)]
        # The tile holding most cells: decode one cell well inside and compare its position.
        best = max(full, key=lambda t: len(tile_cells(client, *t, {"category": "dispute"})))
        tz, tx, ty = best
        url = f"/heatmap/tiles/WebMercatorQuad/{tz}/{ty}/{tx}"
        r = client.get(url, params={"category": "dispute"})
        assert r.status_code == 200
        assert r.headers["cache-control"].startswith("private")
        etag = r.headers["etag"]
        again = client.get(url, params={"category": "dispute"}, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.headers["etag"] == etag
        other = client.get(url, params={"category": "safety_hazard"})
        assert other.status_code == 200 and other.headers["etag"] != etag
        empty = client.get("/heatmap/tiles/WebMercatorQuad/14/0/0")
        assert empty.status_code == 204 and not empty.content
    merc, _ = tile_bounds(tz, tx, ty)
    size = merc[2] - merc[0]
    box = shapely.box(*merc)
    checked = 0
    for f in mapbox_vector_tile.decode(r.content)["heatmap"]["features"]:
        ring = [(lng, lat) for lat, lng in h3.cell_to_boundary(f["properties"]["h3"])]
        cell = gpd.GeoSeries([shapely.Polygon(ring)], crs=4326).to_crs(3857).iloc[0]
        if not box.contains(cell):
            continue
        got = shapely.geometry.shape(f["geometry"]).centroid
        want_x = (cell.centroid.x - merc[0]) / size * 4096
        want_y = (cell.centroid.y - merc[1]) / size * 4096
        assert abs(got.x - want_x) < 2 and abs(got.y - want_y) < 2
        checked += 1
    assert checked > 0


@pytest.mark.parametrize(
    ("path", "params", "status", "name"),
    [
        ("14/x/1", {}, 400, "y"),
        ("14/1/-1", {}, 400, "x"),
        ("14/01/1", {}, 400, "y"),
        ("14/1/99999", {}, 404, ""),
        ("25/0/0", {}, 404, ""),
        ("14/1/1", {"resolution": "9"}, 400, "resolution"),
        ("14/1/1", {"bbox": "0,0,1,1"}, 400, "bbox"),
        ("14/1/1", {"category": "nonsense"}, 400, "category"),
        ("14/1/1", {"rate": "per_cat"}, 400, "rate"),
        ("14/1/1", {"from": "2026-10-01T00:00:00"}, 400, "from"),
    ],
)
def test_bad_tile_requests(
    empty_store: Store, path: str, params: dict[str, str], status: int, name: str
) -> None:
    with client_for(empty_store, ADMIN) as client:
        r = client.get(f"/heatmap/tiles/WebMercatorQuad/{path}", params=params)
    assert r.status_code == status, r.text
    assert name in r.json()["description"]
