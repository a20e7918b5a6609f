"""The base of gridmap's pure ASGI middlewares: they act on HTTP requests only.

Lifespan (and any other) connections pass through to the wrapped application
untouched; an HTTP request goes to the middleware's :meth:`HttpMiddleware.http`.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["HttpMiddleware"]


class HttpMiddleware:
    """A pure ASGI middleware acting on HTTP requests; other connections pass through.

    Subclasses override :meth:`http`, which by default passes the request on.

    Parameters
    ----------
    app : ASGI application
        The wrapped application.

    Examples
    --------
    >>> import asyncio
    >>> seen = []
    >>> async def app(scope, receive, send):
    ...     seen.append(scope["type"])
    >>> class Tag(HttpMiddleware):
    ...     async def http(self, scope, receive, send):
    ...         seen.append("tagged")
    ...         await self.app(scope, receive, send)
    >>> for kind in ("lifespan", "http"):
    ...     asyncio.run(Tag(app)({"type": kind}, None, None))
    >>> seen
    ['lifespan', 'tagged', 'http']
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.http(scope, receive, send)

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one HTTP request (here: pass it on to the wrapped application)."""
        await self.app(scope, receive, send)
