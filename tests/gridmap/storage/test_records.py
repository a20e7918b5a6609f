"""``Store.records``: plain rows of a few columns, the lean read of authentication (issue 22).

Runs on both stores (the ``store`` fixture). The rows must be the values
``read`` gives, without a frame, and the principal built from them must be the
one ``User.principal`` gives.
"""

from __future__ import annotations

import pytest

from gridmap.common.errors import BadInput
from gridmap.security.auth import (
    NotAuthenticated,
    TokenConfig,
    add_user,
    get_user,
    issue_token,
    principal_for_token,
    set_disabled,
)
from gridmap.storage import Store

CFG = TokenConfig(secret="r" * 40)


def test_records_match_read(store: Store) -> None:
    add_user(store, "wang", role="grid_worker", areas=["990100001001003"], check_areas=False)
    add_user(store, "li", role="city_admin", can_unmask=True)
    cols = ("name", "role", "areas", "can_unmask", "disabled")
    rows = store.records("users", cols, where={"name": "wang"}, limit=1)
    assert rows == [
        {
            "name": "wang",
            "role": "grid_worker",
            "areas": ["990100001001003"],
            "can_unmask": False,
            "disabled": False,
        }
    ]
    every = store.records("users", ("id", "name"))
    assert [r["name"] for r in every] == list(store.read("users")["name"])
    assert store.records("users", cols, where={"name": "nobody"}) == []


def test_records_refuse_geometry_secret_and_unknown_columns(store: Store) -> None:
    with pytest.raises(BadInput, match="not a plain attribute column"):
        store.records("users", ("name", "nope"))
    with pytest.raises(BadInput, match="not a plain attribute column"):
        store.records("grids", ("geometry",))
    with pytest.raises(BadInput, match="not a plain attribute column"):
        store.records("events", ("reporter",))


def test_principal_from_records_equals_user_principal(store: Store) -> None:
    add_user(store, "li", role="city_admin", can_unmask=True)
    add_user(store, "zhao", role="community_staff", areas=["990100001001"], check_areas=False)
    for name in ("li", "zhao"):
        user = get_user(store, name)
        assert user is not None
        assert principal_for_token(store, issue_token(user, CFG), CFG) == user.principal()
    token = issue_token(get_user(store, "zhao"), CFG)  # type: ignore[arg-type]
    set_disabled(store, "zhao")
    with pytest.raises(NotAuthenticated, match="disabled"):
        principal_for_token(store, token, CFG)
    li = get_user(store, "li")
    assert li is not None
    li_token = issue_token(li, CFG)
    store.delete("users", where={"name": "li"})
    with pytest.raises(NotAuthenticated, match="invalid token"):
        principal_for_token(store, li_token, CFG)
