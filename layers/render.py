"""Render gridmap layers with folium: data in, folium objects out.

Renderers take GeoDataFrames and return folium objects; they never open a
database. Every text that comes from data is HTML-escaped in Python before it
reaches the page (popups and tooltips show it as HTML), datetimes become ISO
strings, personal fields are dropped unless the role may see them and masked
as the API masks them when it may (``张*``, ``138****1234``), and
:func:`~layers.assets.localize` points the map at local copies of every script,
stylesheet and font, so that it loads nothing from the internet.
"""

from __future__ import annotations

import html
import json
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import folium
import folium.plugins
import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from branca.colormap import LinearColormap
from branca.element import Figure, MacroElement
from folium.template import Template
from folium.utilities import JsCode

from gridmap.common.errors import BadInput, NotFound
from gridmap.geo.chinacrs import from_wgs84
from gridmap.security.privacy import mask_name, mask_phone
from layers.assets import DEFAULT_BASE_URL, inline_html, localize, localized_base_url
from layers.catalog import (
    CATALOG,
    FieldDef,
    LayerDef,
    bilingual,
    check_role,
    get_layer,
    label,
    normalize_lang,
)
from layers.vector import (
    ESC_JS,
    LABEL_FULL_ZOOM,
    LABELS_JS,
    VECTOR_THRESHOLD,
    Popup,
    TiledLayer,
    VectorTileLayer,
    tiled_layer,
)
from layers.vector import tiles_url as tiles_url_for

__all__ = [
    "BASEMAP_CRS",
    "MapOptions",
    "feature_collection",
    "map_html",
    "render_layer",
    "render_map",
]

_NO_DATA_COLOR = "#e0e0e0"
_MAX_ZOOM = 20
_ID_FIELD = FieldDef("id", "int", "编号", "ID")
#: Coordinate systems a basemap may use: overlays are shifted to match a GCJ-02 one.
BASEMAP_CRS = ("wgs84", "gcj02")
#: Layers the search box looks through (drawn from inline GeoJSON).
_SEARCHED = ("grids", "admin_units", "buildings", "key_areas")


# --------------------------------------------------------------------------- values


def _is_missing(value: Any) -> bool:
    return value is None or (pd.api.types.is_scalar(value) and bool(pd.isna(value)))


def _text(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _display(
    value: Any, fdef: FieldDef, lang: str, *, masked: bool = True
) -> str | int | float | None:
    """One property value, ready for HTML: escaped text, a number, or ``None``.

    Personal fields are masked as the API masks them unless *masked* is false.
    """
    if isinstance(value, list | tuple | np.ndarray | pd.Series):
        items = [_display(v, fdef, lang, masked=masked) for v in value]
        return "、".join(str(v) for v in items if v is not None) or None
    if _is_missing(value):
        return None
    if fdef.personal and masked:
        if fdef.mask == "name":
            return _text(mask_name(str(value)))
        if fdef.mask == "phone":
            return _text(mask_phone(str(value)))
        return None
    if isinstance(value, bool | np.bool_):
        return bilingual("是", "Yes", lang) if value else bilingual("否", "No", lang)
    if isinstance(value, datetime | date | pd.Timestamp | np.datetime64):
        return _text(pd.Timestamp(value).isoformat() if fdef.type != "date" else _iso_date(value))
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        as_float = float(value)
        return int(as_float) if fdef.type == "int" and as_float.is_integer() else round(as_float, 2)
    if fdef.vocabulary is not None:
        return _text(label(str(value), lang, vocabulary=fdef.vocabulary))
    return _text(value)


def _iso_date(value: Any) -> str:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    return pd.Timestamp(value).date().isoformat()


def _js(value: Any) -> str:
    """A JSON literal that is safe inside an HTML ``<script>`` element."""
    text = json.dumps(value, ensure_ascii=False)
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(raw, escaped)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


# --------------------------------------------------------------------------- data


def _prepare(name: str, gdf: Any) -> gpd.GeoDataFrame:
    if not isinstance(gdf, gpd.GeoDataFrame):
        raise TypeError(f"layer {name!r}: expected a GeoDataFrame, got {type(gdf).__name__}")
    if gdf.crs is not None and not gdf.crs.equals("EPSG:4326"):
        gdf = gdf.to_crs("EPSG:4326")
    geoms = gdf.geometry
    keep = ~(geoms.isna() | geoms.is_empty)
    return gdf.loc[keep]


def _shown_fields(layer: LayerDef, gdf: gpd.GeoDataFrame, role: str) -> list[FieldDef]:
    visible = {f.name: f for f in layer.fields_for(role)}
    wanted = set(layer.popup_fields) | set(layer.tooltip_fields)
    out = [_ID_FIELD] if "id" in gdf.columns else []
    out += [f for n, f in visible.items() if n in wanted and n in gdf.columns]
    return out


def feature_collection(
    layer: str,
    gdf: gpd.GeoDataFrame,
    *,
    lang: str = "zh-en",
    role: str = "viewer",
    unmask: bool = False,
) -> dict[str, Any]:
    """Return the GeoJSON a map shows for a layer: escaped display values only.

    Properties are limited to the layer's popup and tooltip fields that *role* may
    see; personal ones are masked as the API masks them (``张*``, ``138****1234``)
    unless *unmask*; text is HTML-escaped, coded values (status, category, level,
    kind) are labelled in *lang*, datetimes are ISO 8601 strings, lists are joined. Features
    get ids ``"0"``, ``"1"``, … in row order; rows without geometry are left out.
    This is display data for a map page, not an interchange format.

    Parameters
    ----------
    layer : str
        Layer name of the catalog.
    gdf : geopandas.GeoDataFrame
        The layer's features (any CRS; WGS84 if none is set).
    lang : str, default "zh-en"
        ``"zh-CN"``, ``"en"`` or ``"zh-en"``.
    role : str, default "viewer"
        Role of the person who will see the map: layers it may not see are refused,
        personal fields are left out unless it may see them, and then masked.
    unmask : bool, default False
        Show personal fields unmasked (only for a reader allowed to unmask).

    Returns
    -------
    dict
        A GeoJSON FeatureCollection in WGS84.

    Raises
    ------
    gridmap.common.errors.UnknownLayer
        If the layer is not in the catalog.
    gridmap.common.errors.NotFound
        If *role* may not see the layer.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import Point
    >>> gdf = gpd.GeoDataFrame({"name": ["<b>A</b>"]}, geometry=[Point(24.94, 60.17)], crs=4326)
    >>> feature_collection("key_areas", gdf)["features"][0]["properties"]["name"]
    '&lt;b&gt;A&lt;/b&gt;'
    """
    ldef = _visible_layer(layer, role)
    lang = normalize_lang(lang)
    gdf = _prepare(layer, gdf)
    fields = _shown_fields(ldef, gdf, role)
    columns = {
        f.name: [_display(v, f, lang, masked=not unmask) for v in gdf[f.name].tolist()]
        for f in fields
    }
    skeleton = json.loads(gdf.geometry.to_json()) if len(gdf) else {"features": []}
    features = []
    for i, feature in enumerate(skeleton["features"]):
        props = {name: values[i] for name, values in columns.items()}
        features.append(
            {"type": "Feature", "id": str(i), "properties": props, "geometry": feature["geometry"]}
        )
    return {"type": "FeatureCollection", "features": features}


def _visible_layer(layer: str, role: str) -> LayerDef:
    ldef = get_layer(layer)
    if not ldef.is_spatial:
        raise BadInput(f"layer {layer!r} has no geometry and cannot be drawn", field="layer")
    if not ldef.is_visible_to(check_role(role)):
        raise NotFound(f"layer {layer!r} is not visible to role {role!r}")
    return ldef


# --------------------------------------------------------------------------- styles


def _ramp(layer: LayerDef, values: pd.Series) -> LinearColormap | None:
    numeric = pd.to_numeric(values, errors="coerce").dropna()
    if not layer.ramp or numeric.empty:
        return None
    vmin, vmax = float(numeric.min()), float(numeric.max())
    return LinearColormap(list(layer.ramp), vmin=vmin, vmax=vmax if vmax > vmin else vmin + 1)


def _styles(layer: LayerDef, gdf: gpd.GeoDataFrame) -> list[dict[str, Any]]:
    base = dict(layer.style)
    base.setdefault("fill", "fillColor" in base)
    if layer.color_by is None or layer.color_by not in gdf.columns:
        return [dict(base) for _ in range(len(gdf))]
    values = gdf[layer.color_by]
    if layer.ramp:
        cmap = _ramp(layer, values)
        numeric = pd.to_numeric(values, errors="coerce")
        colors = [
            _NO_DATA_COLOR if cmap is None or pd.isna(v) else str(cmap(float(v)))
            for v in numeric.tolist()
        ]
    else:
        default = str(base.get("fillColor", _NO_DATA_COLOR))
        colors = [layer.palette.get(str(v), default) for v in values.tolist()]
    return [{**base, "fillColor": c} for c in colors]


def _highlight(layer: LayerDef) -> dict[str, Any]:
    weight = float(layer.style.get("weight", 1))
    out: dict[str, Any] = {"weight": weight + 2, "opacity": 1.0}
    if layer.style.get("fill", True) and "fillOpacity" in layer.style:
        out["fillOpacity"] = min(1.0, float(layer.style["fillOpacity"]) + 0.2)
    return out


# --------------------------------------------------------------------------- popups

_BIND_JS = """function (feature, layer) {
    var tip = %(tip)s, pop = %(pop)s, heading = %(heading)s;
    function table(fields) {
        var p = feature.properties || {}, rows = "";
        for (var i = 0; i < fields.length; i++) {
            var v = p[fields[i][0]];
            if (v === null || v === undefined || v === "") { continue; }
            rows += "<tr><th>" + fields[i][1] + "</th><td>" + v + "</td></tr>";
        }
        return '<table class="gridmap-props">' + rows + "</table>";
    }
    if (tip.length) {
        layer.bindTooltip(function () { return table(tip); }, {sticky: true});
    }
    if (pop.length) {
        layer.bindPopup(function () {
            return '<div class="gridmap-popup"><div class="gridmap-popup-title">' + heading
                + "</div>" + table(pop) + "</div>";
        }, {maxWidth: 360, minWidth: 240, maxHeight: 420});
    }
}"""


def _bind_popups(layer: LayerDef, fields: Sequence[FieldDef], lang: str) -> JsCode:
    """Per-feature tooltip and popup; every string in them is escaped HTML already."""
    shown = {f.name: f for f in fields}
    tip = [n for n in layer.tooltip_fields if n in shown]
    pop = ["id"] if "id" in shown else []
    pop += [n for n in layer.popup_fields if n in shown]

    def pairs(names: Sequence[str]) -> list[list[str]]:
        return [[n, html.escape(shown[n].title(lang))] for n in names]

    return JsCode(
        _BIND_JS
        % {
            "tip": _js(pairs(tip)),
            "pop": _js(pairs(pop)),
            "heading": _js(html.escape(layer.title(lang))),
        }
    )


# --------------------------------------------------------------------------- layers


def render_layer(
    layer: str,
    gdf: gpd.GeoDataFrame,
    *,
    lang: str = "zh-en",
    role: str = "viewer",
    unmask: bool = False,
) -> folium.map.Layer:
    """Return the folium layer that draws one catalog layer, styled as the catalog says.

    Polygons and lines become a ``GeoJson`` layer (grids as a choropleth of
    households), events a ``MarkerCluster`` of circle markers coloured by status.
    Each feature has a tooltip and a popup with the fields *role* may see, labelled
    in *lang*. An empty layer becomes an empty ``FeatureGroup`` (it is still listed
    in the layer control).

    Takes the parameters of :func:`feature_collection`, whose GeoJSON it draws,
    and raises what it raises.

    Returns
    -------
    folium.map.Layer
        Add it to a map; the layer control shows it under the layer's title.

    Examples
    --------
    >>> import folium, geopandas as gpd
    >>> from shapely import box
    >>> gdf = gpd.GeoDataFrame({"code": ["370285001001001"], "households": [310]},
    ...                        geometry=[box(24.93, 60.16, 24.95, 60.18)], crs=4326)
    >>> m = folium.Map(tiles=None)
    >>> render_layer("grids", gdf, lang="en").add_to(m).layer_name
    'Grids'
    """
    ldef = _visible_layer(layer, role)
    lang = normalize_lang(lang)
    name = html.escape(ldef.title(lang))
    gdf = _prepare(layer, gdf)
    if gdf.empty:
        return folium.FeatureGroup(name=name, overlay=True, control=True)
    styles = _styles(ldef, gdf)
    points = bool(gdf.geometry.geom_type.isin(["Point", "MultiPoint"]).any())
    # Point layers (events) are clustered; their markers are coloured, not highlighted.
    clustered = ldef.geometry_type == "Point"
    highlight = _highlight(ldef)
    geojson = folium.GeoJson(
        feature_collection(layer, gdf, lang=lang, role=role, unmask=unmask),
        name=name,
        style_function=lambda f: dict(styles[int(f["id"])]),
        highlight_function=None if clustered else (lambda _f: dict(highlight)),
        on_each_feature=_bind_popups(ldef, _shown_fields(ldef, gdf, role), lang),
        marker=_marker(ldef) if points else None,
        control=not clustered,
        overlay=True,
    )
    geojson.add_child(_Stylesheet())
    if not clustered:
        return geojson
    cluster = folium.plugins.MarkerCluster(
        name=name,
        overlay=True,
        control=True,
        icon_create_function=_CLUSTER_ICON_JS,
        options={"showCoverageOnHover": False, "spiderfyOnMaxZoom": True, "maxClusterRadius": 50},
    )
    geojson.add_to(cluster)
    return cluster


# Neutral cluster bubbles: markercluster's green/yellow/orange would read as statuses.
_CLUSTER_ICON_JS = """function (cluster) {
    var n = cluster.getChildCount(), size = n < 10 ? 28 : n < 100 ? 34 : 40;
    return L.divIcon({
        html: "<div><span>" + n + "</span></div>",
        className: "gridmap-cluster",
        iconSize: L.point(size, size)
    });
}"""


def _marker(layer: LayerDef) -> folium.CircleMarker:
    return folium.CircleMarker(radius=float(layer.style.get("radius", 6)), fill=True)


# --------------------------------------------------------------------------- controls

_STYLE_CSS = """
<style>
    .leaflet-container { background: #f7f5f0; }
    .gridmap-control {
        background: rgba(255, 255, 255, 0.94); padding: 6px 10px; border-radius: 4px;
        box-shadow: 0 1px 5px rgba(0, 0, 0, 0.35); max-width: 300px;
        font: 12px/1.45 "Helvetica Neue", Arial, "PingFang SC", "Noto Sans CJK SC",
            "Microsoft YaHei", sans-serif;
    }
    .gridmap-title { font-size: 16px; font-weight: 600; max-width: 420px; }
    .gridmap-legend-heading { font-weight: 600; margin: 4px 0 2px; }
    .gridmap-legend-row { display: flex; align-items: center; gap: 6px; margin: 1px 0; }
    .gridmap-swatch { flex: none; display: inline-block; width: 18px; height: 12px;
        box-sizing: border-box; }
    .gridmap-swatch-point { width: 12px; border-radius: 50%; border: 1px solid #263238; }
    .gridmap-ramp { height: 10px; width: 180px; border: 1px solid #999; }
    .gridmap-ramp-labels { display: flex; justify-content: space-between; width: 180px; }
    .gridmap-props { border-collapse: collapse; table-layout: fixed; width: 100%;
        font: 12px/1.3 "Helvetica Neue", Arial, "PingFang SC", "Noto Sans CJK SC",
            "Microsoft YaHei", sans-serif; }
    .gridmap-props tr + tr th, .gridmap-props tr + tr td { border-top: 1px solid #eee; }
    .gridmap-props th { width: 46%; text-align: left; padding: 2px 8px 2px 0; font-weight: 600;
        color: #555; vertical-align: top; white-space: normal; overflow-wrap: anywhere; }
    .gridmap-props td { padding: 2px 0; vertical-align: top; white-space: normal;
        word-break: normal; overflow-wrap: anywhere; }
    .gridmap-popup { width: 330px; max-width: 100%; }
    .gridmap-popup-title { font-weight: 600; margin-bottom: 4px; }
    .leaflet-popup-content { margin: 10px 12px; }
    .gridmap-search input { width: 190px; margin-right: 4px; }
    .gridmap-search-status, .gridmap-filter-count { color: #555; min-height: 1em; }
    .gridmap-filter select { max-width: 220px; margin-bottom: 4px; }
    .gridmap-filter-dates label { display: block; margin: 2px 0; }
    .gridmap-color-switch select { max-width: 220px; margin-bottom: 4px; }
    .gridmap-label { background: none; border: none; }
    .gridmap-label span { display: inline-block; transform: translate(-50%, -50%);
        white-space: nowrap; font: 600 11px/1.2 Arial, sans-serif; color: #0d47a1;
        text-shadow: 0 0 2px #fff, 0 0 2px #fff, 0 0 3px #fff; pointer-events: none; }
    .gridmap-labels-short .gridmap-label-full,
    .gridmap-labels-full .gridmap-label-short { display: none; }
    .gridmap-cluster { background: rgba(38, 50, 56, 0.3); border-radius: 50%; }
    .gridmap-cluster div { box-sizing: border-box; margin: 3px; width: calc(100% - 6px);
        height: calc(100% - 6px); border-radius: 50%; background: rgba(38, 50, 56, 0.85);
        color: #fff; display: flex; align-items: center; justify-content: center;
        font: 600 12px/1 Arial, sans-serif; }
</style>
"""


class _Stylesheet(MacroElement):
    """gridmap's map stylesheet; one copy per page, however many elements add it."""

    _template = Template("{% macro header(this, kwargs) %}" + _STYLE_CSS + "{% endmacro %}")

    def get_name(self) -> str:
        return "gridmap_stylesheet"


#: The element of a control: the block of HTML, hidden until the control is on the map.
_CONTROL_HTML = """
        {% macro html(this, kwargs) %}
        <div id="{{ this.get_name() }}" class="gridmap-control {{ this.css_class }}"
            hidden>{{ this.body }}</div>
        {% endmacro %}
"""


class _HtmlControl(MacroElement):
    """A Leaflet control showing a block of (already escaped) HTML."""

    _template = Template(
        _CONTROL_HTML
        + """        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = L.control({position: {{ this.position|tojson }}});
            {{ this.get_name() }}.onAdd = function (map) {
                var div = document.getElementById({{ this.get_name()|tojson }});
                div.hidden = false;
                L.DomEvent.disableClickPropagation(div);
                L.DomEvent.disableScrollPropagation(div);
                return div;
            };
            {{ this.get_name() }}.addTo({{ this._parent.get_name() }});
        {% endmacro %}
        """
    )

    def __init__(self, body: str, *, position: str, css_class: str) -> None:
        super().__init__()
        self._name = "GridmapControl"
        self.body = body
        self.position = position
        self.css_class = css_class
        self.add_child(_Stylesheet())


class _ScriptedControl(_HtmlControl):
    """A Leaflet control of (already escaped) HTML with a script run on the map.

    The script sees ``map`` (the Leaflet map) and ``box`` (the control's element);
    it must put user input into the page only as text (``textContent``).
    """

    _template = Template(
        _CONTROL_HTML
        + """        {% macro script(this, kwargs) %}
        (function (map) {
            var box = document.getElementById({{ this.get_name()|tojson }});
            var control = L.control({position: {{ this.position|tojson }}});
            control.onAdd = function () {
                box.hidden = false;
                L.DomEvent.disableClickPropagation(box);
                L.DomEvent.disableScrollPropagation(box);
                return box;
            };
            control.addTo(map);
            {{ this.code }}
        })({{ this._parent.get_name() }});
        {% endmacro %}
        """
    )

    def __init__(self, body: str, code: str, *, position: str, css_class: str) -> None:
        super().__init__(body, position=position, css_class=css_class)
        self.code = code


_SEARCH_JS = (
    ESC_JS
    + """
var layers = [%(layers)s], messages = %(messages)s;
var input = box.querySelector("input"), status = box.querySelector(".gridmap-search-status");
function search() {
    // Properties on the page are escaped HTML: compare with the escaped query.
    var raw = input.value.trim(), q = esc(raw).toLowerCase(), exact = [], partial = [];
    status.textContent = "";
    if (!raw) { return; }
    layers.forEach(function (group) {
        if (!map.hasLayer(group)) { return; }
        group.eachLayer(function (l) {
            var p = (l.feature && l.feature.properties) || {}, hit = 0;
            for (var k in p) {
                if (typeof p[k] !== "string") { continue; }
                var v = p[k].toLowerCase();
                if (v === q) { hit = 2; break; }
                if (v.indexOf(q) >= 0) { hit = 1; }
            }
            if (hit === 2) { exact.push(l); } else if (hit === 1) { partial.push(l); }
        });
    });
    var hits = exact.concat(partial);
    if (!hits.length) { status.textContent = messages.none; return; }
    status.textContent = messages.found.split("{n}").join(String(hits.length));
    var first = hits[0];
    var bounds = first.getBounds ? first.getBounds() : L.latLngBounds([first.getLatLng()]);
    map.fitBounds(bounds, {maxZoom: 18});
    if (first.openPopup) { first.openPopup(); }
}
input.addEventListener("keydown", function (e) { if (e.key === "Enter") { search(); } });
box.querySelector("button").addEventListener("click", search);
"""
)


class _SearchControl(_ScriptedControl):
    """A search box over the map's inline layers: grid code, address, name."""

    def __init__(self, layers: Sequence[folium.GeoJson], *, lang: str) -> None:
        placeholder = bilingual("网格编码、地址或名称", "Grid code, address or name", lang)
        button = bilingual("搜索", "Search", lang)
        body = (
            '<div class="gridmap-search">'
            f'<input type="search" aria-label="{_text(placeholder)}" '
            f'placeholder="{_text(placeholder)}" maxlength="200">'
            f'<button type="button">{_text(button)}</button>'
            '<div class="gridmap-search-status" role="status"></div></div>'
        )
        messages = {
            "none": bilingual("未找到", "Nothing found", lang),
            "found": bilingual("找到 {n} 个", "{n} found", lang),
        }
        names = ", ".join(layer.get_name() for layer in layers)
        code = _SEARCH_JS % {"layers": names, "messages": _js(messages)}
        super().__init__(body, code, position="topleft", css_class="gridmap-search-box")


_FILTER_JS = """
var cluster = %(cluster)s, group = %(group)s, all = group.getLayers();
var category = box.querySelector("select"), dates = box.querySelectorAll("input");
var count = box.querySelector(".gridmap-filter-count");
function apply() {
    var cat = category.value, from = dates[0].value, to = dates[1].value;
    var keep = all.filter(function (l) {
        var p = l.feature.properties || {}, day = String(p.reported_at || "").slice(0, 10);
        if (cat && p.category !== cat) { return false; }
        if (from && (!day || day < from)) { return false; }
        if (to && (!day || day > to)) { return false; }
        return true;
    });
    cluster.clearLayers();
    cluster.addLayers(keep);
    count.textContent = keep.length + " / " + all.length;
}
category.addEventListener("change", apply);
dates.forEach(function (d) { d.addEventListener("change", apply); });
apply();
"""


class _EventFilter(_ScriptedControl):
    """Period (reported between two days) and category filters of the event markers."""

    def __init__(
        self,
        cluster: folium.plugins.MarkerCluster,
        geojson: folium.GeoJson,
        gdf: gpd.GeoDataFrame,
        *,
        lang: str,
    ) -> None:
        ldef = get_layer("events")
        everything = _text(bilingual("全部类别", "All categories", lang))
        options = [f'<option value="">{everything}</option>']
        if "category" in gdf.columns:
            fdef = ldef.field("category")
            shown = {_display(v, fdef, lang) for v in gdf["category"].tolist()} - {None}
            # Values are escaped HTML already: as text they show the label, escaped once
            # more they make the attribute whose value equals the feature's property.
            options += [f'<option value="{_text(v)}">{v}</option>' for v in sorted(map(str, shown))]
        heading = _text(bilingual("事件筛选", "Filter events", lang))
        since, until = bilingual("起", "From", lang), bilingual("止", "To", lang)
        body = (
            f'<div class="gridmap-legend-heading">{heading}</div>'
            f'<select aria-label="{_text(bilingual("类别", "Category", lang))}">'
            + "".join(options)
            + "</select>"
            f'<div class="gridmap-filter-dates"><label>{_text(since)} <input type="date"></label>'
            f'<label>{_text(until)} <input type="date"></label></div>'
            '<div class="gridmap-filter-count"></div>'
        )
        code = _FILTER_JS % {"cluster": cluster.get_name(), "group": geojson.get_name()}
        super().__init__(body, code, position="topleft", css_class="gridmap-filter")


_SWITCH_JS = """
var layer = %(layer)s, colors = %(colors)s, ramps = %(ramps)s, base = %(base)s;
var select = box.querySelector("select"), bar = box.querySelector(".gridmap-ramp");
var ends = box.querySelectorAll(".gridmap-ramp-labels span");
function apply() {
    var key = select.value, fill = colors[key], ramp = ramps[key];
    // resetStyle (after a hover) goes back to options.style: keep it on the choice.
    layer.options.style = function (f) {
        return Object.assign({}, base, {fillColor: fill[Number(f.id)]});
    };
    layer.setStyle(layer.options.style);
    bar.style.background = ramp.gradient;
    ends[0].textContent = ramp.low;
    ends[1].textContent = ramp.high;
}
select.addEventListener("change", apply);
apply();
"""


class _ColorSwitch(_ScriptedControl):
    """What colours a choropleth layer (grids: households or workload index), with its ramp."""

    def __init__(
        self,
        geojson: folium.GeoJson,
        ldef: LayerDef,
        gdf: gpd.GeoDataFrame,
        options: Sequence[str],
        *,
        lang: str,
    ) -> None:
        colors: dict[str, list[str]] = {}
        ramps: dict[str, dict[str, str]] = {}
        choices = []
        for name in options:
            values = pd.to_numeric(gdf[name], errors="coerce")
            cmap = _ramp(ldef, values)
            colors[name] = [
                _NO_DATA_COLOR if cmap is None or pd.isna(v) else str(cmap(float(v)))
                for v in values.tolist()
            ]
            if cmap is None:
                ramps[name] = {"gradient": _NO_DATA_COLOR, "low": "—", "high": "—"}
            else:
                steps = [cmap.vmin + (cmap.vmax - cmap.vmin) * k / 8 for k in range(9)]
                gradient = ", ".join(str(cmap(v)) for v in steps)
                ramps[name] = {
                    "gradient": f"linear-gradient(to right, {gradient})",
                    "low": _number(values.min()),
                    "high": _number(values.max()),
                }
            title = _text(ldef.field(name).title(lang))
            choices.append(f'<option value="{_text(name)}">{title}</option>')
        heading = _text(f"{ldef.title(lang)}: {bilingual('着色', 'colour by', lang)}")
        body = (
            f'<div class="gridmap-legend-heading">{heading}</div>'
            f'<select aria-label="{heading}">' + "".join(choices) + "</select>"
            '<div class="gridmap-ramp"></div>'
            '<div class="gridmap-ramp-labels"><span></span><span></span></div>'
        )
        base = {k: v for k, v in ldef.style.items() if k != "fillColor"}
        base.setdefault("fill", True)
        code = _SWITCH_JS % {
            "layer": geojson.get_name(),
            "colors": _js(colors),
            "ramps": _js(ramps),
            "base": _js(base),
        }
        super().__init__(body, code, position="bottomright", css_class="gridmap-color-switch")


class _FeatureLabels(MacroElement):
    """Permanent labels (grid codes) shown with their layer.

    The full code from zoom :data:`~layers.vector.LABEL_FULL_ZOOM` (16), the short
    grid number (last 3 digits) below; vector tile layers draw the same labels
    (see :mod:`layers.vector`).
    """

    _template = Template(
        "{% macro script(this, kwargs) %}(function (map, layer, spots, full) {"
        + ESC_JS
        + LABELS_JS
        + "gridmapLabels(map, layer, full)(spots);"
        + "})({{ this._parent.get_name() }}, {{ this.geojson.get_name() }}, "
        "{{ this.spots_js }}, {{ this.full_zoom }});{% endmacro %}"
    )

    def __init__(self, geojson: folium.GeoJson, gdf: gpd.GeoDataFrame, column: str) -> None:
        super().__init__()
        self._name = "GridmapLabels"
        points = gdf.geometry.representative_point()
        spots = [
            [round(float(p.y), 7), round(float(p.x), 7), str(v), str(v)[-3:]]
            for p, v in zip(points, gdf[column].tolist(), strict=True)
            if not _is_missing(v)
        ]
        self.geojson = geojson
        self.spots_js = _js(spots)
        self.full_zoom = LABEL_FULL_ZOOM
        self.add_child(_Stylesheet())


def _add_language_links(m: folium.Map, links: Mapping[str, str], lang: str) -> None:
    names = {"zh": "中文", "en": "English", "zh-en": "中文 English"}
    parts = []
    for key, href in links.items():
        which = normalize_lang(key)
        text = _text(names[which])
        if which == lang:
            parts.append(f'<strong aria-current="true">{text}</strong>')
        else:
            parts.append(f'<a href="{_text(href)}" hreflang="{which}">{text}</a>')
    body = '<div class="gridmap-lang">' + " | ".join(parts) + "</div>"
    _HtmlControl(body, position="bottomleft", css_class="gridmap-lang-box").add_to(m)


def _swatch(style: Mapping[str, Any], *, point: bool = False) -> str:
    color = _text(style.get("color", "#333"))
    fill = _text(style.get("fillColor", "transparent")) if style.get("fill", True) else ""
    if point:
        return (
            f'<span class="gridmap-swatch gridmap-swatch-point" style="background:{fill}"></span>'
        )
    if not fill or "fillOpacity" not in style:
        dash = "dashed" if style.get("dashArray") else "solid"
        width = max(1, min(4, round(float(style.get("weight", 1)))))
        return (
            f'<span class="gridmap-swatch" style="height:0;border-top:{width}px {dash} {color}">'
            "</span>"
        )
    opacity = float(style.get("fillOpacity", 1))
    return (
        f'<span class="gridmap-swatch" style="background:{fill};opacity:{max(opacity, 0.5)};'
        f'border:2px solid {color}"></span>'
    )


def _row(swatch: str, text: str) -> str:
    return f'<div class="gridmap-legend-row">{swatch}<span>{text}</span></div>'


def _legend_layers(drawn: Sequence[tuple[LayerDef, pd.DataFrame]], lang: str) -> str:
    heading = _text(bilingual("图例", "Legend", lang))
    parts = [f'<div class="gridmap-legend-heading">{heading}</div>']
    for ldef, _gdf in drawn:
        if not ldef.palette:  # layers coloured by code get their own section
            point = ldef.geometry_type == "Point"
            parts.append(_row(_swatch(ldef.style, point=point), _text(ldef.title(lang))))
    return "".join(parts)


def _legend_ramp(ldef: LayerDef, values: pd.Series, lang: str) -> str:
    fdef = ldef.field(str(ldef.color_by))
    caption = _text(f"{ldef.title(lang)}: {fdef.title(lang)}")
    parts = [f'<div class="gridmap-legend-heading">{caption}</div>']
    cmap = _ramp(ldef, values)
    if cmap is not None:
        steps = [cmap.vmin + (cmap.vmax - cmap.vmin) * k / 8 for k in range(9)]
        gradient = ", ".join(str(cmap(v)) for v in steps)
        numeric = pd.to_numeric(values, errors="coerce").dropna()
        low, high = _number(numeric.min()), _number(numeric.max())
        parts.append(
            f'<div class="gridmap-ramp" style="background:linear-gradient(to right, {gradient})">'
            '</div><div class="gridmap-ramp-labels">'
            f"<span>{low}</span><span>{high}</span></div>"
        )
    if cmap is None or values.isna().any():
        nodata = {"fillColor": _NO_DATA_COLOR, "fillOpacity": 1, "color": "#999"}
        parts.append(_row(_swatch(nodata), _text(bilingual("无数据", "No data", lang))))
    return "".join(parts)


def _legend_palette(ldef: LayerDef, values: pd.Series, lang: str) -> str:
    fdef = ldef.field(str(ldef.color_by))
    caption = _text(f"{ldef.title(lang)}: {fdef.title(lang)}")
    parts = [f'<div class="gridmap-legend-heading">{caption}</div>']
    present = {str(v) for v in values.dropna().tolist()}
    codes = [c for c in ldef.palette if c in present] + sorted(present - set(ldef.palette))
    default = str(ldef.style.get("fillColor", _NO_DATA_COLOR))
    for code in codes:
        swatch = _swatch({"fillColor": ldef.palette.get(code, default)}, point=True)
        parts.append(_row(swatch, _text(label(code, lang, vocabulary=fdef.vocabulary))))
    return "".join(parts)


def _legend_html(drawn: Sequence[tuple[LayerDef, pd.DataFrame]], lang: str) -> str:
    """The legend: a symbol per layer, the household ramp, the event statuses."""
    parts = [_legend_layers(drawn, lang)]
    for ldef, gdf in drawn:
        if ldef.color_by is None or ldef.color_by not in gdf.columns:
            continue
        if ldef.ramp:
            parts.append(_legend_ramp(ldef, gdf[ldef.color_by], lang))
        elif ldef.palette:
            parts.append(_legend_palette(ldef, gdf[ldef.color_by], lang))
    return "".join(parts)


def _number(value: Any) -> str:
    as_float = float(value)
    return str(int(as_float)) if as_float.is_integer() else f"{as_float:.1f}"


def _bounds(extents: Sequence[Sequence[float]]) -> list[list[float]] | None:
    boxes = np.array(list(extents), dtype=float)
    if boxes.size == 0 or np.isnan(boxes).all():
        return None
    minx, miny = np.nanmin(boxes[:, 0]), np.nanmin(boxes[:, 1])
    maxx, maxy = np.nanmax(boxes[:, 2]), np.nanmax(boxes[:, 3])
    return [[float(miny), float(minx)], [float(maxy), float(maxx)]]


# --------------------------------------------------------------------------- map


@dataclass(frozen=True)
class MapOptions:
    """How :func:`render_map` builds the page around the layers.

    Attributes
    ----------
    title : str, optional
        Map title (page title and a box at the top right).
    base_url : str, default "/static/vendor/"
        Where the browser assets are served (see :mod:`layers.assets`).
    tiles_url : str, optional
        XYZ tile URL template of a basemap, e.g. ``"https://tiles.intra/{z}/{x}/{y}.png"``.
    attr : str, optional
        Attribution of the tiles (required with *tiles_url*).
    basemap_crs : {"wgs84", "gcj02"}, default "wgs84"
        Coordinate system of the basemap. With ``"gcj02"`` (e.g. Gaode tiles) every
        overlay drawn from GeoJSON is shifted to GCJ-02 so that it lines up.
        (CGCS2000 basemaps such as 天地图 are ``"wgs84"`` at map scale.)
    tiles_base : str, optional
        URL prefix of the vector tile service (``""`` for the same origin). Without
        it, GeoDataFrames are always inlined (self-contained files).
    vector_threshold : int, default 5000
        Layers with more features than this are drawn from tiles (with *tiles_base*).
    language_links : Mapping of str to str, optional
        Links of a language switch, by language (``"zh"``, ``"en"``, ``"zh-en"``).
    """

    title: str | None = None
    base_url: str = DEFAULT_BASE_URL
    tiles_url: str | None = None
    attr: str | None = None
    basemap_crs: str = "wgs84"
    tiles_base: str | None = None
    vector_threshold: int = VECTOR_THRESHOLD
    language_links: Mapping[str, str] | None = None


def render_map(
    data: Mapping[str, gpd.GeoDataFrame | TiledLayer],
    *,
    lang: str = "zh-en",
    m: folium.Map | None = None,
    role: str = "viewer",
    unmask: bool = False,
    options: MapOptions = MapOptions(),
) -> folium.Map:
    """Draw gridmap layers on an interactive map that needs no internet access.

    Layers are drawn in catalog order, bottom to top: roads and buildings (the light
    basemap), administrative units, grids (a choropleth of households with a
    legend), key areas, events (clustered circle markers coloured by status, with a
    legend of the statuses and period/category filters) and patrol routes. The map
    gets a layer control, a full-screen button, a measuring tool, a scale bar, a
    legend, a search box (grid code, address, name) and fits the data. There is no
    tile basemap unless ``options.tiles_url`` names one (e.g. an intranet tile
    server). All scripts and stylesheets load from ``options.base_url``.

    Big layers are drawn from vector tiles instead of inlined GeoJSON (see
    :mod:`layers.vector`): a :class:`~layers.vector.TiledLayer` in *data* always,
    and a GeoDataFrame of more than ``options.vector_threshold`` features when
    ``options.tiles_base`` says where the tile service is. Event layers stay
    clustered markers.

    Parameters
    ----------
    data : Mapping of str to geopandas.GeoDataFrame or TiledLayer
        Features by layer name (``"grids"``, ``"events"``, …); any CRS, WGS84 if
        none is set. Only the catalog's fields are shown.
    lang : str, default "zh-en"
        Language of titles, labels and legend: ``"zh-CN"``, ``"en"`` or ``"zh-en"``
        (both, "中文 English").
    m : folium.Map, optional
        Draw on this map instead of a new one (its tiles and scale bar are kept as
        they are).
    role : str, default "viewer"
        Role of the person who will see the map. Personal fields (e.g.
        ``events.reporter``) are shown only to staff roles, masked as the API
        masks them (``张*``, ``138****1234``); a layer the role may not see (e.g.
        ``events`` for ``"viewer"``) is refused.
    unmask : bool, default False
        Show personal fields unmasked (only for a reader allowed to unmask).
    options : MapOptions
        Title, asset URL, basemap, vector tiles and language switch of the page.

    Returns
    -------
    folium.Map
        The map (*m* if given).

    Raises
    ------
    gridmap.common.errors.UnknownLayer
        If *data* names a layer the catalog does not know.
    gridmap.common.errors.NotFound
        If *role* may not see one of the layers.
    gridmap.common.errors.BadInput
        If *lang*, *role* or ``options.basemap_crs`` is unknown, a layer has no
        geometry, ``options.tiles_url`` comes without ``options.attr``, or a GCJ-02
        basemap meets a tiled layer.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import Point, box
    >>> grids = gpd.GeoDataFrame({"code": ["370285001001001"], "households": [310]},
    ...                          geometry=[box(24.93, 60.16, 24.95, 60.18)], crs=4326)
    >>> events = gpd.GeoDataFrame({"status": ["reported"], "category": ["dispute"]},
    ...                           geometry=[Point(24.94, 60.17)], crs=4326)
    >>> m = render_map({"grids": grids, "events": events}, role="community_staff",
    ...                options=MapOptions(title="演示 Demo"))
    >>> page = map_html(m, inline=False)
    >>> "上报 Reported" in page and "https://cdn" not in page
    True
    """
    lang = normalize_lang(lang)
    check_role(role)
    if options.basemap_crs not in BASEMAP_CRS:
        raise BadInput(
            f"unknown basemap_crs {options.basemap_crs!r}; use one of {', '.join(BASEMAP_CRS)}",
            field="basemap_crs",
        )
    unknown = [n for n in data if n not in CATALOG]
    if unknown:
        get_layer(unknown[0])
    m = _base_map(m, lang=lang, tiles_url=options.tiles_url, attr=options.attr)
    drawing = _Drawing(m, lang=lang, role=role, unmask=unmask, options=options)
    for name, ldef in CATALOG.items():
        if name in data:
            drawing.add(name, ldef, data[name])
    _add_controls(m, drawing.drawn, lang=lang, title=options.title)
    inline = drawing.inline
    if inline:
        _SearchControl([inline[n] for n in _SEARCHED if n in inline], lang=lang).add_to(m)
    if drawing.events is not None:
        _EventFilter(*drawing.events, lang=lang).add_to(m)
    if options.language_links:
        _add_language_links(m, options.language_links, lang)
    bounds = _bounds(drawing.extents)
    if bounds is not None:
        m.fit_bounds(bounds, max_zoom=18, padding=(12, 12))
    return localize(m, options.base_url)


@dataclass
class _Drawing:
    """The layers :func:`render_map` has drawn on *m* so far, and what the controls need."""

    m: folium.Map
    lang: str
    role: str
    unmask: bool
    options: MapOptions
    drawn: list[tuple[LayerDef, pd.DataFrame]] = field(default_factory=list)
    extents: list[Sequence[float]] = field(default_factory=list)
    inline: dict[str, folium.GeoJson] = field(default_factory=dict)
    events: tuple[folium.plugins.MarkerCluster, folium.GeoJson, gpd.GeoDataFrame] | None = None

    def add(self, name: str, ldef: LayerDef, value: gpd.GeoDataFrame | TiledLayer) -> None:
        """Draw one layer: from vector tiles when tiled (or big), else inline GeoJSON."""
        opts = self.options
        if not isinstance(value, TiledLayer):
            gdf = _prepare(name, value)
            big = len(gdf) > opts.vector_threshold and ldef.geometry_type != "Point"
            if opts.tiles_base is not None and big:
                value = tiled_layer(ldef, gdf, url=tiles_url_for(name, opts.tiles_base))
            else:
                self._inline(name, ldef, gdf)
                return
        self._tiled(name, ldef, value)

    def _tiled(self, name: str, ldef: LayerDef, value: TiledLayer) -> None:
        basemap_crs = self.options.basemap_crs
        if basemap_crs != "wgs84":
            raise BadInput(
                f"layer {name!r} is drawn from vector tiles, which are in WGS84; "
                f"a {basemap_crs} basemap needs it inlined",
                field="basemap_crs",
            )
        layer = _tiled(
            name, ldef, value, lang=self.lang, role=self.role, base=self.options.tiles_base
        )
        layer.add_to(self.m)
        self.drawn.append((ldef, _legend_frame(ldef, value)))
        if value.bounds is not None:
            self.extents.append(value.bounds)

    def _inline(self, name: str, ldef: LayerDef, gdf: gpd.GeoDataFrame) -> None:
        if self.options.basemap_crs == "gcj02":
            gdf = _to_gcj02(gdf)
        drawn_layer = render_layer(name, gdf, lang=self.lang, role=self.role, unmask=self.unmask)
        drawn_layer.add_to(self.m)
        geojson = _geojson_of(drawn_layer)
        switched = _grid_extras(self.m, ldef, geojson, gdf, lang=self.lang, role=self.role)
        # A layer with a colour selector carries its own ramp legend.
        self.drawn.append((ldef, pd.DataFrame(index=gdf.index) if switched else gdf))
        if not gdf.empty:
            self.extents.append(gdf.total_bounds)
        if geojson is not None and name in _SEARCHED:
            self.inline[name] = geojson
        if name == "events" and geojson is not None:
            assert isinstance(drawn_layer, folium.plugins.MarkerCluster)
            self.events = (drawn_layer, geojson, gdf)


def _grid_extras(
    m: folium.Map,
    ldef: LayerDef,
    geojson: folium.GeoJson | None,
    gdf: gpd.GeoDataFrame,
    *,
    lang: str,
    role: str,
) -> bool:
    """Labels and the colour selector of a layer that has them (the grids); True if switched."""
    if geojson is None or gdf.empty:
        return False
    if ldef.label_by is not None and ldef.label_by in gdf.columns:
        _FeatureLabels(geojson, gdf, ldef.label_by).add_to(m)
    visible = {f.name for f in ldef.fields_for(role)}
    options = [c for c in ldef.color_options if c in gdf.columns and c in visible]
    if len(options) < 2 or not ldef.ramp:
        return False
    _ColorSwitch(geojson, ldef, gdf, options, lang=lang).add_to(m)
    return True


def _to_gcj02(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The features with WGS84 coordinates shifted to GCJ-02 (for a Gaode basemap)."""

    def shift(xy: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        lon, lat = from_wgs84(xy[:, 0], xy[:, 1], "gcj02")
        return np.column_stack([lon, lat])

    out = gdf.copy()
    out[out.geometry.name] = shapely.transform(np.asarray(gdf.geometry.values), shift)
    return out


def _geojson_of(layer: folium.map.Layer) -> folium.GeoJson | None:
    if isinstance(layer, folium.GeoJson):
        return layer
    for child in layer._children.values():
        if isinstance(child, folium.GeoJson):
            return child
    return None


def _tiled(
    name: str, ldef: LayerDef, tiled: TiledLayer, *, lang: str, role: str, base: str | None
) -> VectorTileLayer:
    visible = {f.name: f for f in ldef.fields_for(role)}
    fields = [(n, visible[n].title(lang)) for n in ldef.popup_fields if n in visible]
    # Labels as on the GeoJSON path, from the label field the tiles carry for *role*.
    label_by = ldef.label_by if ldef.label_by in visible else None
    layer = VectorTileLayer(
        ldef,
        tiled.url or tiles_url_for(name, base or ""),
        name=html.escape(ldef.title(lang)),
        popup=Popup(ldef.title(lang), fields),
        lang=lang,
        value_range=tiled.value_range,
        label_by=label_by,
    )
    if label_by is not None:
        layer.add_child(_Stylesheet())  # the labels' style
    return layer


def _legend_frame(ldef: LayerDef, tiled: TiledLayer) -> pd.DataFrame:
    """Stand-in values of a tiled layer's ``color_by`` field for its legend."""
    if ldef.color_by is None:
        return pd.DataFrame()
    if ldef.ramp:
        values: list[Any] = list(tiled.value_range) if tiled.value_range else [None]
    else:
        values = list(ldef.palette)
    return pd.DataFrame({ldef.color_by: values})


def _base_map(
    m: folium.Map | None, *, lang: str, tiles_url: str | None, attr: str | None
) -> folium.Map:
    """A new map without tiles (or *m*), with the intranet basemap if one is named."""
    if tiles_url is not None and not attr:
        raise BadInput("tiles_url needs an attribution (attr)", field="attr")
    if m is None:
        m = folium.Map(tiles=None, control_scale=True, zoom_start=13)
    if not {"maxZoom", "max_zoom"} & set(m.options):
        # Marker clustering needs the map's zoom range; without tiles nothing sets it.
        m.options["maxZoom"] = _MAX_ZOOM
    if tiles_url is not None:
        folium.TileLayer(
            tiles=tiles_url,
            attr=attr,
            name=_text(bilingual("底图", "Basemap", lang)),
            max_zoom=_MAX_ZOOM,
            overlay=False,
            control=True,
        ).add_to(m)
    return m


def _add_controls(
    m: folium.Map,
    drawn: Sequence[tuple[LayerDef, pd.DataFrame]],
    *,
    lang: str,
    title: str | None,
) -> None:
    """Title, layer control, full screen, measuring tool and legend."""
    if title:
        root = m.get_root()
        if isinstance(root, Figure):
            root.title = _text(title)
        _HtmlControl(
            f'<div class="gridmap-title">{_text(title)}</div>',
            position="topright",
            css_class="gridmap-title-box",
        ).add_to(m)
    folium.LayerControl(position="topright", collapsed=False).add_to(m)
    folium.plugins.Fullscreen(
        position="topleft",
        title=bilingual("全屏", "Full screen", lang),
        title_cancel=bilingual("退出全屏", "Exit full screen", lang),
        force_separate_button=True,
    ).add_to(m)
    folium.plugins.MeasureControl(
        position="topleft",
        primary_length_unit="meters",
        secondary_length_unit="kilometers",
        primary_area_unit="sqmeters",
        secondary_area_unit="hectares",
        localization="en" if lang == "en" else "cn",
    ).add_to(m)
    if drawn:
        legend = _legend_html(drawn, lang)
        _HtmlControl(legend, position="bottomright", css_class="gridmap-legend").add_to(m)


def map_html(
    m: folium.Map,
    *,
    inline: bool,
    base_url: str | None = None,
    directory: str | None = None,
) -> str:
    """Return the HTML page of a map, with every asset local.

    Parameters
    ----------
    m : folium.Map
        The map (e.g. from :func:`render_map`). It is localized again before
        rendering, so elements added afterwards are covered too.
    inline : bool
        ``True`` for a self-contained page (scripts, stylesheets, images and fonts
        inlined; for ``gridmap map render --out FILE.html`` and the demo map),
        ``False`` for a page that loads them from *base_url*.
    base_url : str, optional
        Base URL of the assets; by default the one the map was localized with, else
        ``"/static/vendor/"``.
    directory : str, optional
        Asset directory for inlining (see :func:`layers.assets.assets_dir`).

    Returns
    -------
    str
        The page.

    Raises
    ------
    layers.assets.UnknownAsset
        If the map uses a script or stylesheet gridmap has no local copy of.
    layers.assets.AssetsNotInstalled
        If *inline* and the npm packages are not installed (run ``npm ci``).

    Examples
    --------
    >>> import folium
    >>> page = map_html(folium.Map(tiles=None), inline=False)
    >>> '<script src="/static/vendor/leaflet/dist/leaflet.js"></script>' in page
    True
    """
    base = base_url if base_url is not None else localized_base_url(m) or DEFAULT_BASE_URL
    localize(m, base)
    page: str = m.get_root().render()
    return inline_html(page, base_url=base, directory=directory) if inline else page
