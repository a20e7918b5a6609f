"""Map errors to HTTP answers: one table, one JSON body shape.

Domain errors (:mod:`gridmap.errors`) know nothing of HTTP. This module is the
only place that gives them a status code. Every error answer has the OGC API
exception shape ``{"code": ..., "description": ...}``; no traceback or
internal detail ever reaches a client.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from gridmap.auth import NotAuthenticated, PermissionDenied
from gridmap.errors import (
    BadGeometry,
    BadInput,
    GridmapError,
    ImportFailed,
    NotFound,
    OutsideJurisdiction,
    UnknownLayer,
    UnsupportedFormat,
)
from gridmap.events.errors import (
    ConcurrentUpdate,
    IdempotencyKeyReused,
    IllegalTransition,
    MediaTooLarge,
    NotPermitted,
    StaleVersion,
)
from gridmap.storage.base import StoreUnavailable
from layers.assets import AssetsNotInstalled

__all__ = ["STATUS", "error_body", "install_error_handlers", "status_for"]

log = logging.getLogger("gridmap.api")

#: Domain error → HTTP status. The most specific class in an error's MRO wins.
STATUS: Mapping[type[GridmapError], int] = {
    BadInput: 400,
    BadGeometry: 400,
    UnsupportedFormat: 415,
    OutsideJurisdiction: 422,
    UnknownLayer: 404,
    NotFound: 404,
    ImportFailed: 409,
    NotAuthenticated: 401,
    PermissionDenied: 403,
    NotPermitted: 403,
    IllegalTransition: 409,
    ConcurrentUpdate: 409,
    StaleVersion: 412,
    IdempotencyKeyReused: 422,
    MediaTooLarge: 413,
    AssetsNotInstalled: 503,
    StoreUnavailable: 503,
}

#: What a client is told for a 503, and how many seconds to wait (``Retry-After``).
_UNAVAILABLE: Mapping[type[GridmapError], tuple[str, int | None]] = {
    AssetsNotInstalled: ("service unavailable: map assets are not installed", None),
    StoreUnavailable: ("service unavailable: the database is unreachable; retry", 2),
}

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    429: "too_many_requests",
    500: "server_error",
    503: "service_unavailable",
}


def status_for(exc: GridmapError) -> int:
    """HTTP status of a domain error (500 for one the table does not know).

    Examples
    --------
    >>> status_for(OutsideJurisdiction("far away"))
    422
    """
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]  # type: ignore[index]
    return 500


def error_body(code: str, description: str) -> dict[str, str]:
    """The OGC API exception body."""
    return {"code": code, "description": description}


def _json_error(status: int, code: str, description: str) -> JSONResponse:
    return JSONResponse(error_body(code, description), status_code=status)


def _clip(text: str, size: int = 200) -> str:
    return text if len(text) <= size else text[:size] + "…"


def _validation_message(errors: Sequence[Any]) -> str:
    parts = []
    for err in errors[:5]:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("query", "path", "body", "header")]
        where = ".".join(loc) or "request"
        parts.append(f"{where}: {_clip(str(err.get('msg', 'invalid value')))}")
    return "invalid parameter " + "; ".join(parts) if parts else "invalid request"


async def _on_domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, GridmapError)
    status = status_for(exc)
    if status == 500:
        log.error("unmapped domain error on %s", request.url.path, exc_info=exc)
        return _json_error(500, "server_error", "internal error")
    if status > 500:
        log.error("service unavailable on %s: %s", request.url.path, exc.message)
        text, retry = next(
            (v for cls in type(exc).__mro__ if (v := _UNAVAILABLE.get(cls)) is not None),
            ("service unavailable", None),
        )
        response = _json_error(status, exc.code, text)
        if retry is not None:
            response.headers["Retry-After"] = str(retry)
        return response
    response = _json_error(status, exc.code, _clip(exc.message, 500))
    if status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return _json_error(400, BadInput.code, _validation_message(exc.errors()))


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "error")
    detail = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no resource at {_clip(request.url.path, 100)}"
    return JSONResponse(error_body(code, detail), status_code=exc.status_code, headers=exc.headers)


async def _on_disconnect(request: Request, exc: Exception) -> JSONResponse:
    # The client went away (e.g. timed out) before its body was read: nothing
    # is stored and nobody reads this answer; not a server error.
    log.info("client disconnected on %s before its request was read", request.url.path)
    return _json_error(400, "client_disconnected", "the client closed the request")


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unexpected error on %s", request.url.path, exc_info=exc)
    return _json_error(500, "server_error", "internal error")


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that turn every error into an OGC exception body."""
    app.add_exception_handler(GridmapError, _on_domain_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(ClientDisconnect, _on_disconnect)
    app.add_exception_handler(Exception, _on_unexpected)
