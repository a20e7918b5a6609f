"""Door-knocking campaigns (敲门行动): campaigns, household visits, progress and its map.

- ``POST /doorknock/campaigns`` — coordinators, community staff and city
  administrators open a campaign over an area they cover;
  ``GET /doorknock/campaigns`` and ``/doorknock/campaigns/{id}`` list those
  overlapping the caller's areas (404 for others).
- ``POST /doorknock/campaigns/{id}/visits`` — a grid worker records a visit
  to a registered household of their grid (404 for households elsewhere, 422
  for a place outside the grid). Idempotent: a replay with the same
  ``Idempotency-Key`` returns the stored answer (the same key with another
  body: 422), and the same outcome for the same household is stored once
  (``200`` with ``created: false``).
- ``GET /doorknock/campaigns/{id}/visits`` — staff only, masked by default,
  every read audited.
- ``GET /doorknock/campaigns/{id}/progress?by=grid|community|town`` — JSON;
  viewers and external systems get small counts hidden.
- ``GET /doorknock/campaigns/{id}/map`` — the progress choropleth (HTML, no
  internet needed).

The work happens in :mod:`gridmap.assessment.doorknock`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse

from api.csp import DOORKNOCK_CSP
from api.deps import PrivacyDep, StoreDep
from api.params import query_guard
from api.routers._json import read_json
from api.security import CurrentPrincipal
from gridmap.assessment import doorknock
from gridmap.events.intake import idempotent, request_hash
from layers.catalog import normalize_lang
from layers.doorknock import progress_map
from layers.render import map_html

__all__ = ["router"]

router = APIRouter(prefix="/doorknock", tags=["Door-knocking 敲门行动"])

_PRIVATE = {"Cache-Control": "no-store"}
CampaignId = Annotated[int, Path(ge=1, le=2**63 - 1, description="Campaign id.")]


@router.post("/campaigns", status_code=201, summary="Open a campaign 创建敲门行动")
async def create_campaign(
    request: Request, store: StoreDep, principal: CurrentPrincipal
) -> JSONResponse:
    """``{"name", "area_code", "starts_at", "ends_at"}`` → the campaign (same one on replay)."""
    args = doorknock.parse_campaign(await read_json(request))
    return JSONResponse(doorknock.create_campaign(store, principal, **args), status_code=201)


@router.get(
    "/campaigns",
    summary="Campaigns in your areas 敲门行动列表",
    dependencies=[Depends(query_guard(["area"]))],
)
def list_campaigns(
    store: StoreDep,
    principal: CurrentPrincipal,
    area: Annotated[str | None, Query(max_length=15, description="Area code filter.")] = None,
) -> dict[str, Any]:
    """Campaigns whose area overlaps the caller's (and *area*)."""
    items = doorknock.list_campaigns(store, principal, area=area)
    return {"campaigns": items, "count": len(items)}


@router.get("/campaigns/{campaign_id}", summary="One campaign 敲门行动")
def get_campaign(
    campaign_id: CampaignId, store: StoreDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """One campaign (404 when absent or outside the caller's areas)."""
    return doorknock.get_campaign(store, principal, campaign_id)


@router.post("/campaigns/{campaign_id}/visits", summary="Record a visit 记录入户走访")
async def record_visit(
    campaign_id: CampaignId,
    request: Request,
    store: StoreDep,
    principal: CurrentPrincipal,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    """A visit to a household of the caller's grid: 201 when stored, 200 when already stored."""
    body = await read_json(request)
    args = doorknock.parse_visit(body)

    def create() -> tuple[int, dict[str, Any], int | None]:
        visit = doorknock.record_visit(store, principal, campaign_id=campaign_id, visit=args)
        return (201 if visit["created"] else 200), visit, None

    status, doc, replayed = idempotent(
        store,
        principal=principal,
        key=idempotency_key,
        digest=request_hash({"campaign_id": campaign_id, **body}),
        create=create,
    )
    headers = dict(_PRIVATE)
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(doc, status_code=status, headers=headers)


@router.get(
    "/campaigns/{campaign_id}/visits",
    summary="Visits (masked) 入户走访记录",
    dependencies=[Depends(query_guard(["grid", "status", "limit", "offset", "unmask"]))],
)
def list_visits(
    campaign_id: CampaignId,
    store: StoreDep,
    principal: CurrentPrincipal,
    grid: Annotated[str | None, Query(pattern=r"^[0-9]{15}$", max_length=15)] = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    unmask: Annotated[bool, Query(description="Unmasked (audited; needs the right).")] = False,
) -> JSONResponse:
    """Visits in the caller's areas; staff only; masked unless unmasked (audited)."""
    doc = doorknock.list_visits(
        store,
        principal,
        campaign_id=campaign_id,
        grid=grid,
        status=status,
        limit=limit,
        offset=offset,
        unmask=unmask,
    )
    return JSONResponse(doc, headers=_PRIVATE)


@router.get(
    "/campaigns/{campaign_id}/progress",
    summary="Progress by grid, community or town 敲门行动进度",
    dependencies=[Depends(query_guard(["by"]))],
)
def progress(
    campaign_id: CampaignId,
    store: StoreDep,
    privacy: PrivacyDep,
    principal: CurrentPrincipal,
    by: Annotated[Literal["grid", "community", "town"], Query()] = "grid",
) -> dict[str, Any]:
    """Households, visited, verified, mobilised and shares per unit (small counts hidden
    for viewers and external systems).
    """
    camp = doorknock.get_campaign(store, principal, campaign_id)
    table = doorknock.campaign_progress(store, principal, campaign_id=campaign_id, by=by)
    rows = doorknock.progress_records(table, principal, k=privacy.min_count)
    return {"campaign": camp, "by": by, "units": rows, "count": len(rows)}


@router.get(
    "/campaigns/{campaign_id}/map",
    summary="Progress map (HTML) 敲门行动进度地图",
    response_class=HTMLResponse,
    dependencies=[Depends(query_guard(["value", "lang"]))],
)
def progress_page(
    campaign_id: CampaignId,
    request: Request,
    store: StoreDep,
    privacy: PrivacyDep,
    principal: CurrentPrincipal,
    value: Annotated[Literal["progress", "verified_share"], Query()] = "progress",
    lang: Annotated[str, Query(max_length=12)] = "zh-en",
) -> HTMLResponse:
    """Grids coloured by the share of households visited (or verified)."""
    lang = normalize_lang(lang)
    camp = doorknock.get_campaign(store, principal, campaign_id)
    grids = doorknock.progress_grids(store, principal, campaign_id=campaign_id, k=privacy.min_count)
    root = str(request.scope.get("root_path", ""))
    m = progress_map(
        grids,
        value=value,
        lang=lang,
        title=f"{camp['name']} · 敲门行动进度 Door-knocking progress",
        base_url=f"{root}/static/vendor/",
    )
    return HTMLResponse(
        map_html(m, inline=False),
        headers={"Content-Security-Policy": DOORKNOCK_CSP, "X-Content-Type-Options": "nosniff"},
    )
