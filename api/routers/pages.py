"""Browser sign-in: ``/login`` and ``/logout`` (one session for every HTML page).

``GET /login`` shows the form (zh-CN first, English beside it); ``POST /login``
checks the password exactly as ``POST /auth/token`` does (same rate limit on
the same normalised name, same audit records), sets the session cookie of
:mod:`api.session` and sends the browser on: to ``next`` when it is a path of
this site, else to the caller's home page (grid workers: the phone app
``/app/``; staff: the console). ``POST /logout`` ends the session.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api import ogc, session
from api.params import query_guard
from api.ratelimit import client_address, limiter, login_key
from api.security import security_settings
from gridmap.security import audit
from gridmap.security.access import Principal
from gridmap.security.auth import NotAuthenticated, authenticate
from gridmap.storage import Store

__all__ = ["home_for", "router", "safe_next"]

router = APIRouter(tags=["Sign-in 登录"])

_NO_STORE = {"Cache-Control": "no-store"}
_FIELD_ROLES = frozenset({"grid_worker"})


def home_for(principal: Principal) -> str:
    """Where a signed-in user starts: grid workers the phone app, staff the console.

    Examples
    --------
    >>> home_for(Principal("wang", "grid_worker", ("990100001001003",)))
    '/app/'
    """
    return "/app/" if principal.role in _FIELD_ROLES else "/console/"


def safe_next(value: str | None) -> str | None:
    """*value* when it is a path of this site (never another host), else ``None``.

    Examples
    --------
    >>> safe_next("/app/?tab=tasks"), safe_next("//evil.example/"), safe_next("https://x/")
    ('/app/?tab=tasks', None, None)
    """
    if not value or len(value) > 500 or not value.startswith("/") or value.startswith("//"):
        return None
    if "\\" in value or any(ord(c) < 0x20 for c in value):
        return None
    return value


def _page(
    request: Request, *, error: str | None, name: str, next_: str | None, status: int
) -> HTMLResponse:
    root = str(request.scope.get("root_path", ""))
    html = ogc.html_page(
        "login.html",
        base=root,
        error=error,
        name=name,
        next=next_ or "",
        json_href=f"{root}/auth/me",
    )
    return HTMLResponse(html, status_code=status, headers=_NO_STORE)


@router.get(
    "/login",
    response_class=HTMLResponse,
    summary="Sign-in page 登录",
    dependencies=[Depends(query_guard(["next"]))],
)
def login_page(
    request: Request, next: Annotated[str | None, Query(max_length=500)] = None
) -> HTMLResponse:
    """The sign-in form."""
    return _page(request, error=None, name="", next_=safe_next(next), status=200)


@router.post("/login", response_class=HTMLResponse, summary="Sign in (browser session) 登录")
def login(
    request: Request,
    username: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=2000)] = "",
    next: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """Check the password, set the session cookie and go on (303), or show the form again."""
    session.check_same_origin(request)
    cfg = security_settings(request)
    store: Store = request.app.state.store
    ip = client_address(request)
    name = username[:100]
    target = safe_next(next)
    wait = limiter(request, "login", cfg.login_per_minute, cfg.login_burst).hit(
        f"{login_key(name)}|{ip}"
    )
    if wait > 0:
        audit.record(store, name, "login.failure", f"users:{name}", {"ip": ip, "why": "rate"})
        refused = _page(
            request,
            error=f"尝试次数过多,请 {int(wait) + 1} 秒后再试 / "
            f"Too many attempts: wait {int(wait) + 1} s",
            name=name,
            next_=target,
            status=429,
        )
        refused.headers["Retry-After"] = str(int(wait) + 1)
        return refused
    try:
        user = authenticate(store, name, password)
    except NotAuthenticated:
        audit.record(store, name, "login.failure", f"users:{name}", {"ip": ip, "via": "session"})
        return _page(
            request,
            error="用户名或密码错误 / Incorrect user name or password",
            name=name,
            next_=target,
            status=401,
        )
    principal = user.principal()
    audit.record(
        store, principal, "login.success", f"users:{user.name}", {"ip": ip, "via": "session"}
    )
    token, _ = session.start_session(user, cfg.token_config(), minutes=cfg.session_minutes)
    resp = RedirectResponse(target or home_for(principal), status_code=303, headers=_NO_STORE)
    session.set_cookie(resp, token, minutes=cfg.session_minutes, secure=cfg.secure_cookies)
    return resp


@router.post("/logout", summary="Sign out 退出登录")
def logout(request: Request, csrf_token: Annotated[str, Form(max_length=200)] = "") -> Response:
    """End the session (its CSRF token is required) and go back to the sign-in page."""
    cfg = security_settings(request)
    store: Store = request.app.state.store
    resp = RedirectResponse("/login", status_code=303, headers=_NO_STORE)
    try:
        found = session.read_session(request, store, cfg.token_config())
    except NotAuthenticated:
        found = None
    if found is not None:
        session.check_form_csrf(request, found, cfg.secret_key.get_secret_value(), csrf_token)
        session.revoke(request, found)
        audit.record(store, found.principal, "logout", f"users:{found.principal.name}")
    session.clear_cookie(resp, secure=cfg.secure_cookies)
    return resp


def page_context(request: Request, principal: Principal) -> dict[str, Any]:
    """What every signed-in page shows: who, and the CSRF token for its writes."""
    cfg = security_settings(request)
    found: session.Session | None = getattr(request.state, "session", None)
    token = session.csrf_token(found.jti, cfg.secret_key.get_secret_value()) if found else ""
    return {
        "user": {"name": principal.name, "role": principal.role, "areas": list(principal.areas)},
        "csrf_token": token,
        "base": str(request.scope.get("root_path", "")),
    }
