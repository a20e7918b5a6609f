"""The time zone people read times in (``GRIDMAP_TIME_ZONE``; default Asia/Shanghai).

gridmap stores times in UTC. Reports, dashboards and map pages show them in
the configured zone, and read dates given without a zone (``2026-11-01``) as
that zone's calendar dates. The zone is a parameter of the core functions;
only the API and the CLI read the setting.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd

from gridmap.common.errors import BadInput

__all__ = ["DEFAULT_TIME_ZONE", "check_time_zone", "local_text"]

#: Where gridmap's users are: China Standard Time (UTC+8, no daylight saving).
DEFAULT_TIME_ZONE = "Asia/Shanghai"


def check_time_zone(name: Any) -> str:
    """Return *name* if it is an IANA time zone (``Asia/Shanghai``, ``UTC`` …).

    Raises
    ------
    gridmap.common.errors.BadInput
        For anything else.

    Examples
    --------
    >>> check_time_zone("Asia/Shanghai")
    'Asia/Shanghai'
    >>> check_time_zone("Mars/Olympus")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    gridmap.common.errors.BadInput: unknown time zone 'Mars/Olympus'; use an IANA name such as ...
    """
    text = str(name)
    try:
        if not text or len(text) > 64 or text.startswith(("/", ".")) or ".." in text:
            raise ValueError(text)
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise BadInput(
            f"unknown time zone {text[:64]!r}; use an IANA name such as {DEFAULT_TIME_ZONE}",
            field="time_zone",
        ) from None
    return text


def local_text(value: Any, tz: str, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A time as text in *tz* (naive times are UTC); ``"—"`` when missing.

    Examples
    --------
    >>> local_text(pd.Timestamp("2026-11-30T16:00Z"), "Asia/Shanghai")
    '2026-12-01 00:00'
    """
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return "—"
    t = pd.Timestamp(value)
    t = t.tz_localize("UTC") if t.tzinfo is None else t
    return t.tz_convert(tz).strftime(fmt)
