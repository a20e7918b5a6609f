"""Profile one ``POST /events`` in process against a real PostGIS (issue 22).

Starts a throw-away PostgreSQL/PostGIS (:mod:`gridmap.storage.pgserver`), loads
the Helsinki demo grids (real streets; the reports are SYNTHETIC), creates a
grid worker with a bearer token, and sends *n* reports through the whole app
(``fastapi.testclient``: routing, authentication, intake, store) under
cProfile. Prints the mean time per report, the SQL statements per report
(``pg_stat_statements`` is not needed: psycopg's statement log is counted)
and the top functions by cumulative time.

Usage::

    python benchmarks/profile_intake.py --reports 200 --top 40
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import time
import uuid
from typing import Any

SECRET = "profile-secret-G8tzBl-0eFfBUBgjG6g1DYChwpnRrX_Kw71QNmUt8m45egS0nk8GE"
DATA_KEY = "profile-data-key-0123456789abcdef0123456789abcdefXYZ"


def main(argv: list[str] | None = None) -> int:
    """Run the profile; print the numbers."""
    import pandas as pd
    import psycopg
    import shapely
    from fastapi.testclient import TestClient

    from api.main import create_app
    from api.security import install_security
    from api.settings import Settings
    from gridmap.common.settings import SecuritySettings, StoreSettings
    from gridmap.demo.job import run_demo
    from gridmap.security.auth import add_user, issue_token
    from gridmap.security.privacy import Vault
    from gridmap.storage.pgserver import pg_server
    from gridmap.storage.postgis import PostGISStore

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reports", type=int, default=200)
    p.add_argument("--top", type=int, default=40)
    args = p.parse_args(argv)
    with pg_server() as server:
        with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE gridmap_prof")
        url = server.url("gridmap_prof")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION postgis")
        sec = SecuritySettings(
            environment="production",
            secret_key=SECRET,
            data_key=DATA_KEY,
            principal_cache_seconds=5,
        )
        store = PostGISStore(url, vault=Vault.from_secret(DATA_KEY))
        store.migrate()
        run_demo(store, events=0)
        grids = store.read("grids").sort_values("code").reset_index(drop=True)
        g = grids.iloc[3]
        user = add_user(store, "prof_worker", role="grid_worker", areas=[g["code"]])
        token = issue_token(user, sec.token_config(), minutes=600)
        pt = shapely.point_on_surface(g.geometry)
        app = create_app(Settings(store=StoreSettings(database_url=url)), store=store)
        install_security(app, sec)
        statements: list[str] = []

        def body(i: int) -> dict[str, Any]:
            return {
                "category": ("dispute", "city_management")[i % 2],
                "description": f"profile report {i} (SYNTHETIC 合成数据)",
                "location": {"lon": pt.x + (i % 50) * 1e-5, "lat": pt.y, "crs": "wgs84"},
            }

        with TestClient(app) as client:
            headers = {"Authorization": f"Bearer {token}"}
            for i in range(20):  # warm up: locator, caches, partitions
                r = client.post(
                    "/events", json=body(i), headers={**headers, "Idempotency-Key": f"w{i}"}
                )
                assert r.status_code == 201, r.text
            _count_statements(store, statements)
            t = time.perf_counter()
            cpu = time.process_time()
            for i in range(args.reports):
                key = uuid.uuid4().hex
                r = client.post(
                    "/events", json=body(i), headers={**headers, "Idempotency-Key": key}
                )
                assert r.status_code == 201, r.text
            took = time.perf_counter() - t
            cpu = time.process_time() - cpu
            sent = list(statements)  # the HTTP loop's statements only
            # The same work in this thread, under cProfile (the app runs intake in a
            # worker thread, which the profiler of the client's thread does not see).
            from starlette.requests import Request

            from api.routers.events import _store_report, taxonomy_of
            from api.security import authenticate

            request = Request({"type": "http", "app": app, "headers": [], "state": {}})
            tax = taxonomy_of(request)
            prof = cProfile.Profile()
            prof.enable()
            for i in range(args.reports):
                who = authenticate(request, token, None)
                now = pd.Timestamp.now(tz="UTC")
                _store_report(request, store, who, body(i), uuid.uuid4().hex, tax=tax, now=now)
            prof.disable()
        store.close()
    print(
        f"{args.reports} reports in {took:.2f} s: {1000 * took / args.reports:.1f} ms/report, "
        f"{1000 * cpu / args.reports:.1f} ms CPU/report in this process (client, app, intake; "
        f"PostgreSQL not counted); load average {os.getloadavg()}"
    )
    print(
        f"SQL statements per report: {len(sent) / args.reports:.1f} "
        "(cursor executes; the empty one is the pool's liveness check; BEGIN/COMMIT not counted)"
    )
    kinds: dict[str, int] = {}
    for s in sent:
        head = " ".join(s.split()[:4])[:70]
        kinds[head] = kinds.get(head, 0) + 1
    for head, n in sorted(kinds.items(), key=lambda kv: -kv[1])[:40]:
        print(f"  {n / args.reports:5.1f}  {head}")
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(args.top)
    print(out.getvalue())
    return 0


def _count_statements(store: Any, sink: list[str]) -> None:
    """Record every statement sent by the store's pooled connections."""
    import psycopg

    original = psycopg.Cursor.execute

    def execute(self: Any, query: Any, *a: Any, **kw: Any) -> Any:
        text = query.decode() if isinstance(query, bytes) else str(query)
        sink.append(text if isinstance(query, str | bytes) else repr(query)[:80])
        return original(self, query, *a, **kw)

    psycopg.Cursor.execute = execute  # type: ignore[method-assign]


if __name__ == "__main__":
    raise SystemExit(main())
