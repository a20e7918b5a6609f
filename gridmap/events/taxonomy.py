"""The event taxonomy: two levels of categories, responsible parties and time limits.

The taxonomy is configuration, not code: :func:`default_taxonomy` gives the
one used in 综治 practice (城市管理, 矛盾纠纷, 安全隐患, 疫情防控, 重点工作, 治安,
群众诉求/意见), read from the file shipped in the package
(``gridmap/data/taxonomy.toml``); :func:`load_taxonomy` reads and checks another
(``GRIDMAP_TAXONOMY_FILE``), and :meth:`Taxonomy.from_dict` builds one from a
mapping. Each category names the party
responsible for handling it and the time limits of each workflow step by
urgency; a subcategory may override both.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gridmap.common.configfiles import explain, read_config, shipped
from gridmap.common.errors import BadInput

__all__ = [
    "EVENT_KINDS",
    "URGENCIES",
    "Category",
    "Subcategory",
    "Taxonomy",
    "TimeLimits",
    "default_taxonomy",
    "load_taxonomy",
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


_CODE = r"^[a-z][a-z0-9_]{0,39}$"


def _check_codes(codes: Iterable[str], what: str) -> None:
    """Refuse (``ValueError``, reported by pydantic) the first *what* code not like ``_CODE``."""
    import re

    for code in codes:
        if not re.fullmatch(_CODE, code):
            raise ValueError(f"{what} code {code!r}: lowercase letters, digits, _")


def _positive_hours(values: dict[str, float], known: Mapping[str, Any], what: str) -> None:
    for key, hours in values.items():
        if key not in known:
            raise ValueError(f"unknown {what} {key!r}; one of {', '.join(known)}")
        if not (0 < hours < 100_000):
            raise ValueError(f"{what} {key!r}: hours must be more than 0 (got {hours})")


class _LimitsSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scale: float = Field(default=1.0, gt=0, le=100, allow_inf_nan=False)
    step_hours: dict[str, float] = Field(default_factory=dict)
    total_hours: dict[str, float] = Field(default_factory=dict)
    urgency_factor: dict[str, float] = Field(default_factory=dict)

    @field_validator("step_hours")
    @classmethod
    def _states(cls, v: dict[str, float]) -> dict[str, float]:
        _positive_hours(v, _STEP_HOURS, "state")
        return v

    @field_validator("total_hours", "urgency_factor")
    @classmethod
    def _urgencies(cls, v: dict[str, float]) -> dict[str, float]:
        _positive_hours(v, URGENCIES, "urgency")
        return v


class _SubSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    zh: str = Field(min_length=1, max_length=40)
    en: str = Field(min_length=1, max_length=80)
    responsible: str | None = Field(default=None, max_length=100)
    limits: _LimitsSpec | None = None


class _CategorySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    zh: str = Field(min_length=1, max_length=40)
    en: str = Field(min_length=1, max_length=80)
    responsible: str = Field(min_length=1, max_length=100)
    kinds: list[str] = Field(default_factory=lambda: ["event", "help_request"], min_length=1)
    limits: _LimitsSpec = Field(default_factory=_LimitsSpec)
    subcategories: dict[str, _SubSpec] = Field(default_factory=dict)

    @field_validator("kinds")
    @classmethod
    def _kinds(cls, v: list[str]) -> list[str]:
        for kind in v:
            if kind not in EVENT_KINDS:
                raise ValueError(f"unknown kind {kind!r}; one of {', '.join(EVENT_KINDS)}")
        return v

    @field_validator("subcategories")
    @classmethod
    def _sub_codes(cls, v: dict[str, _SubSpec]) -> dict[str, _SubSpec]:
        _check_codes(v, "subcategory")
        return v


class _TaxonomySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    categories: dict[str, _CategorySpec] = Field(min_length=1, max_length=200)

    @field_validator("categories")
    @classmethod
    def _codes(cls, v: dict[str, _CategorySpec]) -> dict[str, _CategorySpec]:
        _check_codes(v, "category")
        return v


def load_taxonomy(path: str | Path | None = None) -> Taxonomy:
    r"""Read and check a taxonomy file (TOML or JSON); ``None`` gives the shipped default.

    The file has one ``[categories.CODE]`` table per category (``zh``, ``en``,
    ``responsible``, ``kinds``, ``limits``, ``[categories.CODE.subcategories.SUB]``);
    see ``gridmap/data/taxonomy.toml``, the default, for every key.

    Raises
    ------
    gridmap.common.configfiles.ConfigError
        The file is missing, not TOML/JSON, or a key or value is wrong; the
        message names the file and each problem (``categories.noise.kinds.0: …``).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "tax.toml"
    >>> _ = p.write_text(
    ...     '[categories.noise]\nzh = "噪音扰民"\nen = "Noise"\nresponsible = "城管"\n',
    ...     encoding="utf-8")
    >>> load_taxonomy(p).name("noise")
    '噪音扰民'
    >>> _ = p.write_text('[categories.noise]\nzh = "噪音"\nen = "Noise"\n', encoding="utf-8")
    >>> from gridmap.common.configfiles import ConfigError
    >>> try:
    ...     load_taxonomy(p)
    ... except ConfigError as exc:
    ...     print(exc.message.split(": ", 1)[1])
    categories.noise.responsible: Field required
    """
    if path is None:
        return default_taxonomy()
    data = read_config(path, what="taxonomy")
    return _from_file_data(data, path)


def _from_file_data(data: dict[str, Any], path: str | Path) -> Taxonomy:
    try:
        spec = _TaxonomySpec.model_validate(data)
    except ValidationError as exc:
        raise explain(exc, path=path, what="taxonomy") from None
    return Taxonomy.from_dict(
        {code: cat.model_dump(exclude_none=True) for code, cat in spec.categories.items()}
    )


@functools.cache
def _shipped() -> Taxonomy:
    path = shipped("taxonomy.toml")
    return _from_file_data(read_config(path, what="taxonomy"), path)


def default_taxonomy() -> Taxonomy:
    """The taxonomy of 综治 practice, with zh-CN and English names.

    Read from the file shipped in the package (``gridmap/data/taxonomy.toml``).

    Examples
    --------
    >>> sorted(default_taxonomy().categories)[:3]
    ['city_management', 'dispute', 'epidemic']
    """
    return _shipped()
