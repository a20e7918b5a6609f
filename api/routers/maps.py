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
from api.deps import RoleDep, SettingsDep, StoreDep
from api.params import query_guard
from gridmap.storage import Store
from layers.assets import asset_file
from layers.catalog import normalize_lang
from layers.render import map_html, render_map

__all__ = ["MAX_MAP_FEATURES", "router"]

router = APIRouter(tags=["Maps"])

#: Features drawn per layer on a map page (the first ones by id).
MAX_MAP_FEATURES = 20_000

#: Map pages load scripts, styles, images and fonts from this service only (folium writes
#: inline scripts; the leaflet-measure plugin compiles its templates with ``eval``).
_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; "
    "style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'self'"
)

Lang = Annotated[
    str, Query(description="Language of titles and labels: `zh`, `en` or `zh-en` (both).")
]


def _layers(store: Store, role: str, limit: int) -> tuple[dict[str, gpd.GeoDataFrame], list[str]]:
    """Non-empty layers *role* may see (first *limit* features each), and those cut short."""
    data: dict[str, gpd.GeoDataFrame] = {}
    cut: list[str] = []
    for ldef in ogc.collections(role):
        frame = store.read(ldef.name, limit=limit + 1)
        if isinstance(frame, gpd.GeoDataFrame) and len(frame):
            if len(frame) > limit:
                cut.append(ldef.name)
            data[ldef.name] = frame.iloc[:limit]
    return data, cut


@router.get(
    "/maps/overview",
    summary="Overview map (HTML)",
    response_class=HTMLResponse,
    dependencies=[Depends(query_guard(["lang"]))],
)
def overview(
    request: Request, store: StoreDep, role: RoleDep, lang: Lang = "zh-en"
) -> HTMLResponse:
    """Every layer the caller may see on one interactive map (works without internet)."""
    lang = normalize_lang(lang)
    data, cut = _layers(store, role, MAX_MAP_FEATURES)
    title = "网格化服务管理 概览" if lang == "zh" else "Grid governance overview"
    if lang == "zh-en":
        title = "网格化服务管理 概览 Grid governance overview"
    if cut:
        title += f" (≤{MAX_MAP_FEATURES:,}: {', '.join(cut)})"
    base = f"{request.scope.get('root_path', '')}/static/vendor/"
    m = render_map(data, lang=lang, title=title, base_url=base, role=role)
    headers = {"Content-Security-Policy": _CSP, "X-Content-Type-Options": "nosniff"}
    return HTMLResponse(map_html(m, inline=False), headers=headers)


@router.get(
    "/static/vendor/{path:path}",
    include_in_schema=False,
    dependencies=[Depends(query_guard([]))],
)
def vendor_asset(path: str, settings: SettingsDep) -> FileResponse:
    """A browser asset of the maps (only the files the maps need; 404 for anything else)."""
    file = asset_file(path, directory=settings.assets_dir)
    headers = {"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"}
    return FileResponse(file, headers=headers)
