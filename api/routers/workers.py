"""Grid workers and their grids over HTTP (网格员与负责网格).

``GET /workers`` lists the workers of the caller's areas; ``POST
/workers/{name}/grids`` with ``{"grids": [CODE, …]}`` gives a grid worker
grids, ``DELETE /workers/{name}/grids/{grid}`` takes one away. For the city
centre, town coordinators and community staff, each inside their areas (a
grid outside them is 403). Thin: the work, the checks and the audit entry
are :mod:`gridmap.units.workers`; ``/locate`` follows at once (the point locator's
cache is dropped after a change). Changes run as the store's owner, not in
``store.scoped``: they write ``users``, which the PostGIS application role may
never write; the caller's areas are enforced by the core before anything is read.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from api.deps import StoreDep
from api.security import require_roles
from gridmap.security.access import Principal
from gridmap.units import workers

__all__ = ["router"]

router = APIRouter(tags=["workers 网格员"])

Manager = Annotated[Principal, Depends(require_roles(*sorted(workers.MANAGER_ROLES)))]
UserName = Annotated[str, Path(min_length=1, max_length=64, description="The worker's user name")]
GridCode = Annotated[str, Field(pattern=r"^\d{15}$", description="15-digit grid code")]


class GridsBody(BaseModel):
    """Body of ``POST /workers/{name}/grids``."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"grids": ["990100001001003"]}]}
    )

    grids: Annotated[list[GridCode], Field(min_length=1, max_length=workers.MAX_GRIDS)]


def _changed(request: Request) -> None:
    """Drop the cached point locator so the next ``/locate`` reads the new crews."""
    cache = getattr(request.app.state, "locator_cache", None)
    if cache is not None:
        cache.clear()


@router.get("/workers", summary="Grid workers of the caller's areas 网格员")
def list_workers(
    store: StoreDep,
    principal: Manager,
    area: Annotated[
        str | None,
        Query(pattern=r"^\d{6,15}$", description="Only workers of this area (a code prefix)"),
    ] = None,
) -> dict[str, Any]:
    """Workers with their grids (narrowed to the caller's areas); accounts by user name."""
    with store.scoped(principal.areas):
        rows = workers.list_workers(store, principal=principal, area=area)
    return {"workers": [r.to_json() for r in rows]}


@router.post("/workers/{name}/grids", summary="Assign grids to a grid worker 分配网格")
def assign(
    name: UserName, body: GridsBody, store: StoreDep, principal: Manager, request: Request
) -> dict[str, Any]:
    """Add grids to those the worker works; answers the worker's grids now."""
    worker = workers.assign_grids(store, name, body.grids, principal=principal)
    _changed(request)
    return worker.to_json()


@router.delete(
    "/workers/{name}/grids/{grid}", summary="Take a grid from a grid worker 取消分配网格"
)
def unassign(
    name: UserName,
    grid: Annotated[str, Path(pattern=r"^\d{15}$", description="15-digit grid code")],
    store: StoreDep,
    principal: Manager,
    request: Request,
) -> dict[str, Any]:
    """Remove one grid from the worker's grids; answers the worker's grids now."""
    worker = workers.unassign_grids(store, name, [grid], principal=principal)
    _changed(request)
    return worker.to_json()
