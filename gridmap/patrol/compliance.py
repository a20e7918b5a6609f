"""Was the event plan followed? GPS tracks matched against a plan's visits and main streets.

A required visit (a key area in one slot) counts as **made** when some worker
on the plan stayed inside the area's zone — the area buffered by the GPS
accuracy, together with the planned visit point — within the slot for at
least ``dwell_share`` of the required dwell (fixes inside the zone with gaps
of at most ``max_gap_s`` form one stay; a stay is clipped to the slot).
Otherwise it is **missed**, with the slot's times. A made visit reports who
made it, when they arrived and stayed, and its delay against the planned
arrival (``late`` beyond ``late_after_min``).

Main streets are measured per shift like
:func:`gridmap.patrol.coverage.measure_coverage` does (the length of the plan's
main streets within the GPS accuracy of the tracks recorded during the
shift), on samples every 5 m.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from gridmap.common.errors import BadInput
from gridmap.geo.projection import local_crs
from gridmap.patrol.coverage import assessment_band

__all__ = ["MatchRules", "match_plan"]


def _stays(
    t: np.ndarray, inside: np.ndarray, max_gap_s: float
) -> list[tuple[np.datetime64, np.datetime64]]:
    """(first, last) fix times of each run of fixes inside a zone."""
    idx = np.flatnonzero(inside)
    if len(idx) == 0:
        return []
    gaps = np.diff(t[idx]).astype("timedelta64[ms]").astype(np.int64) / 1000.0
    breaks = np.flatnonzero((np.diff(idx) > 1) | (gaps > max_gap_s))
    starts = np.r_[0, breaks + 1]
    ends = np.r_[breaks, len(idx) - 1]
    return [(t[idx[a]], t[idx[b]]) for a, b in zip(starts, ends, strict=True)]


def _times(frame: pd.DataFrame) -> np.ndarray:
    return pd.to_datetime(frame["time"], utc=True).to_numpy(dtype="datetime64[ms]")


@dataclass(frozen=True)
class MatchRules:
    """When a GPS track makes a visit: accuracy, dwell, gaps and lateness.

    Attributes
    ----------
    accuracy_m : float
        GPS accuracy: the zone buffer and the street swath (metres).
    dwell_share : float
        Share of the required dwell a stay needs.
    max_gap_s : float
        Longest gap between fixes within one stay.
    late_after_min : float
        Delay after the planned arrival counted as late.

    Examples
    --------
    >>> MatchRules(dwell_share=2).check()
    Traceback (most recent call last):
    ...
    gridmap.common.errors.BadInput: dwell_share must be between 0 and 1
    """

    accuracy_m: float = 20.0
    dwell_share: float = 0.8
    max_gap_s: float = 120.0
    late_after_min: float = 5.0

    def check(self) -> None:
        """Raise :class:`~gridmap.common.errors.BadInput` for a value out of range."""
        for name, v in (("accuracy_m", self.accuracy_m), ("max_gap_s", self.max_gap_s)):
            if not (np.isfinite(v) and 0 < v <= 1000):
                raise BadInput(f"{name} must be > 0 and at most 1000", field=name)
        if not (np.isfinite(self.dwell_share) and 0 <= self.dwell_share <= 1):
            raise BadInput("dwell_share must be between 0 and 1", field="dwell_share")
        if not (np.isfinite(self.late_after_min) and 0 <= self.late_after_min <= 1440):
            raise BadInput("late_after_min must be between 0 and 1440", field="late_after_min")


def match_plan(
    visits: pd.DataFrame,
    zones: Mapping[Any, shapely.Geometry],
    tracks: Sequence[tuple[str, pd.DataFrame]],
    *,
    streets: gpd.GeoDataFrame | None = None,
    shifts: Sequence[tuple[int, pd.Timestamp, pd.Timestamp]] = (),
    rules: MatchRules = MatchRules(),
) -> dict[str, Any]:
    """Match GPS tracks against a plan's required visits and main streets.

    Parameters
    ----------
    visits : DataFrame
        One row per required visit: ``key_area``, ``name``, ``slot``,
        ``slot_start``, ``slot_end`` (time-zone aware), ``dwell_min``, and
        the plan's ``planned_worker`` and ``planned_arrive`` (null when the
        plan could not meet the visit).
    zones : mapping
        Key area → WGS84 geometry where a stay counts (the area and the
        planned visit point); buffered here by ``rules.accuracy_m``.
    tracks : sequence of (worker, fixes)
        Fixes with ``time`` (time-zone aware), ``lon``, ``lat`` (WGS84).
    streets : GeoDataFrame, optional
        The plan's main streets (WGS84 lines, optional ``name``).
    shifts : sequence of (number, start, end)
        The plan's shifts, for street coverage per shift.
    rules : MatchRules
        GPS accuracy (zone buffer and street swath), share of the dwell a
        stay needs, longest gap within one stay, delay counted as late.

    Returns
    -------
    dict
        ``visits`` (every required visit with ``status`` "made" / "missed"),
        ``missed`` (the missed ones), ``streets`` (per shift) and ``summary``.

    Examples
    --------
    >>> import shapely
    >>> visits = pd.DataFrame({"key_area": [1, 1], "name": ["东门", "东门"], "slot": [1, 2],
    ...     "slot_start": pd.to_datetime(["2026-10-01T08:00Z", "2026-10-01T09:00Z"]),
    ...     "slot_end": pd.to_datetime(["2026-10-01T09:00Z", "2026-10-01T10:00Z"]),
    ...     "dwell_min": [10.0, 10.0], "planned_worker": ["李", "李"],
    ...     "planned_arrive": pd.to_datetime(["2026-10-01T08:10Z", "2026-10-01T09:10Z"])})
    >>> t = pd.date_range("2026-10-01T08:05Z", "2026-10-01T08:25Z", freq="30s")
    >>> fixes = pd.DataFrame({"time": t, "lon": 24.94, "lat": 60.17})
    >>> out = match_plan(visits, {1: shapely.Point(24.94, 60.17)}, [("李", fixes)])
    >>> [v["status"] for v in out["visits"]], out["summary"]["missed"]
    (['made', 'missed'], 1)
    """
    rules.check()
    accuracy_m = rules.accuracy_m
    keys = list(zones)
    geoms = [zones[k] for k in keys]
    crs = _crs(geoms, tracks)
    to_m = pyproj.Transformer.from_crs(4326, crs, always_xy=True)
    metric = [
        shapely.buffer(shapely.transform(g, to_m.transform, interleaved=False), accuracy_m)  # type: ignore[arg-type]
        for g in geoms
    ]
    stays: dict[Any, list[tuple[str, np.datetime64, np.datetime64]]] = {k: [] for k in keys}
    for worker, fixes in tracks:
        if len(fixes) == 0:
            continue
        fx = fixes.sort_values("time")
        t = _times(fx)
        x, y = to_m.transform(fx["lon"].to_numpy(float), fx["lat"].to_numpy(float))
        for k, zone in zip(keys, metric, strict=True):
            inside = shapely.contains_xy(zone, x, y)
            stays[k] += [(worker, a, b) for a, b in _stays(t, inside, rules.max_gap_s)]
    rows = [
        _visit(row, stays.get(row["key_area"], []), rules.dwell_share, rules.late_after_min)
        for row in visits.to_dict("records")
    ]
    made = [r for r in rows if r["status"] == "made"]
    delays = [r["delay_min"] for r in made if r.get("delay_min") is not None]
    summary = {
        "required": len(rows),
        "made": len(made),
        "missed": len(rows) - len(made),
        "late": sum(1 for r in made if r.get("late")),
        "mean_delay_min": round(float(np.mean(delays)), 1) if delays else None,
        "tracks": len(tracks),
    }
    return {
        "summary": summary,
        "visits": rows,
        "missed": [r for r in rows if r["status"] == "missed"],
        "streets": _streets(streets, tracks, shifts, accuracy_m),
    }


def _crs(geoms: Sequence[shapely.Geometry], tracks: Sequence[tuple[str, pd.DataFrame]]) -> Any:
    pts = [shapely.centroid(g) for g in geoms if g is not None and not shapely.is_empty(g)]
    for _, fx in tracks:
        if len(fx):
            pts.append(shapely.Point(float(fx["lon"].iloc[0]), float(fx["lat"].iloc[0])))
    if not pts:
        return pyproj.CRS.from_epsg(3857)
    return local_crs(gpd.GeoSeries(pts, crs=4326))


def _visit(
    row: Mapping[Any, Any],
    stays: list[tuple[str, np.datetime64, np.datetime64]],
    dwell_share: float,
    late_after_min: float,
) -> dict[str, Any]:
    s = pd.Timestamp(row["slot_start"]).tz_convert("UTC").to_datetime64()
    e = pd.Timestamp(row["slot_end"]).tz_convert("UTC").to_datetime64()
    need = float(row.get("dwell_min") or 0.0) * dwell_share * 60
    planned: Any = row.get("planned_arrive")
    out: dict[str, Any] = {
        "key_area": row["key_area"],
        "name": row.get("name"),
        "slot": int(row["slot"]),
        "slot_start": pd.Timestamp(row["slot_start"]).isoformat(),
        "slot_end": pd.Timestamp(row["slot_end"]).isoformat(),
        "planned_worker": row.get("planned_worker"),
        "planned_arrive": None if _na(planned) else pd.Timestamp(planned).isoformat(),
    }
    best: tuple[np.datetime64, np.datetime64, str] | None = None
    for worker, a, b in stays:
        lo, hi = max(a, s), min(b, e)
        if hi < lo:
            continue
        stay = float((hi - lo).astype("timedelta64[ms]").astype(np.int64)) / 1000.0
        if stay + 1e-9 >= need and (best is None or lo < best[0]):
            best = (lo, hi, worker)
    if best is None:
        out["status"] = "missed"
        return out
    lo, hi, worker = best
    arrive = pd.Timestamp(lo).tz_localize("UTC")
    out.update(
        {
            "status": "made",
            "worker": worker,
            "arrive": arrive.isoformat(),
            "depart": pd.Timestamp(hi).tz_localize("UTC").isoformat(),
            "stay_min": round(
                float((hi - lo).astype("timedelta64[ms]").astype(np.int64)) / 60000, 1
            ),
        }
    )
    if not _na(planned):
        delay = (arrive - pd.Timestamp(planned)).total_seconds() / 60
        out["delay_min"] = round(delay, 1)
        out["late"] = bool(delay > late_after_min)
    return out


def _na(v: Any) -> bool:
    return v is None or v is pd.NaT or (isinstance(v, float) and np.isnan(v))


def _streets(
    streets: gpd.GeoDataFrame | None,
    tracks: Sequence[tuple[str, pd.DataFrame]],
    shifts: Sequence[tuple[int, pd.Timestamp, pd.Timestamp]],
    accuracy_m: float,
    step_m: float = 5.0,
) -> list[dict[str, Any]]:
    """Main-street length within *accuracy_m* of the tracks, per shift.

    Each street is sampled every *step_m* metres; a sample is covered when a
    track of the shift passes within the accuracy (the swath of
    :func:`gridmap.patrol.coverage.measure_coverage`, measured on samples so
    that long, noisy tracks need no polygon union).
    """
    if streets is None or len(streets) == 0:
        return []
    crs = local_crs(streets)
    to_m = pyproj.Transformer.from_crs(4326, crs, always_xy=True)
    lines = np.asarray(streets.to_crs(crs).geometry.values, dtype=object)
    length = shapely.length(lines)
    counts = np.maximum(np.ceil(length / step_m).astype(int), 1)
    owner = np.repeat(np.arange(len(lines)), counts)
    frac = np.concatenate([(np.arange(n) + 0.5) / n for n in counts])
    samples = shapely.line_interpolate_point(lines[owner], frac, normalized=True)
    names = streets["name"] if "name" in streets else pd.Series(None, index=streets.index)
    out = []
    for number, start, end in shifts:
        hit = np.zeros(len(samples), dtype=bool)
        for _, fx in tracks:
            t = pd.to_datetime(fx["time"], utc=True)
            part = fx.loc[((t >= start) & (t <= end)).to_numpy()]
            if len(part) < 2:
                continue
            x, y = to_m.transform(part["lon"].to_numpy(float), part["lat"].to_numpy(float))
            walk = shapely.LineString(np.column_stack([x, y]))
            hit |= shapely.dwithin(samples, walk, accuracy_m)
        share_each = np.bincount(owner, weights=hit, minlength=len(lines)) / counts
        covered = float((share_each * length).sum())
        total = float(length.sum())
        share = covered / total if total > 0 else 0.0
        missing = sorted(
            {
                str(n)
                for n, q in zip(names, share_each, strict=True)
                if q < 0.5 and n is not None and n == n
            }
        )
        out.append(
            {
                "shift": int(number),
                "length_m": round(total, 1),
                "covered_m": round(covered, 1),
                "share": round(share, 4),
                "band": assessment_band(share),
                "streets_missed": missing,
            }
        )
    return out
