"""Grid workers and the grids they work (网格员与负责网格).

A grid worker is a user with the role ``grid_worker`` whose areas are the
grids they work: one or several 15-digit grid codes. The assignment lives in
three places that other parts of gridmap read, and this module is the one
path that changes them, in one transaction:

- ``users.areas``: what the worker may see (their grids, nothing more);
- the ``workers`` layer, one row per user (``source = "user"``,
  ``source_id`` = the user name) with ``name``, ``role``, ``area_code`` and
  ``grid_codes``: what ``/locate`` answers (:mod:`gridmap.geo.locate`);
- each grid's ``workers`` list: whom a newly reported event is assigned to
  (``assigned_to``, :func:`gridmap.events.intake.locate_point`).

Who may assign: the city centre anywhere, a town coordinator inside their
town, community staff inside their community (:data:`MANAGER_ROLES`); a grid
code outside the caller's areas is refused (``PermissionDenied``) before
anything is looked up, so the answer reveals nothing of other areas.

Area codes given to users are checked against the hierarchy
(:func:`check_areas`): an admin unit's code (county/city 6, town 9,
community 12 digits) or a grid in force (15 digits). ``""`` stands for the
whole city.

Examples
--------
>>> import geopandas as gpd, shapely
>>> from gridmap.security.auth import add_user
>>> from gridmap.storage import open_store
>>> store = open_store(":memory:", migrate=True)
>>> box = shapely.MultiPolygon([shapely.box(24.9, 60.1, 25.0, 60.2)])
>>> _ = store.write("admin_units", gpd.GeoDataFrame(
...     {"code": ["990100001001"], "level": ["community"]}, geometry=[box], crs=4326))
>>> _ = store.write("grids", gpd.GeoDataFrame(
...     {"code": ["990100001001001", "990100001001002"], "source_id": ["g1", "g2"]},
...     geometry=[box, box], crs=4326))
>>> _ = add_user(store, "wang", role="grid_worker", areas=["990100001001001"])
>>> assign_grids(store, "wang", ["990100001001002"]).grids
('990100001001001', '990100001001002')
>>> list(store.read("grids", where={"code": "990100001001002"})["workers"].iloc[0])
['wang']
>>> unassign_grids(store, "wang", ["990100001001001"]).area_code
'990100001001002'
>>> assign_grids(store, "wang", ["999999999999999"])
Traceback (most recent call last):
...
gridmap.units.workers.UnknownArea: unknown area 999999999999999: no grid in force has this code
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from gridmap.common.errors import BadInput, NotFound
from gridmap.security.access import SYSTEM, Principal
from gridmap.security.privacy import mask_name, mask_phone
from gridmap.storage import Store

if TYPE_CHECKING:
    from gridmap.security.auth import User

__all__ = [
    "GRID_CODE_LEN",
    "MANAGER_ROLES",
    "MAX_GRIDS",
    "USER_SOURCE",
    "UnknownArea",
    "Worker",
    "WorkerRow",
    "assign_grids",
    "check_areas",
    "list_workers",
    "register_worker",
    "unassign_grids",
    "worker_area",
]

#: Digits of a grid code (6 county + 3 town + 3 community + 3 grid).
GRID_CODE_LEN = 15
#: Roles that assign grid workers, each within its areas.
MANAGER_ROLES = frozenset({"city_admin", "town_coordinator", "community_staff"})
#: ``source`` of the ``workers`` rows that stand for users.
USER_SOURCE = "user"
#: Largest number of grids one call assigns or unassigns.
MAX_GRIDS = 200
# Serialises assignments on PostGIS (read-modify-write of users.areas and
# grids.workers); DuckDB transactions are serialised by the store already.
_LOCK_KEY = 7262619
_LEVEL_NAMES = {6: "county/city", 9: "town", 12: "community"}
# User names as gridmap.security.auth allows them; anything else names nobody.
_USER_NAME = re.compile(r"[\w.@-]{1,64}")


class UnknownArea(BadInput):
    """An area code that names no admin unit nor grid in force (400)."""

    code = "unknown_area"


@dataclass(frozen=True)
class Worker:
    """A user's assignment after a change: the grids they work, and their area code."""

    name: str
    role: str
    grids: tuple[str, ...]
    area_code: str | None

    def to_json(self) -> dict[str, Any]:
        """The JSON answer of the API."""
        return {
            "name": self.name,
            "role": self.role,
            "area_code": self.area_code,
            "grids": list(self.grids),
        }


@dataclass(frozen=True)
class WorkerRow:
    """One row of :func:`list_workers`, with what the caller may see.

    ``account`` is true for workers who are users (their ``name`` is the user
    name, needed to assign them); other workers' names and phones are masked
    unless the caller may unmask.
    """

    name: str | None
    role: str | None
    area_code: str | None
    grids: tuple[str, ...]
    phone: str | None
    account: bool

    def to_json(self) -> dict[str, Any]:
        """The JSON answer of the API."""
        return {
            "name": self.name,
            "account": self.account,
            "role": self.role,
            "area_code": self.area_code,
            "grids": list(self.grids),
            "phone": self.phone,
        }


def worker_area(grids: Iterable[str]) -> str | None:
    """The narrowest code holding every grid: the grid, its community, town or county.

    Examples
    --------
    >>> worker_area(["990100001001003"])
    '990100001001003'
    >>> worker_area(["990100001001003", "990100001001007"])
    '990100001001'
    >>> worker_area(["990100001001003", "990100002004001"])
    '990100'
    >>> worker_area([]) is None
    True
    """
    codes = sorted(set(grids))
    if not codes:
        return None
    for n in (GRID_CODE_LEN, 12, 9, 6):
        heads = {c[:n] for c in codes}
        if len(heads) == 1:
            return heads.pop()
    return None


def _clean_codes(codes: Iterable[str], *, field: str = "grids") -> list[str]:
    out: list[str] = []
    for code in codes:
        if not isinstance(code, str):
            raise BadInput(f"area codes are strings of digits, got {code!r:.40}", field=field)
        text = code.strip()
        if text and not (text.isascii() and text.isdigit() and len(text) in (6, 9, 12, 15)):
            raise BadInput(f"area code must have 6, 9, 12 or 15 digits: {text[:40]!r}", field=field)
        if text not in out:
            out.append(text)
    return out


def _current_grids(store: Store, codes: Sequence[str]) -> pd.DataFrame:
    """The grids in force with these codes (``id``, ``code``, ``workers``)."""
    if not codes:
        return pd.DataFrame({"id": [], "code": [], "workers": []})
    rows = store.read("grids", where={"code": list(codes), "valid_to": None})
    return pd.DataFrame(rows[["id", "code", "workers"]])


def check_areas(store: Store, areas: Sequence[str], *, grids_only: bool = False) -> tuple[str, ...]:
    """Refuse area codes the hierarchy does not hold; return them cleaned, in order.

    Parameters
    ----------
    store : Store
        Where the admin units and grids are.
    areas : sequence of str
        Codes: an admin unit's (6, 9 or 12 digits) or a grid in force (15
        digits); ``""`` means the whole city (never with *grids_only*).
    grids_only : bool
        Accept grids only (a grid worker's areas are the grids they work).

    Raises
    ------
    UnknownArea
        Naming the first code that is neither an admin unit nor a grid in force.
    gridmap.common.errors.BadInput
        For a code that is not 6/9/12/15 digits, or not a grid when *grids_only*.

    Examples
    --------
    >>> from gridmap.storage import open_store
    >>> check_areas(open_store(":memory:", migrate=True), [""])
    ('',)
    >>> check_areas(open_store(":memory:", migrate=True), ["370285001"])
    Traceback (most recent call last):
    ...
    gridmap.units.workers.UnknownArea: unknown area 370285001: no town has this code
    """
    cleaned = _clean_codes(areas, field="area")
    if grids_only:
        wrong = [c for c in cleaned if len(c) != GRID_CODE_LEN]
        if wrong:
            raise BadInput(
                f"a grid worker's areas are the grids they work (15 digits), got {wrong[0]!r}",
                field="area",
            )
    grids = [c for c in cleaned if len(c) == GRID_CODE_LEN]
    found = set(_current_grids(store, grids)["code"].astype(str))
    for code in grids:
        if code not in found:
            raise UnknownArea(f"unknown area {code}: no grid in force has this code", field="area")
    units = [c for c in cleaned if c and len(c) != GRID_CODE_LEN]
    if units:
        known = set(store.read("admin_units", where={"code": units})["code"].astype(str))
        for code in units:
            if code not in known:
                level = _LEVEL_NAMES[len(code)]
                raise UnknownArea(f"unknown area {code}: no {level} has this code", field="area")
    return tuple(cleaned)


def _check_manager(principal: Principal, grids: Sequence[str]) -> None:
    from gridmap.security.auth import PermissionDenied

    if principal.role not in MANAGER_ROLES:
        raise PermissionDenied(f"role {principal.role!r} may not assign grid workers")
    for code in grids:
        if not principal.covers(code):
            raise PermissionDenied(f"grid {code} is outside your area")


def _lock(store: Store) -> None:
    if store.dialect == "postgis":
        store.sql("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])  # type: ignore[attr-defined]


def _worker_user(store: Store, name: str) -> User:
    from gridmap.security.auth import get_user

    ok = isinstance(name, str) and _USER_NAME.fullmatch(name) is not None
    user = get_user(store, name) if ok else None
    if user is None:
        raise NotFound(f"no user {str(name)[:64]!r}")
    if user.role != "grid_worker":
        raise BadInput(
            f"user {user.name!r} is a {user.role}: only grid workers (grid_worker) work grids",
            field="name",
        )
    return user


def _grids_of(areas: Sequence[str]) -> list[str]:
    return [a for a in areas if len(a) == GRID_CODE_LEN]


def register_worker(store: Store, name: str, grids: Sequence[str]) -> Worker:
    """Make the user *name* work exactly *grids*: users, ``workers`` layer, grids' lists.

    The low-level step behind :func:`assign_grids`, :func:`unassign_grids`
    and :func:`gridmap.security.auth.add_user`; it checks neither the caller nor the
    codes and writes no audit entry. Runs in one transaction (joining the
    caller's): the three places change together or not at all.
    """
    wanted = sorted(set(grids))
    with store.transaction():
        _lock(store)
        user = _worker_user(store, name)
        before = set(_grids_of(user.areas))
        # users.areas: the grids they work (non-grid areas are replaced).
        store.update("users", pd.DataFrame({"id": [user.id], "areas": [wanted]}))
        _write_worker_row(store, user.name, user.role, wanted)
        # Each grid's list: add to the new grids, drop from the grids given up.
        touched = sorted(before | set(wanted))
        current = _current_grids(store, touched)
        ids: list[int] = []
        lists: list[list[str]] = []
        for gid, code, crew in zip(current["id"], current["code"], current["workers"], strict=True):
            names = [str(w) for w in crew] if isinstance(crew, list | tuple) else []
            if code in wanted and user.name not in names:
                names.append(user.name)
            elif code not in wanted and user.name in names:
                names = [w for w in names if w != user.name]
            else:
                continue
            ids.append(int(gid))
            lists.append(names)
        if ids:
            store.update("grids", pd.DataFrame({"id": ids, "workers": lists}))
    return Worker(user.name, user.role, tuple(wanted), worker_area(wanted))


def _write_worker_row(store: Store, name: str, role: str, grids: list[str]) -> None:
    where = {"source": USER_SOURCE, "source_id": name}
    existing = store.read("workers", where=where)
    if not grids:
        if len(existing):
            store.delete("workers", where=where)
        return
    row = {"name": [name], "role": [role], "area_code": [worker_area(grids)], "grid_codes": [grids]}
    if len(existing):
        store.update("workers", pd.DataFrame({"id": [int(existing["id"].iloc[0])], **row}))
    else:
        store.write("workers", pd.DataFrame({**row, "source": [USER_SOURCE], "source_id": [name]}))


def _change(
    store: Store,
    name: str,
    grids: Sequence[str],
    *,
    principal: Principal,
    add: bool,
) -> Worker:
    from gridmap.security.audit import area_of, record

    codes = _clean_codes(grids)
    if not codes:
        raise BadInput("name at least one grid code", field="grids")
    if len(codes) > MAX_GRIDS:
        raise BadInput(f"at most {MAX_GRIDS} grids per call", field="grids")
    short = [c for c in codes if len(c) != GRID_CODE_LEN]
    if short:
        raise BadInput(f"grid codes have 15 digits, got {short[0]!r}", field="grids")
    _check_manager(principal, codes)
    with store.transaction():
        _lock(store)
        user = _worker_user(store, name)
        held = _grids_of(user.areas)
        if add:
            check_areas(store, codes, grids_only=True)
            wanted = sorted(set(held) | set(codes))
        else:
            missing = [c for c in codes if c not in held]
            if missing:
                raise NotFound(f"worker {user.name!r} does not work grid {missing[0]}")
            wanted = sorted(set(held) - set(codes))
        worker = register_worker(store, user.name, wanted)
        action = "worker.assign" if add else "worker.unassign"
        record(
            store, principal, action, f"users:{user.name}", {"grids": codes}, area=area_of(codes)
        )
    return worker


def assign_grids(
    store: Store, name: str, grids: Sequence[str], *, principal: Principal = SYSTEM
) -> Worker:
    """Give the grid worker *name* the *grids* (besides those they work already).

    Parameters
    ----------
    store : Store
        The store.
    name : str
        An existing user with the role ``grid_worker``.
    grids : sequence of str
        15-digit codes of grids in force.
    principal : Principal
        Who assigns (default: the trusted system): a role of
        :data:`MANAGER_ROLES` whose areas cover every grid.

    Returns
    -------
    Worker
        The grids the user works now and their area code.

    Raises
    ------
    gridmap.security.auth.PermissionDenied
        The caller may not assign, or a grid lies outside their areas.
    gridmap.common.errors.NotFound
        No user *name*.
    UnknownArea
        A grid code that names no grid in force.
    gridmap.common.errors.BadInput
        Malformed codes, or the user is not a grid worker.
    """
    return _change(store, name, grids, principal=principal, add=True)


def unassign_grids(
    store: Store, name: str, grids: Sequence[str], *, principal: Principal = SYSTEM
) -> Worker:
    """Take the *grids* from the grid worker *name* (``NotFound`` if they do not work one).

    A worker left without grids keeps their account but sees nothing and
    leaves the ``workers`` layer until assigned again.
    """
    return _change(store, name, grids, principal=principal, add=False)


def list_workers(
    store: Store, *, principal: Principal = SYSTEM, area: str | None = None
) -> list[WorkerRow]:
    """The workers of the caller's areas (optionally of *area*), by name.

    Rows of the ``workers`` layer with a grid (or area code) in the caller's
    areas, their grids narrowed to those areas; for a caller who sees the
    whole city, also grid-worker users who work no grid now. Names of
    workers who are not users, and phones, are masked unless the caller may
    unmask.

    Examples
    --------
    >>> from gridmap.storage import open_store
    >>> list_workers(open_store(":memory:", migrate=True))
    []
    """
    from gridmap.security.auth import list_users

    if principal.role not in MANAGER_ROLES:
        from gridmap.security.auth import PermissionDenied

        raise PermissionDenied(f"role {principal.role!r} may not list grid workers")
    scope = _clean_codes([area], field="area") if area is not None else []
    plain = principal.can_unmask

    def visible(code: str | None) -> bool:
        return bool(code) and principal.covers(code) and all(str(code).startswith(s) for s in scope)

    rows: list[WorkerRow] = []
    frame = store.read("workers")
    named: set[str] = set()
    for rec in frame.to_dict("records"):
        grids = tuple(str(g) for g in (rec.get("grid_codes") or ()) if visible(str(g)))
        if not grids and not visible(rec.get("area_code")):
            continue
        account = rec.get("source") == USER_SOURCE
        name = rec.get("name")
        if account:
            named.add(str(name))
        rows.append(
            WorkerRow(
                name if account or plain else mask_name(name),
                rec.get("role"),
                rec.get("area_code"),
                grids,
                rec.get("phone") if plain else mask_phone(rec.get("phone")),
                account,
            )
        )
    if principal.sees_everything and not scope:
        for user in list_users(store):
            if user.role == "grid_worker" and user.name not in named and not _grids_of(user.areas):
                rows.append(WorkerRow(user.name, user.role, None, (), None, True))
    rows.sort(key=lambda r: (not r.account, str(r.name)))
    return rows
