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

from gridmap.assessment.doorknock import grid_households, progress_table, read_visits
from gridmap.assessment.rules import AssessmentRules, default_rules, score_table
from gridmap.common.errors import BadInput
from gridmap.common.timeparse import parse_instant
from gridmap.events.intake import list_events
from gridmap.events.kpis import KPI_COLUMNS, KPI_COUNTS, kpis, worker_activity
from gridmap.events.taxonomy import Taxonomy, default_taxonomy
from gridmap.patrol.coverage import measure_coverage
from gridmap.patrol.service import grid_network, track_fixes
from gridmap.security.access import Principal
from gridmap.security.auth import PermissionDenied
from gridmap.storage import AllOf, Cmp, Prefix, Store

__all__ = [
    "LEVELS",
    "PERIOD",
    "Assessment",
    "Facts",
    "assess",
    "check_period",
    "coverage_summary",
    "describe_where",
    "gather",
    "patrol_days",
    "period_coverage",
    "score_facts",
    "timeliness",
    "worker_kpis",
]

#: Units that can be assessed, with the width of their code.
LEVELS: dict[str, int] = {"worker": 0, "grid": 15, "community": 12, "town": 9}


def check_period(start: Any, end: Any, *, tz: str = "UTC") -> tuple[pd.Timestamp, pd.Timestamp]:
    """Parse a period ``[start, end)`` (in *tz* when no zone is given) into UTC; at most 366 days.

    Examples
    --------
    >>> check_period("2026-11-01", "2026-12-01")[1].isoformat()
    '2026-12-01T00:00:00+00:00'
    >>> check_period("2026-11-01", "2026-12-01", tz="Asia/Shanghai")[0].isoformat()
    '2026-10-31T16:00:00+00:00'
    """
    out = [
        parse_instant(value, field=name, tz=tz) for name, value in (("from", start), ("to", end))
    ]
    if not out[0] < out[1]:
        raise BadInput("from must be earlier than to", field="from")
    if out[1] - out[0] > pd.Timedelta(days=366):
        raise BadInput("a period is at most 366 days", field="to")
    return out[0], out[1]


def patrol_days(
    start: pd.Timestamp, end: pd.Timestamp, rule: str = "all", *, tz: str = "UTC"
) -> list[str]:
    """The patrol days (``YYYY-MM-DD``, calendar days in *tz*) of ``[start, end)``.

    Examples
    --------
    >>> len(patrol_days(pd.Timestamp("2026-11-01", tz="UTC"), pd.Timestamp("2026-12-01", tz="UTC")))
    30
    >>> len(patrol_days(pd.Timestamp("2026-11-01", tz="UTC"),
    ...                 pd.Timestamp("2026-12-01", tz="UTC"), "weekdays"))
    21
    >>> patrol_days(pd.Timestamp("2026-10-31T16:00Z"), pd.Timestamp("2026-11-02T16:00Z"),
    ...             tz="Asia/Shanghai")
    ['2026-11-01', '2026-11-02']
    """
    first = start.tz_convert(tz).tz_localize(None).floor("D")
    last = (end - pd.Timedelta(microseconds=1)).tz_convert(tz).tz_localize(None)
    days = pd.date_range(first, last, freq="D")
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
    transitions: pd.DataFrame = field(default_factory=pd.DataFrame)
    tz: str = "UTC"

    @classmethod
    def example(cls) -> Facts:
        """Small facts to try the coverage functions on: November 2026, grids g1 and g2.

        Track 7 covered 84 m of g1's 100 m of required streets on 3 November;
        g2 has no track. No events, households or visits.

        Examples
        --------
        >>> Facts.example().coverage[["grid_code", "day", "covered_m"]].values.tolist()
        [['g1', '2026-11-03', 84.0], ['g1', '*', 84.0]]
        """
        coverage = pd.DataFrame(
            {
                "grid_code": ["g1", "g1"],
                "worker": [None, None],
                "day": ["2026-11-03", PERIOD],
                "covered_m": [84.0, 84.0],
                "length_m": [100.0, 100.0],
                "track_ids": [[7], [7]],
            }
        )
        return cls(
            pd.Timestamp("2026-11-01", tz="UTC"),
            pd.Timestamp("2026-12-01", tz="UTC"),
            pd.DataFrame(),
            pd.Series(dtype=float),
            coverage,
            pd.DataFrame({"code": ["g1", "g2"]}),
            pd.DataFrame(),
            pd.DataFrame(),
            [],
            {},
        )

    def coverage_of(self, worker: str | None) -> pd.DataFrame:
        """The coverage rows of *worker*'s tracks, or of all tracks together (``None``).

        Examples
        --------
        >>> len(Facts.example().coverage_of(None)), len(Facts.example().coverage_of("w1"))
        (2, 0)
        """
        cov = self.coverage
        return cov[cov["worker"].isna()] if worker is None else cov[cov["worker"] == worker]


def _area_where(principal: Principal, area: str, column: str) -> dict[str, Any]:
    return {column: Prefix((area,) if principal.covers(area) else ())}


#: ``day`` of the coverage rows that cover the whole period (all its tracks together).
PERIOD = "*"


def _coverage(
    store: Store,
    principal: Principal,
    area: str,
    start: pd.Timestamp,
    end: pd.Timestamp,
    tz: str = "UTC",
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Street coverage per grid, worker (``None``: all together) and day (in *tz*).

    Rows with ``day`` :data:`PERIOD` measure every track of the period at once:
    a required street counts once however often it was walked.
    """
    where = {
        **_area_where(principal, area, "grid_code"),
        "started_at": AllOf((Cmp(">=", start.to_pydatetime()), Cmp("<", end.to_pydatetime()))),
    }
    if principal.role == "grid_worker":
        where["worker"] = principal.name
    with store.scoped(principal.areas):
        tracks = store.read("patrol_tracks", where=where)
    rows: list[dict[str, Any]] = []

    def measure(grid: str, worker: str | None, day: str, group: pd.DataFrame) -> None:
        res = measure_coverage([track_fixes(r) for _, r in group.iterrows()], streets)
        rows.append(
            {
                "grid_code": grid,
                "worker": worker,
                "day": day,
                "covered_m": res.covered_m,
                "length_m": res.length_m,
                "track_ids": sorted(int(i) for i in group["id"]),
            }
        )

    for grid, part in tracks.groupby("grid_code"):
        streets = grid_network(store, str(grid)).edges_frame()
        streets = streets[streets["required"].astype(bool)]
        if streets.empty:
            continue
        days = (
            pd.to_datetime(part["started_at"], utc=True).dt.tz_convert(tz).dt.strftime("%Y-%m-%d")
        )
        for (worker, day), group in part.groupby([part["worker"], days]):
            measure(str(grid), str(worker), str(day), group)
        for worker, group in part.groupby("worker"):
            measure(str(grid), str(worker), PERIOD, group)
        # All workers together: the grid's own coverage, each day and over the period.
        for day, group in part.groupby(days):
            measure(str(grid), None, str(day), group)
        measure(str(grid), None, PERIOD, part)
    cols = ["grid_code", "worker", "day", "covered_m", "length_m", "track_ids"]
    return pd.DataFrame(rows, columns=cols), describe_where(where)


def gather(
    store: Store,
    principal: Principal,
    *,
    area: str,
    period: tuple[pd.Timestamp, pd.Timestamp],
    rules: AssessmentRules,
    now: pd.Timestamp,
    tz: str = "UTC",
    households_as_of: pd.Timestamp | None = None,
) -> Facts:
    """Read everything an assessment of *area* over the *period* ``[start, end)`` needs.

    Patrol days are calendar days in *tz*; households are counted as
    registered before *households_as_of* (default: all registered now).
    """
    start, end = period
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
    coverage, track_query = _coverage(store, principal, area, start, end, tz)
    households = grid_households(store, principal, area=area, as_of=households_as_of)
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
        days=patrol_days(start, end, rules.patrol_days, tz=tz),
        queries=queries,
        transitions=pd.DataFrame(trans),
        tz=tz,
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
    cov = facts.coverage_of(worker)
    cov = cov[cov["day"].isin(facts.days)]
    n = max(len(facts.days), 1)
    rows: dict[str, tuple[float, list[int]]] = {}
    for grid, part in cov.groupby("grid_code"):
        length = float(part["length_m"].iloc[0])
        share = float(part["covered_m"].sum()) / (length * n) if length > 0 else 0.0
        rows[str(grid)] = (share, sorted(int(i) for ids in part["track_ids"] for i in ids))
    return rows


def period_coverage(facts: Facts, *, worker: str | None = None) -> pd.DataFrame:
    """Share of each grid's required streets covered in the period (巡查覆盖率).

    A required street counts as covered when a GPS track of the period (on
    any day that has one) passed within 20 m of it; each street counts once
    however often it was walked. Grids of the area without a track in the
    period cover 0. With *worker*, only that worker's tracks count, over the
    grids assigned to them or patrolled by them.

    Returns
    -------
    DataFrame
        Index ``grid_code``; ``covered_m``, ``length_m`` (NaN: no track to
        measure against), ``share``, ``track_days`` (days with a track) and
        ``track_ids``.

    Examples
    --------
    >>> period_coverage(Facts.example())["share"].tolist()
    [0.84, 0.0]
    """
    cov = facts.coverage_of(worker)
    whole = cov[cov["day"] == PERIOD].drop_duplicates("grid_code").set_index("grid_code")
    daily = cov[cov["day"] != PERIOD]
    if worker is None:
        grids = {str(c) for c in facts.grids.get("code", [])}
    else:
        grids = set(_worker_grids(facts).get(worker, set()))
    codes = sorted(grids | {str(g) for g in whole.index})
    out = pd.DataFrame(index=pd.Index(codes, name="grid_code", dtype=object))
    out["covered_m"] = whole["covered_m"].reindex(out.index).fillna(0.0).astype(float)
    out["length_m"] = whole["length_m"].reindex(out.index).astype(float)
    share = out["covered_m"] / out["length_m"].where(out["length_m"] > 0)
    out["share"] = share.fillna(0.0).clip(upper=1.0)
    days = daily.groupby("grid_code")["day"].nunique()
    out["track_days"] = days.reindex(out.index).fillna(0).astype(int)
    ids = whole["track_ids"].reindex(out.index)
    out["track_ids"] = [list(v) if isinstance(v, list) else [] for v in ids]
    return out


def coverage_summary(facts: Facts, *, worker: str | None = None) -> dict[str, Any]:
    """The area's (or a worker's) patrol coverage: the mean over grids of :func:`period_coverage`.

    Returns ``{"value": share or None, "grids": n, "grids_patrolled": n,
    "track_days": days with any track, "tracks": ids}``.

    Examples
    --------
    >>> f = Facts.example()
    >>> coverage_summary(f)["value"], coverage_summary(f)["track_days"]
    (0.42, 1)
    """
    table = period_coverage(facts, worker=worker)
    days = {str(d) for d in facts.coverage_of(worker)["day"] if d != PERIOD}
    return {
        "value": float(table["share"].mean()) if len(table) else None,
        "grids": len(table),
        "grids_patrolled": int((table["track_days"] > 0).sum()),
        "track_days": len(days),
        "tracks": sorted({int(i) for ids in table["track_ids"] for i in ids}),
    }


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


def worker_kpis(
    store: Store,
    principal: Principal,
    *,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    now: pd.Timestamp | None = None,
    tz: str = "UTC",
) -> pd.DataFrame:
    """KPIs by worker (``/kpis?by=worker``): what each one reported, handled and patrolled.

    Counted separately over the events reported in ``[start, end)`` in the
    principal's areas (see :func:`gridmap.events.kpis.worker_activity`):
    ``reports_made``, ``events_handled``, ``transitions``, ``assigned``; then
    the event KPIs (:data:`gridmap.events.kpis.KPI_COLUMNS` but ``reported``)
    over the events *assigned* to the worker; then ``patrol_coverage`` (the
    share of the required streets of the worker's grids their own tracks
    covered in the period, :func:`period_coverage`) and ``patrol_days`` (days
    with one of their tracks). Workers assigned to a grid in the areas are
    listed even when they did nothing. Workers are named people: roles without
    access to personal data are refused (``PermissionDenied``).

    Examples
    --------
    >>> from gridmap.storage import open_store
    >>> from gridmap.security.access import SYSTEM
    >>> worker_kpis(open_store(":memory:", migrate=True), SYSTEM).empty
    True
    """
    if not principal.sees_personal_data:
        raise PermissionDenied(f"role {principal.role!r} may not see figures of named workers")
    when = now if now is not None else pd.Timestamp.now(tz="UTC")
    t0 = start if start is not None else pd.Timestamp("1970-01-01", tz="UTC")
    t1 = end if end is not None else when + pd.Timedelta(days=1)
    events, _ = list_events(
        store, principal=principal, reported_from=start, reported_to=end, limit=10_000_000
    )
    events = pd.DataFrame(events.drop(columns="geometry", errors="ignore"))
    ids = [int(i) for i in events["id"]] if len(events) else []
    with store.scoped(principal.areas):
        trans = store.read("event_transitions", where={"event_id": ids}) if ids else pd.DataFrame()
        grids = store.read("grids", where={"code": Prefix(principal.areas)})
    grid_frame = pd.DataFrame(grids.drop(columns="geometry", errors="ignore"))
    if len(grid_frame) and "valid_to" in grid_frame:
        grid_frame = grid_frame[grid_frame["valid_to"].isna()]
    parts = [_coverage(store, principal, a, t0, t1, tz)[0] for a in principal.areas]
    coverage = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if coverage.empty:
        coverage = pd.DataFrame(
            columns=["grid_code", "worker", "day", "covered_m", "length_m", "track_ids"]
        )
    facts = Facts(
        start=t0,
        end=t1,
        events=events,
        timely=pd.Series(dtype=float),
        coverage=coverage,
        grids=grid_frame if "workers" in grid_frame else grid_frame.assign(workers=None),
        households=pd.DataFrame(),
        visits=pd.DataFrame(
            {"worker": pd.Series(dtype=object), "grid_code": pd.Series(dtype=object)}
        ),
        days=[],
        queries={},
        transitions=pd.DataFrame(trans),
        tz=tz,
    )
    activity = worker_activity(events, facts.transitions) if len(events) else None
    assigned = kpis(events, by="worker", now=when) if len(events) else None
    names = set(_worker_grids(facts))
    if activity is not None:
        names |= {str(w) for w in activity.index}
    cols = [c for c in KPI_COLUMNS if c != "reported"]
    done = activity.to_dict("index") if activity is not None else {}
    given = assigned.to_dict("index") if assigned is not None else {}
    rows = []
    for name in sorted(names):
        row: dict[str, Any] = {"worker": name}
        for c in ("reports_made", "events_handled", "transitions", "assigned"):
            row[c] = int(done.get(name, {}).get(c, 0))
        for c in cols:
            row[c] = given.get(name, {}).get(c, 0 if c in KPI_COUNTS else np.nan)
        summary = coverage_summary(facts, worker=name)
        row["patrol_coverage"] = summary["value"] if summary["grids"] else np.nan
        row["patrol_days"] = summary["track_days"]
        rows.append(row)
    out = pd.DataFrame(
        rows,
        columns=[
            "worker",
            "reports_made",
            "events_handled",
            "transitions",
            "assigned",
            *cols,
            "patrol_coverage",
            "patrol_days",
        ],
    )
    return out.set_index("worker")


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
    >>> from gridmap.security.access import SYSTEM
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
    facts = gather(store, principal, area=area, period=(t0, t1), rules=rules, now=when)
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
