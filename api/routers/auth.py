"""``/auth``: the OAuth2 password flow (``POST /auth/token``) and ``GET /auth/me``.

Login attempts are rate-limited per user name and client address (429 with
``Retry-After``) and audited, successes and failures alike.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from api.ratelimit import client_address, limiter, login_key, too_many
from api.security import CurrentPrincipal, security_settings, unauthorized
from api.validation import check_text
from gridmap.security import audit
from gridmap.security.auth import NotAuthenticated, authenticate, issue_token
from gridmap.storage import Store

__all__ = ["router"]

router = APIRouter(tags=["auth"])


class TokenAnswer(BaseModel):
    """A bearer token (RFC 6749 §5.1)."""

    access_token: str
    token_type: str = "bearer"
    expires_in: int


class Me(BaseModel):
    """The authenticated principal."""

    name: str
    role: str
    areas: list[str]
    can_unmask: bool
    sees_personal_data: bool


@router.post("/auth/token", summary="Log in (OAuth2 password flow)", response_model=TokenAnswer)
def login(
    request: Request, form: Annotated[OAuth2PasswordRequestForm, Depends()]
) -> dict[str, Any]:
    """Exchange a user name and password for a bearer token."""
    cfg = security_settings(request)
    store: Store = request.app.state.store
    ip = client_address(request)
    name = check_text(form.username, "username")[:100]
    bucket = limiter(request, "login", cfg.login_per_minute, cfg.login_burst)
    wait = bucket.hit(f"{login_key(name)}|{ip}")
    if wait > 0:
        audit.record(store, name, "login.failure", f"users:{name}", {"ip": ip, "why": "rate"})
        raise too_many(wait)
    try:
        user = authenticate(store, name, form.password)
    except NotAuthenticated as exc:
        audit.record(store, name, "login.failure", f"users:{name}", {"ip": ip})
        raise unauthorized(exc.message) from None
    principal = user.principal()
    audit.record(store, principal, "login.success", f"users:{user.name}", {"ip": ip})
    token = issue_token(user, cfg.token_config())
    return {"access_token": token, "token_type": "bearer", "expires_in": cfg.token_minutes * 60}


@router.get("/auth/me", summary="Who am I", response_model=Me)
def me(principal: CurrentPrincipal) -> dict[str, Any]:
    """The principal the credentials belong to."""
    return {
        "name": principal.name,
        "role": principal.role,
        "areas": list(principal.areas),
        "can_unmask": principal.can_unmask,
        "sees_personal_data": principal.sees_personal_data,
    }
