"""Profile ``POST /events`` through the whole app against a real PostGIS (issue 22).

Starts a throw-away PostgreSQL/PostGIS (:mod:`gridmap.storage.pgserver`), or
uses the empty database at ``--url``; loads the Helsinki demo grids (real
streets; the reports are SYNTHETIC), creates a grid worker with a bearer
token, and sends *n* reports from *c* concurrent in-process clients straight
into the ASGI application: every middleware, routing, authentication, the
intake threads and the store, as under ``uvicorn`` but without the HTTP
parser. Prints the CPU time per report spent in this process (the API's
share; PostgreSQL runs in its own processes), the SQL statements per report,
and, with ``--top``, the functions by time across *all* threads (the intake
runs in worker threads, which a plain ``cProfile`` of the event loop's
thread does not see).

The CPU per report is the number to compare before and after a change of
the intake path: it is what ``load_reporters.py`` reports as the API's
``cpu_ms_per_report``, without the load generator, the HTTP parser and the
second worker sharing the machine. On a shared machine, compare runs taken
one after the other (A, B, A, B): the speed of the machine itself varies.

Usage::

    python benchmarks/profile_intake.py --reports 3000 --clients 8
    python benchmarks/profile_intake.py --reports 1000 --top 40
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import pstats
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from _http_load import asgi_scope, cpu_seconds, new_postgis
from load_reporters import DATA_KEY, SECRET, _postgres_pids, build_world


def main(argv: list[str] | None = None) -> int:
    """Run the profile; print the numbers (and a ``SUMMARY`` JSON line)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reports", type=int, default=3000, help="reports measured")
    p.add_argument("--clients", type=int, default=8, help="reports in flight at once")
    p.add_argument("--top", type=int, default=0, help="functions to list (0: no profile)")
    p.add_argument(
        "--hot-spot",
        action="store_true",
        help="every report within 3 m of one point (default: spread over the grid)",
    )
    p.add_argument("--url", help="an empty PostGIS database to use instead of a new server")
    args = p.parse_args(argv)
    with _database(args.url) as (url, datadir):
        out = _measure(url, datadir, args.reports, max(1, args.clients), args.top, args.hot_spot)
    print("SUMMARY " + json.dumps(out))
    return 0


@contextmanager
def _database(url: str | None) -> Iterator[tuple[str, Path | None]]:
    """The database's URL, and its server's data folder when the server runs here."""
    if url is None:
        with new_postgis("gridmap_prof") as (pg, made):
            yield made, pg.datadir
        return
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute("SHOW data_directory").fetchone()
    yield url, Path(row[0]) if row and (Path(row[0]) / "postmaster.pid").exists() else None


def _server_cpu(datadir: Path | None) -> float:
    """CPU seconds used so far by the server of *datadir* (0 without one)."""
    return 0.0 if datadir is None else cpu_seconds(_postgres_pids(datadir))


def _measure(
    url: str, datadir: Path | None, reports: int, clients: int, top: int, hot_spot: bool
) -> dict[str, Any]:
    from api.main import create_app
    from api.security import install_security
    from api.settings import Settings
    from gridmap.common.settings import SecuritySettings, StoreSettings
    from gridmap.security.privacy import Vault
    from gridmap.storage.postgis import PostGISStore

    # The world of load_reporters.py: the demo, and a grid worker with a token.
    who = build_world(url, 1)[0]
    if hot_spot:  # every report within 3 m (50 points 6 cm apart): an incident
        x, y = who.points[0]
        points = np.array([(x + i * 1e-6, y) for i in range(50)])
    else:  # spread over the grid, as load_reporters.py sends them
        points = who.points
    sec = SecuritySettings(
        environment="production",
        secret_key=SECRET,
        data_key=DATA_KEY,
        principal_cache_seconds=5,
    )
    store = PostGISStore(url, vault=Vault.from_secret(DATA_KEY))
    try:
        app = create_app(Settings(store=StoreSettings(database_url=url)), store=store)
        install_security(app, sec)
        statements: list[str] = []
        driver = _Driver(app, who.token, points)
        db_cpu = _server_cpu(datadir)
        run = driver.run(reports, clients, top, statements)
        try:  # the event loop uvicorn picks when it can
            import uvloop

            out = uvloop.run(run)
        except ImportError:  # pragma: no cover - uvloop is not built for Windows
            out = asyncio.run(run)
        db_cpu = _server_cpu(datadir) - db_cpu  # warm-up included: a little high
    finally:
        store.close()
    print(
        f"{reports} reports, {clients} in flight: {out['wall_ms_per_report']:.2f} ms/report wall, "
        f"{out['cpu_ms_per_report']:.3f} ms CPU/report in the app's process "
        "(middleware, routing, intake threads, psycopg)"
    )
    if datadir is not None:
        out["postgres_cpu_ms_per_report"] = round(1000 * db_cpu / reports, 3)
        print(
            f"PostgreSQL: {out['postgres_cpu_ms_per_report']:.3f} ms CPU/report (warm-up included)"
        )
    print(
        f"SQL statements per report: {len(statements) / reports:.1f} "
        "(cursor executes; BEGIN/COMMIT not counted)"
    )
    kinds: dict[str, int] = {}
    for s in statements:
        head = " ".join(s.split()[:4])[:70]
        kinds[head] = kinds.get(head, 0) + 1
    for head, n in sorted(kinds.items(), key=lambda kv: -kv[1])[:10]:
        print(f"  {n / reports:5.1f}  {head}")
    out["statements_per_report"] = round(len(statements) / reports, 2)
    if "profile" in out:
        print(out.pop("profile"))
    return out


class _Driver:
    """Concurrent clients calling the ASGI app in this process, lifespan included."""

    def __init__(self, app: Any, token: str, points: np.ndarray) -> None:
        self.app, self.token, self.points = app, token, points

    def _scope(self, body: bytes) -> dict[str, Any]:
        headers = [
            (b"host", b"127.0.0.1:8000"),
            (b"content-type", b"application/json"),
            (b"authorization", f"Bearer {self.token}".encode()),
            (b"idempotency-key", uuid.uuid4().hex.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"accept-encoding", b"gzip, deflate"),  # what httpx and the phone app send
        ]
        return asgi_scope("POST", "/events", headers=headers, state=self.state)

    async def report(self, i: int) -> None:
        lon, lat = (float(v) for v in self.points[i % len(self.points)])
        body = json.dumps(
            {
                "category": ("dispute", "city_management")[i % 2],
                "description": f"profile report {i} (SYNTHETIC 合成数据)",
                "location": {"lon": lon, "lat": lat, "crs": "wgs84"},
            }
        ).encode()
        messages = [{"type": "http.request", "body": body, "more_body": False}]
        never = asyncio.get_running_loop().create_future()  # the client stays connected

        async def receive() -> dict[str, Any]:
            if messages:
                return messages.pop()
            await never
            return {"type": "http.disconnect"}  # pragma: no cover

        status: list[int] = []

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])

        await self.app(self._scope(body), receive, send)
        if status != [201]:
            raise RuntimeError(f"report {i} was answered {status}")

    async def clients(self, clients: int, reports: int, first: int) -> None:
        async def client(c: int) -> None:
            for j in range(c, reports, clients):
                await self.report(first + j)

        await asyncio.gather(*(client(c) for c in range(clients)))

    async def run(
        self, reports: int, clients: int, top: int, statements: list[str]
    ) -> dict[str, Any]:
        self.state: dict[str, Any] = {}
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        await inbox.put({"type": "lifespan.startup"})
        lifespan = asyncio.create_task(
            self.app(
                {"type": "lifespan", "asgi": {"version": "3.0"}, "state": self.state},
                inbox.get,
                outbox.put,
            )
        )
        started = await outbox.get()
        if started["type"] != "lifespan.startup.complete":
            raise RuntimeError(f"the app did not start: {started}")
        try:
            await self.clients(clients, 20 * clients, 10**6)  # warm up: threads, caches
            undo = _count_statements(statements)
            profiles = _Profiles() if top else None
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                await self.clients(clients, reports, 0)
            finally:
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                undo()
                text = profiles.stop(top) if profiles is not None else None
        finally:
            await inbox.put({"type": "lifespan.shutdown"})
            await lifespan
        out: dict[str, Any] = {
            "reports": reports,
            "clients": clients,
            "wall_ms_per_report": round(1000 * wall / reports, 3),
            "cpu_ms_per_report": round(1000 * cpu / reports, 3),
        }
        if text is not None:
            out["profile"] = text
        return out


class _Profiles:
    """cProfile in the event loop's thread and around every task of a worker thread.

    cProfile follows the thread that enables it, and the intake runs in worker
    threads: each executor task (``concurrent.futures``) is run under a
    profiler of its own thread, enabled and disabled in that thread.
    """

    def __init__(self) -> None:
        import concurrent.futures.thread as cft

        self._cft, self._run = cft, cft._WorkItem.run
        self._local = threading.local()
        self._all: list[cProfile.Profile] = [cProfile.Profile()]
        self._lock = threading.Lock()
        run, local, everyone, lock = self._run, self._local, self._all, self._lock

        def profiled(item: Any) -> None:
            prof = getattr(local, "prof", None)
            if prof is None:
                prof = local.prof = cProfile.Profile()
                with lock:
                    everyone.append(prof)
            prof.enable()
            try:
                run(item)
            finally:
                prof.disable()

        cft._WorkItem.run = profiled  # type: ignore[method-assign,assignment]
        self._all[0].enable()

    def stop(self, top: int) -> str:
        """Stop profiling; the *top* functions by cumulative time, all threads merged."""
        self._all[0].disable()
        self._cft._WorkItem.run = self._run  # type: ignore[method-assign]
        with self._lock:
            profiles = list(self._all)
        stats = pstats.Stats(profiles[0], stream=(buf := io.StringIO()))
        for prof in profiles[1:]:
            stats.add(prof)
        stats.sort_stats("cumulative").print_stats(top)
        return buf.getvalue()


def _count_statements(sink: list[str]) -> Any:
    """Record every statement sent by a psycopg cursor; returns the undo."""
    import psycopg

    original = psycopg.Cursor.execute

    def execute(self: Any, query: Any, *a: Any, **kw: Any) -> Any:
        text = query.decode() if isinstance(query, bytes) else str(query)
        sink.append(text if isinstance(query, str | bytes) else repr(query)[:80])
        return original(self, query, *a, **kw)

    psycopg.Cursor.execute = execute  # type: ignore[method-assign]

    def undo() -> None:
        psycopg.Cursor.execute = original  # type: ignore[method-assign]

    return undo


if __name__ == "__main__":
    raise SystemExit(main())
