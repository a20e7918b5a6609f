"""Patrol route layer for folium maps: the route, direction arrows, numbered stops.

Arrows and stop numbers are plain inline SVG/HTML in Leaflet ``DivIcon``s, so
the layer needs no plugin and no network access. Every text from data is
HTML-escaped; the renderer takes a route Feature (as returned by
``POST /patrol/routes``) and never queries a store.
"""

from __future__ import annotations

import html
from typing import Any

import folium
import numpy as np
import pyproj

__all__ = ["route_layer"]

_GEOD = pyproj.Geod(ellps="WGS84")


def _arrow_points(coords: list[list[float]], every_m: float) -> list[tuple[float, float, float]]:
    """(lon, lat, bearing°) every *every_m* metres along the line."""
    if len(coords) < 2:
        return []
    xy = np.asarray(coords, dtype=float)
    az, _, dist = _GEOD.inv(xy[:-1, 0], xy[:-1, 1], xy[1:, 0], xy[1:, 1])
    cum = np.r_[0, np.cumsum(dist)]
    out = []
    for d in np.arange(every_m / 2, cum[-1], every_m):
        i = int(np.searchsorted(cum, d, side="right") - 1)
        i = min(i, len(dist) - 1)
        f = 0.0 if dist[i] == 0 else (d - cum[i]) / dist[i]
        lon = xy[i, 0] + f * (xy[i + 1, 0] - xy[i, 0])
        lat = xy[i, 1] + f * (xy[i + 1, 1] - xy[i, 1])
        out.append((float(lon), float(lat), float(az[i])))
    return out


def _arrow_icon(bearing: float, color: str) -> folium.DivIcon:
    svg = (
        f'<svg width="14" height="14" viewBox="0 0 14 14" '
        f'style="transform: rotate({bearing:.0f}deg)">'
        f'<path d="M7 1 L12 12 L7 9 L2 12 Z" fill="{color}" stroke="white" stroke-width="1"/>'
        "</svg>"
    )
    return folium.DivIcon(html=svg, icon_size=(14, 14), icon_anchor=(7, 7), class_name="gm-arrow")


def _stop_icon(order: Any, color: str) -> folium.DivIcon:
    label = html.escape(str(order))
    body = (
        f'<div style="background:{color};color:white;border:2px solid white;border-radius:50%;'
        "width:22px;height:22px;line-height:18px;text-align:center;font:bold 12px sans-serif;"
        f'box-shadow:0 0 2px #333">{label}</div>'
    )
    return folium.DivIcon(html=body, icon_size=(22, 22), icon_anchor=(11, 11), class_name="gm-stop")


def route_layer(
    feature: dict[str, Any],
    *,
    m: folium.Map | None = None,
    color: str = "#8e24aa",
    arrow_every_m: float = 150.0,
    name: str = "巡查路线 Patrol route",
) -> folium.FeatureGroup:
    """Draw a planned route: line, direction arrows, stop order and dwell times.

    Parameters
    ----------
    feature : dict
        A route GeoJSON Feature (LineString; ``properties.stops`` optional,
        each with ``order``, ``name``, ``lon``, ``lat``, ``dwell_min``).
    m : folium.Map, optional
        Map to add the layer to.
    color : str
        Line and arrow colour (a CSS hex colour).
    arrow_every_m : float
        Spacing of the direction arrows in metres.
    name : str
        Layer name in the layer control.

    Returns
    -------
    folium.FeatureGroup

    Examples
    --------
    >>> f = {"type": "Feature", "properties": {"stops": [
    ...     {"order": 1, "name": "<b>学校</b>", "lon": 24.945, "lat": 60.17, "dwell_min": 15}]},
    ...      "geometry": {"type": "LineString", "coordinates": [[24.94, 60.17], [24.95, 60.17]]}}
    >>> fg = route_layer(f, arrow_every_m=100)
    >>> html_text = folium.Map().add_child(fg).get_root().render()
    >>> "&lt;b&gt;学校" in html_text and "<b>学校" not in html_text
    True
    """
    if not (isinstance(color, str) and color.startswith("#") and len(color) in (4, 7)):
        raise ValueError("color must be a CSS hex colour like #8e24aa")
    coords = feature.get("geometry", {}).get("coordinates", [])
    props = feature.get("properties", {}) or {}
    group = folium.FeatureGroup(name=name)
    latlon = [(float(lat), float(lon)) for lon, lat in coords]
    if latlon:
        length = props.get("length_m")
        tip = html.escape(f"{length:.0f} m" if isinstance(length, int | float) else name)
        folium.PolyLine(latlon, color=color, weight=4, opacity=0.85, tooltip=tip).add_to(group)
    for lon, lat, bearing in _arrow_points(coords, max(float(arrow_every_m), 10.0)):
        folium.Marker((lat, lon), icon=_arrow_icon(bearing, color)).add_to(group)
    for s in props.get("stops", []) or []:
        label = html.escape(str(s.get("name") or ""))
        dwell = s.get("dwell_min")
        dwell_txt = f"停留 dwell {float(dwell):.0f} min" if isinstance(dwell, int | float) else ""
        popup = f"<b>{html.escape(str(s.get('order', '')))}.</b> {label}<br>{dwell_txt}"
        folium.Marker(
            (float(s["lat"]), float(s["lon"])),
            icon=_stop_icon(s.get("order", ""), color),
            tooltip=f"{html.escape(str(s.get('order', '')))}. {label}",
            popup=folium.Popup(popup, max_width=240),
        ).add_to(group)
    if latlon:
        start = latlon[0]
        folium.Marker(start, icon=_stop_icon("起", "#2e7d32"), tooltip="起点 start").add_to(group)
    if m is not None:
        group.add_to(m)
    return group
