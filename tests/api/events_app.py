"""Build the service with the event routers for tests (real demo grids, synthetic events).

Until the lines that include the event routers and map their errors land in
``api/main.py`` and ``api/errors.py``, :func:`events_app` adds them to the
app it builds; once they are there it adds nothing twice.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi import FastAPI

from api import errors as api_errors
from api.main import create_app
from api.routers import events as events_router
from api.routers import open311 as open311_router
from api.security import get_principal
from api.settings import Settings
from gridmap.common.settings import MapSettings, MediaSettings, StoreSettings
from gridmap.events.errors import (
    ConcurrentUpdate,
    IdempotencyKeyReused,
    IllegalTransition,
    MediaTooLarge,
    NotPermitted,
    StaleVersion,
)
from gridmap.security.access import Principal
from gridmap.storage import Store

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient  # noqa: F401  (re-exported for the tests)

#: The lines api/errors.py needs (asked for in the report of issue 4).
EVENT_STATUS: dict[type, int] = {
    IllegalTransition: 409,
    ConcurrentUpdate: 409,
    StaleVersion: 412,
    IdempotencyKeyReused: 422,
    NotPermitted: 403,
    MediaTooLarge: 413,
}


def map_event_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    """Add the event errors to the status table unless it already has them."""
    for cls, status in EVENT_STATUS.items():
        if cls not in api_errors.STATUS:
            monkeypatch.setitem(api_errors.STATUS, cls, status)  # type: ignore[arg-type]


def _has_route(app: FastAPI, path: str) -> bool:
    return any(getattr(r, "path", None) == path for r in app.routes)


def events_app(
    store: Store,
    *,
    principal: Principal,
    media_dir: Path,
    clock: Callable[[], pd.Timestamp] | None = None,
    **settings: Any,
) -> FastAPI:
    """The gridmap app over *store*, acting as *principal*, with the event routers."""
    base: dict[str, Any] = {
        "max_limit": 10_000,
        "default_limit": 100,
        "cors_origins": [],
        "max_body_bytes": 10_000_000,
        "store": StoreSettings(database_url=":memory:"),
        "maps": MapSettings(assets_dir=None),
        "media": MediaSettings(media_dir=media_dir),
    }
    app = create_app(Settings(**{**base, **settings}), store=store)
    if not _has_route(app, "/events"):
        app.include_router(events_router.router)
    if not _has_route(app, "/open311/v2/services.{fmt}"):
        app.include_router(open311_router.router)
    app.dependency_overrides[get_principal] = lambda: app.state.principal
    # Open311 reads its caller from the spec's api_key field as well (issue 24).
    app.dependency_overrides[open311_router.open311_principal] = lambda: app.state.principal
    app.state.principal = principal
    if clock is not None:
        app.state.clock = clock
    return app
