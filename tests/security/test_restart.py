"""Reports survive a PostgreSQL restart in the middle of a load, each stored exactly once.

Runs a short version of ``benchmarks/load_reporters.py`` (8 reporters, 12 s,
restart at 5 s) as its own process: it starts its own PostGIS server (not the
session's, since it restarts it), the demo world, the API under uvicorn, and
clients that retry with the same ``Idempotency-Key``. The script's summary is
what the database holds compared with what the clients were told.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import psycopg
import pytest

from api.main import create_app
from api.settings import Settings
from gridmap.storage.pgserver import PG_BIN, PgServer, pg_server
from gridmap.storage.postgis import PostGISStore

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.postgis
def test_restart_mid_load_keeps_every_report_once() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "load_reporters.py"),
            "--reporters",
            "8",
            "--duration",
            "12",
            "--restart-at",
            "5",
            # A request stalled by a loaded machine is retried (same key) after 15 s
            # rather than waited on for a minute; clients keep trying for 2 minutes.
            "--timeout",
            "15",
            "--give-up",
            "120",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=400,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("SUMMARY ")]
    assert lines, (
        f"no summary; exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    )
    res = json.loads(lines[-1].removeprefix("SUMMARY "))
    # The restart happened in the middle, and reports were taken after it.
    assert res["restart_window_s"] is not None
    assert res["acked_after_restart"] > 0, res
    # Exactly once: every key sent was acknowledged and is stored once, naming one event.
    assert res["keys_sent"] > 0
    said = {k: res.get(k) for k in ("violations", "examples", "statuses", "transport_errors")}
    assert res["keys_acknowledged"] == res["keys_sent"] == res["keys_stored"], said
    assert res["events_stored"] == res["keys_stored"], res
    assert res["violations"] == {k: 0 for k in res["violations"]}, res["examples"]
    # Never a 500: only 503 (during the restart) besides the acknowledgements.
    assert set(res["statuses"]) <= {"200", "201", "409", "503"}, res["statuses"]
    assert res["api_unexpected_errors"] == 0, res["api_log_tail"]
    assert proc.returncode == 0, proc.stdout[-2000:]


def _pg_ctl(server: PgServer, action: str) -> None:
    cmd = [str(PG_BIN / "pg_ctl"), "-D", str(server.datadir), "-m", "fast", "-w", "-t", "60"]
    cmd += ["-l", str(server.datadir.parent / "server.log"), action]
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    subprocess.run(cmd, check=True, capture_output=True)


@pytest.mark.postgis
def test_database_down_is_503_with_retry_after_then_recovers() -> None:
    with pg_server() as server:
        with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE g")
        url = server.url("g")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION postgis")
        store = PostGISStore(url, timeout=5.0)
        store.migrate()
        with TestClient(create_app(Settings(), store=store)) as client:
            assert client.get("/collections/admin_units/items").status_code == 200
            # Sessions cut under the pool: its check drops them and reconnects.
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = 'g' AND pid <> pg_backend_pid()"
                )
            assert client.get("/collections/admin_units/items").status_code == 200
            # The server is down: 503 with Retry-After, never 500.
            _pg_ctl(server, "stop")
            r = client.get("/collections/admin_units/items")
            assert r.status_code == 503, r.text
            assert int(r.headers["Retry-After"]) > 0
            assert r.json()["code"] == "store_unavailable"
            assert "terminating" not in r.text and "127.0.0.1" not in r.text
            # Back up: the pool reconnects by itself.
            _pg_ctl(server, "restart")
            statuses = []
            for _ in range(60):
                statuses.append(client.get("/collections/admin_units/items").status_code)
                if statuses[-1] == 200:
                    break
                time.sleep(0.5)
            assert statuses[-1] == 200 and set(statuses) <= {200, 503}, statuses
        store.close()
