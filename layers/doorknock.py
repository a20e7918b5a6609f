"""Door-knocking progress (敲门行动进度) on the map: grids coloured by share of households reached.

The layer takes grids joined with their progress
(:func:`gridmap.assessment.doorknock.progress_grids`: aggregates only, no
household, no visit place, small counts already hidden for roles without
detail rights) and returns folium objects; it never queries a store. Every
text from data is HTML-escaped; the legend and tooltips are in zh-CN and/or
English.
"""

from __future__ import annotations

import html
import itertools
from typing import Any

import folium
import geopandas as gpd
import numpy as np
from branca.colormap import LinearColormap
from branca.element import MacroElement
from folium.template import Template

from gridmap.common.errors import BadInput
from layers.assets import DEFAULT_BASE_URL, localize
from layers.catalog import bilingual, normalize_lang
from layers.tips import tip_geojson

__all__ = ["PROGRESS_VALUES", "progress_layer", "progress_legend", "progress_map"]

#: Values the choropleth can show: column → (zh-CN title, English title).
PROGRESS_VALUES: dict[str, tuple[str, str]] = {
    "progress": ("敲门行动进度(已走访户数占比)", "Door-knocking progress (households visited)"),
    "verified_share": ("核实进度(已核实户数占比)", "Verification progress (households verified)"),
}
_RAMP = ["#f7fcf5", "#c7e9c0", "#74c476", "#31a354", "#006d2c"]
_NO_DATA = "#d9d9d9"
_STEPS = (0.0, 0.25, 0.5, 0.75, 1.0)
_ROWS = (
    ("households", "户数", "Households"),
    ("visited", "已走访", "Visited"),
    ("verified", "已核实", "Verified"),
    ("mobilised", "已动员", "Mobilised"),
)


def _t(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _share(value: Any) -> float | None:
    if value is None or isinstance(value, str):
        return None
    v = float(value)
    return None if not np.isfinite(v) else v


def _count(value: Any) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "—"
    return str(value) if isinstance(value, str) else f"{int(value):,}"


def progress_layer(
    grids: gpd.GeoDataFrame,
    *,
    value: str = "progress",
    lang: str = "zh-en",
    show: bool = True,
) -> folium.FeatureGroup:
    """Grids coloured by *value* (0–100 %), with bilingual tooltips.

    Parameters
    ----------
    grids : geopandas.GeoDataFrame
        One row per grid: ``code`` (``name`` optional), ``households``,
        ``visited``, ``verified``, ``mobilised``, ``progress``,
        ``verified_share``. Hidden cells (``"<3"``, ``"*"``, ``None``) are
        drawn grey and shown as such.
    value : {"progress", "verified_share"}
        The share that colours the grids.
    lang : str
        Language of the layer's name and the tooltips (as
        :func:`layers.catalog.normalize_lang` reads it).
    show : bool
        Whether the grids are on when the map opens.

    Returns
    -------
    folium.FeatureGroup
        Named after *value*, holding one GeoJSON layer of the grids.

    Examples
    --------
    >>> import shapely
    >>> g = gpd.GeoDataFrame({"code": ["990100001001001"], "name": ["<b>一</b>"],
    ...     "households": [40], "visited": [30], "verified": [10], "mobilised": [0],
    ...     "progress": [0.75], "verified_share": [0.25]},
    ...     geometry=[shapely.box(24.93, 60.16, 24.94, 60.17)], crs=4326)
    >>> fg = progress_layer(g, lang="en")
    >>> tip = [f["properties"]["tip"] for c in fg._children.values() for f in c.data["features"]][0]
    >>> "Progress: 75.0%" in tip, "&lt;b&gt;一" in tip, "<b>一" in tip
    (True, True, False)
    """
    lang = normalize_lang(lang)
    if value not in PROGRESS_VALUES:
        raise BadInput(f"value must be one of {', '.join(PROGRESS_VALUES)}", field="value")
    gdf = grids if grids.crs is None or grids.crs.to_epsg() == 4326 else grids.to_crs(4326)
    cmap = LinearColormap(_RAMP, vmin=0.0, vmax=1.0)
    title = bilingual(*PROGRESS_VALUES[value], lang=lang)
    group = folium.FeatureGroup(name=_t(title), show=show)
    label = bilingual("进度", "Progress", lang)
    features = []
    for _, row in gdf.iterrows():
        if row.geometry is None or row.geometry.is_empty:
            continue
        share = _share(row.get(value))
        raw = row.get(value)
        shown = f"{100 * share:.1f}%" if share is not None else _count(raw)
        lines = [f"<b>{_t(row.get('code', ''))}</b>"]
        name = row.get("name")
        if isinstance(name, str) and name:
            lines.append(_t(name))
        for col, zh, en in _ROWS:
            if col in gdf:
                lines.append(f"{_t(bilingual(zh, en, lang))}: {_t(_count(row.get(col)))}")
        lines.append(f"{_t(label)}: {_t(shown)}")
        features.append(
            {
                "type": "Feature",
                "geometry": row.geometry.__geo_interface__,
                "properties": {
                    "tip": "<br>".join(lines),
                    "color": _NO_DATA if share is None else cmap(min(max(share, 0.0), 1.0)),
                },
            }
        )
    if features:
        tip_geojson(
            features,
            outline="#37474f",
            weight=1,
            fill_opacity=0.75,
            highlight={"weight": 3, "color": "#000000"},
        ).add_to(group)
    return group


class _Legend(MacroElement):
    _template = Template(
        """
        {% macro html(this, kwargs) %}
        <div id="{{ this.get_name() }}" class="gridmap-doorknock-legend"
            style="position:absolute;bottom:24px;right:10px;z-index:1000;background:#fff;
            padding:6px 8px;border-radius:4px;font:12px/1.4 Arial,sans-serif;
            box-shadow:0 1px 4px rgba(0,0,0,.3)">{{ this.body }}</div>
        {% endmacro %}
        """
    )

    def __init__(self, body: str) -> None:
        super().__init__()
        self._name = "DoorknockLegend"
        self.body = body


def progress_legend(*, value: str = "progress", lang: str = "zh-en") -> MacroElement:
    """A legend box: the 0–100 % ramp and the grey of hidden or missing figures.

    Examples
    --------
    >>> m = folium.Map(tiles=None)
    >>> _ = progress_legend(lang="zh-en").add_to(m)
    >>> "无数据或已隐藏 No data or hidden" in m.get_root().render()
    True
    """
    lang = normalize_lang(lang)
    if value not in PROGRESS_VALUES:
        raise BadInput(f"value must be one of {', '.join(PROGRESS_VALUES)}", field="value")
    cmap = LinearColormap(_RAMP, vmin=0.0, vmax=1.0)
    rows = [f"<b>{_t(bilingual(*PROGRESS_VALUES[value], lang=lang))}</b>"]

    def swatch(color: str, text: str) -> str:
        box = (
            f'<span style="display:inline-block;width:12px;height:12px;margin-right:4px;'
            f'vertical-align:middle;background:{color};border:1px solid #999"></span>'
        )
        return f"<div>{box}{_t(text)}</div>"

    for lo, hi in itertools.pairwise(_STEPS):
        rows.append(swatch(cmap((lo + hi) / 2), f"{100 * lo:.0f}–{100 * hi:.0f}%"))
    rows.append(swatch(_NO_DATA, bilingual("无数据或已隐藏", "No data or hidden", lang)))
    return _Legend("".join(rows))


def progress_map(
    grids: gpd.GeoDataFrame,
    *,
    value: str = "progress",
    lang: str = "zh-en",
    title: str | None = None,
    base_url: str = DEFAULT_BASE_URL,
    m: folium.Map | None = None,
) -> folium.Map:
    """A map of door-knocking progress: both shares as layers (*value* shown), legend, title.

    Every script and stylesheet loads from *base_url* (no internet needed).

    Examples
    --------
    >>> import shapely
    >>> g = gpd.GeoDataFrame({"code": ["990100001001001"], "progress": [None],
    ...                       "verified_share": [None]},
    ...                      geometry=[shapely.box(24.93, 60.16, 24.94, 60.17)], crs=4326)
    >>> page = progress_map(g, title="十一月 November").get_root().render()
    >>> "cdn.jsdelivr" in page, "十一月 November" in page
    (False, True)
    """
    lang = normalize_lang(lang)
    m = m or folium.Map(tiles=None, control_scale=True, zoom_start=14)
    for key in PROGRESS_VALUES:
        progress_layer(grids, value=key, lang=lang, show=key == value).add_to(m)
    progress_legend(value=value, lang=lang).add_to(m)
    if title:
        root = m.get_root()
        root.title = _t(title)  # type: ignore[attr-defined]
        box = (
            '<div class="gridmap-doorknock-title" style="position:absolute;top:10px;'
            "left:60px;z-index:1000;background:#fff;padding:4px 8px;border-radius:4px;"
            f'font:bold 14px Arial,sans-serif">{_t(title)}</div>'
        )
        m.get_root().html.add_child(folium.Element(box))  # type: ignore[attr-defined]
    folium.LayerControl(collapsed=False).add_to(m)
    shapes = grids[grids.geometry.notna() & ~grids.geometry.is_empty] if len(grids) else grids
    if len(shapes):
        b = (shapes if shapes.crs is None else shapes.to_crs(4326)).total_bounds
        m.fit_bounds([[float(b[1]), float(b[0])], [float(b[3]), float(b[2])]])
    return localize(m, base_url)
