"""Leadership reports (工作报告): ``GET /reports/period``.

``area`` (county, town, community or grid code), ``from`` and ``to`` (ISO
dates or times; ``to`` exclusive) are required; ``format`` is ``html``
(default) or ``json``. The caller must cover the area (otherwise 404, so the
existence of other areas does not leak); map viewers and external systems get 403.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, JSONResponse, Response

from api.deps import StoreDep
from api.security import CurrentPrincipal
from gridmap.assessment.report import period_report, render_html

__all__ = ["router"]

router = APIRouter(tags=["Reports 考核与报告"])


@router.get("/reports/period", summary="Period report 工作报告")
def get_period_report(
    store: StoreDep,
    principal: CurrentPrincipal,
    area: Annotated[str, Query(max_length=15, description="Area code (6/9/12/15 digits).")],
    from_: Annotated[str, Query(alias="from", max_length=40, description="Period start.")],
    to: Annotated[str, Query(max_length=40, description="Period end (exclusive).")],
    format: Annotated[Literal["html", "json"], Query()] = "html",
) -> Response:
    """The period report of *area* as a self-contained HTML page or JSON."""
    report = period_report(
        store, principal, area=area, start=from_, end=to, charts=format == "html"
    )
    if format == "json":
        return JSONResponse(report.to_dict())
    return HTMLResponse(render_html(report))
