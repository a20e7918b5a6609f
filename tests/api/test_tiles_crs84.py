"""WorldCRS84Quad tiles (CGCS2000 / 天地图), TileJSON and the MapLibre style, on both stores.

Tiles are decoded with mapbox-vector-tile and their coordinates transformed
back to longitude/latitude; features must land where the items are (within a
tile unit, far less than a screen pixel). Buildings are real OpenStreetMap
footprints (Helsinki); events are synthetic, seeded, on real streets.
"""

from __future__ import annotations

from typing import Any

import mapbox_vector_tile
import morecantile
import numpy as np
import pandas as pd
import pytest
import shapely
from fastapi.testclient import TestClient

from api.security import get_optional_principal
from gridmap.security.access import Principal
from gridmap.storage import Store
from tests.api.conftest import staff_app

TMS = morecantile.tms.get("WorldCRS84Quad")
EXTENT = 4096


def _bounds(t: morecantile.Tile) -> tuple[float, float, float, float]:
    b = TMS.xy_bounds(t)
    return (b.left, b.bottom, b.right, b.top)


def _to_lonlat(geom: dict[str, Any], t: morecantile.Tile) -> shapely.Geometry:
    """A decoded tile geometry (tile units, y up) back in longitude/latitude."""
    left, bottom, right, top = _bounds(t)
    shape = shapely.geometry.shape(geom)
    return shapely.transform(
        shape,
        lambda xy: np.column_stack(
            [
                left + xy[:, 0] / EXTENT * (right - left),
                bottom + xy[:, 1] / EXTENT * (top - bottom),
            ]
        ),
    )


def _decode(client: TestClient, layer: str, t: morecantile.Tile) -> list[dict[str, Any]]:
    r = client.get(f"/collections/{layer}/tiles/WorldCRS84Quad/{t.z}/{t.y}/{t.x}")
    if r.status_code == 204:
        return []
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    features: list[dict[str, Any]] = mapbox_vector_tile.decode(r.content)[layer]["features"]
    return features


def test_event_points_land_where_the_items_are(filled: Store, client: TestClient) -> None:
    items = {
        f["id"]: shapely.geometry.shape(f["geometry"])
        for f in client.get("/collections/events/items?limit=10000").json()["features"]
    }
    z = 14
    tiles = sorted({TMS.tile(p.x, p.y, z) for p in items.values()})
    assert tiles
    seen = 0
    for t in tiles:
        left, bottom, right, top = _bounds(t)
        unit = (right - left) / EXTENT
        inside = {i for i, p in items.items() if left <= p.x < right and bottom < p.y <= top}
        feats = _decode(client, "events", t)
        got = {int(f["id"]): f for f in feats}
        assert inside <= set(got), t
        for i in inside:
            back = _to_lonlat(got[i]["geometry"], t)
            assert back.distance(items[i]) <= unit, (t, i, back, items[i])
            assert {"category", "status"} <= set(got[i]["properties"])
        seen += len(inside)
    assert seen == len(items)


def test_building_polygons_land_where_the_items_are(filled: Store, client: TestClient) -> None:
    feats = client.get("/collections/buildings/items?limit=10000").json()["features"]
    items = {f["id"]: shapely.geometry.shape(f["geometry"]) for f in feats}
    z = 15
    lons = [g.centroid.x for g in items.values()]
    lats = [g.centroid.y for g in items.values()]
    t = TMS.tile(float(np.median(lons)), float(np.median(lats)), z)
    left, bottom, right, top = _bounds(t)
    unit = (right - left) / EXTENT
    box = shapely.box(left, bottom, right, top)
    decoded = {int(f["id"]): f for f in _decode(client, "buildings", t)}
    inner = {
        i for i, g in items.items() if g.is_valid and box.contains(g) and g.area > (unit * 4) ** 2
    }
    assert len(inner) > 3 and inner <= set(decoded)
    for i in inner:
        back = _to_lonlat(decoded[i]["geometry"], t)
        # Every vertex moved by at most half a tile unit each way.
        assert shapely.hausdorff_distance(back, items[i]) <= unit, i
    for i in decoded:
        assert items[i].intersects(box.buffer(unit * 70)), i


def test_crs84_tiles_keep_the_callers_area(filled: Store) -> None:
    events = filled.read("events")
    grid = "990100001001002"
    codes = np.where(events["id"] % 2 == 0, grid, "990100001001003")
    filled.update("events", pd.DataFrame({"id": events["id"], "grid_code": codes}))
    app = staff_app(filled, role="grid_worker")
    app.dependency_overrides[get_optional_principal] = lambda: Principal(
        "wang", "grid_worker", (grid,)
    )
    z = 12
    tiles = {TMS.tile(p.x, p.y, z) for p in events.geometry}
    got: set[int] = set()
    with TestClient(app) as c:
        for t in tiles:
            got |= {int(f["id"]) for f in _decode(c, "events", t)}
    assert got == set(events.loc[events["id"] % 2 == 0, "id"].astype(int))


def test_tile_matrix_sets_tilejson_and_style(client: TestClient) -> None:
    ids = [m["id"] for m in client.get("/tileMatrixSets").json()["tileMatrixSets"]]
    assert ids == ["WebMercatorQuad", "WorldCRS84Quad"]
    doc = client.get("/tileMatrixSets/WorldCRS84Quad").json()
    assert doc["id"] == "WorldCRS84Quad" and "CRS84" in str(doc["crs"])
    sets = client.get("/collections/events/tiles").json()["tilesets"]
    assert len(sets) == 2
    ts = client.get("/collections/events/tiles/WorldCRS84Quad").json()
    lim = {m["tileMatrix"]: m for m in ts["tileMatrixSetLimits"]}
    assert lim["12"]["maxTileCol"] == 2**13 - 1 and lim["12"]["maxTileRow"] == 2**12 - 1

    for tms in ("WebMercatorQuad", "WorldCRS84Quad"):
        tj = client.get(f"/collections/events/tiles/{tms}/tilejson.json").json()
        assert tj["tilejson"] == "3.0.0" and tj["tileMatrixSet"] == tms
        assert tj["vector_layers"][0]["id"] == "events"
        assert "status" in tj["vector_layers"][0]["fields"]
        w, s, e, n = tj["bounds"]
        assert w < 24.94 < e and s < 60.17 < n and e - w < 1  # the layer's extent
        # The template fetches a real tile.
        tms_obj = morecantile.tms.get(tms)
        p = shapely.Point(24.94, 60.17)
        t = tms_obj.tile(p.x, p.y, 14)
        url = tj["tiles"][0].format(z=t.z, x=t.x, y=t.y).replace("http://testserver", "")
        assert client.get(url).status_code in (200, 204)
    assert client.get("/collections/events/tiles/Nope/tilejson.json").status_code == 404

    style = client.get("/styles/default.json").json()
    assert style["version"] == 8
    assert set(style["sources"]) >= {"buildings", "roads", "events"}
    by_id = {layer["id"]: layer for layer in style["layers"]}
    assert by_id["buildings-fill"]["type"] == "fill"
    assert by_id["roads-line"]["type"] == "line"
    assert by_id["events-circle"]["source-layer"] == "events"
    for layer in style["layers"]:
        if "source" in layer:
            assert layer["source"] in style["sources"]


def test_viewer_style_and_tilejson_leave_out_staff_data(filled: Store) -> None:
    with TestClient(staff_app(filled, role="viewer")) as c:
        style = c.get("/styles/default.json").json()
        assert "events" not in style["sources"]
        assert c.get("/collections/events/tiles/WorldCRS84Quad/tilejson.json").status_code == 404
        tj = c.get("/collections/grids/tiles/WorldCRS84Quad/tilejson.json").json()
        assert "workers" not in tj["vector_layers"][0]["fields"]


@pytest.mark.parametrize("path", ["16/65536/1", "16/1/131072", "a/1/1", "3/0/0"])
def test_bad_crs84_tile_paths(client: TestClient, path: str) -> None:
    r = client.get(f"/collections/buildings/tiles/WorldCRS84Quad/{path}")
    assert r.status_code in (400, 404), r.text
