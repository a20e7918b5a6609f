"""Assessment figures (考核指标) of events, vectorized: ``f(events) -> DataFrame``.

Definitions (every figure counts the events *reported* in the period asked
for; duplicates folded into another event — status ``merged`` — are left out):

- ``reported``: events reported; ``closed``: of those, closed (结案);
- ``closure_rate`` (结案率) = closed / reported;
- ``on_time_rate`` (按期结案率) = closed no later than their deadline
  (``due_at``, moved by approved extensions; none set counts as on time) / closed.
  The clock starts when the problem was seen: for an event that carries
  ``observed_at`` (sent by the phone app) the deadline is
  ``observed_at + (due_at - reported_at)``, the same time allowed counted from
  the sighting, so a problem reported hours after it was seen does not gain
  those hours; without ``observed_at`` it is ``due_at``, as before;
- ``rework_rate`` (返工率) = events reworked at least once / reported;
- ``extension_rate`` (延期率) = events granted an extension / reported;
- ``mean_hours_to_close`` and ``p90_hours_to_close`` over closed events
  (p90 by linear interpolation, as ``numpy.quantile``), from ``observed_at``
  when given, else from ``reported_at``, to ``closed_at``;
- ``self_handled_share`` = closed on the spot (自处理) / closed;
- ``overdue``: still open and past ``due_at`` at ``now``;
- ``opinions`` (征集意见): reports of kind ``opinion``; ``help_requests``:
  of kind ``help_request``; ``problems_solved``: help requests closed;
- ``mean_report_lag_h``: mean of ``reported_at - observed_at`` in hours over the
  events that carry ``observed_at`` (how long problems wait to be reported).

Rates are NaN where their denominator is 0.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import pandas as pd

from gridmap.common.errors import BadInput
from gridmap.events.states import OPEN_STATES

__all__ = [
    "GROUPINGS",
    "KPI_COLUMNS",
    "KPI_COUNTS",
    "WORKER_COLUMNS",
    "kpi_records",
    "kpis",
    "worker_activity",
]

#: What KPIs can be grouped by.
GROUPINGS: tuple[str, ...] = ("grid", "community", "town", "worker", "category", "period")
#: Output columns, in order.
KPI_COLUMNS: tuple[str, ...] = (
    "reported",
    "closed",
    "closure_rate",
    "on_time_closed",
    "on_time_rate",
    "reworked",
    "rework_rate",
    "extended",
    "extension_rate",
    "mean_hours_to_close",
    "p90_hours_to_close",
    "self_handled",
    "self_handled_share",
    "overdue",
    "opinions",
    "help_requests",
    "problems_solved",
    "mean_report_lag_h",
)
#: The columns of :data:`KPI_COLUMNS` that count events (the others are rates,
#: shares, means and quantiles built on them), in the same order.
KPI_COUNTS: tuple[str, ...] = tuple(
    c for c in KPI_COLUMNS if not c.endswith(("_rate", "_share", "_to_close", "_lag_h"))
)
_FREQ = {"day": "D", "week": "W-MON", "month": "M"}


def _col(frame: pd.DataFrame, name: str, default: Any) -> pd.Series:
    if name in frame:
        return frame[name]
    return pd.Series(default, index=frame.index)


def _keys(frame: pd.DataFrame, by: str, period: str) -> pd.Series:
    grid = _col(frame, "grid_code", None).astype("string")
    if by == "grid":
        return grid
    if by == "community":
        return _col(frame, "community_code", None).astype("string").fillna(grid.str[:12])
    if by == "town":
        return _col(frame, "town_code", None).astype("string").fillna(grid.str[:9])
    if by == "category":
        return _col(frame, "category", None).astype("string")
    if by == "period":
        at = pd.to_datetime(_col(frame, "reported_at", pd.NaT), utc=True)
        return at.dt.tz_convert(None).dt.to_period(_FREQ[period]).astype("string")
    raise BadInput(f"unknown grouping {by!r}; one of: {', '.join(GROUPINGS)}", field="by")


def kpis(
    events: pd.DataFrame,
    *,
    by: Literal["grid", "community", "town", "worker", "category", "period"] | str = "grid",
    now: pd.Timestamp | None = None,
    period: Literal["day", "week", "month"] | str = "month",
) -> pd.DataFrame:
    """KPIs of *events* grouped *by* grid, community, town, worker, category or period.

    Parameters
    ----------
    events : DataFrame
        Rows of the ``events`` layer (already filtered to the period and the
        caller's area).
    by : str
        One of :data:`GROUPINGS`. ``worker`` counts an event once for each
        worker it is assigned to.
    now : Timestamp, optional
        When overdue is judged (default: the current time).
    period : str
        ``day``, ``week`` or ``month`` for ``by="period"``.

    Returns
    -------
    DataFrame
        One row per group (index named *by*), columns :data:`KPI_COLUMNS`.

    Examples
    --------
    >>> ev = pd.DataFrame({
    ...     "grid_code": ["g1", "g1", "g2"], "status": ["closed", "handling", "closed"],
    ...     "reported_at": pd.to_datetime(["2026-11-01T00:00Z"] * 3),
    ...     "closed_at": pd.to_datetime(["2026-11-01T10:00Z", None, "2026-11-02T00:00Z"]),
    ...     "due_at": pd.to_datetime(["2026-11-02T00:00Z"] * 3)})
    >>> t = kpis(ev, by="grid", now=pd.Timestamp("2026-11-03", tz="UTC"))
    >>> g1 = t.loc["g1"]
    >>> int(g1["reported"]), float(g1["closure_rate"]), int(g1["overdue"])
    (2, 0.5, 1)

    Seen 20 h before it was reported, 24 h allowed, closed 10 h after the
    report: 30 h from the sighting, late.

    >>> ev = pd.DataFrame({
    ...     "grid_code": ["g1"], "status": ["closed"],
    ...     "observed_at": pd.to_datetime(["2026-11-01T04:00Z"]),
    ...     "reported_at": pd.to_datetime(["2026-11-02T00:00Z"]),
    ...     "due_at": pd.to_datetime(["2026-11-03T00:00Z"]),
    ...     "closed_at": pd.to_datetime(["2026-11-02T10:00Z"])})
    >>> r = kpis(ev, now=pd.Timestamp("2026-11-03", tz="UTC")).iloc[0]
    >>> int(r["on_time_closed"]), float(r["mean_hours_to_close"]), float(r["mean_report_lag_h"])
    (0, 30.0, 20.0)
    """
    if by not in GROUPINGS:
        raise BadInput(f"unknown grouping {by!r}; one of: {', '.join(GROUPINGS)}", field="by")
    if period not in _FREQ:
        raise BadInput(f"unknown period {period!r}; one of: day, week, month", field="period")
    when = now if now is not None else pd.Timestamp.now(tz="UTC")
    frame = events.loc[_col(events, "status", "reported").astype("string") != "merged"]
    if frame.empty:
        return pd.DataFrame(columns=list(KPI_COLUMNS), index=pd.Index([], name=by))
    status = _col(frame, "status", "reported").astype("string").fillna("reported")
    kind = _col(frame, "kind", "event").astype("string").fillna("event")
    reported_at = pd.to_datetime(_col(frame, "reported_at", pd.NaT), utc=True)
    closed_at = pd.to_datetime(_col(frame, "closed_at", pd.NaT), utc=True)
    due_at = pd.to_datetime(_col(frame, "due_at", pd.NaT), utc=True)
    observed_at = pd.to_datetime(_col(frame, "observed_at", pd.NaT), utc=True)
    # The clock starts when the problem was seen, when the report says so.
    start = observed_at.fillna(reported_at)
    deadline = (observed_at + (due_at - reported_at)).fillna(due_at)
    closed = (status == "closed").to_numpy(dtype=bool)
    hours = ((closed_at - start).dt.total_seconds() / 3600.0).to_numpy(dtype=float, na_value=np.nan)
    hours = np.where(closed, hours, np.nan)
    on_time = closed & (due_at.isna() | (closed_at <= deadline)).to_numpy(dtype=bool)
    lag = ((reported_at - observed_at).dt.total_seconds() / 3600.0).to_numpy(
        dtype=float, na_value=np.nan
    )
    is_open = status.isin(sorted(OPEN_STATES)).to_numpy(dtype=bool)
    overdue = is_open & (due_at < when).to_numpy(dtype=bool, na_value=False)
    rework = pd.to_numeric(_col(frame, "rework_count", 0), errors="coerce").fillna(0)
    ext = pd.to_numeric(_col(frame, "extension_count", 0), errors="coerce").fillna(0)
    selfh = _col(frame, "self_handled", False).astype("boolean").fillna(False)
    help_req = (kind == "help_request").to_numpy(dtype=bool)
    flags = pd.DataFrame(
        {
            "reported": 1,
            "closed": closed.astype(int),
            "on_time_closed": on_time.astype(int),
            "reworked": (rework > 0).to_numpy(dtype=int),
            "extended": (ext > 0).to_numpy(dtype=int),
            "self_handled": (closed & selfh.to_numpy(dtype=bool)).astype(int),
            "overdue": overdue.astype(int),
            "opinions": (kind == "opinion").to_numpy(dtype=int),
            "help_requests": help_req.astype(int),
            "problems_solved": (help_req & closed).astype(int),
            "hours": hours,
            "lag": lag,
        },
        index=frame.index,
    )
    if by == "worker":
        workers = _col(frame, "assigned_to", None).map(
            lambda v: list(v) if isinstance(v, list | tuple | np.ndarray) and len(v) else [None]
        )
        flags["key"] = workers
        flags = flags.explode("key")
        key = flags.pop("key").astype("string")
    else:
        key = _keys(frame, by, period)
    grouped = flags.groupby(key.rename(by).to_numpy(), dropna=False, sort=True)
    counts = grouped[[c for c in flags.columns if c not in ("hours", "lag")]].sum()
    out = counts.astype(int)
    out["mean_hours_to_close"] = grouped["hours"].mean()
    out["p90_hours_to_close"] = grouped["hours"].quantile(0.9)
    out["mean_report_lag_h"] = grouped["lag"].mean()
    with np.errstate(divide="ignore", invalid="ignore"):
        out["closure_rate"] = out["closed"] / out["reported"]
        out["on_time_rate"] = (out["on_time_closed"] / out["closed"]).where(out["closed"] > 0)
        out["rework_rate"] = out["reworked"] / out["reported"]
        out["extension_rate"] = out["extended"] / out["reported"]
        out["self_handled_share"] = (out["self_handled"] / out["closed"]).where(out["closed"] > 0)
    out.index = out.index.rename(by)
    return out[list(KPI_COLUMNS)]


def kpi_records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready rows of a :func:`kpis` table (NaN → ``None``, rates rounded to 4 places).

    Examples
    --------
    >>> t = kpis(pd.DataFrame({"grid_code": ["g1"], "status": ["reported"]}),
    ...          now=pd.Timestamp("2026-11-01", tz="UTC"))
    >>> kpi_records(t)[0]["closure_rate"], kpi_records(t)[0]["on_time_rate"]
    (0.0, None)
    """
    name = table.index.name or "key"
    rows: list[dict[str, Any]] = []
    for key, rec in zip(table.index, table.to_dict("records"), strict=True):
        row: dict[str, Any] = {str(name): None if pd.isna(key) else str(key)}
        for col, value in rec.items():
            v = value.item() if isinstance(value, np.generic) else value
            if isinstance(v, float):
                row[str(col)] = None if math.isnan(v) else round(v, 4)
            else:
                row[str(col)] = v
        rows.append(row)
    return rows


#: Columns of :func:`worker_activity`, in order.
WORKER_COLUMNS: tuple[str, ...] = ("reports_made", "events_handled", "transitions", "assigned")


def worker_activity(events: pd.DataFrame, transitions: pd.DataFrame) -> pd.DataFrame:
    """What each worker did with *events*, counted separately (by=worker KPIs).

    - ``reports_made``: events the worker reported — the actor of the event's
      first transition (``report``), else its ``reported_by`` (the signed-in
      account; never ``reporter``, the free-text name given, encrypted at rest);
    - ``events_handled``: events the worker moved through the workflow (any
      later transition by them) or was assigned to;
    - ``transitions``: workflow steps the worker took after the report;
    - ``assigned``: events assigned to the worker (``assigned_to``).

    Duplicates folded into another event (``merged``) are left out.

    Parameters
    ----------
    events : DataFrame
        Rows of ``events`` (``id``, ``status``, ``reported_by``, ``assigned_to``).
    transitions : DataFrame
        Rows of ``event_transitions`` of those events (``event_id``, ``seq``, ``actor``).

    Returns
    -------
    DataFrame
        Index ``worker``; columns :data:`WORKER_COLUMNS` (ints).

    Examples
    --------
    >>> ev = pd.DataFrame({"id": [1, 2, 3], "status": ["reported", "handling", "closed"],
    ...                    "reported_by": ["w1", "w1", "w1"],
    ...                    "assigned_to": [None, ["w2"], ["w1"]]})
    >>> tr = pd.DataFrame({"event_id": [1, 2, 2, 3, 3], "seq": [1, 1, 2, 1, 2],
    ...                    "actor": ["w1", "w1", "coord", "w1", "w1"]})
    >>> worker_activity(ev, tr).to_dict("index")["w1"]
    {'reports_made': 3, 'events_handled': 1, 'transitions': 1, 'assigned': 1}
    """
    cols = list(WORKER_COLUMNS)
    frame = events.loc[_col(events, "status", "reported").astype("string") != "merged"]
    if frame.empty:
        return pd.DataFrame(columns=cols, index=pd.Index([], name="worker"), dtype=int)
    ids = pd.to_numeric(frame["id"]).astype("int64")
    tr = transitions
    if len(tr):
        tr = tr.loc[pd.to_numeric(tr["event_id"]).astype("int64").isin(ids)]
    seq = pd.to_numeric(_col(tr, "seq", 0), errors="coerce").fillna(0)
    first = tr.loc[seq == 1].drop_duplicates("event_id")
    by_tr = pd.Series(
        _col(first, "actor", None).to_numpy(),
        index=pd.to_numeric(_col(first, "event_id", 0)).astype("int64").to_numpy(),
    )
    reporter = by_tr.reindex(ids.to_numpy())
    reporter = reporter.where(reporter.notna(), _col(frame, "reported_by", None).to_numpy())
    later = tr.loc[seq > 1]
    steps = pd.DataFrame(
        {"worker": _col(later, "actor", None), "event": _col(later, "event_id", 0)}
    ).dropna()
    assigned = (
        pd.DataFrame(
            {
                "worker": _col(frame, "assigned_to", None).map(
                    lambda v: list(v) if isinstance(v, list | tuple | np.ndarray) else []
                ),
                "event": ids.to_numpy(),
            }
        )
        .explode("worker")
        .dropna()
    )
    handled = pd.concat([steps, assigned]).astype({"worker": str, "event": "int64"})
    out = pd.DataFrame(
        {
            "reports_made": pd.Series(reporter.dropna().astype(str).to_numpy()).value_counts(),
            "events_handled": handled.drop_duplicates().groupby("worker").size(),
            "transitions": steps.astype({"worker": str}).groupby("worker").size(),
            "assigned": assigned.astype({"worker": str}).groupby("worker")["event"].nunique(),
        }
    )
    out = out.reindex(columns=cols).fillna(0).astype(int).sort_index()
    out.index = out.index.rename("worker")
    return out
