"""A period report and its figures, as data (computed by :mod:`gridmap.assessment.report`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from gridmap.assessment.rules import INDICATORS, AssessmentRules
from gridmap.common.timezone import DEFAULT_TIME_ZONE, local_text

__all__ = ["FIGURE_SPECS", "RANKING_SIZE", "Figure", "PeriodReport"]

#: Units shown at the top and at the bottom of a ranking; the rest make one "others" row.
RANKING_SIZE = 10

#: Figures of a period report, in order: key, zh-CN and English label, and whether the
#: figure is a ``count`` or a ``ratio`` (hiding small counts treats them differently).
FIGURE_SPECS: tuple[tuple[str, str, str, str], ...] = (
    ("buildings", "楼栋", "Buildings", "count"),
    ("buildings_unassigned", "其中未划入网格的楼栋", "of which outside every grid", "count"),
    ("dwellings", "房屋(估算)", "Dwellings (estimated)", "count"),
    ("households_estimated", "户数(估算)", "Households (estimated)", "count"),
    ("households_registered", "登记户数", "Households registered", "count"),
    ("residents_estimated", "实有人口(估算)", "Actual population (estimated)", "count"),
    ("residents_registered", "实有人口(登记)", "Actual population registered", "count"),
    ("events_reported", "上报事件", "Events reported", "count"),
    ("events_closed", "结案事件", "Events closed", "count"),
    ("closure_rate", "结案率(办结率)", "Closure rate", "ratio"),
    ("on_time_rate", "按期结案率(按期办结率)", "On-time closure rate", "ratio"),
    ("overdue", "超期未结事件", "Overdue events", "count"),
    ("supervised", "督办事件", "Supervised events", "count"),
    ("opinions", "征集意见", "Opinions collected", "count"),
    ("help_requests", "群众求助", "Help requests", "count"),
    ("problems_solved", "为群众解决问题", "Problems solved", "count"),
    ("patrol_coverage", "巡查覆盖率", "Patrol coverage", "ratio"),
    ("doorknock_households", "应走访户数", "Households to visit", "count"),
    ("doorknock_visited", "已走访户数", "Households visited", "count"),
    ("doorknock_progress", "敲门行动进度", "Door-knocking progress", "ratio"),
)


@dataclass(frozen=True)
class Figure:
    """One number of the report, the query behind it, and its values in earlier periods.

    Attributes
    ----------
    key : str
        Stable name (``events_reported`` …).
    label_zh, label_en : str
        Display labels.
    value : int, float or None
        The figure (rates as shares 0–1; ``None`` when undefined).
    query : dict
        ``layer``, ``where`` (the store filter, JSON-ready) and ``op``.
    hidden : str or None
        ``"<k"`` or ``"*"`` when the value is hidden from the reader (small counts).
    previous, last_year : int, float or None
        The figure in the previous period and in the same period last year
        (``None``: undefined, hidden or not kept).
    previous_hidden, last_year_hidden : str or None
        ``"<k"``/``"*"`` when that value is hidden.
    history : bool
        Whether earlier values can be known (the import's estimates keep no history).
    note_zh, note_en : str or None
        How the figure is defined, for a line under it.

    Examples
    --------
    >>> f = Figure("n", "上报事件", "Events reported", 6, {"op": "count"}, previous=4)
    >>> f.change("previous"), f.display_change("previous")
    (2, '+2 (+50.0%)')
    """

    key: str
    label_zh: str
    label_en: str
    value: int | float | None
    query: dict[str, Any]
    hidden: str | None = None
    previous: int | float | None = None
    last_year: int | float | None = None
    previous_hidden: str | None = None
    last_year_hidden: str | None = None
    history: bool = True
    note_zh: str | None = None
    note_en: str | None = None

    @property
    def is_rate(self) -> bool:
        """Whether the figure is a share (0–1)."""
        return self.query.get("op") == "ratio"

    def display(self, which: str = "value") -> str:
        """The value as shown (rates in percent with one decimal; hidden ones as ``<k``/``*``).

        *which* is ``value``, ``previous`` or ``last_year``.

        Examples
        --------
        >>> Figure("r", "结案率", "Closure rate", 0.875, {"op": "ratio"}).display()
        '87.5%'
        >>> Figure("n", "上报事件", "Events reported", None, {"op": "count"}, hidden="<3").display()
        '<3'
        """
        hidden = self.hidden if which == "value" else getattr(self, f"{which}_hidden")
        value = getattr(self, which)
        if hidden is not None:
            return str(hidden)
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return "—"
        if self.is_rate:
            return f"{100 * float(value):.1f}%"
        if isinstance(value, float):
            return f"{value:,.1f}"
        return f"{value:,}"

    def change(self, which: str) -> int | float | None:
        """The value minus the *which* one (``previous``/``last_year``), when both are known."""
        past = getattr(self, which)
        hidden = self.hidden or getattr(self, f"{which}_hidden")
        if hidden is not None or self.value is None or past is None:
            return None
        if isinstance(past, float) and np.isnan(past):
            return None
        if isinstance(self.value, float) and np.isnan(self.value):
            return None
        diff = self.value - past
        return float(diff) if isinstance(diff, float) else int(diff)

    def relative_change(self, which: str) -> float | None:
        """The change as a share of the earlier value (counts only; ``None`` from 0)."""
        diff = self.change(which)
        past = getattr(self, which)
        if diff is None or self.is_rate or not past:
            return None
        return float(diff) / float(past)

    def display_change(self, which: str) -> str:
        """The change as shown: ``+2 (+50.0%)`` for counts, ``+5.0pp`` for rates, else ``—``."""
        diff = self.change(which)
        if diff is None:
            return "—"
        if self.is_rate:
            return f"{100 * float(diff):+.1f}pp"
        rel = self.relative_change(which)
        text = f"{diff:+,}" if isinstance(diff, int) else f"{diff:+,.1f}"
        return text if rel is None else f"{text} ({100 * rel:+.1f}%)"


@dataclass
class PeriodReport:
    """What :func:`period_report` computed."""

    area: str
    area_name: str
    start: pd.Timestamp
    end: pd.Timestamp
    figures: list[Figure]
    categories: list[dict[str, Any]]
    rankings: dict[str, list[dict[str, Any]]]
    rules: AssessmentRules
    charts: dict[str, str] = field(default_factory=dict)
    #: Smallest count shown, when small counts are hidden from the reader (else ``None``).
    min_count: int | None = None
    #: Time zone of the dates shown.
    tz: str = DEFAULT_TIME_ZONE
    #: ``[start, end)`` of the previous period and of the same period last year.
    previous: tuple[pd.Timestamp, pd.Timestamp] | None = None
    last_year: tuple[pd.Timestamp, pd.Timestamp] | None = None
    #: Per ranking level: ``units`` ranked, ``others`` (between top and bottom, not
    #: listed), ``idle`` (nothing measured in the period, not listed).
    ranking_notes: dict[str, dict[str, int]] = field(default_factory=dict)
    #: Highlights and problems, as sentences: ``{"zh": [...], "en": [...]}``.
    highlights: dict[str, list[str]] = field(default_factory=dict)
    generated_at: pd.Timestamp | None = None

    def figure(self, key: str) -> Figure:
        """The figure called *key* (``KeyError`` if absent)."""
        for f in self.figures:
            if f.key == key:
                return f
        raise KeyError(key)

    def local(self, t: pd.Timestamp | None, fmt: str = "%Y-%m-%d") -> str:
        """A time of the report as text in its time zone."""
        return local_text(t, self.tz, fmt)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready document (charts left out)."""

        def span(p: tuple[pd.Timestamp, pd.Timestamp] | None) -> dict[str, str] | None:
            if p is None:
                return None
            return {"from": _iso(p[0], self.tz), "to": _iso(p[1], self.tz)}

        figures = []
        for f in self.figures:
            doc = asdict(f)
            doc["change_previous"] = f.change("previous")
            doc["change_last_year"] = f.change("last_year")
            figures.append(doc)
        return {
            "area": self.area,
            "area_name": self.area_name,
            "from": _iso(self.start, self.tz),
            "to": _iso(self.end, self.tz),
            "time_zone": self.tz,
            "previous_period": span(self.previous),
            "same_period_last_year": span(self.last_year),
            "generated_at": None if self.generated_at is None else _iso(self.generated_at, self.tz),
            "highlights": self.highlights,
            "figures": figures,
            "categories": self.categories,
            "rankings": self.rankings,
            "ranking_notes": self.ranking_notes,
            "rules": self.rules.model_dump(),
            "small_counts_hidden": self.min_count is not None,
            "min_count": self.min_count,
        }


def _iso(t: pd.Timestamp, tz: str) -> str:
    return pd.Timestamp(t).tz_convert(tz).isoformat()


def is_idle(row: dict[str, Any]) -> bool:
    """Nothing measured for the unit in the period: every indicator missing or zero."""
    for code in INDICATORS:
        v = row.get(code)
        if isinstance(v, str):  # hidden: something was measured
            return False
        if v is not None and not (isinstance(v, float) and np.isnan(v)) and v != 0:
            return False
    return True


def unit_label(row: dict[str, Any], level: str) -> str:
    if level == "worker" or row.get("name") in (None, row["unit"]):
        return str(row["unit"])
    return f"{row['name']}（{row['unit']}）"
