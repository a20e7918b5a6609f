"""Browser sessions: one sign-in for every HTML page, CSRF-safe writes.

People in a browser sign in once at ``/login`` (:mod:`api.routers.pages`) and
get a session cookie; programs keep sending ``Authorization: Bearer`` or
``X-API-Key`` (:mod:`api.security`). The cookie holds a signed JWT (the same
signing as bearer tokens, but its own audience, so a session cookie is never
accepted as a bearer token and a bearer token never as a session), and is

- ``HttpOnly`` (scripts cannot read it), ``SameSite=Lax`` (browsers do not
  send it with cross-site POSTs), ``Secure`` outside development,
  ``Path=/``, expiring with the token (``GRIDMAP_SESSION_MINUTES``);
- checked against the stored user on every request (a disabled user or a
  changed role takes effect at once, as with tokens);
- revoked at ``/logout`` (its id is remembered until it would have expired).

CSRF. A write authenticated by the cookie (any method but GET/HEAD/OPTIONS)
must carry the session's CSRF token in the ``X-CSRF-Token`` header (pages read
it from ``<meta name="csrf-token">``); forms post it as ``csrf_token`` and
their handlers call :func:`check_form_csrf`. The token is an HMAC of the
session id, so it needs no server state and dies with the session. A request
whose ``Origin`` (or ``Sec-Fetch-Site``) says it comes from another site is
refused as well, before anything else: a cross-site form cannot post with a
user's session even where a browser ignores ``SameSite``.

Written here rather than taken from a session library (starlette's
``SessionMiddleware``, itsdangerous): those keep a mutable dict in a cookie and
know no CSRF or principal; gridmap needs neither a dict nor server-side state,
only "who is this" with the same rules as its bearer tokens.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request, Response

from gridmap.security.access import Principal
from gridmap.security.auth import (
    NotAuthenticated,
    PermissionDenied,
    TokenConfig,
    User,
    decode_token,
    get_user,
    issue_token,
)
from gridmap.storage import Store

__all__ = [
    "COOKIE",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "SAFE_METHODS",
    "Session",
    "check_csrf",
    "check_form_csrf",
    "check_same_origin",
    "clear_cookie",
    "csrf_token",
    "read_session",
    "revoke",
    "set_cookie",
    "start_session",
]

#: Name of the session cookie.
COOKIE = "gridmap_session"
#: Header carrying the CSRF token on script writes.
CSRF_HEADER = "X-CSRF-Token"
#: Form field carrying the CSRF token on form posts.
CSRF_FIELD = "csrf_token"
#: Methods that change nothing and need no CSRF token.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Audience of session tokens (bearer tokens have ``gridmap-api``).
AUDIENCE = "gridmap-session"


@dataclass(frozen=True)
class Session:
    """A valid browser session: who, its id, and when it ends (epoch seconds)."""

    principal: Principal
    jti: str
    expires: int


class _Revoked:
    """Ids of sessions signed out before they expired (kept until they would expire)."""

    def __init__(self) -> None:
        self._ids: dict[str, float] = {}
        self._lock = threading.Lock()

    def add(self, jti: str, until: float) -> None:
        with self._lock:
            now = time.time()
            self._ids = {k: v for k, v in self._ids.items() if v > now}
            self._ids[jti] = until

    def __contains__(self, jti: object) -> bool:
        with self._lock:
            return jti in self._ids


def _config(base: TokenConfig) -> TokenConfig:
    return TokenConfig(
        secret=base.secret, issuer=base.issuer, audience=AUDIENCE, minutes=base.minutes
    )


def csrf_token(jti: str, secret: str) -> str:
    """The CSRF token of session *jti* (an HMAC: stateless, dies with the session).

    Examples
    --------
    >>> csrf_token("abc", "k" * 32) == csrf_token("abc", "k" * 32)
    True
    >>> csrf_token("abc", "k" * 32) == csrf_token("abd", "k" * 32)
    False
    """
    return hmac.new(secret.encode(), b"csrf:" + jti.encode(), hashlib.sha256).hexdigest()


def _revoked(request: Request) -> _Revoked:
    state = request.app.state
    rev: _Revoked | None = getattr(state, "revoked_sessions", None)
    if rev is None:
        rev = _Revoked()
        state.revoked_sessions = rev
    return rev


def start_session(user: User, base: TokenConfig, *, minutes: int) -> tuple[str, dict[str, Any]]:
    """A new session token for *user* and its claims."""
    cfg = _config(base)
    token = issue_token(user, cfg, minutes=minutes)
    return token, decode_token(token, cfg)


def set_cookie(response: Response, token: str, *, minutes: int, secure: bool) -> None:
    """Put the session cookie on *response*."""
    response.set_cookie(
        COOKIE,
        token,
        max_age=minutes * 60,
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure,
    )


def clear_cookie(response: Response, *, secure: bool) -> None:
    """Remove the session cookie."""
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax", secure=secure)


def read_session(request: Request, store: Store, base: TokenConfig) -> Session | None:
    """The session of *request*'s cookie, ``None`` when it sends none.

    Raises
    ------
    NotAuthenticated
        The cookie is there but invalid, expired, revoked, or its user is gone or disabled.
    """
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    claims = decode_token(token, _config(base))
    jti = str(claims["jti"])
    if jti in _revoked(request):
        raise NotAuthenticated("the session has ended: sign in again")
    user = get_user(store, claims["sub"])
    if user is None:
        raise NotAuthenticated("invalid session")
    if user.disabled:
        raise NotAuthenticated("user is disabled")
    return Session(user.principal(), jti, int(claims["exp"]))


def revoke(request: Request, session: Session) -> None:
    """End *session* now (logout)."""
    _revoked(request).add(session.jti, float(session.expires))


def _same_site(request: Request) -> bool:
    # Fetch metadata first: every current browser sends it, and it is right even
    # where ``Origin`` is "null" (our pages send ``Referrer-Policy: no-referrer``,
    # under which Chromium posts forms with ``Origin: null``).
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return True
    host = request.headers.get("host", "")
    return urlsplit(origin).netloc == host


def check_same_origin(request: Request) -> None:
    """Refuse a request a browser says comes from another site (403)."""
    if not _same_site(request):
        raise PermissionDenied("cross-site request refused / 拒绝跨站请求")


def check_csrf(request: Request, session: Session, secret: str) -> None:
    """Refuse a cookie-authenticated write without the session's CSRF token (403)."""
    if request.method in SAFE_METHODS:
        return
    check_same_origin(request)
    sent = request.headers.get(CSRF_HEADER, "")
    if not hmac.compare_digest(sent.encode(), csrf_token(session.jti, secret).encode()):
        raise PermissionDenied(
            f"missing or wrong CSRF token: send the {CSRF_HEADER} header of the page "
            "/ 缺少或错误的 CSRF 令牌"
        )


def check_form_csrf(request: Request, session: Session, secret: str, sent: str | None) -> None:
    """Refuse a form post whose ``csrf_token`` field is not the session's (403)."""
    check_same_origin(request)
    if not hmac.compare_digest((sent or "").encode(), csrf_token(session.jti, secret).encode()):
        raise PermissionDenied("missing or wrong CSRF token / 缺少或错误的 CSRF 令牌")
