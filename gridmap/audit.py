"""The audit log (审计日志): an append-only record of who did what to which data.

Every module that touches personal data or changes the record calls
:func:`record`: logins (success and failure), reads of personal data,
unmasking, imports, grid changes, exports, event transitions. The log is
append-only: on PostGIS a trigger refuses UPDATE, DELETE and TRUNCATE for
everyone and the application role has no such privilege; both stores refuse
updates and deletes of the ``audit_log`` layer (``check_writable``).

Call :func:`record` inside the same transaction (or ``store.scoped`` block)
as the action it records, so that the action and its trace commit together.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping
from typing import Any

import pandas as pd

from gridmap.access import Principal
from gridmap.storage import Store

__all__ = ["ACTIONS", "read_log", "record"]

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


def record(
    store: Store,
    actor: Principal | str,
    action: str,
    target: str | None = None,
    detail: Mapping[str, Any] | None = None,
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

    Examples
    --------
    >>> from gridmap.storage import open_store
    >>> store = open_store(":memory:", migrate=True)
    >>> record(store, "wang", "login.failure", detail={"ip": "127.0.0.1"})
    >>> read_log(store)["action"].tolist()
    ['login.failure']
    """
    name = _text(actor.name if isinstance(actor, Principal) else str(actor))
    role = actor.role if isinstance(actor, Principal) else None
    text = _text(json.dumps(dict(detail or {}), ensure_ascii=False, default=str, sort_keys=True))
    target = None if target is None else _text(target)
    row = pd.DataFrame(
        {
            "source_key": [f"audit:{uuid.uuid4().hex}"],
            "at": [pd.Timestamp(dt.datetime.now(dt.UTC))],
            "actor": [name[:200]],
            "role": [role],
            "action": [action[:100]],
            "target": [None if target is None else target[:_MAX_TEXT]],
            "detail": [text[:_MAX_TEXT]],
        }
    )
    store.write("audit_log", row)


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
