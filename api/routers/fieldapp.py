"""The grid worker's phone app (网格通 H5) under ``/app/``.

One server-rendered page (``/app/``) carries the signed-in worker's grids,
the event taxonomy, the workflow actions the role may take and the session's
CSRF token; small ES modules in ``api/static/app/`` do the rest against the
same HTTP API programs use (``/events``, ``/patrol/…``, ``/doorknock/…``,
``/collections/…``). A service worker (``/app/sw.js``, scope ``/app/``) keeps
the shell, the scripts and the map assets for use with no network; reports,
visits and tracks made offline wait in IndexedDB and are sent when the network
returns, each with its own ``Idempotency-Key``.

Why server-rendered pages and plain modules rather than a single-page app
build: see ``docs/browser-pages.md``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import geopandas as gpd
import shapely
from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from api import ogc
from api.csp import FIELD_APP_CSP
from api.deps import StoreDep
from api.params import query_guard
from api.routers.events import taxonomy_of
from api.routers.pages import page_context
from api.security import CurrentPrincipal
from api.settings import settings_of
from gridmap.common.errors import NotFound
from gridmap.events.states import OPEN_STATES, STATES
from gridmap.events.taxonomy import URGENCIES
from gridmap.events.workflow import ACTIONS
from gridmap.security.access import Principal
from gridmap.storage import Prefix, Store

__all__ = ["STATIC_DIR", "router", "static_file"]

router = APIRouter(tags=["Field app 网格通"], include_in_schema=False)

#: The app's own scripts, styles and icons.
STATIC_DIR = Path(__file__).resolve().parent.parent / "static" / "app"
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".webmanifest": "application/manifest+json",
}
#: The page's policy: scripts and styles from this service only (no inline script).
_GUARD = [Depends(query_guard([]))]


def static_file(name: str) -> Path:
    """A file of the app's static folder (``NotFound`` for anything else).

    Examples
    --------
    >>> static_file("app.js").name
    'app.js'
    >>> static_file("../fieldapp.py")
    Traceback (most recent call last):
    gridmap.common.errors.NotFound: no app file '../fieldapp.py'
    """
    path = (STATIC_DIR / name).resolve()
    if path.parent != STATIC_DIR.resolve() or path.suffix not in _TYPES or not path.is_file():
        raise NotFound(f"no app file {name[:60]!r}")
    return path


def _grids(store: Store, principal: Principal) -> dict[str, Any]:
    """The worker's grids as a small GeoJSON FeatureCollection (codes, names, outlines)."""
    where: dict[str, Any] = {}
    if not principal.sees_everything:
        where["code"] = Prefix(tuple(principal.areas))
    frame = store.read("grids", where=where, limit=200)
    features = []
    if isinstance(frame, gpd.GeoDataFrame) and len(frame):
        frame = frame.loc[frame["valid_to"].isna()] if "valid_to" in frame else frame
        geoms = shapely.simplify(frame.geometry.to_numpy(), 0.000005)
        for (_, row), geom in zip(frame.iterrows(), geoms, strict=True):
            features.append(
                {
                    "type": "Feature",
                    "id": str(row["code"]),
                    "geometry": json.loads(shapely.to_geojson(shapely.set_precision(geom, 1e-7))),
                    "properties": {
                        "code": str(row["code"]),
                        "name": row.get("name") if isinstance(row.get("name"), str) else None,
                        "households": _int(row.get("households")),
                        "buildings": _int(row.get("buildings")),
                    },
                }
            )
    return {"type": "FeatureCollection", "features": features}


def _int(value: Any) -> int | None:
    try:
        return None if value is None or value != value else int(value)
    except (TypeError, ValueError):
        return None


def app_config(request: Request, store: Store, principal: Principal) -> dict[str, Any]:
    """Everything the app page needs to start, with no network after the first load."""
    tax = taxonomy_of(request)
    settings = settings_of(request.app)
    actions = {
        code: {"zh": a.name_zh, "en": a.name_en, "sources": sorted(a.sources)}
        for code, a in ACTIONS.items()
        if principal.role in a.roles
    }
    return {
        **page_context(request, principal),
        "categories": [
            {
                "code": c.code,
                "zh": c.name_zh,
                "en": c.name_en,
                "subcategories": [
                    {"code": s.code, "zh": s.name_zh, "en": s.name_en}
                    for s in c.subcategories.values()
                ],
            }
            for c in tax.categories.values()
            if "event" in c.kinds
        ],
        "urgencies": [{"code": k, "zh": v[0], "en": v[1]} for k, v in URGENCIES.items()],
        "urgency_names": {k: {"zh": v[0], "en": v[1]} for k, v in URGENCIES.items()},
        "states": {k: {"zh": v[0], "en": v[1]} for k, v in STATES.items()},
        "open_states": sorted(OPEN_STATES),
        "actions": actions,
        "action_names": {
            "report": {"zh": "上报", "en": "Report"},
            **{code: {"zh": a.name_zh, "en": a.name_en} for code, a in ACTIONS.items()},
        },
        "grids": _grids(store, principal),
        "edge_tolerance_m": settings.edge_tolerance_m,
    }


@router.get("/app", dependencies=_GUARD)
def app_root() -> Response:
    """``/app`` → ``/app/`` (the service worker's scope)."""
    return Response(status_code=308, headers={"Location": "/app/"})


@router.get("/app/", response_class=HTMLResponse, dependencies=_GUARD)
def app_page(request: Request, store: StoreDep, principal: CurrentPrincipal) -> HTMLResponse:
    """The app shell: map, report, tasks, patrol, door-knocking (a browser session is needed)."""
    config = app_config(request, store, principal)
    html = ogc.html_page(
        "app/shell.html",
        config=json.dumps(config, ensure_ascii=False).replace("</", "<\\/"),
        **page_context(request, principal),
    )
    headers = {"Content-Security-Policy": FIELD_APP_CSP, "Cache-Control": "no-cache, private"}
    return HTMLResponse(html, headers=headers)


@router.get("/app/sw.js", dependencies=_GUARD)
def service_worker() -> FileResponse:
    """The service worker, served from ``/app/`` so that its scope is the app."""
    return FileResponse(
        static_file("sw.js"),
        media_type=_TYPES[".js"],
        headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/app/"},
    )


@router.get("/app/manifest.webmanifest", dependencies=_GUARD)
def manifest() -> FileResponse:
    """The web app manifest (install to the home screen)."""
    return FileResponse(
        static_file("manifest.webmanifest"),
        media_type=_TYPES[".webmanifest"],
        headers={"Cache-Control": "no-cache"},
    )


@router.get("/app/static/{name}", dependencies=_GUARD)
def app_static(name: str) -> FileResponse:
    """A script, style sheet or icon of the app (and of the sign-in page)."""
    path = static_file(name)
    return FileResponse(path, media_type=_TYPES[path.suffix], headers={"Cache-Control": "no-cache"})
