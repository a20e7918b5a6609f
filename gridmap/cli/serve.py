"""``gridmap serve``: the HTTP service (uvicorn runs it: :mod:`api.server`)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from gridmap.cli.common import DbOpt, cli_settings, errors, open_store, print_error
from gridmap.common.errors import BadInput

__all__ = ["serve", "serve_app"]

#: Exit status of a server stopped by an unusable store or a failed start-up.
SERVER_FAILED_EXIT = 3


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    database_url: DbOpt = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Worker processes (one per core). More than one needs PostGIS: the "
            "embedded DuckDB file is opened by one process only.",
        ),
    ] = 1,
    root_path: Annotated[
        str,
        typer.Option(
            help="URL prefix the service is mounted under behind a reverse proxy "
            "(e.g. /gridmap): links and redirects carry it.",
        ),
    ] = "",
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated addresses of proxies trusted to set X-Forwarded-For/"
            "-Proto ('*' for any); default: uvicorn's (127.0.0.1, or "
            "FORWARDED_ALLOW_IPS).",
            show_default=False,
        ),
    ] = None,
    log_level: Annotated[
        str | None,
        typer.Option(
            help="critical, error, warning, info, debug or trace; default "
            "GRIDMAP_LOG_LEVEL, else info. GRIDMAP_LOG_FORMAT=json writes JSON lines.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve the HTTP API: OGC API Features, maps, /docs, /healthz, /readyz, /metrics.

    SIGTERM or Ctrl-C stop it cleanly (the store is closed, an embedded file
    checkpointed). If the store's database becomes unusable (DuckDB
    invalidated the file) requests answer 503 and the server exits with
    status 3, naming the file and `gridmap db check`/`gridmap db recover`,
    for its supervisor to restart it.
    """
    import os

    from api.logs import configure_logging
    from api.main import create_app
    from api.server import run_workers

    levels = ("critical", "error", "warning", "info", "debug", "trace")
    if log_level is not None and log_level.lower() not in levels:
        raise typer.BadParameter(f"one of {', '.join(levels)}", param_hint="--log-level")
    if root_path and (not root_path.startswith("/") or root_path.endswith("/")):
        raise typer.BadParameter(
            "a path starting with / and not ending with / (e.g. /gridmap)",
            param_hint="--root-path",
        )
    with errors():  # a bad GRIDMAP_* value: one line naming it
        settings = cli_settings()
    if database_url:  # the options win over the variables
        store = settings.store.model_copy(update={"database_url": database_url})
        settings = settings.model_copy(update={"store": store})
    if log_level:
        settings = settings.model_copy(update={"log_level": log_level.lower()})
    configure_logging(settings.log_format, settings.log_level)
    server_options: dict[str, Any] = {
        "root_path": root_path,
        "log_level": settings.log_level,
        "access_log": False,  # api.middleware.Observe logs each request, with its id
        "proxy_headers": True,
    }
    if forwarded_allow_ips is not None:
        server_options["forwarded_allow_ips"] = forwarded_allow_ips
    if workers == 1:
        with open_store(settings.store.database_url):  # a busy or unusable store: one line
            pass
        with errors():  # a bad taxonomy or rules file: one line
            application = create_app(settings)
        serve_app(application, host=host, port=port, **server_options)
        return
    if not settings.store.database_url.startswith(("postgresql://", "postgres://", "postgresql+")):
        with errors():
            raise BadInput(
                f"--workers {workers} needs a PostGIS store (GRIDMAP_DATABASE_URL=postgresql://…): "
                "the embedded DuckDB file is opened by one process only"
            )
    # Each worker process builds its own application from the environment: these
    # lines set (not read) it for them, the options above winning over the variables.
    os.environ["GRIDMAP_DATABASE_URL"] = settings.store.database_url
    os.environ["GRIDMAP_LOG_LEVEL"] = settings.log_level
    run_workers(
        host=host,
        port=port,
        workers=workers,
        log_format=settings.log_format,
        **server_options,
    )


def serve_app(app: Any, *, host: str, port: int, log_level: str = "info", **options: Any) -> None:
    """Run *app* under uvicorn (:func:`api.server.serve_app`); exit 3 if it failed.

    A store that became unusable while serving is named in one ``error:``
    line; the process then exits with status 3 for its supervisor to restart it.
    """
    from api.server import serve_app as run

    stopped = run(app, host=host, port=port, log_level=log_level, **options)
    if stopped.failure:
        print_error(stopped.failure)
    if not stopped.ok:
        raise typer.Exit(SERVER_FAILED_EXIT)
