"""What each role may read about events, surface by surface: one table (事件信息披露规则).

Every read of events — ``/events`` and ``/events/{id}``, the transitions,
the supervision list (督办), Open311 requests, ``/kpis`` (and
``/kpis?by=worker``), the OGC items of the ``events`` layer and its vector
tiles — asks this module what the caller's role may see. Area scoping is
applied elsewhere (:class:`gridmap.security.access.Principal`); this table decides
the *shape* of what is inside the area.

Levels of access (:data:`ACCESS_LEVELS`):

``full``
    As the staff have always seen it: every field, reporter and contact
    masked (张*, 138****1234) by :func:`gridmap.events.intake.event_document`.
``masked``
    For other systems (e.g. the 12345 hotline with an API key): the events
    of their area with description and location, but reporter and contact
    dropped and worker names masked (:func:`gridmap.security.privacy.mask_name`).
    Map layers cannot mask a list, so items and tiles drop worker names.
``coarse``
    For map viewers (leaders' big screen, read only): grid-level facts only —
    category, status, grid / community / town codes, times and counters —
    with no description, no point, no photos, no notes and no names.
    Items and tiles are therefore not served to them (a feature *is* a point).
``aggregates``
    Counts and rates only (``/kpis`` by grid, community, town, category or
    period), small counts hidden (:func:`protect_kpis`: 1–2 shown as ``"<3"``).
``none``
    Not served: ``403`` for a signed-in caller, ``404`` for the OGC
    collection and its tiles (the layer is not listed), ``401`` for a caller
    without credentials on routes that need a sign-in.

The table (:data:`TABLE`) is rendered to ``docs/roles.md`` by
:func:`markdown_table`; a test compares both, so they cannot drift.

Reporter and contact (查看明文): wherever the level is ``full`` they are masked
by :data:`CONTACT_MASKS` (:func:`contacts` for one event, :func:`contact_frame`
for the OGC items and exports). ``unmask=true`` shows them in clear only to
:data:`UNMASK_ROLES` whose account holds the unmask grant, for events of their
area (:func:`check_unmask`; else 403 naming the permission ``unmask``), and
:func:`audit_unmask` writes one audit row per event with its grid code. More
than :data:`UNMASK_MAX_WITHOUT_REASON` events at once need a reason; tiles
never unmask. :func:`unmask_markdown_table` renders who may, for ``docs/roles.md``.

Examples
--------
>>> from gridmap.security.access import Principal
>>> rule("viewer", "events").access
'coarse'
>>> doc = {"id": 1, "description": "井盖缺失", "assigned_to": ["王小明"], "status": "reported"}
>>> shape(doc, rule("viewer", "events"))
{'id': 1, 'status': 'reported'}
>>> shape(doc, rule("external_system", "events"))["assigned_to"]
['王**']
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

import pandas as pd

from gridmap.assessment.disclosure import protect_table, shown
from gridmap.common.errors import BadInput
from gridmap.common.model import ROLES
from gridmap.common.settings import DEFAULT_MIN_COUNT
from gridmap.events.kpis import KPI_COUNTS
from gridmap.security import audit
from gridmap.security.access import Principal
from gridmap.security.auth import PermissionDenied
from gridmap.security.privacy import mask_name, mask_phone
from gridmap.storage import Store

__all__ = [
    "ACCESS_LEVELS",
    "AUDIENCES",
    "CONTACT_FIELDS",
    "CONTACT_MASKS",
    "EXACT_FIELDS",
    "SURFACES",
    "TABLE",
    "UNMASK_MAX_WITHOUT_REASON",
    "UNMASK_PERMISSION",
    "UNMASK_ROLES",
    "WORKER_FIELDS",
    "Access",
    "DisclosureDenied",
    "Rule",
    "audience_of",
    "audit_unmask",
    "cell",
    "check_unmask",
    "contact_frame",
    "contacts",
    "markdown_table",
    "may_unmask",
    "protect_kpis",
    "require",
    "roles_seeing",
    "rule",
    "rule_for",
    "shape",
    "unmask_cell",
    "unmask_markdown_table",
]

Access = Literal["full", "masked", "coarse", "aggregates", "none"]

#: Levels of access with their zh-CN and English names.
ACCESS_LEVELS: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "full": ("完整(联系人脱敏)", "full"),
        "masked": ("脱敏字段", "masked fields"),
        "coarse": ("仅网格级", "grid-level only"),
        "aggregates": ("仅汇总", "aggregates only"),
        "none": ("不提供", "not served"),
    }
)

#: Who reads: the roles of :data:`gridmap.common.model.ROLES` and callers without credentials.
AUDIENCES: Mapping[str, tuple[str, str]] = MappingProxyType(
    {**ROLES, "anonymous": ("匿名访问", "Anonymous (no credentials)")}
)

#: Where events are read, with zh-CN and English names and the routes.
SURFACES: Mapping[str, tuple[str, str, str]] = MappingProxyType(
    {
        "events": ("事件列表/详情", "Event list / detail", "`/events`, `/events/{id}`"),
        "transitions": ("流转记录", "Transitions", "`/events/{id}/transitions`"),
        "supervision": ("督办清单", "Supervision list", "`/events/supervision`"),
        "open311": (
            "Open311 查询",
            "Open311 read",
            "`/open311/v2/requests.json`, `/open311/v2/requests/{id}.json`",
        ),
        "kpis": ("考核指标", "KPIs", "`/kpis`"),
        "kpis_by_worker": ("网格员指标", "KPIs by worker", "`/kpis?by=worker`"),
        "items": ("OGC 事件要素", "OGC items of events", "`/collections/events/items[/{id}]`"),
        "tiles": (
            "事件矢量瓦片",
            "Event tiles",
            "`/collections/events/tiles/WebMercatorQuad/{z}/{y}/{x}`",
        ),
    }
)

#: Personal data of the reporter: never shown outside staff roles.
CONTACT_FIELDS: frozenset[str] = frozenset({"reporter", "contact"})
#: Names of workers and users (assignees, transition actors, the reporting
#: account): masked or dropped.
WORKER_FIELDS: frozenset[str] = frozenset({"assigned_to", "actor", "reported_by"})
#: What pins an event to a place or a person beyond its grid: free text, points,
#: photos, notes, GPS accuracy and the reporter's own grid.
EXACT_FIELDS: frozenset[str] = frozenset(
    {
        "description",
        "location",
        "lat",
        "long",
        "media_url",
        "photos",
        "note",
        "accuracy_m",
        "reporter_grid_code",
    }
)

_STAFF = ("city_admin", "town_coordinator", "community_staff", "grid_worker")
_READS = ("events", "transitions", "supervision", "open311")


def _row(event: Access, kpis: Access, by_worker: Access, layer: Access) -> dict[str, Access]:
    out: dict[str, Access] = {s: event for s in _READS}
    out.update(kpis=kpis, kpis_by_worker=by_worker, items=layer, tiles=layer)
    return out


#: The policy: access level by audience, then surface. Items and tiles follow
#: the event reads, except that grid-level-only audiences get no points at all.
TABLE: Mapping[str, Mapping[str, Access]] = MappingProxyType(
    {
        **{role: MappingProxyType(_row("full", "full", "full", "full")) for role in _STAFF},
        "viewer": MappingProxyType(_row("coarse", "aggregates", "none", "none")),
        "external_system": MappingProxyType(_row("masked", "aggregates", "none", "masked")),
        "anonymous": MappingProxyType(_row("none", "none", "none", "none")),
    }
)

#: Surfaces that are the OGC layer: refused as an unknown collection (404).
_LAYER_SURFACES = frozenset({"items", "tiles"})


class DisclosureDenied(PermissionDenied):
    """The caller's role may not read this surface at all (403)."""


@dataclass(frozen=True)
class Rule:
    """How one audience reads one surface.

    Parameters
    ----------
    access : str
        One of :data:`ACCESS_LEVELS`.
    dropped : frozenset of str
        Fields left out of the answer.
    masked : frozenset of str
        Fields holding names, shown masked (张*).
    """

    access: Access
    dropped: frozenset[str] = frozenset()
    masked: frozenset[str] = frozenset()

    @property
    def allowed(self) -> bool:
        """Whether the surface is served at all."""
        return self.access != "none"


def audience_of(principal: Principal) -> str:
    """The row of :data:`TABLE` for *principal* (its role, or ``anonymous``).

    A caller without credentials is the viewer principal named ``anonymous``
    (``api.security.ANONYMOUS``).

    Examples
    --------
    >>> audience_of(Principal("anonymous", "viewer")), audience_of(Principal("v", "viewer"))
    ('anonymous', 'viewer')
    """
    if principal.role == "viewer" and principal.name == "anonymous":
        return "anonymous"
    return principal.role


def _check(audience: str, surface: str) -> None:
    if audience not in TABLE:
        raise KeyError(f"unknown audience {audience!r}; one of {', '.join(TABLE)}")
    if surface not in SURFACES:
        raise KeyError(f"unknown surface {surface!r}; one of {', '.join(SURFACES)}")


def rule(audience: str, surface: str) -> Rule:
    """The rule for *audience* (a role or ``anonymous``) reading *surface*.

    Examples
    --------
    >>> sorted(rule("external_system", "items").dropped & WORKER_FIELDS)
    ['actor', 'assigned_to', 'reported_by']
    >>> rule("city_admin", "events") == Rule("full")
    True
    """
    _check(audience, surface)
    access = TABLE[audience][surface]
    if access == "masked":
        if surface in _LAYER_SURFACES:  # a layer property cannot be masked: dropped
            return Rule(access, dropped=CONTACT_FIELDS | WORKER_FIELDS)
        return Rule(access, dropped=CONTACT_FIELDS, masked=WORKER_FIELDS)
    if access == "coarse":
        return Rule(access, dropped=CONTACT_FIELDS | WORKER_FIELDS | EXACT_FIELDS)
    return Rule(access)


def rule_for(principal: Principal, surface: str) -> Rule:
    """The rule for *principal* reading *surface* (see :func:`audience_of`)."""
    return rule(audience_of(principal), surface)


def require(principal: Principal, surface: str) -> Rule:
    """The rule for *principal* on *surface*; :class:`DisclosureDenied` when not served.

    Examples
    --------
    >>> require(Principal("v", "viewer"), "events").access
    'coarse'
    >>> require(Principal("v", "viewer"), "kpis_by_worker")
    Traceback (most recent call last):
    ...
    gridmap.security.disclosure.DisclosureDenied: role 'viewer' may not read KPIs by worker ...
    """
    found = rule_for(principal, surface)
    if not found.allowed:
        name = SURFACES[surface]
        raise DisclosureDenied(
            f"role {principal.role!r} may not read {name[1]} ({name[0]}); see docs/roles.md"
        )
    return found


def _mask(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [mask_name(str(v)) if v is not None else None for v in value]
    if value is None:
        return None
    return mask_name(str(value))


def shape(doc: Mapping[str, Any], found: Rule, *, blank: bool = False) -> dict[str, Any]:
    """*doc* as *found* allows: dropped fields left out (or ``None`` if *blank*), names masked.

    Parameters
    ----------
    doc : mapping
        One event, transition or Open311 request as the route builds it.
    found : Rule
        From :func:`rule` / :func:`require`.
    blank : bool
        Keep dropped keys with ``None`` (Open311 answers keep their shape).

    Examples
    --------
    >>> shape({"lat": 60.1, "status": "open"}, rule("viewer", "open311"), blank=True)
    {'lat': None, 'status': 'open'}
    """
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if key in found.dropped:
            if blank:
                out[key] = None
        elif key in found.masked:
            out[key] = _mask(value)
        else:
            out[key] = value
    return out


def roles_seeing(surface: str, field: str) -> frozenset[str]:
    """Roles (of :data:`gridmap.common.model.ROLES`) that get *field* on *surface*.

    Examples
    --------
    >>> sorted(roles_seeing("items", "description"))  # doctest: +NORMALIZE_WHITESPACE
    ['city_admin', 'community_staff', 'external_system', 'grid_worker', 'town_coordinator']
    """
    return frozenset(
        role
        for role in ROLES
        if rule(role, surface).allowed and field not in rule(role, surface).dropped
    )


def cell(audience: str, surface: str) -> str:
    """The text of one cell of the role table in ``docs/roles.md``.

    Examples
    --------
    >>> cell("viewer", "items"), cell("anonymous", "events"), cell("viewer", "kpis_by_worker")
    ('404', '401', '403')
    >>> cell("external_system", "events")
    'masked fields'
    """
    found = rule(audience, surface)
    if found.allowed:
        return ACCESS_LEVELS[found.access][1]
    if surface in _LAYER_SURFACES:
        return "404"
    return "401" if audience == "anonymous" else "403"


def markdown_table() -> str:
    """The role table (rows: audiences, columns: surfaces) as Markdown.

    Examples
    --------
    >>> markdown_table().splitlines()[0].startswith("| role 角色 |")
    True
    """
    head = ["role 角色", *(f"{en} {zh}" for zh, en, _ in SURFACES.values())]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for audience, (zh, _en) in AUDIENCES.items():
        cells = [f"`{audience}` {zh}", *(cell(audience, s) for s in SURFACES)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


#: KPI count columns (:data:`gridmap.events.kpis.KPI_COLUMNS`) and how they relate.
_KPI_PAIRS = (
    ("reported", "closed"),
    ("closed", "on_time_closed"),
    ("reported", "reworked"),
    ("reported", "extended"),
    ("closed", "self_handled"),
    ("reported", "overdue"),
    ("help_requests", "problems_solved"),
)
_KPI_RATES = {
    "closure_rate": ("closed", "reported"),
    "on_time_rate": ("on_time_closed", "closed"),
    "rework_rate": ("reworked", "reported"),
    "extension_rate": ("extended", "reported"),
    "self_handled_share": ("self_handled", "closed"),
}
#: Means and quantiles over the events counted in a column: hidden with it.
_KPI_MEANS = {
    "mean_hours_to_close": "closed",
    "p90_hours_to_close": "closed",
    "mean_report_lag_h": "reported",
}


def protect_kpis(table: pd.DataFrame, *, k: int | None = None) -> pd.DataFrame:
    """A KPI table (:func:`gridmap.events.kpis.kpis`) for the ``aggregates`` level.

    Small counts are hidden as the reports hide them
    (:func:`gridmap.assessment.disclosure.protect_table`: ``"<k"``, ``"*"``);
    rates, means and quantiles built on a hidden count are ``None``. *k* is the
    smallest count shown (``None``: :data:`gridmap.common.settings.DEFAULT_MIN_COUNT`).

    Examples
    --------
    >>> t = pd.DataFrame({"reported": [1, 9, 20], "closed": [1, 5, 12],
    ...                   "mean_hours_to_close": [3.0, 4.0, 5.0]}, index=["g1", "g2", "g3"])
    >>> out = protect_kpis(t)
    >>> out["reported"].tolist(), out["closed"].tolist()
    (['<3', '*', 20], ['<3', '*', 12])
    >>> out["mean_hours_to_close"].tolist()
    [None, None, 5.0]
    """
    if table.empty:
        return table
    safe = protect_table(
        table,
        counts=KPI_COUNTS,
        pairs=_KPI_PAIRS,
        rates=_KPI_RATES,
        groups=pd.Series("total", index=table.index),
        k=DEFAULT_MIN_COUNT if k is None else k,
    )
    for column, base in _KPI_MEANS.items():
        if column in safe and base in safe:
            keep = safe[base].map(shown).astype(bool)
            safe[column] = safe[column].astype(object).where(keep, None)
    return safe


# -- reporter and contact: masked by default, unmasked with an audit trail ---------

#: The one masking of the reporter's name and contact (张*, 138****1234), for
#: ``/events`` and the OGC items and exports alike.
CONTACT_MASKS: Mapping[str, Callable[[str | None], str | None]] = MappingProxyType(
    {"reporter": mask_name, "contact": mask_phone}
)

#: The permission that shows reporter and contact in clear (查看明文), as named in 403s.
UNMASK_PERMISSION = "unmask"

#: Audiences that may unmask reporter and contact (``unmask=true``) of the events of
#: their own area, when their account also holds the unmask grant (``can_unmask``,
#: ``gridmap users add --unmask``). Grid workers, viewers, other systems and
#: anonymous callers never may.
UNMASK_ROLES: frozenset[str] = frozenset({"city_admin", "town_coordinator", "community_staff"})

#: Unmasking more events than this in one answer (a page of items, an export)
#: needs a ``reason``; one audit row is written per unmasked event either way.
UNMASK_MAX_WITHOUT_REASON = 100

_REASON_MAX = 500


def _contact_text(value: Any) -> str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return str(value)


def contact_frame(frame: pd.DataFrame, found: Rule, *, unmask: bool = False) -> pd.DataFrame:
    """*frame* (rows of ``events``) with reporter and contact as *found* allows.

    ``full``: masked by :data:`CONTACT_MASKS` (in clear with *unmask*, which
    the caller has checked with :func:`check_unmask` and audited with
    :func:`audit_unmask`); any other level: the columns are dropped.

    Examples
    --------
    >>> f = pd.DataFrame({"id": [1], "reporter": ["张三"], "contact": ["13812341234"]})
    >>> contact_frame(f, rule("city_admin", "items"))[["reporter", "contact"]].values.tolist()
    [['张*', '138****1234']]
    >>> contact_frame(f, rule("city_admin", "items"), unmask=True)["reporter"].tolist()
    ['张三']
    >>> list(contact_frame(f, rule("external_system", "items")).columns)
    ['id']
    """
    present = [c for c in CONTACT_MASKS if c in frame.columns]
    if not present:
        return frame
    if found.access != "full" or CONTACT_FIELDS & found.dropped:
        return frame.drop(columns=present)
    out = frame.copy()
    for col in present:
        fn = (lambda v: v) if unmask else CONTACT_MASKS[col]
        out[col] = [fn(_contact_text(v)) for v in out[col]]
        out[col] = out[col].astype(object)
    return out


def contacts(row: Mapping[str, Any], *, unmask: bool = False) -> dict[str, str | None]:
    """Reporter and contact of one event row: masked (:data:`CONTACT_MASKS`), or clear.

    Examples
    --------
    >>> contacts({"reporter": "欧阳娜娜", "contact": "138-1234-1234"})
    {'reporter': '欧***', 'contact': '138****1234'}
    >>> contacts({"reporter": "张三", "contact": None}, unmask=True)
    {'reporter': '张三', 'contact': None}
    """
    out: dict[str, str | None] = {}
    for name, fn in CONTACT_MASKS.items():
        value = _contact_text(row.get(name))
        out[name] = value if unmask else fn(value)
    return out


def may_unmask(principal: Principal, area: str | None = None) -> bool:
    """Whether *principal* may see reporter and contact in clear (of an event in *area*).

    Examples
    --------
    >>> admin = Principal("a", "city_admin", can_unmask=True)
    >>> may_unmask(admin, "990100001001003"), may_unmask(Principal("a", "city_admin"))
    (True, False)
    >>> may_unmask(Principal("w", "grid_worker", ("990100001001003",), can_unmask=True))
    False
    >>> town = Principal("t", "town_coordinator", ("990100001",), can_unmask=True)
    >>> may_unmask(town, "990100001001003"), may_unmask(town, "990100002001001")
    (True, False)
    """
    if audience_of(principal) not in UNMASK_ROLES or not principal.can_unmask:
        return False
    return area is None or principal.covers(area)


def _denied(principal: Principal, why: str) -> DisclosureDenied:
    return DisclosureDenied(
        f"unmasking reporter/contact needs the permission {UNMASK_PERMISSION!r} (查看明文): "
        f"roles {', '.join(sorted(UNMASK_ROLES))} with the account's unmask grant, for events "
        f"of their area; {why} (see docs/roles.md)"
    )


def check_unmask(
    principal: Principal,
    *,
    areas: Iterable[str | None] | None = None,
    reason: str | None = None,
) -> str | None:
    """Refuse an unmask *principal* may not make; answer the cleaned *reason*.

    Called once before reading (without *areas*: the role and grant) and once
    with the grid codes of the events about to be shown unmasked.

    Raises
    ------
    DisclosureDenied
        Role without the permission, account without the grant, or an event
        outside the principal's area (403).
    gridmap.common.errors.BadInput
        More than :data:`UNMASK_MAX_WITHOUT_REASON` events without a reason,
        or a reason that is too long (400).

    Examples
    --------
    >>> check_unmask(Principal("a", "city_admin", can_unmask=True), reason="  12345 回访  ")
    '12345 回访'
    >>> check_unmask(Principal("w", "grid_worker", ("990100001001003",), can_unmask=True))
    Traceback (most recent call last):
    ...
    gridmap.security.disclosure.DisclosureDenied: unmasking reporter/contact needs ...
    """
    text = None if reason is None else reason.strip() or None
    if text is not None and len(text) > _REASON_MAX:
        raise BadInput(f"reason must have at most {_REASON_MAX} characters", field="reason")
    if audience_of(principal) not in UNMASK_ROLES:
        raise _denied(principal, f"role {principal.role!r} may not")
    if not principal.can_unmask:
        raise _denied(principal, f"the account {principal.name!r} holds no unmask grant")
    if areas is not None:
        codes = list(areas)
        outside = [c for c in codes if not principal.covers(c)]
        if outside:
            raise _denied(principal, "an event lies outside your area")
        if len(codes) > UNMASK_MAX_WITHOUT_REASON and text is None:
            raise BadInput(
                f"unmasking more than {UNMASK_MAX_WITHOUT_REASON} events at once needs a "
                f"reason (reason=…); {len(codes)} asked (查看明文超过 "
                f"{UNMASK_MAX_WITHOUT_REASON} 条须填写事由)",
                field="reason",
            )
    return text


def audit_unmask(
    store: Store,
    principal: Principal,
    events: Iterable[tuple[int, str | None]],
    *,
    surface: str,
    reason: str | None = None,
) -> int:
    """Write one ``personal.unmask`` audit row per event ``(id, grid_code)``; the count.

    Each row names the event (``events:ID``), carries its grid code as the
    area code, and says which fields were shown, on which surface and why.

    Examples
    --------
    >>> from gridmap.storage import open_store
    >>> store = open_store(":memory:", migrate=True)
    >>> admin = Principal("a", "city_admin", can_unmask=True)
    >>> audit_unmask(store, admin, [(7, "990100001001003")], surface="events", reason="回访")
    1
    >>> audit.read_log(store)[["target", "area_code"]].values.tolist()
    [['events:7', '990100001001003']]
    """
    fields = sorted(CONTACT_FIELDS)
    entries = [
        audit.AuditEntry(
            f"events:{int(eid)}",
            area,
            {"fields": fields, "surface": surface, "reason": reason},
        )
        for eid, area in events
    ]
    return audit.record_many(store, principal, "personal.unmask", entries)


def unmask_cell(audience: str) -> str:
    """The text of one row of the unmask table in ``docs/roles.md``.

    Refusals name the status a request with ``unmask=true`` gets on
    ``/events/{id}`` (and on the items, when the layer is not served at all).

    Examples
    --------
    >>> unmask_cell("town_coordinator"), unmask_cell("grid_worker")
    ('yes: own area, with the unmask grant', 'no (403)')
    >>> unmask_cell("viewer"), unmask_cell("anonymous")
    ('no (403; items: 404)', 'no (401; items: 404)')
    """
    if audience not in AUDIENCES:
        raise KeyError(f"unknown audience {audience!r}; one of {', '.join(AUDIENCES)}")
    if audience in UNMASK_ROLES:
        return "yes: own area, with the unmask grant"
    status = "401" if audience == "anonymous" else "403"
    items = "" if rule(audience, "items").allowed else "; items: 404"
    return f"no ({status}{items})"


def unmask_markdown_table() -> str:
    """The unmask table (查看明文: who may ask ``unmask=true``) as Markdown.

    Examples
    --------
    >>> unmask_markdown_table().splitlines()[0]
    '| role 角色 | unmask reporter/contact 查看上报人明文 |'
    """
    lines = ["| role 角色 | unmask reporter/contact 查看上报人明文 |", "| --- | --- |"]
    for audience, (zh, _en) in AUDIENCES.items():
        lines.append(f"| `{audience}` {zh} | {unmask_cell(audience)} |")
    return "\n".join(lines) + "\n"
