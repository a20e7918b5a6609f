"""Users and credentials: password hashes, API keys and signed tokens.

People log in with a password (hashed with Argon2id through pwdlib) and get a
short-lived JWT (HS256, PyJWT, decoded with an explicit algorithm list so that
``alg=none`` and algorithm-confusion tokens are refused). Other systems use
an API key: a random secret shown once, stored only as its SHA-256 digest.

A token names its user; each request looks the user up again, so a disabled
user or a changed role or area takes effect at once, whatever the token says.
This module knows no web framework: ``api/security.py`` turns its errors into
401/403 answers.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import re
import secrets
import time
import unicodedata
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

import jwt
import pandas as pd
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from gridmap.common.errors import BadInput, GridmapError
from gridmap.common.model import ROLES
from gridmap.security.access import ALL_AREAS, Principal
from gridmap.storage import Store

__all__ = [
    "API_KEY_PREFIX",
    "AccountLookup",
    "DemoCredentials",
    "NotAuthenticated",
    "PermissionDenied",
    "TokenConfig",
    "User",
    "add_user",
    "authenticate",
    "decode_token",
    "demo_users",
    "get_user",
    "hash_password",
    "issue_api_key",
    "issue_token",
    "list_users",
    "principal_for_api_key",
    "principal_for_token",
    "set_disabled",
    "set_password",
    "verify_password",
]

#: API keys look like ``gmk_<43 url-safe characters>``.
API_KEY_PREFIX = "gmk_"
#: Roles that must be given at least one area (the others default to the whole city).
_AREA_ROLES = frozenset({"town_coordinator", "community_staff", "grid_worker"})
_NAME_RE = re.compile(r"[\w.@-]{1,64}")
_MIN_PASSWORD = 8
_MAX_PASSWORD = 1024

_hasher = PasswordHash((Argon2Hasher(),))
# Verified against when the user does not exist, so both paths take as long.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class NotAuthenticated(GridmapError):
    """No valid credentials: unknown user, wrong password, bad or expired token (401)."""

    code = "unauthorized"


class PermissionDenied(GridmapError):
    """Authenticated, but the role or area does not allow this (403)."""

    code = "forbidden"


@dataclass(frozen=True)
class TokenConfig:
    """How tokens are signed and checked.

    Parameters
    ----------
    secret : str
        HMAC key (at least 32 characters outside development).
    issuer, audience : str
        ``iss`` and ``aud`` claims written and required.
    minutes : int
        Lifetime of issued tokens.
    """

    secret: str
    issuer: str = "gridmap"
    audience: str = "gridmap-api"
    minutes: int = 60
    algorithm: str = field(default="HS256", init=False)


@dataclass(frozen=True)
class User:
    """A stored user (never serialised with its hashes)."""

    id: int
    name: str
    role: str
    areas: tuple[str, ...]
    can_unmask: bool
    disabled: bool
    password_hash: str | None = field(default=None, repr=False)
    api_key_hash: str | None = field(default=None, repr=False)

    def principal(self) -> Principal:
        """The principal this user acts as."""
        return Principal(self.name, self.role, self.areas, can_unmask=self.can_unmask)


def hash_password(password: str) -> str:
    """Argon2id hash of *password* (pwdlib's recommended parameters).

    Examples
    --------
    >>> h = hash_password("correct horse battery")
    >>> h.startswith("$argon2id$"), verify_password("correct horse battery", h)
    (True, True)
    """
    return _hasher.hash(password)


def verify_password(password: str, hashed: str | None) -> bool:
    """Whether *password* matches *hashed* (always spends one hash computation).

    Examples
    --------
    >>> verify_password("x", None)
    False
    """
    try:
        ok = _hasher.verify(password, hashed or _DUMMY_HASH)
    except Exception:  # a malformed stored hash is a failed login, not a crash
        return False
    return bool(ok and hashed)


def _check_name(name: str) -> str:
    text = unicodedata.normalize("NFKC", name).strip()
    if not _NAME_RE.fullmatch(text):
        raise BadInput("user name: 1–64 letters, digits, '_', '.', '@' or '-'", field="name")
    return text


def _check_password(password: str) -> str:
    if not (_MIN_PASSWORD <= len(password) <= _MAX_PASSWORD):
        raise BadInput(
            f"password must have {_MIN_PASSWORD} to {_MAX_PASSWORD} characters", field="password"
        )
    return password


def _areas_for(role: str, areas: Sequence[str]) -> tuple[str, ...]:
    if role not in ROLES:
        raise BadInput(f"unknown role {role!r}; roles: {', '.join(ROLES)}", field="role")
    cleaned = tuple(dict.fromkeys(a.strip() for a in areas if a.strip()))
    if not cleaned:
        if role in _AREA_ROLES:
            raise BadInput(f"role {role!r} needs at least one --area code", field="area")
        return ALL_AREAS
    Principal("check", role, cleaned)  # validates the codes
    return cleaned


def _row_to_user(row: pd.Series) -> User:
    stored = row["areas"] if row["areas"] is not None else []
    areas = tuple("" if a == "*" else str(a) for a in stored)
    return User(
        id=int(row["id"]),
        name=str(row["name"]),
        role=str(row["role"]),
        areas=areas or (),
        can_unmask=bool(row["can_unmask"]) if not pd.isna(row["can_unmask"]) else False,
        disabled=bool(row["disabled"]) if not pd.isna(row["disabled"]) else False,
        password_hash=None if pd.isna(row["password_hash"]) else str(row["password_hash"]),
        api_key_hash=None if pd.isna(row["api_key_hash"]) else str(row["api_key_hash"]),
    )


@runtime_checkable
class AccountLookup(Protocol):
    """A store that keeps the credential hashes from its application role (PostGIS).

    Its application role (an API connected as a LOGIN member of ``gridmap_app``)
    may not read ``users.password_hash`` or ``api_key_hash``: a sign-in asks the
    store for one account instead (migration 031's SECURITY DEFINER functions).
    The embedded store has no roles and is read directly.
    """

    def login_account(self, name: str) -> pd.DataFrame:
        """The account of *name* with its password hash (0 or 1 rows)."""
        ...

    def api_key_account(self, digest: str) -> pd.DataFrame:
        """The account whose API key has the SHA-256 *digest* (0 or 1 rows)."""
        ...


def _login_user(store: Store, name: str) -> User | None:
    """The account of *name* with its password hash, however the store hands it out."""
    if isinstance(store, AccountLookup):
        frame = store.login_account(name)
        return None if frame.empty else _row_to_user(frame.iloc[0])
    return get_user(store, name)


def add_user(
    store: Store,
    name: str,
    *,
    role: str,
    areas: Sequence[str] = (),
    password: str | None = None,
    can_unmask: bool = False,
    check_areas: bool = True,
) -> User:
    """Create a user.

    Parameters
    ----------
    store : Store
        Where users are kept.
    name : str
        Unique user name.
    role : str
        One of :data:`gridmap.common.model.ROLES`.
    areas : sequence of str
        Codes of the hierarchy (county 6, town 9, community 12 digits, or a
        grid in force, 15). Town coordinators, community staff and grid
        workers need one; the other roles default to the whole city. A grid
        worker's areas are the grids they work: they are registered as the
        grids' worker (:func:`gridmap.units.workers.register_worker`), so that
        ``/locate`` names them and new events there are assigned to them.
    password : str, optional
        For the OAuth2 password flow (8+ characters); without one the user
        can only get tokens from ``gridmap token`` or use an API key.
    can_unmask : bool
        May see personal data unmasked (only roles that see personal data).
    check_areas : bool
        Check the codes against the store's hierarchy
        (:func:`gridmap.units.workers.check_areas`: ``UnknownArea`` for a code that
        names nothing) and register a grid worker on their grids. ``False``
        only checks the codes' form and registers nothing (a store being
        set up before its hierarchy is imported; tests).

    Examples
    --------
    >>> from gridmap.storage import open_store
    >>> store = open_store(":memory:", migrate=True)
    >>> add_user(store, "li", role="viewer").areas
    ('',)
    >>> add_user(store, "wang", role="grid_worker", areas=["990100001001003"])
    Traceback (most recent call last):
    ...
    gridmap.units.workers.UnknownArea: unknown area 990100001001003: no grid in force has this code
    >>> add_user(store, "wang", role="grid_worker", areas=["990100001001003"],
    ...          check_areas=False).areas
    ('990100001001003',)
    """
    from gridmap.units import workers

    name = _check_name(name)
    cleaned = _areas_for(role, areas)
    if can_unmask and not Principal(name, role, cleaned).sees_personal_data:
        raise BadInput(f"role {role!r} never sees personal data: no unmask", field="unmask")
    if get_user(store, name) is not None:
        raise BadInput(f"user {name!r} already exists", field="name")
    if check_areas:
        workers.check_areas(store, cleaned, grids_only=role == "grid_worker")
    row = pd.DataFrame(
        {
            "source_key": [f"user:{name}"],
            "name": [name],
            "role": [role],
            "areas": [["*" if a == "" else a for a in cleaned]],
            "can_unmask": [can_unmask],
            "password_hash": [
                None if password is None else hash_password(_check_password(password))
            ],
            "api_key_hash": [None],
            "disabled": [False],
            "created_at": [pd.Timestamp(dt.datetime.now(dt.UTC))],
        }
    )
    with store.transaction():
        store.write("users", row)
        if check_areas and role == "grid_worker":
            workers.register_worker(store, name, cleaned)
    user = get_user(store, name)
    assert user is not None
    return user


def get_user(store: Store, name: str) -> User | None:
    """The user called *name*, or ``None``."""
    frame = store.read("users", where={"name": name}, limit=1)
    return None if frame.empty else _row_to_user(frame.iloc[0])


def list_users(store: Store) -> list[User]:
    """Every user, in creation order."""
    frame = store.read("users")
    return [_row_to_user(r) for _, r in frame.iterrows()]


def _require(store: Store, name: str) -> User:
    user = get_user(store, name)
    if user is None:
        raise BadInput(f"no user {name!r}", field="name")
    return user


def set_disabled(store: Store, name: str, disabled: bool = True) -> User:
    """Disable (or re-enable) a user: their tokens and API key stop working at once."""
    user = _require(store, name)
    store.update("users", pd.DataFrame({"id": [user.id], "disabled": [disabled]}))
    return _require(store, name)


def set_password(store: Store, name: str, password: str) -> None:
    """Set a user's password."""
    user = _require(store, name)
    hashed = hash_password(_check_password(password))
    store.update("users", pd.DataFrame({"id": [user.id], "password_hash": [hashed]}))


def _key_digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def issue_api_key(store: Store, name: str) -> str:
    """Create a new API key for *name* (replacing any old one); return it once.

    Only its SHA-256 digest is stored: a 256-bit random key needs no slow hash.

    Examples
    --------
    >>> from gridmap.storage import open_store
    >>> store = open_store(":memory:", migrate=True)
    >>> _ = add_user(store, "hotline", role="external_system")
    >>> key = issue_api_key(store, "hotline")
    >>> principal_for_api_key(store, key).name
    'hotline'
    """
    user = _require(store, name)
    key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    store.update("users", pd.DataFrame({"id": [user.id], "api_key_hash": [_key_digest(key)]}))
    return key


def principal_for_api_key(store: Store, key: str) -> Principal:
    """The principal of an API key; ``NotAuthenticated`` if unknown or disabled."""
    if not key.startswith(API_KEY_PREFIX) or len(key) > 200:
        raise NotAuthenticated("invalid API key")
    digest = _key_digest(key)
    if isinstance(store, AccountLookup):
        frame = store.api_key_account(digest)
    else:
        frame = store.read("users", where={"api_key_hash": digest}, limit=1)
    if frame.empty:
        raise NotAuthenticated("invalid API key")
    user = _row_to_user(frame.iloc[0])
    if user.disabled:
        raise NotAuthenticated("user is disabled")
    return user.principal()


def authenticate(store: Store, name: str, password: str) -> User:
    """The user whose password this is; ``NotAuthenticated`` otherwise.

    Unknown users, disabled users and wrong passwords get the same error and
    take the same time (a dummy hash is verified for unknown names). On
    PostGIS an API connected as the application role reads the account
    through :class:`AccountLookup` (it may not read password hashes).
    """
    try:
        user = _login_user(store, _check_name(name)) if len(password) <= _MAX_PASSWORD else None
    except BadInput:
        user = None
    ok = verify_password(password[:_MAX_PASSWORD], user.password_hash if user else None)
    if user is None or not ok or user.disabled:
        raise NotAuthenticated("incorrect user name or password")
    return user


def issue_token(user: User | Principal, config: TokenConfig, *, minutes: int | None = None) -> str:
    """A signed bearer token (JWT, HS256) for *user*.

    Claims: ``sub`` (user name), ``role``, ``areas``, ``iat``, ``nbf``,
    ``exp``, ``jti`` (random id), ``iss`` and ``aud``.

    Examples
    --------
    >>> cfg = TokenConfig(secret="s" * 32)
    >>> p = Principal("wang", "grid_worker", ("990100001001003",))
    >>> decode_token(issue_token(p, cfg), cfg)["sub"]
    'wang'
    """
    now = dt.datetime.now(dt.UTC)
    life = config.minutes if minutes is None else minutes
    if life <= 0:
        raise BadInput("token lifetime must be positive minutes", field="expires_minutes")
    claims = {
        "sub": user.name,
        "role": user.role,
        "areas": list(user.areas),
        "iat": now,
        "nbf": now,
        "exp": now + dt.timedelta(minutes=life),
        "jti": uuid.uuid4().hex,
        "iss": config.issuer,
        "aud": config.audience,
    }
    return jwt.encode(claims, config.secret, algorithm=config.algorithm)


#: Seconds of clock difference allowed on ``exp``, ``nbf`` and ``iat``.
TOKEN_LEEWAY_S = 5


def decode_token(token: str, config: TokenConfig) -> dict[str, Any]:
    """Verify a token's signature, algorithm, expiry, issuer and audience; return its claims.

    Raises
    ------
    NotAuthenticated
        For ``alg=none`` or any algorithm but HS256, a bad signature, an
        expired or not-yet-valid token, a wrong issuer or audience, missing
        claims, or text that is not a JWT at all.
    """
    if len(token) > 4096:
        raise NotAuthenticated("invalid token")
    claims = _verified(token, config)
    # A token verified before is taken from the memo: its expiry is checked again now
    # (``nbf`` and ``iat`` only become more valid with time).
    if float(claims["exp"]) + TOKEN_LEEWAY_S < time.time():
        raise NotAuthenticated("token has expired")
    return dict(claims)


@functools.lru_cache(maxsize=4096)
def _verified(token: str, config: TokenConfig) -> Mapping[str, Any]:
    """The claims of a token whose signature and claims were checked (remembered when good).

    Every request of a signed-in user carries the same token; checking its
    signature and claims once instead of on each request saves a tenth of the
    CPU of a report. Bad tokens raise and are not remembered.
    """
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            config.secret,
            algorithms=[config.algorithm],
            audience=config.audience,
            issuer=config.issuer,
            options={"require": ["exp", "iat", "sub", "jti", "iss", "aud"]},
            leeway=TOKEN_LEEWAY_S,
        )
    except jwt.ExpiredSignatureError:
        raise NotAuthenticated("token has expired") from None
    except jwt.PyJWTError:
        raise NotAuthenticated("invalid token") from None
    if not isinstance(claims.get("sub"), str) or not isinstance(claims["exp"], int | float):
        raise NotAuthenticated("invalid token")
    return MappingProxyType(claims)


def principal_for_token(store: Store, token: str, config: TokenConfig) -> Principal:
    """The principal of a bearer token, read from the stored user (must exist, not disabled)."""
    claims = decode_token(token, config)
    # Every authenticated request comes here: read the five columns as plain
    # rows (no frame), the lean path of issue 22.
    rows = store.records("users", _PRINCIPAL_COLUMNS, where={"name": claims["sub"]}, limit=1)
    if not rows:
        raise NotAuthenticated("invalid token")
    row = rows[0]
    if row["disabled"]:
        raise NotAuthenticated("user is disabled")
    areas = tuple("" if a == "*" else str(a) for a in (row["areas"] or ()))
    return Principal(str(row["name"]), str(row["role"]), areas, can_unmask=bool(row["can_unmask"]))


_PRINCIPAL_COLUMNS = ("name", "role", "areas", "can_unmask", "disabled")


@dataclass(frozen=True)
class DemoCredentials:
    """The demo's users (``name → (role, area)``), their shared password, the system's API key."""

    users: dict[str, tuple[str, str]]
    password: str = field(repr=False)
    api_key: str = field(repr=False)


def demo_users(store: Store, *, grid_code: str, password: str | None = None) -> DemoCredentials:
    """Create one demo user per role (idempotent) and return their credentials.

    The grid worker works *grid_code* (assigned like any grid worker, so
    ``/locate`` there names them and events reported there are assigned to
    them), the community staff get its community (12 digits), the town
    coordinator its town (9); the city admin (who may unmask), the viewer and
    the external system see the whole city. All share *password* (random
    when omitted); the external system also gets an API key. The grid, its
    community and town must exist (:func:`gridmap.units.workers.check_areas`).

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> from gridmap.storage import open_store
    >>> store = open_store(":memory:", migrate=True)
    >>> box = shapely.MultiPolygon([shapely.box(24.9, 60.1, 25.0, 60.2)])
    >>> _ = store.write("admin_units", gpd.GeoDataFrame(
    ...     {"code": ["990100001", "990100001001"]}, geometry=[box, box], crs=4326))
    >>> _ = store.write("grids", gpd.GeoDataFrame(
    ...     {"code": ["990100001001003"]}, geometry=[box], crs=4326))
    >>> creds = demo_users(store, grid_code="990100001001003", password="demo-password")
    >>> creds.users["demo_worker"]
    ('grid_worker', '990100001001003')
    >>> list(store.read("grids")["workers"].iloc[0])
    ['demo_worker']
    """
    from gridmap.units.workers import assign_grids

    secret = password or secrets.token_urlsafe(12)
    plan = {
        "demo_admin": ("city_admin", ""),
        "demo_town": ("town_coordinator", grid_code[:9]),
        "demo_community": ("community_staff", grid_code[:12]),
        "demo_worker": ("grid_worker", grid_code),
        "demo_viewer": ("viewer", ""),
        "demo_system": ("external_system", ""),
    }
    users: dict[str, tuple[str, str]] = {}
    for name, (role, area) in plan.items():
        if get_user(store, name) is None:
            add_user(
                store,
                name,
                role=role,
                areas=[area] if area else [],
                password=secret,
                can_unmask=role == "city_admin",
            )
        else:
            set_password(store, name, secret)
            if role == "grid_worker":  # again on the grid (e.g. after the grids were redrawn)
                assign_grids(store, name, [area])
        users[name] = (role, area or "*")
    return DemoCredentials(users, secret, issue_api_key(store, "demo_system"))
