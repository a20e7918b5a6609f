"""Grid division over HTTP: ``POST /grids/generate``, ``/grids/check``, ``/grids/statistics``.

Thin: parse, call :mod:`gridmap.division.service` / :mod:`gridmap.division.stats`,
serialize. Only the city centre and town coordinators divide grids, and a
coordinator only inside their town (the community code must start with their
area). Statistics are read by any signed-in principal, for the grids of its areas.
"""

from __future__ import annotations

import io
import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from api.deps import StoreDep
from api.security import CurrentPrincipal, require_roles
from gridmap.common.errors import NotFound
from gridmap.division.service import DivisionOptions, check_grids, generate_grids
from gridmap.division.stats import column_titles, statistics_table
from gridmap.io.export import guard_formula
from gridmap.security.access import Principal
from gridmap.security.audit import record
from layers.catalog import get_layer

__all__ = ["router"]

router = APIRouter(tags=["grids 网格"])

Divider = Annotated[Principal, Depends(require_roles("city_admin", "town_coordinator"))]


class GenerateRequest(BaseModel):
    """Body of ``POST /grids/generate``."""

    model_config = ConfigDict(extra="forbid")

    community: str = Field(pattern=r"^\d{12}$", description="12-digit community code")
    method: Literal["balanced", "bisect", "h3", "square"] = "balanced"
    target: float = Field(default=300, gt=0)
    min: float = Field(default=200, ge=0)
    max: float = Field(default=500, gt=0)
    weight: str = Field(default="households", pattern=r"^[a-z_]{1,40}$")
    resolution: int = Field(default=9, ge=7, le=11)
    size_m: float = Field(default=250.0, gt=10, le=5000)
    fresh: bool = False


def _check_area(principal: Principal, community: str) -> None:
    if not principal.covers(community):
        raise NotFound(f"community {community} not found")


@router.post("/grids/generate", summary="Divide a community into grids (网格划分)")
def generate(body: GenerateRequest, store: StoreDep, principal: Divider) -> dict[str, Any]:
    """Divide one community and save the grids (codes kept where grids mostly overlap)."""
    _check_area(principal, body.community)
    with store.scoped(principal.areas):
        saved = generate_grids(
            store,
            community=body.community,
            options=DivisionOptions(
                target=body.target,
                low=body.min,
                high=body.max,
                weight=body.weight,
                method=body.method,
                resolution=body.resolution,
                size_m=body.size_m,
            ),
            fresh=body.fresh,
        )
    record(
        store, principal, "grids.generate", body.community, body.model_dump(), area=body.community
    )
    out = saved[0]
    grids = out.division.grids.drop(columns="geometry")
    return {
        "community": out.community_code,
        "kept": out.kept,
        "closed": out.closed,
        "added": out.added,
        "notes": list(out.division.notes),
        "grids": json.loads(grids.to_json(orient="records", force_ascii=False)),
    }


@router.get("/grids/check", summary="Topology check of a community's grids")
def check(
    store: StoreDep, principal: Divider, community: Annotated[str, Query(pattern=r"^\d{12}$")]
) -> dict[str, Any]:
    """Gaps, overlaps, slivers, boundary crossings and cut buildings, one row per problem."""
    _check_area(principal, community)
    with store.scoped(principal.areas):
        problems, notes = check_grids(store, community=community)
    return {
        "community": community,
        "notes": notes,
        "problems": json.loads(problems.to_json()) if len(problems) else None,
    }


@router.get(
    "/grids/statistics",
    summary="Per-grid statistics (网格统计), JSON or CSV",
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
def statistics(
    store: StoreDep,
    principal: CurrentPrincipal,
    community: Annotated[str | None, Query(pattern=r"^\d{12}$")] = None,
    grid: Annotated[str | None, Query(pattern=r"^\d{15}$")] = None,
    f: Annotated[Literal["json", "csv"], Query(description="json or csv")] = "json",
) -> Any:
    """Buildings, households, residents, area, streets, events by category, workload.

    The grids in force of *community* (or the one *grid*, or all) that lie in the
    caller's areas, as stored by the last refresh (``stats_at``), with the fields
    the caller's role sees on the grids layer (map viewers get no event counts).
    CSV cells are guarded against spreadsheet formula injection.
    """
    with store.scoped(principal.areas):
        table = statistics_table(store, community=community, grid=grid, areas=principal.areas)
    # Only the fields the role may see on the grids layer (map viewers: no event counts).
    visible = {f.name for f in get_layer("grids").fields_for(principal.role)}
    table = table[[c for c in table.columns if c in visible]]
    titles = {c: t for c, t in column_titles().items() if c in visible}
    if f == "csv":
        csv = table.copy()
        for col in ("code", "name", "community_code"):
            csv[col] = guard_formula(csv[col].astype(object))
        for col in ("stats_from", "stats_at"):
            csv[col] = [None if v is None or v != v else v.isoformat() for v in csv[col]]
        csv.columns = [f"{titles[c][0]} {titles[c][1]} ({c})" for c in csv.columns]
        buf = io.StringIO()
        csv.to_csv(buf, index=False)
        return Response(
            "\ufeff" + buf.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="grid_statistics.csv"'},
        )
    return {
        "community": community,
        "columns": [{"name": c, "title_zh": zh, "title_en": en} for c, (zh, en) in titles.items()],
        "grids": json.loads(table.to_json(orient="records", date_format="iso", force_ascii=False)),
    }
