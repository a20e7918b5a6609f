"""The coordinators' and leaders' console: ``/console/``, ``/console/dashboard``.

- ``/console/`` — a desktop map of what the caller's role and area may see
  (grids, buildings, roads, key areas, events by status, heat map and hot spots
  with their legend, patrol routes and tracks), filters by period, category and
  status, a searchable grid list, the event list with its workflow actions and
  an event's history and photos; coordinators plan a route for a grid, see it,
  download GPX/KML (WGS84 or GCJ-02) and print its route sheet; the event-plan
  layer (安保方案) lists the stored major-event plans of the caller's area and
  draws a chosen plan's shift routes, one colour per worker, and its key areas
  with their windows, with the printable plan (PDF) and each worker's GPX.
- ``/console/dashboard`` — the leader's figures for their area on one screen,
  each with its change against the previous period and the same period last
  year (:func:`gridmap.assessment.report.dashboard_figures`).
- ``/console/route-sheet`` — the A4 route sheet (map and turn list) to print.

All of it reads through the same HTTP API as other clients, with the browser
session (:mod:`api.session`), scoped exactly as the API is.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from api import ogc
from api.csp import CONSOLE_CSP
from api.deps import SettingsDep, StoreDep
from api.params import query_guard
from api.routers.fieldapp import app_config
from api.routers.pages import page_context
from api.security import CurrentPrincipal
from api.settings import settings_of
from gridmap.assessment.report import ReportOptions, dashboard_figures
from gridmap.common.errors import BadInput
from gridmap.common.timeparse import parse_day
from gridmap.security.access import Principal

__all__ = ["router"]

router = APIRouter(tags=["Console 控制台"], include_in_schema=False)

_HEADERS = {"Content-Security-Policy": CONSOLE_CSP, "Cache-Control": "no-store"}
_ROLE_NAMES = {
    "city_admin": ("市级管理员", "City administrator"),
    "town_coordinator": ("镇街协调员", "Town coordinator"),
    "community_staff": ("社区工作人员", "Community staff"),
    "grid_worker": ("网格员", "Grid worker"),
    "viewer": ("浏览者", "Viewer"),
    "external_system": ("外部系统", "External system"),
}


def _report_href(request: Request, principal: Principal) -> str:
    """The period report of the caller's area for the current month."""
    tz = settings_of(request.app).time_zone
    start = pd.Timestamp.now(tz=tz).normalize().replace(day=1)
    end = start + pd.DateOffset(months=1)
    area = principal.areas[0] if principal.areas and principal.areas[0] else ""
    if not area:
        store = request.app.state.store
        units = store.read("admin_units", where={"level": "city"}, limit=1)
        area = str(units["code"].iloc[0]) if len(units) else ""
    query = f"from={start.date().isoformat()}&to={end.date().isoformat()}"
    return f"/reports/period?area={area}&{query}" if area else "/console/dashboard"


def _render(request: Request, principal: Principal, template: str, **extra: Any) -> HTMLResponse:
    ctx = page_context(request, principal)
    role = _ROLE_NAMES.get(principal.role, (principal.role, principal.role))
    html = ogc.html_page(
        template,
        role_zh=role[0],
        role_en=role[1],
        report_href=_report_href(request, principal),
        **ctx,
        **extra,
    )
    return HTMLResponse(html, headers=_HEADERS)


@router.get("/console", dependencies=[Depends(query_guard([]))])
def console_root() -> Response:
    """``/console`` → ``/console/``."""
    return Response(status_code=308, headers={"Location": "/console/"})


@router.get("/console/", response_class=HTMLResponse, dependencies=[Depends(query_guard([]))])
def console_page(request: Request, store: StoreDep, principal: CurrentPrincipal) -> HTMLResponse:
    """The console map and tools (a browser session is needed)."""
    config = app_config(request, store, principal)
    config["time_zone"] = settings_of(request.app).time_zone
    data = json.dumps(config, ensure_ascii=False).replace("</", "<\\/")
    return _render(request, principal, "console/map.html", config=data)


def _period(start: str | None, end: str | None, tz: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The dashboard's period: a month in *tz* (the current one by default)."""
    now = pd.Timestamp.now(tz=tz)
    lo = (
        pd.Timestamp(parse_day(start, field="from"), tz=tz)
        if start
        else now.normalize().replace(day=1)
    )
    hi = pd.Timestamp(parse_day(end, field="to"), tz=tz) if end else lo + pd.DateOffset(months=1)
    if not lo < hi:
        raise BadInput("from must be earlier than to", field="from")
    if not (1900 <= lo.year <= 9999 and 1900 <= hi.year <= 9999):
        raise BadInput("dates must lie in years 1900–9999", field="from")
    return lo, hi


@router.get(
    "/console/dashboard",
    response_class=HTMLResponse,
    dependencies=[Depends(query_guard(["from", "to"]))],
)
def dashboard(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    principal: CurrentPrincipal,
    from_: Annotated[
        str | None, Query(alias="from", max_length=10, pattern=r"^\d{4}-\d{2}-\d{2}$")
    ] = None,
    to: Annotated[str | None, Query(max_length=10, pattern=r"^\d{4}-\d{2}-\d{2}$")] = None,
) -> HTMLResponse:
    """The leader's dashboard for the caller's area (a period: a month by default)."""
    tz = settings.time_zone
    lo, hi = _period(from_, to, tz)
    min_count = settings.privacy.min_count
    figures = dashboard_figures(
        store, principal, start=lo, end=hi, options=ReportOptions(tz=tz, min_count=min_count)
    )
    data = json.dumps(
        {
            **page_context(request, principal),
            "figures": figures,
            "period": {"from": lo.date().isoformat(), "to": hi.date().isoformat()},
            "time_zone": tz,
        },
        ensure_ascii=False,
        default=str,
    ).replace("</", "<\\/")
    return _render(
        request,
        principal,
        "console/dashboard.html",
        figures=figures,
        config=data,
        period_from=lo.date().isoformat(),
        period_to=(hi - pd.Timedelta(days=1)).date().isoformat(),
    )


@router.get(
    "/console/route-sheet",
    response_class=HTMLResponse,
    dependencies=[Depends(query_guard(["grid", "mode"]))],
)
def route_sheet(
    request: Request,
    principal: CurrentPrincipal,
    grid: Annotated[str, Query(pattern=r"^\d{15}$")],
    mode: Annotated[str, Query(pattern=r"^(streets|points|mixed)$")] = "streets",
) -> HTMLResponse:
    """An A4 route sheet: the route on a map and its turn list (drawn in the browser)."""
    data = json.dumps(
        {**page_context(request, principal), "grid": grid, "mode": mode}, ensure_ascii=False
    )
    return _render(
        request, principal, "console/route_sheet.html", config=data, grid=grid, mode=mode
    )
