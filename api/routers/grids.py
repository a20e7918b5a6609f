"""Grid division over HTTP: ``POST /grids/generate`` and ``GET /grids/check``.

Thin: parse, call :mod:`gridmap.division.service`, serialize. Only the city
centre and town coordinators divide grids, and a coordinator only inside their
town (the community code must start with their area).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from api.deps import StoreDep
from api.security import require_roles
from gridmap.access import Principal
from gridmap.audit import record
from gridmap.division.service import check_grids, generate_grids
from gridmap.errors import NotFound

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
            method=body.method,
            target=body.target,
            low=body.min,
            high=body.max,
            weight=body.weight,
            resolution=body.resolution,
            size_m=body.size_m,
            fresh=body.fresh,
        )
    record(store, principal, "grids.generate", body.community, body.model_dump())
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
