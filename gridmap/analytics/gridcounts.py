"""Counts and rates per grid (网格): the grid choropleth, comparable across periods.

Where :mod:`gridmap.analytics.binning` counts events per H3 cell, this module counts
them per grid, matched by the ``grid_code`` stored with each event:

- :func:`grid_counts` — events and open events per grid, with rates per 1,000
  residents and households (:data:`~gridmap.analytics.binning.RATES`) from the
  grids' own ``residents`` and ``households``;
- :func:`grid_period_table` — the same for every grid and week, month or quarter,
  zero counts included, with a rate scaled to 30 days so that periods of different
  length compare fairly.

Both work on DataFrames the caller has read: neither reads the store nor applies
the small-count rule (:mod:`gridmap.analytics.smallcounts`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import numpy as np
import pandas as pd

from gridmap.analytics.binning import RATES
from gridmap.common.errors import BadInput
from gridmap.events.states import OPEN_STATES

__all__ = ["grid_counts", "grid_period_table"]


# --------------------------------------------------------------------------- per grid


def grid_counts(
    grids: pd.DataFrame,
    events: pd.DataFrame,
    *,
    open_states: Iterable[str] = OPEN_STATES,
) -> pd.DataFrame:
    """Events per grid with rates per 1,000 residents and households, aligned to *grids*.

    Events are matched to grids by ``grid_code`` (the code stored with each event).

    Returns
    -------
    pandas.DataFrame
        Indexed like *grids*: ``count``, ``open``, ``per_1000_residents``,
        ``per_1000_households`` (missing where the grid has no residents/households).

    Examples
    --------
    >>> grids = pd.DataFrame({"code": ["g1", "g2"], "residents": [1000, 0],
    ...                       "households": [400, 0]})
    >>> events = pd.DataFrame({"grid_code": ["g1", "g1", "g2"], "status": ["closed"] * 3})
    >>> grid_counts(grids, events)[["count", "per_1000_residents"]].values.tolist()
    [[2.0, 2.0], [1.0, nan]]
    """
    codes = grids["code"].astype("string")
    ev_codes = (
        events["grid_code"].astype("string")
        if len(events)
        else pd.Series(np.array([], dtype=object), dtype="string")
    )
    count = ev_codes.value_counts()
    status = events["status"] if "status" in events else pd.Series(None, index=events.index)
    opened = ev_codes[status.isin(list(open_states)).to_numpy()].value_counts()
    out = pd.DataFrame(index=grids.index)
    out["count"] = codes.map(count).fillna(0).astype("int64").to_numpy()
    out["open"] = codes.map(opened).fillna(0).astype("int64").to_numpy()
    for rate, column in RATES.items():
        raw = grids[column] if column in grids else pd.Series(np.nan, index=grids.index)
        denominator = pd.to_numeric(raw, errors="coerce").astype("float64")
        with np.errstate(divide="ignore", invalid="ignore"):
            out[rate] = np.where(denominator > 0, out["count"] / denominator * 1000.0, np.nan)
    return out


def grid_period_table(
    grids: pd.DataFrame,
    events: pd.DataFrame,
    *,
    freq: Literal["week", "month", "quarter"] = "month",
) -> pd.DataFrame:
    """Counts and rates per grid and period, comparable across periods.

    Every (grid, period) pair appears, zero counts included. Besides the
    rates per 1,000 residents/households of each period, ``per_1000_residents_30d``
    scales the rate to 30 days so periods of different length (February,
    a partial month) compare fairly; map them all with one set of class
    breaks (e.g. quantiles of the whole table) to compare periods by colour.

    Returns
    -------
    pandas.DataFrame
        ``period`` (str), ``code``, ``days``, ``count``, ``open``,
        ``per_1000_residents``, ``per_1000_households``, ``per_1000_residents_30d``.

    Examples
    --------
    >>> grids = pd.DataFrame({"code": ["g1"], "residents": [1000], "households": [500]})
    >>> events = pd.DataFrame({"grid_code": ["g1", "g1"], "status": ["closed", "closed"],
    ...     "reported_at": pd.to_datetime(["2026-02-03", "2026-03-04"], utc=True)})
    >>> t = grid_period_table(grids, events)
    >>> t[["period", "count", "per_1000_residents_30d"]].round(2).values.tolist()
    [['2026-02', 1, 1.07], ['2026-03', 1, 0.97]]
    """
    codes = {"week": "W-MON", "month": "M", "quarter": "Q"}
    if freq not in codes:
        raise BadInput(f"freq must be one of {', '.join(codes)}", field="freq")
    at = pd.to_datetime(events["reported_at"], utc=True)
    periods = at.dt.tz_convert(None).dt.to_period(codes[freq])
    rows = []
    for period in sorted(periods.dropna().unique()):
        part = events[(periods == period).to_numpy()]
        table = grid_counts(grids, part)
        table.insert(0, "code", grids["code"].astype(str).to_numpy())
        table.insert(0, "period", str(period))
        days = float((period.end_time - period.start_time).total_seconds() / 86400.0)
        table.insert(2, "days", round(days))
        table["per_1000_residents_30d"] = table["per_1000_residents"] * 30.0 / round(days)
        rows.append(table)
    if not rows:
        return pd.DataFrame(
            columns=["period", "code", "days", "count", "open", *RATES, "per_1000_residents_30d"]
        )
    return pd.concat(rows, ignore_index=True)
