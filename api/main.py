"""Wiring only: build the FastAPI application from settings and routers.

Run with ``uvicorn --factory api.main:create_app`` (settings from
``GRIDMAP_*`` variables) or ``gridmap serve``.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from api.errors import install_error_handlers
from api.logs import configure_logging
from api.metrics import Metrics
from api.middleware import BodyLimit, CancelOnDisconnect, Compress, Observe
from api.routers import (
    analytics,
    console,
    doorknock,
    events,
    features,
    feeds,
    fieldapp,
    grids,
    health,
    locate,
    maps,
    open311,
    pages,
    patrol,
    reports,
    subscriptions,
    tiles,
    workers,
)
from api.routers.locate import app_locator_cache
from api.security import install_security
from api.settings import Settings
from api.validation import QueryText
from gridmap.assessment.rules import load_rules
from gridmap.common.errors import GridmapError
from gridmap.events.taxonomy import load_taxonomy
from gridmap.storage import Store, open_store
from gridmap.storage.partitions import prepare_event_months

__all__ = ["create_app"]


async def _prepare_months(store: Store, every_s: float = 3600.0) -> None:
    """Keep the next months of ``events`` partitioned while the service runs.

    ``open_store(migrate=True)`` made them at start; this carries the service
    across month ends without a writer creating a partition mid-request
    (:mod:`gridmap.storage.partitions` says why that deadlocks).
    """
    while True:
        await asyncio.sleep(every_s)
        try:
            await asyncio.to_thread(prepare_event_months, store)
        except GridmapError as exc:  # the store is down: the next hour tries again
            logging.getLogger("gridmap.api").warning("preparing event months: %s", exc)


async def _warm(app: FastAPI, store: Store) -> None:
    """Get a service ready before its first request: the locate index, a quiet heap.

    The index (grids, communities, towns; report intake places every report
    with it) is built now instead of by the first reports of the day. Then the
    objects that live as long as the process (the index, the layers' schemas,
    imported modules) are moved out of the garbage collector's reach
    (``gc.freeze``): a full collection no longer walks them, which otherwise
    stalls every request of the worker for tens of milliseconds now and then.
    """
    try:
        await asyncio.to_thread(app_locator_cache(app).get, store)
    except GridmapError as exc:  # the store is down: the first request builds it
        logging.getLogger("gridmap.api").warning("building the locate index: %s", exc)
    gc.collect()
    gc.freeze()


def create_app(settings: Settings | None = None, store: Store | None = None) -> FastAPI:
    """Build the gridmap HTTP service.

    Parameters
    ----------
    settings : Settings, optional
        The settings tree (:mod:`gridmap.common.settings`), the same the CLI
        reads; from the ``GRIDMAP_*`` environment variables when omitted.
        Routers read it through :func:`api.deps.get_settings`.
    store : Store, optional
        An open store to serve (tests, the demo). It is not closed at shutdown.
        Without it the lifespan opens ``settings.store.database_url`` (creating or
        upgrading the schema) and closes it at shutdown; if the store's database
        becomes unusable (an embedded file DuckDB invalidated), requests answer
        503 and the server is asked to stop (``app.state.stop_serving``; under
        uvicorn its ``should_exit``), for its supervisor to restart it.

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
            _limit_statements(store, settings.store.statement_timeout_ms)
            try:
                yield
            finally:
                events.close_intake_threads(app)
            return
        # Events' personal columns are encrypted with the data key (install_security).
        opened = open_store(
            settings.store.database_url, migrate=True, vault=getattr(app.state, "vault", None)
        )
        _limit_statements(opened, settings.store.statement_timeout_ms)
        app.state.store = opened
        if getattr(app.state, "stop_serving", None) is None:
            app.state.stop_serving = _uvicorn_stopper()
        await _warm(app, opened)
        months = asyncio.create_task(_prepare_months(opened))
        try:
            yield
        finally:
            months.cancel()
            events.close_intake_threads(app)
            opened.close()

    app = FastAPI(
        title="gridmap",
        description="网格化服务管理 GIS: OGC API Features over grids, buildings, roads and events.",
        version="0.1.0",
        # gridmap has its own Prometheus metrics and JSON logs (api.metrics,
        # api.logs); FastAPI's OpenTelemetry hooks would look for providers on
        # every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        redirect_slashes=False,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = Metrics(app.state)
    if settings.log_format == "json":  # else `gridmap serve` sets up the text lines
        configure_logging(settings.log_format, settings.log_level)
    # The event taxonomy and assessment rules in force, checked now: a bad file stops
    # the start with a ConfigError naming the file and the problem.
    app.state.event_taxonomy = load_taxonomy(settings.taxonomy_file)
    app.state.assessment_rules = load_rules(settings.reports.rules_file)
    install_error_handlers(app)
    # Routes are matched in order: report intake and /locate, the busiest under
    # city load, come first (no other router has their paths).
    app.include_router(feeds.router)  # before events: /events/feed.* is not /events/{id}
    app.include_router(events.router)
    app.include_router(locate.router)
    app.include_router(health.router)
    app.include_router(features.router)
    app.include_router(tiles.router)
    app.include_router(maps.router)
    app.include_router(open311.router)
    app.include_router(analytics.router)
    app.include_router(patrol.router)
    app.include_router(reports.router)
    app.include_router(doorknock.router)
    app.include_router(grids.router)
    app.include_router(workers.router)
    app.include_router(pages.router)
    app.include_router(fieldapp.router)
    app.include_router(console.router)
    app.include_router(subscriptions.router)  # and its webhook delivery worker
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(QueryText)
    app.add_middleware(Compress)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["*"],
            expose_headers=["ETag"],
        )
    app.add_middleware(CancelOnDisconnect)  # a client gone: its queries stop (both stores)
    # Request id, access log line and metrics around every answer (413s and CORS included).
    app.add_middleware(Observe, metrics=app.state.metrics)
    # Last, so its security headers wrap every answer (413s and CORS included).
    install_security(app)
    return app


def _limit_statements(store: Store, ms: int) -> None:
    """Give the service's store its statement time limit (0: none).

    PostGIS sets ``statement_timeout``; the embedded store interrupts its
    DuckDB cursors from a watchdog thread (:class:`gridmap.storage.limits.Watchdog`).
    """
    limit = getattr(type(store), "set_statement_timeout", None)  # a method, not any attribute
    if callable(limit):
        limit(store, ms or None)


def _uvicorn_stopper() -> Callable[[], None] | None:
    """A function asking the uvicorn server running this process to stop, if one is.

    uvicorn installs a bound method of its ``Server`` as the SIGTERM handler
    while it serves; setting that server's ``should_exit`` is what SIGTERM
    does (finish the answers in flight, run the lifespan's shutdown, exit).
    Under a test client there is none and nothing is stopped.
    """
    handler = signal.getsignal(signal.SIGTERM)
    server = getattr(handler, "__self__", None)
    if server is None or not hasattr(server, "should_exit"):
        return None
    return lambda: setattr(server, "should_exit", True)
