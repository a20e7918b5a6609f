"""Map errors to HTTP answers: one table, one JSON body shape.

Domain errors (:mod:`gridmap.common.errors`) know nothing of HTTP. This module is the
only place that gives them a status code. Every error answer has the OGC API
exception shape ``{"code": ..., "description": ...}`` plus ``description_zh``,
the zh-CN text of the code (:data:`ZH`) for Chinese users; no traceback or
internal detail ever reaches a client.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import Message, Receive, Scope, Send

from api.asgi import HttpMiddleware
from gridmap.common.errors import (
    BadGeometry,
    BadInput,
    GridmapError,
    ImportFailed,
    NotFound,
    OutsideJurisdiction,
    UnknownLayer,
    UnsupportedFormat,
)
from gridmap.common.extras import MissingExtra, missing_extra
from gridmap.events.errors import (
    ConcurrentUpdate,
    IdempotencyKeyReused,
    IllegalTransition,
    MediaTooLarge,
    NotPermitted,
    StaleVersion,
)
from gridmap.security.auth import NotAuthenticated, PermissionDenied
from gridmap.storage.base import StoreInvalidated, StoreUnavailable
from gridmap.storage.limits import QueryCancelled, StatementTimeout
from gridmap.units.workers import UnknownArea
from layers.assets import AssetsNotInstalled

__all__ = [
    "STATUS",
    "ZH",
    "AnswerUnexpected",
    "error_body",
    "install_error_handlers",
    "status_for",
]

log = logging.getLogger("gridmap.api")

#: Domain error → HTTP status. The most specific class in an error's MRO wins.
STATUS: Mapping[type[GridmapError], int] = {
    BadInput: 400,
    BadGeometry: 400,
    UnsupportedFormat: 415,
    OutsideJurisdiction: 422,
    UnknownArea: 400,
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
    MissingExtra: 501,
    QueryCancelled: 499,  # the client went away: nobody reads it, not logged as an error
}

#: What a client is told for a 503, and how many seconds to wait (``Retry-After``).
_UNAVAILABLE: Mapping[type[GridmapError], tuple[str, int | None]] = {
    AssetsNotInstalled: ("service unavailable: map assets are not installed", None),
    StoreUnavailable: ("service unavailable: the database is unreachable; retry", 2),
    StatementTimeout: (
        "service unavailable: the database cancelled this request's query after its time "
        "limit; ask for less (a smaller area, a shorter period, a simpler filter) or retry later",
        5,
    ),
    StoreInvalidated: (
        "service unavailable: the database file cannot be used by this process; "
        "the service stops for its supervisor to restart it",
        5,
    ),
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
    501: "not_implemented",
    503: "service_unavailable",
}

#: zh-CN text beside the English ``description`` of an error answer, by error code.
ZH: Mapping[str, str] = {
    # HTTP-level codes
    "bad_request": "请求无效",
    "unauthorized": "未登录或凭据无效",
    "forbidden": "无权访问",
    "not_found": "未找到所请求的资源",
    "method_not_allowed": "不支持该请求方法",
    "not_acceptable": "无法提供所请求的格式",
    "conflict": "与当前状态冲突",
    "precondition_failed": "数据已被修改，请刷新后重试",
    "payload_too_large": "请求内容过大",
    "unsupported_media_type": "不支持的内容类型",
    "unprocessable": "请求内容无法处理",
    "too_many_requests": "请求过于频繁，请稍后重试",
    "server_error": "服务器内部错误",
    "not_implemented": "服务器未安装此功能",
    "service_unavailable": "服务暂不可用，请稍后重试",
    "client_disconnected": "客户端已断开连接",
    "error": "请求出错",
    # domain error codes (gridmap.common.errors and friends)
    "bad_input": "输入数据无效",
    "bad_geometry": "几何图形无效",
    "bad_config": "配置文件有误",
    "unsupported_format": "不支持的文件格式",
    "outside_jurisdiction": "位置不在管辖范围内",
    "unknown_area": "未知的区域编码",
    "unknown_layer": "未知的图层",
    "import_failed": "导入失败，数据未改变",
    "code_collision": "编码冲突",
    "illegal_transition": "当前状态下不允许此操作",
    "idempotency_key_reused": "幂等键已用于另一个请求",
    "font_missing": "缺少报告所需的字体",
    "assets_not_installed": "地图资源未安装",
    "unknown_asset": "未知的地图资源",
    "store_unavailable": "数据库暂不可用，请稍后重试",
    "store_busy": "数据库正被其他进程使用",
    "store_invalidated": "数据库文件不可用，服务将重启",
    "statement_timeout": "数据库查询超时，请缩小范围或稍后重试",
    "client_closed_request": "客户端已关闭请求，查询已中止",
    "missing_extra": "服务器未安装此功能所需的可选组件",
}


def zh_text(code: str, status: int | None = None) -> str:
    """zh-CN text of an error *code* (else of the HTTP *status*'s code).

    Examples
    --------
    >>> zh_text("not_found")
    '未找到所请求的资源'
    >>> zh_text("some_new_code", 409)
    '与当前状态冲突'
    """
    if code in ZH:
        return ZH[code]
    if status is not None and _HTTP_CODES.get(status) in ZH:
        return ZH[_HTTP_CODES[status]]
    return ZH["error"]


def status_for(exc: GridmapError) -> int:
    """HTTP status of a domain error (500 for one the table does not know).

    Examples
    --------
    >>> status_for(OutsideJurisdiction("far away"))
    422
    """
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def error_body(code: str, description: str, status: int | None = None) -> dict[str, str]:
    """The OGC API exception body, with the zh-CN text of *code* beside the English.

    Examples
    --------
    >>> error_body("not_found", "no event 7")
    {'code': 'not_found', 'description': 'no event 7', 'description_zh': '未找到所请求的资源'}
    """
    return {"code": code, "description": description, "description_zh": zh_text(code, status)}


def _json_error(status: int, code: str, description: str) -> JSONResponse:
    return JSONResponse(error_body(code, description, status), status_code=status)


def _clip(text: str, size: int = 200) -> str:
    return text if len(text) <= size else text[:size] + "…"


def _validation_message(errors: Sequence[Any]) -> str:
    parts = []
    for err in errors[:5]:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("query", "path", "body", "header")]
        where = ".".join(loc) or "request"
        parts.append(f"{where}: {_clip(str(err.get('msg', 'invalid value')))}")
    return "invalid parameter " + "; ".join(parts) if parts else "invalid request"


async def _on_domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GridmapError)
    status = status_for(exc)
    if _wants_login_page(request, status):
        return _to_login(request)
    if status == 500:
        log.error("unmapped domain error on %s", request.url.path, exc_info=exc)
        return _json_error(500, "server_error", "internal error")
    if isinstance(exc, MissingExtra):
        # The server lacks an optional extra: the operator's fix, named to the client.
        log.warning("%s on %s", exc.message, request.url.path)
        return _json_error(status, exc.code, exc.message)
    if status > 500:
        log.error("service unavailable on %s: %s", request.url.path, exc.message)
        text, retry = next(
            (v for cls in type(exc).__mro__ if (v := _UNAVAILABLE.get(cls)) is not None),
            ("service unavailable", None),
        )
        response = _json_error(status, exc.code, text)
        if retry is not None:
            response.headers["Retry-After"] = str(retry)
        if isinstance(exc, StoreInvalidated):
            _stop_serving(request, exc)
        return response
    response = _json_error(status, exc.code, _clip(exc.message, 500))
    if status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


def _stop_serving(request: Request, exc: StoreInvalidated) -> None:
    """DuckDB invalidated the store's database: every request would fail; stop serving.

    The first time, logs why (the file and the recovery commands) and calls
    ``app.state.stop_serving`` (set by ``gridmap serve`` or the lifespan under
    uvicorn): the server finishes this answer and exits, for its supervisor to
    restart it on a freshly opened file. Meanwhile every request answers 503.
    """
    state = request.app.state
    if getattr(state, "store_failure", None) is not None:
        return
    state.store_failure = exc.message
    log.critical("%s; the service stops for its supervisor to restart it", exc.message)
    stop = getattr(state, "stop_serving", None)
    if stop is not None:
        stop()


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return _json_error(400, BadInput.code, _validation_message(exc.errors()))


def _wants_login_page(request: Request, status: int) -> bool:
    """A browser navigating to a page without (a valid) session: send it to ``/login``."""
    return (
        status == 401
        and request.method == "GET"
        and "authorization" not in request.headers
        and "x-api-key" not in request.headers
        and request.headers.get("sec-fetch-mode", "navigate") == "navigate"
        and "text/html" in request.headers.get("accept", "")
    )


def _to_login(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    root = str(request.scope.get("root_path", ""))
    return RedirectResponse(f"{root}/login?next={quote(root + target, safe='')}", status_code=303)


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if _wants_login_page(request, exc.status_code):
        return _to_login(request)
    code = _HTTP_CODES.get(exc.status_code, "error")
    detail = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no resource at {_clip(request.url.path, 100)}"
    return JSONResponse(
        error_body(code, detail, exc.status_code), status_code=exc.status_code, headers=exc.headers
    )


async def _on_disconnect(request: Request, exc: Exception) -> JSONResponse:
    # The client went away (e.g. timed out) before its body was read: nothing
    # is stored and nobody reads this answer; not a server error.
    log.info("client disconnected on %s before its request was read", request.url.path)
    return _json_error(400, "client_disconnected", "the client closed the request")


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    if isinstance(exc, StoreUnavailable):  # raised outside a route (e.g. in a middleware)
        return await _on_domain_error(request, exc)
    extra = missing_extra(exc)  # a lazy import of an optional extra that is not installed
    if extra is not None:
        return await _on_domain_error(request, extra)
    log.error("unexpected error on %s", request.url.path, exc_info=exc)
    return _json_error(500, "server_error", "internal error")


class AnswerUnexpected(HttpMiddleware):
    """ASGI middleware answering an error no handler took (500, or 503) and ending it there.

    Starlette's outermost error middleware answers such an error with the
    ``Exception`` handler and then raises it again, for servers to log; uvicorn
    then closes the connection, so one failed request cost a keep-alive client
    its connection (and whatever it had pipelined). Installed innermost, this
    middleware answers through the same handler (logged there, with the
    traceback) and returns normally: the connection stays open. An error after
    the answer has started cannot be answered and still propagates, as does
    one raised while reading the request (the outer middleware that raised it,
    such as the body limit, answers it).

    Parameters
    ----------
    app : ASGI application
        The wrapped application.
    """

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer the request; an error no handler took is answered here."""
        started = False
        reading: list[BaseException] = []

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        async def read() -> Message:
            try:
                return await receive()
            except BaseException as exc:  # e.g. the body limit: the outer middleware answers
                reading.append(exc)
                raise

        try:
            await self.app(scope, read, watch)
        except Exception as exc:
            if started or any(exc is e for e in reading):
                raise
            response = await _on_unexpected(Request(scope, receive), exc)
            await response(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that turn every error into an OGC exception body.

    Call it before adding other middleware: :class:`AnswerUnexpected` must be
    the innermost, so the others (security headers, compression) wrap its answers.
    """
    app.add_exception_handler(GridmapError, _on_domain_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(ClientDisconnect, _on_disconnect)
    app.add_exception_handler(Exception, _on_unexpected)
    app.add_middleware(AnswerUnexpected)
