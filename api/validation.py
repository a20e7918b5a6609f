r"""One validation layer at the edge: the text, numbers and times of every request.

Whatever a route reads from outside passes here before it reaches the core or
a store, so a malformed value is a 400 naming its field instead of a server
error deep inside (a ``UnicodeEncodeError`` while hashing, a ``ValueError``
from ``int()``, a PostgreSQL error on a NUL byte, a year 0 timestamp):

- **Query strings**, of every route: :class:`QueryText` refuses a NUL
  character in any parameter name or value (PostgreSQL text cannot hold one).
- **JSON bodies** (:func:`api.routers._json.parse_json`, used by every route
  that reads JSON): :func:`check_document` refuses lone UTF-16 surrogates
  (``"\ud800"``, valid JSON but not encodable text) and NUL characters in
  keys and strings, and integers of more than :data:`MAX_INT_DIGITS` digits.
- **Form fields** (Open311, uploads, the login form): :func:`check_form` and
  :func:`check_text`.
- **Times**: :func:`parse_time` and :func:`parse_day`, over the one parser of
  :mod:`gridmap.common.timeparse` (ISO 8601, years 1–9999).

Coordinates, bboxes and coordinate systems are checked where they are
converted (:mod:`api.crs`, :func:`gridmap.geo.locate.check_points`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

import pandas as pd
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from api.asgi import HttpMiddleware
from gridmap.common.errors import BadInput
from gridmap.common.timeparse import parse_day as _parse_day
from gridmap.common.timeparse import parse_instant

__all__ = [
    "MAX_INT_DIGITS",
    "HugeInt",
    "QueryText",
    "check_document",
    "check_form",
    "check_text",
    "parse_day",
    "parse_time",
    "read_int",
]

#: Longest integer literal read from a JSON body (Python's own limit for ``int()``).
MAX_INT_DIGITS = 4300


class HugeInt:
    """Stands in for an integer literal too long to read (found and refused by the walk)."""

    __slots__ = ("digits",)

    def __init__(self, digits: int) -> None:
        self.digits = digits


def read_int(text: str) -> int | HugeInt:
    """``parse_int`` of :func:`json.loads`: an ``int``, or a :class:`HugeInt` marker.

    Examples
    --------
    >>> read_int("12")
    12
    >>> read_int("9" * 5000).digits
    5000
    """
    digits = len(text) - (text[:1] == "-")
    return HugeInt(digits) if digits > MAX_INT_DIGITS else int(text)


def _clip(text: str, size: int = 60) -> str:
    return text if len(text) <= size else text[:size] + "…"


def _problem(text: str) -> str | None:
    if "\x00" in text:
        return "contains a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(text[exc.start])
        return f"contains a lone UTF-16 surrogate (\\u{code:04x}), which is not text"
    return None


def check_text(value: str, field: str) -> str:
    r"""*value* itself, or ``BadInput`` naming *field* for NUL characters or lone surrogates.

    Examples
    --------
    >>> check_text("张三", "name")
    '张三'
    >>> check_text("a\ud800", "note")
    Traceback (most recent call last):
    gridmap.common.errors.BadInput: note contains a lone UTF-16 surrogate (\ud800), ...
    """
    problem = _problem(value)
    if problem is not None:
        raise BadInput(f"{_clip(field)} {problem}", field=field[:60])
    return value


def _child(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def check_document(doc: Any) -> Any:
    r"""Refuse a decoded JSON document holding text or numbers no route can use.

    Walks every key and value once: a NUL character or a lone surrogate in a
    string, or a :class:`HugeInt`, is a ``BadInput`` naming where it is
    (``description``, ``location.lon``, ``points[3][0]``). Returns *doc*.

    Examples
    --------
    >>> check_document({"a": [1, "x"]})
    {'a': [1, 'x']}
    >>> check_document({"location": {"lon": HugeInt(5000)}})
    Traceback (most recent call last):
    gridmap.common.errors.BadInput: location.lon is an integer of 5000 digits; at most 4300 are read
    """
    stack: list[tuple[str, Any]] = [("", doc)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            check_text(value, path or "body")
        elif isinstance(value, HugeInt):
            raise BadInput(
                f"{_clip(path or 'body')} is an integer of {value.digits} digits; "
                f"at most {MAX_INT_DIGITS} are read",
                field=(path or "body")[:60],
            )
        elif isinstance(value, dict):
            for key, item in value.items():
                where = _child(path, key)
                check_text(key, f"a key in {path or 'the body'}")
                stack.append((where, item))
        elif isinstance(value, list):
            stack.extend((_child(path, i), item) for i, item in enumerate(value))
    return doc


def check_form(fields: Mapping[str, Any]) -> None:
    """Refuse form fields (names and text values) with NUL characters or lone surrogates.

    Examples
    --------
    >>> check_form({"service_code": "dispute"})
    """
    for name, value in fields.items():
        check_text(name, "a form field name")
        if isinstance(value, str):
            check_text(value, name)


def parse_time(text: str | None, name: str) -> pd.Timestamp | None:
    """A query parameter holding an ISO 8601 time with a zone (a plain date is UTC midnight).

    ``None`` when absent; ``BadInput`` naming *name* for anything else,
    years outside 1–9999 included (:func:`gridmap.common.timeparse.parse_instant`).

    Examples
    --------
    >>> parse_time("2026-11-01", "from")
    Timestamp('2026-11-01 00:00:00+0000', tz='UTC')
    >>> parse_time("2026-11-01T08:00:00+08:00", "to")
    Timestamp('2026-11-01 00:00:00+0000', tz='UTC')
    """
    if text is None:
        return None
    return parse_instant(text, field=name)


def parse_day(text: str | None, name: str) -> dt.date | None:
    """A query parameter holding a calendar date ``YYYY-MM-DD`` (``None`` when absent).

    Examples
    --------
    >>> parse_day("2026-11-02", "date")
    datetime.date(2026, 11, 2)
    """
    return None if text is None else _parse_day(text, field=name)


class QueryText(HttpMiddleware):
    """ASGI middleware: a query parameter holding a NUL character is a 400 naming it.

    Runs before routing, for every route, so no parameter with a NUL byte
    reaches a store (PostgreSQL refuses NUL in text with a server error).

    Parameters
    ----------
    app : ASGI application
        The wrapped application.
    """

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse a query with a NUL character; pass any other request on."""
        raw: bytes = scope.get("query_string", b"")
        if b"%00" in raw or b"\x00" in raw:
            problem = _query_problem(raw.decode("latin-1"))
            if problem is not None:
                response = JSONResponse(
                    {"code": BadInput.code, "description": problem}, status_code=400
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _query_problem(query: str) -> str | None:
    for key, value in parse_qsl(query, keep_blank_values=True):
        if "\x00" in key:
            return "a query parameter name contains a NUL character"
        if "\x00" in value:
            return f"query parameter {_clip(key)!r} contains a NUL character"
    return None
