"""Seeded synthetic events placed on real streets and buildings.

gridmap ships no real event data. For demos, notebooks, tests and benchmarks
it generates events that are clearly labelled synthetic (``synthetic = true``,
``source = "synthetic"``, descriptions starting with 合成/synthetic) but lie
on the real geometry of the imported extract: points along real road lines
and at real building entrances (representative points).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridmap.common.errors import BadInput
from gridmap.common.model import EVENT_CATEGORIES
from gridmap.geo.projection import local_crs

__all__ = ["CATEGORY_WEIGHTS", "synthetic_events"]

#: Relative frequency of first-level categories in the synthetic stream.
CATEGORY_WEIGHTS: dict[str, float] = {
    "city_management": 0.32,
    "safety_hazard": 0.22,
    "dispute": 0.12,
    "residents_request": 0.16,
    "public_security": 0.08,
    "key_task": 0.06,
    "epidemic": 0.04,
}
_STATUS_WEIGHTS = {
    "reported": 0.08,
    "accepted": 0.06,
    "dispatched": 0.08,
    "handling": 0.10,
    "inspecting": 0.05,
    "closed": 0.60,
    "rejected": 0.03,
}
_CHANNELS = {"patrol": 0.6, "hotline_12345": 0.25, "public": 0.15}
_URGENCY = {"normal": 0.8, "urgent": 0.17, "critical": 0.03}


def _pick(rng: np.random.Generator, table: dict[str, float], n: int) -> np.ndarray:
    keys = list(table)
    p = np.array([table[k] for k in keys], dtype=float)
    return np.asarray(keys, dtype=object)[rng.choice(len(keys), size=n, p=p / p.sum())]


def synthetic_events(
    roads: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame,
    *,
    n: int,
    seed: int = 0,
    start: pd.Timestamp | str = "2026-09-01T00:00:00Z",
    end: pd.Timestamp | str = "2026-11-28T00:00:00Z",
    on_street_share: float = 0.6,
) -> gpd.GeoDataFrame:
    """Generate *n* seeded synthetic events on real streets and buildings.

    Parameters
    ----------
    roads, buildings : GeoDataFrame
        Real road lines and building footprints (WGS84).
    n : int
        Number of events.
    seed : int
        Random seed: the same seed gives the same events (and the same
        ``source_id`` values, so storing them twice adds nothing).
    start, end : timestamp
        Reporting period (UTC).
    on_street_share : float
        Share of events placed along roads; the rest at buildings.

    Returns
    -------
    GeoDataFrame
        Columns of the ``events`` layer, WGS84 points, ``synthetic`` true.

    Examples
    --------
    >>> import shapely, geopandas as gpd
    >>> line = shapely.LineString([(24.94, 60.17), (24.95, 60.17)])
    >>> r = gpd.GeoDataFrame(geometry=[line], crs=4326)
    >>> b = gpd.GeoDataFrame(geometry=[shapely.box(24.94, 60.171, 24.941, 60.172)], crs=4326)
    >>> ev = synthetic_events(r, b, n=5, seed=1)
    >>> len(ev), bool(ev["synthetic"].all())
    (5, True)
    """
    if n < 0:
        raise BadInput("n must not be negative", field="n")
    if roads.empty and buildings.empty:
        raise BadInput("need roads or buildings to place events on", field="roads")
    rng = np.random.default_rng(seed)
    t0, t1 = pd.Timestamp(start), pd.Timestamp(end)
    t0 = t0.tz_localize("UTC") if t0.tzinfo is None else t0.tz_convert("UTC")
    t1 = t1.tz_localize("UTC") if t1.tzinfo is None else t1.tz_convert("UTC")
    n_street = round(n * on_street_share) if not roads.empty else 0
    if buildings.empty:
        n_street = n
    pts = np.concatenate(
        [_on_roads(roads, n_street, rng), _at_buildings(buildings, n - n_street, rng)]
    )
    order = rng.permutation(n)
    pts = pts[order]
    span = (t1 - t0).total_seconds()
    reported = t0 + pd.to_timedelta(np.sort(rng.uniform(0, span, n)), unit="s")
    category = _pick(rng, CATEGORY_WEIGHTS, n)
    status = _pick(rng, _STATUS_WEIGHTS, n)
    hours = rng.gamma(shape=1.5, scale=30.0, size=n)
    closed_at = pd.Series(reported + pd.to_timedelta(hours, unit="h"))
    closed_at = closed_at.where(status == "closed").where(closed_at <= t1, t1)
    closed_at = closed_at.where(status == "closed")
    zh = [EVENT_CATEGORIES[c][0] for c in category]
    return gpd.GeoDataFrame(
        {
            "category": category,
            "status": status,
            "urgency": _pick(rng, _URGENCY, n),
            "description": [f"合成事件 synthetic event #{i + 1}: {z}" for i, z in enumerate(zh)],
            "channel": _pick(rng, _CHANNELS, n),
            "reporter": (workers := [f"synthetic-worker-{k:02d}" for k in rng.integers(1, 21, n)]),
            "reported_by": workers,  # the reporting account (KPI key, v25)
            "reported_at": reported,
            "closed_at": closed_at.to_numpy(),
            "synthetic": True,
            "source": "synthetic",
            "source_id": [f"seed{seed}-{i + 1}" for i in range(n)],
        },
        geometry=pts,
        crs="EPSG:4326",
    )


def _on_roads(roads: gpd.GeoDataFrame, k: int, rng: np.random.Generator) -> np.ndarray:
    if k == 0:
        return np.empty(0, dtype=object)
    crs = local_crs(roads.geometry)
    lines = roads.geometry.to_crs(crs)
    lengths = lines.length.to_numpy()
    idx = rng.choice(len(lines), size=k, p=lengths / lengths.sum())
    frac = rng.uniform(0, 1, k)
    pts = shapely.line_interpolate_point(lines.to_numpy()[idx], frac * lengths[idx])
    return np.asarray(gpd.GeoSeries(pts, crs=crs).to_crs(4326).to_numpy(), dtype=object)


def _at_buildings(buildings: gpd.GeoDataFrame, k: int, rng: np.random.Generator) -> np.ndarray:
    if k == 0:
        return np.empty(0, dtype=object)
    idx = rng.choice(len(buildings), size=k)
    pts = buildings.geometry.representative_point().to_numpy()[idx]
    return np.asarray(pts, dtype=object)
