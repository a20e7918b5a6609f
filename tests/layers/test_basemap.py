"""Optional basemaps: an intranet tile URL, and GCJ-02 basemaps with shifted overlays."""

from __future__ import annotations

from pathlib import Path

import folium
import geopandas as gpd
import pytest
from shapely import Point, box

from gridmap.common.errors import BadInput
from gridmap.geo.chinacrs import from_wgs84
from layers.render import MapOptions, map_html, render_map
from layers.vector import TiledLayer

# Tiananmen, WGS84; its GCJ-02 coordinates per gridmap.geo.chinacrs (doctest there).
LON, LAT = 116.391349, 39.907375


def _geojson_coords(m: folium.Map) -> list[list[float]]:
    out: list[list[float]] = []
    stack = list(m._children.values())
    while stack:
        el = stack.pop()
        if isinstance(el, folium.GeoJson):
            for f in el.data["features"]:
                out.append(f["geometry"]["coordinates"])
        stack.extend(el._children.values())
    return out


def test_gcj02_basemap_shifts_overlays(node_modules: Path) -> None:
    key = gpd.GeoDataFrame({"name": ["天安门"]}, geometry=[Point(LON, LAT)], crs=4326)
    gcj = render_map(
        {"key_areas": key},
        options=MapOptions(
            tiles_url="http://tiles.intra/{z}/{x}/{y}.png",
            attr="高德 (intranet mirror)",
            basemap_crs="gcj02",
        ),
    )
    want = [float(v) for v in from_wgs84(LON, LAT, "gcj02")]
    (got,) = _geojson_coords(gcj)
    assert got == pytest.approx(want, abs=1e-9)
    assert got[0] == pytest.approx(116.397590, abs=1e-6)
    assert got[1] == pytest.approx(39.908776, abs=1e-6)
    page = map_html(gcj, inline=False)
    assert "http://tiles.intra/{z}/{x}/{y}.png" in page
    # The same map on a WGS84 basemap keeps the coordinates.
    (plain,) = _geojson_coords(render_map({"key_areas": key}))
    assert plain == pytest.approx([LON, LAT])


def test_basemap_bad_input() -> None:
    grid = gpd.GeoDataFrame(
        {"code": ["110101001001001"]}, geometry=[box(116.39, 39.90, 116.40, 39.91)], crs=4326
    )
    with pytest.raises(BadInput, match="basemap_crs"):
        render_map({"grids": grid}, options=MapOptions(basemap_crs="bd09"))
    with pytest.raises(BadInput, match="attr"):
        render_map(
            {"grids": grid}, options=MapOptions(tiles_url="http://tiles.intra/{z}/{x}/{y}.png")
        )
    # Vector tiles are WGS84: a GCJ-02 basemap cannot shift them (yet), so it says so.
    with pytest.raises(BadInput, match="vector tiles"):
        render_map({"grids": TiledLayer(10_000)}, options=MapOptions(basemap_crs="gcj02"))
