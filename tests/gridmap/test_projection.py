"""gridmap.geo.projection: the one helper for metric work."""

from __future__ import annotations

import math
import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely
from pyproj import Geod

from gridmap.common.errors import BadInput
from gridmap.geo.projection import WGS84, area_m2, length_m, local_crs, to_metric, to_wgs84

GEOD = Geod(ellps="WGS84")


@pytest.mark.parametrize(
    ("bounds", "epsg"),
    [
        ((24.93, 60.16, 24.95, 60.17), 32635),  # Helsinki
        ((116.3, 39.8, 116.5, 40.0), 32650),  # Beijing
        ((120.3, 36.0, 120.5, 36.1), 32651),  # Qingdao
        ((151.1, -33.9, 151.3, -33.8), 32756),  # Sydney: southern hemisphere
        ((-180.0, -1.0, -179.0, 1.0), 32601),
        ((179.0, 1.0, 180.0, 2.0), 32660),
    ],
)
def test_local_crs_is_the_utm_zone_of_the_centre(bounds: tuple[float, ...], epsg: int) -> None:
    assert local_crs(bounds).to_epsg() == epsg


def test_local_crs_of_frames_in_other_crs() -> None:
    pts = gpd.GeoSeries([shapely.Point(116.39, 39.9)], crs=4326).to_crs(3857)
    assert local_crs(pts).to_epsg() == 32650
    assert local_crs(gpd.GeoDataFrame(geometry=pts)).to_epsg() == 32650
    # No CRS means WGS84.
    assert local_crs(gpd.GeoSeries([shapely.Point(116.39, 39.9)])).to_epsg() == 32650


@pytest.mark.parametrize(
    "bad",
    [
        (1.0, 2.0, 3.0),
        (float("nan"), 0.0, 1.0, 1.0),
        (500000.0, 4000000.0, 500100.0, 4000100.0),
    ],
)
def test_local_crs_refuses_bad_bounds(bad: tuple[float, ...]) -> None:
    with pytest.raises(BadInput):
        local_crs(bad)


def test_local_crs_refuses_empty_data() -> None:
    with pytest.raises(BadInput):
        local_crs(gpd.GeoSeries([], crs=4326))
    with pytest.raises(BadInput):
        local_crs(gpd.GeoSeries([None, shapely.Point()], crs=4326))


def test_to_metric_and_back_round_trips() -> None:
    frame = gpd.GeoDataFrame(
        {"name": ["a", "b"]},
        geometry=[shapely.Point(116.39, 39.9), shapely.box(116.4, 39.91, 116.41, 39.92)],
        index=[10, 20],
        crs=4326,
    )
    metric, crs = to_metric(frame)
    assert crs.to_epsg() == 32650
    assert metric.crs == crs
    assert list(metric.index) == [10, 20]
    assert metric.geometry.iloc[0].x > 1000  # metres
    back = to_wgs84(metric)
    assert back.crs.to_epsg() == 4326
    assert shapely.equals_exact(
        np.asarray(back.geometry.values), np.asarray(frame.geometry.values), tolerance=1e-9
    ).all()


def test_to_wgs84_declares_missing_crs_and_keeps_wgs84() -> None:
    gs = gpd.GeoSeries([shapely.Point(1, 2)])
    assert to_wgs84(gs).crs == WGS84
    already = gpd.GeoSeries([shapely.Point(1, 2)], crs=4326)
    assert to_wgs84(already) is already
    cgcs = gpd.GeoSeries([shapely.Point(116.39, 39.9)], crs=4490)
    moved = to_wgs84(cgcs).iloc[0]
    assert moved.distance(shapely.Point(116.39, 39.9)) < 1e-5


def test_area_matches_the_geodesic_area() -> None:
    square = shapely.box(116.39, 39.90, 116.40, 39.91)
    expected = abs(GEOD.geometry_area_perimeter(square)[0])
    got = area_m2(gpd.GeoSeries([square], crs=4326)).iloc[0]
    assert got == pytest.approx(expected, rel=2e-3)


def test_length_matches_the_geodesic_length() -> None:
    line = shapely.LineString([(24.93, 60.16), (24.95, 60.17), (24.96, 60.171)])
    expected = GEOD.geometry_length(line)
    got = length_m(gpd.GeoSeries([line], crs=4326)).iloc[0]
    assert got == pytest.approx(expected, rel=2e-3)


def test_measures_are_aligned_named_and_handle_missing_values() -> None:
    geoms = gpd.GeoSeries(
        [
            shapely.box(116.39, 39.90, 116.40, 39.91),
            None,
            shapely.Polygon(),
            shapely.Point(116.4, 39.9),
        ],
        index=["a", "b", "c", "d"],
        crs=4326,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        areas = area_m2(geoms)
        lengths = length_m(geoms)
    assert list(areas.index) == ["a", "b", "c", "d"]
    assert areas.name == "area_m2" and lengths.name == "length_m"
    assert areas["a"] > 900_000
    assert math.isnan(areas["b"]) and math.isnan(lengths["b"])
    assert areas["c"] == 0 and areas["d"] == 0
    assert lengths["a"] == pytest.approx(4 * math.sqrt(areas["a"]), rel=0.2)


def test_measures_of_empty_and_all_null_input() -> None:
    assert area_m2(gpd.GeoSeries([], crs=4326)).empty
    assert length_m(gpd.GeoSeries([], crs=4326)).dtype == "float64"
    nulls = length_m(gpd.GeoSeries([None, None], crs=4326))
    assert nulls.isna().all()


def test_measures_accept_projected_input_and_frames() -> None:
    square = gpd.GeoSeries([shapely.box(116.39, 39.90, 116.40, 39.91)], crs=4326)
    in_mercator = square.to_crs(3857)  # Web Mercator inflates areas; we must not
    frame = gpd.GeoDataFrame({"x": [1]}, geometry=in_mercator)
    assert area_m2(frame).iloc[0] == pytest.approx(area_m2(square).iloc[0], rel=1e-6)
    assert isinstance(area_m2(frame), pd.Series)


def test_wgs84_constant() -> None:
    assert pyproj.CRS.from_epsg(4326) == WGS84
