"""A folium GeoJSON layer of features that carry their own tooltip and colour.

The thematic layers (:mod:`layers.heat`, :mod:`layers.doorknock`) compute each
feature's colour and its (already HTML-escaped) tooltip themselves and put them
in the feature's properties ``color`` and ``tip``; :func:`tip_geojson` draws such
features, filled with their colour, with the tooltip on hover.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import folium

__all__ = ["tip_geojson"]


def tip_geojson(
    features: Sequence[Mapping[str, Any]],
    *,
    outline: str | None,
    weight: float,
    fill_opacity: float,
    highlight: Mapping[str, Any] | None = None,
) -> folium.GeoJson:
    """Features with properties ``tip`` (escaped HTML) and ``color``, filled with their colour.

    Parameters
    ----------
    features : sequence of GeoJSON features
        WGS84 features whose properties hold ``tip`` and ``color``.
    outline : str or None
        Outline colour, or ``None`` to outline each feature in its own colour.
    weight : float
        Outline width in pixels.
    fill_opacity : float
        Opacity of the fill.
    highlight : Mapping, optional
        Leaflet path options of a feature under the pointer (none by default).

    Returns
    -------
    folium.GeoJson
        The layer; the tooltip shows ``tip`` without a label.

    Examples
    --------
    >>> f = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [24.9, 60.2]},
    ...      "properties": {"tip": "<b>A</b>", "color": "#ff0000"}}
    >>> layer = tip_geojson([f], outline=None, weight=1, fill_opacity=0.5)
    >>> layer.style_function(f)
    {'fillColor': '#ff0000', 'color': '#ff0000', 'weight': 1, 'fillOpacity': 0.5}
    """
    style = {"weight": weight, "fillOpacity": fill_opacity}
    shown = dict(highlight) if highlight is not None else None

    def style_function(feature: Mapping[str, Any]) -> dict[str, Any]:
        color = feature["properties"]["color"]
        return {"fillColor": color, "color": outline or color, **style}

    return folium.GeoJson(
        {"type": "FeatureCollection", "features": list(features)},
        style_function=style_function,
        highlight_function=None if shown is None else lambda _f: dict(shown),
        tooltip=folium.GeoJsonTooltip(["tip"], labels=False),
    )
