"""Shared synthetic geometry for the patrol tests (seeded; real data lives in the demo)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely


def lattice_roads(
    lon0: float = 24.94, lat0: float = 60.17, n: int = 5, step_m: float = 100.0, seed: int = 0
) -> gpd.GeoDataFrame:
    """An n x n street lattice (metres → WGS84) with a few streets removed."""
    crs = pyproj.CRS.from_epsg(32635 if lon0 < 30 else 32651)
    t = pyproj.Transformer.from_crs(4326, crs, always_xy=True)
    back = pyproj.Transformer.from_crs(crs, 4326, always_xy=True)
    x0, y0 = t.transform(lon0, lat0)
    rng = np.random.default_rng(seed)
    lines, names = [], []
    for i in range(n):
        for j in range(n - 1):
            for horiz in (True, False):
                if rng.random() < 0.12:
                    continue
                if horiz:
                    a, b = (
                        (x0 + j * step_m, y0 + i * step_m),
                        (x0 + (j + 1) * step_m, y0 + i * step_m),
                    )
                    names.append(f"东西{i}路")
                else:
                    a, b = (
                        (x0 + i * step_m, y0 + j * step_m),
                        (x0 + i * step_m, y0 + (j + 1) * step_m),
                    )
                    names.append(f"南北{i}街")
                lines.append(shapely.LineString([back.transform(*a), back.transform(*b)]))
    return gpd.GeoDataFrame(
        {"name": names, "walkable": True, "drivable": True, "id": range(len(lines))},
        geometry=lines,
        crs=4326,
    )


def walk_track(
    line_wgs84: shapely.LineString,
    *,
    speed: float = 1.2,
    every_s: float = 5.0,
    noise_m: float = 4.0,
    seed: int = 1,
    t0: str = "2026-05-01T08:00:00Z",
) -> pd.DataFrame:
    """Fixes along a WGS84 line at walking speed with Gaussian noise (metres)."""
    crs = pyproj.CRS.from_epsg(32635 if line_wgs84.centroid.x < 30 else 32651)
    t = pyproj.Transformer.from_crs(4326, crs, always_xy=True)
    back = pyproj.Transformer.from_crs(crs, 4326, always_xy=True)
    line = shapely.transform(line_wgs84, t.transform, interleaved=False)
    rng = np.random.default_rng(seed)
    d = np.arange(0, line.length, speed * every_s)
    pts = shapely.get_coordinates(shapely.line_interpolate_point(line, d))
    jitter = rng.normal(0, noise_m, pts.shape)
    dt = every_s + rng.normal(0, 0.3, len(d))
    times = pd.Timestamp(t0) + pd.to_timedelta(np.cumsum(np.r_[0, dt[1:]]), unit="s")
    lon, lat = back.transform(*(pts + jitter).T)
    return pd.DataFrame({"time": times, "lon": lon, "lat": lat})
