"""GPX and KML exports of planned routes, in WGS84 and in GCJ-02 for Chinese phone map apps.

The routes are planned by gridmap on a synthetic street lattice laid in Laixi
(莱西, inside the GCJ-02 box, so the GCJ-02 export really is offset by hundreds
of metres) with synthetic key points; the files are read back with gpxpy and
``xml.etree``, parsers gridmap does not use to write them.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import geopandas as gpd
import gpxpy
import numpy as np
import pytest
import shapely

from gridmap.common.errors import BadInput
from gridmap.geo.chinacrs import to_wgs84
from gridmap.patrol.network import street_network
from gridmap.patrol.postman import postman_route
from gridmap.patrol.service import route_feature, route_gpx, route_kml, route_title
from gridmap.patrol.visits import mixed_route

from .helpers import lattice_roads

KML = "{http://www.opengis.net/kml/2.2}"
LON0, LAT0 = 120.52, 36.86  # Laixi, Qingdao


def _stops(n: int) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(4)
    lon = LON0 + rng.uniform(0, 0.004, n)
    lat = LAT0 + rng.uniform(0, 0.003, n)
    names = [f"重点{i} <b>&" for i in range(n)]
    return gpd.GeoDataFrame(
        {"name": names, "priority": [1] * n}, geometry=shapely.points(lon, lat), crs=4326
    )


@pytest.fixture(scope="module")
def streets_route() -> dict[str, Any]:
    net = street_network(lattice_roads(LON0, LAT0, n=5, seed=2))
    return route_feature(postman_route(net), grid="370285001001001", mode="streets")


@pytest.fixture(scope="module")
def mixed() -> dict[str, Any]:
    net = street_network(lattice_roads(LON0, LAT0, n=5, seed=2))
    plan = mixed_route(net, _stops(3), budget_min=240)
    return route_feature(plan, grid="370285001001001", mode="mixed", budget_min=240)


def _route_xy(feature: dict[str, Any]) -> np.ndarray:
    return np.asarray(feature["geometry"]["coordinates"], dtype=float)


def _gpx_xy(text: str) -> tuple[np.ndarray, np.ndarray]:
    gpx = gpxpy.parse(text)
    assert len(gpx.tracks) == 1 and len(gpx.tracks[0].segments) == 1
    track = [(p.longitude, p.latitude) for p in gpx.tracks[0].segments[0].points]
    wpts = [(p.longitude, p.latitude) for p in gpx.waypoints]
    return np.asarray(track, dtype=float), np.asarray(wpts, dtype=float).reshape(-1, 2)


def _kml_xy(text: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    doc = ET.fromstring(text).find(f"{KML}Document")
    assert doc is not None
    line = doc.find(f"{KML}Placemark/{KML}LineString/{KML}coordinates")
    assert line is not None and line.text
    xy = np.array([[float(v) for v in c.split(",")] for c in line.text.split()])
    points = {
        pm.findtext(f"{KML}name", ""): np.array(
            [float(v) for v in pm.findtext(f"{KML}Point/{KML}coordinates", "").split(",")]
        )
        for pm in doc.iter(f"{KML}Placemark")
        if pm.find(f"{KML}Point") is not None
    }
    return xy, points


def test_wgs84_gpx_has_the_routes_coordinates(mixed: dict[str, Any]) -> None:
    track, wpts = _gpx_xy(route_gpx(mixed, name=route_title("370285001001001", "mixed")))
    np.testing.assert_allclose(track, _route_xy(mixed), atol=1e-7)
    stops = mixed["properties"]["stops"]
    assert len(stops) == 3 and len(wpts) == 3
    np.testing.assert_allclose(wpts, [[s["lon"], s["lat"]] for s in stops], atol=1e-7)
    gpx = gpxpy.parse(route_gpx(mixed))
    assert "WGS84" in (gpx.description or "")
    assert gpx.waypoints[0].name.endswith("<b>&")  # escaped in the file, read back intact


def test_gcj02_gpx_round_trips_to_the_wgs84_route(mixed: dict[str, Any]) -> None:
    route = _route_xy(mixed)
    text = route_gpx(mixed, crs="gcj02")
    track, wpts = _gpx_xy(text)
    assert "GCJ-02" in (gpxpy.parse(text).description or "")
    # Really shifted: GCJ-02 is hundreds of metres off WGS84 here.
    assert np.abs(track - route).max() > 1e-3
    lon, lat = to_wgs84(track[:, 0], track[:, 1], "gcj02")
    np.testing.assert_allclose(np.column_stack([lon, lat]), route, rtol=0, atol=1e-6)
    s_lon, s_lat = to_wgs84(wpts[:, 0], wpts[:, 1], "gcj02")
    stops = [[s["lon"], s["lat"]] for s in mixed["properties"]["stops"]]
    np.testing.assert_allclose(np.column_stack([s_lon, s_lat]), stops, rtol=0, atol=1e-6)


@pytest.mark.parametrize("crs", ["wgs84", "gcj02"])
def test_kml_line_start_and_end(streets_route: dict[str, Any], crs: str) -> None:
    route = _route_xy(streets_route)
    text = route_kml(streets_route, name=route_title("370285001001001", "streets"), crs=crs)
    xy, points = _kml_xy(text)
    if crs == "gcj02":
        assert np.abs(xy - route).max() > 1e-3
        lon, lat = to_wgs84(xy[:, 0], xy[:, 1], "gcj02")
        xy = np.column_stack([lon, lat])
        for key, p in points.items():
            points[key] = np.array([float(v) for v in to_wgs84(p[0], p[1], "gcj02")])
    np.testing.assert_allclose(xy, route, rtol=0, atol=1e-6)
    np.testing.assert_allclose(points["起点 Start"], route[0], rtol=0, atol=1e-6)
    np.testing.assert_allclose(points["终点 End"], route[-1], rtol=0, atol=1e-6)
    root = ET.fromstring(text)
    name = root.findtext(f"{KML}Document/{KML}name", "")
    assert "巡查路线" in name and "Patrol route" in name
    about = root.findtext(f"{KML}Document/{KML}description", "")
    assert ("GCJ-02" if crs == "gcj02" else "WGS84") in about
    turns = root.findtext(f"{KML}Document/{KML}Placemark/{KML}description", "")
    assert streets_route["properties"]["steps"][0]["zh"] in turns


def test_kml_stops_are_placemarks_with_escaped_names(mixed: dict[str, Any]) -> None:
    _, points = _kml_xy(route_kml(mixed, crs="gcj02"))
    stop_names = [k for k in points if "重点" in k]
    assert len(stop_names) == 3 and all(k.endswith("<b>&") for k in stop_names)


@pytest.mark.parametrize("crs", ["bd09", "EPSG:3857", "", "mars"])
def test_unknown_export_crs_is_refused(streets_route: dict[str, Any], crs: str) -> None:
    for write in (route_gpx, route_kml):
        with pytest.raises(BadInput, match="crs"):
            write(streets_route, crs=crs)


def test_gcj_spelling_variants_are_accepted(streets_route: dict[str, Any]) -> None:
    assert route_gpx(streets_route, crs="GCJ-02") == route_gpx(streets_route, crs="gcj02")
