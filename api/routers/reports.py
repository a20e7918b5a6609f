"""Leadership reports (工作报告): ``GET /reports/period``.

``area`` (county, town, community or grid code), ``from`` and ``to`` (ISO
dates or times; ``to`` exclusive; dates without a zone are read in the
service's time zone, ``GRIDMAP_TIME_ZONE``, default Asia/Shanghai) are
required; ``f`` (or ``format``) is ``html`` (default), ``json`` or ``pdf``.
The caller must cover the area (otherwise 404, so the existence of other
areas does not leak). Viewers and external systems read the report with
small counts hidden (``"<k"``, ``"*"``: :mod:`gridmap.assessment.disclosure`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from api.deps import SettingsDep, StoreDep
from api.security import CurrentPrincipal
from gridmap.assessment.pdf import FontMissing, render_pdf
from gridmap.assessment.report import ReportOptions, period_report, render_html
from gridmap.common.errors import BadInput

__all__ = ["router"]

router = APIRouter(tags=["Reports 考核与报告"])

Format = Literal["html", "json", "pdf"]


@router.get("/reports/period", summary="Period report 工作报告")
def get_period_report(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    principal: CurrentPrincipal,
    area: Annotated[str, Query(max_length=15, description="Area code (6/9/12/15 digits).")],
    from_: Annotated[str, Query(alias="from", max_length=40, description="Period start.")],
    to: Annotated[str, Query(max_length=40, description="Period end (exclusive).")],
    format: Annotated[Format | None, Query(description="html, json or pdf.")] = None,
    f: Annotated[Format | None, Query(description="Same as format.")] = None,
) -> Response:
    """The period report of *area* as a self-contained HTML page, JSON or PDF."""
    if format is not None and f is not None and format != f:
        raise BadInput("give the output format once (f or format)", field="f")
    kind = f or format or "html"
    report = period_report(
        store,
        principal,
        area=area,
        start=from_,
        end=to,
        options=ReportOptions(
            charts=kind != "json",
            min_count=settings.privacy.min_count,
            tz=settings.time_zone,
            rules=getattr(request.app.state, "assessment_rules", None),
        ),
    )
    if kind == "json":
        return JSONResponse(report.to_dict())
    if kind == "pdf":
        try:
            pdf = render_pdf(report)
        except FontMissing as exc:
            raise HTTPException(status_code=503, detail=exc.message) from None
        name = f"report-{report.area}-{report.start:%Y%m%d}.pdf"
        return Response(
            pdf,
            media_type="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return HTMLResponse(render_html(report))
