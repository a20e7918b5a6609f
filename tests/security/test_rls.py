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
    from gridmap.access import Principal
    from gridmap.registry import register_household, register_resident

    for grid, idn in (
        (pg_world.grid_a, "11010519491231002X"),
        (pg_world.grid_b, "370285199001011238"),
    ):
        p = Principal(f"w{grid}", "grid_worker", (grid,))
        h = register_household(pg_world.store, p, grid_code=grid, address="Esplanadi 1")
        register_resident(
            pg_world.store, pg_world.vault, p, household_id=h["id"], name="张三", id_number=idn
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
