"""The embedded store: one DuckDB file with the ``spatial`` extension.

The extension is loaded from the ``duckdb-extension-spatial`` wheel installed
next to DuckDB, so nothing is ever downloaded. Geometry columns carry R-tree
indexes.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
import re
import shutil
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Concatenate, Literal, ParamSpec, TypeVar

import duckdb
import pandas as pd
import pyarrow as pa

from gridmap.common.errors import BadInput
from gridmap.common.model import LayerSchema, layer_schema
from gridmap.security.privacy import Vault
from gridmap.storage._sql import migrations, quote, where_sql
from gridmap.storage.base import ARROW_TYPES as _ARROW
from gridmap.storage.base import (
    StoreBusy,
    StoreInvalidated,
    StoreUnavailable,
    Where,
    WriteResult,
    area_setting,
    check_writable,
    prepare_frame,
    to_arrow,
)
from gridmap.storage.fieldcrypt import POST_MIGRATION, development_vault, seal
from gridmap.storage.limits import QueryCancelled, StatementTimeout, Watchdog, cancel_scope
from gridmap.storage.sqlstore import DUCKDB, SQLStore

__all__ = ["DuckDBStore", "spatial_extension_path"]


def spatial_extension_path() -> Path:
    """Path of the spatial extension binary shipped in ``duckdb-extension-spatial``."""
    import duckdb_extension_spatial

    root = Path(duckdb_extension_spatial.__file__).parent / "extensions"
    candidates = sorted(root.glob(f"v{duckdb.__version__}/spatial.duckdb_extension"))
    candidates = candidates or sorted(root.glob("*/spatial.duckdb_extension"))
    if not candidates:
        raise RuntimeError(
            f"duckdb-extension-spatial has no extension binary under {root}; "
            "reinstall it with the same version as duckdb"
        )
    return candidates[-1]


#: Interrupts store calls that run past their statement time limit (all stores).
_WATCHDOG = Watchdog()
#: Name of every attached database file inside its DuckDB instance.
CATALOG = "gridmap"
CONFIG: dict[str, str | bool | int | float | list[str]] = {"autoinstall_known_extensions": "false"}
#: Lists the R-tree indexes dropped to replay a leftover write-ahead log until
#: they are built again (it survives a crash in between; see :func:`_attach`).
RTREE_REBUILD = "gridmap_rtree_rebuild"


@dataclass
class _Instance:
    """The DuckDB instance holding one attached database file, and how many stores use it."""

    root: duckdb.DuckDBPyConnection
    read_only: bool = False
    users: int = 0
    #: Why DuckDB invalidated the database, once it has: nothing more is sent to it.
    broken: str | None = None


# One DuckDB instance per database file in this process, shared by the stores
# that open it (as duckdb.connect(path) shares one), by real path.
_FILES: dict[str, _Instance] = {}
_FILES_LOCK = threading.Lock()


def _use(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """*con* (a new cursor) pointed at the attached file, not the instance's in-memory default."""
    con.execute(f"USE {CATALOG}")
    return con


def _open_file(path: str, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A connection to the database file *path* with the spatial extension loaded first.

    Loading the extension into an empty instance and then attaching the file
    has the extension's types and index kind known while the file is read.
    A write-ahead log left by a process that did not close the file (killed,
    crashed, power lost) is replayed with its R-tree indexes rebuilt (see
    :func:`_attach`). Raises :class:`StoreBusy` when another process holds
    the file, :class:`StoreInvalidated` when DuckDB cannot open it.
    """
    key = os.path.realpath(path)
    with _FILES_LOCK:
        entry = _FILES.get(key)
        if entry is not None and entry.broken is not None:
            raise StoreInvalidated(entry.broken)
        if entry is not None and entry.read_only and not read_only:
            raise StoreBusy(
                f"the database file {key} is open read-only in this process; "
                "close its stores before opening it for writing"
            )
        if entry is None:
            root = duckdb.connect(":memory:", config=CONFIG)
            try:
                root.execute(f"LOAD '{spatial_extension_path()}'")
                _attach(root, key, read_only=read_only)
            except duckdb.Error as exc:
                root.close()
                raise open_error(key, exc) from exc
            except BaseException:
                root.close()
                raise
            entry = _FILES[key] = _Instance(root, read_only=read_only)
        entry.users += 1
        return _use(entry.root.cursor())


def _close_file(path: str, con: duckdb.DuckDBPyConnection) -> None:
    """Close *con*; the last store of a file closes its instance (checkpointing it)."""
    con.close()
    key = os.path.realpath(path)
    with _FILES_LOCK:
        entry = _FILES.get(key)
        if entry is None:
            return
        entry.users -= 1
        if entry.users <= 0:
            del _FILES[key]
            if entry.broken is not None:
                # nothing more is written into a file found unusable (its log
                # stays for `gridmap db recover`); invalidated, it checkpoints nothing anyway
                with contextlib.suppress(duckdb.Error):
                    entry.root.execute("PRAGMA disable_checkpoint_on_shutdown")
            entry.root.close()


def leftover_wal(path: str) -> bool:
    """Does *path* have a non-empty write-ahead log (its last process did not close it)?"""
    try:
        return os.path.getsize(path + ".wal") > 0
    except OSError:
        return False


def _attach(root: duckdb.DuckDBPyConnection, key: str, *, read_only: bool) -> None:
    """ATTACH the file *key* to *root* as :data:`CATALOG`, replaying a leftover WAL safely.

    Why: DuckDB 1.5.5 replays a write-ahead log into tables whose indexes are
    not bound yet, so it buffers the replayed appends and deletes and applies
    them when an index is first bound (``BoundIndex::ApplyBufferedReplays``).
    The spatial extension's R-tree (duckdb-extension-spatial 1.5.5, the only
    release on PyPI) then fails inside ``RTreeIndex::Append`` with "INTERNAL
    Error: Operation requires a flat vector but a non-flat vector was
    encountered", which invalidates the database: the first insert, delete,
    bbox query or CHECKPOINT after a ``kill -9`` with rows of a geometry layer
    in the log. (An automatic checkpoint during the replay, when the log is
    larger than ``checkpoint_threshold``, has the same origin.)

    So with a leftover log the file is attached without automatic checkpoints,
    its R-tree indexes are dropped (their buffered replays with them; their
    definitions kept in :data:`RTREE_REBUILD` in the same transaction), the
    log is checkpointed into the file, and the indexes are built again from
    the table data. A crash at any point of this leaves either the log (done
    again) or the list of indexes still to build (built at the next open).
    A read-only open replays the log with a writable one first.
    """
    leftover = leftover_wal(key)
    if read_only and leftover:
        writer = duckdb.connect(":memory:", config=CONFIG)
        try:
            writer.execute(f"LOAD '{spatial_extension_path()}'")
            _attach(writer, key, read_only=False)
        finally:
            writer.close()
        leftover = False
    quoted = "'" + key.replace("'", "''") + "'"
    if leftover:
        root.execute("SET checkpoint_threshold = '1000TB'")
    try:
        root.execute(f"ATTACH {quoted} AS {CATALOG}{' (READ_ONLY)' if read_only else ''}")
        if not read_only:
            _rebuild_rtrees(root, replayed=leftover)
    finally:
        if leftover:
            root.execute("RESET checkpoint_threshold")


def _rebuild_rtrees(root: duckdb.DuckDBPyConnection, *, replayed: bool) -> None:
    """After a WAL replay drop every R-tree index, checkpoint, and build them again."""
    cat = CATALOG
    if replayed:
        rtrees = root.execute(
            "SELECT index_name, sql FROM duckdb_indexes() "
            "WHERE database_name = ? AND sql ILIKE '%USING RTREE%' ORDER BY index_name",
            [cat],
        ).fetchall()
        if rtrees:
            with _committed(root):
                root.execute(
                    f"CREATE TABLE IF NOT EXISTS {cat}.{RTREE_REBUILD} "
                    "(index_name VARCHAR PRIMARY KEY, sql VARCHAR NOT NULL)"
                )
                for name, sql in rtrees:
                    root.execute(
                        f"INSERT OR REPLACE INTO {cat}.{RTREE_REBUILD} VALUES (?, ?)",
                        [name, sql],
                    )
                    root.execute(f"DROP INDEX {cat}.{ident(name)}")
        root.execute(f"CHECKPOINT {cat}")
    # fetchall: a result left unread keeps root's transaction open, and an old
    # open transaction makes every later CHECKPOINT fail
    pending = root.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = ? AND table_name = ?",
        [cat, RTREE_REBUILD],
    ).fetchall()
    if not pending[0][0]:
        return
    root.execute(f"USE {cat}")
    todo = root.execute(f"SELECT index_name, sql FROM {RTREE_REBUILD} ORDER BY 1").fetchall()
    for name, sql in todo:
        with _committed(root):
            exists = root.execute(
                "SELECT count(*) FROM duckdb_indexes() WHERE database_name = ? AND index_name = ?",
                [cat, name],
            ).fetchall()
            if not exists[0][0]:
                root.execute(sql)  # reads every geometry of the table
            root.execute(f"DELETE FROM {RTREE_REBUILD} WHERE index_name = ?", [name])
    root.execute(f"DROP TABLE {RTREE_REBUILD}")
    root.execute(f"CHECKPOINT {cat}")


@contextmanager
def _committed(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """One transaction on *con*: committed, or rolled back with the first error raised."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException as exc:
        if not is_fatal(exc):
            con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def ident(name: str) -> str:
    """A quoted SQL identifier (names read from the file's catalog)."""
    return '"' + name.replace('"', '""') + '"'


def first_lines(exc: BaseException) -> str:
    """DuckDB's message without its stack trace, on one line."""
    lines: list[str] = []
    for line in str(exc).splitlines():
        if line.strip().startswith("Stack Trace"):
            break
        if line.strip():
            lines.append(line.strip())
    text = " ".join(lines) or type(exc).__name__
    return text if len(text) <= 400 else text[:400] + "…"


def _unusable(path: str, why: str) -> StoreInvalidated:
    return StoreInvalidated(
        f"the database file {path} cannot be used: {why}. Stop every gridmap process using "
        f"it, then run `gridmap db check --database-url duckdb:///{Path(path).resolve()}`; "
        "if it reports "
        "damage, `gridmap db recover` copies what is readable into a fresh file (the old one "
        "is kept)"
    )


def open_error(path: str, exc: duckdb.Error) -> StoreUnavailable:
    """The domain error for DuckDB failing to open *path*."""
    text = first_lines(exc)
    if "Could not set lock" in text or "Conflicting lock" in text:
        holder = re.search(r"\(PID (\d+)\)", text)
        who = f"another process (PID {holder.group(1)})" if holder else "another process"
        return StoreBusy(
            f"the database file {path} is in use by {who}, e.g. `gridmap serve`: an embedded "
            "store is opened by one process at a time. Stop that process first, or use PostGIS "
            "(GRIDMAP_DATABASE_URL=postgresql://…) to run commands beside the server"
        )
    return _unusable(path, text)


def is_fatal(exc: BaseException) -> bool:
    """Has DuckDB invalidated its database with this error (nothing more may be run)?"""
    if isinstance(exc, duckdb.FatalException | duckdb.InternalException):
        return True
    text = str(exc)
    return "invalidated" in text or "FATAL Error" in text


def _is_corrupt(exc: BaseException) -> bool:
    """Did DuckDB find a damaged block (checksum mismatch) in the file?"""
    return "Corrupt database file" in str(exc)


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _guarded(
    method: Callable[Concatenate[DuckDBStore, _P], _R],
) -> Callable[Concatenate[DuckDBStore, _P], _R]:
    """Run *method* under :meth:`DuckDBStore._guard` (fatal DuckDB errors → StoreInvalidated)."""

    @functools.wraps(method)
    def guarded(store: DuckDBStore, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with store._guard():
            return method(store, *args, **kwargs)

    return guarded


class DuckDBStore(SQLStore):
    """Store layers in one DuckDB database file (or in memory).

    Parameters
    ----------
    path : str or Path
        Database file, or ``":memory:"``.
    vault : Vault, optional
        Keys of the columns encrypted at rest (``events.reporter``, ``contact``:
        :mod:`gridmap.storage.fieldcrypt`); default: the development data key.

    Examples
    --------
    >>> store = DuckDBStore(":memory:")
    >>> store.migrate() >= 1
    True
    """

    dialect: Literal["postgis", "duckdb"] = "duckdb"
    sql_dialect = DUCKDB

    def __init__(
        self, path: str | Path, *, read_only: bool = False, vault: Vault | None = None
    ) -> None:
        self.path = str(path)
        self.vault = vault or development_vault()
        # An absolute path in the URL: ``duckdb:///`` + ``/abs/file`` opens the same file
        # again from any working directory (a relative one read back as ``/file``).
        self.url = (
            self.path if self.path == ":memory:" else f"duckdb:///{Path(self.path).resolve()}"
        )
        self.read_only = read_only and self.path != ":memory:"
        if self.path == ":memory:":
            self._con = duckdb.connect(self.path, config=CONFIG)
            self._con.execute(f"LOAD '{spatial_extension_path()}'")
            self._state = _Instance(self._con, users=1)
        else:
            if not self.read_only:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            elif not Path(self.path).exists():
                raise BadInput(f"no database file {self.path}", field="database_url")
            self._con = _open_file(self.path, read_only=self.read_only)
            self._state = _FILES[os.path.realpath(self.path)]
        self._closed = False
        # One writer at a time; readers use their own cursors.
        self._lock = threading.RLock()
        self._tx: contextvars.ContextVar[duckdb.DuckDBPyConnection | None] = contextvars.ContextVar(
            f"gridmap_duckdb_tx_{id(self)}", default=None
        )
        self._areas: contextvars.ContextVar[str | None] = contextvars.ContextVar(
            f"gridmap_duckdb_areas_{id(self)}", default=None
        )
        #: Statement time limit (ms, 0 = none) and the cursors of the store call
        #: running in this context, which the watchdog interrupts when it passes.
        self._timeout_ms = 0
        self._watched: contextvars.ContextVar[list[duckdb.DuckDBPyConnection] | None] = (
            contextvars.ContextVar(f"gridmap_duckdb_watched_{id(self)}", default=None)
        )

    @contextmanager
    def _guard(self, *, limit: bool = True) -> Iterator[None]:
        """Turn DuckDB's fatal errors into :class:`StoreInvalidated`, once and for good.

        DuckDB invalidates its database on a fatal or internal error; a
        statement sent to it after that may fail again or never return. The
        first such error marks the file's instance broken, so every later call
        of every store on it raises at once without touching DuckDB. A damaged
        block (checksum mismatch) is treated alike: the file needs
        ``gridmap db check``/``recover``, not more writes.
        """
        if self._state.broken is not None:
            raise StoreInvalidated(self._state.broken)
        try:
            with self._time_limit() if limit else contextlib.nullcontext():
                yield
        except duckdb.Error as exc:
            if not (is_fatal(exc) or _is_corrupt(exc)):
                raise
            if self._state.broken is None:
                self._state.broken = _unusable(self.path, first_lines(exc)).message
            raise StoreInvalidated(self._state.broken) from exc

    @property
    def invalidated(self) -> str | None:
        """Why the database was invalidated (``None`` while it is usable)."""
        return self._state.broken

    # -- statement time limit ------------------------------------------------
    @property
    def statement_timeout_ms(self) -> int | None:
        """How long one store call may run before it is interrupted (ms; None: no limit)."""
        return self._timeout_ms or None

    def set_statement_timeout(self, ms: int | None) -> None:
        """Interrupt store calls running longer than *ms* milliseconds (None or 0: no limit).

        The API sets ``GRIDMAP_STATEMENT_TIMEOUT_MS``; the CLI's jobs run
        unlimited. A store call (a read, a count, a tile, a write; each one in a transaction) that
        runs past the limit has its DuckDB cursors interrupted by the watchdog
        thread and raises :class:`~gridmap.storage.limits.StatementTimeout`;
        its transaction is rolled back and the store stays usable.
        """
        if ms is not None and (not isinstance(ms, int) or ms < 0):
            raise BadInput("a statement timeout is a number of milliseconds >= 0", field="ms")
        self._timeout_ms = int(ms or 0)

    @contextmanager
    def _time_limit(self) -> Iterator[None]:
        """Interrupt the block's cursors (and the transaction's) when the time limit passes.

        Every store call gets the whole limit (a transaction is not limited as
        a block, as PostgreSQL limits statements, not transactions). The
        cursors are interrupted too when the request's
        :class:`~gridmap.storage.limits.CancelScope` is cancelled (the client
        went away): then the call raises
        :class:`~gridmap.storage.limits.QueryCancelled`.
        """
        scope = cancel_scope()
        if not self._timeout_ms and scope is None:
            yield
            return
        if scope is not None and scope.cancelled:
            raise QueryCancelled("the request was cancelled before its statement ran")
        cursors: list[duckdb.DuckDBPyConnection] = []
        tx = self._tx.get()
        if tx is not None:
            cursors.append(tx)
        fired = threading.Event()
        called_off = threading.Event()

        def interrupt() -> None:
            for cur in list(cursors):
                with contextlib.suppress(duckdb.Error):  # closed already
                    cur.interrupt()

        def on_timeout() -> None:
            fired.set()
            interrupt()

        def on_cancel() -> None:
            called_off.set()
            interrupt()

        token = self._watched.set(cursors)
        handle = _WATCHDOG.arm(self._timeout_ms / 1000, on_timeout) if self._timeout_ms else None
        registered = scope.on_cancel(on_cancel) if scope is not None else None
        try:
            yield
        except duckdb.Error as exc:
            if called_off.is_set() and not is_fatal(exc):
                raise QueryCancelled(
                    f"the request was cancelled (its client went away): {first_lines(exc)[:200]}"
                ) from exc
            if fired.is_set() and not is_fatal(exc):
                raise StatementTimeout(
                    f"the database interrupted a statement after {self._timeout_ms} ms: "
                    f"{first_lines(exc)[:200]}"
                ) from exc
            raise
        finally:
            if handle is not None:
                _WATCHDOG.cancel(handle)
            if scope is not None and registered is not None:
                scope.remove(registered)
            self._watched.reset(token)

    # -- connections -------------------------------------------------------
    def _new_cursor(self) -> duckdb.DuckDBPyConnection:
        cur = self._con.cursor()
        watched = self._watched.get()
        if watched is not None:
            watched.append(cur)
            scope = cancel_scope()
            if scope is not None and scope.cancelled:  # called off before this cursor ran
                cur.close()
                raise QueryCancelled("the request was cancelled before its statement ran")
        return cur if self.path == ":memory:" else _use(cur)

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        tx = self._tx.get()
        return tx if tx is not None else self._new_cursor()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes: commit at the end of the block, roll back on error."""
        if self._tx.get() is not None:  # nested: join the outer transaction
            yield
            return
        with self._lock, self._guard(limit=False):  # each call inside is limited
            cur = self._new_cursor()
            cur.execute("BEGIN TRANSACTION")
            token = self._tx.set(cur)
            try:
                yield
            except BaseException as exc:
                # an invalidated database takes nothing more, not even a ROLLBACK
                if self._state.broken is None and not is_fatal(exc):
                    cur.execute("ROLLBACK")
                raise
            else:
                cur.execute("COMMIT")
            finally:
                self._tx.reset(token)
                cur.close()

    @contextmanager
    def scoped(self, areas: Sequence[str]) -> Iterator[None]:
        """Mark the block as acting for *areas* (DuckDB has no row-level security).

        The embedded store is single-user: area scoping is the application's
        :class:`~gridmap.storage.Prefix` filter. The areas are kept in
        :attr:`current_areas` so callers and tests can see the scope in force.
        """
        token = self._areas.set(area_setting(areas))
        try:
            yield
        finally:
            self._areas.reset(token)

    @property
    def current_areas(self) -> str | None:
        """The ``gridmap.areas`` value of the enclosing :meth:`scoped` block, if any."""
        return self._areas.get()

    # -- schema ------------------------------------------------------------
    @_guarded
    def schema_version(self) -> int:
        """Highest applied migration (0 when none)."""
        cur = self._cursor()
        exists = cur.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_migrations'"
        ).fetchone()
        if not exists or not exists[0]:
            return 0
        row = cur.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
        return int(row[0]) if row else 0

    @_guarded
    def migrate(self, *, target: int | None = None) -> int:
        """Apply pending migrations up to *target* (default: all), each in a transaction."""
        if self.read_only:
            current = self.schema_version()
            latest = max((m.version for m in migrations("duckdb")), default=0)
            if current < (latest if target is None else min(target, latest)):
                raise BadInput(
                    f"the store {self.path} is open read-only and its schema (version "
                    f"{current}) is older than this gridmap's ({latest}): run `gridmap init`"
                )
            return current
        with self._lock:
            cur = self._new_cursor()
            cur.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                "version INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMPTZ DEFAULT now())"
            )
            current = self.schema_version()
            for mig in migrations("duckdb"):
                if mig.version <= current or (target is not None and mig.version > target):
                    continue
                cur.execute("BEGIN TRANSACTION")
                try:
                    cur.execute(mig.sql)
                    step = POST_MIGRATION.get(mig.version)
                    if step is not None:
                        step(self._fetch_all(cur), self._update_many(cur), self.vault, "?")
                    cur.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
                        [mig.version, mig.name],
                    )
                except BaseException as exc:
                    if not is_fatal(exc):
                        cur.execute("ROLLBACK")
                    raise
                cur.execute("COMMIT")
            return self.schema_version()

    @staticmethod
    def _fetch_all(cur: duckdb.DuckDBPyConnection) -> Callable[[str], list[tuple[Any, ...]]]:
        return lambda query: cur.execute(query).fetchall()

    @staticmethod
    def _update_many(
        cur: duckdb.DuckDBPyConnection,
    ) -> Callable[[str, list[tuple[Any, ...]]], None]:
        def run(query: str, rows: list[tuple[Any, ...]]) -> None:
            cur.executemany(query, rows)

        return run

    # -- writes ------------------------------------------------------------
    @_guarded
    def write(
        self, layer: str, frame: pd.DataFrame, *, mode: Literal["append", "replace"] = "append"
    ) -> WriteResult:
        """Insert rows not yet stored (by ``source_key``); ``replace`` empties the layer first."""
        schema, data, wkb = prepare_frame(layer, seal(layer_schema(layer), frame, self.vault))
        table = to_arrow(schema, data, wkb)
        cols = ["source_key", *(["id"] if "id" in data else []), *schema.column_names]
        select = [quote(c) for c in cols]
        target = list(select)
        if wkb is not None:
            target.append("geometry")
            select.append("ST_GeomFromWKB(wkb)")
        with self.transaction():
            cur = self._cursor()
            if mode == "replace":
                check_writable(schema)
                cur.execute(f"DELETE FROM {schema.name}")
            before = self._count(cur, schema.name)
            name = f"_stage_{schema.name}"
            cur.register(name, table)
            try:
                cur.execute(
                    f"INSERT OR IGNORE INTO {schema.name} ({', '.join(target)}) "
                    f"SELECT {', '.join(select)} FROM {name}"
                )
            finally:
                cur.unregister(name)
            if "id" in data:
                _bump_sequence(cur, schema.name)
            inserted = self._count(cur, schema.name) - before
        return WriteResult(offered=len(frame), inserted=inserted)

    @staticmethod
    def _count(cur: duckdb.DuckDBPyConnection, table: str) -> int:
        row = cur.execute(f"SELECT count(*) FROM {table}").fetchone()
        return int(row[0]) if row else 0

    @_guarded
    def _update_rows(
        self, schema: LayerSchema, data: pd.DataFrame, cols: list[str], where: Where | None
    ) -> int:
        """The rows as an Arrow table registered with DuckDB, and UPDATE … FROM it."""
        arrays = {"id": pa.array(data["id"], pa.int64())}
        for c in cols:
            ctype = schema.column(c).type
            s = data[c]
            if ctype == "timestamp":
                arrays[c] = pa.Array.from_pandas(
                    s.dt.tz_convert("UTC"), type=_ARROW[ctype], safe=False
                )
            else:
                vals = s if ctype == "text[]" else s.astype(object).where(s.notna(), None)
                arrays[c] = pa.array(list(vals), _ARROW[ctype], from_pandas=True)
        name = f"_upd_{schema.name}"
        sets = ", ".join(f"{quote(c)} = u.{quote(c)}" for c in cols)
        with self.transaction():
            cur = self._cursor()
            cur.register(name, pa.table(arrays))
            try:
                cond, params = where_sql(schema, dict(where or {}), placeholder="?", alias="t")
                cond = cond.replace(" WHERE ", " AND ", 1)
                row = cur.execute(
                    f"SELECT count(*) FROM {schema.name} t JOIN {name} u ON t.id = u.id{cond}",
                    params,
                ).fetchone()
                cond_t, params_t = where_sql(
                    schema, dict(where or {}), placeholder="?", alias=schema.name
                )
                cur.execute(
                    f"UPDATE {schema.name} SET {sets} FROM {name} u "
                    f"WHERE {schema.name}.id = u.id{cond_t.replace(' WHERE ', ' AND ', 1)}",
                    params_t,
                )
            finally:
                cur.unregister(name)
        return int(row[0]) if row else 0

    @_guarded
    def _change(self, query: str, params: Sequence[Any]) -> int:
        """Run a DELETE (or UPDATE) in a transaction; DuckDB answers the rows it changed."""
        with self.transaction():
            row = self._cursor().execute(query, list(params)).fetchone()
        return int(row[0]) if row else 0

    # -- reads (statements built by SQLStore) ---------------------------------
    @_guarded
    def sql(self, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run SQL, values bound as parameters; its rows (DuckDB's fatal errors guarded)."""
        return self._cursor().execute(query, list(params)).fetchall()

    def close(self) -> None:
        """Close the database (the file's instance closes with its last store)."""
        if self.path == ":memory:":
            self._con.close()
        elif not self._closed:
            self._closed = True
            _close_file(self.path, self._con)

    # -- backup (``gridmap backup`` / ``gridmap restore``) -------------------
    @_guarded
    def copy_file(self, out: str | Path) -> None:
        """Copy the database file to *out*, consistent: ``CHECKPOINT`` under the writer lock.

        The copy is itself a DuckDB database file with every table, index,
        sequence and the schema version, openable as a store.
        """
        if self.path == ":memory:":
            raise BadInput("an in-memory store has no file to copy", field="path")
        with self._lock:
            self._con.execute("CHECKPOINT")
            shutil.copyfile(self.path, out)

    @staticmethod
    def replace_file(target: str | Path, backup: str | Path) -> None:
        """Make *backup* (a file from :meth:`copy_file`) the database at *target*.

        The backup is checked to open as a gridmap store first; the target is
        checkpointed (no write-ahead log may be replayed onto the new file),
        then the backup replaces it in one atomic rename. Fails while another
        process has the target open.
        """
        target = Path(target)
        try:
            con = _open_file(str(backup), read_only=True)
        except StoreInvalidated as exc:
            raise BadInput(f"{Path(backup).name} is not a DuckDB database: {exc}") from None
        try:
            row = con.execute(
                "SELECT count(*) FROM information_schema.tables "
                "WHERE table_name = 'schema_migrations'"
            ).fetchone()
        finally:
            _close_file(str(backup), con)
        if not row or not row[0]:
            raise BadInput(f"{Path(backup).name} is not a gridmap store (no schema_migrations)")
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(target.name + ".restore")
        shutil.copyfile(backup, part)
        if target.exists():
            live = _open_file(str(target))
            try:
                live.execute("CHECKPOINT")
            finally:
                _close_file(str(target), live)
        Path(str(target) + ".wal").unlink(missing_ok=True)
        os.replace(part, target)


def _bump_sequence(cur: duckdb.DuckDBPyConnection, table: str) -> None:
    """Move the id sequence past explicitly given ids (DuckDB can't ALTER SEQUENCE RESTART)."""
    row = cur.execute(f"SELECT coalesce(max(id), 0) FROM {table}").fetchone()
    top = int(row[0]) if row else 0
    cur_val = cur.execute(
        "SELECT coalesce(last_value, 0) FROM duckdb_sequences() WHERE sequence_name = ?",
        [f"{table}_id_seq"],
    ).fetchone()
    current = int(cur_val[0]) if cur_val and cur_val[0] is not None else 0
    if top > current:
        cur.execute(f"SELECT max(nextval('{table}_id_seq')) FROM range(?)", [top - current])
