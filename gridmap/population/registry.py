"""The resident registry (实有人口): households and the people living in them.

Names, ID numbers and phones are personal data. They are validated and
normalised (:mod:`gridmap.security.privacy`), stored encrypted with a blind index for
exact lookup, and answered masked (``张*``, ``138****1234``,
``370285********1234``) unless the caller has the unmask permission and asks
for it; every read of personal data and every unmask is audited.

Every function acts for a :class:`~gridmap.security.access.Principal` and is confined
to its areas twice: the application filters on ``grid_code`` with
:class:`~gridmap.storage.Prefix`, and on PostGIS the work runs inside
``store.scoped(...)`` so that row-level security applies as well. Rows outside
the caller's areas are reported as not found, never as forbidden, so their
existence does not leak.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from gridmap.common.errors import BadInput, NotFound
from gridmap.security import audit
from gridmap.security.access import Principal
from gridmap.security.auth import PermissionDenied
from gridmap.security.privacy import (
    Vault,
    guard_frame,
    id_facts,
    mask_id_number,
    mask_name,
    mask_phone,
    normalize_id_number,
    normalize_name,
    normalize_phone,
)
from gridmap.storage import Prefix, Store

__all__ = [
    "HOUSEHOLD_KINDS",
    "REGISTRATION_REFUSED",
    "RESIDENT_CATEGORIES",
    "Person",
    "export_residents",
    "find_resident",
    "get_household",
    "get_resident",
    "list_households",
    "list_residents",
    "register_household",
    "register_resident",
]

#: Household kinds (户别).
HOUSEHOLD_KINDS: dict[str, tuple[str, str]] = {
    "family": ("家庭户", "Family household"),
    "collective": ("集体户", "Collective household"),
    "rental": ("出租户", "Rented dwelling"),
}

#: Categories of the actual population (实有人口).
RESIDENT_CATEGORIES: dict[str, tuple[str, str]] = {
    "registered": ("户籍人口", "Registered resident"),
    "migrant": ("流动人口", "Migrant"),
    "left_behind": ("留守人员", "Left-behind"),
    "special": ("特殊人群", "Special group"),
    "overseas": ("境外人员", "Overseas resident"),
}

#: The answer to a registration that cannot be stored (its ID number is registered,
#: in this area or another): the same whichever, and not saying which or that it exists.
REGISTRATION_REFUSED = (
    "this person cannot be registered here; the community office (社区) can check "
    "the registration · 无法在此登记，请联系社区核实"
)

#: Roles that may register households and residents.
_WRITERS = frozenset({"city_admin", "town_coordinator", "community_staff", "grid_worker"})
_PUBLIC_RESIDENT = (
    "id",
    "household_id",
    "grid_code",
    "category",
    "gender",
    "birth_year",
    "created_by",
    "created_at",
)
_PERSONAL = ("name", "id_number", "phone")
_MAX_PAGE = 1_000


def _now() -> pd.Timestamp:
    return pd.Timestamp(dt.datetime.now(dt.UTC))


def _require_personal(principal: Principal) -> None:
    if not principal.sees_personal_data:
        raise PermissionDenied(f"role {principal.role!r} may not see personal data")


def _require_writer(principal: Principal, grid_code: str) -> None:
    if principal.role not in _WRITERS:
        raise PermissionDenied(f"role {principal.role!r} may not register residents")
    if not principal.covers(grid_code):  # as if absent: existence does not leak
        raise NotFound(f"grid {grid_code} not found in your areas")


def _check_grid_code(code: Any) -> str:
    if not isinstance(code, str) or not (code.isascii() and code.isdigit() and len(code) == 15):
        raise BadInput("grid_code must have 15 digits", field="grid_code")
    return code


def _choice(value: str, choices: dict[str, tuple[str, str]], field: str) -> str:
    if value not in choices:
        raise BadInput(f"{field} must be one of {', '.join(choices)}", field=field)
    return value


def _area(principal: Principal) -> Prefix:
    return Prefix(principal.areas)


def _scope_where(principal: Principal, grid_code: str | None) -> dict[str, Any]:
    """Area filter: the principal's prefixes, or one grid of theirs (none if not theirs)."""
    if grid_code is None:
        return {"grid_code": _area(principal)}
    code = _check_grid_code(grid_code)
    return {"grid_code": code if principal.covers(code) else Prefix(())}


def _page(limit: int, offset: int) -> tuple[int, int]:
    if not (1 <= limit <= _MAX_PAGE) or offset < 0:
        raise BadInput(f"limit must be 1–{_MAX_PAGE} and offset ≥ 0", field="limit")
    return limit, offset


# -- households ----------------------------------------------------------------
def register_household(
    store: Store,
    principal: Principal,
    *,
    grid_code: str,
    address: str,
    kind: str = "family",
    household_no: str | None = None,
    building_id: int | None = None,
) -> dict[str, Any]:
    """Register a household (户) in one of the principal's grids; return it.

    Examples
    --------
    >>> from gridmap.storage import open_store
    >>> from gridmap.security.access import Principal
    >>> store = open_store(":memory:", migrate=True)
    >>> w = Principal("wang", "grid_worker", ("990100001001003",))
    >>> register_household(store, w, grid_code="990100001001003", address="1 Main St")["kind"]
    'family'
    """
    code = _check_grid_code(grid_code)
    _require_writer(principal, code)
    kind = _choice(kind, HOUSEHOLD_KINDS, "kind")
    addr = " ".join(str(address).split())
    if not addr or len(addr) > 200 or any(c in addr for c in "<>"):
        raise BadInput("address must be 1–200 characters without markup", field="address")
    number = household_no.strip() if household_no else f"H{uuid.uuid4().hex[:12].upper()}"
    if not number or len(number) > 40 or not all(c.isalnum() or c in "-_/" for c in number):
        raise BadInput("household_no: 1–40 letters, digits, '-', '_' or '/'", field="household_no")
    row = pd.DataFrame(
        {
            "source_key": [f"household:{code}:{number}"],
            "household_no": [number],
            "kind": [kind],
            "address": [addr],
            "building_id": [building_id],
            "grid_code": [code],
            "created_by": [principal.name],
            "created_at": [_now()],
        }
    )
    with store.scoped(principal.areas):
        if store.write("households", row).inserted == 0:
            raise BadInput(f"household {number!r} already exists in {code}", field="household_no")
        out = store.read("households", where={"grid_code": code, "household_no": number})
        audit.record(
            store,
            principal,
            "personal.create",
            f"households:{int(out['id'].iloc[0])}",
            area=code,
        )
    return _household_record(out.iloc[0])


def _household_record(row: pd.Series) -> dict[str, Any]:
    rec = {
        "id": int(row["id"]),
        "household_no": row["household_no"],
        "kind": row["kind"],
        "address": row["address"],
        "building_id": None if pd.isna(row["building_id"]) else int(row["building_id"]),
        "grid_code": row["grid_code"],
        "created_by": row["created_by"],
        "created_at": None if pd.isna(row["created_at"]) else row["created_at"].isoformat(),
    }
    return rec


def get_household(store: Store, principal: Principal, household_id: int) -> dict[str, Any]:
    """One household in the principal's areas (``NotFound`` otherwise)."""
    _require_personal(principal)
    with store.scoped(principal.areas):
        frame = store.read("households", ids=[household_id], where={"grid_code": _area(principal)})
        if frame.empty:
            raise NotFound(f"household {household_id} not found")
        audit.record(
            store,
            principal,
            "personal.read",
            f"households:{household_id}",
            area=str(frame["grid_code"].iloc[0]),
        )
    return _household_record(frame.iloc[0])


def list_households(
    store: Store,
    principal: Principal,
    *,
    grid_code: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Households in the principal's areas (optionally one grid), by id."""
    _require_personal(principal)
    limit, offset = _page(limit, offset)
    where = _scope_where(principal, grid_code)
    with store.scoped(principal.areas):
        frame = store.read("households", where=where, limit=limit, offset=offset)
        audit.record(
            store,
            principal,
            "personal.read",
            "households",
            {"count": len(frame)},
            area=audit.area_of(frame["grid_code"]),
        )
    return [_household_record(r) for _, r in frame.iterrows()]


# -- residents -----------------------------------------------------------------
@dataclass(frozen=True)
class Person:
    """A person to register: name, identity document, phone and category (实有人口).

    *id_type* names the document (:mod:`gridmap.population.documents`): the resident ID
    card by default; an overseas resident (``category="overseas"``, 境外人员)
    may hold a passport or a permit, checked for its own form.
    """

    name: str
    id_number: str
    phone: str | None = None
    category: str = "registered"
    id_type: str | None = None


def register_resident(
    store: Store,
    vault: Vault,
    principal: Principal,
    *,
    household_id: int,
    person: Person,
) -> dict[str, Any]:
    """Register a person in a household of the principal's areas; return the masked record.

    ``person.id_type`` names the document (see :class:`Person`).

    The ID number is validated (GB 11643, 15-digit legacy numbers upgraded),
    the phone normalised; one ID number is registered once: a second
    registration gets the neutral :data:`REGISTRATION_REFUSED` (``BadInput``),
    the same whichever area holds the first, so the answer tells a caller
    nothing about residents outside their areas; the refusal is audited
    (``personal.refused``).

    Examples
    --------
    >>> from gridmap.storage import open_store
    >>> from gridmap.security.access import Principal
    >>> store = open_store(":memory:", migrate=True)
    >>> vault = Vault.from_secret("doctest data key, long enough")
    >>> w = Principal("wang", "grid_worker", ("990100001001003",))
    >>> h = register_household(store, w, grid_code="990100001001003", address="1 Main St")
    >>> r = register_resident(store, vault, w, household_id=h["id"], person=Person(
    ...     name="张三", id_number="11010519491231002X", phone="+86 138 1234 1234"))
    >>> r["name"], r["id_number"], r["phone"]
    ('张*', '110105********002X', '138****1234')
    """
    from gridmap.population.documents import (
        RESIDENT_ID,
        document_type,
        mask_document,
        normalize_document,
    )

    id_number, phone = person.id_number, person.phone
    clean_name = normalize_name(person.name)
    doc = document_type(person.id_type)
    category = _choice(person.category, RESIDENT_CATEGORIES, "category")
    if doc != RESIDENT_ID and category != "overseas":
        raise BadInput(
            f"a {doc} is the document of an overseas resident (境外人员): "
            "register them with category 'overseas'",
            field="id_type",
        )
    idn = (
        normalize_id_number(id_number) if doc == RESIDENT_ID else normalize_document(id_number, doc)
    )
    tel = None if phone in (None, "") else normalize_phone(phone)
    gender, birth_year = id_facts(idn) if doc == RESIDENT_ID else (None, None)
    with store.scoped(principal.areas):
        hh = store.read("households", ids=[household_id], where={"grid_code": _area(principal)})
        if hh.empty:
            raise NotFound(f"household {household_id} not found")
        code = str(hh["grid_code"].iloc[0])
        _require_writer(principal, code)
        # Other documents are indexed with their type in front (as the register
        # import does): a passport and a permit of the same number are two people.
        index = vault.blind_index(idn if doc == RESIDENT_ID else f"{doc}:{idn}", "id_number")
        row = pd.DataFrame(
            {
                "source_key": [f"resident:{index}"],
                "household_id": [household_id],
                "grid_code": [code],
                "category": [category],
                "name_enc": [vault.encrypt(clean_name, "name")],
                "name_masked": [mask_name(clean_name)],
                "id_number_enc": [vault.encrypt(idn, "id_number")],
                "id_number_index": [index],
                "id_number_masked": [
                    mask_id_number(idn) if doc == RESIDENT_ID else mask_document(idn, doc)
                ],
                "id_type": [doc],
                "phone_enc": [None if tel is None else vault.encrypt(tel, "phone")],
                "phone_index": [None if tel is None else vault.blind_index(tel, "phone")],
                "phone_masked": [mask_phone(tel)],
                "gender": [gender],
                "birth_year": [birth_year],
                "created_by": [principal.name],
                "created_at": [_now()],
            }
        )
        stored = store.write("residents", row).inserted > 0
        if stored:
            out = store.read("residents", where={"id_number_index": index})
            audit.record(
                store,
                principal,
                "personal.create",
                f"residents:{int(out['id'].iloc[0])}",
                area=code,
            )
    if not stored:
        # One answer whether the number is registered here or in any other area
        # (nothing about where, or that it exists); the attempt is audited.
        audit.record(
            store,
            principal,
            "personal.refused",
            f"households:{household_id}",
            {"field": "id_number"},
            area=code,
        )
        raise BadInput(REGISTRATION_REFUSED, field="id_number")
    return _resident_records(out, vault, unmask=False)[0]


def _resident_records(frame: pd.DataFrame, vault: Vault, *, unmask: bool) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for _, row in frame.iterrows():
        rec: dict[str, Any] = {}
        for col in _PUBLIC_RESIDENT:
            v = row[col]
            if pd.isna(v):
                rec[col] = None
            elif col in ("id", "household_id", "birth_year"):
                rec[col] = int(v)
            elif col == "created_at":
                rec[col] = v.isoformat()
            else:
                rec[col] = v
        for name in _PERSONAL:
            if unmask:
                enc = row[f"{name}_enc"]
                rec[name] = None if pd.isna(enc) else vault.decrypt(str(enc), name)
            else:
                masked = row[f"{name}_masked"]
                rec[name] = None if pd.isna(masked) else masked
        rec["masked"] = not unmask
        out.append(rec)
    return out


def _answer(
    store: Store,
    vault: Vault,
    principal: Principal,
    frame: pd.DataFrame,
    *,
    unmask: bool,
    target: str,
    detail: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Audit the read (and the unmask) inside the caller's scope, then build the records."""
    if unmask and not principal.can_unmask:
        raise PermissionDenied("you may not unmask personal data")
    ids = ",".join(str(int(i)) for i in frame["id"].tolist()[:200])
    facts = {"count": len(frame), **(detail or {})}
    area = audit.area_of(frame["grid_code"])
    audit.record(store, principal, "personal.read", target, {**facts, "ids": ids}, area=area)
    if unmask:
        audit.record(store, principal, "personal.unmask", f"residents:{ids}", facts, area=area)
    return _resident_records(frame, vault, unmask=unmask)


def list_residents(
    store: Store,
    vault: Vault,
    principal: Principal,
    *,
    grid_code: str | None = None,
    household_id: int | None = None,
    unmask: bool = False,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Residents in the principal's areas, masked unless *unmask* (audited)."""
    _require_personal(principal)
    if unmask and not principal.can_unmask:
        raise PermissionDenied("you may not unmask personal data")
    limit, offset = _page(limit, offset)
    where = _scope_where(principal, grid_code)
    if household_id is not None:
        where["household_id"] = int(household_id)
    with store.scoped(principal.areas):
        frame = store.read("residents", where=where, limit=limit, offset=offset)
        return _answer(store, vault, principal, frame, unmask=unmask, target="residents")


def get_resident(
    store: Store, vault: Vault, principal: Principal, resident_id: int, *, unmask: bool = False
) -> dict[str, Any]:
    """One resident in the principal's areas (``NotFound`` otherwise)."""
    _require_personal(principal)
    if unmask and not principal.can_unmask:
        raise PermissionDenied("you may not unmask personal data")
    with store.scoped(principal.areas):
        frame = store.read("residents", ids=[resident_id], where={"grid_code": _area(principal)})
        if frame.empty:
            raise NotFound(f"resident {resident_id} not found")
        return _answer(
            store, vault, principal, frame, unmask=unmask, target=f"residents:{resident_id}"
        )[0]


def find_resident(
    store: Store,
    vault: Vault,
    principal: Principal,
    *,
    id_number: str | None = None,
    phone: str | None = None,
    unmask: bool = False,
) -> list[dict[str, Any]]:
    """Exact lookup by ID number or phone through the blind index, within the areas."""
    _require_personal(principal)
    if unmask and not principal.can_unmask:
        raise PermissionDenied("you may not unmask personal data")
    where: dict[str, Any] = {"grid_code": _area(principal)}
    if id_number is not None:
        where["id_number_index"] = vault.blind_index(normalize_id_number(id_number), "id_number")
    elif phone is not None:
        where["phone_index"] = vault.blind_index(normalize_phone(phone), "phone")
    else:
        raise BadInput("give an id_number or a phone to search for", field="id_number")
    with store.scoped(principal.areas):
        frame = store.read("residents", where=where, limit=_MAX_PAGE)
        return _answer(
            store,
            vault,
            principal,
            frame,
            unmask=unmask,
            target="residents",
            detail={"by": "index"},
        )


def export_residents(
    store: Store, vault: Vault, principal: Principal, *, grid_codes: Sequence[str] | None = None
) -> pd.DataFrame:
    """Masked residents of the principal's areas as a table safe to open in a spreadsheet.

    Exports are never unmasked; every text cell is guarded against formula
    injection (:func:`gridmap.security.privacy.guard_frame`). The export is audited.
    """
    _require_personal(principal)
    with store.scoped(principal.areas):
        frame = store.read("residents", where={"grid_code": _area(principal)})
        if grid_codes is not None:
            codes = {_check_grid_code(c) for c in grid_codes}
            frame = frame[frame["grid_code"].isin(codes)]
        audit.record(
            store,
            principal,
            "personal.export",
            "residents",
            {"count": len(frame)},
            area=audit.area_of(frame["grid_code"]),
        )
    records = _resident_records(frame, vault, unmask=False)
    table = pd.DataFrame(records, columns=[*_PUBLIC_RESIDENT, *_PERSONAL])
    return guard_frame(table)
