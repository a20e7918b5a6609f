"""Row-level security on the real PostGIS: the last line when the application filter is bypassed.

Every query here is raw SQL through the store's scoped connection (or a login
role's own connection): no ``Prefix`` filter is applied, only the database's
policies stand between grid A's principal and grid B's rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest

from gridmap.storage import Prefix
from gridmap.storage.pgserver import PgServer
from gridmap.storage.postgis import PostGISStore
from tests.security.conftest import World

pytestmark = pytest.mark.postgis

#: Grid-scoped tables and their code column.
SCOPED = {
    "events": "grid_code",
    "buildings": "grid_code",
    "grids": "code",
    "households": "grid_code",
    "residents": "grid_code",
    "patrol_routes": "grid_code",
}


def _pg(world: World) -> PostGISStore:
    assert isinstance(world.store, PostGISStore)
    return world.store


@pytest.fixture(scope="module")
def seeded(pg_world: World) -> World:
    """Households and residents in both grids (through the registry core)."""
    from gridmap.population.registry import Person, register_household, register_resident
    from gridmap.security.access import Principal

    for grid, idn in (
        (pg_world.grid_a, "11010519491231002X"),
        (pg_world.grid_b, "370285199001011238"),
    ):
        p = Principal(f"w{grid}", "grid_worker", (grid,))
        h = register_household(pg_world.store, p, grid_code=grid, address="Esplanadi 1")
        register_resident(
            pg_world.store,
            pg_world.vault,
            p,
            household_id=h["id"],
            person=Person(name="张三", id_number=idn),
        )
    return pg_world


def test_superuser_sees_both_grids(seeded: World) -> None:
    store = _pg(seeded)
    for table, col in SCOPED.items():
        if table == "patrol_routes":
            continue
        codes = {r[0] for r in store.sql(f"SELECT DISTINCT {col} FROM {table}")}
        assert {seeded.grid_a, seeded.grid_b} <= codes, table


@pytest.mark.parametrize("table", list(SCOPED))
def test_scoped_raw_sql_sees_only_its_grid(seeded: World, table: str) -> None:
    store = _pg(seeded)
    col = SCOPED[table]
    with store.scoped([seeded.grid_a]):
        codes = {r[0] for r in store.sql(f"SELECT DISTINCT {col} FROM {table}")}
        (n_b,) = store.sql(f"SELECT count(*) FROM {table} WHERE {col} = %s", [seeded.grid_b])[0]
        who = store.sql("SELECT current_user, current_setting('gridmap.areas')")[0]
    assert codes <= {seeded.grid_a}
    if table != "patrol_routes":
        assert codes == {seeded.grid_a}
    assert n_b == 0
    assert who == ("gridmap_app", seeded.grid_a)


def test_app_role_is_neither_owner_nor_superuser(seeded: World) -> None:
    store = _pg(seeded)
    (row,) = store.sql(
        "SELECT rolsuper, rolcanlogin, rolbypassrls FROM pg_roles WHERE rolname = 'gridmap_app'"
    )
    assert row == (False, False, False)
    owners = {
        r[0]
        for r in store.sql(
            "SELECT tableowner FROM pg_tables WHERE schemaname = 'public' AND tablename = ANY(%s)",
            [list(SCOPED)],
        )
    }
    assert "gridmap_app" not in owners
    flags = store.sql(
        "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class WHERE relname = ANY(%s)",
        [list(SCOPED)],
    )
    assert len(flags) == len(SCOPED) and all(r[1] and r[2] for r in flags)


def test_empty_areas_deny_and_star_allows(seeded: World) -> None:
    store = _pg(seeded)
    with store.scoped([]):
        assert store.sql("SELECT count(*) FROM events")[0][0] == 0
        assert store.sql("SELECT count(*) FROM residents")[0][0] == 0
    with store.scoped([""]):
        assert store.sql("SELECT count(*) FROM events")[0][0] == store.count("events")
    with store.scoped([seeded.town]):
        n = store.sql("SELECT count(*) FROM events")[0][0]
    assert n > 0
    assert n == store.count("events", where={"grid_code": Prefix((seeded.town,))})


def test_scoped_writes_outside_the_area_are_refused(seeded: World) -> None:
    store = _pg(seeded)
    with pytest.raises(psycopg.errors.InsufficientPrivilege), store.scoped([seeded.grid_a]):
        store.sql(
            "INSERT INTO households (source_key, grid_code) VALUES (%s, %s)",
            [uuid.uuid4().hex, seeded.grid_b],
        )
    with store.scoped([seeded.grid_a]):
        changed = store.sql(
            "UPDATE residents SET category = 'special' WHERE grid_code = %s RETURNING id",
            [seeded.grid_b],
        )
    assert changed == []
    with pytest.raises(psycopg.errors.InsufficientPrivilege), store.scoped([seeded.grid_a]):
        store.sql("UPDATE users SET role = 'city_admin'")


def test_scope_ends_with_the_transaction(seeded: World) -> None:
    store = _pg(seeded)
    with store.scoped([seeded.grid_a]):
        pass
    who = store.sql("SELECT current_user, coalesce(current_setting('gridmap.areas', true), '')")
    assert who[0] == ("postgres", "*")  # the trusted store's session default


@pytest.fixture(scope="module")
def login_role(seeded: World, pg_server: PgServer) -> Iterator[str]:
    """A LOGIN role that is a member of gridmap_app (how a production API may connect)."""
    name = "api_" + uuid.uuid4().hex[:8]
    store = _pg(seeded)
    with psycopg.connect(store.url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {name} LOGIN INHERIT IN ROLE gridmap_app")
    url = store.url.replace(f"{pg_server.user}@", f"{name}@", 1)
    try:
        yield url
    finally:
        with psycopg.connect(store.url, autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {name}")
            conn.execute(f"DROP ROLE {name}")


def test_login_role_is_bound_by_policies(seeded: World, login_role: str) -> None:
    with psycopg.connect(login_role) as conn:
        # Nothing set: deny.
        assert conn.execute("SELECT count(*) FROM residents").fetchone() == (0,)
        conn.execute("SELECT set_config('gridmap.areas', %s, true)", [seeded.grid_a])
        codes = {r[0] for r in conn.execute("SELECT DISTINCT grid_code FROM events").fetchall()}
        assert codes == {seeded.grid_a}
        conn.rollback()
        # No way around it by switching roles.
        conn.execute("RESET ROLE")
        assert conn.execute("SELECT count(*) FROM events").fetchone() == (0,)
        conn.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SET ROLE postgres")
        conn.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("ALTER TABLE events DISABLE ROW LEVEL SECURITY")
        conn.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM audit_log")
        conn.rollback()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET actor = 'someone else'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ],
)
def test_audit_log_is_append_only_even_for_superuser(seeded: World, statement: str) -> None:
    store = _pg(seeded)
    before = store.count("audit_log")
    assert before > 0
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        store.sql(statement)
    assert store.count("audit_log") == before


def test_nested_scope_hands_back_the_outer_one(seeded: World) -> None:
    store = _pg(seeded)
    with store.transaction():
        with store.scoped([seeded.grid_a]):
            with store.scoped([seeded.grid_b]):
                assert store.sql("SELECT current_setting('gridmap.areas')")[0][0] == seeded.grid_b
            who = store.sql("SELECT current_user, current_setting('gridmap.areas')")[0]
            assert who == ("gridmap_app", seeded.grid_a)
        who = store.sql("SELECT current_user, current_setting('gridmap.areas', true)")[0]
        assert who == ("postgres", "*")
        assert store.sql("SELECT count(*) FROM events")[0][0] == store.count("events")


def test_untrusted_store_on_a_login_role_denies_by_default(seeded: World, login_role: str) -> None:
    api = PostGISStore(login_role, trusted=False)
    try:
        assert api.count("events") == 0 and api.count("residents") == 0
        with api.scoped([seeded.grid_a]):
            assert set(api.read("events")["grid_code"]) == {seeded.grid_a}
            assert api.count("residents") == 1
        assert api.count("events") == 0
    finally:
        api.close()


def test_bbox_filters_use_the_spatial_index_under_the_policies(
    seeded: World, login_role: str
) -> None:
    """Migration 012 marks `&&` LEAKPROOF, so RLS does not force a full scan."""
    with psycopg.connect(login_role) as conn:
        conn.execute("SELECT set_config('gridmap.areas', %s, true)", [seeded.grid_a])
        conn.execute("SET LOCAL enable_seqscan = off")
        for table in ("buildings", "grids"):
            plan = "\n".join(
                r[0]
                for r in conn.execute(
                    f"EXPLAIN SELECT id FROM {table} "
                    "WHERE geometry && ST_MakeEnvelope(24.9, 60.1, 25.0, 60.2, 4326)"
                ).fetchall()
            )
            assert f"{table}_geometry_gist" in plan, plan
        conn.rollback()


# -- tables without an area column: users, audit_log, idempotency_keys (026) ----------
def test_app_role_reads_accounts_but_no_secret(seeded: World, login_role: str) -> None:
    from gridmap.security.auth import authenticate, list_users
    from tests.security.conftest import PASSWORD

    store = _pg(seeded)
    for hashed in ("password_hash", "api_key_hash"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege), store.scoped([""]):
            store.sql(f"SELECT {hashed} FROM users")
        with (
            psycopg.connect(login_role) as conn,
            pytest.raises(psycopg.errors.InsufficientPrivilege),
        ):
            conn.execute("SELECT set_config('gridmap.areas', '*', true)")
            conn.execute(f"SELECT {hashed} FROM users WHERE name = 'admin'")
    with pytest.raises(psycopg.errors.InsufficientPrivilege), store.scoped([""]):
        store.sql("SELECT * FROM users")
    with store.scoped([seeded.grid_a]):
        names = {r[0] for r in store.sql("SELECT name FROM users")}
        users = {u.name: u for u in list_users(store)}  # workers are listed inside a scope
    assert {"worker_a", "admin"} <= names <= set(users)
    assert users["worker_a"].areas == (seeded.grid_a,)
    assert all(u.password_hash is None and u.api_key_hash is None for u in users.values())
    # the trusted store (owner) still authenticates
    full = {u.name: u for u in list_users(store)}
    assert full["worker_a"].password_hash and full["hotline"].api_key_hash
    assert authenticate(store, "worker_a", PASSWORD).name == "worker_a"


def test_app_role_appends_audit_rows_but_reads_them_only_city_wide(
    seeded: World, login_role: str
) -> None:
    from gridmap.security.access import Principal
    from gridmap.security.audit import record

    store = _pg(seeded)
    marker = "rls-" + uuid.uuid4().hex
    with store.scoped([seeded.grid_a]):
        record(store, Principal("worker_a", "grid_worker", (seeded.grid_a,)), "login", marker)
        mine = store.sql("SELECT count(*) FROM audit_log WHERE target = %s", [marker])[0][0]
        seen = store.sql("SELECT count(*) FROM audit_log")[0][0]
    # its login row carries no area: city-wide only; the registry's rows of grid A
    # carry the grid's code (migration 030) and are the only ones it reads
    in_a = store.count("audit_log", where={"area_code": Prefix((seeded.grid_a,))})
    assert in_a > 0 and mine == 0 and seen == in_a
    total = store.count("audit_log")
    assert total > 1 and store.count("audit_log", where={"target": marker}) == 1
    with store.scoped([""]):  # every area: a city-wide principal
        assert store.sql("SELECT count(*) FROM audit_log")[0][0] == total
    with psycopg.connect(login_role) as conn:
        assert conn.execute("SELECT count(*) FROM audit_log").fetchone() == (0,)
        conn.execute("SELECT set_config('gridmap.areas', %s, true)", [seeded.town])
        in_town = store.count("audit_log", where={"area_code": Prefix((seeded.town,))})
        assert conn.execute("SELECT count(*) FROM audit_log").fetchone() == (in_town,)
        conn.execute(
            "INSERT INTO audit_log (source_key, actor, action, target) VALUES (%s, 'x', 'y', %s)",
            [uuid.uuid4().hex, marker],
        )
        conn.commit()
    assert store.count("audit_log", where={"target": marker}) == 2


def test_app_role_sees_no_stored_idempotent_answers(seeded: World, login_role: str) -> None:
    store = _pg(seeded)
    key = uuid.uuid4().hex
    store.sql(
        "INSERT INTO idempotency_keys (source_key, principal, key, request_hash, status_code, "
        "response) VALUES (%s, 'worker_b', %s, 'h', 201, %s)",
        [key, key, '{"description": "secret"}'],
    )
    with store.scoped([seeded.grid_b]):
        assert store.sql("SELECT count(*) FROM idempotency_keys")[0][0] == 0
    with pytest.raises(psycopg.errors.InsufficientPrivilege), store.scoped([seeded.grid_b]):
        store.sql(
            "INSERT INTO idempotency_keys (source_key, principal, key) VALUES (%s, 'x', 'y')",
            [uuid.uuid4().hex],
        )
    with psycopg.connect(login_role) as conn:
        conn.execute("SELECT set_config('gridmap.areas', %s, true)", [seeded.grid_b])
        assert conn.execute("SELECT count(*) FROM idempotency_keys").fetchone() == (0,)
    assert store.count("idempotency_keys", where={"key": key}) == 1
    flags = store.sql(
        "SELECT relname, relrowsecurity FROM pg_class WHERE relname IN "
        "('audit_log', 'idempotency_keys')"
    )
    assert sorted(flags) == [("audit_log", True), ("idempotency_keys", True)]


def test_api_logs_in_and_reports_over_the_restricted_tables(seeded: World) -> None:
    """The app keeps working: password login, an idempotent report, the worker list."""
    from tests.security.conftest import PASSWORD, make_app

    with make_app(seeded.store) as c:
        r = c.post("/auth/token", data={"username": "coordinator", "password": PASSWORD})
        assert r.status_code == 200, r.text
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        workers = c.get("/workers", headers=headers)
        assert workers.status_code == 200, workers.text
        r = c.post("/auth/token", data={"username": "worker_a", "password": "wrong password!"})
        assert r.status_code == 401


def test_init_without_createrole_names_the_privilege(pg_server: PgServer) -> None:
    """``gridmap init`` as a plain database owner (no CREATEROLE): exit 1 and what to grant."""
    from typer.testing import CliRunner

    from gridmap.cli import app
    from tests.conftest import TEMPLATE_DB

    owner, db = "owner_" + uuid.uuid4().hex[:8], "t_own_" + uuid.uuid4().hex[:8]
    admin_url = pg_server.url("postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {owner} LOGIN NOCREATEROLE NOSUPERUSER")
        conn.execute(f"CREATE DATABASE {db} OWNER {owner} TEMPLATE {TEMPLATE_DB}")
    url = f"postgresql://{owner}@{pg_server.host}:{pg_server.port}/{db}"
    runner = CliRunner()
    try:
        r = runner.invoke(app, ["init", "--database-url", url], catch_exceptions=False)
        text = " ".join(r.output.split())
        assert r.exit_code == 1, r.output
        # the server's reason: "permission denied to create role" on a new cluster,
        # "must have admin option on role" where another database made gridmap_app
        assert "004_security" in text and "gridmap_app" in text, text
        assert "permission denied" in text or "admin option" in text, text
        assert "CREATEROLE" in text and f'ALTER ROLE "{owner}" CREATEROLE' in text, text
        assert f'GRANT gridmap_app TO "{owner}" WITH ADMIN OPTION' in text, text
        assert "Traceback" not in r.output
        with psycopg.connect(url) as conn:  # one transaction: the database is left as it was
            for table in ("schema_migrations", "grids", "users"):
                assert conn.execute("SELECT to_regclass(%s)", [table]).fetchone() == (None,)
        # The alternative the message gives works: the role made once by a superuser.
        with psycopg.connect(admin_url, autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'gridmap_app'").fetchone():
                conn.execute("CREATE ROLE gridmap_app NOLOGIN NOINHERIT")
            conn.execute(f'GRANT gridmap_app TO "{owner}" WITH ADMIN OPTION')
        r = runner.invoke(app, ["init", "--database-url", url], catch_exceptions=False)
        assert r.exit_code == 0, r.output
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
            assert row is not None and row[0] >= 26
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
            conn.execute(f"DROP OWNED BY {owner}")
            conn.execute(f"DROP ROLE IF EXISTS {owner}")
