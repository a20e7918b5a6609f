"""Running the service under uvicorn: one process, or several workers (``gridmap serve``).

The command line (``gridmap.cli.serve``) parses options and prints; starting
and stopping the web server happen here, beside the application they serve.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import uvicorn
from fastapi import FastAPI

from api.logs import configure_logging

__all__ = ["Stopped", "run_workers", "serve_app"]


@dataclass(frozen=True)
class Stopped:
    """How a server run ended.

    Attributes
    ----------
    ok
        It started and was stopped (SIGTERM, Ctrl-C) cleanly.
    failure
        Why the store became unusable while serving (``app.state.store_failure``);
        ``None`` when it did not (a failed start-up is logged by uvicorn).
    """

    ok: bool
    failure: str | None = None


def serve_app(
    app: FastAPI, *, host: str, port: int, log_level: str = "info", **options: Any
) -> Stopped:
    """Run *app* under uvicorn until SIGTERM/Ctrl-C, or until its store becomes unusable.

    The application's lifespan owns the store and closes it when the server
    stops: uvicorn re-raises SIGTERM after its shutdown, so nothing after
    ``run()`` would run then. A store failure (``app.state.store_failure``,
    set by ``api.errors``) stops the server through ``app.state.stop_serving``.

    Returns
    -------
    Stopped
        ``ok`` false when the start-up failed or the store failed; the caller
        exits with status 3 then, for its supervisor to restart it.
    """
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, **options)
    if getattr(app.state, "settings", None) is not None and app.state.settings.log_format == "json":
        # uvicorn.Config set up its text handlers just now: JSON lines instead.
        configure_logging("json", log_level)
    server = uvicorn.Server(config)
    app.state.stop_serving = lambda: setattr(server, "should_exit", True)
    server.run()
    failure = getattr(app.state, "store_failure", None)
    if failure:
        return Stopped(ok=False, failure=str(failure))
    return Stopped(ok=bool(server.started))  # as uvicorn.run: a failed start-up


def run_workers(*, host: str, port: int, workers: int, log_format: str, **options: Any) -> None:
    """Serve ``api.main:create_app`` from *workers* processes, each building its own app.

    Each worker reads its settings from the environment (``GRIDMAP_*``), which
    the caller sets first.
    """
    uvicorn.run(
        "api.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None if log_format == "json" else uvicorn.config.LOGGING_CONFIG,
        **options,
    )
