"""Users on both stores: creation rules, passwords, API keys, demo users."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gridmap.common.errors import BadInput
from gridmap.security.auth import (
    NotAuthenticated,
    add_user,
    authenticate,
    demo_users,
    get_user,
    issue_api_key,
    principal_for_api_key,
    set_disabled,
)
from gridmap.storage import Store, open_store
from tests.security.hierarchy import add_units


def test_users_roundtrip(store: Store) -> None:
    add_units(store, grid="990100001001003")
    u = add_user(
        store,
        "wang",
        role="grid_worker",
        areas=["990100001001003"],
        password="p" * 12,
        can_unmask=True,
    )
    assert u.principal().covers("990100001001003") and not u.principal().covers("990100001001004")
    assert u.password_hash and u.password_hash.startswith("$argon2id$")
    assert "argon2" not in repr(u)
    assert authenticate(store, "wang", "p" * 12).name == "wang"
    for name, pw in (("wang", "wrong-password"), ("nobody", "p" * 12), ("", ""), ("w" * 5000, "x")):
        with pytest.raises(NotAuthenticated):
            authenticate(store, name, pw)
    set_disabled(store, "wang")
    with pytest.raises(NotAuthenticated):
        authenticate(store, "wang", "p" * 12)
    admin = add_user(store, "boss", role="city_admin")
    assert admin.principal().sees_everything


def test_api_keys(store: Store) -> None:
    add_user(store, "hotline", role="external_system")
    first = issue_api_key(store, "hotline")
    second = issue_api_key(store, "hotline")
    with pytest.raises(NotAuthenticated):
        principal_for_api_key(store, first)  # replaced
    assert principal_for_api_key(store, second).role == "external_system"
    user = get_user(store, "hotline")
    assert user is not None and user.api_key_hash and second not in user.api_key_hash
    set_disabled(store, "hotline")
    with pytest.raises(NotAuthenticated):
        principal_for_api_key(store, second)


@pytest.fixture(scope="module")
def memory_store() -> Iterator[Store]:
    s = open_store(":memory:", migrate=True)
    yield s
    s.close()


@pytest.mark.parametrize(
    "kw",
    [
        {"role": "grid_worker"},
        {"role": "town_coordinator", "areas": [""]},
        {"role": "grid_worker", "areas": ["99010000100100"]},
        {"role": "viewer", "can_unmask": True},
        {"role": "external_system", "can_unmask": True},
        {"role": "root"},
        {"role": "viewer", "password": "short"},
    ],
)
def test_bad_users(memory_store: Store, kw: dict[str, object]) -> None:
    with pytest.raises(BadInput):
        add_user(memory_store, "li", **kw)  # type: ignore[arg-type]


def test_demo_users(store: Store) -> None:
    add_units(store, grid="990100001001003")
    creds = demo_users(store, grid_code="990100001001003")
    assert {r for r, _ in creds.users.values()} == {
        "city_admin",
        "town_coordinator",
        "community_staff",
        "grid_worker",
        "viewer",
        "external_system",
    }
    assert authenticate(store, "demo_town", creds.password).areas == ("990100001",)
    assert principal_for_api_key(store, creds.api_key).name == "demo_system"
    again = demo_users(store, grid_code="990100001001003", password="another password")
    assert authenticate(store, "demo_admin", again.password).can_unmask
    assert creds.password not in repr(creds)
    assert list(store.read("grids")["workers"].iloc[0]) == ["demo_worker"]


def test_unchecked_users_need_no_hierarchy(store: Store) -> None:
    """``check_areas=False``: the codes' form only, nothing registered (a store being set up)."""
    u = add_user(store, "wang", role="grid_worker", areas=["990100001001003"], check_areas=False)
    assert u.areas == ("990100001001003",) and store.count("workers") == 0
