"""Interactive map pages (``/maps/…``) and the browser assets they load (``/static/vendor/…``).

Pages are drawn by :func:`layers.render.render_map` from the store's layers
and load Leaflet and its plugins from this service, never from the internet.
"""

from __future__ import annotations

from typing import Annotated

import geopandas as gpd
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, HTMLResponse

from api import ogc
from api.csp import map_csp
from api.deps import RoleDep, SettingsDep, StoreDep
from api.params import query_guard
from gridmap.storage import Store
from layers.assets import asset_file
from layers.catalog import get_layer, normalize_lang
from layers.render import MapOptions, map_html, render_map
from layers.vector import VECTOR_THRESHOLD, TiledLayer

__all__ = ["MAX_MAP_FEATURES", "VECTOR_THRESHOLD", "router"]

router = APIRouter(tags=["Maps"])

#: Features drawn per layer on a map page (the first ones by id) when inlined.
MAX_MAP_FEATURES = 20_000
#: Languages of the switch on the page.
_LANGS = ("zh", "en", "zh-en")

#: Map pages load scripts, styles, images and fonts from this service only (folium writes
#: inline scripts; the leaflet-measure plugin compiles its templates with ``eval``).
Lang = Annotated[
    str, Query(description="Language of titles and labels: `zh`, `en` or `zh-en` (both).")
]


def _layers(
    store: Store, role: str, limit: int, threshold: int
) -> tuple[dict[str, gpd.GeoDataFrame | TiledLayer], list[str]]:
    """Non-empty layers *role* may see, and those cut short.

    A layer of more than *threshold* features (events excepted: they are clustered
    and filtered on the page) is drawn from vector tiles; the others are inlined,
    the first *limit* features each.
    """
    data: dict[str, gpd.GeoDataFrame | TiledLayer] = {}
    cut: list[str] = []
    for ldef in ogc.collections(role):
        if ldef.geometry_type != "Point":
            count = store.count(ldef.name)
            if count > threshold:
                data[ldef.name] = TiledLayer(
                    count, store.bounds(ldef.name), _value_range(store, ldef.name)
                )
                continue
        frame = store.read(ldef.name, limit=limit + 1)
        if isinstance(frame, gpd.GeoDataFrame) and len(frame):
            if len(frame) > limit:
                cut.append(ldef.name)
            data[ldef.name] = frame.iloc[:limit]
    return data, cut


def _value_range(store: Store, layer: str) -> tuple[float, float] | None:
    spec = get_layer(layer)
    if not spec.ramp or spec.color_by is None:
        return None
    lo, hi = store.column_range(layer, spec.color_by)
    if lo is None or hi is None:
        return None
    return float(lo), float(hi)


@router.get(
    "/maps/overview",
    summary="Overview map (HTML)",
    response_class=HTMLResponse,
    dependencies=[Depends(query_guard(["lang"]))],
)
def overview(
    request: Request,
    store: StoreDep,
    role: RoleDep,
    settings: SettingsDep,
    lang: Lang = "zh-en",
) -> HTMLResponse:
    """Every layer the caller may see on one interactive map (works without internet)."""
    lang = normalize_lang(lang)
    # Vector tiles are WGS84: on a GCJ-02 basemap every layer is inlined (and shifted).
    threshold = VECTOR_THRESHOLD if settings.maps.basemap_crs == "wgs84" else MAX_MAP_FEATURES
    data, cut = _layers(store, role, MAX_MAP_FEATURES, threshold)
    title = "网格化服务管理 概览" if lang == "zh" else "Grid governance overview"
    if lang == "zh-en":
        title = "网格化服务管理 概览 Grid governance overview"
    if cut:
        title += f" (≤{MAX_MAP_FEATURES:,}: {', '.join(cut)})"
    root = str(request.scope.get("root_path", ""))
    m = render_map(
        data,
        lang=lang,
        role=role,
        options=MapOptions(
            title=title,
            base_url=f"{root}/static/vendor/",
            tiles_url=settings.maps.tiles_url,
            attr=settings.maps.tiles_attribution,
            basemap_crs=settings.maps.basemap_crs,
            tiles_base=root,
            vector_threshold=VECTOR_THRESHOLD,
            language_links={code: f"?lang={code}" for code in _LANGS},
        ),
    )
    headers = {
        "Content-Security-Policy": map_csp(settings.maps.tiles_url),
        "X-Content-Type-Options": "nosniff",
    }
    return HTMLResponse(map_html(m, inline=False), headers=headers)


@router.get(
    "/static/vendor/{path:path}",
    include_in_schema=False,
    dependencies=[Depends(query_guard([]))],
)
def vendor_asset(path: str, settings: SettingsDep) -> FileResponse:
    """A browser asset of the maps (only the files the maps need; 404 for anything else)."""
    file = asset_file(path, directory=settings.maps.assets_dir)
    headers = {"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"}
    return FileResponse(file, headers=headers)
