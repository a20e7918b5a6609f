"""Small counts hidden in a period report for readers without detail rights.

The rules are :mod:`gridmap.assessment.disclosure`'s, applied to the key
figures (this period, the previous one and the same period last year, each
on its own), the categories and the rankings.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from gridmap.assessment._figures import FIGURE_SPECS, Figure, PeriodReport
from gridmap.assessment.disclosure import SUPPRESSED, protect_table, shown
from gridmap.assessment.doorknock import progress_table

#: Count figures (the report's ``count`` figures and the unpublished on-time closures).
_FIGURE_COUNTS = (*(key for key, _zh, _en, op in FIGURE_SPECS if op == "count"), "_on_time")

#: The (total, part) pairs of count figures whose difference is a count too.
_FIGURE_PAIRS = (
    ("buildings", "buildings_unassigned"),
    ("events_reported", "events_closed"),
    ("events_reported", "overdue"),
    ("events_reported", "supervised"),
    ("events_reported", "opinions"),
    ("events_reported", "help_requests"),
    ("help_requests", "problems_solved"),
    ("events_closed", "_on_time"),
    ("doorknock_households", "doorknock_visited"),
)


_FIGURE_RATES = {
    "closure_rate": ("events_closed", "events_reported"),
    "on_time_rate": ("_on_time", "events_closed"),
    "doorknock_progress": ("doorknock_visited", "doorknock_households"),
}


def _on_time(rate: Any, closed: Any) -> int:
    """On-time closures (not published) from the rate and the closed count."""
    if rate is None or closed is None or (isinstance(rate, float) and np.isnan(rate)):
        return 0
    return round(float(rate) * int(closed))


def _protect_row(values: dict[str, Any], k: int) -> pd.Series:
    row = dict(values)
    row["_on_time"] = _on_time(row.get("on_time_rate"), row.get("events_closed"))
    frame = pd.DataFrame([row], index=["total"])
    for c in _FIGURE_COUNTS:
        if c not in frame:
            frame[c] = None
        frame[c] = frame[c].astype(object)
    safe: pd.Series = protect_table(
        frame, counts=_FIGURE_COUNTS, pairs=_FIGURE_PAIRS, rates=_FIGURE_RATES, k=k
    ).iloc[0]
    return safe


def _hidden_label(f: Figure, key: str, before: Any, after: Any) -> str | None:
    if before is None or (isinstance(before, float) and np.isnan(before)):
        return None
    if key in _FIGURE_RATES and after is None:
        return SUPPRESSED
    if key in _FIGURE_COUNTS and not shown(after):
        return after if isinstance(after, str) else SUPPRESSED
    return None


def hide_small_counts(report: PeriodReport, facts: Any, k: int) -> None:
    """Apply :mod:`gridmap.assessment.disclosure` to every figure, table and ranking."""
    report.min_count = k
    safe = {
        which: _protect_row({f.key: getattr(f, which) for f in report.figures}, k)
        for which in ("value", "previous", "last_year")
    }
    figures = []
    for f in report.figures:
        query = {q: x for q, x in f.query.items() if q != "tracks"}  # ids are detail
        labels = {
            which: _hidden_label(f, f.key, getattr(f, which), safe[which].get(f.key))
            for which in ("value", "previous", "last_year")
        }
        figures.append(
            Figure(
                f.key,
                f.label_zh,
                f.label_en,
                None if labels["value"] else f.value,
                query,
                hidden=labels["value"],
                previous=None if labels["previous"] else f.previous,
                last_year=None if labels["last_year"] else f.last_year,
                previous_hidden=labels["previous"],
                last_year_hidden=labels["last_year"],
                history=f.history,
                note_zh=f.note_zh,
                note_en=f.note_en,
            )
        )
    report.figures = figures
    report.categories = _hide_categories(report.categories, k)
    rankings: dict[str, list[dict[str, Any]]] = {}
    for level, rows in report.rankings.items():
        if level == "worker":  # personnel detail: staff only
            continue
        table = progress_table(facts.households, facts.visits, by=level)
        rankings[level] = [_hide_ranking_row(r, table, k) for r in rows]
    report.rankings = rankings


def _hide_categories(rows: list[dict[str, Any]], k: int) -> list[dict[str, Any]]:
    if not rows:
        return []
    table = pd.DataFrame(
        [
            {
                "reported": int(r["reported"] or 0),
                "closed": int(r["closed"] or 0),
                "_on_time": _on_time(r.get("on_time_rate"), r.get("closed")),
                "closure_rate": r.get("closure_rate"),
                "on_time_rate": r.get("on_time_rate"),
            }
            for r in rows
        ],
        index=[str(r["category"]) for r in rows],
    )
    safe = protect_table(
        table,
        counts=("reported", "closed", "_on_time"),
        pairs=(("reported", "closed"), ("closed", "_on_time")),
        rates={
            "closure_rate": ("closed", "reported"),
            "on_time_rate": ("_on_time", "closed"),
        },
        groups=pd.Series("total", index=table.index),
        k=k,
    )
    out = []
    for r in rows:
        cell = safe.loc[str(r["category"])]
        out.append(
            {
                "category": r["category"],
                "name_zh": r["name_zh"],
                "name_en": r["name_en"],
                "reported": cell["reported"],
                "closed": cell["closed"],
                "closure_rate": _rate_cell(r.get("closure_rate"), cell["closure_rate"]),
                "on_time_rate": _rate_cell(r.get("on_time_rate"), cell["on_time_rate"]),
                "query": r["query"],
            }
        )
    return out


def _rate_cell(before: Any, after: Any) -> Any:
    """A protected rate: ``"*"`` when it was hidden, else the value (``None`` if undefined)."""
    undefined = before is None or (isinstance(before, float) and np.isnan(before))
    return None if undefined else (SUPPRESSED if after is None else after)


def _small(n: int, k: int) -> bool:
    return 1 <= n < k


def _hide_ranking_row(row: dict[str, Any], table: pd.DataFrame, k: int) -> dict[str, Any]:
    """A ranking row without evidence; indicators resting on small counts hidden."""
    ev = row.get("evidence", {}) or {}
    bases: dict[str, tuple[int, int]] = {}  # indicator -> (numerator, denominator)
    for code in ("report_timeliness", "closure_rate"):
        part = ev.get(code, {})
        n = len(part.get("events", []))
        bad = (
            len(part.get("late", []))
            if code == "report_timeliness"
            else n - len(part.get("closed", []))
        )
        bases[code] = (n - bad, n)
    part = ev.get("on_time_rate", {})
    n = len(part.get("events", []))
    bases["on_time_rate"] = (n - len(part.get("late", [])), n)
    unit = str(row["unit"])
    if unit in table.index:
        t: dict[Any, Any] = table.loc[unit].to_dict()
        bases["doorknock_progress"] = (int(t["visited"]), int(t["households"]))
        bases["data_accuracy"] = (int(t["accuracy_correct"]), int(t["accuracy_checked"]))
        bases["satisfaction"] = (int(t["satisfaction_yes"]), int(t["satisfaction_asked"]))
    out = {key: v for key, v in row.items() if key != "evidence"}
    hidden_any = False
    for code, (num, den) in bases.items():
        if out.get(code) is None:
            continue
        if _small(den, k) or _small(num, k) or _small(den - num, k):
            out[code] = SUPPRESSED
            out[f"{code}_band"] = "hidden"
            hidden_any = True
    if hidden_any:
        out["score"] = SUPPRESSED  # the score would give the hidden bands back
    return out
