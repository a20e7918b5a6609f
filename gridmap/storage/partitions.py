"""Monthly partitions of ``events`` made before the writers need them (PostGIS).

``events`` is partitioned by UTC month of ``reported_at`` (migration 008).
A writer whose month has no partition yet creates it inside its own
transaction (``gridmap_events_try_partition``). Under concurrent intake that
is a lock upgrade in a transaction that has already read ``events``: the
creator holds ``events_default`` and wants it exclusively, while another
writer holds a read lock on it and wants to insert — PostgreSQL breaks the
cycle by aborting one of them ("deadlock detected"), which the client sees
as a 503. It happened on every fresh database: the first reports of the
month raced to create it (``benchmarks/load_reporters.py``, 8 reporters,
about one run in three).

So the months are made ahead, outside any request: when a store is opened
with ``migrate=True`` and, in the API, every hour (:mod:`api.main`), in a
transaction of their own that holds nothing else. The in-transaction path
stays for months nobody prepared (back-dated imports), where the single
writer makes it safe.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from gridmap.storage.base import Store, StoreReads

__all__ = ["AHEAD", "month_starts", "prepare_event_months"]

#: Months made ahead of the current one.
AHEAD = 2


def month_starts(today: date, ahead: int) -> list[date]:
    """The first day of *today*'s month and of the *ahead* months after it.

    Examples
    --------
    >>> month_starts(date(2026, 11, 28), 2)
    [datetime.date(2026, 11, 1), datetime.date(2026, 12, 1), datetime.date(2027, 1, 1)]
    """
    out = []
    year, month = today.year, today.month
    for _ in range(max(int(ahead), 0) + 1):
        out.append(date(year, month, 1))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def prepare_event_months(store: Store, *, ahead: int = AHEAD, today: date | None = None) -> int:
    """Create the partitions of this UTC month and the *ahead* next ones; return how many.

    Nothing to do on the embedded store (``events`` is not partitioned there)
    or before migration 008. Rows of those months already in the DEFAULT
    partition move into the new ones (``gridmap_events_partition``).

    Examples
    --------
    >>> from gridmap.storage import open_store
    >>> prepare_event_months(open_store(":memory:", migrate=True))
    0
    """
    if store.dialect != "postgis" or not isinstance(store, StoreReads):
        return 0
    known = store.sql("SELECT to_regprocedure('gridmap_events_ensure_partitions(date[])')")
    if not known or known[0][0] is None:
        return 0
    rows = store.sql(
        "SELECT gridmap_events_ensure_partitions(%s::date[])",
        [month_starts(today or datetime.now(UTC).date(), ahead)],
    )
    return int(rows[0][0]) if rows else 0
