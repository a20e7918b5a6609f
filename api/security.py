"""Who is calling: the ``CurrentPrincipal`` dependency every protected route declares.

Authentication (OAuth2 password flow with signed JWTs for people, API keys for
other systems) is issue 5's work and lands here; until it does, every
protected route answers 401, so nothing is ever served without a principal.
Tests of authorization logic may override :func:`get_principal` with
``app.dependency_overrides``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from gridmap.access import Principal

__all__ = ["CurrentPrincipal", "get_principal"]


def get_principal(request: Request) -> Principal:
    """The authenticated principal of *request* (401 when there is none)."""
    raise HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail="authentication required",
        headers={"WWW-Authenticate": "Bearer"},
    )


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]
