"""The audit log (审计日志): an append-only record of who did what to which data.

Every module that touches personal data or changes the record calls
:func:`record`: logins (success and failure), reads of personal data,
unmasking, imports, grid changes, exports, event transitions. The log is
append-only: on PostGIS a trigger refuses UPDATE, DELETE and TRUNCATE for
everyone and the application role has no such privilege; both stores refuse
updates and deletes of the ``audit_log`` layer (``check_writable``).

Call :func:`record` inside the same transaction (or ``store.scoped`` block)
as the action it records, so that the action and its trace commit together.

Each row carries the area code (``area_code``: a grid, community or town code)
of what it concerns when the caller knows it (migration 030). On PostGIS a
scoped (non-trusted) connection reads only the rows of its areas; rows without
an area (logins, user administration) only with every area in scope.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import pandas as pd

from gridmap.security.access import Principal
from gridmap.storage import Store

__all__ = ["ACTIONS", "AuditEntry", "area_of", "read_log", "record", "record_many"]

#: Actions in use (free text is allowed; these are the ones gridmap writes).
ACTIONS: tuple[str, ...] = (
    "login.success",
    "login.failure",
    "token.issue",
    "api_key.issue",
    "user.add",
    "user.disable",
    "personal.read",
    "personal.unmask",
    "personal.create",
    "personal.refused",
    "personal.export",
    "import",
    "export",
    "grid.change",
    "event.transition",
    "worker.assign",
    "worker.unassign",
)

_MAX_TEXT = 2_000


def _text(value: str) -> str:
    """*value* storable as text in both stores: NUL characters and lone surrogates replaced."""
    value = value.replace("\x00", "\ufffd")
    return value.encode("utf-8", "replace").decode("utf-8")


class AuditEntry(NamedTuple):
    """One row for :func:`record_many`: what it concerns, its area and facts."""

    target: str | None
    area: str | None = None
    detail: Mapping[str, Any] | None = None


def _area(value: str | None) -> str | None:
    """A grid/community/town code to store, or ``None`` (blank or not a code)."""
    if value is None:
        return None
    text = str(value).strip()
    return text[:15] if text.isdigit() else None


#: Lengths of the codes of the hierarchy: county, town, community, grid.
_LEVELS = (15, 12, 9, 6)


def area_of(codes: Iterable[Any]) -> str | None:
    """The narrowest code (grid, community, town, county) covering all *codes*.

    What an entry about several rows records as its area: their grid when
    they share one, else their community, town or county; ``None`` when
    there is no code or nothing in common.

    Examples
    --------
    >>> area_of(["370285001002003", "370285001002003"])
    '370285001002003'
    >>> area_of(["370285001002003", "370285001002007"])
    '370285001002'
    >>> area_of(["370285001002003", "110101001001001"]), area_of([]), area_of([None])
    (None, None, None)
    """
    clean = {str(c) for c in codes if isinstance(c, str) and c.isdigit()}
    if not clean:
        return None
    for size in _LEVELS:
        heads = {c[:size] for c in clean if len(c) >= size}
        if len(heads) == 1 and all(len(c) >= size for c in clean):
            return heads.pop()
    return None


def record(
    store: Store,
    actor: Principal | str,
    action: str,
    target: str | None = None,
    detail: Mapping[str, Any] | None = None,
    *,
    area: str | None = None,
) -> None:
    """Append one entry to the audit log.

    Parameters
    ----------
    store : Store
        Where the log lives.
    actor : Principal or str
        Who acted (a principal, or a name such as an unknown login attempt's).
    action : str
        What was done, e.g. ``"personal.unmask"`` (see :data:`ACTIONS`).
    target : str, optional
        What it was done to, e.g. ``"residents:12,13"``.
    detail : mapping, optional
        JSON-serialisable facts (client address, counts, reasons). Never put
        personal data itself here: only ids and masked forms.
    area : str, optional
        Grid, community or town code of what the entry concerns (stored in
        ``area_code``; anything but digits is left out).

    Examples
    --------
    >>> from gridmap.storage import open_store
    >>> store = open_store(":memory:", migrate=True)
    >>> record(store, "wang", "login.failure", detail={"ip": "127.0.0.1"})
    >>> record(store, "wang", "personal.read", "households:1", area="990100001001003")
    >>> read_log(store)[["action", "area_code"]].values.tolist()
    [['login.failure', None], ['personal.read', '990100001001003']]
    """
    record_many(store, actor, action, [AuditEntry(target, area, detail)])


def record_many(
    store: Store, actor: Principal | str, action: str, entries: Sequence[AuditEntry]
) -> int:
    """Append one entry per item of *entries* (same actor and action) in one write.

    Returns
    -------
    int
        Number of rows written.

    Examples
    --------
    >>> from gridmap.storage import open_store
    >>> store = open_store(":memory:", migrate=True)
    >>> record_many(store, "li", "personal.unmask",
    ...             [AuditEntry("events:1", "990100001001003"), AuditEntry("events:2")])
    2
    >>> read_log(store)["target"].tolist()
    ['events:1', 'events:2']
    """
    if not entries:
        return 0
    name = _text(actor.name if isinstance(actor, Principal) else str(actor))[:200]
    role = actor.role if isinstance(actor, Principal) else None
    now = pd.Timestamp(dt.datetime.now(dt.UTC))
    rows = []
    for entry in entries:
        text = json.dumps(dict(entry.detail or {}), ensure_ascii=False, default=str, sort_keys=True)
        rows.append(
            {
                "source_key": f"audit:{uuid.uuid4().hex}",
                "at": now,
                "actor": name,
                "role": role,
                "action": action[:100],
                "target": None if entry.target is None else _text(entry.target)[:_MAX_TEXT],
                "detail": _text(text)[:_MAX_TEXT],
                "area_code": _area(entry.area),
            }
        )
    frame = pd.DataFrame(rows)
    frame["area_code"] = frame["area_code"].astype(object)
    store.write("audit_log", frame)
    return len(rows)


def read_log(
    store: Store,
    *,
    action: str | None = None,
    actor: str | None = None,
    limit: int | None = 1_000,
) -> pd.DataFrame:
    """Entries of the audit log in order, optionally filtered by action and actor.

    Examples
    --------
    >>> from gridmap.storage import open_store
    >>> store = open_store(":memory:", migrate=True)
    >>> len(read_log(store))
    0
    """
    where: dict[str, Any] = {}
    if action is not None:
        where["action"] = action
    if actor is not None:
        where["actor"] = actor
    frame = store.read("audit_log", where=where or None, limit=limit)
    return pd.DataFrame(frame)
