"""Overseas residents (境外人员) register with a passport or permit, one at a time too."""

from __future__ import annotations

import pytest

from gridmap.common.errors import BadInput
from gridmap.population.registry import Person, register_household, register_resident
from gridmap.security.access import Principal
from gridmap.security.privacy import Vault
from gridmap.storage import Store
from tests.security.hierarchy import add_units

GRID = "990100001001003"
VAULT = Vault.from_secret("overseas residents test data key, long enough")
WORKER = Principal("wang", "grid_worker", (GRID,))


@pytest.fixture
def household(store: Store) -> tuple[Store, int]:
    store.migrate()
    add_units(store, grid=GRID)
    hh = register_household(store, WORKER, grid_code=GRID, address="合成地址 synthetic 1")
    return store, int(hh["id"])


def test_passport_resident_is_stored_encrypted_and_masked(household: tuple[Store, int]) -> None:
    store, hid = household
    r = register_resident(
        store,
        VAULT,
        WORKER,
        household_id=hid,
        person=Person(
            name="John Smith", id_number="E12345678", category="overseas", id_type="passport"
        ),
    )
    assert r["id_number"] == "E*****678"
    row = store.read("residents", ids=[r["id"]])
    assert row["id_type"].iloc[0] == "passport"
    assert "E12345678" not in str(row["id_number_enc"].iloc[0])
    assert VAULT.decrypt(row["id_number_enc"].iloc[0], "id_number") == "E12345678"
    # The same passport twice: the neutral refusal, stored once.
    with pytest.raises(BadInput):
        register_resident(
            store,
            VAULT,
            WORKER,
            household_id=hid,
            person=Person(
                name="John Smith", id_number="e12345678", category="overseas", id_type="护照"
            ),
        )
    assert store.count("residents") == 1


def test_documents_are_checked(household: tuple[Store, int]) -> None:
    store, hid = household
    with pytest.raises(BadInput, match="overseas"):
        register_resident(
            store, VAULT, WORKER, household_id=hid,
            person=Person(name="张三", id_number="E12345678", id_type="passport"),
        )  # fmt: skip
    with pytest.raises(BadInput):
        register_resident(
            store, VAULT, WORKER, household_id=hid,
            person=Person(
                name="Li", id_number="H123", category="overseas", id_type="hk_macao_permit"
            ),
        )  # fmt: skip
    # A resident ID card still follows GB 11643.
    with pytest.raises(BadInput):
        register_resident(
            store,
            VAULT,
            WORKER,
            household_id=hid,
            person=Person(name="张三", id_number="110105194912310021"),
        )
    assert store.count("residents") == 0
