"""Conversions between WGS84, GCJ-02 and BD-09, the coordinate systems of Chinese maps.

Phone map SDKs (Amap/Gaode, Tencent) return GCJ-02 ("Mars" coordinates), Baidu
returns BD-09, raw GPS is WGS84 and official data is CGCS2000 (equal to WGS84
within a metre). gridmap stores WGS84 and converts at the edge with this module;
overlays drawn on a GCJ-02 basemap are shifted with :func:`from_wgs84`.

Every function is vectorized: ``lon`` and ``lat`` may be scalars or array-likes
of any broadcast-compatible shapes, and the result is a pair of ``float64``
arrays of the broadcast shape (0-d arrays for scalar input; ``float(x)`` turns
them into Python floats). x is always the longitude and y the latitude, in
degrees, in that order.

Conventions shared by every function:

* Non-finite input (NaN, ``±inf``) in either coordinate gives NaN in *both*
  output coordinates; nothing is raised and no warning is emitted.
* GCJ-02 is only defined inside the rough bounding box of mainland China used
  by the common implementations (longitude 72.004–137.8347, latitude
  0.8293–55.8271, bounds included). Outside it WGS84 and GCJ-02 coincide, so
  points there are returned unchanged (for the inverse, see
  :func:`gcj02_to_wgs84` on the strip about 1 km wide along the box edge).
* BD-09 is defined everywhere (it is a small rotation and shift of GCJ-02).
* The inverses (:func:`gcj02_to_wgs84`, :func:`bd09_to_gcj02`) are exact
  inverses computed by fixed-point iteration, accurate far below 1e-7 degrees,
  never the one-step approximations found in many copies of this code. They
  take two keyword arguments, ``tol`` (default 1e-9: a point stops once its
  correction is below this many degrees) and ``max_iter`` (default 30: a point
  still moving after that many rounds keeps its last estimate), and raise
  :class:`gridmap.common.errors.BadInput` if ``tol`` is not positive or
  ``max_iter`` is below 1.

The functions' Parameters and Returns sections below therefore name only the
systems: ``lon, lat`` are always in degrees and the result always follows the
conventions above.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from gridmap.common.errors import BadInput

__all__ = [
    "bd09_to_gcj02",
    "bd09_to_wgs84",
    "from_wgs84",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "is_chinese_crs",
    "to_wgs84",
    "wgs84_to_bd09",
    "wgs84_to_gcj02",
]

FloatArray = npt.NDArray[np.float64]
_System = Literal["wgs84", "gcj02", "bd09"]
_Forward = Callable[[FloatArray, FloatArray], tuple[FloatArray, FloatArray]]

# Krasovsky 1940 ellipsoid, as used by GCJ-02.
_KRASOVSKY_A: Final = 6378245.0
_KRASOVSKY_EE: Final = 0.00669342162296594323

# Rough bounding box of mainland China; GCJ-02 equals WGS84 outside it.
_CHINA_LON_MIN: Final = 72.004
_CHINA_LON_MAX: Final = 137.8347
_CHINA_LAT_MIN: Final = 0.8293
_CHINA_LAT_MAX: Final = 55.8271
# The GCJ-02 offset is below 0.02 degrees; GCJ-02 points farther than this from
# the box cannot come from a WGS84 point inside it.
_EDGE_MARGIN: Final = 0.05

# Baidu's constants.
_BD_X_PI: Final = np.pi * 3000.0 / 180.0
_BD_DLON: Final = 0.0065
_BD_DLAT: Final = 0.006

# Default settings of the iterative inverses (degrees, iterations).
_TOL: Final = 1e-9
_MAX_ITER: Final = 30

_ALIASES: Final[dict[str, _System]] = {
    "wgs84": "wgs84",
    "epsg:4326": "wgs84",
    "cgcs2000": "wgs84",
    "epsg:4490": "wgs84",
    "gcj02": "gcj02",
    "bd09": "bd09",
    "bd09ll": "bd09",
}


# --------------------------------------------------------------------------- helpers


def _as_points(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Broadcast to two fresh float64 arrays; non-finite points become NaN in both."""
    try:
        x, y = np.broadcast_arrays(
            np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
        )
    except (TypeError, ValueError) as exc:
        raise BadInput(f"coordinates must be numbers of compatible shapes: {exc}") from exc
    x = np.array(x, dtype=np.float64)
    y = np.array(y, dtype=np.float64)
    bad = ~(np.isfinite(x) & np.isfinite(y))
    x[bad] = np.nan
    y[bad] = np.nan
    return x, y


def _check_iteration(tol: float, max_iter: int) -> None:
    if not tol > 0:
        raise BadInput(f"tol must be a positive number, got {tol!r}", field="tol")
    if max_iter < 1:
        raise BadInput(f"max_iter must be at least 1, got {max_iter!r}", field="max_iter")


def _in_china(lon: FloatArray, lat: FloatArray, *, margin: float = 0.0) -> npt.NDArray[np.bool_]:
    """Whether each point lies in the GCJ-02 box grown by ``margin`` degrees (False for NaN)."""
    return (
        (lon >= _CHINA_LON_MIN - margin)
        & (lon <= _CHINA_LON_MAX + margin)
        & (lat >= _CHINA_LAT_MIN - margin)
        & (lat <= _CHINA_LAT_MAX + margin)
    )


def _gcj_offset(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The GCJ-02 offset in degrees at WGS84 points, without the bounding-box check."""
    x = lon - 105.0
    y = lat - 35.0
    pi = np.pi
    # The two published distortion polynomials, in metres along the meridian / parallel.
    shared = (20.0 * np.sin(6.0 * pi * x) + 20.0 * np.sin(2.0 * pi * x)) * 2.0 / 3.0
    dlat_m = (
        -100.0
        + 2.0 * x
        + 3.0 * y
        + 0.2 * y * y
        + 0.1 * x * y
        + 0.2 * np.sqrt(np.abs(x))
        + shared
        + (20.0 * np.sin(pi * y) + 40.0 * np.sin(pi * y / 3.0)) * 2.0 / 3.0
        + (160.0 * np.sin(pi * y / 12.0) + 320.0 * np.sin(pi * y / 30.0)) * 2.0 / 3.0
    )
    dlon_m = (
        300.0
        + x
        + 2.0 * y
        + 0.1 * x * x
        + 0.1 * x * y
        + 0.1 * np.sqrt(np.abs(x))
        + shared
        + (20.0 * np.sin(pi * x) + 40.0 * np.sin(pi * x / 3.0)) * 2.0 / 3.0
        + (150.0 * np.sin(pi * x / 12.0) + 300.0 * np.sin(pi * x / 30.0)) * 2.0 / 3.0
    )
    # Metres to degrees on the Krasovsky ellipsoid.
    rad_lat = np.radians(lat)
    magic = 1.0 - _KRASOVSKY_EE * np.sin(rad_lat) ** 2
    sqrt_magic = np.sqrt(magic)
    m_per_deg_lat = (_KRASOVSKY_A * (1.0 - _KRASOVSKY_EE)) / (magic * sqrt_magic) * pi / 180.0
    m_per_deg_lon = _KRASOVSKY_A / sqrt_magic * np.cos(rad_lat) * pi / 180.0
    return dlon_m / m_per_deg_lon, dlat_m / m_per_deg_lat


def _gcj_unchecked(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """WGS84 to GCJ-02 without the bounding-box check."""
    d_lon, d_lat = _gcj_offset(lon, lat)
    return lon + d_lon, lat + d_lat


def _gcj_to_bd(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    z = np.sqrt(lon * lon + lat * lat) + 0.00002 * np.sin(lat * _BD_X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _BD_X_PI)
    return z * np.cos(theta) + _BD_DLON, z * np.sin(theta) + _BD_DLAT


def _bd_to_gcj_rough(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The textbook inverse of :func:`_gcj_to_bd`; off by up to about 1e-6 degrees."""
    x = lon - _BD_DLON
    y = lat - _BD_DLAT
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _BD_X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _BD_X_PI)
    return z * np.cos(theta), z * np.sin(theta)


def _invert(
    forward: _Forward,
    target_lon: FloatArray,
    target_lat: FloatArray,
    start_lon: FloatArray,
    start_lat: FloatArray,
    *,
    tol: float,
    max_iter: int,
) -> tuple[FloatArray, FloatArray]:
    """Solve ``forward(p) == target`` by the fixed-point iteration ``p -= forward(p) - target``.

    All arrays are 1-d. Each point stops as soon as its own correction is below
    ``tol``, so a point gives the same answer alone or within any array. NaN
    points are left untouched. Points still moving after ``max_iter`` rounds
    keep their last estimate.
    """
    lon = start_lon.copy()
    lat = start_lat.copy()
    active = np.flatnonzero(np.isfinite(lon) & np.isfinite(lat))
    for _ in range(max_iter):
        if active.size == 0:
            break
        f_lon, f_lat = forward(lon[active], lat[active])
        d_lon = f_lon - target_lon[active]
        d_lat = f_lat - target_lat[active]
        lon[active] -= d_lon
        lat[active] -= d_lat
        active = active[np.maximum(np.abs(d_lon), np.abs(d_lat)) >= tol]
    return lon, lat


# --------------------------------------------------------------------------- WGS84 <-> GCJ-02


def wgs84_to_gcj02(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Convert WGS84 coordinates to GCJ-02 (Amap/Gaode, Tencent).

    Parameters
    ----------
    lon, lat : array_like
        WGS84 coordinates.

    Returns
    -------
    lon, lat : ndarray
        GCJ-02 coordinates. Points outside the mainland-China box
        (longitude 72.004–137.8347, latitude 0.8293–55.8271) are returned
        unchanged.

    Examples
    --------
    >>> lon, lat = wgs84_to_gcj02(116.391349, 39.907375)
    >>> print(f"{lon:.6f} {lat:.6f}")
    116.397590 39.908776
    >>> wgs84_to_gcj02([2.2945, 116.391349], [48.8584, 39.907375])[0].round(6)
    array([  2.2945 , 116.39759])
    """
    x, y = _as_points(lon, lat)
    inside = _in_china(x, y)
    if inside.any():
        with np.errstate(all="ignore"):
            d_lon, d_lat = _gcj_offset(x[inside], y[inside])
        x[inside] += d_lon
        y[inside] += d_lat
    return x, y


def gcj02_to_wgs84(
    lon: npt.ArrayLike, lat: npt.ArrayLike, *, tol: float = _TOL, max_iter: int = _MAX_ITER
) -> tuple[FloatArray, FloatArray]:
    """Convert GCJ-02 coordinates (Amap/Gaode, Tencent) to WGS84, exactly.

    The inverse of :func:`wgs84_to_gcj02` is computed by fixed-point
    iteration: starting from ``wgs = gcj``, repeat
    ``wgs -= wgs84_to_gcj02(wgs) - gcj`` until the correction of every point is
    below ``tol``. The offset changes slowly (its derivative is below 1 %),
    so each round gains two or more digits and the result is accurate to
    about ``tol / 100``.

    Parameters
    ----------
    lon, lat : array_like
        GCJ-02 coordinates.
    tol : float, default 1e-9
        Stop iterating a point once its correction is below this many degrees.
    max_iter : int, default 30
        Upper bound on the rounds (five usually suffice); a point still moving
        then keeps its last estimate.

    Returns
    -------
    lon, lat : ndarray
        WGS84 coordinates. GCJ-02 points
        outside the mainland-China box are returned unchanged, except in a
        strip about 0.01 degrees wide just outside the edge, where the
        forward transform is discontinuous: a point there that is the image
        of a WGS84 point inside the box returns that point. So
        ``gcj02_to_wgs84(*wgs84_to_gcj02(p))`` gives back every ``p`` in the
        box. Points of the box that are the image of no WGS84 point (the
        matching strip just inside the edge) get the continuous extension
        of the inverse.

    Raises
    ------
    gridmap.common.errors.BadInput
        If ``tol`` is not positive or ``max_iter`` is below 1.

    Examples
    --------
    >>> lon, lat = gcj02_to_wgs84(116.397590, 39.908776)
    >>> print(f"{lon:.6f} {lat:.6f}")
    116.391349 39.907375
    >>> lon, lat = gcj02_to_wgs84(*wgs84_to_gcj02(121.4737, 31.2304))
    >>> print(f"{lon:.9f} {lat:.9f}")
    121.473700000 31.230400000
    """
    _check_iteration(tol, max_iter)
    x, y = _as_points(lon, lat)
    near = _in_china(x, y, margin=_EDGE_MARGIN)
    if near.any():
        g_lon, g_lat = x[near], y[near]
        with np.errstate(all="ignore"):
            w_lon, w_lat = _invert(
                _gcj_unchecked, g_lon, g_lat, g_lon, g_lat, tol=tol, max_iter=max_iter
            )
        # Keep the solution when the GCJ-02 point is in the box, or when it came
        # from a WGS84 point in the box; otherwise the forward was the identity.
        keep = _in_china(g_lon, g_lat) | _in_china(w_lon, w_lat, margin=tol)
        x[near] = np.where(keep, w_lon, g_lon)
        y[near] = np.where(keep, w_lat, g_lat)
    return x, y


# --------------------------------------------------------------------------- GCJ-02 <-> BD-09


def gcj02_to_bd09(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Convert GCJ-02 coordinates to BD-09 (Baidu).

    Parameters
    ----------
    lon, lat : array_like
        GCJ-02 coordinates.

    Returns
    -------
    lon, lat : ndarray
        BD-09 coordinates. The transform has no bounding box and applies
        everywhere.

    Examples
    --------
    >>> lon, lat = gcj02_to_bd09(116.397590, 39.908776)
    >>> print(f"{lon:.6f} {lat:.6f}")
    116.403963 39.915120
    """
    x, y = _as_points(lon, lat)
    with np.errstate(all="ignore"):
        b_lon, b_lat = _gcj_to_bd(x, y)
    # Ufuncs turn 0-d arrays into scalars; keep the documented array type.
    return np.asarray(b_lon, dtype=np.float64), np.asarray(b_lat, dtype=np.float64)


def bd09_to_gcj02(
    lon: npt.ArrayLike, lat: npt.ArrayLike, *, tol: float = _TOL, max_iter: int = _MAX_ITER
) -> tuple[FloatArray, FloatArray]:
    """Convert BD-09 coordinates (Baidu) to GCJ-02, exactly.

    Starts from the textbook inverse (good to about 1e-6 degrees) and refines
    it with the fixed-point iteration ``gcj -= gcj02_to_bd09(gcj) - bd`` until
    every point's correction is below ``tol``.

    Parameters
    ----------
    lon, lat : array_like
        BD-09 coordinates.
    tol, max_iter
        As in :func:`gcj02_to_wgs84`; three rounds usually suffice here.

    Returns
    -------
    lon, lat : ndarray
        GCJ-02 coordinates.

    Raises
    ------
    gridmap.common.errors.BadInput
        As :func:`gcj02_to_wgs84`.

    Examples
    --------
    >>> lon, lat = bd09_to_gcj02(116.403963, 39.915120)
    >>> print(f"{lon:.6f} {lat:.6f}")
    116.397590 39.908776
    """
    _check_iteration(tol, max_iter)
    x, y = _as_points(lon, lat)
    shape = x.shape
    b_lon, b_lat = x.ravel(), y.ravel()
    with np.errstate(all="ignore"):
        s_lon, s_lat = _bd_to_gcj_rough(b_lon, b_lat)
        g_lon, g_lat = _invert(_gcj_to_bd, b_lon, b_lat, s_lon, s_lat, tol=tol, max_iter=max_iter)
    return g_lon.reshape(shape), g_lat.reshape(shape)


# --------------------------------------------------------------------------- WGS84 <-> BD-09


def wgs84_to_bd09(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Convert WGS84 coordinates to BD-09 (Baidu), through GCJ-02.

    Takes what :func:`wgs84_to_gcj02` takes and returns BD-09 coordinates;
    outside the mainland-China box only the Baidu step applies.

    Examples
    --------
    >>> lon, lat = wgs84_to_bd09(116.391349, 39.907375)
    >>> print(f"{lon:.6f} {lat:.6f}")
    116.403963 39.915120
    """
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(
    lon: npt.ArrayLike, lat: npt.ArrayLike, *, tol: float = _TOL, max_iter: int = _MAX_ITER
) -> tuple[FloatArray, FloatArray]:
    """Convert BD-09 coordinates (Baidu) to WGS84, exactly, through GCJ-02.

    Takes what :func:`bd09_to_gcj02` takes, passes ``tol`` and ``max_iter`` to
    each of the two iterative inverses (that one, then :func:`gcj02_to_wgs84`)
    and returns WGS84 coordinates. Raises as they do.

    Examples
    --------
    >>> lon, lat = bd09_to_wgs84(116.403963, 39.915120)
    >>> print(f"{lon:.6f} {lat:.6f}")
    116.391349 39.907375
    """
    g_lon, g_lat = bd09_to_gcj02(lon, lat, tol=tol, max_iter=max_iter)
    return gcj02_to_wgs84(g_lon, g_lat, tol=tol, max_iter=max_iter)


# --------------------------------------------------------------------------- by name


def _system(crs: str) -> _System | None:
    if not isinstance(crs, str):
        return None
    key = crs.strip().lower().replace("-", "").replace("_", "").replace(" ", "")
    return _ALIASES.get(key)


def _require_system(crs: str) -> _System:
    system = _system(crs)
    if system is not None:
        return system
    if isinstance(crs, str) and crs.strip().lower().startswith("epsg:"):
        msg = (
            f"CRS {crs!r} is not one of the Chinese web-map systems handled here; "
            "transform it to EPSG:4326 with pyproj instead"
        )
    else:
        msg = (
            f"unknown CRS {crs!r}; expected one of wgs84, gcj02, bd09, cgcs2000, "
            "EPSG:4326, EPSG:4490 (other EPSG codes go through pyproj)"
        )
    raise BadInput(msg, field="crs")


def is_chinese_crs(crs: str) -> bool:
    """Whether :func:`to_wgs84` and :func:`from_wgs84` handle the named system.

    True for the names of WGS84, CGCS2000, GCJ-02 and BD-09: ``"wgs84"``,
    ``"cgcs2000"``, ``"gcj02"``, ``"bd09"`` (also ``"bd09ll"``), ``"EPSG:4326"``
    and ``"EPSG:4490"``, in any case and with or without ``-``/``_``
    separators (``"GCJ-02"``, ``"WGS_84"``). Anything else, including other
    EPSG codes, is False: callers should hand those to pyproj.

    Parameters
    ----------
    crs : str
        Name of a coordinate reference system.

    Returns
    -------
    bool
        True if this module converts ``crs`` to and from WGS84.

    Examples
    --------
    >>> is_chinese_crs("GCJ-02"), is_chinese_crs("EPSG:4490"), is_chinese_crs("EPSG:3857")
    (True, True, False)
    """
    return _system(crs) is not None


def to_wgs84(lon: npt.ArrayLike, lat: npt.ArrayLike, crs: str) -> tuple[FloatArray, FloatArray]:
    """Convert coordinates stated in ``crs`` to WGS84, the system gridmap stores.

    Parameters
    ----------
    lon, lat : array_like
        Coordinates in ``crs``.
    crs : str
        ``"wgs84"``, ``"gcj02"`` or ``"bd09"`` (see :func:`is_chinese_crs` for
        every accepted spelling). CGCS2000 (``"cgcs2000"``, ``"EPSG:4490"``)
        equals WGS84 within a metre and is passed through unchanged.

    Returns
    -------
    lon, lat : ndarray
        WGS84 coordinates.

    Raises
    ------
    gridmap.common.errors.BadInput
        With ``field="crs"`` if ``crs`` is not handled here; other EPSG codes
        belong to pyproj.

    Examples
    --------
    >>> lon, lat = to_wgs84(116.403963, 39.915120, "BD-09")
    >>> print(f"{lon:.6f} {lat:.6f}")
    116.391349 39.907375
    >>> to_wgs84([116.4], [39.9], "EPSG:4490")
    (array([116.4]), array([39.9]))
    """
    system = _require_system(crs)
    if system == "gcj02":
        return gcj02_to_wgs84(lon, lat)
    if system == "bd09":
        return bd09_to_wgs84(lon, lat)
    return _as_points(lon, lat)


def from_wgs84(lon: npt.ArrayLike, lat: npt.ArrayLike, crs: str) -> tuple[FloatArray, FloatArray]:
    """Convert WGS84 coordinates to ``crs``, e.g. to overlay them on a GCJ-02 basemap.

    Parameters
    ----------
    lon, lat : array_like
        WGS84 coordinates.
    crs : str
        Target system, named as for :func:`to_wgs84`.

    Returns
    -------
    lon, lat : ndarray
        Coordinates in ``crs``.

    Raises
    ------
    gridmap.common.errors.BadInput
        As :func:`to_wgs84`.

    Examples
    --------
    >>> lon, lat = from_wgs84(116.391349, 39.907375, "gcj02")
    >>> print(f"{lon:.6f} {lat:.6f}")
    116.397590 39.908776
    """
    system = _require_system(crs)
    if system == "gcj02":
        return wgs84_to_gcj02(lon, lat)
    if system == "bd09":
        return wgs84_to_bd09(lon, lat)
    return _as_points(lon, lat)
