"""WorldCRS84Quad zoom ranges follow the tile matrix set (morecantile), on both stores.

A layer's zoom range is given in WebMercatorQuad levels; on WorldCRS84Quad the
same scales are one level lower (level 0 has two tiles), and nothing outside
the set's levels (0–23) is offered or served. Buildings are real OpenStreetMap
footprints (Helsinki); events are synthetic, seeded, on real streets.
"""

from __future__ import annotations

import math

import mapbox_vector_tile
import morecantile
import pytest
from fastapi.testclient import TestClient

from gridmap.common.errors import NotFound
from layers.catalog import CATALOG
from layers.crs84tiles import check_crs84_tile, crs84_tile_bounds, crs84_zooms

CRS84 = morecantile.tms.get("WorldCRS84Quad")
WEB = morecantile.tms.get("WebMercatorQuad")


@pytest.mark.parametrize("layer", sorted(CATALOG))
def test_zoom_range_is_the_same_scales_within_the_tile_matrix_set(layer: str) -> None:
    ldef = CATALOG[layer]
    lo, hi = crs84_zooms(ldef.min_zoom, ldef.max_zoom)
    assert CRS84.minzoom <= lo <= hi <= CRS84.maxzoom
    for web_z, z in ((max(0, ldef.min_zoom), lo), (min(WEB.maxzoom, ldef.max_zoom), hi)):
        if CRS84.minzoom < z < CRS84.maxzoom:
            # the nearest scale: within a factor of sqrt(2) of the layer's own
            ratio = CRS84.matrix(z).scaleDenominator / WEB.matrix(web_z).scaleDenominator
            assert 1 / math.sqrt(2) < ratio < math.sqrt(2), (layer, web_z, z, ratio)


def test_extremes_are_the_sets_own_levels() -> None:
    assert crs84_zooms(0, WEB.maxzoom) == (CRS84.minzoom, CRS84.maxzoom) == (0, 23)
    assert crs84_zooms(0, 0) == (0, 0)
    assert crs84_zooms(40, 50) == (23, 23)


def test_tiles_outside_the_set_are_refused_not_extrapolated() -> None:
    assert crs84_tile_bounds(23, 2**24 - 1, 0)[2] == pytest.approx(180.0)
    for z, x, y, words in (
        (24, 0, 0, "tile matrices 0–23, not 24"),
        (-1, 0, 0, "tile matrices 0–23"),
        (0, 2, 0, "columns 0–1"),
        (0, 0, 1, "rows 0–0"),
        (5, 64, 0, "columns 0–63"),
        (5, 0, -1, "rows 0–31"),
    ):
        with pytest.raises(NotFound, match=words):
            check_crs84_tile(z, x, y)
        with pytest.raises(NotFound):
            crs84_tile_bounds(z, x, y)


def test_tileset_tilejson_and_tiles_agree_on_levels(client: TestClient) -> None:
    ldef = CATALOG["buildings"]
    lo, hi = crs84_zooms(ldef.min_zoom, ldef.max_zoom)
    assert (lo, hi) == (ldef.min_zoom - 1, min(ldef.max_zoom, WEB.maxzoom) - 1)
    ts = client.get("/collections/buildings/tiles/WorldCRS84Quad").json()
    levels = [int(m["tileMatrix"]) for m in ts["tileMatrixSetLimits"]]
    assert levels == list(range(lo, hi + 1))
    for m in ts["tileMatrixSetLimits"]:
        matrix = CRS84.matrix(int(m["tileMatrix"]))
        assert m["maxTileCol"] == matrix.matrixWidth - 1
        assert m["maxTileRow"] == matrix.matrixHeight - 1
    tj = client.get("/collections/buildings/tiles/WorldCRS84Quad/tilejson.json").json()
    assert (tj["minzoom"], tj["maxzoom"]) == (lo, hi)
    web = client.get("/collections/buildings/tiles/WebMercatorQuad/tilejson.json").json()
    assert (web["minzoom"], web["maxzoom"]) == (ldef.min_zoom, ldef.max_zoom)

    # The first level (the scale of WebMercatorQuad's first) draws Ateneum's block.
    t = CRS84.tile(24.9440, 60.1700, lo)
    r = client.get(f"/collections/buildings/tiles/WorldCRS84Quad/{t.z}/{t.y}/{t.x}")
    assert r.status_code == 200, r.text
    assert mapbox_vector_tile.decode(r.content)["buildings"]["features"]
    below = CRS84.tile(24.9440, 60.1700, lo - 1)
    r = client.get(f"/collections/buildings/tiles/WorldCRS84Quad/{lo - 1}/{below.y}/{below.x}")
    assert r.status_code == 404
    body = r.json()
    assert f"WorldCRS84Quad tiles at levels {lo}–{hi}, not {lo - 1}" in body["description"]
    assert body["description_zh"]


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("23/0/0", 404, "levels 13–21, not 23"),
        ("24/0/0", 404, "not 24"),
        ("99/0/0", 404, "not 99"),
        ("15/32768/0", 404, "rows 0–32767"),
        ("15/0/65536", 404, "columns 0–65535"),
        ("15/-1/0", 400, "tile y must be a non-negative integer"),
        ("15/0/1.5", 400, "tile x must be a non-negative integer"),
        ("x/0/0", 400, "tile z must be a non-negative integer"),
    ],
)
def test_out_of_range_tile_paths_say_why(
    client: TestClient, path: str, status: int, words: str
) -> None:
    r = client.get(f"/collections/buildings/tiles/WorldCRS84Quad/{path}")
    assert r.status_code == status, r.text
    assert words in r.json()["description"], r.json()
