"""Issue 25: an API connected as a LOGIN member of ``gridmap_app`` signs users in (031).

Migration 026 took the password and API-key hashes of ``users`` away from the
application role. The production API connects with its own LOGIN role, member
of ``gridmap_app``; the store it opens is untrusted (``open_store`` asks the
server who owns the schema). Here it runs in a real uvicorn over a real
PostgreSQL/PostGIS and users sign
in through ``/auth/token``, the browser's ``/login`` form (a plain form post)
and an API key, while the same role still reads no hash, and the SECURITY
DEFINER function it signs in through gives one account per transaction, never
a table dump.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import psycopg
import pytest

from api.main import create_app
from api.security import install_security
from api.settings import Settings
from gridmap.security.auth import add_user, issue_api_key, set_disabled
from gridmap.storage import open_store
from gridmap.storage.pgserver import PgServer
from gridmap.storage.postgis import MigrationsPending, PostGISStore
from tests.api.conftest import serving
from tests.conftest import fresh_pg_url
from tests.security.conftest import PASSWORD, security_settings

pytestmark = pytest.mark.postgis

GRID = "990100001001003"


@dataclass
class Untrusted:
    """The owner's (trusted) store, the API role's URL and its untrusted store."""

    owner: PostGISStore
    login_url: str
    api: PostGISStore
    api_key: str


@pytest.fixture(scope="module")
def untrusted(pg_server: PgServer) -> Iterator[Untrusted]:
    """Users made by the schema owner; a LOGIN role in gridmap_app; the API's store on it."""
    with fresh_pg_url(pg_server) as url:
        owner = PostGISStore(url)
        owner.migrate()
        for name, role, areas in (
            ("worker_a", "grid_worker", [GRID]),
            ("admin", "city_admin", []),
            ("retired", "viewer", []),
            ("hotline", "external_system", []),
        ):
            add_user(owner, name, role=role, areas=areas, password=PASSWORD, check_areas=False)
        set_disabled(owner, "retired")
        key = issue_api_key(owner, "hotline")
        role = "api_" + uuid.uuid4().hex[:8]
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"CREATE ROLE {role} LOGIN INHERIT IN ROLE gridmap_app")
        login_url = url.replace(f"{pg_server.user}@", f"{role}@", 1)
        # As production opens it: no flag; the store sees it is not the owner.
        api = open_store(login_url, migrate=True)
        assert isinstance(api, PostGISStore)
        assert owner.trusted is True
        try:
            yield Untrusted(owner, login_url, api, key)
        finally:
            api.close()
            owner.close()
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f"DROP OWNED BY {role}")
                conn.execute(f"DROP ROLE {role}")


@pytest.fixture(scope="module")
def base(untrusted: Untrusted) -> Iterator[str]:
    """The API over the untrusted store, in uvicorn on a loopback port."""
    app = create_app(Settings(), store=untrusted.api)
    install_security(app, security_settings(login_burst=50, login_per_minute=600))
    with serving(app) as url:
        yield url


def test_the_api_really_runs_as_the_login_role(untrusted: Untrusted) -> None:
    who = untrusted.api.sql(
        "SELECT current_user, pg_has_role(current_user, 'gridmap_app', 'MEMBER'), "
        "(SELECT rolsuper FROM pg_roles WHERE rolname = current_user)"
    )
    assert who == [(untrusted.login_url.split("//")[1].split("@")[0], True, False)]
    assert untrusted.api.trusted is False


def test_token_login_works_and_wrong_passwords_are_401(base: str) -> None:
    r = httpx.post(f"{base}/auth/token", data={"username": "worker_a", "password": PASSWORD})
    assert r.status_code == 200, r.text
    me = httpx.get(
        f"{base}/auth/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"}
    )
    assert me.status_code == 200, me.text
    assert me.json()["name"] == "worker_a" and me.json()["areas"] == [GRID]
    # the name is normalised as before (NFKC, stripped): full-width letters sign in too
    r = httpx.post(f"{base}/auth/token", data={"username": " ａｄｍｉｎ ", "password": PASSWORD})
    assert r.status_code == 200, r.text
    for name, password in (
        ("worker_a", "wrong password!"),
        ("nobody", PASSWORD),
        ("retired", PASSWORD),  # disabled: its hash never leaves the database
        ("%", PASSWORD),  # the function matches one exact name, no pattern
    ):
        r = httpx.post(f"{base}/auth/token", data={"username": name, "password": password})
        assert r.status_code == 401, (name, r.text)
        assert r.json()["code"] == "unauthorized"


def test_browser_login_form_signs_in(base: str) -> None:
    with httpx.Client(base_url=base, follow_redirects=False) as browser:
        wrong = browser.post(
            "/login",
            data={"username": "admin", "password": "wrong password!"},
            headers={"Origin": base, "Sec-Fetch-Site": "same-origin"},
        )
        assert wrong.status_code == 401 and "用户名或密码错误" in wrong.text
        assert "gridmap_session" not in wrong.headers.get("set-cookie", "")
        r = browser.post(
            "/login",
            data={"username": "admin", "password": PASSWORD},
            headers={"Origin": base, "Sec-Fetch-Site": "same-origin"},
        )
        assert r.status_code == 303, r.text
        # production: the cookie is Secure, which a client sends over https only
        cookie = r.cookies.get("gridmap_session")
        assert cookie and "secure" in r.headers["set-cookie"].lower()
        me = browser.get("/auth/me", headers={"Cookie": f"gridmap_session={cookie}"})
        assert me.status_code == 200, me.text
        assert me.json()["name"] == "admin"


def test_api_key_signs_the_external_system_in(base: str, untrusted: Untrusted) -> None:
    r = httpx.get(f"{base}/auth/me", headers={"X-API-Key": untrusted.api_key})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "hotline"
    wrong = httpx.get(f"{base}/auth/me", headers={"X-API-Key": untrusted.api_key[:-2] + "xx"})
    assert wrong.status_code == 401


def test_logins_are_audited_by_the_app_role(base: str, untrusted: Untrusted) -> None:
    httpx.post(f"{base}/auth/token", data={"username": "worker_a", "password": PASSWORD})
    rows = untrusted.owner.sql(
        "SELECT count(*) FROM audit_log WHERE action = 'login.success' AND actor = 'worker_a'"
    )
    assert rows[0][0] >= 1


def test_login_role_reads_no_hash_and_dumps_no_table(untrusted: Untrusted) -> None:
    with psycopg.connect(untrusted.login_url) as conn:
        for column in ("password_hash", "api_key_hash"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"SELECT {column} FROM users")
            conn.rollback()
        # one name: its account and hash
        row = conn.execute(
            "SELECT name, role, password_hash FROM gridmap_login_account('worker_a')"
        ).fetchall()
        assert len(row) == 1 and row[0][:2] == ("worker_a", "grid_worker")
        assert row[0][2].startswith("$argon2id$")
        # a second name in the same transaction: refused
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="one account per"):
            conn.execute("SELECT * FROM gridmap_login_account('admin')")
        conn.rollback()
        # the table dump through the function: refused at the second row
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="one account per"):
            conn.execute(
                "SELECT f.* FROM users u CROSS JOIN LATERAL gridmap_login_account(u.name) f"
            ).fetchall()
        conn.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="one account per"):
            conn.execute("SELECT gridmap_login_account(name) FROM users").fetchall()
        conn.rollback()
        # patterns and NULL match nothing; a disabled account's hash stays inside
        for name in ("%", "worker%", None):
            assert conn.execute("SELECT * FROM gridmap_login_account(%s)", [name]).fetchall() == []
            conn.rollback()
        retired = conn.execute(
            "SELECT disabled, password_hash FROM gridmap_login_account('retired')"
        ).fetchall()
        assert retired == [(True, None)]
        conn.rollback()
        # API keys: only the holder of a key finds its account, and no hash comes back
        cols = conn.execute("SELECT * FROM gridmap_api_key_account(repeat('0', 64))").description
        assert cols is not None
        assert {c.name for c in cols} == {"id", "name", "role", "areas", "can_unmask", "disabled"}
        assert conn.execute("SELECT * FROM gridmap_api_key_account('%')").fetchall() == []
        conn.rollback()


def test_functions_are_definer_pinned_and_not_public(
    untrusted: Untrusted, pg_server: PgServer
) -> None:
    rows = untrusted.owner.sql(
        "SELECT p.proname, p.prosecdef, p.proconfig, pg_get_userbyid(p.proowner), "
        "has_function_privilege('public', p.oid, 'EXECUTE'), "
        "has_function_privilege('gridmap_app', p.oid, 'EXECUTE'), "
        "(SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'users'::regclass) "
        "FROM pg_proc p WHERE p.proname IN ('gridmap_login_account', 'gridmap_api_key_account') "
        "ORDER BY p.proname"
    )
    assert [r[0] for r in rows] == ["gridmap_api_key_account", "gridmap_login_account"]
    for _, definer, config, owner, public, app, users_owner in rows:
        assert definer and owner == users_owner
        assert config == ["search_path=public, pg_temp"]
        assert not public and app
    # a LOGIN role outside gridmap_app may not call them at all
    outsider = "out_" + uuid.uuid4().hex[:8]
    untrusted.owner.sql(f"CREATE ROLE {outsider} LOGIN")
    try:
        url = untrusted.owner.url.replace(f"{pg_server.user}@", f"{outsider}@", 1)
        with psycopg.connect(url) as conn:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("SELECT * FROM gridmap_login_account('admin')")
            conn.rollback()
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("SELECT * FROM gridmap_api_key_account('x')")
    finally:
        untrusted.owner.sql(f"DROP ROLE {outsider}")


def test_trusted_store_in_a_scope_signs_in_through_the_function(untrusted: Untrusted) -> None:
    """The owner's store inside a scope is the application role too: same path."""
    from gridmap.security.auth import NotAuthenticated, authenticate

    with untrusted.owner.scoped([GRID]):
        assert authenticate(untrusted.owner, "worker_a", PASSWORD).name == "worker_a"
    with pytest.raises(NotAuthenticated):
        authenticate(untrusted.api, "worker_a", "wrong password!")
    assert authenticate(untrusted.owner, "worker_a", PASSWORD).role == "grid_worker"


def test_the_login_role_does_not_migrate_but_says_what_is_pending(pg_server: PgServer) -> None:
    """An API started on the login role before ``gridmap init`` names the fix."""
    with fresh_pg_url(pg_server) as url:
        owner = PostGISStore(url)
        owner.migrate(target=20)
        role = "api_" + uuid.uuid4().hex[:8]
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"CREATE ROLE {role} LOGIN INHERIT IN ROLE gridmap_app")
        login_url = url.replace(f"{pg_server.user}@", f"{role}@", 1)
        try:
            with pytest.raises(
                MigrationsPending, match=r"at version \d+ .*needs \d+: run `gridmap init`"
            ):
                open_store(login_url, migrate=True)
            owner.migrate()
            api = open_store(login_url, migrate=True)
            assert isinstance(api, PostGISStore) and api.trusted is False
            assert api.schema_version() == owner.schema_version()
            api.close()
        finally:
            owner.close()
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f"DROP OWNED BY {role}")
                conn.execute(f"DROP ROLE {role}")
