"""Tracks in any CRS, spoofing flags, and coverage checked by an independent computation."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely

from gridmap.common.errors import BadInput
from gridmap.geo.chinacrs import from_wgs84
from gridmap.patrol.coverage import assessment_band, measure_coverage
from gridmap.patrol.network import street_network
from gridmap.patrol.postman import postman_route
from gridmap.patrol.tracks import parse_track, spoofing_flags

from .helpers import lattice_roads, walk_track


def _csv(fx: pd.DataFrame) -> str:
    rows = [f"{x!r},{y!r},{t.isoformat()}" for x, y, t in zip(fx.lon, fx.lat, fx.time, strict=True)]
    return "lon,lat,time\n" + "\n".join(rows) + "\n"


def _gpx(fx: pd.DataFrame) -> str:
    pts = "".join(
        f'<trkpt lat="{y!r}" lon="{x!r}"><time>{t.isoformat()}</time></trkpt>'
        for x, y, t in zip(fx.lon, fx.lat, fx.time, strict=True)
    )
    return (
        '<?xml version="1.0"?><gpx version="1.1" xmlns="http://www.topografix.com/GPX/1/1">'
        f"<trk><trkseg>{pts}</trkseg></trk></gpx>"
    )


def _geojson(fx: pd.DataFrame) -> str:
    feats = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [x, y]},
            "properties": {"time": t.isoformat()},
        }
        for x, y, t in zip(fx.lon, fx.lat, fx.time, strict=True)
    ]
    return json.dumps({"type": "FeatureCollection", "features": feats})


def _independent_share(streets, fixes: pd.DataFrame, accuracy: float, epsg: int) -> float:
    """Sample streets every 0.25 m; a sample is covered within *accuracy* of the track."""
    t = pyproj.Transformer.from_crs(4326, epsg, always_xy=True)
    x, y = t.transform(fixes.lon.to_numpy(), fixes.lat.to_numpy())
    track = shapely.LineString(np.column_stack([x, y]))
    total = covered = 0.0
    for geom in streets.geometry:
        line = shapely.transform(geom, lambda a, b: t.transform(a, b), interleaved=False)
        n = max(int(line.length / 0.25), 1)
        pts = shapely.line_interpolate_point(line, (np.arange(n) + 0.5) * line.length / n)
        hit = shapely.distance(pts, track) <= accuracy
        total += line.length
        covered += line.length * hit.mean()
    return covered / total


def _route_through_half(roads):
    """All streets, and a walk (postman route) over the streets of the lower half."""
    minx, miny, maxx, maxy = roads.total_bounds
    half = shapely.box(minx - 1e-4, miny - 1e-4, maxx + 1e-4, (miny + maxy) / 2)
    route = postman_route(street_network(roads, area=half, margin_m=0))
    return street_network(roads).edges_frame(), route.geometry()


@pytest.mark.parametrize("fmt", ["csv", "gpx", "geojson"])
def test_coverage_agrees_with_independent_computation(fmt: str) -> None:
    roads = lattice_roads(n=5, seed=0)
    edges, walked = _route_through_half(roads)
    fixes = walk_track(walked, noise_m=4.0)
    text = {"csv": _csv, "gpx": _gpx, "geojson": _geojson}[fmt](fixes)
    track = parse_track(text, crs="wgs84")
    assert track.flags == []
    res = measure_coverage([track.fixes], edges, accuracy_m=20)
    ref = _independent_share(edges, track.fixes, 20, 32635)
    assert 0.2 < res.share < 1
    assert res.share == pytest.approx(ref, rel=0.01)
    assert res.band == assessment_band(res.share)


def test_coverage_of_a_gcj02_track_in_china() -> None:
    roads = lattice_roads(lon0=120.50, lat0=36.86, n=5, seed=2)  # Laixi, Qingdao
    edges, walked = _route_through_half(roads)
    fixes = walk_track(walked, noise_m=3.0)
    glon, glat = from_wgs84(fixes.lon.to_numpy(), fixes.lat.to_numpy(), "gcj02")
    shifted = fixes.assign(lon=glon, lat=glat)
    # Read as WGS84 by mistake, the track misses the streets (offset of hundreds of metres).
    wrong = measure_coverage([parse_track(_csv(shifted), crs="wgs84").fixes], edges)
    track = parse_track(_csv(shifted), crs="gcj02")
    assert track.crs_in == "gcj02"
    res = measure_coverage([track.fixes], edges, accuracy_m=20)
    ref = _independent_share(edges, fixes, 20, 32651)
    assert res.share == pytest.approx(ref, rel=0.01)
    assert wrong.share < res.share / 2


def test_households_and_key_area_dwell() -> None:
    import geopandas as gpd

    roads = lattice_roads(n=4, seed=0)
    edges, walked = _route_through_half(roads)
    fixes = walk_track(walked, noise_m=1.0)
    stay = pd.DataFrame(
        {
            "time": fixes.time.iloc[-1] + pd.to_timedelta(np.arange(1, 14) * 60, unit="s"),
            "lon": fixes.lon.iloc[-1],
            "lat": fixes.lat.iloc[-1],
        }
    )
    fx = pd.concat([fixes, stay], ignore_index=True)
    end = shapely.Point(fixes.lon.iloc[-1], fixes.lat.iloc[-1])
    mid = len(fixes) // 2
    start = shapely.Point(fixes.lon.iloc[mid], fixes.lat.iloc[mid])
    buildings = gpd.GeoDataFrame(
        {"households": [10, 7]}, geometry=[end.buffer(0.0001), shapely.Point(24.9, 60.1)], crs=4326
    )
    areas = gpd.GeoDataFrame({"name": ["终点", "途经"]}, geometry=[end, start], crs=4326)
    res = measure_coverage([fx], edges, buildings=buildings, key_areas=areas)
    assert (res.households, res.households_reached) == (17, 10)
    assert res.key_areas["visited"].tolist() == [True, False]
    assert res.key_areas["dwell_min"].iloc[0] >= 12


def test_bands_are_configurable() -> None:
    assert [assessment_band(s) for s in (0.99, 0.95, 0.93, 0.87, 0.2)] == [
        "full",
        "full",
        "90_94",
        "85_89",
        "none",
    ]
    assert assessment_band(0.8, [(0.8, "ok", "合格", "pass")]) == "ok"


def test_spoofing_flags_fire() -> None:
    t = pd.date_range("2026-05-01T08:00Z", periods=40, freq="5s")
    regular = pd.DataFrame({"time": t, "lon": 24.94 + np.arange(40) * 1e-4, "lat": 60.17})
    assert spoofing_flags(regular) == ["regular_fixes"]
    teleport = regular.copy()
    teleport.loc[20:, "lon"] += 0.05  # 2.8 km in 5 s
    flags = spoofing_flags(teleport)
    assert "impossible_speed" in flags and "jump" in flags
    walked = walk_track(shapely.LineString([(24.94, 60.17), (24.95, 60.17)]))
    assert spoofing_flags(walked) == []


@pytest.mark.parametrize(
    ("text", "kw", "match"),
    [
        ("<gpx><trk><trkseg><trkpt lat='60' lon='24'>", {}, "malformed GPX"),
        ('<!DOCTYPE x [<!ENTITY a "b">]><gpx/>', {}, "DOCTYPE"),
        ("lon,lat,time\nnan,60.1,2026-05-01T08:00Z\n24.9,60.1,2026-05-01T08:01Z\n", {}, "finite"),
        (
            "lon,lat,time\n24.9,60.1,2026-05-01T08:00Z\n24.9,60.1,2026-05-01T08:01Z\n",
            {"crs": "EPSG:999999"},
            "unknown CRS",
        ),
        ("lon,lat,time\n24.9,60.1,yesterday\n24.9,60.1,2026-05-01T08:01Z\n", {}, "ISO 8601"),
        ("lon,lat,time\n24.9,60.1,2026-05-01T08:00Z\n", {}, "at least 2"),
        ("lon,lat,time\n24.9,95,2026-05-01T08:00Z\n24.9,60.1,2026-05-01T08:01Z\n", {}, "outside"),
        ("x;y\n1;2\n", {}, "column"),
        ('{"type": "Feature", "geometry": {"type": "Point"}}', {}, "LineString"),
    ],
)
def test_malformed_tracks_name_the_problem(text: str, kw: dict, match: str) -> None:
    with pytest.raises(BadInput, match=match):
        parse_track(text, **kw)
