"""Kernel density of events (核密度估计): a smooth surface of events per km², in metres.

What this module owns:

- :func:`kde_surface` — a Gaussian kernel density computed in the local UTM zone
  (through :mod:`gridmap.geo.projection`): events are counted on a raster and
  convolved with the kernel by FFT (``scipy``, the ``[analytics]`` extra).
- :func:`kde_bandwidth` — the kernel's width from the data: Scott's rule by
  default, or Silverman's; :func:`kde_surface` also takes a width in metres.
- :class:`DensitySurface` — the raster, and its cells above a share of the peak
  as WGS84 points, which the heat layer draws (:func:`layers.heat.heat_layer`).

Counts per H3 cell are in :mod:`gridmap.analytics.binning`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from gridmap.common.errors import BadInput
from gridmap.common.extras import require
from gridmap.geo.projection import WGS84, local_crs

__all__ = ["DensitySurface", "kde_bandwidth", "kde_surface"]

_BANDWIDTH_RULES = ("scott", "silverman")


# --------------------------------------------------------------------------- kernel density


@dataclass(frozen=True)
class DensitySurface:
    """A kernel density raster in a metric CRS.

    Attributes
    ----------
    x, y : numpy.ndarray
        Centres of the raster columns and rows, in metres of :attr:`crs`.
    density : numpy.ndarray
        Shape ``(len(y), len(x))``: events per km² (sums to the number of
        events, up to what falls outside the raster).
    crs : pyproj.CRS
        The local UTM zone used.
    bandwidth_m : float
        Standard deviation of the Gaussian kernel, metres.
    cell_m : float
        Raster cell size, metres.
    """

    x: np.ndarray
    y: np.ndarray
    density: np.ndarray
    crs: pyproj.CRS
    bandwidth_m: float
    cell_m: float

    def to_points(self, *, min_share: float = 0.01) -> gpd.GeoDataFrame:
        """Raster cells above *min_share* of the peak, as WGS84 points with ``density``.

        This is what the heat layer draws (:func:`layers.heat.heat_layer`).

        Examples
        --------
        >>> pts = pd.DataFrame({"lon": [24.94, 24.941, 24.95], "lat": [60.17, 60.171, 60.175]})
        >>> surface = kde_surface(pts, bandwidth=100.0, cell_m=50.0)
        >>> surface.to_points().crs.to_epsg()
        4326
        """
        peak = float(self.density.max()) if self.density.size else 0.0
        rows, cols = np.nonzero(self.density > peak * min_share) if peak > 0 else ([], [])
        xs, ys = self.x[np.asarray(cols, int)], self.y[np.asarray(rows, int)]
        pts = gpd.GeoSeries(shapely.points(xs, ys), crs=self.crs).to_crs(WGS84)
        values = self.density[np.asarray(rows, int), np.asarray(cols, int)]
        return gpd.GeoDataFrame({"density": values}, geometry=pts.values, crs=WGS84)


def kde_bandwidth(
    x: np.ndarray, y: np.ndarray, rule: str = "scott", *, weights: np.ndarray | None = None
) -> float:
    """Bandwidth (metres) of an isotropic Gaussian kernel from the data.

    With ``n`` points (or the sum of weights) and ``σ = sqrt((var x + var y) / 2)``:

    - ``"scott"``: ``h = σ · n^(-1/6)`` (Scott's rule in two dimensions,
      ``n^(-1/(d+4))`` with ``d = 2``);
    - ``"silverman"``: ``h = min(σ, IQR/1.349) · n^(-1/6)`` — the same factor
      (in two dimensions Silverman's ``(n (d+2) / 4)^(-1/(d+4))`` equals
      Scott's) with Silverman's robust spread, which resists outliers.

    Both assume roughly one blob; for patchy urban events they oversmooth,
    which is why :func:`kde_surface` takes a bandwidth in metres too.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.normal(0, 100, 1000), rng.normal(0, 100, 1000)
    >>> round(kde_bandwidth(x, y)), round(kde_bandwidth(x, y, "silverman"))
    (32, 32)
    """
    if rule not in _BANDWIDTH_RULES:
        raise BadInput(
            f"bandwidth must be a number of metres or one of {', '.join(_BANDWIDTH_RULES)}",
            field="bandwidth",
        )
    w = np.ones_like(x, dtype="float64") if weights is None else np.asarray(weights, "float64")
    n = float(w.sum())
    if n <= 1:
        raise BadInput("a bandwidth from the data needs at least two events", field="bandwidth")
    mx, my = np.average(x, weights=w), np.average(y, weights=w)
    sigma = math.sqrt(
        (np.average((x - mx) ** 2, weights=w) + np.average((y - my) ** 2, weights=w)) / 2.0
    )
    if rule == "silverman":
        iqr = np.subtract(*np.percentile(x, [75, 25])) + np.subtract(*np.percentile(y, [75, 25]))
        robust = (iqr / 2.0) / 1.349
        sigma = min(sigma, robust) if robust > 0 else sigma
    h = sigma * n ** (-1.0 / 6.0)
    if not h > 0:
        raise BadInput(
            "the events all lie at one place: give a bandwidth in metres", field="bandwidth"
        )
    return float(h)


def kde_surface(
    points: pd.DataFrame,
    *,
    bandwidth: float | str = "scott",
    cell_m: float | None = None,
    weights: str | None = None,
    bounds: Sequence[float] | None = None,
    max_cells: int = 4_000_000,
) -> DensitySurface:
    """Gaussian kernel density of events, computed in metres (local UTM zone).

    Points are counted on a raster of *cell_m* metres (extended by three
    bandwidths around the data, or covering *bounds*), and the counts are
    convolved with a Gaussian kernel of standard deviation *bandwidth*
    (FFT, truncated at 4 σ). Rounding points to cell centres moves them at
    most ``cell_m / √2``; the default cell (a fifth of the bandwidth) keeps
    that well below the kernel's width.

    Parameters
    ----------
    points : pandas.DataFrame
        ``lon``, ``lat`` (WGS84).
    bandwidth : float or {"scott", "silverman"}, default "scott"
        Kernel standard deviation in metres, or a rule (:func:`kde_bandwidth`).
    cell_m : float, optional
        Raster cell size in metres (default: bandwidth / 5, at least 5 m).
    weights : str, optional
        Column of *points* holding weights (e.g. urgency).
    bounds : sequence of 4 floats, optional
        WGS84 (minx, miny, maxx, maxy) to cover instead of the data's extent.
    max_cells : int
        Refuse rasters larger than this (``BadInput`` naming ``cell_m``).

    Returns
    -------
    DensitySurface
        Density in events per km².

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> pts = pd.DataFrame({"lon": 24.94 + rng.normal(0, 0.002, 200),
    ...                     "lat": 60.17 + rng.normal(0, 0.001, 200)})
    >>> s = kde_surface(pts, bandwidth=80.0)
    >>> s.bandwidth_m, s.crs.to_epsg()
    (80.0, 32635)
    >>> round(float(s.density.sum() * (s.cell_m / 1000) ** 2))
    200
    """
    lon = pd.to_numeric(points["lon"], errors="coerce").to_numpy("float64")
    lat = pd.to_numeric(points["lat"], errors="coerce").to_numpy("float64")
    ok = np.isfinite(lon) & np.isfinite(lat)
    w = (
        np.ones(int(ok.sum()))
        if weights is None
        else pd.to_numeric(points[weights], errors="coerce").fillna(0).to_numpy("float64")[ok]
    )
    lon, lat = lon[ok], lat[ok]
    if lon.size == 0:
        raise BadInput("no events with coordinates to estimate a density from", field="points")
    extent = tuple(bounds) if bounds is not None else (lon.min(), lat.min(), lon.max(), lat.max())
    crs = local_crs(extent)
    tr = pyproj.Transformer.from_crs(WGS84, crs, always_xy=True)
    x, y = tr.transform(lon, lat)
    x, y = np.asarray(x), np.asarray(y)
    if isinstance(bandwidth, str):
        h = kde_bandwidth(x, y, bandwidth, weights=w)
    else:
        h = float(bandwidth)
        if not (math.isfinite(h) and h > 0):
            raise BadInput(f"bandwidth must be positive metres, got {bandwidth}", field="bandwidth")
    cell = float(cell_m) if cell_m is not None else max(5.0, h / 5.0)
    if not (math.isfinite(cell) and cell > 0):
        raise BadInput(f"cell_m must be positive metres, got {cell_m}", field="cell_m")
    if bounds is not None:
        bx, by = tr.transform([extent[0], extent[2]], [extent[1], extent[3]])
        x0, x1, y0, y1 = min(bx), max(bx), min(by), max(by)
    else:
        pad = 3.0 * h
        x0, x1, y0, y1 = x.min() - pad, x.max() + pad, y.min() - pad, y.max() + pad
    nx, ny = math.ceil((x1 - x0) / cell) + 1, math.ceil((y1 - y0) / cell) + 1
    if nx * ny > max_cells:
        raise BadInput(
            f"the density raster would have {nx * ny:,} cells; use a larger cell_m", field="cell_m"
        )
    xe = x0 + cell * np.arange(nx + 1) - cell / 2
    ye = y0 + cell * np.arange(ny + 1) - cell / 2
    hist, _, _ = np.histogram2d(y, x, bins=(ye, xe), weights=w)
    r = math.ceil(4.0 * h / cell)
    offsets = np.arange(-r, r + 1) * cell
    g = np.exp(-0.5 * (offsets / h) ** 2)
    kernel = np.outer(g, g)
    kernel /= kernel.sum()
    signal = require("scipy.signal", extra="analytics")
    smoothed = np.clip(signal.fftconvolve(hist, kernel, mode="same"), 0.0, None)
    density = smoothed / (cell / 1000.0) ** 2
    centres_x, centres_y = x0 + cell * np.arange(nx), y0 + cell * np.arange(ny)
    return DensitySurface(centres_x, centres_y, density, crs, h, cell)
