"""Reporters' names, phones and e-mails encrypted at rest (migration 025, issue 25 item 8).

On both stores: ``events.reporter`` and ``events.contact`` hold AES-256-GCM
ciphertext in the database, every read through the store gets them back in
clear, ``reported_by`` (the reporting account) stays plain and keeps the KPIs
per worker, and a store at version 24 holding clear values is encrypted in
place by the migration. Events here are synthetic points in Helsinki.
"""

from __future__ import annotations

import geopandas as gpd
import mapbox_vector_tile
import pandas as pd
import pytest
import shapely

from gridmap.common.errors import BadInput
from gridmap.events.kpis import worker_activity
from gridmap.security.privacy import Vault
from gridmap.storage import Store, open_store
from gridmap.storage.base import StoreUnavailable
from gridmap.storage.fieldcrypt import DEVELOPMENT_DATA_KEY, is_sealed

GRID = "990100001001001"
NAME, PHONE, MAIL = "张三丰", "13812341234", "zhang.sanfeng@example.cn"
VAULT = Vault.from_secret("a production-like data key, 32+ characters long!")


def _events(reporters: list[str | None], contacts: list[str | None]) -> gpd.GeoDataFrame:
    n = len(reporters)
    return gpd.GeoDataFrame(
        {
            "category": "city_management",
            "status": "reported",
            "grid_code": GRID,
            "reporter": reporters,
            "contact": contacts,
            "reported_by": ["worker_a"] * n,
            "reported_at": pd.Timestamp("2026-09-10T08:00:00Z"),
            "source": "test",
            "source_id": [f"e{i}" for i in range(n)],
        },
        geometry=shapely.points([24.94 + i * 1e-4 for i in range(n)], [60.17] * n),
        crs=4326,
    )


def _raw(store: Store) -> list[tuple[object, ...]]:
    return store.sql(  # type: ignore[attr-defined, no-any-return]
        "SELECT reporter, contact, reported_by FROM events ORDER BY id"
    )


def test_reporter_and_contact_are_ciphertext_in_the_database(store_url: str) -> None:
    store = open_store(store_url, migrate=True, vault=VAULT)
    try:
        store.write("events", _events([NAME, "李四", None], [PHONE, MAIL, None]))
        raw = _raw(store)
        for reporter, contact, _ in raw[:2]:
            assert is_sealed(reporter) and is_sealed(contact)
        flat = repr(raw)
        assert NAME not in flat and PHONE not in flat and MAIL not in flat and "李四" not in flat
        assert raw[2][:2] == (None, None)
        assert [r[2] for r in raw] == ["worker_a"] * 3  # the account stays plain
        # Same value twice: different ciphertexts (random nonces), no equality leak.
        store.write("events", _events([NAME], [PHONE]).assign(source_id=["again"]))
        assert _raw(store)[3][0] != raw[0][0]

        back = store.read("events")
        assert back["reporter"].tolist()[:3] == [NAME, "李四", None]
        assert back["contact"].tolist()[:3] == [PHONE, MAIL, None]
        one = store.get("events", int(back["id"].iloc[0]))
        assert one["reporter"].iloc[0] == NAME

        # An update (a correction of the contact) is encrypted too.
        first = int(back["id"].iloc[0])
        store.update("events", pd.DataFrame({"id": [first], "contact": ["0532-8765-4321"]}))
        assert is_sealed(_raw(store)[0][1]) and "8765" not in repr(_raw(store))
        assert store.get("events", first)["contact"].iloc[0] == "0532-8765-4321"

        # Filtering on ciphertext would silently match nothing: refused, naming the column.
        with pytest.raises(BadInput, match=r"reporter.*encrypted"):
            store.read("events", where={"reporter": NAME})

        # Another key cannot read them (nor silently return ciphertext).
        other = open_store(store_url)
        try:
            with pytest.raises(StoreUnavailable, match=r"events\.reporter cannot be decrypted"):
                other.read("events")
        finally:
            other.close()
    finally:
        store.close()


def test_ciphertext_is_bound_to_its_column(store_url: str) -> None:
    """A reporter ciphertext copied into contact does not decrypt (associated data)."""
    store = open_store(store_url, migrate=True, vault=VAULT)
    try:
        store.write("events", _events([NAME], [PHONE]))
        with store.transaction():
            store.sql("UPDATE events SET contact = reporter")  # type: ignore[attr-defined]
        with pytest.raises(StoreUnavailable, match=r"events\.contact"):
            store.read("events")
    finally:
        store.close()


def test_tiles_leave_encrypted_columns_out(store_url: str) -> None:
    store = open_store(store_url, migrate=True, vault=VAULT)
    try:
        store.write("events", _events([NAME], [PHONE]))
        z = 16
        x, y = 37308, 18969  # holds (24.94, 60.17)
        tile = store.tile("events", z, x, y, properties=["status", "reporter", "contact"])
        features = mapbox_vector_tile.decode(tile)["events"]["features"]
        assert len(features) == 1
        assert features[0]["properties"] == {"status": "reported"}
    finally:
        store.close()


def _insert_v24(store: Store, key: str, reporter: str | None, contact: str | None) -> None:
    """An event as a version-24 store held it: reporter and contact in clear."""
    if store.dialect == "duckdb":
        ph, point = "?", "ST_Point(?, ?)"
    else:
        ph, point = "%s", "ST_SetSRID(ST_MakePoint(%s, %s), 4326)"
    store.sql(  # type: ignore[attr-defined]
        "INSERT INTO events (source_key, source, source_id, category, status, grid_code, "
        f"reporter, contact, reported_at, geometry) VALUES ({ph}, 'test', {ph}, "
        f"'city_management', 'reported', {ph}, {ph}, {ph}, {ph}, {point})",
        [
            f"test:{key}",
            key,
            GRID,
            reporter,
            contact,
            pd.Timestamp("2026-09-10T08:00:00Z").to_pydatetime(),
            24.94,
            60.17,
        ],
    )


def test_migration_025_encrypts_existing_rows_and_keeps_kpis(store_url: str) -> None:
    store = open_store(store_url, vault=VAULT)
    try:
        assert store.migrate(target=24) == 24
        ph = "?" if store.dialect == "duckdb" else "%s"
        with store.transaction():
            store.sql(  # type: ignore[attr-defined]
                f"INSERT INTO users (source_key, name, role) VALUES ({ph}, {ph}, 'grid_worker')",
                ["user:worker_a", "worker_a"],
            )
            _insert_v24(store, "by-account", "worker_a", None)  # no name given: the account
            _insert_v24(store, "hotline", NAME, PHONE)  # a citizen through the hotline
            _insert_v24(store, "open311", "Matti Meikäläinen", MAIL)
            _insert_v24(store, "anonymous", None, None)
        assert store.migrate() >= 25
        raw = _raw(store)
        assert raw[0][2] == "worker_a" and [r[2] for r in raw[1:]] == [None] * 3
        assert all(is_sealed(v) for r in raw[:3] for v in r[:2] if v is not None)
        assert raw[3][:2] == (None, None)
        flat = repr(raw)
        assert NAME not in flat and PHONE not in flat and "Matti" not in flat and MAIL not in flat

        back = store.read("events")
        assert back["reporter"].tolist() == ["worker_a", NAME, "Matti Meikäläinen", None]
        assert back["contact"].tolist() == [None, PHONE, MAIL, None]
        # KPIs per worker count the account, never a citizen's name.
        after = worker_activity(back, pd.DataFrame())
        assert after.loc["worker_a", "reports_made"] == 1
        assert NAME not in after.index and "Matti Meikäläinen" not in after.index

        # The step is idempotent: running it again encrypts nothing twice.
        from gridmap.storage.fieldcrypt import seal_rows

        rows = store.sql("SELECT id, reporter, contact FROM events")  # type: ignore[attr-defined]
        assert seal_rows(rows, ["reporter", "contact"], VAULT, layer="events") == []
    finally:
        store.close()


def test_stores_opened_without_a_vault_use_the_development_key(store_url: str) -> None:
    """What ``gridmap serve``/the CLI use when GRIDMAP_DATA_KEY is unset."""
    from gridmap.common.settings import DEV_DATA_KEY

    assert DEVELOPMENT_DATA_KEY == DEV_DATA_KEY
    store = open_store(store_url, migrate=True)
    try:
        store.write("events", _events([NAME], [PHONE]))
        (reporter,) = store.sql("SELECT reporter FROM events")[0]  # type: ignore[attr-defined]
        assert Vault.from_secret(DEV_DATA_KEY).decrypt(reporter, "events.reporter") == NAME
    finally:
        store.close()


def test_webhook_signing_secrets_are_ciphertext_in_the_database(store_url: str) -> None:
    """The key deliveries are signed with is a secret too: stored sealed, read back clear."""
    from gridmap.events.webhooks import create_subscription
    from gridmap.security.access import Principal

    store = open_store(store_url, migrate=True, vault=VAULT)
    try:
        secret = "webhook-signing-secret-0123456789"
        admin = Principal("admin", "city_admin", ("",))
        create_subscription(
            store,
            url="http://127.0.0.1:9/gridmap",
            event_types=["closed"],
            principal=admin,
            secret=secret,
            allow_private=True,
        )
        ((raw,),) = store.sql("SELECT secret FROM webhook_subscriptions")  # type: ignore[attr-defined]
        assert is_sealed(raw) and secret not in raw
        assert store.read("webhook_subscriptions")["secret"].tolist() == [secret]
    finally:
        store.close()


@pytest.mark.postgis
def test_pages_written_by_postgresql_refuse_encrypted_columns(pg_url: str) -> None:
    """SQL cannot decrypt: the server-written GeoJSON page refuses them (API reads a frame)."""
    store = open_store(pg_url, migrate=True, vault=VAULT)
    try:
        store.write("events", _events([NAME], [PHONE]))
        page = store.feature_page("events", properties=["status"], limit=10)  # type: ignore[attr-defined]
        assert page.returned == 1 and '"status":"reported"' in page.features.replace(" ", "")
        with pytest.raises(BadInput, match=r"'reporter'.*encrypted"):
            store.feature_page("events", properties=["status", "reporter"], limit=10)  # type: ignore[attr-defined]
    finally:
        store.close()
