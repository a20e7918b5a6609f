"""Assessment scores (考核得分) per worker, grid, community or town for a period.

Every indicator is measured from stored facts and keeps the evidence behind it:

- ``patrol_coverage``: per grid, the share of its required streets covered by
  GPS tracks (:func:`gridmap.patrol.coverage.measure_coverage`, 20 m accuracy),
  summed over the patrol days of the period and divided by the required length
  times the number of patrol days; a grid without tracks scores 0. A
  community or town takes the mean of its grids; a worker the mean over the
  grids they are assigned to or patrolled, counting only their own tracks.
  Evidence: track ids.
- ``report_timeliness`` (上报及时率): of the events reported in the period,
  the share whose first response after 上报 (受理, 自处理, 退回 …) came within
  the category's time limit for the ``reported`` step; events still waiting
  are late once that limit has passed at ``now``, and not yet counted before.
  Evidence: event ids, late ones listed apart.
- ``closure_rate`` and ``on_time_rate`` (结案率, 按期结案率): from
  :func:`gridmap.events.kpis.kpis`. Evidence: event ids.
- ``doorknock_progress``, ``data_accuracy``, ``satisfaction``: from the
  door-knocking visits of the period (:func:`gridmap.assessment.doorknock.progress_table`).
  Evidence: visit ids.

Events are attributed to grids by ``grid_code`` and to workers by ``assigned_to``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from gridmap.access import Principal
from gridmap.assessment.doorknock import grid_households, progress_table, read_visits
from gridmap.assessment.rules import AssessmentRules, default_rules, score_table
from gridmap.errors import BadInput
from gridmap.events.intake import list_events
from gridmap.events.kpis import kpis
from gridmap.events.taxonomy import Taxonomy, default_taxonomy
from gridmap.patrol.coverage import measure_coverage
from gridmap.patrol.service import _fixes, grid_network
from gridmap.storage import AllOf, Cmp, Prefix, Store

__all__ = [
    "LEVELS",
    "Assessment",
    "Facts",
    "assess",
    "check_period",
    "describe_where",
    "gather",
    "patrol_days",
    "score_facts",
    "timeliness",
]

#: Units that can be assessed, with the width of their code.
LEVELS: dict[str, int] = {"worker": 0, "grid": 15, "community": 12, "town": 9}


def check_period(start: Any, end: Any) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Parse a period ``[start, end)`` (UTC when no zone is given); at most 366 days.

    Examples
    --------
    >>> check_period("2026-11-01", "2026-12-01")[1].isoformat()
    '2026-12-01T00:00:00+00:00'
    """
    out = []
    for name, value in (("from", start), ("to", end)):
        try:
            t = pd.Timestamp(value)
        except (TypeError, ValueError):
            raise BadInput(f"{name} must be an ISO 8601 date or time", field=name) from None
        if pd.isna(t):
            raise BadInput(f"{name} must be an ISO 8601 date or time", field=name)
        out.append(t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC"))
    if not out[0] < out[1]:
        raise BadInput("from must be earlier than to", field="from")
    if out[1] - out[0] > pd.Timedelta(days=366):
        raise BadInput("a period is at most 366 days", field="to")
    return out[0], out[1]


def patrol_days(start: pd.Timestamp, end: pd.Timestamp, rule: str = "all") -> list[str]:
    """The patrol days (``YYYY-MM-DD``, UTC) of ``[start, end)``.

    Examples
    --------
    >>> len(patrol_days(pd.Timestamp("2026-11-01", tz="UTC"), pd.Timestamp("2026-12-01", tz="UTC")))
    30
    >>> len(patrol_days(pd.Timestamp("2026-11-01", tz="UTC"),
    ...                 pd.Timestamp("2026-12-01", tz="UTC"), "weekdays"))
    21
    """
    days = pd.date_range(start.floor("D"), end - pd.Timedelta(microseconds=1), freq="D")
    if rule == "weekdays":
        days = days[days.dayofweek < 5]
    return [d.strftime("%Y-%m-%d") for d in days]


def timeliness(
    events: pd.DataFrame,
    transitions: pd.DataFrame,
    *,
    now: pd.Timestamp,
    taxonomy: Taxonomy | None = None,
) -> pd.Series:
    """Whether each event was first responded to in time (NaN: not yet due).

    Returns a float Series (1.0 timely, 0.0 late, NaN not counted) aligned to *events*.

    Examples
    --------
    >>> ev = pd.DataFrame({"id": [1, 2], "category": ["dispute"] * 2, "urgency": ["normal"] * 2,
    ...                    "reported_at": pd.to_datetime(["2026-11-02T00:00Z"] * 2)})
    >>> tr = pd.DataFrame({"event_id": [1, 1, 2], "seq": [1, 2, 1],
    ...                    "at": pd.to_datetime(["2026-11-02T00:00Z", "2026-11-02T01:00Z",
    ...                                          "2026-11-02T00:00Z"])})
    >>> timeliness(ev, tr, now=pd.Timestamp("2026-11-02T02:00Z")).tolist()
    [1.0, nan]
    """
    tax = taxonomy or default_taxonomy()
    if events.empty:
        return pd.Series(dtype=float, index=events.index)
    first = (
        transitions[transitions["seq"] > 1].groupby("event_id")["at"].min()
        if len(transitions)
        else pd.Series(dtype="datetime64[ns, UTC]")
    )
    first = pd.to_datetime(first, utc=True)
    out = []
    for row in events.itertuples():
        sub = getattr(row, "subcategory", None)
        urgency = getattr(row, "urgency", None) or "normal"
        try:
            hours = tax.limits(str(row.category), None if pd.isna(sub) else str(sub)).step(
                "reported", str(urgency)
            )
        except Exception:  # an unknown category: no limit to judge by
            hours = None
        reported = pd.Timestamp(row.reported_at)  # type: ignore[arg-type]
        answered = first.get(int(row.id), pd.NaT)  # type: ignore[arg-type]
        if hours is None:
            out.append(1.0 if answered is not pd.NaT else np.nan)
            continue
        due = reported + pd.Timedelta(hours=hours)
        if answered is not pd.NaT and not pd.isna(answered):
            out.append(1.0 if answered <= due else 0.0)
        else:
            out.append(0.0 if due < now else np.nan)
    return pd.Series(out, index=events.index, dtype=float)


@dataclass
class Assessment:
    """Scores of one level over a period, and what they were computed from.

    Attributes
    ----------
    level : str
        ``worker``, ``grid``, ``community`` or ``town``.
    scores : DataFrame
        :func:`gridmap.assessment.rules.score_table` output, plus ``evidence``
        (indicator → ``{"events"|"tracks"|"visits": ids}``).
    queries : dict
        The store filters that fed the figures, by layer.
    """

    level: str
    start: pd.Timestamp
    end: pd.Timestamp
    area: str
    rules: AssessmentRules
    scores: pd.DataFrame
    queries: dict[str, Any] = field(default_factory=dict)

    def records(self) -> list[dict[str, Any]]:
        """JSON-ready rows (NaN → ``None``)."""
        rows = []
        for key, rec in zip(self.scores.index, self.scores.to_dict("records"), strict=True):
            row: dict[str, Any] = {self.level: str(key)}
            for k, v in rec.items():
                row[str(k)] = _plain(v)
            rows.append(row)
        return rows


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float):
        return None if not np.isfinite(v) else round(v, 6)
    if v is pd.NA or v is None:
        return None
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    return v


def describe_where(where: dict[str, Any]) -> dict[str, Any]:
    """A JSON-ready description of a store filter (for traceable figures).

    Examples
    --------
    >>> describe_where({"grid_code": Prefix(("990100001",)), "kind": "opinion"})
    {'grid_code': {'prefix': ['990100001']}, 'kind': 'opinion'}
    """
    out: dict[str, Any] = {}
    for k, v in where.items():
        if isinstance(v, Prefix):
            out[k] = {"prefix": list(v.prefixes)}
        elif isinstance(v, AllOf):
            out[k] = [{c.op: _text(c.value)} for c in v.items]
        elif isinstance(v, Cmp):
            out[k] = {v.op: _text(v.value)}
        else:
            out[k] = _text(v)
    return out


def _text(v: Any) -> Any:
    if hasattr(v, "isoformat"):
        return str(v.isoformat())
    if isinstance(v, list | tuple):
        return [_text(x) for x in v]
    return v


@dataclass
class Facts:
    """Everything read from the store for one assessment (see :func:`gather`)."""

    start: pd.Timestamp
    end: pd.Timestamp
    events: pd.DataFrame
    timely: pd.Series
    coverage: pd.DataFrame  # grid_code, worker, day, covered_m, length_m, track_id
    grids: pd.DataFrame  # code, workers
    households: pd.DataFrame
    visits: pd.DataFrame
    days: list[str]
    queries: dict[str, Any]


def _area_where(principal: Principal, area: str, column: str) -> dict[str, Any]:
    return {column: Prefix((area,) if principal.covers(area) else ())}


def _coverage(
    store: Store, principal: Principal, area: str, start: pd.Timestamp, end: pd.Timestamp
) -> tuple[pd.DataFrame, dict[str, Any]]:
    where = {
        **_area_where(principal, area, "grid_code"),
        "started_at": AllOf((Cmp(">=", start.to_pydatetime()), Cmp("<", end.to_pydatetime()))),
    }
    if principal.role == "grid_worker":
        where["worker"] = principal.name
    with store.scoped(principal.areas):
        tracks = store.read("patrol_tracks", where=where)
    rows = []
    for grid, part in tracks.groupby("grid_code"):
        streets = grid_network(store, str(grid)).edges_frame()
        streets = streets[streets["required"].astype(bool)]
        if streets.empty:
            continue
        for (worker, day), group in part.groupby(
            [part["worker"], pd.to_datetime(part["started_at"], utc=True).dt.strftime("%Y-%m-%d")]
        ):
            res = measure_coverage([_fixes(r) for _, r in group.iterrows()], streets)
            rows.append(
                {
                    "grid_code": str(grid),
                    "worker": str(worker),
                    "day": str(day),
                    "covered_m": res.covered_m,
                    "length_m": res.length_m,
                    "track_ids": sorted(int(i) for i in group["id"]),
                }
            )
        # All workers together on a day: the grid's own coverage that day.
        for day, group in part.groupby(
            pd.to_datetime(part["started_at"], utc=True).dt.strftime("%Y-%m-%d")
        ):
            res = measure_coverage([_fixes(r) for _, r in group.iterrows()], streets)
            rows.append(
                {
                    "grid_code": str(grid),
                    "worker": None,
                    "day": str(day),
                    "covered_m": res.covered_m,
                    "length_m": res.length_m,
                    "track_ids": sorted(int(i) for i in group["id"]),
                }
            )
    cols = ["grid_code", "worker", "day", "covered_m", "length_m", "track_ids"]
    return pd.DataFrame(rows, columns=cols), describe_where(where)


def gather(
    store: Store,
    principal: Principal,
    *,
    area: str,
    start: pd.Timestamp,
    end: pd.Timestamp,
    rules: AssessmentRules,
    now: pd.Timestamp,
) -> Facts:
    """Read everything an assessment of *area* over ``[start, end)`` needs."""
    events, _ = list_events(
        store,
        principal=principal,
        filters={"grid_code": Prefix((area,) if principal.covers(area) else ())},
        reported_from=start,
        reported_to=end,
        limit=10_000_000,
    )
    events = pd.DataFrame(events.drop(columns="geometry", errors="ignore"))
    ids = [int(i) for i in events["id"]] if len(events) else []
    with store.scoped(principal.areas):
        trans = store.read("event_transitions", where={"event_id": ids}) if ids else pd.DataFrame()
        grids = store.read("grids", where=_area_where(principal, area, "code"))
    judged_at = min(now, end)
    live = pd.DataFrame(events[events["status"] != "merged"]) if len(events) else events
    timely = timeliness(live, trans, now=judged_at)
    coverage, track_query = _coverage(store, principal, area, start, end)
    households = grid_households(store, principal, area=area)
    visits = read_visits(store, principal, area=area, start=start, end=end)
    event_where = {
        "grid_code": {"prefix": [area]},
        "reported_at": [{">=": start.isoformat()}, {"<": end.isoformat()}],
    }
    queries = {
        "events": event_where,
        "event_transitions": {"event_id": "the events above"},
        "patrol_tracks": track_query,
        "grids": {"code": {"prefix": [area]}},
        "households": {"grid_code": {"prefix": [area]}},
        "doorknock_visits": {
            "grid_code": {"prefix": [area]},
            "visited_at": [{">=": start.isoformat()}, {"<": end.isoformat()}],
        },
    }
    grid_frame = pd.DataFrame(grids.drop(columns="geometry", errors="ignore"))
    if len(grid_frame):
        grid_frame = grid_frame.sort_values("id").drop_duplicates("code", keep="last")
    return Facts(
        start=start,
        end=end,
        events=events,
        timely=timely,
        coverage=coverage,
        grids=grid_frame,
        households=households,
        visits=visits,
        days=patrol_days(start, end, rules.patrol_days),
        queries=queries,
    )


def _worker_grids(facts: Facts) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for code, workers in zip(
        facts.grids.get("code", []), facts.grids.get("workers", []), strict=True
    ):
        for w in list(workers) if isinstance(workers, list | tuple | np.ndarray) else []:
            out.setdefault(str(w), set()).add(str(code))
    cov = facts.coverage[facts.coverage["worker"].notna()]
    for w, g in zip(cov["worker"], cov["grid_code"], strict=True):
        out.setdefault(str(w), set()).add(str(g))
    for w, g in zip(facts.visits.get("worker", []), facts.visits.get("grid_code", []), strict=True):
        out.setdefault(str(w), set()).add(str(g))
    return out


def _grid_coverage(facts: Facts, worker: str | None = None) -> dict[str, tuple[float, list[int]]]:
    """Coverage share and track ids per grid (over the patrol days)."""
    cov = facts.coverage
    cov = cov[cov["worker"].isna()] if worker is None else cov[cov["worker"] == worker]
    cov = cov[cov["day"].isin(facts.days)]
    n = max(len(facts.days), 1)
    rows: dict[str, tuple[float, list[int]]] = {}
    for grid, part in cov.groupby("grid_code"):
        length = float(part["length_m"].iloc[0])
        share = float(part["covered_m"].sum()) / (length * n) if length > 0 else 0.0
        rows[str(grid)] = (share, sorted(int(i) for ids in part["track_ids"] for i in ids))
    return rows


def _event_keys(events: pd.DataFrame, level: str) -> pd.Series:
    if level == "worker":
        return events["assigned_to"]
    return events["grid_code"].astype(str).str[: LEVELS[level]]


def _units(facts: Facts, level: str, area: str) -> list[str]:
    if level == "worker":
        return sorted(_worker_grids(facts))
    codes = {str(c)[: LEVELS[level]] for c in facts.grids.get("code", [])}
    codes |= {str(c)[: LEVELS[level]] for c in facts.events.get("grid_code", []) if c}
    return sorted(c for c in codes if c.startswith(area) or area.startswith(c))


def assess(
    store: Store,
    principal: Principal,
    *,
    area: str,
    start: Any,
    end: Any,
    level: Literal["worker", "grid", "community", "town"] | str = "grid",
    rules: AssessmentRules | None = None,
    now: pd.Timestamp | None = None,
) -> Assessment:
    """Score every *level* unit of *area* over ``[start, end)`` and rank them.

    Parameters
    ----------
    store : Store
        Events, tracks, grids, households and visits.
    principal : Principal
        Whose areas bound what is read.
    area : str
        A town, community or grid code (or a county code).
    start, end : time
        The period (a month or a quarter; ``end`` exclusive).
    level : str
        ``worker``, ``grid``, ``community`` or ``town``.
    rules : AssessmentRules, optional
        Default :func:`gridmap.assessment.rules.default_rules`.
    now : Timestamp, optional
        When open events are judged (default: now, capped at *end*).

    Returns
    -------
    Assessment

    Examples
    --------
    >>> from gridmap.storage import open_store
    >>> from gridmap.access import SYSTEM
    >>> a = assess(open_store(":memory:", migrate=True), SYSTEM, area="990100001",
    ...            start="2026-11-01", end="2026-12-01", level="town")
    >>> a.scores.empty
    True
    """
    if level not in LEVELS:
        raise BadInput("level must be worker, grid, community or town", field="level")
    if not (area.isascii() and area.isdigit() and len(area) in (6, 9, 12, 15)):
        raise BadInput("area must be a 6, 9, 12 or 15 digit code", field="area")
    t0, t1 = check_period(start, end)
    rules = rules or default_rules()
    when = now if now is not None else pd.Timestamp.now(tz="UTC")
    facts = gather(store, principal, area=area, start=t0, end=t1, rules=rules, now=when)
    return score_facts(facts, level=level, area=area, rules=rules)


def score_facts(facts: Facts, *, level: str, area: str, rules: AssessmentRules) -> Assessment:
    """Score *level* units of *area* from facts already gathered (see :func:`gather`)."""
    units = _units(facts, level, area)
    values = pd.DataFrame(index=pd.Index(units, name=level, dtype=object))
    evidence: dict[str, dict[str, Any]] = {u: {} for u in units}
    _event_indicators(facts, level, values, evidence)
    _coverage_indicator(facts, level, values, evidence)
    _visit_indicators(facts, level, values, evidence)
    scores = score_table(values, rules, by=level)
    scores["evidence"] = pd.Series(
        [evidence.get(str(u), {}) for u in scores.index], index=scores.index, dtype=object
    )
    return Assessment(level, facts.start, facts.end, area, rules, scores, facts.queries)


def _event_indicators(
    facts: Facts, level: str, values: pd.DataFrame, evidence: dict[str, dict[str, Any]]
) -> None:
    ev = facts.events
    for col in ("report_timeliness", "closure_rate", "on_time_rate"):
        values[col] = np.nan
    if ev.empty:
        return
    ev = ev[ev["status"] != "merged"].copy()
    ev["timely"] = facts.timely.reindex(ev.index)
    # Attribute by the code hierarchy of the grid, like every other indicator.
    grid = ev["grid_code"].astype(str)
    table = kpis(ev.assign(community_code=grid.str[:12], town_code=grid.str[:9]), by=level)
    keys = _event_keys(ev, level)
    if level == "worker":
        ev = ev.assign(
            _k=keys.map(lambda v: list(v) if isinstance(v, list | tuple | np.ndarray) else [])
        ).explode("_k")
    else:
        ev = ev.assign(_k=keys)
    for unit in values.index:
        part = ev[ev["_k"] == unit]
        if part.empty:
            continue
        judged = part["timely"].dropna()
        values.loc[unit, "report_timeliness"] = judged.mean() if len(judged) else np.nan
        if unit in table.index:
            values.loc[unit, "closure_rate"] = table.loc[unit, "closure_rate"]
            values.loc[unit, "on_time_rate"] = table.loc[unit, "on_time_rate"]
        closed = part["status"] == "closed"
        due = pd.to_datetime(part["due_at"], utc=True)
        late_close = closed & (pd.to_datetime(part["closed_at"], utc=True) > due)
        evidence[str(unit)].update(
            {
                "report_timeliness": {
                    "events": sorted(int(i) for i in part.loc[judged.index, "id"]),
                    "late": sorted(int(i) for i in part.loc[part["timely"] == 0, "id"]),
                },
                "closure_rate": {
                    "events": sorted(int(i) for i in part["id"]),
                    "closed": sorted(int(i) for i in part.loc[closed, "id"]),
                },
                "on_time_rate": {
                    "events": sorted(int(i) for i in part.loc[closed, "id"]),
                    "late": sorted(int(i) for i in part.loc[late_close, "id"]),
                },
            }
        )


def _coverage_indicator(
    facts: Facts, level: str, values: pd.DataFrame, evidence: dict[str, dict[str, Any]]
) -> None:
    values["patrol_coverage"] = np.nan
    grid_codes = sorted(str(c) for c in facts.grids.get("code", []))
    if level == "worker":
        mine = _worker_grids(facts)
        for unit in values.index:
            cov = _grid_coverage(facts, str(unit))
            grids = sorted(mine.get(str(unit), set()))
            shares = [cov[g][0] if g in cov else 0.0 for g in grids]
            values.loc[unit, "patrol_coverage"] = float(np.mean(shares)) if shares else np.nan
            tracks = sorted(i for g in grids if g in cov for i in cov[g][1])
            evidence[str(unit)]["patrol_coverage"] = {"grids": grids, "tracks": tracks}
        return
    cov = _grid_coverage(facts)
    for unit in values.index:
        grids = [g for g in grid_codes if g.startswith(str(unit))]
        if not grids:
            continue
        shares = [cov[g][0] if g in cov else 0.0 for g in grids]
        values.loc[unit, "patrol_coverage"] = float(np.mean(shares))
        tracks = sorted(i for g in grids if g in cov for i in cov[g][1])
        evidence[str(unit)]["patrol_coverage"] = {"grids": grids, "tracks": tracks}


def _visit_indicators(
    facts: Facts, level: str, values: pd.DataFrame, evidence: dict[str, dict[str, Any]]
) -> None:
    names = {
        "doorknock_progress": "progress",
        "data_accuracy": "data_accuracy",
        "satisfaction": "satisfaction",
    }
    for col in names:
        values[col] = np.nan
    if level == "worker":
        mine = _worker_grids(facts)
        for unit in values.index:
            grids = sorted(mine.get(str(unit), set()))
            hh = facts.households[facts.households["grid_code"].isin(grids)]
            v = facts.visits
            v = v[v["worker"] == unit] if len(v) else v
            table = progress_table(
                hh.assign(grid_code="000000000"),
                v.assign(grid_code="000000000") if len(v) else v,
                by="town",
            )
            _fill_visits(values, evidence, str(unit), table, "000000000", names)
        return
    table = progress_table(facts.households, facts.visits, by=level)
    for unit in values.index:
        _fill_visits(values, evidence, str(unit), table, str(unit), names)


def _fill_visits(
    values: pd.DataFrame,
    evidence: dict[str, dict[str, Any]],
    unit: str,
    table: pd.DataFrame,
    key: str,
    names: dict[str, str],
) -> None:
    if key not in table.index:
        return
    row = pd.Series(table.loc[key])
    for col, src in names.items():
        values.loc[unit, col] = row[src]
    evidence[unit]["doorknock"] = {
        "visits": list(row["visit_ids"]),
        "households": int(row["households"]),
        "households_source": str(row["households_source"]),
    }


def scores_json(assessment: Assessment) -> str:
    """The assessment as a JSON document (used by the CLI and the notebook)."""
    return json.dumps(
        {
            "level": assessment.level,
            "area": assessment.area,
            "from": assessment.start.isoformat(),
            "to": assessment.end.isoformat(),
            "rules": assessment.rules.model_dump(),
            "queries": assessment.queries,
            "scores": assessment.records(),
        },
        ensure_ascii=False,
    )
