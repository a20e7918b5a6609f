"""Big layers on map pages: drawn from vector tiles instead of inlined GeoJSON.

A layer with more than :data:`VECTOR_THRESHOLD` features (e.g. 100,000 buildings)
would make a map page of tens of megabytes if its GeoJSON were written into the
page. Instead, :class:`VectorTileLayer` draws it with Leaflet.VectorGrid (npm
``leaflet.vectorgrid``, served locally like every other asset) from the API's
Mapbox Vector Tiles at ``/collections/{layer}/tiles/WebMercatorQuad/{z}/{y}/{x}``.
The page then holds only the layer's style (from the catalog), the fields of its
popups and the tile URL.

A layer with labels (the grids: ``label_by = "code"``) gets them from the tiles
too: each loaded tile gives every labelled feature a point inside its clipped
polygon, and of the tiles holding a feature the one with the largest piece of
it places its label (:data:`LABELS_JS` draws them as the GeoJSON path does:
the grid number below zoom :data:`LABEL_FULL_ZOOM`, the full code from it).

Tiles carry raw property values, so the popups escape every value in the browser
before it reaches the DOM; field titles and coded-value labels are escaped here.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import folium
import geopandas as gpd
import pandas as pd
from folium.elements import JSCSSMixin
from folium.template import Template

from layers.assets import ASSETS, DEFAULT_BASE_URL
from layers.catalog import VOCABULARIES, LayerDef, label

__all__ = [
    "ESC_JS",
    "LABELS_JS",
    "LABEL_FULL_ZOOM",
    "TILE_MATRIX_SET",
    "VECTOR_THRESHOLD",
    "Popup",
    "TiledLayer",
    "VectorTileLayer",
    "tiled_layer",
    "tiles_url",
]

#: Layers with more features than this are drawn from vector tiles (when a tile
#: service is available, see :func:`layers.render.render_map`).
VECTOR_THRESHOLD = 5_000
#: The only tile matrix set the API offers.
TILE_MATRIX_SET = "WebMercatorQuad"
#: Highest zoom the tile service renders (``gridmap.geo.tiles.MAX_ZOOM`` is 24;
#: beyond this Leaflet over-zooms the last tiles).
_MAX_NATIVE_ZOOM = 22


#: Zoom from which labels show the full code (the short grid number below it).
LABEL_FULL_ZOOM = 16

#: ``esc(v)``: *v* as text that is safe in HTML (every page script that writes
#: property values into the DOM goes through it).
ESC_JS = """
function esc(v) {
    return String(v).replace(/[&<>"']/g, function (c) {
        return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c];
    });
}
"""

#: Permanent feature labels, shared by the GeoJSON and the vector tile paths
#: (after :data:`ESC_JS`). ``gridmapLabels(map, layer, full)`` returns
#: ``show(spots)``, which makes the labels *spots* (``[lat, lng, full text, short
#: text]``): the full text from zoom *full*, the short one below, and only while
#: *layer* is on the map. Labels that stay where they are keep their marker, so
#: tiles coming and going do not redraw every label.
LABELS_JS = """
    function gridmapLabels(map, layer, full) {
        var labels = L.layerGroup(), shown = {};
        function sync() {
            var box = map.getContainer(), wide = map.getZoom() >= full;
            box.classList.toggle("gridmap-labels-full", wide);
            box.classList.toggle("gridmap-labels-short", !wide);
            var want = map.hasLayer(layer);
            if (want && !map.hasLayer(labels)) { labels.addTo(map); }
            if (!want && map.hasLayer(labels)) { map.removeLayer(labels); }
        }
        map.on("zoomend", sync);
        layer.on("add remove", sync);
        sync();
        return function show(spots) {
            var next = {};
            spots.forEach(function (s) {
                var key = s[0] + " " + s[1] + " " + s[2];
                var marker = shown[key] || next[key];
                if (!marker) {
                    marker = L.marker([s[0], s[1]], {interactive: false, keyboard: false,
                        icon: L.divIcon({className: "gridmap-label", iconSize: null,
                            html: '<span class="gridmap-label-full">' + esc(s[2]) + "</span>"
                                + '<span class="gridmap-label-short">' + esc(s[3])
                                + "</span>"})});
                    labels.addLayer(marker);
                }
                next[key] = marker;
            });
            for (var key in shown) {
                if (!next[key]) { labels.removeLayer(shown[key]); }
            }
            shown = next;
        };
    }
"""

#: Labels of a vector tile layer: ``tileLabels(map, layer, cfg)`` (after
#: :data:`LABELS_JS`) reads the features of every tile *layer* loads.
_TILE_LABELS_JS = """
    function tileLabels(map, layer, cfg) {
        var show = gridmapLabels(map, layer, cfg.fullZoom), byTile = {}, pending = false;
        function ringArea(r) {
            var a = 0;
            for (var i = 0, j = r.length - 1; i < r.length; j = i++) {
                a += (r[j].x - r[i].x) * (r[j].y + r[i].y);
            }
            return a / 2;
        }
        // A point inside the biggest polygon of a feature (tile units) and its
        // area: the middle of the widest inside stretch of the horizontal line
        // halfway up its outer ring (even-odd, so holes are left out).
        function interior(rings) {
            var polys = [], sign = 0;
            rings.forEach(function (r) {
                var a = ringArea(r);
                if (a === 0) { return; }
                var s = a > 0 ? 1 : -1;
                if (!sign) { sign = s; }
                if (s === sign || !polys.length) { polys.push({area: 0, rings: []}); }
                var p = polys[polys.length - 1];
                p.rings.push(r);
                p.area += s === sign ? Math.abs(a) : -Math.abs(a);
            });
            if (!polys.length) { return null; }
            var best = polys.reduce(function (a, b) { return b.area > a.area ? b : a; });
            var ys = best.rings[0].map(function (pt) { return pt.y; });
            var y = (Math.min.apply(null, ys) + Math.max.apply(null, ys)) / 2, xs = [];
            best.rings.forEach(function (r) {
                for (var i = 0, j = r.length - 1; i < r.length; j = i++) {
                    var a = r[j], b = r[i];
                    if ((a.y > y) !== (b.y > y)) {
                        xs.push(a.x + (y - a.y) * (b.x - a.x) / (b.y - a.y));
                    }
                }
            });
            xs.sort(function (a, b) { return a - b; });
            var x = null, width = -1;
            for (var k = 0; k + 1 < xs.length; k += 2) {
                if (xs[k + 1] - xs[k] > width) {
                    width = xs[k + 1] - xs[k];
                    x = (xs[k] + xs[k + 1]) / 2;
                }
            }
            return x === null ? null : [x, y, best.area];
        }
        function spotsOf(data, coords, size) {
            var k = size.x / data.extent, world = data.extent * data.extent * Math.pow(4, coords.z);
            var out = [];
            data.features.forEach(function (f) {
                var v = f.properties[cfg.labelBy];
                if (f.type !== 3 || v === undefined || v === null || v === "") { return; }
                var p = interior(f.geometry);
                if (!p) { return; }
                var at = map.unproject(
                    L.point(coords.x * size.x + p[0] * k, coords.y * size.y + p[1] * k), coords.z);
                var text = String(v);
                // the piece's share of the world: comparable between zoom levels
                out.push([at.lat, at.lng, text, text.slice(-3), p[2] / world]);
            });
            return out;
        }
        function refresh() {
            pending = false;
            var best = {};
            for (var key in byTile) {
                byTile[key].forEach(function (s) {
                    if (!best[s[2]] || s[4] > best[s[2]][4]) { best[s[2]] = s; }
                });
            }
            show(Object.keys(best).sort().map(function (code) { return best[code]; }));
        }
        function later() {
            if (!pending) { pending = true; setTimeout(refresh, 30); }
        }
        var fetchTile = layer._getVectorTilePromise;
        layer._getVectorTilePromise = function (coords) {
            var grid = this;
            return fetchTile.apply(this, arguments).then(function (tile) {
                var key = grid._tileCoordsToKey(coords), data = tile.layers[cfg.layer];
                // a tile unloaded while it was on its way adds nothing
                if (data && grid._map && grid._tiles[key]) {
                    byTile[key] = spotsOf(data, coords, grid.getTileSize());
                    later();
                }
                return tile;
            });
        };
        layer.on("tileunload", function (e) {
            delete byTile[this._tileCoordsToKey(e.coords)];
            later();
        });
    }
"""


@dataclass(frozen=True)
class TiledLayer:
    """What a map page needs to know about a layer it draws from vector tiles.

    Parameters
    ----------
    count : int
        Number of features (shown in the legend; decides tiles vs GeoJSON).
    bounds : tuple of float, optional
        ``(minx, miny, maxx, maxy)`` in WGS84, to fit the map.
    value_range : tuple of float, optional
        Smallest and largest value of the layer's numeric ``color_by`` field (for
        a colour ramp); ``None`` draws every feature in the base style.
    url : str, optional
        Tile URL template with ``{z}``, ``{y}``, ``{x}``; by default
        :func:`tiles_url` under the map's ``tiles_base``.

    Examples
    --------
    >>> TiledLayer(100_000, (24.9, 60.1, 25.0, 60.2)).count
    100000
    """

    count: int
    bounds: tuple[float, float, float, float] | None = None
    value_range: tuple[float, float] | None = None
    url: str | None = None


def tiles_url(layer: str, base: str = "") -> str:
    """Return the vector tile URL template of *layer* on the API under *base*.

    Parameters
    ----------
    layer : str
        Layer (collection) name.
    base : str, default ""
        URL prefix of the API (``""`` for the same origin, or a root path).

    Returns
    -------
    str
        Template with ``{z}``, ``{y}``, ``{x}`` placeholders (Leaflet's syntax).

    Examples
    --------
    >>> tiles_url("buildings")
    '/collections/buildings/tiles/WebMercatorQuad/{z}/{y}/{x}'
    """
    return f"{base.rstrip('/')}/collections/{layer}/tiles/{TILE_MATRIX_SET}/{{z}}/{{y}}/{{x}}"


def tiled_layer(layer: LayerDef, gdf: gpd.GeoDataFrame, *, url: str | None = None) -> TiledLayer:
    """Summarize a layer held in memory as a :class:`TiledLayer` (count, bounds, range).

    Parameters
    ----------
    layer : LayerDef
        Its catalog entry.
    gdf : geopandas.GeoDataFrame
        The features, in WGS84.
    url : str, optional
        Tile URL template (see :class:`TiledLayer`).

    Returns
    -------
    TiledLayer
        The summary.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import box
    >>> from layers.catalog import CATALOG
    >>> gdf = gpd.GeoDataFrame({"households": [3, 9]},
    ...                        geometry=[box(0, 0, 1, 1), box(1, 1, 2, 2)], crs=4326)
    >>> tiled_layer(CATALOG["grids"], gdf)
    TiledLayer(count=2, bounds=(0.0, 0.0, 2.0, 2.0), value_range=(3.0, 9.0), url=None)
    """
    bounds: tuple[float, float, float, float] | None = None
    if len(gdf):
        minx, miny, maxx, maxy = (float(v) for v in gdf.total_bounds)
        bounds = (minx, miny, maxx, maxy)
    value_range: tuple[float, float] | None = None
    if layer.ramp and layer.color_by is not None and layer.color_by in gdf.columns:
        numeric = pd.to_numeric(gdf[layer.color_by], errors="coerce").dropna()
        if not numeric.empty:
            value_range = (float(numeric.min()), float(numeric.max()))
    return TiledLayer(len(gdf), bounds, value_range, url)


def _js(value: Any) -> str:
    """A JSON literal that is safe inside an HTML ``<script>`` element."""
    text = json.dumps(value, ensure_ascii=False)
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(raw, escaped)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


class Popup(NamedTuple):
    """A tile layer's click popup: its heading and rows (plain text; escaped when drawn)."""

    heading: str
    #: Property name and its title, a row each.
    fields: Sequence[tuple[str, str]]


class VectorTileLayer(JSCSSMixin, folium.map.Layer):
    """A catalog layer drawn by Leaflet.VectorGrid from Mapbox Vector Tiles.

    Features are styled as the catalog says (base style; colour by a code through
    the palette or by a number along the ramp), drawn on canvas, and open a popup
    of the fields of *popup* on click, every value escaped in the browser.

    Parameters
    ----------
    layer : LayerDef
        The catalog entry; its name is the tile layer name inside the tiles.
    url : str
        Tile URL template (see :func:`tiles_url`).
    name : str
        Title in the layer control (escaped HTML).
    popup : Popup
        Popup heading and rows: property name and its title (plain text;
        escaped here).
    lang : str
        Language of coded-value labels.
    value_range : tuple of float, optional
        Range of the numeric ``color_by`` field for the colour ramp.
    show : bool, default True
        Whether the layer is on when the page opens.
    label_by : str, optional
        Property whose value labels each polygon (e.g. ``"code"``; it must be in
        the tiles): the full value from zoom :data:`LABEL_FULL_ZOOM`, its last
        three characters below.

    Examples
    --------
    >>> from layers.catalog import CATALOG
    >>> layer = VectorTileLayer(CATALOG["buildings"], tiles_url("buildings"), name="Buildings",
    ...                         popup=Popup("Building", [("use", "Use")]), lang="en")
    >>> layer.options["minZoom"]
    14
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        if (L.DomEvent.fakeStop === undefined) {
            // Leaflet 1.8 removed fakeStop, which VectorGrid 1.3 calls on click.
            L.DomEvent.fakeStop = L.DomEvent.stopPropagation;
        }
        var {{ this.get_name() }} = (function () {
            var cfg = {{ this.config }};
            """
        + ESC_JS
        + LABELS_JS
        + _TILE_LABELS_JS
        + """
            function hex(c) {
                c = c.replace("#", "");
                return [0, 2, 4].map(function (i) { return parseInt(c.substr(i, 2), 16); });
            }
            function ramp(v) {
                var lo = cfg.range[0], hi = cfg.range[1], stops = cfg.ramp;
                var t = hi > lo ? Math.min(1, Math.max(0, (v - lo) / (hi - lo))) : 0;
                var pos = t * (stops.length - 1), i = Math.min(stops.length - 2, Math.floor(pos));
                var a = hex(stops[i]), b = hex(stops[i + 1]), f = pos - i;
                return "#" + a.map(function (x, k) {
                    var y = Math.round(x + (b[k] - x) * f).toString(16);
                    return y.length < 2 ? "0" + y : y;
                }).join("");
            }
            function style(p) {
                var s = L.extend({}, cfg.style), v = p ? p[cfg.colorBy] : undefined;
                if (cfg.colorBy && v !== undefined && v !== null) {
                    if (cfg.palette && cfg.palette[v]) { s.fillColor = cfg.palette[v]; }
                    else if (cfg.ramp && cfg.range && !isNaN(Number(v))) {
                        s.fillColor = ramp(Number(v));
                    }
                } else if (cfg.colorBy && cfg.range) {
                    s.fillColor = cfg.noData;
                }
                return s;
            }
            var styles = {};
            styles[cfg.layer] = function (properties) { return style(properties); };
            var layer = L.vectorGrid.protobuf(cfg.url, L.extend({
                vectorTileLayerStyles: styles,
                rendererFactory: L.canvas.tile,
                interactive: true
            }, {{ this.options|tojavascript }}));
            if (cfg.labelBy) { tileLabels({{ this._parent.get_name() }}, layer, cfg); }
            layer.on("click", function (e) {
                var p = (e.layer && e.layer.properties) || {}, rows = "";
                for (var i = 0; i < cfg.fields.length; i++) {
                    var key = cfg.fields[i][0], v = p[key];
                    if (v === null || v === undefined || v === "") { continue; }
                    var vocab = cfg.vocab[key], text = vocab && vocab[v] !== undefined
                        ? vocab[v] : esc(v);
                    rows += "<tr><th>" + cfg.fields[i][1] + "</th><td>" + text + "</td></tr>";
                }
                L.popup({maxWidth: 360, minWidth: 240, maxHeight: 420})
                    .setLatLng(e.latlng)
                    .setContent('<div class="gridmap-popup"><div class="gridmap-popup-title">'
                        + cfg.heading + '</div><table class="gridmap-props">' + rows
                        + "</table></div>")
                    .openOn({{ this._parent.get_name() }});
            });
            return layer;
        })();
        {% endmacro %}
        """
    )

    def __init__(
        self,
        layer: LayerDef,
        url: str,
        *,
        name: str,
        popup: Popup,
        lang: str,
        value_range: tuple[float, float] | None = None,
        show: bool = True,
        label_by: str | None = None,
    ) -> None:
        super().__init__(name=name, overlay=True, control=True, show=show)
        heading, fields = popup
        self._name = "VectorTileLayer"
        self.default_js = [
            (
                "leaflet_vectorgrid",
                DEFAULT_BASE_URL + str(ASSETS["leaflet_vectorgrid"].path),
            )
        ]
        style = dict(layer.style)
        style.setdefault("fill", "fillColor" in style)
        vocab: dict[str, dict[str, str]] = {}
        for field, _title in fields:
            fdef = next((f for f in layer.fields if f.name == field), None)
            if fdef is not None and fdef.vocabulary is not None:
                vocab[field] = {
                    code: html.escape(label(code, lang, vocabulary=fdef.vocabulary))
                    for code in VOCABULARIES[fdef.vocabulary]
                }
        config: dict[str, Any] = {
            "layer": layer.name,
            "url": url,
            "style": style,
            "colorBy": layer.color_by,
            "palette": dict(layer.palette) or None,
            "ramp": list(layer.ramp) or None,
            "range": list(value_range) if value_range is not None and layer.ramp else None,
            "noData": "#e0e0e0",
            "fields": [[f, html.escape(t)] for f, t in fields],
            "heading": html.escape(heading),
            "vocab": vocab,
            "labelBy": label_by,
            "fullZoom": LABEL_FULL_ZOOM,
        }
        self.config = _js(config)
        self.options: Mapping[str, Any] = {
            "minZoom": max(0, layer.min_zoom),
            "maxNativeZoom": min(_MAX_NATIVE_ZOOM, layer.max_zoom),
            "maxZoom": 24,
        }
