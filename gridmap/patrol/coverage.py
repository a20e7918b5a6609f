"""Measured patrol coverage (巡查覆盖率) from GPS tracks, and the assessment band.

A street counts as walked where it lies within the GPS accuracy (default 20 m)
of the track: the track is buffered in the local metric CRS and intersected
with the required streets. Households count as reached when their building
lies within ``reach_m`` of the track; a key area counts as visited when the
worker stayed within ``accuracy_m`` of it for at least ``min_dwell_min``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from gridmap.common.errors import BadInput
from gridmap.geo.projection import local_crs

__all__ = ["DEFAULT_BANDS", "CoverageResult", "assessment_band", "measure_coverage"]

#: Assessment bands: (lowest share, code, zh-CN, English), best first; below the last: none.
DEFAULT_BANDS: tuple[tuple[float, str, str, str], ...] = (
    (0.95, "full", "满分", "Full marks"),
    (0.90, "90_94", "90–94%", "90–94%"),
    (0.85, "85_89", "85–89%", "85–89%"),
)


def assessment_band(
    share: float, bands: Sequence[tuple[float, str, str, str]] = DEFAULT_BANDS
) -> str:
    """The band code of a coverage share (0–1): ``full``, ``90_94``, ``85_89`` or ``none``.

    Examples
    --------
    >>> assessment_band(0.95), assessment_band(0.9499), assessment_band(0.86), assessment_band(0.5)
    ('full', '90_94', '85_89', 'none')
    """
    if not np.isfinite(share):
        return "none"
    for low, code, _, _ in sorted(bands, key=lambda b: -b[0]):
        if share >= low - 1e-12:
            return code
    return "none"


@dataclass
class CoverageResult:
    """What the tracks covered.

    Attributes
    ----------
    streets : GeoDataFrame
        Required streets with ``length_m``, ``covered_m`` and ``share``.
    length_m, covered_m, share : float
        Totals over the required streets.
    band : str
        Assessment band of ``share``.
    households, households_reached : int
        Households in the buildings given, and those within reach.
    key_areas : DataFrame
        ``name``, ``dwell_min``, ``visited`` per key area.
    """

    streets: gpd.GeoDataFrame
    length_m: float
    covered_m: float
    share: float
    band: str
    households: int = 0
    households_reached: int = 0
    key_areas: pd.DataFrame = field(default_factory=pd.DataFrame)

    def summary(self) -> dict[str, Any]:
        """JSON-ready totals."""
        return {
            "street_length_m": round(self.length_m, 1),
            "covered_length_m": round(self.covered_m, 1),
            "coverage": round(self.share, 4),
            "band": self.band,
            "households": self.households,
            "households_reached": self.households_reached,
            "key_areas_visited": int(self.key_areas["visited"].sum()) if len(self.key_areas) else 0,
            "key_areas": len(self.key_areas),
        }


def measure_coverage(
    tracks: Sequence[pd.DataFrame],
    streets: gpd.GeoDataFrame,
    *,
    accuracy_m: float = 20.0,
    buildings: gpd.GeoDataFrame | None = None,
    reach_m: float = 30.0,
    key_areas: gpd.GeoDataFrame | None = None,
    min_dwell_min: float = 10.0,
    bands: Sequence[tuple[float, str, str, str]] = DEFAULT_BANDS,
) -> CoverageResult:
    """Measure what one or more tracks covered.

    Parameters
    ----------
    tracks : sequence of DataFrame
        Fixes with ``time``, ``lon``, ``lat`` (WGS84), one frame per track.
    streets : GeoDataFrame
        Required streets (WGS84 lines).
    accuracy_m : float
        GPS accuracy: the buffer around the track, in metres.
    buildings : GeoDataFrame, optional
        Buildings with ``households``.
    reach_m : float
        Distance from the track within which households count as reached.
    key_areas : GeoDataFrame, optional
        Key areas (points or polygons) with ``name``.
    min_dwell_min : float
        Dwell needed for a key area to count as visited.
    bands : sequence
        Assessment bands (see :data:`DEFAULT_BANDS`).

    Returns
    -------
    CoverageResult

    Raises
    ------
    gridmap.common.errors.BadInput
        For a non-positive accuracy or no streets.

    Examples
    --------
    >>> import geopandas as gpd, pandas as pd, shapely
    >>> streets = gpd.GeoDataFrame(geometry=[
    ...     shapely.LineString([(24.94, 60.17), (24.95, 60.17)])], crs=4326)
    >>> fixes = pd.DataFrame({"time": pd.to_datetime(["2026-05-01T08:00Z", "2026-05-01T08:10Z"]),
    ...                       "lon": [24.94, 24.95], "lat": [60.17, 60.17]})
    >>> res = measure_coverage([fixes], streets)
    >>> res.band, round(res.share, 2)
    ('full', 1.0)
    """
    for name, v in (("accuracy_m", accuracy_m), ("reach_m", reach_m)):
        if not (np.isfinite(v) and 0 < v <= 1000):
            raise BadInput(f"{name} must be between 0 and 1000 metres", field=name)
    if len(streets) == 0:
        raise BadInput("there are no required streets to measure", field="grid")
    crs = local_crs(streets)
    to_m = pyproj.Transformer.from_crs(4326, crs, always_xy=True)
    lines = []
    for fx in tracks:
        if len(fx) >= 2:
            x, y = to_m.transform(fx["lon"].to_numpy(float), fx["lat"].to_numpy(float))
            lines.append(shapely.LineString(np.column_stack([x, y])))
    swath = shapely.union_all(shapely.buffer(lines, accuracy_m)) if lines else shapely.Polygon()
    metric = streets.to_crs(crs)
    geoms = metric.geometry.values
    length = shapely.length(geoms)
    covered = shapely.length(shapely.intersection(geoms, swath)) if lines else np.zeros(len(geoms))
    out = gpd.GeoDataFrame(
        {
            "length_m": length,
            "covered_m": covered,
            "share": np.divide(covered, length, out=np.zeros_like(length), where=length > 0),
        },
        geometry=streets.geometry.values,
        index=streets.index,
        crs=streets.crs,
    )
    total, done = float(length.sum()), float(covered.sum())
    share = done / total if total > 0 else 0.0
    result = CoverageResult(
        streets=out,
        length_m=total,
        covered_m=done,
        share=share,
        band=assessment_band(share, bands),
    )
    track_m = shapely.union_all(lines) if lines else None
    if buildings is not None and len(buildings):
        hh = pd.to_numeric(buildings.get("households"), errors="coerce")
        hh = hh.fillna(0).to_numpy(float) if hh is not None else np.zeros(len(buildings))
        b_m = buildings.to_crs(crs).geometry.values
        near = (
            shapely.dwithin(b_m, track_m, reach_m)
            if track_m is not None
            else np.zeros(len(b_m), bool)
        )
        result.households = int(hh.sum())
        result.households_reached = int(hh[near].sum())
    if key_areas is not None and len(key_areas):
        result.key_areas = _dwell(tracks, key_areas, crs, accuracy_m, min_dwell_min)
    return result


def _dwell(
    tracks: Sequence[pd.DataFrame],
    areas: gpd.GeoDataFrame,
    crs: pyproj.CRS,
    accuracy_m: float,
    min_dwell_min: float,
) -> pd.DataFrame:
    """Minutes spent within each key area (both fixes of an interval inside)."""
    zones = shapely.buffer(areas.to_crs(crs).geometry.values, accuracy_m)
    dwell = np.zeros(len(areas))
    to_m = pyproj.Transformer.from_crs(4326, crs, always_xy=True)
    for fx in tracks:
        if len(fx) < 2:
            continue
        x, y = to_m.transform(fx["lon"].to_numpy(float), fx["lat"].to_numpy(float))
        pts = shapely.points(x, y)
        dt = fx["time"].diff().dt.total_seconds().to_numpy()[1:] / 60
        for i, zone in enumerate(zones):
            inside = shapely.contains(zone, pts)
            dwell[i] += float(dt[inside[1:] & inside[:-1]].sum())
    names = areas["name"].to_numpy(dtype=object) if "name" in areas else [None] * len(areas)
    return pd.DataFrame(
        {"name": names, "dwell_min": dwell, "visited": dwell >= min_dwell_min},
        index=areas.index,
    )
