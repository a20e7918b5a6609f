"""The event workflow: states, actions, time limits, overdue detection, supervision.

Canonical path (数字城管 GB/T 30428.8 and 综治 practice)::

    上报 reported → 受理 accept → 核实 verify → 立案 register → 派遣 dispatch
    → 处置 handle → 核查 inspect (pass → 结案 closed, fail → 返工 back to handling)

plus 自处理 ``self_handle`` (the grid worker resolves it on the spot: reported →
closed), 退回 ``reject``, 上报上级 ``escalate`` (to the town or city, which then
registers or dispatches it), 延期 ``extend`` (a request, granted by
``approve_extension`` or refused by ``deny_extension``), 督办 ``supervise``,
and ``merge`` / ``unmerge`` of duplicates (never deleted).

Every transition is recorded (who, when, from, to, note, photos) in the
``event_transitions`` layer, and changes the event's ``version``: a
compare-and-set on that version makes exactly one of several concurrent
transitions win, on both stores.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from gridmap.common.errors import BadInput, NotFound
from gridmap.events import webhooks
from gridmap.events.errors import (
    ConcurrentUpdate,
    IllegalTransition,
    NotPermitted,
    StaleVersion,
)
from gridmap.events.states import CLOSED_STATES, OPEN_STATES, STATES
from gridmap.events.taxonomy import Taxonomy, TimeLimits, default_taxonomy
from gridmap.security.access import Principal
from gridmap.storage import Store

__all__ = [
    "ACTIONS",
    "CLOSED_STATES",
    "OPEN_STATES",
    "STATES",
    "Action",
    "Transition",
    "TransitionRequest",
    "apply_transition",
    "history",
    "overdue",
    "read_event",
    "supervision_list",
    "transition",
]

_CENTRE = frozenset({"city_admin", "town_coordinator", "community_staff"})
_FIELD = _CENTRE | {"grid_worker"}
_SUPERVISORS = frozenset({"city_admin", "town_coordinator"})


@dataclass(frozen=True)
class Action:
    """One workflow action.

    Parameters
    ----------
    code : str
        Name used in the API (``accept``, ``self_handle`` …).
    name_zh, name_en : str
        Display names.
    sources : frozenset of str
        States the action may start from.
    target : str or None
        State it leads to; ``None`` keeps the state (extension, supervision)
        or depends on the request (``inspect``, ``unmerge``).
    roles : frozenset of str
        Roles allowed to take it.
    """

    code: str
    name_zh: str
    name_en: str
    sources: frozenset[str]
    target: str | None
    roles: frozenset[str]


def _a(
    code: str, zh: str, en: str, src: Sequence[str], target: str | None, roles: frozenset[str]
) -> Action:
    return Action(code, zh, en, frozenset(src), target, roles)


_EXTENDABLE = ("registered", "dispatched", "handling", "inspecting", "escalated")
ACTIONS: dict[str, Action] = {
    a.code: a
    for a in (
        _a("accept", "受理", "Accept", ["reported"], "accepted", _CENTRE),
        _a("verify", "核实", "Verify", ["accepted"], "verified", _FIELD),
        _a("register", "立案", "Register", ["verified", "escalated"], "registered", _CENTRE),
        _a("dispatch", "派遣", "Dispatch", ["registered", "escalated"], "dispatched", _CENTRE),
        _a("handle", "处置", "Handle", ["dispatched", "handling"], "inspecting", _FIELD),
        _a("inspect", "核查", "Inspect", ["inspecting"], None, _CENTRE),
        _a("close", "结案", "Close", ["inspecting"], "closed", _CENTRE),
        _a("rework", "返工", "Rework", ["inspecting"], "handling", _CENTRE),
        _a("self_handle", "自处理", "Self-handle", ["reported", "accepted"], "closed", _FIELD),
        _a(
            "reject",
            "退回",
            "Reject",
            ["reported", "accepted", "verified", "escalated"],
            "rejected",
            _CENTRE,
        ),
        _a(
            "escalate",
            "上报上级",
            "Escalate",
            ["reported", "accepted", "verified", "registered", "dispatched", "handling"],
            "escalated",
            _CENTRE,
        ),
        _a("extend", "申请延期", "Request extension", _EXTENDABLE, None, _FIELD),
        _a("approve_extension", "批准延期", "Approve extension", _EXTENDABLE, None, _SUPERVISORS),
        _a("deny_extension", "驳回延期", "Deny extension", _EXTENDABLE, None, _SUPERVISORS),
        _a("supervise", "督办", "Supervise", sorted(OPEN_STATES), None, _SUPERVISORS),
        _a("merge", "合并", "Merge", ["reported", "accepted", "verified"], "merged", _CENTRE),
        _a("unmerge", "取消合并", "Un-merge", ["merged"], None, _CENTRE),
    )
}

_ESCALATION_PARTY = {"town": "镇街综治中心 Town centre", "city": "市综治中心 City centre"}


@dataclass(frozen=True)
class TransitionRequest:
    """What a client asks: an action and its parameters.

    Parameters
    ----------
    action : str
        A key of :data:`ACTIONS`.
    note : str, optional
        Free text recorded with the transition.
    photos : tuple of str
        Media paths (before/after photos) recorded with the transition.
    result : str, optional
        ``pass`` or ``fail`` for ``inspect``.
    to : str, optional
        ``town`` or ``city`` for ``escalate``.
    hours : float, optional
        Requested extension for ``extend``.
    target : int, optional
        The original event for ``merge``.
    responsible : str, optional
        Responsible party named at ``dispatch``.
    assignees : tuple of str, optional
        Workers named at ``dispatch``.
    """

    action: str
    note: str | None = None
    photos: tuple[str, ...] = ()
    result: str | None = None
    to: str | None = None
    hours: float | None = None
    target: int | None = None
    responsible: str | None = None
    assignees: tuple[str, ...] | None = None

    @classmethod
    def from_json(cls, body: Any) -> TransitionRequest:
        """Validate a JSON body; ``BadInput`` names the offending field.

        Examples
        --------
        >>> TransitionRequest.from_json({"action": "inspect", "result": "fail"}).result
        'fail'
        """
        if not isinstance(body, Mapping):
            raise BadInput("the transition body must be a JSON object", field="body")
        known = {
            "action",
            "note",
            "photos",
            "result",
            "to",
            "hours",
            "target",
            "responsible",
            "assignees",
        }
        unknown = sorted(set(body) - known)
        if unknown:
            raise BadInput(
                f"unknown transition field {unknown[0][:60]!r}; fields: {', '.join(sorted(known))}",
                field=unknown[0][:60],
            )
        action = body.get("action")
        if not isinstance(action, str) or action not in ACTIONS:
            raise BadInput(
                f"unknown action {repr(action)[:60]}; actions: {', '.join(ACTIONS)}", field="action"
            )
        note = _opt_text(body.get("note"), "note", 2000)
        photos = tuple(_text_list(body.get("photos"), "photos"))
        result = body.get("result")
        if action == "inspect" and result not in ("pass", "fail"):
            raise BadInput("inspect needs result 'pass' or 'fail'", field="result")
        to = body.get("to")
        if action == "escalate":
            to = "town" if to is None else to
            if to not in _ESCALATION_PARTY:
                raise BadInput("escalate 'to' must be 'town' or 'city'", field="to")
        hours = body.get("hours")
        if action == "extend":
            if isinstance(hours, bool) or not isinstance(hours, int | float):
                raise BadInput("extend needs 'hours', a number of hours", field="hours")
            if not np.isfinite(hours) or not 0 < hours <= 24 * 90:
                raise BadInput("extension 'hours' must be between 0 and 2160", field="hours")
        target = body.get("target")
        if action == "merge" and (
            isinstance(target, bool) or not isinstance(target, int) or not 0 < target < 2**63
        ):
            raise BadInput("merge needs 'target', the id of the original event", field="target")
        assignees = body.get("assignees")
        return cls(
            action=action,
            note=note,
            photos=photos,
            result=result if isinstance(result, str) else None,
            to=to if isinstance(to, str) else None,
            hours=float(hours) if action == "extend" and hours is not None else None,
            target=int(target) if action == "merge" and target is not None else None,
            responsible=_opt_text(body.get("responsible"), "responsible", 200),
            assignees=None if assignees is None else tuple(_text_list(assignees, "assignees")),
        )


def _opt_text(value: Any, name: str, size: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadInput(f"{name} must be a string", field=name)
    if len(value) > size:
        raise BadInput(f"{name} is longer than {size} characters", field=name)
    return value


def _text_list(value: Any, name: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and len(v) <= 200 for v in value):
        raise BadInput(f"{name} must be a list of strings", field=name)
    if len(value) > 20:
        raise BadInput(f"{name} has more than 20 entries", field=name)
    return list(value)


@dataclass(frozen=True)
class Transition:
    """What a transition changes: the new event columns and the record to keep."""

    changes: dict[str, Any]
    record: dict[str, Any]
    version: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def _ts(value: Any) -> pd.Timestamp | None:
    if value is None or value is pd.NaT or (isinstance(value, float) and np.isnan(value)):
        return None
    ts = pd.Timestamp(value)
    if pd.isna(ts):
        return None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _int(value: Any) -> int:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return 0
    return int(value)


def apply_transition(
    event: Mapping[str, Any],
    request: TransitionRequest,
    *,
    actor: Principal,
    now: pd.Timestamp,
    taxonomy: Taxonomy | None = None,
    previous_status: str | None = None,
) -> Transition:
    """Compute what *request* does to *event* (pure: nothing is stored).

    Parameters
    ----------
    event : mapping
        The event's current columns (``status``, ``version``, ``urgency`` …).
    request : TransitionRequest
        The action asked for.
    actor : Principal
        Who acts (role checked against the action).
    now : Timestamp
        The time of the transition (UTC).
    taxonomy : Taxonomy, optional
        Time limits by category and urgency (default taxonomy when omitted).
    previous_status : str, optional
        For ``unmerge``: the state the event had before it was merged.

    Returns
    -------
    Transition
        ``changes`` (event columns to set, ``version`` included) and ``record``
        (a row of ``event_transitions``).

    Raises
    ------
    IllegalTransition
        The action is not allowed from the current state.
    NotPermitted
        The actor's role may not take it.

    Examples
    --------
    >>> from gridmap.security.access import Principal
    >>> ev = {"id": 1, "status": "reported", "version": 1, "category": "dispute",
    ...       "urgency": "normal"}
    >>> t = apply_transition(ev, TransitionRequest("accept"),
    ...                      actor=Principal("li", "community_staff"),
    ...                      now=pd.Timestamp("2026-11-01T08:00Z"))
    >>> t.changes["status"], t.changes["version"]
    ('accepted', 2)
    """
    tax = taxonomy or default_taxonomy()
    action = ACTIONS.get(request.action)
    if action is None:
        raise BadInput(f"unknown action {request.action!r}", field="action")
    status = str(event.get("status") or "reported")
    _check_allowed(action, status, actor)
    now = _ts(now) or pd.Timestamp.now(tz="UTC")
    version = _int(event.get("version")) + 1
    urgency = str(event.get("urgency") or "normal")
    limits = _limits(tax, event)
    changes: dict[str, Any] = {"version": version, "updated_at": now}
    details: dict[str, Any] = {}
    target = _target_status(
        action,
        request,
        event,
        status=status,
        previous_status=previous_status,
        changes=changes,
        details=details,
        now=now,
    )
    _action_changes(action, request, event, now=now, changes=changes, details=details)
    if target is not None and target != status:
        changes["status"] = target
        step_hours = limits.step(target, urgency)
        changes["step_due_at"] = (
            None if step_hours is None else now + pd.Timedelta(hours=step_hours)
        )
    if action.code == "unmerge" and target is not None:
        details["restored"] = target
    to_status = str(changes.get("status", status))
    record = {
        "event_id": _int(event.get("id")),
        "seq": version,
        "action": action.code,
        "from_status": status,
        "to_status": to_status,
        "actor": actor.name,
        "actor_role": actor.role,
        "at": now,
        "note": request.note,
        "photos": list(request.photos) or None,
        "details": json.dumps(details, ensure_ascii=False, sort_keys=True) if details else None,
    }
    return Transition(changes=changes, record=record, version=version)


def _check_allowed(action: Action, status: str, actor: Principal) -> None:
    """Raise unless *actor*'s role may take *action* from *status*."""
    if actor.role not in action.roles:
        raise NotPermitted(
            f"role {actor.role!r} may not {action.code} ({action.name_zh}); "
            f"allowed: {', '.join(sorted(action.roles))}"
        )
    if status not in action.sources:
        raise IllegalTransition(
            f"cannot {action.code} ({action.name_zh}) an event that is {status!r} "
            f"({STATES.get(status, (status,))[0]}); "
            f"allowed from: {', '.join(sorted(action.sources))}"
        )


def _limits(tax: Taxonomy, event: Mapping[str, Any]) -> TimeLimits:
    """The time limits of the event's category (the first category's when unknown)."""
    category = str(event.get("category") or "")
    subcategory = event.get("subcategory") or None
    known = category in tax.categories and (
        subcategory is None or subcategory in tax.categories[category].subcategories
    )
    return tax.limits(category, subcategory) if known else tax.limits(next(iter(tax.categories)))


def _target_status(
    action: Action,
    request: TransitionRequest,
    event: Mapping[str, Any],
    *,
    status: str,
    previous_status: str | None,
    changes: dict[str, Any],
    details: dict[str, Any],
    now: pd.Timestamp,
) -> str | None:
    """The state *action* leads to, recording rework and closure in *changes*."""
    target = action.target
    if action.code == "inspect":
        target = "closed" if request.result == "pass" else "handling"
        details["result"] = request.result
    if action.code == "unmerge":
        target = previous_status if previous_status in OPEN_STATES else "reported"
        changes["duplicate_of"] = None
    if target == "handling" and status == "inspecting":
        changes["rework_count"] = _int(event.get("rework_count")) + 1
    if target == "closed":
        changes["closed_at"] = now
        changes["self_handled"] = action.code == "self_handle"
    return target


def _action_changes(
    action: Action,
    request: TransitionRequest,
    event: Mapping[str, Any],
    *,
    now: pd.Timestamp,
    changes: dict[str, Any],
    details: dict[str, Any],
) -> None:
    """Record in *changes* and *details* what *action* sets besides the state."""
    if action.code == "escalate":
        changes["escalated_to"] = request.to
        changes["responsible"] = _ESCALATION_PARTY[request.to or "town"]
        details["to"] = request.to
    if action.code == "dispatch":
        if request.responsible:
            changes["responsible"] = request.responsible
        if request.assignees is not None:
            changes["assigned_to"] = list(request.assignees)
    if action.code == "extend":
        if _pending(event) > 0:
            raise IllegalTransition("an extension request is already waiting for approval")
        changes["pending_extension_hours"] = request.hours
        details["hours"] = request.hours
    if action.code in ("approve_extension", "deny_extension"):
        changes.update(_decide_extension(action, event, now=now))
        details["hours"] = _pending(event)
    if action.code == "supervise":
        changes["supervised_at"] = now
    if action.code == "merge":
        if request.target == _int(event.get("id")):
            raise BadInput("an event cannot be merged into itself", field="target")
        changes["duplicate_of"] = request.target
        details["target"] = request.target


def _decide_extension(
    action: Action, event: Mapping[str, Any], *, now: pd.Timestamp
) -> dict[str, Any]:
    """The columns approving or denying the pending extension sets (approval moves deadlines)."""
    hours = _pending(event)
    if hours <= 0:
        raise IllegalTransition(f"no extension request to {action.code.split('_')[0]}")
    changes: dict[str, Any] = {"pending_extension_hours": None}
    if action.code == "approve_extension":
        delta = pd.Timedelta(hours=hours)
        changes["extension_count"] = _int(event.get("extension_count")) + 1
        due, step = _ts(event.get("due_at")), _ts(event.get("step_due_at"))
        changes["due_at"] = (due or now) + delta
        changes["step_due_at"] = (step or now) + delta
    return changes


def _pending(event: Mapping[str, Any]) -> float:
    v = event.get("pending_extension_hours")
    if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
        return 0.0
    return float(v)


def read_event(store: Store, event_id: int, *, principal: Principal) -> dict[str, Any]:
    """One event as a dict (geometry included) if the principal may see it.

    An event outside the principal's area is reported as not found, so ids
    reveal nothing about other grids.

    Examples
    --------
    >>> from gridmap.storage import open_store
    >>> from gridmap.security.access import SYSTEM
    >>> read_event(open_store(":memory:", migrate=True), 1, principal=SYSTEM)
    Traceback (most recent call last):
    gridmap.common.errors.NotFound: event 1 not found
    """
    frame = store.read("events", ids=[int(event_id)])
    if frame.empty:
        raise NotFound(f"event {event_id} not found")
    row: dict[str, Any] = {str(k): v for k, v in frame.iloc[0].to_dict().items()}
    code = row.get("grid_code") or row.get("community_code") or row.get("town_code")
    if not principal.covers(code if isinstance(code, str) else None):
        raise NotFound(f"event {event_id} not found")
    return row


def history(store: Store, event_id: int) -> pd.DataFrame:
    """The recorded transitions of an event, oldest first.

    Examples
    --------
    >>> from gridmap.storage import open_store
    >>> len(history(open_store(":memory:", migrate=True), 1))
    0
    """
    frame = store.read("event_transitions", where={"event_id": int(event_id)})
    return frame.sort_values("seq", kind="stable").reset_index(drop=True)


def transition(
    store: Store,
    event_id: int,
    request: TransitionRequest,
    *,
    principal: Principal,
    expected_version: int | None = None,
    taxonomy: Taxonomy | None = None,
    now: pd.Timestamp | None = None,
) -> dict[str, Any]:
    """Apply *request* to the stored event and record it; return the updated event.

    The event's ``version`` is compared and set in one statement inside one
    transaction with the history record, so of several concurrent
    transitions exactly one wins; the others get :class:`StaleVersion`
    (when they named a version) or :class:`ConcurrentUpdate`.

    Parameters
    ----------
    store : Store
        Where the event lives.
    event_id : int
        The event.
    request : TransitionRequest
        The action.
    principal : Principal
        Who acts; must cover the event's grid.
    expected_version : int, optional
        The version the client saw (``If-Match``); a different current
        version raises :class:`StaleVersion`.
    taxonomy : Taxonomy, optional
        Time limits (default taxonomy).
    now : Timestamp, optional
        Time of the transition (default: the current time).

    Examples
    --------
    >>> from gridmap.storage import open_store
    >>> from gridmap.security.access import SYSTEM
    >>> transition(open_store(":memory:", migrate=True), 7, TransitionRequest("accept"),
    ...            principal=SYSTEM)
    Traceback (most recent call last):
    gridmap.common.errors.NotFound: event 7 not found
    """
    when = _ts(now) or pd.Timestamp.now(tz="UTC")
    event = read_event(store, event_id, principal=principal)
    current = _int(event.get("version"))
    if expected_version is not None and expected_version != current:
        raise StaleVersion(
            f"event {event_id} is at version {current}, not {expected_version}: reload it",
            current=current,
        )
    previous = None
    if request.action == "unmerge":
        past = history(store, event_id)
        merges = past[past["action"] == "merge"] if not past.empty else past
        previous = str(merges["from_status"].iloc[-1]) if len(merges) else None
    if request.action == "merge" and request.target is not None:
        original = read_event(store, request.target, principal=principal)
        if original.get("status") == "merged":
            raise IllegalTransition(
                f"event {request.target} is itself merged; merge into "
                f"{_int(original.get('duplicate_of'))} instead"
            )
    outcome = apply_transition(
        event, request, actor=principal, now=when, taxonomy=taxonomy, previous_status=previous
    )
    guard: dict[str, Any] = {"version": None if event.get("version") is None else current}
    with store.transaction():
        changes = pd.DataFrame([{"id": int(event_id), **outcome.changes}])
        changed = store.update("events", changes, where=guard)
        if changed != 1:
            if expected_version is not None:
                raise StaleVersion(
                    f"event {event_id} changed while this transition was applied: reload it",
                    current=current + 1,
                )
            raise ConcurrentUpdate(
                f"event {event_id} changed while this transition was applied; retry"
            )
        record = pd.DataFrame([outcome.record])
        record["source_key"] = f"event:{int(event_id)}:v{outcome.version}"
        if store.write("event_transitions", record).inserted != 1:
            raise ConcurrentUpdate(f"event {event_id} version {outcome.version} already recorded")
        # Webhook outbox, in this transaction: the change and its announcement commit together.
        webhooks.enqueue(store, {**event, **outcome.changes}, outcome.record)
    return read_event(store, event_id, principal=principal)


def overdue(events: pd.DataFrame, *, now: pd.Timestamp) -> pd.DataFrame:
    """Overdue flags of events, aligned to the input index.

    Returns
    -------
    DataFrame
        ``open`` (bool), ``overdue`` (open and past ``due_at``),
        ``step_overdue`` (open and past ``step_due_at``) and ``hours_late``
        (hours past the earlier missed limit, 0 when none).

    Examples
    --------
    >>> df = pd.DataFrame({"status": ["handling", "closed"],
    ...                    "due_at": pd.to_datetime(["2026-11-01", "2026-11-01"], utc=True),
    ...                    "step_due_at": pd.to_datetime([None, None], utc=True)})
    >>> overdue(df, now=pd.Timestamp("2026-11-02", tz="UTC"))["overdue"].tolist()
    [True, False]
    """
    when = _ts(now) or pd.Timestamp.now(tz="UTC")
    idx = events.index
    status = events["status"] if "status" in events else pd.Series("", index=idx)
    is_open = status.isin(OPEN_STATES).to_numpy(dtype=bool)

    def col(name: str) -> pd.Series:
        if name not in events:
            return pd.Series(pd.NaT, index=idx, dtype="datetime64[us, UTC]")
        return pd.to_datetime(events[name], utc=True)

    due, step = col("due_at"), col("step_due_at")
    late_total = ((when - due).dt.total_seconds() / 3600.0).to_numpy(dtype=float, na_value=np.nan)
    late_step = ((when - step).dt.total_seconds() / 3600.0).to_numpy(dtype=float, na_value=np.nan)
    over = is_open & (late_total > 0)
    over_step = is_open & (late_step > 0)
    late = np.fmax(np.where(over, late_total, 0.0), np.where(over_step, late_step, 0.0))
    return pd.DataFrame(
        {"open": is_open, "overdue": over, "step_overdue": over_step, "hours_late": late},
        index=idx,
    )


def supervision_list(events: pd.DataFrame, *, now: pd.Timestamp) -> pd.DataFrame:
    """The 督办 list: open events a leader supervised or past a time limit, the latest first.

    An open event is listed when a leader supervised it (``supervise``, which
    sets ``supervised_at``), when it is past its total time limit
    (``overdue``) or past its step's limit (``step_overdue``); ``reasons``
    says which, in that order. Those past a limit come first, the most
    hours late first; then the ones only supervised, the latest supervised
    first.

    Returns
    -------
    DataFrame
        The listed rows of *events* with ``supervised`` (bool), ``overdue``,
        ``step_overdue``, ``hours_late`` and ``reasons`` (list of str).

    Examples
    --------
    >>> df = pd.DataFrame({"id": [1, 2, 3], "status": ["handling", "reported", "handling"],
    ...                    "due_at": pd.to_datetime(["2026-11-01", "2026-12-01", "2026-12-01"],
    ...                                             utc=True),
    ...                    "step_due_at": pd.to_datetime(["2026-11-01", "2026-11-03", None],
    ...                                                  utc=True),
    ...                    "supervised_at": pd.to_datetime([None, None, "2026-11-01T12:00Z"])})
    >>> out = supervision_list(df, now=pd.Timestamp("2026-11-02", tz="UTC"))
    >>> out["id"].tolist(), out["reasons"].tolist()
    ([1, 3], [['overdue', 'step_overdue'], ['supervised']])
    """
    flags = overdue(events, now=now)
    if "supervised_at" in events:
        marked = pd.to_datetime(events["supervised_at"], utc=True).notna().to_numpy(dtype=bool)
    else:
        marked = np.zeros(len(events), dtype=bool)
    supervised = marked & flags["open"].to_numpy(dtype=bool)
    late = (flags["overdue"] | flags["step_overdue"]).to_numpy(dtype=bool)
    keep = late | supervised
    out = events.loc[keep].copy()
    out["supervised"] = supervised[keep]
    for name in ("overdue", "step_overdue", "hours_late"):
        out[name] = flags.loc[keep, name].to_numpy()
    out["reasons"] = [
        [r for r, on in (("supervised", s), ("overdue", o), ("step_overdue", so)) if on]
        for s, o, so in zip(out["supervised"], out["overdue"], out["step_overdue"], strict=True)
    ]
    when = (
        pd.to_datetime(out["supervised_at"], utc=True)
        if "supervised_at" in out
        else pd.Series(pd.NaT, index=out.index, dtype="datetime64[ns, UTC]")
    )
    order = pd.DataFrame(
        {"late": out["hours_late"].to_numpy(dtype=float), "at": when.to_numpy()}, index=out.index
    ).sort_values(["late", "at"], ascending=[False, False], na_position="last", kind="stable")
    listed: pd.DataFrame = out.loc[order.index]
    return listed
