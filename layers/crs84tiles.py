"""Mapbox Vector Tiles on the ``WorldCRS84Quad`` tile matrix set (CGCS2000 / 天地图 basemaps).

天地图 serves its CGCS2000 basemaps (the ``_c`` services) on a geographic tile
grid: longitude and latitude in degrees, two tiles at level 0. Overlays drawn
on it need tiles on the same grid; these are cut here from features already
read (renderers take data, never open a database): clipped to the tile plus a
buffer, scaled to the tile's ``extent`` (x east, y down as MVT wants).
CGCS2000 (EPSG:4490) equals WGS84 within a metre, so stored WGS84 coordinates
are used as they are.

Zoom levels: level *z* of WorldCRS84Quad has the scale of WebMercatorQuad level
*z* + 1 (two tiles across the world at level 0, not one). A layer's zoom range
(:class:`layers.catalog.LayerDef`, in WebMercatorQuad levels) becomes the
WorldCRS84Quad levels of the same scales (:func:`crs84_zooms`, from the scale
denominators of morecantile's two tile matrix sets), within the levels the
tile matrix set defines (0–23); a tile outside them is refused
(:func:`check_crs84_tile`) instead of being extrapolated.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime
from functools import cache
from typing import Any

import mapbox_vector_tile
import morecantile
import numpy as np
import pandas as pd
import shapely

from gridmap.common.errors import NotFound
from gridmap.common.scalars import NOT_SCALAR, SCALARS, scalar

__all__ = [
    "CRS84_TMS",
    "check_crs84_tile",
    "crs84_tile",
    "crs84_tile_bounds",
    "crs84_tms",
    "crs84_zooms",
    "mvt_value",
]

CRS84_TMS = "WorldCRS84Quad"


@cache
def crs84_tms() -> morecantile.TileMatrixSet:
    """The ``WorldCRS84Quad`` tile matrix set (morecantile)."""
    return morecantile.tms.get(CRS84_TMS)


@cache
def _web_tms() -> morecantile.TileMatrixSet:
    return morecantile.tms.get("WebMercatorQuad")


def _level_of(web_zoom: int) -> int:
    """The WorldCRS84Quad level whose scale is nearest WebMercatorQuad level *web_zoom*'s."""
    tms, web = crs84_tms(), _web_tms()
    first = tms.matrix(tms.minzoom).scaleDenominator
    scale = web.matrix(min(max(web_zoom, web.minzoom), web.maxzoom)).scaleDenominator
    return tms.minzoom + round(math.log2(first / scale))


def crs84_zooms(min_zoom: int, max_zoom: int) -> tuple[int, int]:
    """WorldCRS84Quad levels showing a layer drawn at WebMercatorQuad levels *min_zoom*–*max_zoom*.

    The levels of the same scales (scale denominators of the two tile matrix
    sets), kept within the levels WorldCRS84Quad defines.

    Parameters
    ----------
    min_zoom, max_zoom : int
        The layer's zoom range in WebMercatorQuad levels.

    Returns
    -------
    tuple of int
        First and last WorldCRS84Quad level (first <= last).

    Examples
    --------
    >>> crs84_zooms(14, 22)
    (13, 21)
    >>> crs84_zooms(0, 30)  # the tile matrix set has levels 0-23
    (0, 23)
    """
    tms = crs84_tms()
    lo = min(max(_level_of(min_zoom), tms.minzoom), tms.maxzoom)
    hi = min(max(_level_of(max_zoom), lo), tms.maxzoom)
    return lo, hi


def check_crs84_tile(z: int, x: int, y: int) -> None:
    """Refuse a tile that WorldCRS84Quad does not have (:class:`~gridmap.common.errors.NotFound`).

    Examples
    --------
    >>> check_crs84_tile(0, 1, 0)
    >>> check_crs84_tile(0, 2, 0)
    Traceback (most recent call last):
    gridmap.common.errors.NotFound: tile 0/0/2 is outside the WorldCRS84Quad tile matrix: ...
    >>> check_crs84_tile(24, 0, 0)
    Traceback (most recent call last):
    gridmap.common.errors.NotFound: WorldCRS84Quad has tile matrices 0–23, not 24 ...
    """
    tms = crs84_tms()
    if not tms.minzoom <= z <= tms.maxzoom:
        raise NotFound(
            f"{CRS84_TMS} has tile matrices {tms.minzoom}–{tms.maxzoom}, not {z} (瓦片级别超出范围)"
        )
    m = tms.matrix(z)
    cols, rows = int(m.matrixWidth), int(m.matrixHeight)
    if not (0 <= x < cols and 0 <= y < rows):
        raise NotFound(
            f"tile {z}/{y}/{x} is outside the {CRS84_TMS} tile matrix: level {z} has rows "
            f"0–{rows - 1} and columns 0–{cols - 1} (瓦片超出范围)"
        )


def crs84_tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """Longitude/latitude bounds of tile *z*/*x*/*y* of WorldCRS84Quad.

    Raises :class:`~gridmap.common.errors.NotFound` for a tile the set does not have
    (:func:`check_crs84_tile`).

    Examples
    --------
    >>> crs84_tile_bounds(0, 1, 0)
    (0.0, -90.0, 180.0, 90.0)
    """
    check_crs84_tile(z, x, y)
    b = crs84_tms().xy_bounds(morecantile.Tile(x, y, z))
    return (float(b.left), float(b.bottom), float(b.right), float(b.top))


def mvt_value(value: Any) -> str | int | float | bool | None:
    """A property value MVT can hold (``None`` for missing ones; lists as comma text).

    Examples
    --------
    >>> mvt_value(["a", "b"]), mvt_value(float("nan")), mvt_value(3)
    ('a,b', None, 3)
    """
    out: str | int | float | bool | None
    conv = SCALARS.get(type(value))
    if conv is not None:  # the common case: one lookup
        out = conv(value)
        return out
    if isinstance(value, pd.Timestamp | datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple | np.ndarray):
        return ",".join(str(v) for v in value)
    plain = scalar(value)
    out = str(value) if plain is NOT_SCALAR else plain
    return out


def crs84_tile(
    frame: pd.DataFrame,
    layer: str,
    z: int,
    x: int,
    y: int,
    *,
    properties: Sequence[str] = (),
    extent: int = 4096,
    buffer: int = 64,
) -> bytes:
    """Encode the rows of *frame* (WGS84 ``geometry``, ``id``) as WorldCRS84Quad tile *z*/*x*/*y*.

    Parameters
    ----------
    frame : DataFrame
        Features to draw (those meeting the buffered tile; others clip away).
    layer : str
        Name of the tile layer.
    z, x, y : int
        Tile matrix, column, row.
    properties : sequence of str
        Columns written as feature properties (``None`` values left out).
    extent, buffer : int
        Tile units across a tile, and around it kept by clipping.

    Returns
    -------
    bytes
        The tile; ``b""`` when no feature reaches it.
    """
    if frame.empty:
        return b""
    left, bottom, right, top = crs84_tile_bounds(z, x, y)
    pad_x = (right - left) * buffer / extent
    pad_y = (top - bottom) * buffer / extent
    clip = shapely.box(left - pad_x, bottom - pad_y, right + pad_x, top + pad_y)
    geoms = np.asarray(frame["geometry"].values, dtype=object)
    ok = ~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)
    fixed = np.where(shapely.is_valid(geoms[ok]), geoms[ok], shapely.make_valid(geoms[ok]))
    clipped = np.full(len(geoms), None, dtype=object)
    clipped[ok] = shapely.intersection(fixed, clip)
    features: list[dict[str, Any]] = []
    rows = frame.reset_index(drop=True)
    for i, geom in enumerate(clipped):
        if geom is None or shapely.is_empty(geom):
            continue
        if geom.geom_type == "GeometryCollection":
            dim = shapely.get_dimensions(geoms[i])
            parts = [g for g in geom.geoms if shapely.get_dimensions(g) == dim]
            if not parts:
                continue
            geom = shapely.union_all(parts)
        props = {p: mvt_value(rows.at[i, p]) for p in properties if p in rows.columns}
        features.append(
            {
                "geometry": geom,
                "properties": {k: v for k, v in props.items() if v is not None},
                "id": int(rows["id"].iloc[i]),
            }
        )
    if not features:
        return b""
    data: bytes = mapbox_vector_tile.encode(
        {"name": layer, "features": features},
        default_options={
            "quantize_bounds": (left, bottom, right, top),
            "extents": extent,
            "on_invalid_geometry": mapbox_vector_tile.encoder.on_invalid_geometry_make_valid,
        },
    )
    return data
