"""Strict JSON request bodies: the bad inputs of quality.md become clear 4xx answers.

FastAPI's own body parsing accepts ``NaN``, ``Infinity`` and duplicate keys
(the last wins) and lets a 10,000-deep document exhaust the recursion limit;
every route reading JSON reads its body through :func:`read_json` or
:func:`parse_json` instead, which also refuse what :mod:`api.validation`
refuses (lone surrogates and NUL characters in text, integers of more than
4,300 digits), naming the field.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from api.validation import check_document, read_int
from gridmap.common.errors import BadInput, UnsupportedFormat

__all__ = ["MAX_DEPTH", "StrictJsonRoute", "parse_json", "read_json"]

#: Deepest nesting accepted in a request body.
MAX_DEPTH = 32


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise BadInput(f"duplicate key {key[:60]!r} in the JSON body", field=key[:60])
        out[key] = value
    return out


def _constant(name: str) -> Any:
    raise BadInput(f"{name} is not valid JSON: numbers must be finite", field="body")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BadInput(f"number {text[:40]} is out of range: numbers must be finite", field="body")
    return value


def _depth_ok(raw: str) -> bool:
    if raw.count("{") + raw.count("[") <= MAX_DEPTH:
        return True  # too few brackets to nest that deep (most bodies): no scan
    depth = 0
    in_string = escaped = False
    for ch in raw:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return False
        elif ch in "]}":
            depth -= 1
    return True


def parse_json(data: bytes) -> Any:
    """Decode a UTF-8 JSON document strictly (``BadInput`` naming the problem).

    Examples
    --------
    >>> parse_json(b'{"a": 1}')
    {'a': 1}
    >>> parse_json(b'{"a": 1, "a": 2}')
    Traceback (most recent call last):
    gridmap.common.errors.BadInput: duplicate key 'a' in the JSON body
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(
            f"the body is not valid UTF-8 (byte {exc.start}); send JSON in UTF-8", field="body"
        ) from None
    if not text.strip():
        raise BadInput("the request body is empty; send a JSON object", field="body")
    if not _depth_ok(text):
        raise BadInput(f"the JSON body is nested deeper than {MAX_DEPTH} levels", field="body")
    try:
        doc = json.loads(
            text,
            object_pairs_hook=_pairs,
            parse_constant=_constant,
            parse_float=_float,
            parse_int=read_int,
        )
    except json.JSONDecodeError as exc:
        raise BadInput(
            f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            field="body",
        ) from None
    except RecursionError:
        raise BadInput("the JSON body is nested too deeply", field="body") from None
    return check_document(doc)


async def read_json(request: Request) -> Any:
    """The request's JSON body; 415 unless the Content-Type is JSON."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json" and not ctype.endswith("+json"):
        raise UnsupportedFormat(
            f"Content-Type must be application/json, got {ctype[:60] or 'none'!r}"
        )
    return parse_json(await request.body())


class StrictJsonRoute(APIRoute):
    """Route class whose JSON body passes :func:`parse_json` before FastAPI reads it.

    Routes that declare a pydantic body model (``/registry``) would otherwise
    get FastAPI's lenient parsing (lone surrogates, NaN, duplicate keys) and a
    bare "error parsing the body" for an integer of 5,000 digits; with
    ``APIRouter(route_class=StrictJsonRoute)`` they refuse what every other
    route refuses, naming the field. The body is read once (Starlette caches it).
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The route's handler, preceded by the strict check of a JSON body."""
        handler = super().get_route_handler()

        async def checked(request: Request) -> Response:
            ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype == "application/json" or ctype.endswith("+json"):
                body = await request.body()
                if body.strip():
                    parse_json(body)
            return await handler(request)

        return checked
