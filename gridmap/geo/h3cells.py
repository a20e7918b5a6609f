"""H3 cells of points: the one wrapper of the H3 library that storage and analytics share.

Stores fill the ``h3_r7`` … ``h3_r11`` columns of ``events`` on write with
:func:`point_cells` (migration 011); :mod:`gridmap.analytics.queries` aggregates them.
Kept apart from :mod:`gridmap.analytics` so the storage layer does not depend on the
analytics built on it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import shapely
from h3.api import basic_int as _h3
from h3ronpy import vector as h3v

from gridmap.common.errors import BadInput

__all__ = [
    "H3_RESOLUTIONS",
    "cell_column",
    "cell_strings",
    "check_resolution",
    "latlng_to_cells",
    "one_point_cells",
    "point_cells",
]

#: H3 resolutions served: 7 (≈5 km² cells) to 11 (≈2,150 m² cells).
H3_RESOLUTIONS: tuple[int, ...] = (7, 8, 9, 10, 11)


def check_resolution(resolution: Any) -> int:
    """Return *resolution* as an int if it is one of :data:`H3_RESOLUTIONS`.

    Raises
    ------
    gridmap.common.errors.BadInput
        Naming ``resolution`` otherwise.

    Examples
    --------
    >>> check_resolution(9)
    9
    >>> check_resolution(12)
    Traceback (most recent call last):
    ...
    gridmap.common.errors.BadInput: resolution must be an integer from 7 to 11, got 12
    """
    ok = isinstance(resolution, int | np.integer) and not isinstance(resolution, bool)
    if not ok or int(resolution) not in H3_RESOLUTIONS:
        raise BadInput(
            f"resolution must be an integer from 7 to 11, got {str(resolution)[:20]}",
            field="resolution",
        )
    return int(resolution)


def latlng_to_cells(lon: Any, lat: Any, resolution: int) -> np.ndarray:
    """H3 cells of coordinate arrays, vectorized (x = longitude first, as everywhere in gridmap).

    Parameters
    ----------
    lon, lat : array-like of float
        WGS84 longitude and latitude in degrees, same length.
    resolution : int
        H3 resolution 0–15.

    Returns
    -------
    numpy.ndarray of uint64
        The cell of each point; ``0`` where a coordinate is missing or not a
        valid longitude/latitude.

    Examples
    --------
    >>> cells = latlng_to_cells([24.94, float("nan")], [60.17, 60.17], 9)
    >>> cell_strings(cells[:1])[0], int(cells[1])
    ('891126d338fffff', 0)
    """
    x = np.asarray(lon, dtype="float64").ravel()
    y = np.asarray(lat, dtype="float64").ravel()
    if x.shape != y.shape:
        raise BadInput("lon and lat must have the same length", field="lon")
    if not 0 <= int(resolution) <= 15:
        raise BadInput(f"H3 resolution must be 0–15, got {resolution}", field="resolution")
    out = np.zeros(x.shape, dtype="uint64")
    ok = np.isfinite(x) & np.isfinite(y) & (np.abs(x) <= 180) & (np.abs(y) <= 90)
    if ok.any():
        # h3ronpy takes latitude first: the one place in gridmap that does.
        cells = h3v.coordinates_to_cells(y[ok], x[ok], int(resolution))
        out[ok] = np.asarray(cells, dtype="uint64")
    return out


def one_point_cells(lon: float, lat: float) -> dict[str, int | None]:
    """The ``h3_r7`` … ``h3_r11`` cells of one point: :func:`point_cells` without arrays.

    For one report at a time (the intake path): the H3 library's scalar call
    costs microseconds where an Arrow round trip per resolution costs tens.
    Cells are ``None`` for a coordinate that is not a finite longitude/latitude.

    Examples
    --------
    >>> cells = one_point_cells(24.94, 60.17)
    >>> format(cells["h3_r9"], "x"), list(cells) == [cell_column(r) for r in H3_RESOLUTIONS]
    ('891126d338fffff', True)
    >>> one_point_cells(float("nan"), 60.17)["h3_r7"] is None
    True
    """
    x, y = float(lon), float(lat)
    if not (math.isfinite(x) and math.isfinite(y) and abs(x) <= 180 and abs(y) <= 90):
        return {cell_column(res): None for res in H3_RESOLUTIONS}
    # h3 takes latitude first, like h3ronpy above.
    return {cell_column(res): _h3.latlng_to_cell(y, x, res) for res in H3_RESOLUTIONS}


def cell_strings(cells: Any) -> np.ndarray:
    """Hexadecimal strings (``"891126d3607ffff"``) of ``uint64`` H3 cell ids.

    Examples
    --------
    >>> cell_strings(np.array([617294883381051391], dtype="uint64")).tolist()
    ['891126d0597ffff']
    """
    arr = np.asarray(cells, dtype="uint64").ravel()
    return np.array([format(int(c), "x") for c in arr], dtype=object)


def cell_column(resolution: int) -> str:
    """Name of the ``events`` column holding each event's H3 cell at *resolution*.

    Examples
    --------
    >>> cell_column(9)
    'h3_r9'
    """
    return f"h3_r{check_resolution(resolution)}"


def point_cells(geoms: Any) -> pd.DataFrame:
    """The H3 cells (resolutions 7–11) of point geometries: the stored ``h3_r*`` columns.

    Stores fill these columns of ``events`` on write (migration 011), one
    signed 64-bit H3 index per resolution (an H3 index never sets the top
    bit); missing for a missing, empty or non-point geometry or one outside
    longitude/latitude range. One column per resolution because H3 cells do
    not nest exactly: the parent of a point's resolution-11 cell is not
    always the resolution-10 cell the point lies in, and counts must equal
    those of binning the points themselves (:func:`gridmap.analytics.binning.bin_counts`).

    Returns
    -------
    pandas.DataFrame
        Columns ``h3_r7`` … ``h3_r11`` (``Int64``), one row per geometry.

    Examples
    --------
    >>> import shapely
    >>> cells = point_cells([shapely.Point(24.94, 60.17), None, shapely.Point(1e3, 0)])
    >>> format(int(cells.loc[0, "h3_r9"]), "x"), cells["h3_r11"].isna().tolist()
    ('891126d338fffff', [False, True, True])
    """
    arr = np.asarray(geoms, dtype=object).ravel()
    is_point = shapely.get_type_id(arr) == 0
    x = np.where(is_point, shapely.get_x(arr), np.nan)
    y = np.where(is_point, shapely.get_y(arr), np.nan)
    out = {}
    for res in H3_RESOLUTIONS:
        cells = latlng_to_cells(x, y, res).astype("int64")
        out[cell_column(res)] = pd.Series(cells, dtype="Int64").mask(cells == 0)
    return pd.DataFrame(out)
