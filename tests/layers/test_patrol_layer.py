"""The patrol route layer renders arrows, numbered stops and escapes data."""

from __future__ import annotations

import folium

from layers.patrol import route_layer

FEATURE = {
    "type": "Feature",
    "geometry": {
        "type": "LineString",
        "coordinates": [[24.94, 60.17], [24.95, 60.17], [24.95, 60.175]],
    },
    "properties": {
        "length_m": 1100.0,
        "stops": [
            {
                "order": 1,
                "name": "<img src=x onerror=alert(1)>",
                "lon": 24.945,
                "lat": 60.17,
                "dwell_min": 15,
            },
            {"order": 2, "name": "菜市场", "lon": 24.95, "lat": 60.172, "dwell_min": 12},
        ],
    },
}


def test_route_layer_renders_offline_and_escaped() -> None:
    m = folium.Map(location=(60.17, 24.945), zoom_start=15)
    route_layer(FEATURE, m=m, arrow_every_m=100)
    page = m.get_root().render()
    assert page.count("gm-arrow") >= 8
    assert "gm-stop" in page and "菜市场" in page and "dwell 15 min" in page
    assert "<img src=x" not in page
    assert "rotate(" in page


def test_tracks_are_never_published_as_a_collection() -> None:
    from gridmap.common.model import ROLES
    from layers.catalog import CATALOG

    assert not any(CATALOG["patrol_tracks"].is_visible_to(role) for role in ROLES)
