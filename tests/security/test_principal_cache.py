"""The bearer-token principal cache (issue 22): what it spares and how stale it may be.

With ``principal_cache_seconds`` set, a token's user is read once per that
many seconds per API process; its signature and expiry are still checked on
every request. A user disabled meanwhile keeps access for at most that long
(the documented staleness), and :func:`api.security.forget_principals` ends
it at once. Without the setting (the default) a disabled user is refused at
once (also ``tests/security/test_auth.py``).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from api.security import PrincipalCache, forget_principals
from gridmap.security.access import Principal
from gridmap.security.auth import add_user, get_user, issue_token, set_disabled
from tests.security.conftest import World, make_app, security_settings


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cached(world: World, clock: Clock) -> Iterator[TestClient]:
    with make_app(world.store, principal_cache_seconds=5) as c:
        c.app.state.principal_cache = PrincipalCache(5, clock=clock)  # type: ignore[attr-defined]
        yield c


def _token(world: World, name: str) -> str:
    user = add_user(world.store, name, role="grid_worker", areas=[world.grid_a])
    return issue_token(user, security_settings().token_config())


def test_disabled_user_refused_once_the_cache_expires(
    world: World, cached: TestClient, clock: Clock
) -> None:
    headers = {"Authorization": f"Bearer {_token(world, 'cache_leaver')}"}
    me = cached.get("/auth/me", headers=headers)
    assert me.status_code == 200 and me.json()["name"] == "cache_leaver"
    set_disabled(world.store, "cache_leaver")
    # Within the cache's seconds the stored user is not read again: the old principal.
    clock.now += 4.9
    assert cached.get("/auth/me", headers=headers).status_code == 200
    clock.now += 0.2
    r = cached.get("/auth/me", headers=headers)
    assert r.status_code == 401 and "disabled" in r.text


def test_forget_principals_ends_the_staleness_at_once(
    world: World, cached: TestClient, clock: Clock
) -> None:
    headers = {"Authorization": f"Bearer {_token(world, 'cache_locked')}"}
    assert cached.get("/auth/me", headers=headers).status_code == 200
    set_disabled(world.store, "cache_locked")
    forget_principals(cached.app)  # type: ignore[arg-type]
    assert cached.get("/auth/me", headers=headers).status_code == 401


def test_a_cached_token_is_still_verified(world: World, cached: TestClient) -> None:
    token = _token(world, "cache_tamper")
    assert cached.get("/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    head, body, sig = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload["role"] = "city_admin"
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    r = cached.get("/auth/me", headers={"Authorization": f"Bearer {head}.{forged}.{sig}"})
    assert r.status_code == 401
    # Another user's token is never answered from this one's entry.
    other = _token(world, "cache_other")
    me = cached.get("/auth/me", headers={"Authorization": f"Bearer {other}"})
    assert me.status_code == 200 and me.json()["name"] == "cache_other"


def test_changed_areas_follow_after_the_cache_seconds(
    world: World, cached: TestClient, clock: Clock
) -> None:
    headers = {"Authorization": f"Bearer {_token(world, 'cache_mover')}"}
    assert cached.get("/auth/me", headers=headers).json()["areas"] == [world.grid_a]
    user = get_user(world.store, "cache_mover")
    assert user is not None
    world.store.update("users", pd.DataFrame({"id": [user.id], "areas": [[world.grid_b]]}))
    assert cached.get("/auth/me", headers=headers).json()["areas"] == [world.grid_a]
    clock.now += 5.0
    assert cached.get("/auth/me", headers=headers).json()["areas"] == [world.grid_b]


def test_cache_bounds() -> None:
    cache = PrincipalCache(5, clock=Clock())
    p = Principal("a", "viewer")
    for i in range(PrincipalCache.MAX_ENTRIES):
        cache.put((str(i), "a"), p)
    assert cache.get(("0", "a")) is p
    cache.put(("new", "a"), p)  # full: emptied first
    assert cache.get(("0", "a")) is None and cache.get(("new", "a")) is p
