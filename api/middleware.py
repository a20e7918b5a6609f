"""ASGI middleware: body size limit (413), compression, request ids, access log and metrics.

Also :class:`CancelOnDisconnect`: a request whose client goes away stops its database work
(DuckDB cursors interrupted, PostGIS statements cancelled).
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections import deque

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.asgi import HttpMiddleware
from api.errors import error_body
from api.logs import ACCESS, REQUEST_ID
from api.metrics import Metrics
from gridmap.storage.limits import CancelScope, cancellable

__all__ = ["REQUEST_ID_HEADER", "BodyLimit", "CancelOnDisconnect", "Compress", "Observe"]

#: The header carrying the request id, both ways.
REQUEST_ID_HEADER = "X-Request-ID"
_GOOD_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")


class _TooLarge(Exception):
    pass


class BodyLimit(HttpMiddleware):
    """Answer 413 to a request whose body exceeds *max_bytes*.

    The ``Content-Length`` header is checked first; a body sent without it
    (chunked) is counted while the application reads it.

    Parameters
    ----------
    app : ASGI application
        The wrapped application.
    max_bytes : int
        Largest body accepted.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        super().__init__(app)
        self.max_bytes = max_bytes

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer 413 to a body larger than the limit; pass the request on."""
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                await self._refuse(
                    scope, receive, send, 400, "bad_request", "invalid Content-Length"
                )
                return
            if size > self.max_bytes:
                await self._refuse(scope, receive, send, 413, "payload_too_large", self._message())
                return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if started:
                raise
            await self._refuse(scope, receive, send, 413, "payload_too_large", self._message())

    def _message(self) -> str:
        return f"request body larger than {self.max_bytes} bytes"

    @staticmethod
    async def _refuse(
        scope: Scope, receive: Receive, send: Send, status: int, code: str, text: str
    ) -> None:
        response = JSONResponse(error_body(code, text), status_code=status)
        await response(scope, receive, send)


class Compress(HttpMiddleware):
    """gzip answers for clients that accept it, except vector tiles and photos.

    The phone app's first load (scripts, Leaflet, its grid's GeoJSON) must fit a
    weak mobile link: text compresses 4–8×. Tiles (already compact protobuf, and
    measured against peers uncompressed) and JPEG photos are passed through.

    Parameters
    ----------
    app : ASGI application
        The wrapped application.
    minimum_size : int
        Smaller bodies are sent as they are.
    """

    _SKIP = ("/tiles/", "/events/media/", "/heatmap/tiles")

    def __init__(self, app: ASGIApp, minimum_size: int = 1024) -> None:
        from starlette.middleware.gzip import GZipMiddleware

        super().__init__(app)
        self.gzip = GZipMiddleware(app, minimum_size=minimum_size)

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, through gzip unless its path is one of the skipped.

        A write from a client that does not accept gzip (report intake from
        other systems) skips the gzip middleware altogether: it would only
        wrap every message of the answer to pass it on unchanged. Reads keep
        it for its ``Vary: Accept-Encoding``, which caches need.
        """
        path: str = scope.get("path", "")
        if (scope.get("method") not in _READS and not _accepts_gzip(scope)) or any(
            s in path for s in self._SKIP
        ):
            await self.app(scope, receive, send)
            return
        await self.gzip(scope, receive, send)


#: Methods whose answers a cache may keep.
_READS = frozenset({"GET", "HEAD"})


def _accepts_gzip(scope: Scope) -> bool:
    """Does the request's ``Accept-Encoding`` name gzip (as Starlette's GZipMiddleware reads it)?

    >>> _accepts_gzip({"headers": [(b"accept-encoding", b"gzip, br")]})
    True
    >>> _accepts_gzip({"headers": [(b"content-type", b"gzip")]})
    False
    """
    return any(k == b"accept-encoding" and b"gzip" in v for k, v in scope.get("headers", ()))


class CancelOnDisconnect(HttpMiddleware):
    """Cancel a request's database work when its client disconnects before the answer.

    Every HTTP request runs in its own :class:`~gridmap.storage.limits.CancelScope`
    (a context variable: the threadpool running a sync endpoint copies it, so
    it reaches the store call). A background task reads the server's
    ``receive()`` into a small queue the application reads from, so the body
    still reaches the application, message by message; when it sees
    ``http.disconnect`` before the answer was complete, it cancels the scope:
    the embedded store interrupts this request's DuckDB cursors, PostGIS
    cancels the statement running on this request's pooled connection
    (``Connection.cancel_safe``; the connection goes back to the pool rolled
    back), nobody else's. The store call then raises
    :class:`~gridmap.storage.limits.QueryCancelled`, answered 499 to nobody
    (the server drops it; the access log shows 499). ``statement_timeout``
    still bounds the statements of clients that stay.

    The queue holds a few messages: a large body the application does not
    read pauses the reader (the server's back-pressure stays), and its
    disconnect is then noticed only when the application reads on.

    Parameters
    ----------
    app : ASGI application
        The wrapped application.
    """

    _QUEUED = 4

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request in its own cancel scope, cancelled on a disconnect."""
        with cancellable() as cancel:
            relay = _Relay(receive, send, cancel, self._QUEUED)
            reader = asyncio.create_task(relay.pump())
            relay.reader = reader
            try:
                await self.app(scope, relay.read, relay.watch)
            finally:
                reader.cancel()
                await asyncio.wait({reader})
                if not reader.cancelled():
                    reader.exception()  # retrieved: a failing receive() was raised to the app


class _Relay:
    """The messages of one request between the server and the application.

    :meth:`pump` reads the server's ``receive()`` into a short queue (and
    cancels the request's scope on a disconnect before the answer was
    complete); :meth:`read` is the application's ``receive``; :meth:`watch`
    its ``send``, noting when the answer is complete.

    The queue is a deque with two bare futures (a message came, room was
    made) rather than an ``asyncio.Queue`` read through ``asyncio.wait``:
    this runs for every request, and those took about 4 % of an API
    worker's time under city load (``benchmarks/load_reporters.py``).
    """

    def __init__(self, receive: Receive, send: Send, cancel: CancelScope, size: int) -> None:
        self.receive, self.send, self.cancel = receive, send, cancel
        self.size = size
        self.messages: deque[Message] = deque()
        self.answered = False
        self.reader: asyncio.Task[None] | None = None
        self._came: asyncio.Future[None] | None = None  # the application waits for a message
        self._room: asyncio.Future[None] | None = None  # the reader waits for room

    @staticmethod
    def _wake(waiter: asyncio.Future[None] | None) -> None:
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def pump(self) -> None:
        """Queue the server's messages until the client is gone."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                while len(self.messages) >= self.size:  # back-pressure: wait for a read
                    self._room = loop.create_future()
                    await self._room
                message = await self.receive()
                gone = message["type"] == "http.disconnect"
                if gone and not self.answered:
                    self.cancel.cancel()
                self.messages.append(message)
                self._wake(self._came)
                if gone:
                    return
        finally:
            self._wake(self._came)  # the application sees the reader is done

    async def read(self) -> Message:
        """The next message for the application (a disconnect once the reader is gone)."""
        reader = self.reader
        assert reader is not None
        while True:
            if self.messages:
                self._wake(self._room)
                return self.messages.popleft()
            if reader.done():  # gone (or the server's receive failed: raise that)
                if not reader.cancelled() and reader.exception() is not None:
                    raise reader.exception()  # type: ignore[misc]
                return {"type": "http.disconnect"}
            self._came = asyncio.get_running_loop().create_future()
            await self._came

    async def watch(self, message: Message) -> None:
        """Send the application's message on, noting the end of the answer."""
        if message["type"] == "http.response.body" and not message.get("more_body"):
            self.answered = True
        await self.send(message)


def _route_template(scope: Scope) -> str:
    """The template of the route that answered (``/collections/{layer}/items``)."""
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return path if isinstance(path, str) and path else "<unmatched>"


class Observe(HttpMiddleware):
    """Give every request an id, log one line per request and count it in the metrics.

    The id is the client's ``X-Request-ID`` when it is a plain token of at most 128
    characters (letters, digits, ``._:@/+=-``), else a new random one; either way it
    is echoed in the answer's ``X-Request-ID`` and set in :data:`api.logs.REQUEST_ID`
    for every log record written while the request is answered. The access line
    (logger ``gridmap.access``) carries ``request_id``, ``method``, ``route`` (the
    route template), ``path``, ``status`` and ``duration_ms``.

    Parameters
    ----------
    app : ASGI application
        The wrapped application.
    metrics : Metrics
        Where requests are counted.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        super().__init__(app)
        self.metrics = metrics

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Tag, log and count the request."""
        given = dict(scope.get("headers", [])).get(b"x-request-id", b"").decode("latin-1")
        rid = given if _GOOD_ID.fullmatch(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        token = REQUEST_ID.set(rid)
        status = 500
        started = time.perf_counter()

        async def tagged(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"
                ]
                headers.append((b"x-request-id", rid.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        self.metrics.in_progress.inc()
        try:
            await self.app(scope, receive, tagged)
        finally:
            seconds = time.perf_counter() - started
            self.metrics.in_progress.dec()
            route = _route_template(scope)
            method = str(scope.get("method", ""))
            self.metrics.observe(method, route, status, seconds)
            ACCESS.info(
                "%s %s %d %.1f ms",
                method,
                scope.get("path", ""),
                status,
                seconds * 1000,
                extra={
                    "request_id": rid,
                    "method": method,
                    "route": route,
                    "path": scope.get("path", ""),
                    "status": status,
                    "duration_ms": round(seconds * 1000, 2),
                },
            )
            REQUEST_ID.reset(token)
