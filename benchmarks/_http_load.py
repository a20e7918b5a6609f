"""Shared by the HTTP benchmarks: start a server process, drive it with GETs, measure.

The load generator runs in a process of its own (``python _http_load.py
URL_FILE HOST PORT CONCURRENCY SECONDS SERVER_PID``) so that its Python does
not share an interpreter with the server. It keeps CONCURRENCY HTTP/1.1
keep-alive connections on raw asyncio sockets (uvloop when installed), each
sending the next GET as soon as the last answer is read, for SECONDS after a
one-second warm-up, and prints one JSON line: requests, req/s, p50/p99/max
latency (ms), status counts, and the CPU seconds the server's processes (the
process tree of SERVER_PID) and the generator itself spent per request.

Server CPU per request does not depend on how busy the machine is with other
work the way wall-clock throughput does; ``capacity = cores / cpu_per_request``
is the throughput the server would reach with those cores to itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gridmap.storage.pgserver import PgServer

HERE = Path(__file__).resolve()


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def process_tree(pid: int) -> list[int]:
    """*pid* and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(stat[1]), []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU seconds spent so far by *pids* (those still alive)."""
    ticks = 0
    for p in pids:
        try:
            stat = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(stat[11]) + int(stat[12])
    return ticks / os.sysconf("SC_CLK_TCK")


@contextmanager
def new_postgis(dbname: str) -> Iterator[tuple[PgServer, str]]:
    """A throw-away PostgreSQL/PostGIS server and the URL of its new database *dbname*."""
    import psycopg

    from gridmap.storage.pgserver import pg_server

    with pg_server() as pg:
        with psycopg.connect(pg.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{dbname}"')
        url = pg.url(dbname)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        yield pg, url


def asgi_scope(
    method: str,
    path: str,
    *,
    query: str = "",
    headers: Sequence[tuple[bytes, bytes]] = ((b"host", b"bench"),),
    state: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The ASGI scope of one HTTP/1.1 request, for calling an app in this process.

    *state* is the lifespan's state, when the app ran its lifespan.
    """
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": list(headers),
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    if state is not None:
        scope["state"] = dict(state)
    return scope


@contextmanager
def server(
    cmd: Sequence[str], *, port: int, ready_path: str, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run *cmd* (a server on 127.0.0.1:*port*) in its own session until the block ends."""
    log = open(os.devnull, "wb")  # noqa: SIM115 - closed below
    # The server's log (one access line per request) goes to a file: an unread
    # pipe fills after some 64 KB and then blocks the server mid-benchmark.
    errors = tempfile.TemporaryFile()  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        list(cmd),
        env={**os.environ, **(env or {})},
        stdout=log,
        stderr=errors,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                errors.seek(0)
                err = errors.read().decode(errors="replace")
                raise RuntimeError(f"server exited ({proc.returncode}): {err[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{ready_path}", timeout=5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"server on port {port} did not answer") from None
                time.sleep(0.2)
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        errors.close()
        log.close()


#: wrk's Lua hooks: each thread walks the path list from a random start; the
#: summary comes back as one JSON line (latencies in microseconds).
_WRK_SCRIPT = """
local paths, i = {}, 0
init = function(args)
  for line in io.lines(args[1]) do
    if #line > 0 then paths[#paths + 1] = line end
  end
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
  i = math.random(#paths)
end
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK {"requests": %d, "duration_us": %d, "non_2xx": %d, "socket_errors": %d, '
    .. '"p50_us": %d, "p99_us": %d, "max_us": %d}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


def wrk_available() -> bool:
    """Whether Debian's ``wrk`` is installed (``./dev.sh bench`` installs it)."""
    return shutil.which("wrk") is not None and os.environ.get("GRIDMAP_BENCH_CLIENT") != "python"


def drive(
    paths: Sequence[str], *, port: int, concurrency: int, seconds: float, server_pid: int
) -> dict[str, Any]:
    """Load 127.0.0.1:*port* with GETs of *paths*; return requests, req/s, latencies, CPU.

    With ``wrk`` installed (C, event loop on one thread: a small share of a
    core) it is the client; otherwise the asyncio generator of this module,
    which costs more client CPU on a machine the server shares. Set
    ``GRIDMAP_BENCH_CLIENT=python`` to force the latter.
    """
    url_file = Path(f"/tmp/gridmap-bench-paths-{os.getpid()}-{port}.txt")
    url_file.write_text("\n".join(paths))
    try:
        if wrk_available():
            return _drive_wrk(url_file, port, concurrency, seconds, server_pid)
        proc = subprocess.run(
            [
                sys.executable,
                str(HERE),
                str(url_file),
                "127.0.0.1",
                str(port),
                str(concurrency),
                str(seconds),
                str(server_pid),
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=seconds + 120,
        )
    finally:
        url_file.unlink(missing_ok=True)
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _drive_wrk(
    url_file: Path, port: int, concurrency: int, seconds: float, server_pid: int
) -> dict[str, Any]:
    script = url_file.with_suffix(".lua")
    script.write_text(_WRK_SCRIPT)

    def run(duration: float) -> tuple[dict[str, Any], float]:
        cmd = [
            "wrk",
            "-t1",
            f"-c{concurrency}",
            f"-d{max(1, round(duration))}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}",
            "--",
            str(url_file),
        ]
        started = time.process_time()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"wrk failed:\n{proc.stderr[-3000:]}")
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("WRK ")][-1]
        return json.loads(line[4:]), time.process_time() - started

    try:
        run(1.0)  # warm-up
        pids = process_tree(server_pid)
        cpu0, child0 = cpu_seconds(pids), os.times()
        res, _ = run(seconds)
        cpu1, child1 = cpu_seconds(pids), os.times()
    finally:
        script.unlink(missing_ok=True)
    n = max(int(res["requests"]), 1)
    client = (child1.children_user + child1.children_system) - (
        child0.children_user + child0.children_system
    )
    ok = int(res["requests"]) - int(res["non_2xx"])
    statuses = {"200": ok}
    if res["non_2xx"]:
        statuses["non-2xx"] = int(res["non_2xx"])
    if res["socket_errors"]:
        statuses["socket-errors"] = int(res["socket_errors"])
    return {
        "client": "wrk",
        "requests": int(res["requests"]),
        "rps": res["requests"] / (res["duration_us"] / 1e6),
        "p50_ms": res["p50_us"] / 1000,
        "p99_ms": res["p99_us"] / 1000,
        "max_ms": res["max_us"] / 1000,
        "server_cpu_ms": (cpu1 - cpu0) / n * 1000,
        "client_cpu_ms": client / n * 1000,
        "server_processes": len(pids),
        "statuses": statuses,
    }


async def _connection(
    host: str,
    port: int,
    requests: list[bytes],
    deadline: float,
    latencies: list[float],
    statuses: dict[int, int],
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    i = random.randrange(len(requests))
    try:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            writer.write(requests[i % len(requests)])
            i += 1
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            chunked = False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"transfer-encoding" and b"chunked" in value.lower():
                    chunked = True
            if chunked:
                while True:
                    size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                    await reader.readexactly(size + 2)
                    if size == 0:
                        break
            else:
                await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        writer.close()


async def _load(
    paths: list[str], host: str, port: int, concurrency: int, seconds: float, pid: int
) -> dict[str, Any]:
    requests = [
        f"GET {p} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: */*\r\n\r\n".encode() for p in paths
    ]
    warm = time.perf_counter() + min(1.0, seconds)
    await asyncio.gather(
        *(_connection(host, port, requests, warm, [], {}) for _ in range(concurrency))
    )
    pids = process_tree(pid)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    cpu0, own0, t0 = cpu_seconds(pids), time.process_time(), time.perf_counter()
    await asyncio.gather(
        *(
            _connection(host, port, requests, t0 + seconds, latencies, statuses)
            for _ in range(concurrency)
        )
    )
    elapsed = time.perf_counter() - t0
    cpu1, own1 = cpu_seconds(pids), time.process_time()
    n = max(len(latencies), 1)
    latencies.sort()
    return {
        "client": "python",
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000 if latencies else float("nan"),
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000 if latencies else float("nan"),
        "max_ms": latencies[-1] * 1000 if latencies else float("nan"),
        "server_cpu_ms": (cpu1 - cpu0) / n * 1000,
        "client_cpu_ms": (own1 - own0) / n * 1000,
        "server_processes": len(pids),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
    }


def main(argv: list[str]) -> None:
    """Load-generator entry point (see the module docstring)."""
    url_file, host, port, concurrency, seconds, pid = argv
    paths = [p for p in Path(url_file).read_text().splitlines() if p]
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        runner = asyncio.run
    result = runner(_load(paths, host, int(port), int(concurrency), float(seconds), int(pid)))
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
