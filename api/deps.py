"""Dependencies routers declare with ``Annotated`` aliases.

The store is opened once in the application's lifespan (``api.main``) and
kept on ``app.state``; routers receive it as :data:`StoreDep`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.security import CallerPrincipal
from api.settings import Settings
from gridmap.storage import Store

__all__ = [
    "ANONYMOUS_ROLE",
    "RoleDep",
    "SettingsDep",
    "StoreDep",
    "get_role",
    "get_settings",
    "get_store",
]

#: Role of a caller who presents no credentials: sees what a map viewer may see.
ANONYMOUS_ROLE = "viewer"


async def get_store(request: Request) -> Store:
    """The store opened by the application's lifespan (async: no thread hop to read it)."""
    store: Store = request.app.state.store
    return store


def get_settings(request: Request) -> Settings:
    """The settings the application was created with."""
    settings: Settings = request.app.state.settings
    return settings


def get_role(caller: CallerPrincipal) -> str:
    """The role of the caller, which decides the layers and fields it may see.

    From the bearer token or API key; a caller without credentials is a
    viewer (:data:`ANONYMOUS_ROLE`). Tests and trusted embeddings may override
    this dependency (``app.dependency_overrides[get_role]``).
    """
    return caller.role


StoreDep = Annotated[Store, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
RoleDep = Annotated[str, Depends(get_role)]
