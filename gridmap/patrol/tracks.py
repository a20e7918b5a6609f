"""GPS tracks of patrols: parse GPX / GeoJSON / CSV in any CRS, flag spoofing, keep them private.

A track is a time-ordered list of fixes. Phones send WGS84 (raw GPS), GCJ-02
(Amap, Tencent) or BD-09 (Baidu); every track states its system and is stored
in WGS84. Tracks are sensitive personal data: :func:`can_see_track` is the one
rule deciding who may read one (the worker themself, coordinators whose area
covers the grid, city administrators acting as auditors).

Anti-spoofing flags (:func:`spoofing_flags`):

``impossible_speed``
    a leg faster than ``max_speed_mps`` (default 12 m/s ≈ 43 km/h);
``jump``
    a single leg longer than ``jump_m`` (default 500 m) at implausible speed,
    i.e. the position teleports;
``regular_fixes``
    fixes implausibly regular for a real receiver (identical intervals *and*
    nearly identical step lengths over 20 or more fixes): a simulator.
"""

from __future__ import annotations

import csv
import io
import json
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyproj
import shapely

from gridmap.common.errors import BadInput, UnsupportedFormat
from gridmap.geo.chinacrs import to_wgs84 as china_to_wgs84
from gridmap.io.readers import parse_crs
from gridmap.security.access import Principal

__all__ = [
    "MAX_FIXES",
    "Track",
    "TrackFormat",
    "can_see_track",
    "parse_track",
    "spoofing_flags",
]

TrackFormat = Literal["gpx", "geojson", "csv"]

#: Most fixes accepted in one upload (a day at one fix per second).
MAX_FIXES = 86_400

_GPX_NS = "{http://www.topografix.com/GPX/1/1}"
_LON = ("lon", "lng", "longitude", "x")
_LAT = ("lat", "latitude", "y")
_TIME = ("time", "timestamp", "datetime", "t")
_ACC = ("accuracy", "acc", "hacc", "accuracy_m")


@dataclass
class Track:
    """A parsed track: fixes in WGS84, time-ordered.

    Attributes
    ----------
    fixes : DataFrame
        ``time`` (UTC), ``lon``, ``lat`` and, when given, ``accuracy_m``.
    crs_in : str
        The system the coordinates arrived in.
    flags : list of str
        Spoofing flags (see the module docs).
    """

    fixes: pd.DataFrame
    crs_in: str = "wgs84"
    flags: list[str] = field(default_factory=list)

    @property
    def started_at(self) -> pd.Timestamp:
        """Time of the first fix."""
        return pd.Timestamp(self.fixes["time"].iloc[0])

    @property
    def ended_at(self) -> pd.Timestamp:
        """Time of the last fix."""
        return pd.Timestamp(self.fixes["time"].iloc[-1])

    def line(self) -> shapely.LineString:
        """The track as a WGS84 line string."""
        return shapely.LineString(self.fixes[["lon", "lat"]].to_numpy())

    def offsets_s(self) -> list[float]:
        """Seconds of each fix after the first."""
        t = self.fixes["time"]
        return [round(float(v), 3) for v in (t - t.iloc[0]).dt.total_seconds()]


def _text(data: bytes | str) -> str:
    if isinstance(data, bytes):
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise BadInput("track file is not valid UTF-8", field="track") from None
    return data


def _sniff(text: str) -> TrackFormat:
    head = text.lstrip()[:200].lower()
    if head.startswith("<"):
        return "gpx"
    if head.startswith(("{", "[")):
        return "geojson"
    return "csv"


def _parse_gpx(text: str) -> pd.DataFrame:
    upper = text[:2000].upper()
    if "<!DOCTYPE" in upper or "<!ENTITY" in upper:
        raise BadInput("GPX with a DOCTYPE or entities is refused", field="track")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise BadInput(f"malformed GPX: {exc}", field="track") from None
    if not root.tag.endswith("gpx"):
        raise BadInput(f"not a GPX document (root element {root.tag!r})", field="track")
    rows = []
    for pt in root.iter():
        if not (pt.tag.endswith("trkpt") or pt.tag.endswith("rtept")):
            continue
        t = None
        for child in pt:
            if child.tag.endswith("time"):
                t = child.text
        rows.append({"lon": pt.get("lon"), "lat": pt.get("lat"), "time": t})
    if not rows:
        raise BadInput("GPX has no track points (trkpt)", field="track")
    return pd.DataFrame(rows)


def _parse_geojson(text: str) -> pd.DataFrame:
    try:
        doc = json.loads(text, parse_constant=lambda c: float("nan"))
    except (json.JSONDecodeError, RecursionError) as exc:
        raise BadInput(f"malformed GeoJSON: {exc}", field="track") from None
    if not isinstance(doc, dict):
        raise BadInput("GeoJSON track must be an object", field="track")
    kind = doc.get("type")
    if kind == "FeatureCollection":
        rows = []
        for i, feat in enumerate(doc.get("features") or []):
            geom = (feat or {}).get("geometry") or {}
            props = (feat or {}).get("properties") or {}
            if geom.get("type") != "Point":
                raise BadInput(f"feature {i}: track points must be Points", field="track")
            c = geom.get("coordinates")
            if not isinstance(c, list) or len(c) < 2:
                raise BadInput(f"feature {i}: a point needs [lon, lat]", field="track")
            rows.append(
                {
                    "lon": c[0],
                    "lat": c[1],
                    "time": _first(props, _TIME),
                    "accuracy_m": _first(props, _ACC),
                }
            )
        return pd.DataFrame(rows)
    if kind == "Feature":
        geom = doc.get("geometry") or {}
        props = doc.get("properties") or {}
        if geom.get("type") != "LineString":
            raise BadInput("a track Feature must be a LineString", field="track")
        coords = geom.get("coordinates")
        times = props.get("times") or props.get("coordTimes")
        if not isinstance(coords, list) or not isinstance(times, list):
            raise BadInput(
                "a LineString track needs coordinates and properties.times", field="track"
            )
        if len(times) != len(coords):
            raise BadInput("properties.times must have one time per coordinate", field="track")
        for i, c in enumerate(coords):
            if not isinstance(c, list) or len(c) < 2:
                raise BadInput(f"coordinate {i} needs [lon, lat]", field="track")
        return pd.DataFrame(
            {"lon": [c[0] for c in coords], "lat": [c[1] for c in coords], "time": times}
        )
    raise BadInput(
        "GeoJSON track must be a FeatureCollection of Points or a LineString Feature",
        field="track",
    )


def _first(props: dict[str, Any], names: tuple[str, ...]) -> Any:
    for n in names:
        if n in props:
            return props[n]
    return None


def _parse_csv(text: str) -> pd.DataFrame:
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        raise BadInput("CSV track is empty", field="track")
    cols = {c.strip().lower(): c for c in reader.fieldnames if c}

    def pick(names: tuple[str, ...], required: bool = True) -> str | None:
        for n in names:
            if n in cols:
                return cols[n]
        if required:
            raise BadInput(
                f"CSV track needs a column named one of {', '.join(names)}", field="track"
            )
        return None

    lon, lat, t = pick(_LON), pick(_LAT), pick(_TIME)
    acc = pick(_ACC, required=False)
    rows = [
        {
            "lon": r.get(lon or ""),
            "lat": r.get(lat or ""),
            "time": r.get(t or ""),
            "accuracy_m": r.get(acc) if acc else None,
        }
        for r in reader
    ]
    return pd.DataFrame(rows)


def _numbers(s: pd.Series, name: str) -> np.ndarray:
    out = np.empty(len(s))
    for i, v in enumerate(s):
        if isinstance(v, bool) or v is None:
            raise BadInput(f"fix {i}: {name} is not a number", field="track")
        try:
            out[i] = float(v)
        except (TypeError, ValueError, OverflowError):
            raise BadInput(
                f"fix {i}: {name} {str(v)[:30]!r} is not a number", field="track"
            ) from None
        if not math.isfinite(out[i]):
            raise BadInput(f"fix {i}: {name} is not finite (NaN or Inf)", field="track")
    return out


def convert_coords(
    lon: np.ndarray, lat: np.ndarray, crs: str
) -> tuple[np.ndarray, np.ndarray, str]:
    spec = parse_crs(crs)
    if spec in ("gcj02", "bd09"):
        x, y = china_to_wgs84(lon, lat, str(spec))
        return np.asarray(x, float), np.asarray(y, float), str(spec)
    assert isinstance(spec, pyproj.CRS)
    if spec.to_epsg() == 4326:
        return lon, lat, "wgs84"
    t = pyproj.Transformer.from_crs(spec, 4326, always_xy=True)
    x, y = t.transform(lon, lat)
    return np.asarray(x, float), np.asarray(y, float), spec.to_string()


def parse_track(
    data: bytes | str,
    *,
    format: TrackFormat | None = None,
    crs: str = "wgs84",
    max_speed_mps: float = 12.0,
) -> Track:
    """Parse a GPS track and flag signs of spoofing.

    Parameters
    ----------
    data : bytes or str
        GPX 1.1 (``trkpt`` with ``time``), GeoJSON (a FeatureCollection of
        Points with a ``time`` property, or a LineString Feature with
        ``properties.times``) or CSV (``lon``/``lat``/``time`` columns, any case).
    format : {"gpx", "geojson", "csv"}, optional
        Guessed from the content when omitted.
    crs : str
        Coordinate system of the input: ``wgs84``, ``gcj02``, ``bd09``, ``EPSG:n``.
    max_speed_mps : float
        Speed above which a leg is impossible for a patrol.

    Returns
    -------
    Track
        Fixes in WGS84 sorted by time, with flags.

    Raises
    ------
    gridmap.common.errors.BadInput
        Naming the problem: malformed file, missing or non-finite coordinates,
        bad times, unknown CRS, fewer than 2 fixes, out-of-range positions.

    Examples
    --------
    >>> rows = ["lon,lat,time", "24.94,60.17,2026-05-01T08:00Z", "24.941,60.17,2026-05-01T08:01Z"]
    >>> t = parse_track(chr(10).join(rows), crs="wgs84")
    >>> len(t.fixes), t.flags
    (2, [])
    """
    text = _text(data)
    if len(text) > 50_000_000:
        raise BadInput("track file larger than 50 MB", field="track")
    fmt = format or _sniff(text)
    if fmt == "gpx":
        raw = _parse_gpx(text)
    elif fmt == "geojson":
        raw = _parse_geojson(text)
    elif fmt == "csv":
        raw = _parse_csv(text)
    else:
        raise UnsupportedFormat(f"unknown track format {fmt!r}; use gpx, geojson or csv")
    if len(raw) < 2:
        raise BadInput("a track needs at least 2 fixes", field="track")
    if len(raw) > MAX_FIXES:
        raise BadInput(f"a track may have at most {MAX_FIXES} fixes", field="track")
    lon, lat = _numbers(raw["lon"], "longitude"), _numbers(raw["lat"], "latitude")
    if (np.abs(lon) > 180).any() or (np.abs(lat) > 90).any():
        raise BadInput("coordinates outside lon [-180, 180] / lat [-90, 90]", field="track")
    if raw["time"].isna().any() or (raw["time"].astype(str).str.strip() == "").any():
        raise BadInput("every fix needs a time", field="track")
    try:
        times = pd.to_datetime(raw["time"], utc=True, format="ISO8601")
    except (TypeError, ValueError) as exc:
        raise BadInput(
            f"fix times are not ISO 8601 times: {str(exc)[:120]}", field="track"
        ) from None
    lon, lat, crs_in = convert_coords(lon, lat, crs)
    if not (np.isfinite(lon).all() and np.isfinite(lat).all()):
        raise BadInput(f"coordinates cannot be converted from {crs}", field="track")
    fixes = pd.DataFrame({"time": times, "lon": lon, "lat": lat})
    if "accuracy_m" in raw and raw["accuracy_m"].notna().any():
        fixes["accuracy_m"] = pd.to_numeric(raw["accuracy_m"], errors="coerce")
    flags = []
    if not fixes["time"].is_monotonic_increasing:
        flags.append("out_of_order")
        fixes = fixes.sort_values("time", kind="stable")
    fixes = fixes.reset_index(drop=True)
    track = Track(fixes=fixes, crs_in=crs_in)
    track.flags = flags + spoofing_flags(fixes, max_speed_mps=max_speed_mps)
    return track


def _legs(fixes: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    geod = pyproj.Geod(ellps="WGS84")
    lon, lat = fixes["lon"].to_numpy(float), fixes["lat"].to_numpy(float)
    _, _, dist = geod.inv(lon[:-1], lat[:-1], lon[1:], lat[1:])
    dt = fixes["time"].diff().dt.total_seconds().to_numpy()[1:]
    return np.asarray(dist, float), np.asarray(dt, float)


def spoofing_flags(
    fixes: pd.DataFrame,
    *,
    max_speed_mps: float = 12.0,
    jump_m: float = 500.0,
    min_regular: int = 20,
) -> list[str]:
    """Flags of a track that looks faked (see the module docs).

    Examples
    --------
    >>> import pandas as pd
    >>> fixes = pd.DataFrame({
    ...     "time": pd.to_datetime(["2026-05-01T08:00:00Z", "2026-05-01T08:00:10Z"]),
    ...     "lon": [24.94, 24.99], "lat": [60.17, 60.17]})
    >>> spoofing_flags(fixes)
    ['impossible_speed', 'jump']
    """
    if len(fixes) < 2:
        return []
    dist, dt = _legs(fixes)
    speed = dist / np.maximum(dt, 1e-3)
    fast = speed > max_speed_mps
    flags = []
    if fast.any():
        flags.append("impossible_speed")
    if (fast & (dist > jump_m)).any():
        flags.append("jump")
    if len(dt) >= min_regular:
        moving = dist > 0.5
        dt_spread = float(np.ptp(dt))
        if moving.sum() >= min_regular:
            d = dist[moving]
            cv = float(np.std(d) / max(float(np.mean(d)), 1e-9))
            if dt_spread < 1e-3 and cv < 0.01:
                flags.append("regular_fixes")
    return flags


def can_see_track(principal: Principal, *, worker: str | None, grid_code: str | None) -> bool:
    """Whether *principal* may read a track of *worker* in *grid_code*.

    City administrators (the auditors) see every track; town coordinators and
    community staff see tracks in grids their area covers; a grid worker sees
    only their own tracks; map viewers and external systems see none.

    Examples
    --------
    >>> from gridmap.security.access import Principal
    >>> w = Principal("li", "grid_worker", ("990100001001003",))
    >>> can_see_track(w, worker="li", grid_code="990100001001003")
    True
    >>> can_see_track(w, worker="wang", grid_code="990100001001003")
    False
    """
    if principal.role == "city_admin":
        return principal.covers(grid_code)
    if principal.role in ("town_coordinator", "community_staff"):
        return principal.covers(grid_code)
    if principal.role == "grid_worker":
        return worker is not None and worker == principal.name and principal.covers(grid_code)
    return False
