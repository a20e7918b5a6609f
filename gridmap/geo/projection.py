"""The one helper for metric work: areas, lengths and buffers in metres, never degrees.

gridmap keeps every geometry in WGS84 (EPSG:4326, x = longitude). Whenever a
computation needs metres it goes through this module, which projects the data
to the UTM zone of its centroid (northern or southern hemisphere), works there
and, where needed, comes back to WGS84. Inside one UTM zone the scale error is
below 0.1 %, which is far below the accuracy of the footprints and streets
gridmap deals with.

Data without a CRS is taken to be WGS84, the system gridmap stores.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Literal, TypeVar

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj

from gridmap.common.errors import BadInput

__all__ = [
    "WGS84",
    "area_m2",
    "length_m",
    "local_crs",
    "position_crs",
    "positions_to_wgs84",
    "to_local",
    "to_metric",
    "to_wgs84",
]

#: The CRS gridmap stores: WGS84 longitude/latitude.
WGS84 = pyproj.CRS.from_epsg(4326)

GeoT = TypeVar("GeoT", gpd.GeoDataFrame, gpd.GeoSeries)


def _with_crs(data: GeoT) -> GeoT:
    """*data* with a CRS: WGS84 when it has none."""
    if data.crs is None:
        return data.set_crs(WGS84)
    return data


def _wgs84_bounds(data: gpd.GeoDataFrame | gpd.GeoSeries) -> tuple[float, float, float, float]:
    data = _with_crs(data)
    if not pyproj.CRS(data.crs).equals(WGS84, ignore_axis_order=True):
        data = data.to_crs(WGS84)
    minx, miny, maxx, maxy = (float(v) for v in data.total_bounds)
    return minx, miny, maxx, maxy


def local_crs(
    data: gpd.GeoDataFrame | gpd.GeoSeries | Sequence[float],
) -> pyproj.CRS:
    """The UTM zone (WGS84 datum) of the centre of *data*'s extent.

    Parameters
    ----------
    data : GeoDataFrame, GeoSeries or sequence of 4 floats
        Geometries (any CRS; none means WGS84), or WGS84 bounds
        ``(minx, miny, maxx, maxy)``.

    Returns
    -------
    pyproj.CRS
        ``EPSG:326zz`` north of the equator, ``EPSG:327zz`` south of it.

    Raises
    ------
    gridmap.common.errors.BadInput
        If the data is empty or the bounds are not finite WGS84 degrees.

    Examples
    --------
    >>> local_crs((24.93, 60.16, 24.95, 60.17)).to_epsg()
    32635
    >>> local_crs((116.3, 39.8, 116.5, 40.0)).to_epsg()
    32650
    >>> local_crs((151.1, -33.9, 151.3, -33.8)).to_epsg()
    32756
    """
    if isinstance(data, gpd.GeoDataFrame | gpd.GeoSeries):
        if len(data) == 0 or data.geometry.is_empty.all() or data.geometry.isna().all():
            raise BadInput("cannot choose a local CRS for data without geometries")
        minx, miny, maxx, maxy = _wgs84_bounds(data)
    else:
        if len(data) != 4:
            raise BadInput(f"bounds need 4 numbers (minx, miny, maxx, maxy), got {len(data)}")
        minx, miny, maxx, maxy = (float(v) for v in data)
    lon = (minx + maxx) / 2.0
    lat = (miny + maxy) / 2.0
    if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
        raise BadInput(
            f"cannot choose a local CRS: centre ({lon}, {lat}) is not a WGS84 longitude/latitude"
        )
    zone = min(60, max(1, math.floor((lon + 180.0) / 6.0) + 1))
    return pyproj.CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def to_metric(data: GeoT) -> tuple[GeoT, pyproj.CRS]:
    """Project *data* to its local UTM zone for work in metres.

    Parameters
    ----------
    data : GeoDataFrame or GeoSeries
        Geometries in any CRS (none means WGS84).

    Returns
    -------
    projected : GeoDataFrame or GeoSeries
        The same rows and index, in metres.
    crs : pyproj.CRS
        The CRS used (see :func:`local_crs`); pass it on to come back.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> gs = gpd.GeoSeries([shapely.Point(24.94, 60.17)], crs=4326)
    >>> projected, crs = to_metric(gs)
    >>> crs.to_epsg(), round(projected.x.iloc[0])
    (32635, 385700)
    """
    data = _with_crs(data)
    crs = local_crs(data)
    return data.to_crs(crs), crs


def to_local(data: GeoT, crs: pyproj.CRS) -> GeoT:
    """Project *data* to a metric *crs* chosen for other data (see :func:`to_metric`).

    For work that needs several inputs in the same metres: choose the CRS once
    (:func:`local_crs` or :func:`to_metric` on the main input) and bring the
    others to it with this function.

    Parameters
    ----------
    data : GeoDataFrame or GeoSeries
        Geometries in any CRS (none means WGS84).
    crs : pyproj.CRS
        The target CRS, e.g. from :func:`local_crs`.

    Returns
    -------
    GeoDataFrame or GeoSeries
        The same rows and index, in *crs*.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> crs = local_crs((24.93, 60.16, 24.95, 60.17))
    >>> pt = to_local(gpd.GeoSeries([shapely.Point(24.94, 60.17)]), crs).iloc[0]
    >>> round(pt.x), round(pt.y)
    (385700, 6672127)
    """
    return _with_crs(data).to_crs(crs)


def to_wgs84(data: GeoT) -> GeoT:
    """Bring *data* to WGS84 (EPSG:4326); data without a CRS is declared WGS84.

    Parameters
    ----------
    data : GeoDataFrame or GeoSeries
        Geometries in any CRS.

    Returns
    -------
    GeoDataFrame or GeoSeries
        The same rows and index in EPSG:4326.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> gs = gpd.GeoSeries([shapely.Point(385700.4, 6672126.7)], crs=32635)
    >>> pt = to_wgs84(gs).iloc[0]
    >>> round(pt.x, 3), round(pt.y, 3)
    (24.94, 60.17)
    """
    data = _with_crs(data)
    if data.crs.to_epsg() == 4326:
        return data
    return data.to_crs(WGS84)


def _metric_series(geoms: gpd.GeoSeries) -> gpd.GeoSeries | None:
    """*geoms* in metres, or ``None`` when nothing can be measured."""
    geoms = _with_crs(geoms)
    present = ~(geoms.isna() | geoms.is_empty)
    if not bool(present.any()):
        return None
    crs = local_crs(geoms[present])
    return geoms.to_crs(crs)


def area_m2(geoms: gpd.GeoSeries | gpd.GeoDataFrame) -> pd.Series:
    """Area of each geometry in square metres, aligned to the input index.

    Computed in the local UTM zone of the whole series (see :func:`local_crs`).
    Null geometries give NaN, empty ones 0, points and lines 0.

    Parameters
    ----------
    geoms : GeoSeries or GeoDataFrame
        Geometries in any CRS (none means WGS84).

    Returns
    -------
    pandas.Series
        float64 Series named ``area_m2`` with the index of *geoms*.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> square = shapely.box(24.94, 60.17, 24.9418, 60.1709)  # about 100 m x 100 m
    >>> round(float(area_m2(gpd.GeoSeries([square], crs=4326)).iloc[0]), -2)
    10000.0
    """
    return _measured(geoms, "area", "area_m2")


def length_m(geoms: gpd.GeoSeries | gpd.GeoDataFrame) -> pd.Series:
    """Length of each geometry in metres (perimeter for polygons), aligned to the input index.

    Takes what :func:`area_m2` takes and returns a Series like it, named
    ``length_m``. Null geometries give NaN, empty ones and points 0.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> street = shapely.LineString([(24.94, 60.17), (24.94, 60.18)])  # 0.01 degree north
    >>> round(float(length_m(gpd.GeoSeries([street], crs=4326)).iloc[0]))
    1114
    """
    return _measured(geoms, "length", "length_m")


def _measured(
    geoms: gpd.GeoSeries | gpd.GeoDataFrame, quantity: Literal["area", "length"], name: str
) -> pd.Series:
    """*quantity* of each geometry in the local UTM zone, a float64 Series named *name*.

    Null geometries give NaN; when no geometry is present the rest give 0.
    """
    series = geoms.geometry if isinstance(geoms, gpd.GeoDataFrame) else geoms
    projected = _metric_series(series)
    if projected is None:
        values = np.where(series.isna().to_numpy(), np.nan, 0.0)
    else:
        values = (projected.area if quantity == "area" else projected.length).to_numpy()
    return pd.Series(values, index=series.index, name=name, dtype="float64")


@functools.lru_cache(maxsize=64)
def position_crs(name: str) -> pyproj.CRS:
    """The CRS named *name* (``EPSG:n``) if positions ``[x, y]`` can be stated in it.

    Geographic (degrees) and projected (metres, feet) systems qualify;
    geocentric ones (EPSG:4978: x, y, z from the Earth's centre), vertical,
    engineering and other kinds do not.

    Raises
    ------
    gridmap.common.errors.BadInput
        With ``field="crs"``: an unknown name, or a system of another kind.

    Examples
    --------
    >>> position_crs("EPSG:3857").is_projected
    True
    >>> position_crs("EPSG:4978")
    Traceback (most recent call last):
    gridmap.common.errors.BadInput: crs 'EPSG:4978' is a geocentric crs: positions [x, y] need a geographic or projected one
    """  # noqa: E501
    try:
        crs = pyproj.CRS.from_user_input(name)
    except pyproj.exceptions.CRSError:
        raise BadInput(f"unknown crs {name[:60]!r}", field="crs") from None
    if crs.is_geocentric or not (crs.is_geographic or crs.is_projected):
        kind = crs.type_name.lower().removesuffix(" crs")
        raise BadInput(
            f"crs {name[:60]!r} is a {kind} crs: "
            "positions [x, y] need a geographic or projected one",
            field="crs",
        )
    return crs


@functools.lru_cache(maxsize=64)
def _position_transformers(name: str) -> tuple[pyproj.Transformer, pyproj.Transformer]:
    crs = position_crs(name)
    return (
        pyproj.Transformer.from_crs(crs, WGS84, always_xy=True),
        pyproj.Transformer.from_crs(WGS84, crs, always_xy=True),
    )


def positions_to_wgs84(
    x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray, name: str
) -> tuple[np.ndarray, np.ndarray]:
    """Longitudes and latitudes of positions stated in *name* (see :func:`position_crs`).

    A position the system does not cover comes back as NaN instead of the
    nearest point PROJ clamps it to: for a projected system, one whose
    WGS84 answer does not lead back to it within a unit (``x = 1e30`` in Web
    Mercator, which PROJ would map to longitude -180).

    Examples
    --------
    >>> lon, lat = positions_to_wgs84([2775000.0, 1e30], [8438000.0, 8438000.0], "EPSG:3857")
    >>> round(float(lon[0]), 3), bool(np.isnan(lon[1]))
    (24.928, True)
    """
    xs, ys = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    fwd, inv = _position_transformers(name)
    lon, lat = (np.asarray(v, dtype=np.float64) for v in fwd.transform(xs, ys, errcheck=False))
    if fwd.source_crs is not None and fwd.source_crs.is_projected:
        with np.errstate(invalid="ignore"):
            bx, by = (np.asarray(v, dtype=np.float64) for v in inv.transform(lon, lat))
            off = ~((np.abs(bx - xs) <= 1.0) & (np.abs(by - ys) <= 1.0))
        lon, lat = np.where(off, np.nan, lon), np.where(off, np.nan, lat)
    return lon, lat
