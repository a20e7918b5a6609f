"""What each role may read about events, surface by surface: one table (事件信息披露规则).

Every read of events — ``/events`` and ``/events/{id}``, the transitions,
the supervision list (督办), Open311 requests, ``/kpis`` (and
``/kpis?by=worker``), the OGC items of the ``events`` layer and its vector
tiles — asks this module what the caller's role may see. Area scoping is
applied elsewhere (:class:`gridmap.access.Principal`); this table decides
the *shape* of what is inside the area.

Levels of access (:data:`ACCESS_LEVELS`):

``full``
    As the staff have always seen it: every field, reporter and contact
    masked (张*, 138****1234) by :func:`gridmap.events.intake.event_document`.
``masked``
    For other systems (e.g. the 12345 hotline with an API key): the events
    of their area with description and location, but reporter and contact
    dropped and worker names masked (:func:`gridmap.privacy.mask_name`).
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

Examples
--------
>>> from gridmap.access import Principal
>>> rule("viewer", "events").access
'coarse'
>>> doc = {"id": 1, "description": "井盖缺失", "assigned_to": ["王小明"], "status": "reported"}
>>> shape(doc, rule("viewer", "events"))
{'id': 1, 'status': 'reported'}
>>> shape(doc, rule("external_system", "events"))["assigned_to"]
['王**']
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

import pandas as pd

from gridmap.access import Principal
from gridmap.assessment.disclosure import protect_table, shown
from gridmap.auth import PermissionDenied
from gridmap.events.kpis import KPI_COUNTS
from gridmap.heat import DEFAULT_MIN_COUNT
from gridmap.model import ROLES
from gridmap.privacy import mask_name

__all__ = [
    "ACCESS_LEVELS",
    "AUDIENCES",
    "CONTACT_FIELDS",
    "EXACT_FIELDS",
    "SURFACES",
    "TABLE",
    "WORKER_FIELDS",
    "Access",
    "DisclosureDenied",
    "Rule",
    "audience_of",
    "cell",
    "markdown_table",
    "protect_kpis",
    "require",
    "roles_seeing",
    "rule",
    "rule_for",
    "shape",
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

#: Who reads: the roles of :data:`gridmap.model.ROLES` and callers without credentials.
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
    gridmap.disclosure_policy.DisclosureDenied: role 'viewer' may not read KPIs by worker ...
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
    """Roles (of :data:`gridmap.model.ROLES`) that get *field* on *surface*.

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
    smallest count shown (``None``: :data:`gridmap.heat.DEFAULT_MIN_COUNT`).

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
