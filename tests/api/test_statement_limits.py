"""Issue 25 (bounded work): a runaway statement is stopped, answered 503, nothing left running.

On PostGIS the server cancels it (``statement_timeout``; the process list
``pg_stat_activity`` shows no query left); on the embedded store the store's
watchdog interrupts the DuckDB cursors of the call (``interrupt()``), so the
process gives its CPU back at once and the store answers the next request.
The pathological ``LIKE`` of the red-team pass (the ``%_`` pair 2,000 times)
is refused before it reaches either database. Buildings are real OSM
buildings of Helsinki.
"""

from __future__ import annotations

import resource
import time
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from gridmap.storage import Store
from gridmap.storage.limits import StatementTimeout

#: A DuckDB query that runs for minutes over many chunks (interrupted between them).
_DUCK_RUNAWAY = "SELECT sum(hash(i)) FROM range(100000000000) r(i) /* runaway */"
_PG_RUNAWAY = "SELECT pg_sleep(60) /* runaway */"


def _cpu_seconds() -> float:
    """CPU time of this process so far (every thread, DuckDB's workers included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _nothing_running(store: Store, fragment: str) -> None:
    """The store runs no query holding *fragment*: PostGIS's process list, DuckDB's CPU."""
    if store.dialect == "postgis":
        rows = store.sql(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
            "AND pid <> pg_backend_pid() AND position(%s in query) > 0",
            (fragment,),
        )
        assert rows[0][0] == 0
        return
    # DuckDB has no process list: a running query holds its worker threads busy.
    before, started = _cpu_seconds(), time.monotonic()
    time.sleep(1.0)
    used = _cpu_seconds() - before
    assert used < 0.5 * (time.monotonic() - started), f"{used:.2f} s of CPU in 1 s: still running"


def _runaway(store: Store) -> str:
    return _PG_RUNAWAY if store.dialect == "postgis" else _DUCK_RUNAWAY


def test_store_interrupts_a_runaway_statement(store: Store) -> None:
    store.set_statement_timeout(400)  # type: ignore[attr-defined]
    try:
        assert store.statement_timeout_ms == 400  # type: ignore[attr-defined]
        started = time.monotonic()
        with pytest.raises(StatementTimeout):
            store.sql(_runaway(store))
        assert time.monotonic() - started < 5
        _nothing_running(store, "runaway")
        started = time.monotonic()
        assert store.count("buildings") == 0  # usable again at once
        assert time.monotonic() - started < 1
        # inside a transaction: interrupted, rolled back, nothing written
        with pytest.raises(StatementTimeout), store.transaction():
            store.sql("SELECT 1")
            store.sql(_runaway(store))
        assert store.sql("SELECT 42") == [(42,)]
    finally:
        store.set_statement_timeout(None)  # type: ignore[attr-defined]
    assert store.statement_timeout_ms is None  # type: ignore[attr-defined]
    assert store.sql("SELECT 1") == [(1,)]  # no limit: nothing interrupts a short query


def test_bad_timeouts_are_refused(store: Store) -> None:
    from gridmap.errors import BadInput

    with pytest.raises(BadInput, match="milliseconds"):
        store.set_statement_timeout(-1)  # type: ignore[attr-defined]
    assert store.statement_timeout_ms is None  # type: ignore[attr-defined]


def test_api_answers_503_and_leaves_nothing_running(
    filled: Store, make_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = _runaway(filled)
    for method in ("feature_page", "read"):  # PostGIS pages its features in SQL
        if hasattr(filled, method):
            monkeypatch.setattr(filled, method, lambda *a, **k: filled.sql(slow))
    with TestClient(make_app(filled, statement_timeout_ms=300)) as c:
        assert filled.statement_timeout_ms == 300  # type: ignore[attr-defined]
        started = time.monotonic()
        r = c.get("/collections/buildings/items")
        assert time.monotonic() - started < 5
        assert r.status_code == 503, r.text
        assert r.json()["code"] == "statement_timeout"
        assert r.headers["retry-after"]
        _nothing_running(filled, "runaway")
        monkeypatch.undo()
        started = time.monotonic()
        assert c.get("/collections/buildings/items?limit=1").status_code == 200
        assert time.monotonic() - started < 5
    filled.set_statement_timeout(None)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "path",
    ["/collections/buildings/items", "/collections/buildings/tiles/WebMercatorQuad/14/4742/9327"],
)
def test_pathological_like_of_2000_pairs(filled: Store, make_app: Any, path: str) -> None:
    """Anonymous, the red-team request: 400 within 5 s on both stores, nothing left running."""
    from api.main import create_app
    from tests.api.conftest import _settings

    with TestClient(create_app(_settings(), store=filled)) as c:  # no role: anonymous
        started = time.monotonic()
        r = c.get(f"{path}?filter=" + quote(f"name LIKE '{'%_' * 2000}'"))
        assert time.monotonic() - started < 5
        assert r.status_code in (400, 503), r.text[:200]
        assert "LIKE" in r.json()["description"]
    _nothing_running(filled, "LIKE")
    started = time.monotonic()
    assert filled.count("buildings") > 0
    assert time.monotonic() - started < 1
