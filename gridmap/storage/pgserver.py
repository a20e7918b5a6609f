"""Start a throw-away PostgreSQL/PostGIS server from Debian's binaries (tests, benchmarks).

PostgreSQL refuses to run as root, so when called as root the server runs as
the ``postgres`` user through ``runuser``. The server listens on loopback TCP
only, with a socket directory inside its own temporary folder.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from gridmap.common.settings import ToolSettings

__all__ = ["PG_BIN", "PgServer", "pg_server"]

#: Folder of the PostgreSQL programs (``GRIDMAP_PG_BIN``, :class:`ToolSettings`).
PG_BIN: Path = ToolSettings().pg_bin


@dataclass(frozen=True)
class PgServer:
    """Where a running server listens."""

    host: str
    port: int
    user: str
    datadir: Path

    def url(self, dbname: str) -> str:
        """Libpq URL of database *dbname* on this server."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{dbname}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(_as_postgres(cmd), capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(
            f"{Path(cmd[0]).name} failed: {proc.stderr.strip() or proc.stdout.strip()}"
        )


@contextmanager
def pg_server(*, fast: bool = True, shared_buffers: str = "256MB") -> Iterator[PgServer]:
    """Run a fresh PostgreSQL cluster for the duration of the ``with`` block.

    Parameters
    ----------
    fast : bool
        Turn off fsync and synchronous commit (fine for tests; benchmarks of
        bulk loads keep them off for both contenders alike).
    shared_buffers : str
        Server memory for caching pages.
    """
    initdb = PG_BIN / "initdb"
    if not initdb.exists():
        raise RuntimeError(
            f"PostgreSQL binaries not found at {PG_BIN}: install postgresql-15-postgis-3 "
            "(./dev.sh test does it)"
        )
    base = Path(tempfile.mkdtemp(prefix="gridmap-pg-"))
    data = base / "data"
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    port = _free_port()
    _run(
        [
            str(initdb),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        ]
    )
    opts = (
        f"-c port={port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={base} "
        f"-c max_connections=200 -c shared_buffers={shared_buffers}"
    )
    if fast:
        opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    _run(
        [
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            opts,
            "-l",
            str(base / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        ]
    )
    try:
        yield PgServer("127.0.0.1", port, "postgres", data)
    finally:
        subprocess.run(
            _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)
