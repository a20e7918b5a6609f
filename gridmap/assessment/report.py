"""The period report for leadership (工作报告数据): figures, comparisons, rankings, charts, HTML.

Every figure of :func:`period_report` is a :class:`Figure` that carries the
query that produced it — the layer, the store filter and the operation — so
each number in a speech can be traced back and recomputed (in the JSON form;
the pages for people show the rule of a figure, not its query). Each figure
also carries its value in the previous period and in the same period last
year. :func:`render_html` renders a self-contained page (Chinese with English
alongside): no external URL, every text escaped, charts (zh-CN titles and
axes, in the PDF's CJK font) and a map as inline PNG when matplotlib is
installed (Agg backend); :func:`gridmap.assessment.pdf.render_pdf` the same
figures as a PDF. :func:`dashboard_figures` gives the leader dashboard the
same figures as a plain dict.

What the figures mean:

- **Buildings** (楼栋): every building of the area, those outside every grid
  (no ``grid_code``; inside the area's boundary, and for a county or city also
  those outside every boundary) listed apart as *unassigned* — never dropped.
- **Dwellings** (房屋) and **estimated households/population**: the import's
  floor-area estimates of those buildings (one household per dwelling);
  **registered** households and population: the resident registry.
- **Events**: those reported in the period (duplicates left out), their status
  now; overdue judged at the end of the period (or now, if earlier);
  supervised (督办): supervised before the end of the period.
- **Patrol coverage** (巡查覆盖率): per grid, the share of its required streets
  that GPS tracks of the period passed (within 20 m, on any day with a track;
  a street counts once); the area's figure is the mean over its grids, a grid
  without tracks counting 0 (:func:`gridmap.assessment.scores.period_coverage`).
- **Door-knocking progress**: households visited in the period / households,
  the grid's estimate until the register covers it
  (:func:`gridmap.assessment.doorknock.grid_households`).
- **Comparisons**: the previous period (the calendar months before, for a
  period of whole months; else the same length before) and the same period
  last year. Events, coverage and visits are measured the same way for each;
  registered households and population count those registered before the
  period's end; the import's estimates keep no history (no comparison).

Dates without a zone are read, and times shown, in the time zone *tz*
(``GRIDMAP_TIME_ZONE``, default Asia/Shanghai).

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

from dataclasses import dataclass, replace
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridmap.assessment._figures import (
    FIGURE_SPECS,
    RANKING_SIZE,
    Figure,
    PeriodReport,
    is_idle,
    unit_label,
)
from gridmap.assessment._report_hiding import hide_small_counts
from gridmap.assessment._report_html import hiding_note, render_charts, render_html
from gridmap.assessment.disclosure import needs_hiding
from gridmap.assessment.doorknock import progress_table
from gridmap.assessment.rules import INDICATORS, AssessmentRules, default_rules
from gridmap.assessment.scores import (
    Facts,
    check_period,
    coverage_summary,
    describe_where,
    gather,
    score_facts,
)
from gridmap.common.errors import BadInput, NotFound
from gridmap.common.model import EVENT_CATEGORIES
from gridmap.common.settings import DEFAULT_MIN_COUNT
from gridmap.common.timezone import DEFAULT_TIME_ZONE, check_time_zone
from gridmap.events.kpis import kpi_records, kpis
from gridmap.security.access import Principal
from gridmap.storage import Cmp, Prefix, Store

__all__ = [
    "DASHBOARD_KEYS",
    "DEFAULT_TIME_ZONE",
    "RANKING_SIZE",
    "Figure",
    "PeriodReport",
    "ReportOptions",
    "comparison_periods",
    "dashboard_figures",
    "hiding_note",
    "period_report",
    "render_html",
]


#: Headline figures of the dashboard, in order.
DASHBOARD_KEYS: tuple[str, ...] = (
    "buildings",
    "buildings_unassigned",
    "dwellings",
    "households_estimated",
    "households_registered",
    "residents_estimated",
    "residents_registered",
    "events_reported",
    "events_closed",
    "closure_rate",
    "on_time_rate",
    "overdue",
    "supervised",
    "patrol_coverage",
    "doorknock_progress",
)


_LEVEL_NAMES = {
    "town": ("镇街", "towns"),
    "community": ("社区", "communities"),
    "grid": ("网格", "grids"),
    "worker": ("网格员", "workers"),
}


def comparison_periods(
    start: pd.Timestamp, end: pd.Timestamp, *, tz: str = DEFAULT_TIME_ZONE
) -> tuple[tuple[pd.Timestamp, pd.Timestamp], tuple[pd.Timestamp, pd.Timestamp]]:
    """The previous period and the same period last year of ``[start, end)`` (UTC out).

    A period of whole calendar months (in *tz*) is compared with as many
    months before it; any other period with the same length before it.

    Examples
    --------
    >>> from gridmap.common.timezone import local_text
    >>> t0, t1 = check_period("2026-11-01", "2026-12-01", tz="Asia/Shanghai")
    >>> (p0, p1), (y0, y1) = comparison_periods(t0, t1, tz="Asia/Shanghai")
    >>> [local_text(t, "Asia/Shanghai", "%Y-%m-%d") for t in (p0, p1, y0, y1)]
    ['2026-10-01', '2026-11-01', '2025-11-01', '2025-12-01']
    """
    a, b = start.tz_convert(tz), end.tz_convert(tz)

    def month_start(t: pd.Timestamp) -> bool:
        return bool(t.day == 1 and t == t.normalize())

    if month_start(a) and month_start(b):
        months = (b.year - a.year) * 12 + b.month - a.month
        prev = (a - pd.DateOffset(months=months), a)
    else:
        prev = (a - (b - a), a)
    year = (a - pd.DateOffset(years=1), b - pd.DateOffset(years=1))
    utc = [pd.Timestamp(t).tz_convert("UTC") for t in (*prev, *year)]
    return (utc[0], utc[1]), (utc[2], utc[3])


def _check_access(store: Store, principal: Principal, area: str) -> tuple[str, Any]:
    """The area's name and boundary (``NotFound`` when the principal may not read it)."""
    if not (isinstance(area, str) and area.isascii() and area.isdigit()):
        raise BadInput("area must be a 6, 9, 12 or 15 digit code", field="area")
    if len(area) not in (6, 9, 12, 15):
        raise BadInput("area must be a 6, 9, 12 or 15 digit code", field="area")
    if not principal.covers(area):  # as if absent: existence does not leak
        raise NotFound(f"area {area} not found in your areas")
    table = "grids" if len(area) == 15 else "admin_units"
    units = store.read(table, where={"code": area})
    if len(units) == 0:
        raise NotFound(f"area {area} not found in your areas")
    if "valid_to" in units and units["valid_to"].isna().any():
        units = units[units["valid_to"].isna()]
    row = units.iloc[-1]
    shape = row.get("geometry") if isinstance(units, gpd.GeoDataFrame) else None
    return str(row["name"] or area), shape


def _names(store: Store, principal: Principal, area: str) -> dict[str, str]:
    """Names of the admin units and grids of *area*, by code."""
    where = {"code": Prefix((area,))}
    with store.scoped(principal.areas):
        units = store.read("admin_units", where=where)
        grids = store.read("grids", where=where)
    out: dict[str, str] = {}
    for frame in (units, grids):
        if len(frame):
            frame = frame.sort_values("id")
            for code, name in zip(frame["code"], frame["name"], strict=True):
                if isinstance(name, str) and name:
                    out[str(code)] = name
    return out


def _unassigned(store: Store, area: str, shape: Any) -> gpd.GeoDataFrame | pd.DataFrame:
    """Buildings of *area* outside every grid (no ``grid_code``).

    Those whose representative point lies inside the area's boundary; for a
    county or city (6 digits) also those outside every county boundary, so
    that the county's buildings add up to the store's. Buildings are public
    base data: they are read by place, not by the reader's areas.
    """
    valid = shape is not None and not getattr(shape, "is_empty", True)
    bbox = tuple(float(v) for v in shapely.bounds(shape)) if valid and len(area) != 6 else None
    rows = store.read("buildings", where={"grid_code": None}, bbox=bbox)  # type: ignore[arg-type]
    if not isinstance(rows, gpd.GeoDataFrame) or rows.empty:
        return rows.iloc[0:0]
    points = shapely.point_on_surface(rows.geometry.to_numpy())
    inside = shapely.within(points, shape) if valid else np.zeros(len(rows), dtype=bool)
    if len(area) == 6:
        units = store.read("admin_units")
        counties = [
            g
            for c, g in zip(units.get("code", []), units.get("geometry", []), strict=True)
            if isinstance(c, str) and len(c) == 6 and g is not None
        ]
        elsewhere = np.zeros(len(rows), dtype=bool)
        for g in counties:
            elsewhere |= shapely.within(points, g)
        inside = inside | ~elsewhere
    return rows.loc[np.asarray(inside, dtype=bool)]


def _stock(store: Store, principal: Principal, area: str, shape: Any) -> dict[str, int]:
    """Buildings, dwellings, households and population of *area* as stored now."""
    grid_where = {"grid_code": Prefix((area,))}
    with store.scoped(principal.areas):
        assigned = store.read("buildings", where=grid_where)
        registered_hh = int(store.count("households", where=grid_where))
        registered_res = int(store.count("residents", where=grid_where))
    loose = _unassigned(store, area, shape)

    def total(column: str) -> int:
        return sum(
            int(pd.to_numeric(f[column], errors="coerce").fillna(0).sum())
            for f in (assigned, loose)
            if column in f and len(f)
        )

    dwellings = total("households")
    return {
        "buildings": len(assigned) + len(loose),
        "buildings_unassigned": len(loose),
        "dwellings": dwellings,
        "households_estimated": dwellings,
        "households_registered": registered_hh,
        "residents_estimated": total("residents"),
        "residents_registered": registered_res,
    }


def _registered_before(
    store: Store, principal: Principal, area: str, end: pd.Timestamp
) -> dict[str, int]:
    where: dict[str, Any] = {
        "grid_code": Prefix((area,)),
        "created_at": Cmp("<", end.to_pydatetime()),
    }
    with store.scoped(principal.areas):
        return {
            "households_registered": int(store.count("households", where=where)),
            "residents_registered": int(store.count("residents", where=where)),
        }


def _activity(
    facts: Facts, *, area: str, end: pd.Timestamp, now: pd.Timestamp
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Event, patrol and door-knocking figures of one period, and what coverage rests on."""
    ev = facts.events
    ev = ev[ev["status"] != "merged"] if len(ev) else ev
    judged = min(now, end)
    table = kpis(ev.assign(town_code=area), by="town", now=judged) if len(ev) else None
    row = table.iloc[0] if table is not None and len(table) else None
    out: dict[str, Any] = {}
    for key, col in (
        ("events_reported", "reported"),
        ("events_closed", "closed"),
        ("opinions", "opinions"),
        ("help_requests", "help_requests"),
        ("problems_solved", "problems_solved"),
        ("overdue", "overdue"),
    ):
        out[key] = 0 if row is None else int(row[col])
    for key in ("closure_rate", "on_time_rate"):
        v = None if row is None else row[key]
        out[key] = None if v is None or pd.isna(v) else float(v)
    if len(ev) and "supervised_at" in ev:
        at = pd.to_datetime(ev["supervised_at"], utc=True)
        out["supervised"] = int((at.notna() & (at < end)).sum())
    else:
        out["supervised"] = 0
    cov = coverage_summary(facts)
    out["patrol_coverage"] = cov["value"]
    dk = progress_table(facts.households, facts.visits, by="town")
    out["doorknock_households"] = int(dk["households"].sum()) if len(dk) else 0
    out["doorknock_visited"] = int(dk["visited"].sum()) if len(dk) else 0
    hh = out["doorknock_households"]
    out["doorknock_progress"] = out["doorknock_visited"] / hh if hh else None
    return out, cov


def _hh_rule(facts: Facts) -> tuple[str, str]:
    src = facts.households["households_source"] if len(facts.households) else pd.Series()
    n_reg = int((src == "registry").sum())
    n_est = int((src == "estimate").sum())
    zh = (
        "已走访户数 ÷ 应走访户数；登记户数达到估算户数的网格按登记户数计，其余按估算户数计"
        f"（按登记 {n_reg} 个网格，按估算 {n_est} 个网格）。"
    )
    en = (
        "Households visited ÷ households to visit: a grid counts its registered households once "
        "they reach its estimate, its estimate until then "
        f"({n_reg} grids by the register, {n_est} by the estimate)."
    )
    return zh, en


#: Figures the store keeps no history of (the import's estimates; the current assignment).
_NO_HISTORY = frozenset(
    {
        "buildings",
        "buildings_unassigned",
        "dwellings",
        "households_estimated",
        "residents_estimated",
    }
)


_KPI_COLUMN = {
    "events_reported": "reported",
    "events_closed": "closed",
    "closure_rate": "closure_rate",
    "on_time_rate": "on_time_rate",
    "overdue": "overdue",
    "opinions": "opinions",
    "help_requests": "help_requests",
    "problems_solved": "problems_solved",
}


@dataclass(frozen=True)
class ReportOptions:
    """How a period report is made: rules, time zone, small-count hiding, charts, comparisons.

    Attributes
    ----------
    rules : AssessmentRules, optional
        Assessment rules for the rankings (default: :func:`default_rules`).
    tz : str
        Time zone of dates without a zone and of the dates shown
        (``GRIDMAP_TIME_ZONE`` at the edges; default Asia/Shanghai).
    min_count : int
        Smallest count shown to roles without detail rights (*k*).
    charts : bool
        Draw charts (needs matplotlib; skipped quietly without it).
    compare : bool
        Compute the previous period and the same period last year.
    """

    rules: AssessmentRules | None = None
    tz: str = DEFAULT_TIME_ZONE
    min_count: int = DEFAULT_MIN_COUNT
    charts: bool = True
    compare: bool = True


def period_report(
    store: Store,
    principal: Principal,
    *,
    area: str,
    start: Any,
    end: Any,
    now: pd.Timestamp | None = None,
    options: ReportOptions = ReportOptions(),
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
        The period (``end`` exclusive; in ``options.tz`` when no zone is given).
    now : Timestamp, optional
        When open events are judged (default: now, capped at the period's end).
    options : ReportOptions
        Rules, time zone, small-count threshold, charts and comparisons.

    Returns
    -------
    PeriodReport

    Examples
    --------
    >>> from gridmap.storage import open_store
    >>> from gridmap.security.access import SYSTEM
    >>> period_report(open_store(":memory:", migrate=True), SYSTEM, area="990100001",
    ...               start="2026-11-01", end="2026-12-01")
    Traceback (most recent call last):
    gridmap.common.errors.NotFound: area 990100001 not found in your areas
    """
    tz = check_time_zone(options.tz)
    t0, t1 = check_period(start, end, tz=tz)
    name, shape = _check_access(store, principal, area)
    rules = options.rules or default_rules()
    when = now if now is not None else pd.Timestamp.now(tz="UTC")
    facts = gather(store, principal, area=area, period=(t0, t1), rules=rules, now=when, tz=tz)
    values: dict[str, Any] = {**_stock(store, principal, area, shape)}
    current, cov = _activity(facts, area=area, end=t1, now=when)
    values.update(current)
    past: dict[str, dict[str, Any]] = {}
    periods: dict[str, tuple[pd.Timestamp, pd.Timestamp]] = {}
    if options.compare:
        prev, year = comparison_periods(t0, t1, tz=tz)
        periods = {"previous": prev, "last_year": year}
        for which, (p0, p1) in periods.items():
            f = gather(
                store,
                principal,
                area=area,
                period=(p0, p1),
                rules=rules,
                now=when,
                tz=tz,
                households_as_of=p1,
            )
            past[which] = {**_activity(f, area=area, end=p1, now=when)[0]}
            past[which].update(_registered_before(store, principal, area, p1))
    figures = _figures(values, past, facts, cov, area=area, shape=shape)
    categories = _categories(
        facts.events[facts.events["status"] != "merged"] if len(facts.events) else facts.events
    )
    names = _names(store, principal, area)
    rankings: dict[str, list[dict[str, Any]]] = {}
    for level in ("town", "community", "grid", "worker"):
        if level != "worker" and len(area) > {"town": 9, "community": 12, "grid": 15}[level]:
            continue
        a = score_facts(facts, level=level, area=area, rules=rules)
        rankings[level] = [_ranking_row(r, level, names) for r in a.records()]
    report = PeriodReport(
        area,
        name,
        t0,
        t1,
        figures,
        categories,
        rankings,
        rules,
        tz=tz,
        previous=periods.get("previous"),
        last_year=periods.get("last_year"),
        generated_at=when,
    )
    if needs_hiding(principal):
        hide_small_counts(report, facts, int(options.min_count))
    if options.charts:
        report.charts = render_charts(report, store, principal)
    _trim_rankings(report)
    report.highlights = _highlights(report, len(facts.days))
    return report


def _figures(
    values: dict[str, Any],
    past: dict[str, dict[str, Any]],
    facts: Facts,
    cov: dict[str, Any],
    *,
    area: str,
    shape: Any,
) -> list[Figure]:
    grid_where = describe_where({"grid_code": Prefix((area,))})
    ev_query = {
        "layer": "events",
        "where": facts.queries["events"],
        "excluding": {"status": "merged"},
    }
    visits_query = {"layer": "doorknock_visits", "where": facts.queries["doorknock_visits"]}
    queries: dict[str, dict[str, Any]] = {
        "buildings": {
            "layer": "buildings",
            "where": grid_where,
            "op": "count",
            "plus": "buildings_unassigned",
        },
        "buildings_unassigned": {
            "layer": "buildings",
            "where": {"grid_code": None, "within": f"boundary of {area}"},
            "op": "count",
        },
        "dwellings": {"layer": "buildings", "where": grid_where, "op": "sum(households)"},
        "households_estimated": {
            "layer": "buildings",
            "where": grid_where,
            "op": "sum(households)",
        },
        "households_registered": {"layer": "households", "where": grid_where, "op": "count"},
        "residents_estimated": {"layer": "buildings", "where": grid_where, "op": "sum(residents)"},
        "residents_registered": {"layer": "residents", "where": grid_where, "op": "count"},
        "supervised": {**ev_query, "op": "count", "column": "supervised_at"},
        "patrol_coverage": {
            "layer": "patrol_tracks",
            "where": facts.queries["patrol_tracks"],
            "op": "ratio",
            "method": "mean over the area's grids of (required street length within 20 m of a "
            "track of the period) / (required street length); grids without tracks count 0",
            "tracks": cov["tracks"],
            "grids": cov["grids"],
            "grids_patrolled": cov["grids_patrolled"],
            "track_days": cov["track_days"],
        },
        "doorknock_households": {
            "layer": "households",
            "where": facts.queries["households"],
            "op": "per grid: registered households once they reach grids.households, "
            "else grids.households",
        },
        "doorknock_visited": {**visits_query, "op": "count distinct household_id"},
        "doorknock_progress": {
            **visits_query,
            "op": "ratio",
            "of": "doorknock_visited / doorknock_households",
        },
    }
    for key, col in _KPI_COLUMN.items():
        op = "ratio" if key.endswith("_rate") else "count"
        queries[key] = {**ev_query, "op": op, "column": col}
    hh_zh, hh_en = _hh_rule(facts)
    notes: dict[str, tuple[str, str]] = {
        "buildings": (
            "全部楼栋，含未划入任何网格的楼栋（单列于下一行）。",
            "Every building, including those outside every grid (listed apart below).",
        ),
        "dwellings": (
            "按建筑面积估算（约 95 平方米一套），估算户数按每套一户计；估算值无历史，不作比较。",
            "Estimated from floor area (about 95 m² each); one household per dwelling; "
            "estimates keep no history, so no comparison.",
        ),
        "overdue": (
            "本期上报、统计截止时仍未办结且已超过办结时限的事件。",
            "Events of the period still open and past their deadline at the end of the period.",
        ),
        "patrol_coverage": (
            "各网格本期有轨迹日的巡查轨迹(20 米内)经过的必巡街道长度 ÷ 必巡街道总长度，"
            "同一街道只计一次；区域取各网格平均，无轨迹网格计 0"
            f"（{cov['grids_patrolled']}/{cov['grids']} 个网格有轨迹，"
            f"有轨迹 {cov['track_days']} 天）。",
            "Per grid, the required street length GPS tracks of the period passed (within 20 m, "
            "on the days with a track; each street once) ÷ all required street length; the "
            "area takes the mean of its grids, a grid without tracks counting 0 "
            f"({cov['grids_patrolled']} of {cov['grids']} grids patrolled, "
            f"{cov['track_days']} days with a track).",
        ),
        "doorknock_progress": (hh_zh, hh_en),
    }
    out = []
    for key, zh, en, _op in FIGURE_SPECS:
        value = values.get(key)
        history = key not in _NO_HISTORY
        note = notes.get(key, (None, None))
        out.append(
            Figure(
                key,
                zh,
                en,
                value,
                queries[key],
                previous=past.get("previous", {}).get(key) if history else None,
                last_year=past.get("last_year", {}).get(key) if history else None,
                history=history and bool(past),
                note_zh=note[0],
                note_en=note[1],
            )
        )
    return out


def _ranking_row(rec: dict[str, Any], level: str, names: dict[str, str]) -> dict[str, Any]:
    unit = str(rec[level])
    out = {
        "unit": unit,
        "name": unit if level == "worker" else names.get(unit, unit),
        "rank": rec["rank"],
        "score": rec["score"],
    }
    for code in INDICATORS:
        out[code] = rec.get(f"{code}_value")
        out[f"{code}_band"] = rec.get(f"{code}_band")
    out["evidence"] = rec.get("evidence", {})
    return out


def _trim_rankings(report: PeriodReport) -> None:
    """Leave out idle units; keep the top and bottom :data:`RANKING_SIZE` of the rest."""
    notes: dict[str, dict[str, int]] = {}
    for level, rows in report.rankings.items():
        active = [r for r in rows if not is_idle(r)]
        others = 0
        if len(active) > 2 * RANKING_SIZE:
            others = len(active) - 2 * RANKING_SIZE
            active = active[:RANKING_SIZE] + active[-RANKING_SIZE:]
        report.rankings[level] = active
        notes[level] = {
            "units": len(rows),
            "others": others,
            "idle": len(rows) - len(active) - others,
        }
    report.ranking_notes = notes


def _categories(ev: pd.DataFrame) -> list[dict[str, Any]]:
    if ev.empty:
        return []
    rows = kpi_records(kpis(ev, by="category"))
    for r in rows:
        zh, en = EVENT_CATEGORIES.get(str(r["category"]), (str(r["category"]), ""))
        r["name_zh"], r["name_en"] = zh, en
        r["query"] = {"layer": "events", "where": {"category": r["category"]}, "op": "kpis"}
    return rows


def _highlights(report: PeriodReport, patrol_days: int) -> dict[str, list[str]]:
    """Highlights and problems in a few sentences (zh-CN and English)."""
    zh: list[str] = []
    en: list[str] = []
    fig = {f.key: f for f in report.figures}

    def d(key: str) -> str:
        return fig[key].display()

    zh.append(
        f"本期上报事件 {d('events_reported')} 件，结案 {d('events_closed')} 件，"
        f"结案率 {d('closure_rate')}，按期结案率 {d('on_time_rate')}；"
        f"巡查覆盖率 {d('patrol_coverage')}，敲门行动进度 {d('doorknock_progress')}。"
    )
    en.append(
        f"{d('events_reported')} events were reported and {d('events_closed')} closed "
        f"(closure rate {d('closure_rate')}, on time {d('on_time_rate')}); patrol coverage "
        f"{d('patrol_coverage')}, door-knocking progress {d('doorknock_progress')}."
    )
    for level in ("town", "community", "grid"):
        rows = [r for r in report.rankings.get(level, []) if isinstance(r["score"], int | float)]
        if len(rows) < 2:
            continue
        best, worst = rows[0], rows[-1]
        zh_name, en_name = _LEVEL_NAMES[level]
        zh.append(
            f"{zh_name}考核得分最高的是 {unit_label(best, level)}，{best['score']:.1f} 分；"
            f"最低的是 {unit_label(worst, level)}，{worst['score']:.1f} 分。"
        )
        en.append(
            f"Best of the {en_name}: {unit_label(best, level)} ({best['score']:.1f} points); "
            f"lowest: {unit_label(worst, level)} ({worst['score']:.1f})."
        )
        break
    over, sup = fig["overdue"], fig["supervised"]
    if over.hidden or sup.hidden or (over.value or 0) > 0 or (sup.value or 0) > 0:
        zh.append(f"问题：超期未结事件 {over.display()} 件，督办事件 {sup.display()} 件。")
        en.append(f"Problems: {over.display()} events overdue, {sup.display()} supervised (督办).")
    loose = fig["buildings_unassigned"]
    if loose.hidden or (loose.value or 0) > 0:
        zh.append(f"另有 {loose.display()} 栋楼未划入任何网格，需补充划分。")
        en.append(f"{loose.display()} buildings lie outside every grid and need assigning.")
    for level in ("grid", "community", "town"):
        note = report.ranking_notes.get(level, {})
        if note.get("idle"):
            zh_name, en_name = _LEVEL_NAMES[level]
            zh.append(f"{note['idle']} 个{zh_name}本期无事件、巡查和走访记录。")
            en.append(f"{note['idle']} {en_name} recorded no events, patrols or visits.")
            break
    cov = fig["patrol_coverage"]
    if patrol_days and cov.value is not None and cov.value < 0.85:
        zh.append("巡查覆盖率低于 85%，需加强巡查。")
        en.append("Patrol coverage is below 85 %: more patrols are needed.")
    for which, zh_when, en_when in (
        ("previous", "上期", "the previous period"),
        ("last_year", "去年同期", "the same period last year"),
    ):
        f = _biggest_change(report.figures, which)
        if f is None:
            continue
        diff = f.display_change(which).split(" (")[0]
        rel = f.relative_change(which)
        more = "" if rel is None else f"，{100 * rel:+.1f}%"
        more_en = "" if rel is None else f", {100 * rel:+.1f}%"
        zh.append(
            f"与{zh_when}相比变化最大的是{f.label_zh}：由 {f.display(which)} 变为 "
            f"{f.display()}（{diff}{more}）。"
        )
        en.append(
            f"Biggest change against {en_when}: {f.label_en.lower()}, from "
            f"{f.display(which)} to {f.display()} ({diff}{more_en})."
        )
    return {"zh": zh, "en": en}


def _biggest_change(figures: list[Figure], which: str) -> Figure | None:
    """The figure that changed most (counts relatively, rates in points; ties: first)."""
    best: tuple[float, Figure] | None = None
    for f in figures:
        if f.key in _NO_HISTORY or f.key.startswith("doorknock_house"):
            continue
        diff = f.change(which)
        if diff is None or diff == 0:
            continue
        if f.is_rate:
            size = abs(float(diff))
        else:
            past = getattr(f, which) or 0
            size = abs(float(diff)) / max(float(past), 1.0)
        if best is None or size > best[0]:
            best = (size, f)
    return None if best is None else best[1]


def dashboard_figures(
    store: Store,
    principal: Principal,
    *,
    start: Any,
    end: Any,
    area: str | None = None,
    now: pd.Timestamp | None = None,
    options: ReportOptions = ReportOptions(),
) -> dict[str, Any]:
    """The leader dashboard's figures for the principal's area, as a plain dict.

    The same figures as :func:`period_report` (no charts), with the previous
    period and the same period last year.

    Parameters
    ----------
    store, principal :
        As for :func:`period_report`; the figures are scoped by the
        principal's areas (small counts hidden for roles without detail rights).
    start, end : time
        The period (``end`` exclusive; in ``options.tz`` when no zone is given).
    area : str, optional
        Default: the principal's one area; for a principal who sees every
        area, the one county or city of the store.
    now, options :
        As for :func:`period_report` (never charts).

    Returns
    -------
    dict
        ``{"area", "area_name", "time_zone", "period", "previous_period",
        "same_period_last_year"`` (each ``{"from", "to"}`` ISO in *tz*),
        ``"figures"``: ``{key: {"label_zh", "label_en", "kind"`` (``count`` or
        ``ratio``), ``"value", "previous", "last_year", "change_previous",
        "change_last_year", "relative_change_previous",
        "relative_change_last_year", "display", "hidden", "history", "note_zh",
        "note_en"}}`` for :data:`DASHBOARD_KEYS` (buildings, buildings_unassigned,
        dwellings, households estimated and registered, residents estimated and
        registered, events_reported, events_closed, closure_rate, on_time_rate,
        overdue, supervised, patrol_coverage, doorknock_progress),
        ``"rankings"``: ``{level: {"top": rows, "bottom": rows, "others": n,
        "idle": n, "units": n}}``, ``"highlights"``: ``{"zh", "en"}`` (text),
        ``"small_counts_hidden"``, ``"min_count"}``.

    Examples
    --------
    >>> from gridmap.storage import open_store
    >>> from gridmap.security.access import SYSTEM
    >>> dashboard_figures(open_store(":memory:", migrate=True), SYSTEM,
    ...                   start="2026-11-01", end="2026-12-01")
    Traceback (most recent call last):
    gridmap.common.errors.NotFound: no area to show: the store has no county or city
    """
    code = area if area is not None else _default_area(store, principal)
    report = period_report(
        store,
        principal,
        area=code,
        start=start,
        end=end,
        now=now,
        options=replace(options, charts=False),
    )
    doc = report.to_dict()
    figures: dict[str, dict[str, Any]] = {}
    for f in report.figures:
        if f.key not in DASHBOARD_KEYS:
            continue
        figures[f.key] = {
            "label_zh": f.label_zh,
            "label_en": f.label_en,
            "kind": "ratio" if f.is_rate else "count",
            "value": f.value,
            "previous": f.previous,
            "last_year": f.last_year,
            "change_previous": f.change("previous"),
            "change_last_year": f.change("last_year"),
            "relative_change_previous": f.relative_change("previous"),
            "relative_change_last_year": f.relative_change("last_year"),
            "display": f.display(),
            "hidden": {
                "value": f.hidden,
                "previous": f.previous_hidden,
                "last_year": f.last_year_hidden,
            },
            "history": f.history,
            "note_zh": f.note_zh,
            "note_en": f.note_en,
        }
    rankings: dict[str, dict[str, Any]] = {}
    for level, rows in report.rankings.items():
        note = report.ranking_notes.get(level, {})
        plain = [{k: v for k, v in r.items() if k != "evidence"} for r in rows]
        rankings[level] = {
            "top": plain[:RANKING_SIZE],
            "bottom": plain[RANKING_SIZE:],
            "others": note.get("others", 0),
            "idle": note.get("idle", 0),
            "units": note.get("units", len(rows)),
        }
    return {
        "area": report.area,
        "area_name": report.area_name,
        "time_zone": report.tz,
        "period": {"from": doc["from"], "to": doc["to"]},
        "previous_period": doc["previous_period"],
        "same_period_last_year": doc["same_period_last_year"],
        "figures": figures,
        "rankings": rankings,
        "highlights": {
            k: "".join(v) if k == "zh" else " ".join(v) for k, v in report.highlights.items()
        },
        "small_counts_hidden": report.min_count is not None,
        "min_count": report.min_count,
    }


def _default_area(store: Store, principal: Principal) -> str:
    if not principal.sees_everything:
        if len(principal.areas) == 1:
            return principal.areas[0]
        raise BadInput("you cover several areas: name one (area)", field="area")
    units = store.read("admin_units")
    codes = sorted({str(c) for c in units.get("code", []) if isinstance(c, str) and len(c) == 6})
    if len(codes) == 1:
        return codes[0]
    if not codes:
        raise NotFound("no area to show: the store has no county or city")
    raise BadInput(f"the store holds {len(codes)} counties: name one (area)", field="area")
