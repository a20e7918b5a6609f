"""Monthly partitions of events and the archive path for closed months.

On PostGIS (migration 008) ``events`` is partitioned by month of
``reported_at``: :func:`ensure_partitions` creates months ahead (the store
also creates a month on demand when it first writes one) and
:func:`list_partitions` shows them with their rows.

:func:`archive_month` moves a month's closed events (``closed``,
``rejected``, ``merged``) out of the hot store:

1. the month is locked against writes (PostGIS: its partition, ``SHARE``);
2. its closed events are written to GeoParquet under ``DEST/events/
   month=YYYY-MM/county=NNNNNN/`` (the lake layout of :mod:`gridmap.batch.lake`,
   so the batch engines read archived months with the rest of the lake);
3. the files are read back and checked: same number of rows, same ids;
4. PostGIS detaches and drops the month's partition; the month's events that
   are still open go back into the table (its DEFAULT partition). DuckDB
   deletes the archived rows. Either way the number removed must equal the
   number written, or the whole step is rolled back.

Everything from the lock to the removal is one transaction: a failure leaves
the store as it was (files already written are removed).
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.dataset as ds

from gridmap.batch.lake import DEFAULT_CHUNK_ROWS, PartitionWriter, check_dest
from gridmap.common.errors import BadInput
from gridmap.events.states import CLOSED_STATES
from gridmap.storage import AllOf, Cmp, Store
from gridmap.storage.base import StoreReads
from gridmap.storage.partitions import month_starts

__all__ = [
    "ArchiveSummary",
    "PartitionInfo",
    "archive_month",
    "ensure_partitions",
    "list_partitions",
    "month_start",
]

_MONTH = re.compile(r"(\d{4})-(\d{2})")


@dataclass(frozen=True)
class ArchiveSummary:
    """What :func:`archive_month` did."""

    month: str
    rows: int
    files: int
    kept_open: int
    dest: Path


@dataclass(frozen=True)
class PartitionInfo:
    """One partition of ``events``: its table, month (``None`` for DEFAULT) and rows."""

    table: str
    month: str | None
    rows: int


def month_start(month: str) -> date:
    """The first day of a ``YYYY-MM`` month.

    Examples
    --------
    >>> month_start("2026-09")
    datetime.date(2026, 9, 1)
    >>> month_start("2026-13")
    Traceback (most recent call last):
    ...
    gridmap.common.errors.BadInput: month must be YYYY-MM, got '2026-13'
    """
    m = _MONTH.fullmatch(str(month).strip())
    if not m or not 1 <= int(m.group(2)) <= 12 or int(m.group(1)) < 1900:
        raise BadInput(f"month must be YYYY-MM, got {str(month)[:20]!r}", field="month")
    return date(int(m.group(1)), int(m.group(2)), 1)


def _next_month(d: date) -> date:
    return date(d.year + d.month // 12, d.month % 12 + 1, 1)


def _sql(store: Store, query: str, params: list[Any]) -> list[tuple[Any, ...]]:
    if not isinstance(store, StoreReads):  # pragma: no cover - both stores are
        raise BadInput("this store cannot run SQL", field="store")
    return store.sql(query, params)


def _partitioned(store: Store) -> bool:
    if store.dialect != "postgis":
        return False
    rows = _sql(store, "SELECT relkind = 'p' FROM pg_class WHERE oid = to_regclass('events')", [])
    return bool(rows and rows[0][0])


def list_partitions(store: Store) -> list[PartitionInfo]:
    """The partitions of ``events`` with their rows (empty when it is not partitioned).

    Examples
    --------
    >>> from gridmap.storage import open_store
    >>> list_partitions(open_store(":memory:", migrate=True))
    []
    """
    if not _partitioned(store):
        return []
    rows = _sql(
        store,
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'events'::regclass "
        "ORDER BY c.relname",
        [],
    )
    out = []
    for table, bound in rows:
        count = _sql(store, f'SELECT count(*) FROM "{table}"', [])  # name from the catalog
        m = re.fullmatch(r"events_(\d{4})_(\d{2})", str(table))
        month = f"{m.group(1)}-{m.group(2)}" if m and "DEFAULT" not in str(bound) else None
        out.append(PartitionInfo(str(table), month, int(count[0][0])))
    return out


def ensure_partitions(store: Store, months: list[str]) -> int:
    """Create the partitions of *months* (``YYYY-MM``) not there yet; return how many were made.

    Rows of those months already in the DEFAULT partition move into the new
    ones. On DuckDB (not partitioned) nothing is done.
    """
    starts = [month_start(m) for m in months]
    if not starts or not _partitioned(store):
        return 0
    rows = _sql(store, "SELECT gridmap_events_ensure_partitions(%s::date[])", [starts])
    return int(rows[0][0]) if rows else 0


def months_ahead(today: date, ahead: int) -> list[str]:
    """The current month of *today* and the *ahead* months after it, as ``YYYY-MM``.

    Examples
    --------
    >>> months_ahead(date(2026, 11, 28), 2)
    ['2026-11', '2026-12', '2027-01']
    """
    return [f"{d.year:04d}-{d.month:02d}" for d in month_starts(today, ahead)]


def archive_month(
    store: Store,
    month: str,
    dest: str | os.PathLike[str],
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> ArchiveSummary:
    """Export the closed events of *month* to *dest* and remove them from the hot store.

    Parameters
    ----------
    store : Store
        PostGIS (partitioned events, migration 008) or DuckDB.
    month : str
        ``YYYY-MM`` (UTC month of ``reported_at``).
    dest : path
        Archive (lake) directory; files go to ``dest/events/month=YYYY-MM/…``
        under names that never replace earlier archives of the same month.
    chunk_rows : int
        Rows read and written at a time.

    Returns
    -------
    ArchiveSummary

    Examples
    --------
    >>> import tempfile
    >>> from gridmap.storage import open_store
    >>> archive_month(open_store(":memory:", migrate=True), "2026-09", tempfile.mkdtemp()).rows
    0
    """
    start = month_start(month)
    end = _next_month(start)
    label = f"{start.year:04d}-{start.month:02d}"
    if int(chunk_rows) < 1:
        raise BadInput(f"chunk_rows must be at least 1, got {chunk_rows}", field="chunk_rows")
    root = check_dest(Path(dest))
    lo = pd.Timestamp(start, tz="UTC")
    hi = pd.Timestamp(end, tz="UTC")
    in_month = AllOf((Cmp(">=", lo), Cmp("<", hi)))
    closed = sorted(CLOSED_STATES)
    tmp = root / f".tmp-archive-{label}-{uuid.uuid4().hex[:8]}"
    partitioned = _partitioned(store)
    moved: list[Path] = []
    try:
        with store.transaction():
            if partitioned:
                _sql(store, "SELECT gridmap_events_lock_month(%s)", [start])
            writer = PartitionWriter(tmp / "events", "events")
            ids: list[int] = []
            last: int | None = None
            while True:
                where: dict[str, Any] = {"reported_at": in_month, "status": closed}
                if last is not None:
                    where["id"] = Cmp(">", last)
                page = store.read("events", where=where, limit=int(chunk_rows))
                if page.empty:
                    break
                writer.write(page)
                ids.extend(int(i) for i in page["id"])
                last = int(page["id"].iloc[-1])
                if len(page) < chunk_rows:
                    break
            _verify(tmp / "events", ids)
            kept = store.count("events", where={"reported_at": in_month}) - len(ids)
            if partitioned:
                _sql(
                    store,
                    "SELECT gridmap_events_archive_month(%s, %s::text[], %s)",
                    [start, closed, len(ids)],
                )
            else:
                removed = store.delete("events", where={"reported_at": in_month, "status": closed})
                if removed != len(ids):
                    raise BadInput(
                        f"archive of {label}: {removed} closed events in the store, "
                        f"{len(ids)} exported",
                        field="month",
                    )
            moved = _move_into(tmp / "events", root / "events", label)
    except BaseException:
        for path in moved:
            path.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ArchiveSummary(label, len(ids), len(moved), int(kept), root)


def _verify(folder: Path, ids: list[int]) -> None:
    """The files under *folder* hold exactly the events *ids* (read back from disk)."""
    if not ids:
        return
    table = ds.dataset(str(folder), format="parquet", partitioning="hive").to_table(columns=["id"])
    got = sorted(int(i) for i in table.column("id").to_pylist())
    if got != sorted(ids):
        raise BadInput(
            f"archive check failed: {len(got)} rows written, {len(ids)} read", field="dest"
        )


def _move_into(src: Path, dest: Path, label: str) -> list[Path]:
    """Move the files under *src* to the same partitions under *dest*, uniquely named."""
    if not src.exists():
        return []
    tag = uuid.uuid4().hex[:8]
    moved = []
    for path in sorted(src.rglob("*.parquet")):
        rel = path.parent.relative_to(src)
        target = dest / rel / f"archive-{label}-{tag}-{path.name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), target)
        moved.append(target)
    return moved
