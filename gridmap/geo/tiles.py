"""Tile math of the WebMercatorQuad tile matrix set (EPSG:3857), shared by stores and layers.

Pure arithmetic, no I/O: the stores clip features to a tile's filter box, the heat
layers bin events inside a tile, and the routers check z/x/y against :data:`MAX_ZOOM`.
(The WorldCRS84Quad math that only the tile router needs lives in ``layers/crs84tiles.py``.)
"""

from __future__ import annotations

import math

from gridmap.common.errors import BadInput

__all__ = ["MAX_ZOOM", "MERCATOR_HALF", "BBox", "tile_bounds", "tile_filter_box"]

BBox = tuple[float, float, float, float]

#: Half the width of the Web Mercator square (EPSG:3857), metres.
MERCATOR_HALF = 20037508.342789244

#: Deepest zoom level of WebMercatorQuad served.
MAX_ZOOM = 24


def tile_bounds(z: int, x: int, y: int) -> tuple[BBox, BBox]:
    """Web Mercator (EPSG:3857) and WGS84 bounds of WebMercatorQuad tile z/x/y.

    Raises ``BadInput`` for a tile outside the tile matrix.

    Examples
    --------
    >>> merc, wgs = tile_bounds(0, 0, 0)
    >>> wgs[0], round(wgs[3], 4)
    (-180.0, 85.0511)
    """
    if not (0 <= z <= MAX_ZOOM) or not (0 <= x < 2**z and 0 <= y < 2**z):
        raise BadInput(f"tile {z}/{x}/{y} is outside the WebMercatorQuad tile matrix", field="tile")
    size = 2 * MERCATOR_HALF / 2**z
    minx = -MERCATOR_HALF + x * size
    maxy = MERCATOR_HALF - y * size
    merc = (minx, maxy - size, minx + size, maxy)

    def lat(row: int) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * row / 2**z))))

    wgs = (x / 2**z * 360.0 - 180.0, lat(y + 1), (x + 1) / 2**z * 360.0 - 180.0, lat(y))
    return merc, wgs


def tile_filter_box(z: int, x: int, y: int, extent: int, buffer: int) -> tuple[BBox, BBox]:
    """Web Mercator and WGS84 boxes of the tile grown by *buffer* (tile units), in the world.

    Examples
    --------
    >>> merc, wgs = tile_filter_box(1, 0, 0, 4096, 0)
    >>> merc[0] == -MERCATOR_HALF, wgs[2]
    (True, 0.0)
    """
    merc, _ = tile_bounds(z, x, y)
    pad = (merc[2] - merc[0]) * buffer / extent
    x0, y0 = max(-MERCATOR_HALF, merc[0] - pad), max(-MERCATOR_HALF, merc[1] - pad)
    x1, y1 = min(MERCATOR_HALF, merc[2] + pad), min(MERCATOR_HALF, merc[3] + pad)

    def lon(mx: float) -> float:
        return mx / MERCATOR_HALF * 180.0

    def lat(my: float) -> float:
        return math.degrees(2 * math.atan(math.exp(my / MERCATOR_HALF * math.pi)) - math.pi / 2)

    return (x0, y0, x1, y1), (lon(x0), lat(y0), lon(x1), lat(y1))
