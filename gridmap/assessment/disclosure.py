"""Small-count hiding (小数抑制) in reports and progress tables for roles without detail rights.

The rule is the heat maps' (:mod:`gridmap.analytics.smallcounts`): viewers and external
systems (roles outside :data:`gridmap.analytics.smallcounts.DETAIL_ROLES`) never see a count
of people, households or events between 1 and *k* − 1 (*k* =
:data:`gridmap.common.settings.DEFAULT_MIN_COUNT`, 3, unless the service sets
``GRIDMAP_PRIVACY_MIN_COUNT``). Zero is shown: it discloses nobody. Staff roles see
every figure.

How a table is protected, in this order (:func:`protect_table`):

1. **Primary suppression** — a count *n* with ``1 <= n < k`` is shown as
   ``"<k"`` (e.g. ``"<3"``).
2. **Differences** — for each pair (*total*, *part*) of a row whose
   difference is itself a count (events reported − closed = open events;
   households − visited = households not yet visited; visited − verified …),
   a difference ``1 <= total − part < k`` would let a reader subtract: the
   *part* is hidden and shown as ``"*"`` (secondary suppression).
3. **Complementary cells** — units add up to their parent (grids to their
   community, categories to the period total). When exactly one cell of a
   column is hidden among its siblings, the parent total minus the shown
   siblings would give it back: the smallest other non-zero sibling is
   hidden too (``"*"``).
4. **Rates** — a share whose numerator or denominator is hidden is hidden
   (``None``; shown as ``"*"``).

Steps 2–3 repeat until nothing changes. What was hidden is never totalled
anywhere, so no subtraction recovers it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from gridmap.analytics.smallcounts import DETAIL_ROLES
from gridmap.common.settings import DEFAULT_MIN_COUNT
from gridmap.security.access import Principal

__all__ = [
    "SUPPRESSED",
    "below",
    "needs_hiding",
    "protect_table",
    "shown",
]

#: How a cell hidden so that another cannot be derived is shown.
SUPPRESSED = "*"


def needs_hiding(principal: Principal) -> bool:
    """Whether *principal*'s role gets small counts hidden (no detail rights).

    Examples
    --------
    >>> needs_hiding(Principal("v", "viewer")), needs_hiding(Principal("c", "city_admin"))
    (True, False)
    """
    return principal.role not in DETAIL_ROLES


def below(k: int) -> str:
    """The text shown for a count between 1 and *k* − 1.

    Examples
    --------
    >>> below(3)
    '<3'
    """
    return f"<{int(k)}"


def shown(value: Any) -> bool:
    """Whether a protected cell still holds its number (not ``"<k"``, ``"*"`` or ``None``).

    Examples
    --------
    >>> shown(4), shown("<3"), shown("*"), shown(None)
    (True, False, False, False)
    """
    return value is not None and not isinstance(value, str)


def _small(n: Any, k: int) -> bool:
    return shown(n) and not pd.isna(n) and 1 <= int(n) < k


def protect_table(
    table: pd.DataFrame,
    *,
    counts: Sequence[str],
    pairs: Iterable[tuple[str, str]] = (),
    rates: Mapping[str, tuple[str, str]] | None = None,
    groups: pd.Series | None = None,
    k: int = DEFAULT_MIN_COUNT,
) -> pd.DataFrame:
    """Hide small counts, the cells they could be derived from, and rates built on them.

    Parameters
    ----------
    table : DataFrame
        One row per unit; count columns hold integers.
    counts : sequence of str
        The count columns to protect.
    pairs : iterable of (str, str)
        (*total*, *part*) count columns whose difference is a count too.
    rates : mapping of str to (str, str), optional
        Rate column → (numerator, denominator) count columns.
    groups : Series, optional
        Parent of each row (aligned to *table*); siblings add up to a parent
        total that may be published elsewhere (one value for all rows: they
        add up to one total). ``None``: the rows are unrelated quantities.
    k : int
        Smallest count shown.

    Returns
    -------
    DataFrame
        A copy with object columns: hidden counts are ``"<k"`` or ``"*"``,
        hidden rates ``None``.

    Examples
    --------
    >>> t = pd.DataFrame({"households": [10, 10, 10], "visited": [1, 9, 5]},
    ...                  index=["g1", "g2", "g3"])
    >>> protect_table(t, counts=["households", "visited"], pairs=[("households", "visited")]
    ...               )["visited"].tolist()
    ['<3', '*', 5]
    """
    out = table.copy().astype({c: object for c in counts if c in table})
    cols = [c for c in counts if c in out]
    for c in cols:
        out[c] = pd.Series(
            [below(k) if _small(v, k) else v for v in table[c]], index=out.index, dtype=object
        )
    keys = None if groups is None else groups.reindex(out.index)
    changed = True
    while changed:
        changed = False
        for total, part in pairs:
            if total not in out or part not in out:
                continue
            for i in out.index:
                t: Any = out.at[i, total]
                p: Any = out.at[i, part]
                if shown(t) and shown(p) and _small(int(t) - int(p), k):
                    out.at[i, part] = SUPPRESSED
                    changed = True
        for c in cols if keys is not None else ():
            for _, rows in out.groupby(keys, sort=False, dropna=False).groups.items():
                cells = out.loc[list(rows), c]
                hidden = [i for i, v in cells.items() if not shown(v)]
                if len(hidden) != 1:
                    continue
                others = [(int(v), str(i)) for i, v in cells.items() if shown(v) and int(v) > 0]
                if others:
                    _, victim = min(others)
                    idx = next(i for i in cells.index if str(i) == victim)
                    out.at[idx, c] = SUPPRESSED
                    changed = True
    for rate, (num, den) in (rates or {}).items():
        if rate not in out:
            continue
        out[rate] = out[rate].astype(object)
        for i in out.index:
            if not (shown(out.at[i, num]) and shown(out.at[i, den])):
                out.at[i, rate] = None
    return out
