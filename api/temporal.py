"""The ``datetime`` parameter: RFC 3339 instants and intervals, and filtering by them.

The stores have no time filter yet, so :func:`time_mask` filters a frame that
was already read (TODO: push the filter down to SQL once ``Store.read`` takes a
time range).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from gridmap.common.errors import BadInput
from gridmap.common.model import LayerSchema
from gridmap.common.timeparse import parse_instant

__all__ = ["TimeRange", "parse_datetime", "time_columns", "time_mask"]

_DATE_TIME = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[Tt ](?P<time>\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?)"
    r"(?P<zone>[Zz]|[+-]\d{2}:\d{2})?"
)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class TimeRange:
    """A closed time range in UTC; ``None`` is an open end. An instant has start == end."""

    start: pd.Timestamp | None
    end: pd.Timestamp | None


def _clip(text: str, size: int = 60) -> str:
    return text if len(text) <= size else text[:size] + "…"


def _instant(text: str) -> pd.Timestamp:
    m = _DATE_TIME.fullmatch(text)
    if m is None:
        if _DATE.fullmatch(text):
            raise BadInput(
                f"datetime {text!r} is a date without a time and zone; "
                f"write an RFC 3339 date-time such as {text}T00:00:00Z",
                field="datetime",
            )
        raise BadInput(
            f"datetime {_clip(text)!r} is not an RFC 3339 date-time "
            "(e.g. 2026-11-01T08:00:00+08:00) or interval (start/end, '..' for an open end)",
            field="datetime",
        )
    if m.group("zone") is None:
        raise BadInput(
            f"datetime {text!r} has no time zone; add Z (UTC) or an offset such as +08:00",
            field="datetime",
        )
    # The one time parser (years 1-9999, also after conversion to UTC), to the microsecond.
    return parse_instant(text, field="datetime").floor("us")


def parse_datetime(text: str | None) -> TimeRange | None:
    """Parse an OGC ``datetime`` value: an instant, or ``start/end`` with ``..`` or empty open ends.

    Examples
    --------
    >>> parse_datetime("2026-11-01T08:00:00+08:00").start
    Timestamp('2026-11-01 00:00:00+0000', tz='UTC')
    >>> parse_datetime("../2026-11-01T00:00:00Z").start is None
    True
    """
    if text is None:
        return None
    if "/" not in text:
        t = _instant(text)
        return TimeRange(t, t)
    if text.count("/") > 1:
        raise BadInput(f"datetime interval {_clip(text)!r} has more than one '/'", field="datetime")
    a, b = text.split("/")
    start = None if a in ("", "..") else _instant(a)
    end = None if b in ("", "..") else _instant(b)
    if start is None and end is None:
        raise BadInput("datetime interval needs at least one closed end", field="datetime")
    if start is not None and end is not None and start > end:
        raise BadInput(f"datetime interval {text!r} ends before it starts", field="datetime")
    return TimeRange(start, end)


def time_columns(schema: LayerSchema) -> tuple[str, str | None] | None:
    """The columns giving a feature's time: (start, end) or None for a layer without time.

    A layer whose time column is ``valid_from`` and which has ``valid_to``
    describes validity periods: a feature matches when its period meets the
    requested range (a missing ``valid_to`` means still valid).
    """
    if schema.time_column is None:
        return None
    if schema.time_column == "valid_from" and "valid_to" in schema.column_names:
        return schema.time_column, "valid_to"
    return schema.time_column, None


def _as_utc(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Start and end instants of time values (a calendar date spans its whole UTC day)."""
    if pd.api.types.is_datetime64_any_dtype(values):
        ts = pd.to_datetime(values, utc=True)
        return ts, ts
    as_dates = values.map(lambda v: v if isinstance(v, date) else None)
    start = pd.to_datetime(as_dates, utc=True)
    return start, start + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)


def time_mask(frame: pd.DataFrame, schema: LayerSchema, rng: TimeRange) -> np.ndarray:
    """Rows of *frame* whose time meets *rng*; rows without a time never match."""
    cols = time_columns(schema)
    if cols is None:
        raise BadInput(
            f"layer {schema.name!r} has no time; datetime is not supported", field="datetime"
        )
    start_col, end_col = cols
    start, end = _as_utc(frame[start_col])
    if end_col is not None:
        end = _as_utc(frame[end_col])[1].fillna(pd.Timestamp.max.tz_localize("UTC"))
    mask = start.notna()
    if rng.end is not None:
        mask &= start <= rng.end
    if rng.start is not None:
        mask &= end >= rng.start
    return mask.fillna(False).to_numpy(dtype=bool)
