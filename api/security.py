"""Who is calling: authentication, the ``CurrentPrincipal`` dependency, security headers.

People send ``Authorization: Bearer <JWT>`` (from ``POST /auth/token``, the
OAuth2 password flow, or ``gridmap token NAME``); other systems send
``X-API-Key: gmk_…`` (from ``gridmap users api-key NAME``). Anything else —
no credentials, ``alg=none``, an expired, tampered or foreign token, an
unknown key, a disabled user — is answered 401. The principal is rebuilt
from the stored user on every request, so disabling a user or changing their
role or areas takes effect at once — unless ``GRIDMAP_PRINCIPAL_CACHE_SECONDS``
is set (:class:`PrincipalCache`): then the principal of a bearer token is
reused for that many seconds per API process, and a disabled (locked) user,
or one whose role or areas changed, keeps the old rights for at most that
long on tokens already used within it (the token's signature and expiry are
still checked on every request).

Secrets come from the ``security`` section of the settings tree
(:class:`gridmap.common.settings.SecuritySettings`: ``GRIDMAP_SECRET_KEY``,
``GRIDMAP_DATA_KEY``, ``GRIDMAP_ENVIRONMENT``, …); outside development the
service refuses to start with the built-in or a short secret.
:func:`install_security` wires it all into an application.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import session
from api.asgi import HttpMiddleware
from api.csp import SITE_CSP
from api.settings import settings_of
from gridmap.common.settings import SecuritySettings, Settings
from gridmap.security.access import ALL_AREAS, Principal
from gridmap.security.auth import (
    NotAuthenticated,
    TokenConfig,
    decode_token,
    principal_for_api_key,
    principal_for_token,
)
from gridmap.security.privacy import Vault
from gridmap.storage import Store

__all__ = [
    "ANONYMOUS",
    "DEFAULT_CSP",
    "CallerPrincipal",
    "CurrentPrincipal",
    "PersonalDataPrincipal",
    "PrincipalCache",
    "SecurityHeaders",
    "authenticate",
    "forget_principals",
    "get_optional_principal",
    "get_principal",
    "install_security",
    "require_roles",
    "security_settings",
    "vault",
]

#: Content-Security-Policy fit for the folium map pages (inline scripts and
#: styles, assets served by this API, no external host).
DEFAULT_CSP = SITE_CSP


def security_settings(request: Request) -> SecuritySettings:
    """The ``security`` section of the application's settings (:func:`api.settings.settings_of`)."""
    return settings_of(request.app).security


def vault(request: Request) -> Vault:
    """The field-encryption vault derived from ``data_key``."""
    v: Vault | None = getattr(request.app.state, "vault", None)
    if v is None:
        v = Vault.from_secret(security_settings(request).data_key.get_secret_value())
        request.app.state.vault = v
    return v


class PrincipalCache:
    """Principals of bearer tokens, reused for *seconds* (keyed by token id and user).

    Only the stored user is cached: the token itself (signature, expiry,
    issuer, audience) is checked on every request. A user disabled (locked),
    deleted or given another role or areas keeps the cached principal for at
    most *seconds* on a token seen within them, in each API process;
    :func:`forget_principals` drops the cache at once (this process only).

    Examples
    --------
    >>> from gridmap.security.access import Principal
    >>> now = [0.0]
    >>> cache = PrincipalCache(5.0, clock=lambda: now[0])
    >>> cache.put(("jti-1", "wang"), Principal("wang", "grid_worker", ("370285001",)))
    >>> cache.get(("jti-1", "wang")).name
    'wang'
    >>> now[0] = 5.5
    >>> cache.get(("jti-1", "wang")) is None
    True
    """

    #: Most entries kept; the cache is emptied when it would grow past this.
    MAX_ENTRIES = 50_000

    def __init__(self, seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = float(seconds)
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], tuple[float, Principal]] = {}

    def get(self, key: tuple[str, str]) -> Principal | None:
        """The cached principal of *key*, or ``None`` when absent or older than ``seconds``."""
        with self._lock:
            hit = self._entries.get(key)
        if hit is None or self._clock() - hit[0] >= self.seconds:
            return None
        return hit[1]

    def put(self, key: tuple[str, str], principal: Principal) -> None:
        """Remember *principal* for *key* from now on."""
        with self._lock:
            if len(self._entries) >= self.MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = (self._clock(), principal)

    def clear(self) -> None:
        """Forget every principal."""
        with self._lock:
            self._entries.clear()


def _principal_cache(request: Request, cfg: SecuritySettings) -> PrincipalCache | None:
    if cfg.principal_cache_seconds <= 0:
        return None
    cache: PrincipalCache | None = getattr(request.app.state, "principal_cache", None)
    if cache is None or cache.seconds != cfg.principal_cache_seconds:
        cache = PrincipalCache(cfg.principal_cache_seconds)
        request.app.state.principal_cache = cache
    return cache


def forget_principals(app: FastAPI) -> None:
    """Drop the cached principals of *app* (after changing users in this process)."""
    cache: PrincipalCache | None = getattr(app.state, "principal_cache", None)
    if cache is not None:
        cache.clear()


def _token_principal(
    store: Store, token: str, cfg: TokenConfig, cache: PrincipalCache
) -> Principal:
    """:func:`gridmap.security.auth.principal_for_token`, the stored user cached a few seconds."""
    claims = decode_token(token, cfg)
    key = (str(claims.get("jti")), str(claims["sub"]))
    principal = cache.get(key)
    if principal is not None:
        return principal
    principal = principal_for_token(store, token, cfg)  # the one rule for the stored user
    cache.put(key, principal)
    return principal


_bearer = OAuth2PasswordBearer(tokenUrl="/auth/token", auto_error=False)
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False)


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail=detail,
        headers={"WWW-Authenticate": "Bearer"},
    )


def authenticate(request: Request, token: str | None, api_key: str | None) -> Principal:
    """The authenticated principal of *request* (401 when there is none); blocking.

    A bearer token wins over an API key, an API key over a browser session
    cookie (:mod:`api.session`); a present but invalid credential is never
    passed over for another one. A write authenticated by the session cookie
    must carry its CSRF token (403 otherwise). Reads the store: call it off
    the event loop (:func:`get_principal` does).
    """
    store: Store = request.app.state.store
    cfg = security_settings(request)
    try:
        cache = _principal_cache(request, cfg) if token else None
        if token and cache is not None:
            principal = _token_principal(store, token, cfg.token_config(), cache)
        elif token:
            principal = principal_for_token(store, token, cfg.token_config())
        elif api_key:
            principal = principal_for_api_key(store, api_key)
        else:
            found = session.read_session(request, store, cfg.token_config())
            if found is None:
                raise NotAuthenticated("authentication required")
            session.check_csrf(request, found, cfg.secret_key.get_secret_value())
            request.state.session = found
            principal = found.principal
    except NotAuthenticated as exc:
        raise unauthorized(exc.message) from None
    request.state.principal = principal
    return principal


def _cached_principal(request: Request, token: str | None) -> Principal | None:
    """The principal of a bearer token from :class:`PrincipalCache`, when it is on and holds it.

    The token's signature and expiry are checked here (401 when bad); no store read.
    """
    if not token:
        return None
    cfg = security_settings(request)
    cache = _principal_cache(request, cfg)
    if cache is None:
        return None
    try:
        claims = decode_token(token, cfg.token_config())
    except NotAuthenticated as exc:
        raise unauthorized(exc.message) from None
    return cache.get((str(claims.get("jti")), str(claims["sub"])))


async def get_principal(
    request: Request,
    token: Annotated[str | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key)],
) -> Principal:
    """The authenticated principal of *request* (401 when there is none).

    :func:`authenticate` in the thread pool; a bearer token whose user
    :class:`PrincipalCache` holds (``GRIDMAP_PRINCIPAL_CACHE_SECONDS``, off by
    default) is answered on the event loop, without that thread hop.
    """
    principal = _cached_principal(request, token)
    if principal is not None:
        request.state.principal = principal
        return principal
    found: Principal = await run_in_threadpool(authenticate, request, token, api_key)
    return found


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]

#: Who a caller without credentials is: a map viewer over the whole city, who
#: sees no personal data and no layer reserved to staff.
ANONYMOUS = Principal("anonymous", "viewer", ALL_AREAS)


async def get_optional_principal(
    request: Request,
    token: Annotated[str | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key)],
) -> Principal:
    """The caller's principal, or :data:`ANONYMOUS` when no credential is presented.

    A credential that is present but invalid is still a 401: it never falls
    back to anonymous access.
    """
    if not token and not api_key and session.COOKIE not in request.cookies:
        request.state.principal = ANONYMOUS
        return ANONYMOUS
    return await get_principal(request, token, api_key)


CallerPrincipal = Annotated[Principal, Depends(get_optional_principal)]


def require_roles(*roles: str) -> Callable[[Principal], Principal]:
    """A dependency admitting only principals with one of *roles* (403 otherwise).

    Examples
    --------
    >>> CityAdmin = Annotated[Principal, Depends(require_roles("city_admin"))]
    """

    def check(principal: CurrentPrincipal) -> Principal:
        if principal.role not in roles:
            raise HTTPException(
                status_code=status.HTTP_403_FORBIDDEN,
                detail=f"role {principal.role!r} may not do this",
            )
        return principal

    return check


def _personal(principal: CurrentPrincipal) -> Principal:
    if not principal.sees_personal_data:
        raise HTTPException(
            status_code=status.HTTP_403_FORBIDDEN,
            detail=f"role {principal.role!r} may not see personal data",
        )
    return principal


#: A principal whose role may see personal data (masked unless also granted unmask).
PersonalDataPrincipal = Annotated[Principal, Depends(_personal)]


class SecurityHeaders(HttpMiddleware):
    """ASGI middleware adding security headers to every HTTP answer.

    ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer``,
    ``X-Frame-Options: SAMEORIGIN``, the Content-Security-Policy, and
    ``Cache-Control: no-store`` on ``/auth`` and ``/registry`` answers (they
    carry tokens and personal data). Headers a route set itself are kept.

    Parameters
    ----------
    app : ASGI application
        The wrapped application.
    csp : str
        Content-Security-Policy value (empty: none sent).
    hsts : bool
        Also send ``Strict-Transport-Security``.
    """

    def __init__(self, app: ASGIApp, csp: str = DEFAULT_CSP, hsts: bool = False) -> None:
        super().__init__(app)
        headers = [
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"x-frame-options", b"SAMEORIGIN"),
        ]
        if csp:
            headers.append((b"content-security-policy", csp.encode("latin-1")))
        if hsts:
            headers.append((b"strict-transport-security", b"max-age=31536000"))
        self.headers = headers

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Add the security headers to the answer."""
        path: str = scope.get("path", "")
        private = path.startswith(("/auth", "/registry"))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in self.headers if k not in present]
                if private:
                    extra = [h for h in extra if h[0] != b"cache-control"]
                    extra.append((b"cache-control", b"no-store"))
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install_security(app: FastAPI, settings: SecuritySettings | None = None) -> FastAPI:
    """Wire authentication, the registry and security headers into *app*.

    The security section is *settings* when given (it then replaces the
    ``security`` section of the application's settings tree), else the
    section of the tree on *app* (``create_app``), else read from the
    environment, so a production deployment with default secrets fails here,
    at start-up. Adds the ``/auth`` and ``/registry`` routers and
    :class:`SecurityHeaders`.

    Examples
    --------
    >>> from gridmap.common.settings import SecuritySettings
    >>> app = install_security(FastAPI(), SecuritySettings())
    >>> sorted(p for p in app.openapi()["paths"] if p.startswith("/auth"))
    ['/auth/me', '/auth/token']

    Calling it again (tests with their own settings) only replaces the settings.
    """
    from api.routers import auth, registry

    tree: Settings | None = getattr(app.state, "settings", None)
    if tree is None:
        tree = Settings(security=settings) if settings is not None else Settings()
    elif settings is not None:
        tree = tree.model_copy(update={"security": settings})
    app.state.settings = tree
    cfg = tree.security
    app.state.vault = Vault.from_secret(cfg.data_key.get_secret_value())
    if getattr(app.state, "security_installed", False):
        return app
    app.state.security_installed = True
    app.include_router(auth.router)
    app.include_router(registry.router)
    app.add_middleware(SecurityHeaders, csp=cfg.csp or DEFAULT_CSP, hsts=cfg.hsts)
    return app
