"""Shared fixtures of the layer tests: small layers around Helsinki (lon 24.94, lat 60.17)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pytest
from shapely import LineString, Point, box

from layers.assets import AssetsNotInstalled, asset_files, assets_dir

#: A name that would run script if a popup or tooltip put it into the page unescaped.
XSS = "<img src=x onerror=alert(1)>"
XSS_STATUS = "<script>alert(2)</script>"


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """The installed npm assets; the tests fail (never skip) when they are missing."""
    try:
        asset_files()
    except AssetsNotInstalled as exc:
        pytest.fail(f"{exc}\nThe browser assets are not installed: run `npm ci` first.")
    return assets_dir()


def _gdf(data: dict[str, Any], geometry: list[Any]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(data, geometry=geometry, crs="EPSG:4326")


@pytest.fixture
def grids() -> gpd.GeoDataFrame:
    return _gdf(
        {
            "id": [1, 2, 3],
            "code": ["370285001001001", "370285001001002", "370285001001003"],
            "name": [XSS, "二号网格", "第三网格 & co"],
            "community_code": ["370285001001"] * 3,
            "households": pd.array([120, 480, None], dtype="Int64"),
            "residents": [300, 1200, None],
            "workers": [["张三", "李四"], [], None],
            "valid_from": pd.to_datetime(
                pd.Series(["2024-01-01 08:00", "2024-02-01 00:00", None])
            ).dt.tz_localize("Asia/Shanghai"),
            "valid_to": pd.Series([pd.NaT] * 3, dtype="datetime64[ns]"),
        },
        [
            box(24.930, 60.160, 24.940, 60.170),
            box(24.940, 60.160, 24.950, 60.170),
            box(24.930, 60.170, 24.950, 60.175),
        ],
    )


@pytest.fixture
def buildings() -> gpd.GeoDataFrame:
    return _gdf(
        {
            "name": [XSS, "幸福楼"],
            "use": ["residential", "school"],
            "floors": [6, None],
            "area_m2": [812.3456, 1500.0],
            "households": [24, 0],
            "grid_code": ["370285001001001", "370285001001002"],
        },
        [box(24.932, 60.162, 24.933, 60.163), box(24.942, 60.162, 24.944, 60.163)],
    )


@pytest.fixture
def roads() -> gpd.GeoDataFrame:
    return _gdf(
        {"name": ["Mannerheimintie", "长江路"], "class": ["primary", "residential"]},
        [
            LineString([(24.930, 60.165), (24.950, 60.165)]),
            LineString([(24.940, 60.160), (24.940, 60.175)]),
        ],
    )


@pytest.fixture
def admin_units() -> gpd.GeoDataFrame:
    return _gdf(
        {
            "code": ["370285001001"],
            "name": ["幸福社区"],
            "level": ["community"],
            "parent_code": ["370285001"],
        },
        [box(24.925, 60.155, 24.955, 60.18)],
    )


@pytest.fixture
def key_areas() -> gpd.GeoDataFrame:
    return _gdf(
        {"name": ["中心小学", "东门路口"], "kind": ["key_place", "important_intersection"]},
        [box(24.945, 60.171, 24.947, 60.173), Point(24.94, 60.165)],
    )


@pytest.fixture
def events() -> gpd.GeoDataFrame:
    return _gdf(
        {
            "id": [11, 12, 13, 14],
            "category": ["safety_hazard", "dispute", "city_management", "noise"],
            "status": ["reported", "closed", "handling", XSS_STATUS],
            "description": ["井盖缺失", "邻里纠纷", XSS, None],
            "reporter": ["王五", "赵六", "钱七", "孙八"],
            "grid_code": ["370285001001001"] * 4,
            "reported_at": pd.to_datetime(
                ["2024-05-01 08:30", "2024-05-02 09:00", "2024-05-03 10:00", "2024-05-04 11:00"]
            ),
            "closed_at": pd.to_datetime(pd.Series([None, "2024-05-03 17:00", None, None])),
            "synthetic": [True, False, True, False],
        },
        [
            Point(24.935, 60.165),
            Point(24.936, 60.166),
            Point(24.945, 60.165),
            Point(24.946, 60.168),
        ],
    )


@pytest.fixture
def patrol_routes() -> gpd.GeoDataFrame:
    return _gdf(
        {
            "worker": ["张三"],
            "grid_code": ["370285001001001"],
            "route_date": [pd.Timestamp("2024-05-01").date()],
            "mode": ["streets"],
            "length_m": [1234.567],
        },
        [LineString([(24.931, 60.161), (24.939, 60.161), (24.939, 60.169)])],
    )


@pytest.fixture
def all_layers(
    roads: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame,
    admin_units: gpd.GeoDataFrame,
    grids: gpd.GeoDataFrame,
    key_areas: gpd.GeoDataFrame,
    events: gpd.GeoDataFrame,
    patrol_routes: gpd.GeoDataFrame,
) -> dict[str, gpd.GeoDataFrame]:
    # Deliberately not in drawing order: the renderer orders by the catalog.
    return {
        "events": events,
        "patrol_routes": patrol_routes,
        "grids": grids,
        "key_areas": key_areas,
        "admin_units": admin_units,
        "buildings": buildings,
        "roads": roads,
    }
