"""The service's settings: the one tree of :mod:`gridmap.common.settings`, and its dependency.

:func:`get_settings` is the FastAPI dependency every router declares (through
``api.deps.SettingsDep``) to read a setting; it answers the tree the
application was created with (``create_app(settings=...)``). Tests replace it
with ``app.dependency_overrides[get_settings] = lambda: Settings(...)``.
"""

from __future__ import annotations

from fastapi import FastAPI, Request

from gridmap.common.settings import Settings

__all__ = ["Settings", "get_settings", "settings_of"]


def settings_of(app: FastAPI) -> Settings:
    """The settings tree *app* was created with (for code outside a request: lifespans).

    An application assembled without :func:`api.main.create_app` (a bare
    ``FastAPI()`` in a test) gets the tree read from the environment, once.
    """
    settings: Settings | None = getattr(app.state, "settings", None)
    if settings is None:
        settings = Settings()
        app.state.settings = settings
    return settings


async def get_settings(request: Request) -> Settings:
    """The dependency routers declare: the settings tree of the application.

    A coroutine so that FastAPI calls it on the event loop, not in a worker
    thread; code outside a dependency uses :func:`settings_of`.
    """
    return settings_of(request.app)
