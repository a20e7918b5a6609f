"""Wiring only: build the FastAPI application from settings and routers.

Run with ``uvicorn --factory api.main:create_app`` (settings from
``GRIDMAP_*`` variables) or ``gridmap serve``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from api.errors import install_error_handlers
from api.middleware import BodyLimit
from api.routers import (
    analytics,
    doorknock,
    events,
    features,
    grids,
    locate,
    maps,
    open311,
    patrol,
    reports,
    tiles,
)
from api.security import install_security
from api.settings import Settings
from gridmap.storage import Store, open_store

__all__ = ["create_app"]


def create_app(settings: Settings | None = None, store: Store | None = None) -> FastAPI:
    """Build the gridmap HTTP service.

    Parameters
    ----------
    settings : Settings, optional
        Service settings; read from ``GRIDMAP_*`` environment variables when omitted.
    store : Store, optional
        An open store to serve (tests, the demo). It is not closed at shutdown.
        Without it the lifespan opens ``settings.database_url`` (creating or
        upgrading the schema) and closes it at shutdown.

    Examples
    --------
    >>> from gridmap.storage import open_store
    >>> app = create_app(Settings(), store=open_store(":memory:", migrate=True))
    >>> app.title
    'gridmap'
    """
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if store is not None:
            app.state.store = store
            yield
            return
        opened = open_store(settings.database_url, migrate=True)
        app.state.store = opened
        try:
            yield
        finally:
            opened.close()

    app = FastAPI(
        title="gridmap",
        description="网格化服务管理 GIS: OGC API Features over grids, buildings, roads and events.",
        version="0.1.0",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        redirect_slashes=False,
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.include_router(features.router)
    app.include_router(tiles.router)
    app.include_router(locate.router)
    app.include_router(maps.router)
    app.include_router(events.router)
    app.include_router(open311.router)
    app.include_router(analytics.router)
    app.include_router(patrol.router)
    app.include_router(reports.router)
    app.include_router(doorknock.router)
    app.include_router(grids.router)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["*"],
            expose_headers=["ETag"],
        )
    # Last, so its security headers wrap every answer (413s and CORS included).
    install_security(app)
    return app
