"""Folium layers of the hazard analysis: heat layer, H3 choropleth, hot-spot classes, periods.

Renderers take data from :mod:`gridmap.analytics` (heat maps, H3 counts, kernel
density, hot spots) and return folium objects; they never query a store. Scripts load from the
local assets (``leaflet-heat.js`` is in :data:`layers.assets.ASSETS`): call
:func:`hazard_map` or :func:`layers.assets.localize` on the map before rendering.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence

import folium
import folium.plugins
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.colormap import LinearColormap
from branca.element import MacroElement
from folium.template import Template

from gridmap.analytics.hotspots import CLASS_LABELS, CLASSES, EMERGING_LABELS
from gridmap.common.errors import BadInput
from layers.assets import DEFAULT_BASE_URL, localize
from layers.catalog import bilingual, normalize_lang
from layers.tips import tip_geojson

__all__ = [
    "CLASS_COLORS",
    "PeriodSelector",
    "h3_choropleth",
    "hazard_map",
    "heat_layer",
    "heat_tile",
    "hotspot_layer",
    "hotspot_legend",
    "period_layers",
]

#: Colours of the hot-spot classes (diverging red–blue, grey for none).
CLASS_COLORS: dict[str, str] = {
    "hot_99": "#d62728",
    "hot_95": "#ff7f0e",
    "hot_90": "#fdbf6f",
    "cold_90": "#a6cee3",
    "cold_95": "#4f9bd9",
    "cold_99": "#1f4e99",
    "none": "#d9d9d9",
}
_RAMP = ["#fff7bc", "#fec44f", "#fe9929", "#ec7014", "#cc4c02", "#8c2d04"]


def _t(text: object) -> str:
    return html.escape(str(text), quote=True)


def _wgs84(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    if gdf.crs is None:
        return gdf.set_crs(4326)
    return gdf if gdf.crs.to_epsg() == 4326 else gdf.to_crs(4326)


def heat_tile(
    cells: gpd.GeoDataFrame,
    z: int,
    x: int,
    y: int,
    *,
    properties: Sequence[str] = ("h3", "count", "open", "merged"),
    layer: str = "heatmap",
    extent: int = 4096,
    buffer: int = 64,
) -> bytes:
    """A Mapbox Vector Tile (WebMercatorQuad z/x/y) of heat-map cells; ``b""`` when none.

    Cells (from :func:`gridmap.analytics.heat.heatmap_tile_cells`) are projected to Web
    Mercator, clipped to the tile grown by *buffer* (tile units) and encoded
    with ``mapbox-vector-tile`` in one layer named *layer*; feature ids count
    from 1, missing property values are left out.

    Examples
    --------
    >>> import h3, shapely, mapbox_vector_tile
    >>> cell = h3.latlng_to_cell(60.17, 24.94, 10)
    >>> ring = [(lng, lat) for lat, lng in h3.cell_to_boundary(cell)]
    >>> cells = gpd.GeoDataFrame({"h3": [cell], "count": [4], "open": [None],
    ...                           "merged": [False]}, geometry=[shapely.Polygon(ring)], crs=4326)
    >>> tile = mapbox_vector_tile.decode(heat_tile(cells, 14, 9327, 4742))
    >>> tile["heatmap"]["features"][0]["properties"] == {"h3": cell, "count": 4, "merged": False}
    True
    >>> heat_tile(cells.iloc[:0], 14, 9327, 4742)
    b''
    """
    import mapbox_vector_tile

    from gridmap.geo.tiles import tile_bounds, tile_filter_box

    if cells.empty:
        return b""
    merc, _ = tile_bounds(z, x, y)
    grown, _ = tile_filter_box(z, x, y, extent, buffer)
    geoms = _wgs84(cells).to_crs(3857).geometry.to_numpy()
    clipped = shapely.clip_by_rect(geoms, *grown)
    features = []
    for i, geom in enumerate(clipped):
        if geom is None or geom.is_empty:
            continue
        props = {}
        for name in properties:
            value = cells[name].iloc[i] if name in cells else None
            if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
                continue
            props[name] = value.item() if isinstance(value, np.generic) else value
        features.append({"geometry": geom, "properties": props, "id": i + 1})
    if not features:
        return b""
    data: bytes = mapbox_vector_tile.encode(
        [{"name": layer, "features": features}],
        default_options={"quantize_bounds": merc, "extents": extent},
    )
    return data


def heat_layer(
    points: gpd.GeoDataFrame,
    *,
    weight: str | None = "density",
    lang: str = "zh-en",
    radius: int = 18,
    show: bool = True,
) -> folium.FeatureGroup:
    """A Leaflet.heat layer of points (e.g. a KDE surface's ``to_points()``).

    Parameters
    ----------
    points : geopandas.GeoDataFrame
        Points (any CRS); *weight* names a column of weights (normalized to 0–1).
    weight : str or None
        Weight column, or ``None`` for equal weights.
    lang : str
        Language of the layer's name (as :func:`layers.catalog.normalize_lang` reads it).
    radius : int
        Blur radius in screen pixels.
    show : bool
        Shown when the map opens.

    Returns
    -------
    folium.FeatureGroup
        Named 事件密度(热力) / Event density (heat), holding one Leaflet.heat layer.

    Examples
    --------
    >>> import shapely
    >>> pts = gpd.GeoDataFrame({"density": [1.0, 3.0]},
    ...     geometry=[shapely.Point(24.94, 60.17), shapely.Point(24.95, 60.17)], crs=4326)
    >>> heat_layer(pts, lang="en").layer_name
    'Event density (heat)'
    """
    pts = _wgs84(points)
    pts = pts[~pts.geometry.is_empty & pts.geometry.notna()]
    xs, ys = pts.geometry.x.to_numpy(), pts.geometry.y.to_numpy()
    if weight is not None and weight in pts and len(pts):
        w = pd.to_numeric(pts[weight], errors="coerce").fillna(0).to_numpy("float64")
        w = w / w.max() if w.max() > 0 else w
    else:
        w = np.ones(len(pts))
    data = [[float(y), float(x), float(v)] for y, x, v in zip(ys, xs, w, strict=True)]
    group = folium.FeatureGroup(
        name=bilingual("事件密度(热力)", "Event density (heat)", lang), show=show
    )
    folium.plugins.HeatMap(data, radius=radius, blur=radius * 0.8, min_opacity=0.3).add_to(group)
    return group


def h3_choropleth(
    cells: gpd.GeoDataFrame,
    *,
    value: str = "count",
    lang: str = "zh-en",
    name: str | None = None,
    vmax: float | None = None,
    show: bool = True,
) -> folium.FeatureGroup:
    """H3 cells coloured by *value* (count or rate), with tooltips and a colour ramp.

    Give the same *vmax* to the layers of several periods to compare them by colour.

    Examples
    --------
    >>> from gridmap.analytics.binning import cell_polygons
    >>> cells = gpd.GeoDataFrame({"h3": ["891126d338fffff"], "count": [7]},
    ...                          geometry=cell_polygons(["891126d338fffff"]), crs=4326)
    >>> m = folium.Map(tiles=None)
    >>> _ = h3_choropleth(cells, lang="en").add_to(m)
    >>> "Events: 7" in m.get_root().render()
    True
    """
    if value not in cells:
        raise BadInput(f"cells have no column {value!r}", field="value")
    gdf = _wgs84(cells)
    values = pd.to_numeric(gdf[value], errors="coerce")
    top = float(vmax if vmax is not None else (values.max() if values.notna().any() else 1.0))
    cmap = LinearColormap(_RAMP, vmin=0.0, vmax=max(top, 1e-9))
    title = bilingual("H3 网格事件数", "Events per H3 cell", lang) if name is None else name
    group = folium.FeatureGroup(name=title, show=show)
    label = bilingual("事件数", "Events", lang) if value == "count" else value
    records = []
    for h, v, geom in zip(gdf["h3"], values, gdf.geometry, strict=True):
        shown = "—" if pd.isna(v) else (f"{v:.0f}" if float(v).is_integer() else f"{v:.2f}")
        color = "#cccccc" if pd.isna(v) else cmap(float(min(v, top)))
        records.append(
            {
                "type": "Feature",
                "geometry": geom.__geo_interface__,
                "properties": {"tip": f"{_t(h)}<br>{_t(label)}: {_t(shown)}", "color": color},
            }
        )
    tip_geojson(records, outline="#555555", weight=0.5, fill_opacity=0.65).add_to(group)
    return group


def hotspot_layer(
    hotspots: gpd.GeoDataFrame, *, lang: str = "zh-en", show: bool = True
) -> folium.FeatureGroup:
    """H3 cells coloured by hot-spot class (``hot_99`` … ``cold_99``; ``none`` left out).

    Examples
    --------
    >>> from gridmap.analytics.binning import cell_polygons
    >>> hs = gpd.GeoDataFrame({"h3": ["891126d338fffff"], "count": [40], "class": ["hot_99"]},
    ...                       geometry=cell_polygons(["891126d338fffff"]), crs=4326)
    >>> m = folium.Map(tiles=None)
    >>> _ = hotspot_layer(hs).add_to(m)
    >>> page = m.get_root().render()
    >>> CLASS_COLORS["hot_99"] in page, "Hot spot, 99% confidence" in page
    (True, True)
    """
    gdf = _wgs84(hotspots)
    gdf = gdf[gdf["class"].isin([c for c in CLASSES if c != "none"])]
    group = folium.FeatureGroup(
        name=bilingual("热点分析 (Gi*)", "Hot spots (Gi*)", lang), show=show
    )
    records = []
    for _, row in gdf.iterrows():
        cls = str(row["class"])
        tip = f"{_t(row['h3'])}<br>{_t(bilingual(*CLASS_LABELS[cls], lang=lang))}"
        if "pattern" in gdf and str(row["pattern"]) in EMERGING_LABELS:
            tip += f"<br>{_t(bilingual(*EMERGING_LABELS[str(row['pattern'])], lang=lang))}"
        count = row.get("count")
        if count is not None and not pd.isna(count):
            tip += f"<br>{_t(bilingual('事件数', 'Events', lang))}: {int(count)}"
        records.append(
            {
                "type": "Feature",
                "geometry": row.geometry.__geo_interface__,
                "properties": {"tip": tip, "color": CLASS_COLORS[cls]},
            }
        )
    if records:
        tip_geojson(records, outline=None, weight=1, fill_opacity=0.6).add_to(group)
    return group


class _Legend(MacroElement):
    _template = Template(
        """
        {% macro html(this, kwargs) %}
        <div id="{{ this.get_name() }}" style="position:absolute;bottom:24px;right:10px;
            z-index:1000;background:#fff;padding:6px 8px;border-radius:4px;
            font:12px/1.4 Arial,sans-serif;box-shadow:0 1px 4px rgba(0,0,0,.3)">
            {{ this.body }}</div>
        {% endmacro %}
        """
    )

    def __init__(self, body: str) -> None:
        super().__init__()
        self._name = "HotspotLegend"
        self.body = body


def hotspot_legend(*, lang: str = "zh-en") -> MacroElement:
    """A legend box of the hot-spot classes in zh-CN and/or English.

    Examples
    --------
    >>> m = folium.Map(tiles=None)
    >>> _ = hotspot_legend(lang="zh-en").add_to(m)
    >>> page = m.get_root().render()
    >>> "冷点 (95% 置信) Cold spot, 95% confidence" in page
    True
    """
    normalize_lang(lang)
    rows = [f"<b>{_t(bilingual('热点分析 Gi*', 'Hot spots (Gi*)', lang))}</b>"]
    for cls in CLASSES:
        swatch = (
            f'<span style="display:inline-block;width:12px;height:12px;margin-right:4px;'
            f'vertical-align:middle;background:{CLASS_COLORS[cls]}"></span>'
        )
        rows.append(f"<div>{swatch}{_t(bilingual(*CLASS_LABELS[cls], lang=lang))}</div>")
    note = bilingual("FDR 校正; 事件为合成数据", "FDR-corrected; events are synthetic", lang)
    rows.append(f"<div style='color:#666'>{_t(note)}</div>")
    return _Legend("".join(rows))


def period_layers(
    cells_by_period: Mapping[str, gpd.GeoDataFrame],
    *,
    value: str = "count",
    lang: str = "zh-en",
) -> list[folium.FeatureGroup]:
    """One choropleth per period with a shared colour scale: a period selector in the layer control.

    Only the last period is shown when the map opens; tick another in the
    layer control to compare.

    Examples
    --------
    >>> from gridmap.analytics.binning import cell_polygons
    >>> g = gpd.GeoDataFrame({"h3": ["891126d338fffff"], "count": [3]},
    ...                      geometry=cell_polygons(["891126d338fffff"]), crs=4326)
    >>> [lyr.layer_name for lyr in period_layers({"2026-09": g, "2026-10": g}, lang="en")]
    ['Events per H3 cell 2026-09', 'Events per H3 cell 2026-10']
    """
    tops = [pd.to_numeric(c[value], errors="coerce").max() for c in cells_by_period.values()]
    finite = [float(t) for t in tops if pd.notna(t)]
    vmax = max(finite) if finite else 1.0
    base = bilingual("H3 网格事件数", "Events per H3 cell", lang)
    keys = list(cells_by_period)
    return [
        h3_choropleth(
            cells_by_period[k],
            value=value,
            lang=lang,
            name=f"{base} {_t(k)}",
            vmax=vmax,
            show=(k == keys[-1]),
        )
        for k in keys
    ]


class PeriodSelector(MacroElement):
    """A Leaflet control choosing which period's layer the map shows (时段选择).

    A drop-down (``<select>``) in the map's corner lists the periods; picking
    one shows that period's layer and hides the others. The period shown
    when the map opens is the one whose layer is on the map (the last one
    from :func:`period_layers`). Labels go in as text, never as HTML.

    Parameters
    ----------
    layers : mapping of str → folium layer
        Period label → its layer (already added to the map, in order).
    lang : str
        ``zh``, ``en`` or ``zh-en`` for the control's title.
    position : str
        Leaflet control position.

    Examples
    --------
    >>> from gridmap.analytics.binning import cell_polygons
    >>> g = gpd.GeoDataFrame({"h3": ["891126d338fffff"], "count": [3]},
    ...                      geometry=cell_polygons(["891126d338fffff"]), crs=4326)
    >>> m = folium.Map(tiles=None)
    >>> groups = period_layers({"2026-09": g, "2026-10</script>": g})
    >>> for layer in groups:
    ...     _ = layer.add_to(m)
    >>> _ = PeriodSelector({"2026-09": groups[0], "2026-10</script>": groups[1]}).add_to(m)
    >>> page = m.get_root().render()
    >>> "gridmap-period" in page, "2026-10</script>" in page
    (True, False)
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        (function () {
            var map = {{ this._parent.get_name() }};
            var periods = {{ this.periods_js }};
            var control = L.control({position: {{ this.position_js }}});
            control.onAdd = function () {
                var div = L.DomUtil.create("div", "gridmap-period leaflet-bar");
                div.style.background = "white";
                div.style.padding = "4px 6px";
                var label = L.DomUtil.create("label", "", div);
                label.textContent = {{ this.title_js }} + " ";
                var select = L.DomUtil.create("select", "", label);
                periods.forEach(function (p, i) {
                    var option = document.createElement("option");
                    option.value = String(i);
                    option.textContent = p[0];
                    if (map.hasLayer(p[1])) { option.selected = true; }
                    select.appendChild(option);
                });
                L.DomEvent.disableClickPropagation(div);
                L.DomEvent.on(select, "change", function () {
                    periods.forEach(function (p, i) {
                        if (String(i) === select.value) { map.addLayer(p[1]); }
                        else if (map.hasLayer(p[1])) { map.removeLayer(p[1]); }
                    });
                });
                return div;
            };
            control.addTo(map);
        })();
        {% endmacro %}
        """
    )

    def __init__(
        self,
        layers: Mapping[str, folium.FeatureGroup],
        *,
        lang: str = "zh-en",
        position: str = "topright",
    ) -> None:
        super().__init__()
        self._name = "PeriodSelector"
        pairs = ", ".join(f"[{_js(str(k))}, {v.get_name()}]" for k, v in layers.items())
        self.periods_js = f"[{pairs}]"
        self.title_js = _js(bilingual("时段", "Period", normalize_lang(lang)))
        self.position_js = _js(position)


def _js(text: str) -> str:
    """A JavaScript string literal safe inside ``<script>`` (no ``</script>``, no ``<!--``)."""
    return json.dumps(text, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e")


def hazard_map(
    *,
    heat: gpd.GeoDataFrame | None = None,
    cells: gpd.GeoDataFrame | Mapping[str, gpd.GeoDataFrame] | None = None,
    hotspots: gpd.GeoDataFrame | None = None,
    lang: str = "zh-en",
    base_url: str = DEFAULT_BASE_URL,
    m: folium.Map | None = None,
) -> folium.Map:
    """The hazard map: heat layer, H3 choropleth (one per period), hot spots, legend.

    Parameters
    ----------
    heat : geopandas.GeoDataFrame, optional
        Weighted points (:meth:`gridmap.analytics.kde.DensitySurface.to_points`).
    cells : GeoDataFrame or mapping of period → GeoDataFrame, optional
        Counts per cell (:func:`gridmap.analytics.binning.heat_cells`); a mapping gives one
        layer per period and a period selector (:class:`PeriodSelector`).
    hotspots : geopandas.GeoDataFrame, optional
        Hot-spot cells with ``class`` (:func:`gridmap.analytics.hotspots.hotspot_cells`).
    lang, base_url, m
        Language, where assets are served, a map to draw on.

    Returns
    -------
    folium.Map
        With a layer control; every script loads from *base_url*.

    Examples
    --------
    >>> import shapely
    >>> pts = gpd.GeoDataFrame({"density": [1.0]}, geometry=[shapely.Point(24.94, 60.17)],
    ...                        crs=4326)
    >>> page = hazard_map(heat=pts).get_root().render()
    >>> "leaflet_heat.min.js" in page or "leaflet-heat.js" in page, "cdn.jsdelivr" in page
    (True, False)
    """
    lang = normalize_lang(lang)
    m = m or folium.Map(tiles=None, control_scale=True, zoom_start=14)
    frames: list[gpd.GeoDataFrame] = []
    if cells is not None:
        if isinstance(cells, gpd.GeoDataFrame):
            h3_choropleth(cells, lang=lang).add_to(m)
            frames.append(cells)
        else:
            groups = period_layers(cells, lang=lang)
            for layer in groups:
                layer.add_to(m)
            if len(groups) > 1:
                PeriodSelector(dict(zip(cells, groups, strict=True)), lang=lang).add_to(m)
            frames.extend(cells.values())
    if hotspots is not None:
        hotspot_layer(hotspots, lang=lang).add_to(m)
        hotspot_legend(lang=lang).add_to(m)
        frames.append(hotspots)
    if heat is not None:
        heat_layer(heat, lang=lang).add_to(m)
        frames.append(heat)
    folium.LayerControl(collapsed=False).add_to(m)
    boxes = [f.to_crs(4326).total_bounds for f in frames if len(f)]
    if boxes:
        b = np.array(boxes)
        m.fit_bounds([[b[:, 1].min(), b[:, 0].min()], [b[:, 3].max(), b[:, 2].max()]])
    return localize(m, base_url)
