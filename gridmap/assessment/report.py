"""The period report for leadership (工作报告数据): figures, rankings, charts, HTML.

Every figure of :func:`period_report` is a :class:`Figure` that carries the
query that produced it — the layer, the store filter and the operation — so
each number in a speech can be traced back and recomputed. :func:`render_html`
renders a self-contained page (Chinese with English alongside): no external
URL, every text escaped, charts and a map as inline PNG when matplotlib is
installed (Agg backend); :func:`gridmap.assessment.pdf.render_pdf` the same
figures as a PDF.

Staff roles read every figure. Viewers and external systems (no detail
rights) read the same report with small counts hidden
(:mod:`gridmap.assessment.disclosure`): counts from 1 to *k* − 1 show as
``"<k"``, cells from which they could be derived as ``"*"``, rates built on
hidden counts are left out, rankings carry no evidence (ids) and there is no
ranking of workers. In a ranking, an indicator whose denominator, numerator
or their difference (events judged, closed, late; households visited …) is
between 1 and *k* − 1 shows as ``"*"`` (band ``hidden``), and so does that
unit's score, which would give the band back.
"""

from __future__ import annotations

import base64
import io
import json
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from jinja2 import Environment, select_autoescape

from gridmap.access import Principal
from gridmap.assessment.disclosure import SUPPRESSED, needs_hiding, protect_table, shown
from gridmap.assessment.doorknock import progress_table
from gridmap.assessment.rules import INDICATORS, AssessmentRules, default_rules
from gridmap.assessment.scores import (
    check_period,
    describe_where,
    gather,
    score_facts,
)
from gridmap.errors import BadInput, NotFound
from gridmap.events.kpis import kpi_records, kpis
from gridmap.heat import DEFAULT_MIN_COUNT
from gridmap.model import EVENT_CATEGORIES
from gridmap.storage import Prefix, Store

__all__ = ["Figure", "PeriodReport", "hiding_note", "period_report", "render_html"]


@dataclass(frozen=True)
class Figure:
    """One number of the report and the query behind it.

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
    """

    key: str
    label_zh: str
    label_en: str
    value: int | float | None
    query: dict[str, Any]
    hidden: str | None = None

    def display(self) -> str:
        """The value as shown (rates in percent with one decimal; hidden ones as ``<k``/``*``).

        Examples
        --------
        >>> Figure("r", "结案率", "Closure rate", 0.875, {"op": "ratio"}).display()
        '87.5%'
        >>> Figure("n", "上报事件", "Events reported", None, {"op": "count"}, hidden="<3").display()
        '<3'
        """
        if self.hidden is not None:
            return self.hidden
        if self.value is None:
            return "—"
        if self.query.get("op") == "ratio":
            return f"{100 * float(self.value):.1f}%"
        if isinstance(self.value, float):
            return f"{self.value:,.1f}"
        return f"{self.value:,}"


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

    def figure(self, key: str) -> Figure:
        """The figure called *key* (``KeyError`` if absent)."""
        for f in self.figures:
            if f.key == key:
                return f
        raise KeyError(key)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready document (charts left out)."""
        return {
            "area": self.area,
            "area_name": self.area_name,
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "figures": [asdict(f) for f in self.figures],
            "categories": self.categories,
            "rankings": self.rankings,
            "rules": self.rules.model_dump(),
            "small_counts_hidden": self.min_count is not None,
            "min_count": self.min_count,
        }


def _check_access(store: Store, principal: Principal, area: str) -> str:
    if not (isinstance(area, str) and area.isascii() and area.isdigit()):
        raise BadInput("area must be a 6, 9, 12 or 15 digit code", field="area")
    if len(area) not in (6, 9, 12, 15):
        raise BadInput("area must be a 6, 9, 12 or 15 digit code", field="area")
    if not principal.covers(area):  # as if absent: existence does not leak
        raise NotFound(f"area {area} not found in your areas")
    table = "grids" if len(area) == 15 else "admin_units"
    column = "code"
    units = store.read(table, where={column: area})
    if len(units) == 0:
        raise NotFound(f"area {area} not found in your areas")
    return str(units["name"].iloc[-1] or area)


def _count_figure(
    store: Store, key: str, zh: str, en: str, layer: str, where: dict[str, Any]
) -> Figure:
    return Figure(
        key,
        zh,
        en,
        int(store.count(layer, where=where)),
        {"layer": layer, "where": describe_where(where), "op": "count"},
    )


def period_report(
    store: Store,
    principal: Principal,
    *,
    area: str,
    start: Any,
    end: Any,
    rules: AssessmentRules | None = None,
    now: pd.Timestamp | None = None,
    charts: bool = True,
    min_count: int = DEFAULT_MIN_COUNT,
) -> PeriodReport:
    """The leadership report of *area* over ``[start, end)``.

    Parameters
    ----------
    store : Store
        The store.
    principal : Principal
        The reader; must cover *area* (``NotFound`` otherwise). For roles
        without detail rights, small counts are hidden.
    area : str
        County, town, community or grid code.
    start, end : time
        The period (``end`` exclusive; UTC when no zone is given).
    rules : AssessmentRules, optional
        Assessment rules for the rankings.
    now : Timestamp, optional
        When open events are judged (default: now, capped at *end*).
    charts : bool
        Draw charts (needs matplotlib; skipped quietly without it).
    min_count : int
        Smallest count shown to roles without detail rights (*k*).

    Returns
    -------
    PeriodReport

    Examples
    --------
    >>> from gridmap.storage import open_store
    >>> from gridmap.access import SYSTEM
    >>> period_report(open_store(":memory:", migrate=True), SYSTEM, area="990100001",
    ...               start="2026-11-01", end="2026-12-01")
    Traceback (most recent call last):
    gridmap.errors.NotFound: area 990100001 not found in your areas
    """
    t0, t1 = check_period(start, end)
    name = _check_access(store, principal, area)
    rules = rules or default_rules()
    when = now if now is not None else pd.Timestamp.now(tz="UTC")
    facts = gather(store, principal, area=area, start=t0, end=t1, rules=rules, now=when)
    grid_where = {"grid_code": Prefix((area,))}
    figures: list[Figure] = []
    with store.scoped(principal.areas):
        figures.append(
            _count_figure(store, "buildings", "楼栋", "Buildings", "buildings", grid_where)
        )
        buildings = store.read("buildings", where=grid_where)
        est = (
            pd.to_numeric(buildings["households"], errors="coerce")
            if "households" in buildings
            else None
        )
        figures.append(
            Figure(
                "households_estimated",
                "户数(估算)",
                "Households (estimated)",
                int(est.fillna(0).sum()) if est is not None else 0,
                {
                    "layer": "buildings",
                    "where": describe_where(grid_where),
                    "op": "sum(households)",
                },
            )
        )
        figures.append(
            _count_figure(
                store,
                "households_registered",
                "登记户数",
                "Households registered",
                "households",
                grid_where,
            )
        )
        figures.append(
            _count_figure(
                store,
                "residents_registered",
                "实有人口",
                "Actual population registered",
                "residents",
                grid_where,
            )
        )
    ev = facts.events
    ev = ev[ev["status"] != "merged"] if len(ev) else ev
    ev_query = {
        "layer": "events",
        "where": facts.queries["events"],
        "excluding": {"status": "merged"},
    }
    total = kpis(ev.assign(town_code=area), by="town", now=min(when, t1)) if len(ev) else None
    row = total.iloc[0] if total is not None and len(total) else None

    def kpi(key: str, col: str, zh: str, en: str, op: str) -> Figure:
        v = None if row is None else row[col]
        value: int | float | None
        if v is None or (isinstance(v, float) and np.isnan(v)):
            value = None if op == "ratio" else 0
        else:
            value = float(v) if op == "ratio" else int(v)
        return Figure(key, zh, en, value, {**ev_query, "op": op, "column": col})

    figures += [
        kpi("events_reported", "reported", "上报事件", "Events reported", "count"),
        kpi("events_closed", "closed", "结案事件", "Events closed", "count"),
        kpi("closure_rate", "closure_rate", "结案率", "Closure rate", "ratio"),
        kpi("on_time_rate", "on_time_rate", "按期结案率", "On-time closure rate", "ratio"),
        kpi("opinions", "opinions", "征集意见", "Opinions collected", "count"),
        kpi("help_requests", "help_requests", "群众求助", "Help requests", "count"),
        kpi("problems_solved", "problems_solved", "为群众解决问题", "Problems solved", "count"),
    ]
    grid_cov = score_facts(facts, level="grid", area=area, rules=rules)
    cov = grid_cov.scores["patrol_coverage_value"].dropna() if len(grid_cov.scores) else None
    figures.append(
        Figure(
            "patrol_coverage",
            "巡查覆盖率(网格平均)",
            "Patrol coverage (mean of grids)",
            float(cov.mean()) if cov is not None and len(cov) else None,
            {
                "layer": "patrol_tracks",
                "where": facts.queries["patrol_tracks"],
                "op": "ratio",
                "method": "mean over grids of covered street length / (required length × "
                f"{len(facts.days)} patrol days)",
                "tracks": sorted({int(i) for ids in facts.coverage["track_ids"] for i in ids}),
            },
        )
    )
    dk = progress_table(facts.households, facts.visits, by="town")
    visits_query = {"layer": "doorknock_visits", "where": facts.queries["doorknock_visits"]}
    hh_total = int(dk["households"].sum()) if len(dk) else 0
    visited = int(dk["visited"].sum()) if len(dk) else 0
    figures += [
        Figure(
            "doorknock_households",
            "应走访户数",
            "Households to visit",
            hh_total,
            {
                "layer": "households",
                "where": facts.queries["households"],
                "op": "count per grid, else grids.households",
            },
        ),
        Figure(
            "doorknock_visited",
            "已走访户数",
            "Households visited",
            visited,
            {**visits_query, "op": "count distinct household_id"},
        ),
        Figure(
            "doorknock_progress",
            "敲门行动进度",
            "Door-knocking progress",
            visited / hh_total if hh_total else None,
            {**visits_query, "op": "ratio", "of": "doorknock_visited / doorknock_households"},
        ),
    ]
    categories = _categories(ev)
    rankings: dict[str, list[dict[str, Any]]] = {}
    for level in ("town", "community", "grid", "worker"):
        if level != "worker" and len(area) > {"town": 9, "community": 12, "grid": 15}[level]:
            continue
        a = grid_cov if level == "grid" else score_facts(facts, level=level, area=area, rules=rules)
        rankings[level] = [_ranking_row(r, level) for r in a.records()]
    report = PeriodReport(area, name, t0, t1, figures, categories, rankings, rules)
    if needs_hiding(principal):
        _hide_small_counts(report, facts, int(min_count))
    if charts:
        report.charts = _charts(report, store, principal)
    return report


def _ranking_row(rec: dict[str, Any], level: str) -> dict[str, Any]:
    out = {"unit": rec[level], "rank": rec["rank"], "score": rec["score"]}
    for code in INDICATORS:
        out[code] = rec.get(f"{code}_value")
        out[f"{code}_band"] = rec.get(f"{code}_band")
    out["evidence"] = rec.get("evidence", {})
    return out


#: Count figures and the (total, part) pairs whose difference is a count too.
_FIGURE_COUNTS = (
    "buildings",
    "households_estimated",
    "households_registered",
    "residents_registered",
    "events_reported",
    "events_closed",
    "opinions",
    "help_requests",
    "problems_solved",
    "doorknock_households",
    "doorknock_visited",
    "_on_time",
)
_FIGURE_PAIRS = (
    ("events_reported", "events_closed"),
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
    return int(round(float(rate) * int(closed)))


def _hide_small_counts(report: PeriodReport, facts: Any, k: int) -> None:
    """Apply :mod:`gridmap.assessment.disclosure` to every figure, table and ranking."""
    report.min_count = k
    values: dict[str, Any] = {f.key: f.value for f in report.figures}
    values["_on_time"] = _on_time(values.get("on_time_rate"), values.get("events_closed"))
    row = pd.DataFrame([values], index=["total"])
    for c in _FIGURE_COUNTS:
        row[c] = row[c].fillna(0).astype(int)
    safe = protect_table(
        row, counts=_FIGURE_COUNTS, pairs=_FIGURE_PAIRS, rates=_FIGURE_RATES, k=k
    ).iloc[0]
    figures = []
    for f in report.figures:
        v = safe[f.key]
        query = {q: x for q, x in f.query.items() if q != "tracks"}  # ids are detail
        rate_hidden = f.key in _FIGURE_RATES and f.value is not None and v is None
        if rate_hidden or (f.key in _FIGURE_COUNTS and not shown(v)):
            label = v if isinstance(v, str) else SUPPRESSED
            figures.append(Figure(f.key, f.label_zh, f.label_en, None, query, hidden=label))
        else:
            figures.append(Figure(f.key, f.label_zh, f.label_en, f.value, query))
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


def _categories(ev: pd.DataFrame) -> list[dict[str, Any]]:
    if ev.empty:
        return []
    rows = kpi_records(kpis(ev, by="category"))
    for r in rows:
        zh, en = EVENT_CATEGORIES.get(str(r["category"]), (str(r["category"]), ""))
        r["name_zh"], r["name_en"] = zh, en
        r["query"] = {"layer": "events", "where": {"category": r["category"]}, "op": "kpis"}
    return rows


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _charts(report: PeriodReport, store: Store, principal: Principal) -> dict[str, str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - matplotlib is optional
        return {}
    out: dict[str, str] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # missing glyphs: labels below are ASCII anyway
        cat_rows = [
            r for r in report.categories if shown(r["reported"]) and shown(r["closed"])
        ]  # hidden cells are not drawn either
        if cat_rows:
            fig, ax = plt.subplots(figsize=(6, 3))
            cats = [str(r["name_en"] or r["category"]) for r in cat_rows]
            ax.bar(cats, [r["reported"] for r in cat_rows], label="reported")
            ax.bar(cats, [r["closed"] for r in cat_rows], label="closed")
            ax.set_title("Events by category")
            ax.tick_params(axis="x", rotation=30)
            ax.legend()
            out["categories"] = _png(fig)
            plt.close(fig)
        rows = report.rankings.get("grid", [])
        if rows:
            fig, ax = plt.subplots(figsize=(6, 3))
            ax.bar(
                [str(r["unit"])[-3:] for r in rows],
                [r["score"] if isinstance(r["score"], int | float) else 0 for r in rows],
            )
            ax.set_title("Grid scores (0-100)")
            ax.set_ylim(0, 100)
            out["grid_scores"] = _png(fig)
            plt.close(fig)
        with store.scoped(principal.areas):
            grids = store.read("grids", where={"code": Prefix((report.area,))})
        if isinstance(grids, gpd.GeoDataFrame) and len(grids):
            score = {
                str(r["unit"]): r["score"] for r in rows if isinstance(r["score"], int | float)
            }
            grids = grids.assign(
                score=pd.to_numeric(grids["code"].map(score), errors="coerce").astype(float)
            )
            fig, ax = plt.subplots(figsize=(5, 5))
            grids.plot(
                column="score",
                ax=ax,
                cmap="RdYlGn",
                vmin=0,
                vmax=100,
                legend=True,
                edgecolor="black",
                linewidth=0.4,
                missing_kwds={"color": "lightgrey"},
            )
            ax.set_axis_off()
            ax.set_title("Assessment score by grid")
            out["map"] = _png(fig)
            plt.close(fig)
    return out


_TEMPLATE = """<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>{{ r.area_name }} 工作报告 Period report {{ start }} – {{ end }}</title>
<style>
body{font-family:sans-serif;margin:2em;max-width:1000px;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px}
td.n{text-align:right}.en{color:#666;font-size:.9em}details{font-size:.8em;color:#555}
</style></head><body>
<h1>{{ r.area_name }}（{{ r.area }}）工作报告 <span class="en">Period report</span></h1>
<p>统计期间 Period: {{ start }} – {{ end }}（不含结束日 end exclusive）</p>
{% if note %}<p class="en" id="small-counts">{{ note }}</p>{% endif %}
<h2>主要数据 <span class="en">Key figures</span></h2>
<table><tr><th>指标 Figure</th><th>数值 Value</th><th>来源 Query</th></tr>
{% for f in r.figures %}<tr id="fig-{{ f.key }}"><td>{{ f.label_zh }}
<span class="en">{{ f.label_en }}</span></td><td class="n">{{ f.display() }}</td>
<td><details><summary>{{ f.query.layer }}</summary><code>{{ q(f.query) }}</code></details></td></tr>
{% endfor %}</table>
<h2>分类结案 <span class="en">Events by category</span></h2>
<table><tr><th>类别 Category</th><th>上报 Reported</th><th>结案 Closed</th>
<th>结案率 Closure</th><th>按期结案率 On time</th></tr>
{% for c in r.categories %}<tr><td>{{ c.name_zh }} <span class="en">{{ c.name_en }}</span></td>
<td class="n">{{ c.reported }}</td><td class="n">{{ c.closed }}</td>
<td class="n">{{ pct(c.closure_rate) }}</td><td class="n">{{ pct(c.on_time_rate) }}</td></tr>
{% endfor %}</table>
{% for name, title in charts %}{% if r.charts.get(name) %}
<figure><img alt="{{ title }}" src="data:image/png;base64,{{ r.charts[name] }}">
<figcaption>{{ title }}</figcaption></figure>{% endif %}{% endfor %}
{% for level, title in levels %}{% if r.rankings.get(level) %}
<h2>{{ title }}</h2>
<table><tr><th>排名 Rank</th><th>单位 Unit</th><th>得分 Score</th>
{% for code, names in indicators %}<th>{{ names[0] }}<br><span class="en">{{ names[1] }}</span></th>
{% endfor %}</tr>
{% for row in r.rankings[level] %}<tr>
<td class="n">{{ row.rank if row.rank is not none else "—" }}</td>
<td>{{ row.unit }}</td><td class="n">{{ num(row.score) }}</td>
{% for code, names in indicators %}<td class="n">{{ pct(row[code]) }}</td>{% endfor %}</tr>
{% endfor %}</table>{% endif %}{% endfor %}
<h2>考核细则 <span class="en">Assessment rules</span></h2>
<table><tr><th>指标 Indicator</th><th>权重 Weight</th><th>档次 Bands</th></tr>
{% for i in r.rules.indicators %}<tr>
<td>{{ i.name_zh }} <span class="en">{{ i.name_en }}</span></td>
<td class="n">{{ i.weight }}</td><td>{% for b in i.bands %}≥{{ b.min_percent }}%: {{
 (b.share * 100)|round(0) }}% {% endfor %}</td></tr>{% endfor %}</table>
<p class="en">每个数字均可追溯到其查询 Every figure names the query that produced it.</p>
</body></html>
"""


def _pct(v: Any) -> str:
    if isinstance(v, str):  # hidden: "<k" or "*"
        return v
    return "—" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{100 * v:.1f}%"


def _num(v: Any) -> str:
    if isinstance(v, str):
        return v
    return "—" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.1f}"


def hiding_note(report: PeriodReport) -> str | None:
    """The explanation of hidden cells (zh-CN and English), when small counts are hidden.

    Examples
    --------
    >>> r = PeriodReport("990100001", "街道", pd.Timestamp("2026-11-01", tz="UTC"),
    ...                  pd.Timestamp("2026-12-01", tz="UTC"), [], [], {}, default_rules(),
    ...                  min_count=3)
    >>> hiding_note(r)[:12]
    '小于 3 的数字显示为 '
    """
    if report.min_count is None:
        return None
    k = report.min_count
    return (
        f"小于 {k} 的数字显示为 <{k}；可据以推算的数字与比率显示为 *。"
        f" Counts from 1 to {k - 1} show as <{k}; figures and rates from which they"
        " could be derived show as *."
    )


def render_html(report: PeriodReport) -> str:
    """The report as one self-contained HTML page (escaped text, inline PNG, no URL).

    Examples
    --------
    >>> r = PeriodReport("990100001", "<b>街道</b>", pd.Timestamp("2026-11-01", tz="UTC"),
    ...                  pd.Timestamp("2026-12-01", tz="UTC"), [], [], {}, default_rules())
    >>> "&lt;b&gt;街道" in render_html(r)
    True
    """
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    template = env.from_string(_TEMPLATE)
    return template.render(
        r=report,
        start=report.start.strftime("%Y-%m-%d"),
        end=report.end.strftime("%Y-%m-%d"),
        note=hiding_note(report),
        q=lambda d: json.dumps(d, ensure_ascii=False, sort_keys=True),
        pct=_pct,
        num=_num,
        indicators=list(INDICATORS.items()),
        charts=[
            ("categories", "分类事件 Events by category"),
            ("grid_scores", "网格得分 Grid scores"),
            ("map", "网格考核地图 Assessment map by grid"),
        ],
        levels=[
            ("town", "镇街排名 Ranking by town"),
            ("community", "社区排名 Ranking by community"),
            ("grid", "网格排名 Ranking by grid"),
            ("worker", "网格员排名 Ranking by worker"),
        ],
    )
