"""The audit log on both stores: append-only through the Store, and what gets recorded."""

from __future__ import annotations

import pandas as pd
import pytest

from gridmap.common.errors import BadInput
from gridmap.security.access import SYSTEM, Principal
from gridmap.security.audit import read_log, record
from gridmap.storage import Store


def test_record_and_read(store: Store) -> None:
    p = Principal("wang", "grid_worker", ("990100001001003",))
    record(store, p, "personal.read", "residents:1,2", {"count": 2, "ip": "127.0.0.1"})
    record(store, SYSTEM, "import", "buildings", {"rows": 10})
    record(store, "unknown", "login.failure")
    log = read_log(store)
    assert log["action"].tolist() == ["personal.read", "import", "login.failure"]
    assert log["role"].tolist()[:2] == ["grid_worker", "city_admin"]
    assert pd.isna(log["role"].iloc[2])
    assert '"count": 2' in log["detail"].iloc[0]
    assert len(read_log(store, actor="wang")) == 1


def test_append_only_through_the_store(store: Store) -> None:
    record(store, SYSTEM, "export", "events")
    with pytest.raises(BadInput, match="append-only"):
        store.delete("audit_log")
    with pytest.raises(BadInput, match="append-only"):
        store.update("audit_log", pd.DataFrame({"id": [1], "actor": ["x"]}))
    with pytest.raises(BadInput, match="append-only"):
        store.write("audit_log", pd.DataFrame({"actor": ["x"], "action": ["y"]}), mode="replace")
    assert store.count("audit_log") == 1


def test_scoped_is_available_on_both_stores(store: Store) -> None:
    with store.scoped(["990100001001003"]):
        record(store, SYSTEM, "grid.change", "grids:1")
    with store.scoped([""]):
        assert store.count("audit_log") == 1
    with pytest.raises(BadInput), store.scoped(["99' OR 1=1"]):
        pass
