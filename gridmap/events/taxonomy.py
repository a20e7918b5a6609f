"""The event taxonomy: two levels of categories, responsible parties and time limits.

The taxonomy is configuration, not code: :func:`default_taxonomy` gives the
one used in 综治 practice (城市管理, 矛盾纠纷, 安全隐患, 疫情防控, 重点工作, 治安,
群众诉求/意见), and :meth:`Taxonomy.from_dict` builds another from a mapping
(read from JSON or TOML by the caller). Each category names the party
responsible for handling it and the time limits of each workflow step by
urgency; a subcategory may override both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gridmap.errors import BadInput
from gridmap.model import EVENT_CATEGORIES

__all__ = [
    "EVENT_KINDS",
    "URGENCIES",
    "Category",
    "Subcategory",
    "Taxonomy",
    "TimeLimits",
    "default_taxonomy",
]

#: Kinds of report: an event (事件), a resident's opinion (征集意见), a request for help.
EVENT_KINDS: dict[str, tuple[str, str]] = {
    "event": ("事件", "Event"),
    "opinion": ("群众意见", "Resident's opinion"),
    "help_request": ("求助", "Request for help"),
}

#: Urgency levels, least urgent first.
URGENCIES: dict[str, tuple[str, str]] = {
    "normal": ("一般", "Normal"),
    "urgent": ("紧急", "Urgent"),
    "critical": ("特急", "Critical"),
}

#: Hours allowed in each open workflow state before the next step is due.
_STEP_HOURS: dict[str, float] = {
    "reported": 2.0,
    "accepted": 4.0,
    "verified": 4.0,
    "registered": 2.0,
    "escalated": 24.0,
    "dispatched": 48.0,
    "handling": 48.0,
    "inspecting": 24.0,
}
#: How much of each step's time an urgency leaves.
_URGENCY_FACTOR: dict[str, float] = {"normal": 1.0, "urgent": 0.5, "critical": 0.125}
#: Hours from report to close by urgency.
_TOTAL_HOURS: dict[str, float] = {"normal": 120.0, "urgent": 48.0, "critical": 12.0}


@dataclass(frozen=True)
class TimeLimits:
    """Time limits of one category, in hours.

    Parameters
    ----------
    step_hours : mapping of str to float
        Hours allowed in each open state (``reported``, ``accepted`` …) at
        ``normal`` urgency.
    total_hours : mapping of str to float
        Hours from report to close, by urgency.
    urgency_factor : mapping of str to float
        Multiplier of the step hours by urgency.

    Examples
    --------
    >>> TimeLimits().step("handling", "urgent")
    24.0
    """

    step_hours: Mapping[str, float] = field(default_factory=lambda: dict(_STEP_HOURS))
    total_hours: Mapping[str, float] = field(default_factory=lambda: dict(_TOTAL_HOURS))
    urgency_factor: Mapping[str, float] = field(default_factory=lambda: dict(_URGENCY_FACTOR))

    def step(self, state: str, urgency: str) -> float | None:
        """Hours allowed in *state* at *urgency* (``None``: no limit, e.g. closed)."""
        hours = self.step_hours.get(state)
        if hours is None:
            return None
        return float(hours) * float(self.urgency_factor.get(urgency, 1.0))

    def total(self, urgency: str) -> float:
        """Hours from report to close at *urgency*."""
        return float(self.total_hours.get(urgency, self.total_hours.get("normal", 120.0)))

    def scaled(self, factor: float) -> TimeLimits:
        """The same limits with every figure multiplied by *factor*.

        Examples
        --------
        >>> TimeLimits().scaled(2).total("normal")
        240.0
        """
        return TimeLimits(
            {k: v * factor for k, v in self.step_hours.items()},
            {k: v * factor for k, v in self.total_hours.items()},
            dict(self.urgency_factor),
        )


@dataclass(frozen=True)
class Subcategory:
    """A second-level category, optionally with its own responsible party and limits."""

    code: str
    name_zh: str
    name_en: str
    responsible: str | None = None
    limits: TimeLimits | None = None


@dataclass(frozen=True)
class Category:
    """A first-level category: names, responsible party, time limits, subcategories."""

    code: str
    name_zh: str
    name_en: str
    responsible: str
    limits: TimeLimits = field(default_factory=TimeLimits)
    subcategories: Mapping[str, Subcategory] = field(default_factory=dict)
    kinds: tuple[str, ...] = ("event", "help_request")


@dataclass(frozen=True)
class Taxonomy:
    """A configurable two-level event taxonomy.

    Examples
    --------
    >>> tax = default_taxonomy()
    >>> tax.name("safety_hazard", lang="zh")
    '安全隐患'
    >>> tax.responsible("city_management", "illegal_parking")
    '交警大队 Traffic police'
    """

    categories: Mapping[str, Category]

    def category(self, code: object) -> Category:
        """The category *code*; ``BadInput`` naming the known codes otherwise."""
        if not isinstance(code, str) or code not in self.categories:
            shown = repr(code)[:60]
            raise BadInput(
                f"unknown category {shown}; categories: {', '.join(self.categories)}",
                field="category",
            )
        return self.categories[code]

    def check(self, category: object, subcategory: object = None, kind: str = "event") -> None:
        """Raise ``BadInput`` unless *category*/*subcategory* exist and allow *kind*."""
        cat = self.category(category)
        if subcategory is not None and (
            not isinstance(subcategory, str) or subcategory not in cat.subcategories
        ):
            raise BadInput(
                f"unknown subcategory {repr(subcategory)[:60]} of {cat.code!r}; "
                f"subcategories: {', '.join(cat.subcategories) or 'none'}",
                field="subcategory",
            )
        if kind not in cat.kinds:
            raise BadInput(
                f"category {cat.code!r} does not take reports of kind {kind!r} "
                f"(it takes: {', '.join(cat.kinds)})",
                field="kind",
            )

    def name(self, code: str, subcategory: str | None = None, *, lang: str = "zh") -> str:
        """Display name of a category (or subcategory) in ``zh`` or ``en``."""
        cat = self.category(code)
        item: Category | Subcategory = cat
        if subcategory:
            item = cat.subcategories[subcategory]
        return item.name_zh if lang.startswith("zh") else item.name_en

    def responsible(self, code: str, subcategory: str | None = None) -> str:
        """The party responsible for handling events of this (sub)category."""
        cat = self.category(code)
        sub = cat.subcategories.get(subcategory) if subcategory else None
        return sub.responsible if sub is not None and sub.responsible else cat.responsible

    def limits(self, code: str, subcategory: str | None = None) -> TimeLimits:
        """The time limits of this (sub)category."""
        cat = self.category(code)
        sub = cat.subcategories.get(subcategory) if subcategory else None
        return sub.limits if sub is not None and sub.limits is not None else cat.limits

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Taxonomy:
        """Build a taxonomy from plain data (e.g. parsed JSON).

        The shape is ``{code: {"zh": …, "en": …, "responsible": …,
        "limits": {"step_hours": {…}, "total_hours": {…}, "scale": 1.0},
        "kinds": [...], "subcategories": {code: {"zh": …, "en": …}}}}``.

        Examples
        --------
        >>> spec = {"noise": {"zh": "噪音", "en": "Noise", "responsible": "城管"}}
        >>> tax = Taxonomy.from_dict(spec)
        >>> tax.responsible("noise")
        '城管'
        """
        cats: dict[str, Category] = {}
        for code, spec in data.items():
            if not isinstance(spec, Mapping):
                raise BadInput(f"taxonomy entry {code!r} must be a mapping", field="taxonomy")
            subs = {
                sc: Subcategory(
                    sc,
                    str(s.get("zh", sc)),
                    str(s.get("en", sc)),
                    s.get("responsible"),
                    _limits(s["limits"]) if "limits" in s else None,
                )
                for sc, s in dict(spec.get("subcategories", {})).items()
            }
            cats[code] = Category(
                code,
                str(spec.get("zh", code)),
                str(spec.get("en", code)),
                str(spec.get("responsible", "")),
                _limits(spec.get("limits", {})),
                subs,
                tuple(spec.get("kinds", ("event", "help_request"))),
            )
        return cls(cats)


def _limits(spec: Mapping[str, Any]) -> TimeLimits:
    base = TimeLimits(
        {**_STEP_HOURS, **dict(spec.get("step_hours", {}))},
        {**_TOTAL_HOURS, **dict(spec.get("total_hours", {}))},
        {**_URGENCY_FACTOR, **dict(spec.get("urgency_factor", {}))},
    )
    scale = float(spec.get("scale", 1.0))
    return base if scale == 1.0 else base.scaled(scale)


_SUBS: dict[str, dict[str, tuple[str, str, str | None]]] = {
    "city_management": {
        "garbage": ("垃圾堆放", "Garbage", None),
        "illegal_parking": ("违章停车", "Illegal parking", "交警大队 Traffic police"),
        "road_damage": ("道路破损", "Damaged road", "市政养护 Road maintenance"),
        "street_vending": ("占道经营", "Street vending", None),
    },
    "dispute": {
        "neighbour": ("邻里纠纷", "Neighbour dispute", None),
        "family": ("家庭纠纷", "Family dispute", None),
        "labour": ("劳资纠纷", "Labour dispute", "人社局 Labour bureau"),
    },
    "safety_hazard": {
        "fire": ("消防隐患", "Fire hazard", "消防救援站 Fire station"),
        "building": ("房屋安全", "Unsafe building", "住建局 Housing bureau"),
        "gas": ("燃气隐患", "Gas hazard", "燃气公司 Gas utility"),
    },
    "epidemic": {"screening": ("排查", "Screening", None)},
    "key_task": {"campaign": ("专项行动", "Campaign", None)},
    "public_security": {
        "theft": ("盗窃", "Theft", None),
        "suspicious": ("可疑人员", "Suspicious person", None),
    },
    "residents_request": {
        "opinion": ("意见建议", "Opinion", None),
        "help": ("求助", "Help", None),
        "complaint": ("投诉", "Complaint", None),
    },
}
_RESPONSIBLE: dict[str, str] = {
    "city_management": "城管执法中队 Urban management",
    "dispute": "社区调解委员会 Community mediation",
    "safety_hazard": "应急管理所 Emergency management",
    "epidemic": "社区卫生服务中心 Community health centre",
    "key_task": "镇街综治中心 Town centre",
    "public_security": "派出所 Police station",
    "residents_request": "社区居委会 Residents' committee",
}
#: Categories whose limits differ from the default (multiplier).
_SCALE: dict[str, float] = {"dispute": 1.5, "key_task": 2.0, "public_security": 0.5}


def default_taxonomy() -> Taxonomy:
    """The taxonomy of 综治 practice, with zh-CN and English names.

    Examples
    --------
    >>> sorted(default_taxonomy().categories)[:3]
    ['city_management', 'dispute', 'epidemic']
    """
    data: dict[str, Any] = {}
    for code, (zh, en) in EVENT_CATEGORIES.items():
        data[code] = {
            "zh": zh,
            "en": en,
            "responsible": _RESPONSIBLE.get(code, "镇街综治中心 Town centre"),
            "limits": {"scale": _SCALE.get(code, 1.0)},
            "kinds": ["event", "opinion", "help_request"]
            if code == "residents_request"
            else ["event", "help_request"],
            "subcategories": {
                sc: {"zh": z, "en": e, **({"responsible": r} if r else {})}
                for sc, (z, e, r) in _SUBS.get(code, {}).items()
            },
        }
    return Taxonomy.from_dict(data)
