"""Reliability under load: concurrent reporters, a PostgreSQL restart, every report stored once.

One run, all real components on loopback:

1. a throw-away PostgreSQL/PostGIS server (Debian binaries, :mod:`gridmap.storage.pgserver`);
2. the demo world on it (the real Helsinki OSM extract, grids; no seeded events)
   and one ``grid_worker`` per reporter, created and given a bearer token with
   the functions behind ``gridmap users add`` and ``gridmap token``;
3. the API as its own process (``uvicorn --factory api.main:create_app``,
   ``GRIDMAP_DATABASE_URL`` pointing at the server);
4. *reporters* concurrent clients, each POSTing SYNTHETIC reports at random
   points of its own grid, a fresh ``Idempotency-Key`` per report, retrying the
   same key and body on connection errors, timeouts, 503 and 429 (with backoff,
   honouring ``Retry-After``) until the report is acknowledged;
5. ``pg_ctl restart -m fast`` of the server at ``--restart-at`` seconds.

At the end it checks, in the database, that every key a client sent is stored
exactly once (``idempotency_keys``), that each names one event, that no event
of the reporters exists without its key, that every acknowledged answer names
the stored event, and that the only 5xx answers were 503 inside the restart
window. It prints p50/p99 latency, requests/s, retries and 503s, and a
``SUMMARY {json}`` line; the exit code is 1 on any violation.

Usage::

    python benchmarks/load_reporters.py --reporters 50 --duration 300 --restart-at 150

Numbers depend on the machine (and on whatever else runs on it); the client
and the server share its cores.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _http_load import cpu_seconds, new_postgis, process_tree

ROOT = Path(__file__).resolve().parents[1]
SECRET = "load-secret-G8tzBl-0eFfBUBgjG6g1DYChwpnRrX_Kw71QNmUt8m45egS0nk8GE_iDfk0Lk9yH"
DATA_KEY = "load-data-key-0123456789abcdef0123456789abcdef"
CATEGORIES = ("city_management", "dispute", "safety_hazard", "residents_request")
#: Statuses after which the same request is sent again with the same key.
RETRY_STATUS = {409, 429, 503}  # 409: the same key is still being handled: retry


@dataclass
class Reporter:
    """One field worker: name, bearer token, grid and points inside it."""

    name: str
    token: str
    grid: str
    points: np.ndarray


@dataclass
class Stats:
    """What the clients saw."""

    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    report_latencies: list[float] = field(default_factory=list)
    retries: int = 0
    replays: int = 0
    sent: set[str] = field(default_factory=set)
    #: key → (reporter, event id, grid code) from the acknowledgement.
    acked: dict[str, tuple[str, int, str]] = field(default_factory=dict)
    #: (sent, answered: seconds since the load began, status or error name) of every
    #: 5xx answer and connection error.
    #: (attempt start, attempt end, status or transport error, answer body)
    failures: list[tuple[float, float, str, str]] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    given_up: list[str] = field(default_factory=list)
    #: Seconds since the load began at which each acknowledgement arrived.
    ack_times: list[float] = field(default_factory=list)
    #: (seconds since the load began, latency s) of each ``GET /locate`` probe answered 200.
    locate: list[tuple[float, float]] = field(default_factory=list)
    locate_statuses: Counter[int] = field(default_factory=Counter)


# ----------------------------------------------------------------------------- world


def _sample_points(geom: Any, n: int, rng: np.random.Generator) -> np.ndarray:
    """*n* random points well inside *geom* (1 m ≈ 1e-5 degrees shrunk from the edges)."""
    inner = shapely.buffer(geom, -5e-5)
    if inner.is_empty:
        inner = geom
    minx, miny, maxx, maxy = inner.bounds
    found: list[np.ndarray] = []
    have = 0
    while have < n:
        xy = rng.uniform((minx, miny), (maxx, maxy), size=(4 * n, 2))
        xy = xy[shapely.contains_xy(inner, xy[:, 0], xy[:, 1])]
        found.append(xy)
        have += len(xy)
    return np.concatenate(found)[:n]


def build_world(url: str, reporters: int, *, seed: int = 0) -> list[Reporter]:
    """The demo world (no events) and one grid worker with a token per reporter."""
    from gridmap.common.settings import SecuritySettings
    from gridmap.demo.job import run_demo
    from gridmap.security.auth import add_user, issue_token
    from gridmap.storage import open_store

    store = open_store(url, migrate=True)
    try:
        run_demo(store, events=0)
        grids = store.read("grids").sort_values("code").reset_index(drop=True)
        cfg = SecuritySettings(
            environment="production", secret_key=SECRET, data_key=DATA_KEY
        ).token_config()
        rng = np.random.default_rng(seed)
        out = []
        for i in range(reporters):
            g = grids.iloc[i % len(grids)]
            user = add_user(store, f"load_worker_{i:03d}", role="grid_worker", areas=[g["code"]])
            out.append(
                Reporter(
                    user.name,
                    issue_token(user, cfg, minutes=24 * 60),
                    str(g["code"]),
                    _sample_points(g.geometry, 500, rng),
                )
            )
        return out
    finally:
        store.close()


# ----------------------------------------------------------------------------- server


def start_api(url: str, port: int, log: Path, *, workers: int = 1) -> subprocess.Popen[bytes]:
    """Start the API (*workers* uvicorn worker processes) against *url*."""
    env = dict(os.environ)
    env.update(
        GRIDMAP_DATABASE_URL=url,
        GRIDMAP_ENVIRONMENT="production",
        GRIDMAP_SECRET_KEY=SECRET,
        GRIDMAP_DATA_KEY=DATA_KEY,
        GRIDMAP_MEDIA_DIR=str(log.parent / "media"),
        # The load is the point here, not the per-worker intake limit.
        GRIDMAP_REPORTS_PER_MINUTE="1000000",
        GRIDMAP_REPORTS_BURST="1000000",
        # A token's user is read at most every 5 s per API process (api.security).
        GRIDMAP_PRINCIPAL_CACHE_SECONDS=os.environ.get("GRIDMAP_PRINCIPAL_CACHE_SECONDS", "5"),
    )
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "api.main:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
        "--workers",
        str(workers),
    ]
    with log.open("wb") as fh:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the API exited at start:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/conformance", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the API did not answer within 60 s")


def restart_postgres(datadir: Path) -> None:
    """``pg_ctl restart -m fast``: sessions are cut, the server comes back on the same port."""
    from gridmap.storage.pgserver import PG_BIN

    cmd = [
        str(PG_BIN / "pg_ctl"),
        "-D",
        str(datadir),
        "-m",
        "fast",
        "-w",
        "-t",
        "60",
        "-l",
        str(datadir.parent / "server.log"),
        "restart",
    ]
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"pg_ctl restart failed: {proc.stderr or proc.stdout}")


# ----------------------------------------------------------------------------- clients


class TransportError(Exception):
    """A request that got no complete answer (connection refused or cut, timeout)."""


class _Answer:
    """Status, headers (lower-case names) and body of one answer."""

    __slots__ = ("body", "headers", "status_code")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status_code, self.headers, self.body = status, headers, body

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)


class LeanClient:
    """One HTTP/1.1 keep-alive connection on raw asyncio streams.

    The generator shares the machine with the server: httpx spends about
    1.7 ms of CPU per report, this about a fifth of that. A request on a
    reused connection that the server closed while it was idle (keep-alive
    timeout) is sent once more on a new connection, as httpx does; every other
    failure raises :class:`TransportError` (the caller retries with the same key).
    """

    def __init__(self, host: str, port: int, *, timeout: float, connect_timeout: float = 5.0):
        self.host, self.port = host, port
        self.timeout, self.connect_timeout = timeout, connect_timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._used = 0.0

    async def __aenter__(self) -> LeanClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None

    async def _open(self) -> None:
        self.close()
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port), self.connect_timeout
            )
        except (TimeoutError, OSError) as exc:
            raise TransportError(f"ConnectError: {exc!r}") from None

    async def request(
        self, method: str, target: str, *, headers: dict[str, str], body: bytes = b""
    ) -> _Answer:
        head = [f"{method} {target} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        if body or method == "POST":
            head.append(f"Content-Length: {len(body)}")
        raw = ("\r\n".join(head) + "\r\n\r\n").encode("utf-8") + body
        reused = self._writer is not None and time.monotonic() - self._used < 4.0
        if not reused:
            await self._open()
        try:
            return await asyncio.wait_for(self._exchange(raw), self.timeout)
        except _StaleConnection:
            if not reused:
                self.close()
                raise TransportError("RemoteProtocolError: closed without an answer") from None
            await self._open()  # the server closed the idle connection: once more, anew
            try:
                return await asyncio.wait_for(self._exchange(raw), self.timeout)
            except _StaleConnection:
                self.close()
                raise TransportError("RemoteProtocolError: closed without an answer") from None
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
                self.close()
                raise TransportError(type(exc).__name__) from None
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
            self.close()
            name = "ReadTimeout" if isinstance(exc, asyncio.TimeoutError) else type(exc).__name__
            raise TransportError(name) from None

    async def _exchange(self, raw: bytes) -> _Answer:
        reader, writer = self._reader, self._writer
        assert reader is not None and writer is not None
        try:
            writer.write(raw)
            await writer.drain()
            first = await reader.readuntil(b"\r\n\r\n")
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            if isinstance(exc, asyncio.IncompleteReadError) and exc.partial:
                raise
            raise _StaleConnection from None
        lines = first[:-4].decode("latin-1").split("\r\n")
        status = int(lines[0][9:12])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            parts = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                parts.append((await reader.readexactly(size + 2))[:-2])
                if size == 0:
                    break
            data = b"".join(parts)
        else:
            data = await reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            self.close()
        else:
            self._used = time.monotonic()
        return _Answer(status, headers, data)


class _StaleConnection(Exception):
    pass


async def _report(
    client: LeanClient,
    who: Reporter,
    key: str,
    body: dict[str, Any],
    stats: Stats,
    *,
    t0: float,
    give_up_at: float,
) -> None:
    """Send one report until it is acknowledged (same key, same body)."""
    stats.sent.add(key)
    headers = {
        "Authorization": f"Bearer {who.token}",
        "Idempotency-Key": key,
        "Content-Type": "application/json",
    }
    payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
    first = time.monotonic()
    attempt = 0
    while True:
        if attempt:
            stats.retries += 1
        start = time.monotonic()
        wait: float | None = None
        try:
            r = await client.request("POST", "/events", headers=headers, body=payload)
        except TransportError as exc:
            name = str(exc).split(":")[0]
            stats.errors[name] += 1
            stats.failures.append((start - t0, time.monotonic() - t0, name, ""))
        else:
            stats.statuses[r.status_code] += 1
            if r.status_code >= 500:
                stats.failures.append(
                    (start - t0, time.monotonic() - t0, str(r.status_code), r.text[:200])
                )
            if r.status_code in (200, 201):
                stats.latencies.append(time.monotonic() - start)
                stats.report_latencies.append(time.monotonic() - first)
                doc = r.json()
                stats.acked[key] = (who.name, int(doc["id"]), str(doc.get("grid_code")))
                stats.ack_times.append(time.monotonic() - t0)
                if r.headers.get("idempotent-replayed") == "true":
                    stats.replays += 1
                return
            if r.status_code not in RETRY_STATUS:
                stats.unexpected.append(f"{key}: {r.status_code} {r.text[:200]}")
                return
            if "retry-after" in r.headers:
                wait = min(float(r.headers["retry-after"]), 5.0)
        if time.monotonic() > give_up_at:
            stats.given_up.append(key)
            return
        backoff = wait if wait is not None else min(2.0, 0.05 * 2**attempt)
        await asyncio.sleep(backoff * (0.5 + random.random()))
        attempt += 1


@dataclass(frozen=True)
class Pacing:
    """How reporters behave: mean pause between reports, retry limit after the load, timeout."""

    think: float = 0.0
    give_up: float = 120.0
    timeout: float = 60.0


async def _reporter(
    who: Reporter,
    base: str,
    stats: Stats,
    *,
    clock: tuple[float, float],
    pacing: Pacing,
    seed: int,
) -> None:
    t0, stop_at = clock
    give_up_at, think = stop_at + pacing.give_up, pacing.think
    rng = random.Random(seed)
    host, port = _host_port(base)
    async with LeanClient(host, port, timeout=pacing.timeout) as client:
        if think > 0:  # paced reporters start spread out, not all in the same millisecond
            await asyncio.sleep(rng.uniform(0, think))
        seq = 0
        while time.monotonic() < stop_at:
            lon, lat = who.points[seq % len(who.points)]
            key = f"{who.name}-{seq:06d}-{uuid.uuid4().hex[:12]}"
            body = {
                "category": rng.choice(CATEGORIES),
                "description": f"load test report {seq} (SYNTHETIC 合成数据)",
                "location": {"lon": float(lon), "lat": float(lat), "crs": "wgs84"},
            }
            await _report(client, who, key, body, stats, t0=t0, give_up_at=give_up_at)
            seq += 1
            if think > 0:
                await asyncio.sleep(rng.expovariate(1 / think))


def _host_port(base: str) -> tuple[str, int]:
    host, _, port = base.removeprefix("http://").rstrip("/").rpartition(":")
    return host, int(port)


async def _locate_prober(
    base: str, points: np.ndarray, stats: Stats, *, t0: float, stop_at: float, rate: float
) -> None:
    """``GET /locate`` at *rate* requests/s while the reporters run (anonymous, as a hotline)."""
    host, port = _host_port(base)
    async with LeanClient(host, port, timeout=30.0) as client:
        i = 0
        while time.monotonic() < stop_at:
            lon, lat = points[i % len(points)]
            start = time.monotonic()
            try:
                r = await client.request(
                    "GET", f"/locate?lon={lon}&lat={lat}&crs=wgs84", headers={}
                )
            except TransportError as exc:
                stats.locate_statuses[-1] += 1
                stats.errors["locate " + str(exc).split(":")[0]] += 1
            else:
                stats.locate_statuses[r.status_code] += 1
                if r.status_code == 200:
                    stats.locate.append((start - t0, time.monotonic() - start))
            i += 1
            await asyncio.sleep(max(0.0, 1.0 / rate - (time.monotonic() - start)))


async def run_load(
    reporters: list[Reporter],
    base: str,
    *,
    duration: float,
    restart_at: float | None,
    datadir: Path,
    pacing: Pacing = Pacing(),
    locate_rate: float = 0.0,
) -> tuple[Stats, float, tuple[float, float] | None]:
    """Run the reporters for *duration* s, restarting PostgreSQL once at *restart_at* s.

    Returns
    -------
    stats, seconds, window
        What the clients saw, the wall time of the load, and (start, end) of
        the restart in seconds since the load began (``None`` without one).
    """
    stats = Stats()
    # The generator's own garbage collections would count as server latency: its
    # long-lived objects (reporters, points, clients) are frozen and the
    # collector stays off during the load (the few cycles made are freed after).
    gc.collect()
    gc.freeze()
    gc.disable()
    t0 = time.monotonic()
    stop_at = t0 + duration
    window: list[tuple[float, float]] = []

    async def restarter() -> None:
        assert restart_at is not None
        await asyncio.sleep(restart_at)
        a = time.monotonic() - t0
        await asyncio.to_thread(restart_postgres, datadir)
        window.append((a, time.monotonic() - t0))

    tasks = [
        asyncio.create_task(
            _reporter(
                who,
                base,
                stats,
                clock=(t0, stop_at),
                pacing=pacing,
                seed=i,
            )
        )
        for i, who in enumerate(reporters)
    ]
    if restart_at is not None and 0 <= restart_at < duration:
        tasks.append(asyncio.create_task(restarter()))
    if locate_rate > 0:
        probe_points = np.concatenate([r.points[:20] for r in reporters])
        tasks.append(
            asyncio.create_task(
                _locate_prober(base, probe_points, stats, t0=t0, stop_at=stop_at, rate=locate_rate)
            )
        )
    try:
        await asyncio.gather(*tasks)
    finally:
        gc.enable()
        gc.unfreeze()
    return stats, time.monotonic() - t0, (window[0] if window else None)


# ----------------------------------------------------------------------------- checks


def verify(
    url: str,
    reporters: list[Reporter],
    stats: Stats,
    window: tuple[float, float] | None,
    grace: float,
) -> dict[str, Any]:
    """Compare what the clients sent and were told with what the database holds."""
    from gridmap.storage import open_store

    names = [r.name for r in reporters]
    grid_of = {r.name: r.grid for r in reporters}
    store = open_store(url)
    try:
        keys = store.sql(
            "SELECT key, event_id, principal FROM idempotency_keys WHERE principal = ANY(%s)",
            [names],
        )
        # From migration 025 the account is in reported_by (reporter is encrypted).
        has_account = store.sql(
            "SELECT 1 FROM information_schema.columns "
            "WHERE table_name = 'events' AND column_name = 'reported_by'"
        )
        who = "reported_by" if has_account else "reporter"
        events = store.sql(
            f"SELECT id, grid_code FROM events WHERE {who} = ANY(%s)",
            [names],
        )
    finally:
        store.close()
    per_key = Counter(k for k, _, _ in keys)
    stored_event = {k: e for k, e, _ in keys}
    event_ids = [int(e) for e, _ in events]
    keyed_events = Counter(int(e) for _, e, _ in keys if e is not None)
    duplicates = sorted(k for k, n in per_key.items() if n > 1)
    missing = sorted(stats.sent - set(per_key))
    foreign = sorted(set(per_key) - stats.sent)
    unacked = sorted(stats.sent - set(stats.acked))
    wrong_answer = sorted(k for k, (_, eid, _) in stats.acked.items() if stored_event.get(k) != eid)
    wrong_grid = sorted(k for k, (who, _, g) in stats.acked.items() if g != grid_of[who])
    orphan_events = sorted(set(event_ids) - set(keyed_events))
    shared_events = sorted(e for e, n in keyed_events.items() if n > 1)
    lo, hi = (window[0], window[1] + grace) if window else (0.0, -1.0)
    bad_5xx = [f for f in stats.failures if f[2].isdigit() and f[2] != "503"]
    # A request in flight while the server went down fails at the restart:
    # what counts is whether the attempt overlapped the window. Timeouts of a
    # saturated server are reported, not violations (the key is retried).
    outside = [f for f in stats.failures if f[1] < lo or f[0] > hi]
    outside_503 = [f for f in outside if f[2] == "503"]
    violations = {
        "duplicate_keys": len(duplicates),
        "missing_keys": len(missing),
        "foreign_keys": len(foreign),
        "unacknowledged": len(unacked),
        "given_up": len(stats.given_up),
        "answer_not_stored_event": len(wrong_answer),
        "answer_wrong_grid": len(wrong_grid),
        "events_without_key": len(orphan_events),
        "events_with_two_keys": len(shared_events),
        "5xx_other_than_503": len(bad_5xx),
        "503_outside_restart_window": len(outside_503),
        "unexpected_answers": len(stats.unexpected),
    }
    return {
        "transport_errors_outside_restart_window": len(outside)
        - len(outside_503)
        - sum(f in bad_5xx for f in outside),
        "acked_after_restart": sum(t > window[1] for t in stats.ack_times) if window else 0,
        "keys_sent": len(stats.sent),
        "keys_acknowledged": len(stats.acked),
        "keys_stored": len(per_key),
        "events_stored": len(event_ids),
        "violations": violations,
        "examples": {
            "duplicates": duplicates[:5],
            "missing": missing[:5],
            "unacked": unacked[:5],
            "wrong_answer": wrong_answer[:5],
            "orphans": orphan_events[:5],
            "bad_5xx": bad_5xx[:5],
            "outside": outside[:5],
            "unexpected": stats.unexpected[:5],
        },
    }


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000 if values else float("nan")


def _p99_by_window(stats: Stats, seconds: float = 5.0) -> list[tuple[float, int, float]]:
    """(window start s, reports acknowledged, p99 ms) per *seconds* of the load: where tails are."""
    if not stats.ack_times:
        return []
    done = np.asarray(stats.ack_times)
    took = np.asarray(stats.report_latencies)
    out = []
    for start in np.arange(0.0, float(done.max()) + seconds, seconds):
        inside = took[(done >= start) & (done < start + seconds)]
        if inside.size:
            out.append(
                (float(start), int(inside.size), round(float(np.percentile(inside, 99)) * 1000, 1))
            )
    return out


# ----------------------------------------------------------------------------- main


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start everything, run the load, check; return the summary."""
    restart_at = args.restart_at if args.restart_at >= 0 else None
    with new_postgis("gridmap_load") as (server, url):
        t = time.perf_counter()
        reporters = build_world(url, args.reporters, seed=args.seed)
        world_s = time.perf_counter() - t
        port = _free_port()
        log = Path(tempfile.mkdtemp(prefix="gridmap-load-")) / "api.log"
        api = start_api(url, port, log, workers=args.workers)
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        load0 = os.getloadavg()
        # CPU of the API's processes and of PostgreSQL's (a restart replaces the
        # latter's backends: their CPU before it is then not counted).
        api_pids, db_pids = process_tree(api.pid), _postgres_pids(server.datadir)
        api_cpu0, db_cpu0 = cpu_seconds(api_pids), cpu_seconds(db_pids)
        try:
            stats, seconds, window = asyncio.run(
                run_load(
                    reporters,
                    f"http://127.0.0.1:{port}",
                    duration=args.duration,
                    restart_at=restart_at,
                    datadir=server.datadir,
                    pacing=Pacing(args.think, args.give_up, args.timeout),
                    locate_rate=args.locate_rate,
                )
            )
            cpu1 = resource.getrusage(resource.RUSAGE_SELF)
            load1 = os.getloadavg()
            api_cpu = cpu_seconds(api_pids) - api_cpu0
            db_pids = sorted(set(db_pids) | set(_postgres_pids(server.datadir)))
            db_cpu = cpu_seconds(db_pids) - db_cpu0
        finally:
            api.terminate()
            try:
                api.wait(timeout=20)
            except subprocess.TimeoutExpired:
                api.kill()
        result = verify(url, reporters, stats, window, args.grace)
        server_log = server.datadir.parent / "server.log"
        db_errors = [
            ln
            for ln in server_log.read_text(errors="replace").splitlines()
            if " ERROR: " in ln or "DETAIL:" in ln or "STATEMENT:" in ln or "CONTEXT:" in ln
        ]
    api_log = log.read_text(errors="replace")
    attempts = sum(stats.statuses.values()) + sum(stats.errors.values())
    result.update(
        reporters=args.reporters,
        duration_s=round(seconds, 1),
        world_s=round(world_s, 1),
        restart_window_s=None if window is None else [round(w, 2) for w in window],
        statuses={str(k): v for k, v in sorted(stats.statuses.items())},
        transport_errors=dict(stats.errors),
        attempts=attempts,
        retries=stats.retries,
        replays=stats.replays,
        status_503=stats.statuses.get(503, 0),
        reports_per_s=round(len(stats.acked) / seconds, 1),
        requests_per_s=round(attempts / seconds, 1),
        latency_ms_p50=round(_pct(stats.latencies, 50), 1),
        latency_ms_p99=round(_pct(stats.latencies, 99), 1),
        report_ms_p50=round(_pct(stats.report_latencies, 50), 1),
        report_ms_p99=round(_pct(stats.report_latencies, 99), 1),
        report_ms_max=round(_pct(stats.report_latencies, 100), 1),
        p99_ms_by_5s=_p99_by_window(stats),
        api_unexpected_errors=api_log.count("unexpected error"),
        # what the database refused (deadlocks, timeouts), with their statements
        db_errors=db_errors[:40],
        # the first traceback, where an unexpected error starts
        api_log_tail=api_log[api_log.find("Traceback") :][:3000] if "Traceback" in api_log else "",
    )
    # Throughput outside the restart window (and its grace period).
    if window is not None:
        lo, hi = window[0], min(window[1] + args.grace, seconds)
        outside_acks = sum(not (lo <= t <= hi) for t in stats.ack_times)
        outside_s = max(seconds - (hi - lo), 1e-9)
    else:
        lo, hi = 0.0, -1.0
        outside_acks, outside_s = len(stats.ack_times), seconds
    # Latency of the reports sent and answered wholly outside that window.
    steady = [
        took
        for done, took in zip(stats.ack_times, stats.report_latencies, strict=True)
        if done < lo or done - took > hi
    ]
    in_load = [lat for t, lat in stats.locate if t <= args.duration]
    steady_locate = [lat for t, lat in stats.locate if t <= args.duration and not lo <= t <= hi]
    generator_cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    result.update(
        api_workers=args.workers,
        reports_per_s_outside_restart=round(outside_acks / outside_s, 1),
        locate_requests=len(stats.locate),
        locate_statuses={str(k): v for k, v in sorted(stats.locate_statuses.items())},
        locate_ms_p50=round(_pct(in_load, 50), 2),
        locate_ms_p99=round(_pct(in_load, 99), 2),
        report_ms_p50_outside_restart=round(_pct(steady, 50), 1),
        report_ms_p99_outside_restart=round(_pct(steady, 99), 1),
        locate_ms_p99_outside_restart=round(_pct(steady_locate, 99), 2),
        generator_cpu_s=round(generator_cpu, 1),
        # CPU milliseconds per acknowledged report: the API processes, PostgreSQL,
        # the load generator (the /locate probes included in each)
        cpu_ms_per_report={
            "api": round(1000 * api_cpu / max(len(stats.acked), 1), 2),
            "postgres": round(1000 * db_cpu / max(len(stats.acked), 1), 2),
            "generator": round(1000 * generator_cpu / max(len(stats.acked), 1), 2),
        },
        # share of the machine's CPU time the load generator (this process) used
        generator_cpu_share=round(generator_cpu / (seconds * (os.cpu_count() or 1)), 3),
        loadavg_before=[round(x, 2) for x in load0],
        loadavg_after=[round(x, 2) for x in load1],
    )
    result["ok"] = not any(result["violations"].values())
    return result


def _postgres_pids(datadir: Path) -> list[int]:
    """The postmaster of *datadir* and its children (backends, walwriter, ...)."""
    try:
        postmaster = int((datadir / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return []
    return process_tree(postmaster)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; exit code 1 on any violation."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reporters", type=int, default=50)
    p.add_argument("--duration", type=float, default=300.0, help="seconds of load")
    p.add_argument("--restart-at", type=float, default=150.0, help="seconds; negative: no restart")
    p.add_argument(
        "--grace",
        type=float,
        default=20.0,
        help="seconds after the restart during which 503s and connection errors are expected",
    )
    p.add_argument("--think", type=float, default=0.0, help="mean pause between reports, s")
    p.add_argument("--give-up", type=float, default=120.0, help="retry limit after the load, s")
    p.add_argument("--timeout", type=float, default=60.0, help="client read timeout, s")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1, help="uvicorn API worker processes")
    p.add_argument(
        "--locate-rate",
        type=float,
        default=0.0,
        help="GET /locate probes per second during the load (0: none); p50/p99 reported",
    )
    args = p.parse_args(argv)
    res = run(args)
    v = res["violations"]
    print(
        f"machine: {platform.machine()} {os.cpu_count()} cores (shared with the client), "
        f"Python {platform.python_version()}"
    )
    print(
        f"{res['reporters']} reporters for {res['duration_s']} s on loopback; PostgreSQL "
        f"restarted at {res['restart_window_s']} s (world built in {res['world_s']} s)"
    )
    print(
        f"reports acknowledged {res['keys_acknowledged']} of {res['keys_sent']} keys sent; "
        f"stored keys {res['keys_stored']}, events {res['events_stored']}"
    )
    print(
        f"throughput {res['reports_per_s']} reports/s, {res['requests_per_s']} requests/s; "
        f"latency p50 {res['latency_ms_p50']} ms, p99 {res['latency_ms_p99']} ms "
        f"(per report incl. retries p99 {res['report_ms_p99']} ms, max {res['report_ms_max']} ms)"
    )
    print(
        "p99 ms per 5 s: " + " ".join(f"{int(a)}s:{n}/{p99:g}" for a, n, p99 in res["p99_ms_by_5s"])
    )
    print(
        f"retries {res['retries']}, replays {res['replays']}, 503s {res['status_503']}, "
        f"statuses {res['statuses']}, transport errors {res['transport_errors']} "
        f"({res['transport_errors_outside_restart_window']} outside the restart window)"
    )
    print(
        f"API workers {res['api_workers']}; outside the restart window "
        f"{res['reports_per_s_outside_restart']} reports/s; /locate p50 {res['locate_ms_p50']} ms, "
        f"p99 {res['locate_ms_p99']} ms ({res['locate_requests']} probes, "
        f"{res['locate_statuses']}); generator CPU {res['generator_cpu_s']} s "
        f"= {res['generator_cpu_share']:.1%} of the machine; load average before "
        f"{res['loadavg_before']}, after {res['loadavg_after']}"
    )
    print(
        f"outside the restart window: report p50 {res['report_ms_p50_outside_restart']} ms, "
        f"p99 {res['report_ms_p99_outside_restart']} ms; /locate p99 "
        f"{res['locate_ms_p99_outside_restart']} ms"
    )
    print(f"CPU ms per acknowledged report: {res['cpu_ms_per_report']}")
    print("violations: " + (", ".join(f"{k}={n}" for k, n in v.items() if n) or "none"))
    if not res["ok"]:
        print("examples: " + json.dumps(res["examples"], ensure_ascii=False))
    print("SUMMARY " + json.dumps(res, ensure_ascii=False, default=str))
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
