"""``/registry``: households and residents (实有人口) within the caller's areas.

Personal fields are masked unless ``unmask=true`` is asked by a principal with
the unmask permission (403 otherwise); every read and every unmask is audited
by the core (:mod:`gridmap.population.registry`). Objects outside the caller's areas
answer 404. Searches by ID number or phone are POSTs, so the values never
appear in URLs or access logs.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from api.routers._json import StrictJsonRoute
from api.security import PersonalDataPrincipal, vault
from gridmap.population import registry
from gridmap.security.access import Principal
from gridmap.security.privacy import Vault
from gridmap.storage import Store

__all__ = ["router"]

router = APIRouter(prefix="/registry", tags=["registry"], route_class=StrictJsonRoute)

_MAX_ID = 2**63 - 1
Id = Annotated[int, Path(ge=1, le=_MAX_ID)]
GridCode = Annotated[str | None, Query(pattern=r"^[0-9]{15}$", max_length=15)]
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
Unmask = Annotated[bool, Query(description="Show personal data unmasked (audited).")]
VaultDep = Annotated[Vault, Depends(vault)]


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


StoreDep = Annotated[Store, Depends(_store)]


@dataclass(frozen=True)
class _ResidentRead:
    """Who reads residents, from which store and vault, and whether unmasked."""

    principal: Principal
    store: Store
    vault: Vault
    unmask: bool


def _resident_read(
    principal: PersonalDataPrincipal, store: StoreDep, v: VaultDep, unmask: Unmask = False
) -> _ResidentRead:
    """The resident reads' dependencies; 403 for *unmask* without the permission."""
    if unmask and not principal.can_unmask:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "you may not unmask personal data")
    return _ResidentRead(principal, store, v, unmask)


ResidentRead = Annotated[_ResidentRead, Depends(_resident_read)]


class HouseholdIn(BaseModel):
    """A household to register."""

    model_config = ConfigDict(extra="forbid")

    grid_code: str = Field(pattern=r"^[0-9]{15}$")
    address: str = Field(min_length=1, max_length=200)
    kind: str = Field(default="family", max_length=20)
    household_no: str | None = Field(default=None, max_length=40)
    building_id: int | None = Field(default=None, ge=1, le=_MAX_ID)


class ResidentIn(BaseModel):
    """A person to register in a household."""

    model_config = ConfigDict(extra="forbid")

    household_id: int = Field(ge=1, le=_MAX_ID)
    name: str = Field(min_length=1, max_length=256)
    id_number: str = Field(min_length=1, max_length=64)
    phone: str | None = Field(default=None, max_length=64)
    category: str = Field(default="registered", max_length=20)
    id_type: str | None = Field(
        default=None,
        max_length=40,
        description="resident_id (default), passport, hk_macao_permit, taiwan_permit, "
        "foreign_permanent_id (overseas residents)",
    )


class ResidentSearch(BaseModel):
    """Exact lookup by ID number or phone."""

    model_config = ConfigDict(extra="forbid")

    id_number: str | None = Field(default=None, max_length=64)
    phone: str | None = Field(default=None, max_length=64)


@router.get("/households", summary="Households in your areas")
def households(
    principal: PersonalDataPrincipal,
    store: StoreDep,
    grid: GridCode = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Households in the caller's areas (optionally one grid)."""
    items = registry.list_households(store, principal, grid_code=grid, limit=limit, offset=offset)
    return {"households": items, "count": len(items)}


@router.post("/households", status_code=201, summary="Register a household")
def add_household(
    body: HouseholdIn, principal: PersonalDataPrincipal, store: StoreDep
) -> dict[str, Any]:
    """Register a household in one of the caller's grids."""
    return registry.register_household(store, principal, **body.model_dump())


@router.get("/households/{household_id}", summary="One household")
def household(
    household_id: Id, principal: PersonalDataPrincipal, store: StoreDep
) -> dict[str, Any]:
    """One household of the caller's areas."""
    return registry.get_household(store, principal, household_id)


@router.get("/residents", summary="Residents in your areas (masked)")
def residents(
    read: ResidentRead,
    grid: GridCode = None,
    household: Annotated[int | None, Query(ge=1, le=_MAX_ID)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Residents of the caller's areas, masked unless unmasked (audited)."""
    items = registry.list_residents(
        read.store,
        read.vault,
        read.principal,
        grid_code=grid,
        household_id=household,
        unmask=read.unmask,
        limit=limit,
        offset=offset,
    )
    return {"residents": items, "count": len(items), "masked": not read.unmask}


@router.post("/residents", status_code=201, summary="Register a resident")
def add_resident(
    body: ResidentIn, principal: PersonalDataPrincipal, store: StoreDep, v: VaultDep
) -> dict[str, Any]:
    """Register a person (ID number validated, answered masked)."""
    fields = body.model_dump()
    household_id = fields.pop("household_id")
    return registry.register_resident(
        store, v, principal, household_id=household_id, person=registry.Person(**fields)
    )


@router.post("/residents/search", summary="Find residents by ID number or phone")
def search(body: ResidentSearch, read: ResidentRead) -> dict[str, Any]:
    """Exact lookup through the blind index, within the caller's areas."""
    items = registry.find_resident(
        read.store,
        read.vault,
        read.principal,
        id_number=body.id_number,
        phone=body.phone,
        unmask=read.unmask,
    )
    return {"residents": items, "count": len(items), "masked": not read.unmask}


@router.get("/residents.csv", summary="Export residents (masked, spreadsheet-safe)")
def export(principal: PersonalDataPrincipal, store: StoreDep, v: VaultDep) -> Response:
    """Masked residents of the caller's areas as CSV (formula injection guarded)."""
    table = registry.export_residents(store, v, principal)
    buf = io.StringIO()
    table.to_csv(buf, index=False)
    return Response(
        "\ufeff" + buf.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="residents.csv"'},
    )


@router.get("/residents/{resident_id}", summary="One resident")
def resident(resident_id: Id, read: ResidentRead) -> dict[str, Any]:
    """One resident of the caller's areas, masked unless unmasked (audited)."""
    return registry.get_resident(
        read.store, read.vault, read.principal, resident_id, unmask=read.unmask
    )
