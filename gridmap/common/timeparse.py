"""Times read from outside: one parser, years 1–9999, a time zone where it matters.

Every time gridmap reads from a request, a file field or a command line —
``from``/``to``, ``date``, ``start_date``, ``observed_at``, ``starts_at`` —
goes through :func:`parse_instant` (an instant, answered in UTC) or
:func:`parse_day` (a calendar date), so every caller refuses the same things
in the same words: text that is not ISO 8601, a time without a zone where one
is required, and any year outside 1–9999 (year 0, negative years, or a year
that a zone offset pushes past 9999 in UTC). pandas alone reads years Python's
``datetime`` cannot hold; those used to escape as server errors or be stored
as 1970.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pandas as pd

from gridmap.common.errors import BadInput

__all__ = ["MAX_YEAR", "MIN_YEAR", "iso_utc", "parse_day", "parse_instant"]

#: Years a time may have (those of Python's ``datetime``, ISO 8601 without extension).
MIN_YEAR, MAX_YEAR = 1, 9999

_MAX_TEXT = 64
_LEADING_YEAR = re.compile(r"\s*([+-]?)(\d+)(?=-)")
_DATE_ONLY = re.compile(r"\s*[+-]?\d+-\d{1,2}-\d{1,2}\s*")
_ZONE = re.compile(r"(?:[Zz]|[+-]\d{2}(?::?\d{2})?|UTC|GMT)$")
_EXAMPLE = "expected e.g. 2026-11-01T08:00:00+08:00"
_DAY = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


def _clip(text: str, size: int = 40) -> str:
    return text if len(text) <= size else text[:size] + "…"


def _invalid(field: str, text: str, reason: str) -> BadInput:
    return BadInput(
        f"{field} {_clip(text)!r} is not a valid date-time (ISO 8601): {reason}", field=field
    )


def _year_range(field: str, text: str, year: int) -> None:
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise _invalid(field, text, f"year {year} is outside {MIN_YEAR}–{MAX_YEAR}")


def parse_instant(
    value: Any, *, field: str, tz: str | None = None, dates: bool = True
) -> pd.Timestamp:
    """An ISO 8601 time (text, ``datetime``, ``date`` or ``Timestamp``) as a UTC ``Timestamp``.

    Parameters
    ----------
    value : str, datetime, date or Timestamp
        What was sent.
    field : str
        Its name, for the error message (``from``, ``starts_at`` …).
    tz : str, optional
        IANA zone of a value sent without one. ``None`` refuses a date and
        time without a zone (a plain date is still read, see *dates*).
    dates : bool
        Accept a plain date (``2026-11-01``): midnight in *tz* (UTC when
        *tz* is ``None``). ``False`` asks for a date and a time.

    Raises
    ------
    gridmap.common.errors.BadInput
        Naming *field*: not a time, no zone where one is needed, or a year
        outside 1–9999 (before or after conversion to UTC).

    Examples
    --------
    >>> parse_instant("2026-11-01T08:00:00+08:00", field="from")
    Timestamp('2026-11-01 00:00:00+0000', tz='UTC')
    >>> parse_instant("2026-11-01", field="from")
    Timestamp('2026-11-01 00:00:00+0000', tz='UTC')
    >>> parse_instant("2026-11-01", field="from", tz="Asia/Shanghai")
    Timestamp('2026-10-31 16:00:00+0000', tz='UTC')
    >>> parse_instant("0000-01-01T00:00:00Z", field="from")
    Traceback (most recent call last):
    gridmap.common.errors.BadInput: from '0000-01-01T00:00:00Z' is not a valid date-time (ISO 8601): year 0 is outside 1–9999
    """  # noqa: E501
    if isinstance(value, bool) or not isinstance(value, str | dt.datetime | dt.date | pd.Timestamp):
        raise BadInput(
            f"{field} must be an ISO 8601 time, e.g. 2026-11-01T08:00:00+08:00", field=field
        )
    if isinstance(value, str):
        text = value.strip()
        if not text or len(text) > _MAX_TEXT or "\x00" in text:
            raise _invalid(field, text, _EXAMPLE)
        year = _LEADING_YEAR.match(text)
        if year is not None:
            _year_range(field, text, int(year.group(1) + year.group(2)))
        plain_date = _DATE_ONLY.fullmatch(text) is not None
        if plain_date and not dates:
            raise _invalid(field, text, "a date needs a time and a zone, e.g. T08:00:00+08:00")
        if not plain_date and tz is None and not _ZONE.search(text):
            why = "it needs a time zone (e.g. Z or +08:00)" if year else _EXAMPLE
            raise _invalid(field, text, why)
    else:
        text = str(value)
    try:
        ts = pd.Timestamp(value.strip() if isinstance(value, str) else value)
    except (
        ValueError,
        TypeError,
        OverflowError,
        NotImplementedError,
        pd.errors.OutOfBoundsDatetime,
    ):
        raise _invalid(field, text, _EXAMPLE) from None
    if pd.isna(ts):
        raise _invalid(field, text, _EXAMPLE)
    _year_range(field, text, int(ts.year))
    try:
        if ts.tzinfo is None:
            ts = ts.tz_localize(tz or "UTC")
        ts = ts.tz_convert("UTC")
    except (ValueError, OverflowError, NotImplementedError, pd.errors.OutOfBoundsDatetime):
        raise _invalid(field, text, f"out of range in UTC (years {MIN_YEAR}–{MAX_YEAR})") from None
    _year_range(field, text, int(ts.year))
    return ts


def parse_day(value: Any, *, field: str) -> dt.date:
    """A calendar date written ``YYYY-MM-DD`` (years 1–9999).

    Examples
    --------
    >>> parse_day("2026-11-02", field="date")
    datetime.date(2026, 11, 2)
    >>> parse_day("0000-01-01", field="date")
    Traceback (most recent call last):
    gridmap.common.errors.BadInput: date must be a date YYYY-MM-DD in years 1–9999, got '0000-01-01'
    """
    text = value.strip() if isinstance(value, str) else ""
    m = _DAY.fullmatch(text)
    try:
        if m is None:
            raise ValueError(text)
        return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        shown = _clip(value) if isinstance(value, str) else type(value).__name__
        raise BadInput(
            f"{field} must be a date YYYY-MM-DD in years {MIN_YEAR}–{MAX_YEAR}, got {shown!r}",
            field=field,
        ) from None


def iso_utc(value: Any) -> str | None:
    """An instant as ISO 8601 in UTC with a ``Z`` (naive values are taken as UTC).

    Parameters
    ----------
    value : Any
        A timestamp, datetime, or text pandas reads as one; missing values give None.

    Returns
    -------
    str or None
        ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z``.

    Raises
    ------
    ValueError, TypeError
        When pandas cannot read *value* as a time.

    Examples
    --------
    >>> iso_utc(pd.Timestamp("2026-11-02 08:00", tz="Asia/Shanghai"))
    '2026-11-02T00:00:00Z'
    >>> iso_utc("2026-11-02T08:00"), iso_utc(None), iso_utc(pd.NaT)
    ('2026-11-02T08:00:00Z', None, None)
    """
    if value is None or value is pd.NaT:
        return None
    utc = isinstance(value, dt.datetime) and value.tzinfo is dt.UTC
    if utc and not getattr(value, "nanosecond", 0):
        # A UTC instant (event intake answers five per report): no pandas round trip.
        return dt.datetime.isoformat(value)[:-6] + "Z"
    ts = pd.Timestamp(value)
    if pd.isna(ts):
        return None
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.isoformat().replace("+00:00", "Z")
