"""``gridmap backup OUT`` / ``gridmap restore IN`` on both stores: every row comes back.

The store is populated with the demo job on the small real OSM extract shipped
in pyrosm (``test.osm.pbf``: buildings, roads, hierarchy, grids, SYNTHETIC
events) plus users and audit entries, backed up, then damaged (rows deleted
and added; on PostGIS a row-level-security policy dropped and RLS disabled)
and restored. Every table's rows must be as at the backup, the sequences must
go on after the restored ids, and on PostGIS the policies, the RLS flags,
indexes, grants and the ``gridmap_app`` role must be back. A restore into an
empty database and a restore of a damaged file (refused, store unchanged) too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from typer.testing import CliRunner

from gridmap.cli import app
from gridmap.common.model import LAYERS
from gridmap.demo.job import demo_extract, run_demo
from gridmap.security import audit
from gridmap.security.access import SYSTEM
from gridmap.security.auth import demo_users
from gridmap.storage import Store, open_store
from tests.security.conftest import fresh_pg_url

runner = CliRunner()


def digest(store: Store) -> dict[str, object]:
    """Rows of every table (ids included), and on PostGIS the security objects."""
    out: dict[str, object] = {}
    for name in LAYERS:
        frame = store.read(name)
        h = hashlib.sha256(str(len(frame)).encode())
        if len(frame):
            geom = frame.geometry.name if isinstance(frame, gpd.GeoDataFrame) else None
            plain = pd.DataFrame(frame.drop(columns=[geom] if geom else []))
            h.update(pd.util.hash_pandas_object(plain.astype(str), index=False).to_numpy())
            if geom:
                h.update(b"".join(shapely.to_wkb(frame.geometry.to_numpy(), hex=False)))
        out[name] = (len(frame), h.hexdigest())
    if store.dialect == "postgis":
        out["policies"] = sorted(
            store.sql(
                "SELECT tablename, policyname, qual FROM pg_policies WHERE schemaname = 'public'"
            )
        )
        out["rls"] = sorted(
            store.sql(
                "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class "
                "WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p')"
            )
        )
        out["indexes"] = sorted(
            store.sql("SELECT indexdef FROM pg_indexes WHERE schemaname = 'public'")
        )
        out["grants"] = sorted(
            store.sql(
                "SELECT table_name, privilege_type FROM information_schema.role_table_grants "
                "WHERE grantee = 'gridmap_app'"
            )
        )
        out["triggers"] = sorted(
            store.sql(
                "SELECT tgname, tgrelid::regclass::text FROM pg_trigger WHERE NOT tgisinternal"
            )
        )
        out["default_acl"] = sorted(
            store.sql("SELECT defaclobjtype::text, defaclacl::text FROM pg_default_acl")
        )
        out["role"] = store.sql("SELECT count(*) FROM pg_roles WHERE rolname = 'gridmap_app'")
    return out


def populate(store: Store) -> None:
    run_demo(store, extract=demo_extract("test"), events=40, max_households=300)
    grid = str(store.read("grids", limit=1)["code"].iloc[0])
    demo_users(store, grid_code=grid, password="backup test password")
    audit.record(store, SYSTEM, "backup.test", "events:1", {"note": "before backup"})


def damage(store: Store) -> None:
    store.delete("events")
    store.delete("grids", where={"code": str(store.read("grids", limit=1)["code"].iloc[0])})
    extra = store.read("buildings", limit=1)
    extra = extra.drop(columns="id").assign(source="after-backup", source_id="x1")
    store.write("buildings", extra)
    audit.record(store, SYSTEM, "backup.test", "events:2", {"note": "after backup"})
    if store.dialect == "postgis":
        store.sql("DROP POLICY grids_area ON grids")
        store.sql("ALTER TABLE buildings DISABLE ROW LEVEL SECURITY")


def cli(*args: str) -> None:
    r = runner.invoke(app, list(args))
    assert r.exit_code == 0, r.output


def check_restored(url: str, before: dict[str, object], max_id: int) -> None:
    store = open_store(url)
    try:
        after = digest(store)
        for key, value in before.items():
            if isinstance(value, list):
                gone, extra = set(value) - set(after[key]), set(after[key]) - set(value)  # type: ignore[call-overload]
                assert not gone and not extra, (key, sorted(gone), sorted(extra))
        assert after == before
        # The sequences were restored too: a new row gets a new id.
        row = store.read("buildings", limit=1).drop(columns="id")
        store.write("buildings", row.assign(source="after-restore", source_id="y1"))
        new = store.read("buildings", where={"source": "after-restore"})
        assert int(new["id"].iloc[0]) > max_id
    finally:
        store.close()


@pytest.fixture(params=["duckdb", pytest.param("postgis", marks=pytest.mark.postgis)])
def two_urls(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """The store to back up and an empty place to restore into."""
    if request.param == "duckdb":
        yield f"duckdb:///{tmp_path / 'a.duckdb'}", f"duckdb:///{tmp_path / 'new' / 'b.duckdb'}"
        return
    server = request.getfixturevalue("pg_server")
    with fresh_pg_url(server) as a, fresh_pg_url(server) as b:
        yield a, b


def test_backup_restore(two_urls: tuple[str, str], tmp_path: Path) -> None:
    url, empty = two_urls
    store = open_store(url, migrate=True)
    populate(store)
    before = digest(store)
    max_id = int(store.read("buildings")["id"].max())
    assert before["events"][0] > 0 and before["users"][0] > 0  # type: ignore[index]
    store.close()

    out = tmp_path / "gridmap.backup"
    cli("backup", str(out), "--database-url", url)

    store = open_store(url)
    damage(store)
    assert digest(store) != before
    store.close()

    # A damaged backup file is refused and the store is left as it is.
    broken = tmp_path / "broken.backup"
    broken.write_bytes(out.read_bytes()[: out.stat().st_size // 2])
    store = open_store(url)
    damaged = digest(store)
    store.close()
    r = runner.invoke(app, ["restore", str(broken), "--database-url", url])
    assert r.exit_code == 1, r.output
    store = open_store(url)
    assert digest(store) == damaged
    store.close()

    cli("restore", str(out), "--database-url", url)
    check_restored(url, before, max_id)

    # Disaster recovery: into an empty database (PostGIS: extension only).
    cli("restore", str(out), "--database-url", empty)
    check_restored(empty, before, max_id)
