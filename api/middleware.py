"""ASGI middleware: refuse request bodies above the configured size (413)."""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_body

__all__ = ["BodyLimit", "Compress"]


class _TooLarge(Exception):
    pass


class BodyLimit:
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
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
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


class Compress:
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

        self.app = app
        self.gzip = GZipMiddleware(app, minimum_size=minimum_size)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection."""
        path: str = scope.get("path", "") if scope["type"] == "http" else ""
        if scope["type"] != "http" or any(s in path for s in self._SKIP):
            await self.app(scope, receive, send)
            return
        await self.gzip(scope, receive, send)
