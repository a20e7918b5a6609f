"""Mapbox Vector Tiles on the ``WorldCRS84Quad`` tile matrix set (CGCS2000 / 天地图 basemaps).

天地图 serves its CGCS2000 basemaps (the ``_c`` services) on a geographic tile
grid: longitude and latitude in degrees, two tiles at level 0. Overlays drawn
on it need tiles on the same grid; these are cut here from features already
read (renderers take data, never open a database): clipped to the tile plus a
buffer, scaled to the tile's ``extent`` (x east, y down as MVT wants).
CGCS2000 (EPSG:4490) equals WGS84 within a metre, so stored WGS84 coordinates
are used as they are.
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

__all__ = ["CRS84_TMS", "crs84_tile", "crs84_tile_bounds", "crs84_tms", "mvt_value"]

CRS84_TMS = "WorldCRS84Quad"


@cache
def crs84_tms() -> morecantile.TileMatrixSet:
    """The ``WorldCRS84Quad`` tile matrix set (morecantile)."""
    return morecantile.tms.get(CRS84_TMS)


def crs84_tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """Longitude/latitude bounds of tile *z*/*x*/*y* of WorldCRS84Quad.

    Examples
    --------
    >>> crs84_tile_bounds(0, 1, 0)
    (0.0, -90.0, 180.0, 90.0)
    """
    b = crs84_tms().xy_bounds(morecantile.Tile(x, y, z))
    return (float(b.left), float(b.bottom), float(b.right), float(b.top))


def mvt_value(value: Any) -> str | int | float | bool | None:
    """A property value MVT can hold (``None`` for missing ones; lists as comma text).

    Examples
    --------
    >>> mvt_value(["a", "b"]), mvt_value(float("nan")), mvt_value(3)
    ('a,b', None, 3)
    """
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return None if not math.isfinite(float(value)) else float(value)
    if isinstance(value, pd.Timestamp | datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple | np.ndarray):
        return ",".join(str(v) for v in value)
    return str(value)


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
