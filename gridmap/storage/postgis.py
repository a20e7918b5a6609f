"""The production store: PostgreSQL + PostGIS through psycopg 3 and a connection pool.

Bulk loads use binary ``COPY`` into a temporary staging table, then one
``INSERT … SELECT … ON CONFLICT (source_key) DO NOTHING``: fast, idempotent and
atomic. Geometry columns carry GiST indexes; the schema is versioned
(``schema_migrations``) and upgraded in place by :meth:`PostGISStore.migrate`.
"""

from __future__ import annotations

import contextvars
import itertools
import sys
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from typing import Any, Literal, TypeVar

import numpy as np
import pandas as pd
import pgpq
import psycopg
import pyarrow as pa
from psycopg import sql as psql
from psycopg.copy import QueuedLibpqWriter
from psycopg_pool import ConnectionPool

from gridmap.common.errors import BadInput, GridmapError
from gridmap.common.model import LayerSchema, layer_schema
from gridmap.security.privacy import Vault
from gridmap.storage._sql import migrations, quote, where_sql
from gridmap.storage.base import (
    StoreUnavailable,
    Where,
    WriteResult,
    area_setting,
    check_writable,
    first_of_each_key,
    frame_from_rows,
    iter_chunks,
    prepare_frame,
    source_keys,
    to_arrow,
)
from gridmap.storage.featurejson import FeaturePages
from gridmap.storage.fieldcrypt import POST_MIGRATION, development_vault, seal
from gridmap.storage.limits import (
    QueryCancelled,
    StatementTimeout,
    cancel_scope,
    interrupt_on_cancel,
    raise_if_cancelled,
)
from gridmap.storage.sqlstore import POSTGIS

__all__ = ["MissingPrivilege", "PostGISStore"]

_T = TypeVar("_T")

_PG_TYPES = {
    "text": "text",
    "int": "int8",
    "float": "float8",
    "bool": "bool",
    "timestamp": "timestamptz",
    "date": "date",
    "text[]": "text[]",
}
_COPY_BATCH = 25_000
_PREP_CHUNK = 25_000
#: Batches at least this large into an empty table take the drop-indexes-and-COPY path.
_BULK_ROWS = 20_000
#: Columns the application role may not read (migration 026): read as NULL under it.
_SECRET_COLUMNS = {"users": frozenset({"password_hash", "api_key_hash"})}
#: Tables whose rows the application role may append without reading them back (026).
_SELECT_HIDDEN = frozenset({"audit_log", "idempotency_keys"})


class PostGISStore(FeaturePages):
    """Store layers in PostgreSQL/PostGIS.

    Parameters
    ----------
    url : str
        A libpq URL, ``postgresql://user:password@host:port/dbname``.
    min_size, max_size : int
        Connection pool bounds.
    vault : Vault, optional
        Keys of the columns encrypted at rest (``events.reporter``, ``contact``:
        :mod:`gridmap.storage.fieldcrypt`); default: the development data key.

    Examples
    --------
    With a server at hand (the test suite starts one; see tests/conftest.py)::

        store = PostGISStore("postgresql://gridmap@127.0.0.1:5432/gridmap")
        store.migrate()   # → the schema version now in force
    """

    dialect: Literal["postgis", "duckdb"] = "postgis"
    sql_dialect = POSTGIS

    def __init__(
        self,
        url: str,
        *,
        min_size: int = 1,
        max_size: int = 8,
        trusted: bool | None = None,
        timeout: float = 10.0,
        statement_timeout_ms: int | None = None,
        vault: Vault | None = None,
    ) -> None:
        self.url = url
        self.vault = vault or development_vault()
        self._statement_timeout_ms = statement_timeout_ms or 0
        #: The statement_timeout each pooled connection was last given (ms, 0 = none).
        self._applied: weakref.WeakKeyDictionary[psycopg.Connection[Any], int] = (
            weakref.WeakKeyDictionary()
        )
        #: Outside :meth:`scoped` blocks, a trusted store (the schema owner running
        #: migrations, imports, jobs) sees every area (``gridmap.areas = '*'``, needed
        #: because FORCE ROW LEVEL SECURITY binds a non-superuser owner too); an
        #: untrusted one (an API connected as a LOGIN member of ``gridmap_app``)
        #: sees nothing until a scope is set. Unless told, the store asks the
        #: server: only the owner of the schema (or a superuser, or anyone before
        #: the schema exists) is trusted, so an API that connects with the
        #: application's LOGIN role is scoped without a setting to forget.
        self.trusted = _connects_as_owner(url) if trusted is None else trusted
        self._pool = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            open=True,
            kwargs={"autocommit": False},
            configure=self._configure,
            # A connection is checked when it leaves the pool: after a server
            # restart the dead ones are dropped and new ones opened, instead of
            # failing one request each. Waiting longer than *timeout* for one
            # raises PoolTimeout → StoreUnavailable (HTTP 503).
            # The check also brings the connection's statement_timeout up to date.
            check=self._check_connection,
            # No ``reset`` callback: with one, the pool hands every returned
            # connection to its worker thread (a queue, a wake-up and a delay per
            # statement); :meth:`_note_back` records returns in the caller's thread.
            timeout=timeout,
        )
        #: When each pooled connection last came back in good order (monotonic s).
        self._back_at: weakref.WeakKeyDictionary[psycopg.Connection[Any], float] = (
            weakref.WeakKeyDictionary()
        )
        #: Set by :meth:`transaction` while it takes a connection: a list the check
        #: appends ``True`` to when it skipped its round trip.
        self._lenient: contextvars.ContextVar[list[bool] | None] = contextvars.ContextVar(
            f"gridmap_pg_lenient_{id(self)}", default=None
        )
        self._tx: contextvars.ContextVar[psycopg.Connection[Any] | None] = contextvars.ContextVar(
            f"gridmap_pg_tx_{id(self)}", default=None
        )
        self._scope: contextvars.ContextVar[str | None] = contextvars.ContextVar(
            f"gridmap_pg_scope_{id(self)}", default=None
        )

    # -- connections -------------------------------------------------------
    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        """Session defaults of every new pooled connection: ``gridmap.areas``, statement_timeout."""
        want = self._statement_timeout_ms
        conn.execute(
            "SELECT set_config('gridmap.areas', %s, false), "
            "set_config('statement_timeout', %s, false)",
            ("*" if self.trusted else "", str(want)),
        )
        conn.commit()
        self._applied[conn] = want

    def _check_connection(self, conn: psycopg.Connection[Any]) -> None:
        """Pool check when a connection is taken: alive, and with the current statement_timeout.

        One round trip either way (the setting doubles as the liveness probe).
        """
        want = self._statement_timeout_ms
        if self._applied.get(conn) == want:
            skipped = self._lenient.get()
            back = self._back_at.pop(conn, None)
            if skipped is not None and back is not None and time.monotonic() - back < RECENT_S:
                skipped.append(True)  # transaction(): its BEGIN is the probe
                return
            ConnectionPool.check_connection(conn)
            return
        conn.autocommit = True
        try:
            conn.execute("SELECT set_config('statement_timeout', %s, false)", (str(want),))
        finally:
            with suppress(Exception):  # a broken connection: keep the first error
                conn.autocommit = False
        self._applied[conn] = want

    def _note_back(self, conn: psycopg.Connection[Any]) -> None:
        """Note that *conn* is going back to the pool in good order, now.

        Called as a block that used it ends (before or after its commit or
        rollback): a connection that broke is not noted, and one whose commit
        then fails on a dead server is discarded by the pool, the note dying
        with it (a weak reference).
        """
        status = conn.pgconn.transaction_status
        if not conn.closed and status != psycopg.pq.TransactionStatus.UNKNOWN:
            self._back_at[conn] = time.monotonic()

    @property
    def statement_timeout_ms(self) -> int | None:
        """How long one statement may run (milliseconds); ``None``: no limit."""
        return self._statement_timeout_ms or None

    def set_statement_timeout(self, ms: int | None) -> None:
        """Limit every statement to *ms* milliseconds (``None`` or 0: no limit).

        PostgreSQL cancels a statement that runs longer (also when the client
        that sent it has gone) and the store raises
        :class:`~gridmap.storage.limits.StatementTimeout`. Applies to each
        pooled connection when it is next taken from the pool. The API sets it
        from ``GRIDMAP_STATEMENT_TIMEOUT_MS``; the CLI's jobs run unlimited.
        """
        if ms is not None and ms < 0:
            raise BadInput("a statement timeout is a number of milliseconds >= 0", field="ms")
        self._statement_timeout_ms = int(ms or 0)

    @contextmanager
    def _conn(self) -> Iterator[psycopg.Connection[Any]]:
        tx = self._tx.get()
        if tx is not None:
            raise_if_cancelled()  # the request's client went away between two statements
            yield tx
            return
        # commits, or rolls back on error; a client gone cancels the running statement
        with _available(), self._pool.connection() as conn, interrupt_on_cancel(conn.cancel_safe):
            yield conn
            self._note_back(conn)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes into one transaction (nested blocks join the outer one).

        A lost connection (server restart) or no connection within the pool's
        timeout raises :class:`~gridmap.storage.base.StoreUnavailable`; the
        transaction is then rolled back by the server and may be retried.
        """
        if self._tx.get() is not None:
            yield
            return
        with _available(), ExitStack() as stack:
            conn = self._begin(stack)
            token = self._tx.set(conn)
            try:
                yield
            finally:
                self._tx.reset(token)

    def one_statement(
        self, query: str | bytes, params: Sequence[Any] | None = None, *, raw: bool = False
    ) -> tuple[Any, ...] | None:
        """Run one statement on its own (it commits by itself) and return its first row, if any.

        One round trip: no ``BEGIN``/``COMMIT`` around it, and the connection
        goes back to the pool as soon as the row is read. Inside
        :meth:`transaction` it joins the transaction instead. *raw* sends
        *query* with ``$n`` placeholders as it is (``psycopg.RawCursor``).

        A connection back in the pool less than :data:`RECENT_S` ago is used
        without the pool's liveness round trip; if it turns out dead (the server
        restarted), the statement is sent once more on a checked connection.
        **Callers make sure the statement may be sent twice**: the first
        attempt may have committed before the connection broke (report intake
        sends statements that claim a key or insert a fixed id, so a second
        attempt changes nothing).
        """
        if self._tx.get() is not None:
            with self._conn() as conn:
                return _first_row(conn, query, params, raw=raw)

        def run(stack: ExitStack, conn: psycopg.Connection[Any]) -> tuple[Any, ...] | None:
            stack.callback(self._note_back, conn)  # after the statement, before the pool
            conn.autocommit = True
            try:
                return _first_row(conn, query, params, raw=raw)
            finally:
                with suppress(Exception):  # a broken connection: keep the first error
                    conn.autocommit = False

        with _available():
            stack, row = self._first_use(run)
            stack.close()
        return row

    def _begin(self, stack: ExitStack) -> psycopg.Connection[Any]:
        """A pooled connection in a new transaction, entered on *stack*.

        Its ``BEGIN`` (a round trip the transaction needs anyway, with nothing
        done yet) is the first use of :meth:`_first_use`: it stands in for the
        pool's liveness probe of a recently returned connection.
        """

        def begin(inner: ExitStack, conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
            inner.callback(self._note_back, conn)  # after the commit, if all went well
            inner.enter_context(conn.transaction())
            return conn

        inner, conn = self._first_use(begin)
        stack.enter_context(inner)
        return conn

    def _first_use(
        self, use: Callable[[ExitStack, psycopg.Connection[Any]], _T]
    ) -> tuple[ExitStack, _T]:
        """A pooled connection, and what *use* made of it, on a stack the caller closes.

        A connection back in the pool less than :data:`RECENT_S` ago is handed
        to *use* without the pool's liveness round trip. If *use* then fails on
        it with a lost connection (the server restarted, the session was
        terminated), the dead connection goes back to be discarded and *use*
        runs once more on a connection checked as usual. An error of a live
        connection (or of a checked one) is raised as it is.
        """
        lenient = True
        while True:
            skipped: list[bool] = []
            token = self._lenient.set(skipped if lenient else None)
            inner = ExitStack()
            try:
                conn = inner.enter_context(self._pool.connection())
            finally:
                self._lenient.reset(token)
            try:
                inner.enter_context(interrupt_on_cancel(conn.cancel_safe))
                result = use(inner, conn)
            except psycopg.OperationalError:
                inner.__exit__(*sys.exc_info())  # the pool discards a dead connection
                if not skipped or not conn.closed:
                    raise  # a live connection refused it, or a checked one failed
                lenient = False  # dead after all: once more, with the check
                continue
            except BaseException:
                inner.__exit__(*sys.exc_info())
                raise
            return inner, result

    @contextmanager
    def scoped(self, areas: Sequence[str]) -> Iterator[None]:
        """Run the block as the application role, limited to *areas* by row-level security.

        Opens a transaction (or joins the current one) that does ``SET LOCAL
        ROLE gridmap_app`` and ``set_config('gridmap.areas', …, true)``: every
        query inside sees only rows whose grid code starts with one of the
        prefixes (``""`` in *areas* means all, no prefixes means none). Both
        settings end with the transaction, so pooled connections come back clean.
        The application filters by area as well; this is the last line.
        """
        setting = area_setting(areas)
        outer = self._scope.get()
        joined = self._tx.get() is not None
        token = self._scope.set(setting)
        try:
            with self.transaction(), self._conn() as conn:
                # SET LOCAL ROLE and the areas in one round trip (set_config('role')
                # is SET ROLE, membership checked alike)
                conn.execute(
                    "SELECT set_config('role', 'gridmap_app', true), "
                    "set_config('gridmap.areas', %s, true)",
                    (setting,),
                )
                try:
                    yield
                finally:
                    # Inside a caller's transaction: hand back the scope that was in force.
                    ok = conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
                    if joined and ok:
                        if outer is None:
                            conn.execute("SET LOCAL ROLE NONE")
                        back = outer if outer is not None else ("*" if self.trusted else "")
                        conn.execute("SELECT set_config('gridmap.areas', %s, true)", (back,))
        finally:
            self._scope.reset(token)

    # -- schema ------------------------------------------------------------
    def schema_version(self) -> int:
        """Highest applied migration (0 when none)."""
        with self._conn() as conn:
            row = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
            if not row or not row[0]:
                return 0
            row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
            return int(row[0]) if row else 0

    def migrate(self, *, target: int | None = None) -> int:
        """Apply pending migrations up to *target*, each in its own transaction.

        A lock serialises concurrent ``gridmap init`` runs; applied versions are
        never re-run, so data is kept across upgrades. A current schema is left
        alone without DDL, so the API's LOGIN member of ``gridmap_app`` (which
        may not create tables) opens it with ``migrate=True``; when something is
        pending, a role that does not own the schema is told to run ``gridmap
        init`` as the owner instead of failing on a permission.
        """
        latest = max(m.version for m in migrations("postgis"))
        if target is not None:
            latest = min(latest, target)
        current = self.schema_version()
        if current >= latest:
            return current
        if not _connects_as_owner(self.url):
            raise MigrationsPending(
                f"the database schema is at version {current} and this gridmap needs "
                f"{latest}: run `gridmap init` as the owner of the schema first "
                "(the application role may not change it)"
            )
        with _available(), self._pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(7262610)")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                "version integer PRIMARY KEY, name text NOT NULL, "
                "applied_at timestamptz NOT NULL DEFAULT now())"
            )
            row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
            current = int(row[0]) if row else 0
            for mig in migrations("postgis"):
                if mig.version <= current or (target is not None and mig.version > target):
                    continue
                with conn.transaction(), _privileged(conn, mig.version, mig.name):
                    conn.execute(_query(mig.sql))
                    step = POST_MIGRATION.get(mig.version)
                    if step is not None:
                        step(_fetch_all(conn), _update_many(conn), self.vault, "%s")
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                        (mig.version, mig.name),
                    )
        return self.schema_version()

    # -- writes ------------------------------------------------------------
    def write(
        self, layer: str, frame: pd.DataFrame, *, mode: Literal["append", "replace"] = "append"
    ) -> WriteResult:
        """Insert the rows not yet stored (by ``source_key``), atomically.

        Rows travel as one binary ``COPY`` stream encoded from Arrow by pgpq,
        geometries as plain WKB: the column type ``geometry(…, 4326)`` gives
        them its SRID on input (PostGIS sets an unknown SRID to the column's),
        which spares rewriting every WKB as EWKB (1.1 s per million rows). Into
        a non-empty table they go through a staging table and ``INSERT … ON
        CONFLICT DO NOTHING``; a large batch into
        an empty table is copied straight in with its secondary indexes dropped
        and rebuilt afterwards (what pg_restore does), in the same transaction.
        """
        offered = len(frame)
        schema = layer_schema(layer)
        frame = seal(schema, frame.copy(deep=False), self.vault)
        frame["source_key"] = (
            frame["source_key"].astype(object)
            if "source_key" in frame and frame["source_key"].notna().all()
            else source_keys(frame, schema)
        )
        keep = first_of_each_key(frame["source_key"])
        if keep is not None:
            frame = frame.loc[keep]

        def tables(rows: pd.DataFrame) -> Iterator[pa.Table]:
            # Chunks are prepared while the previous one streams to the server.
            for part in iter_chunks(len(rows), _PREP_CHUNK):
                yield _arrow_chunk(layer, rows.iloc[part])

        with self.transaction(), self._conn() as conn, conn.cursor() as cur:
            if mode == "replace":
                check_writable(schema)
                cur.execute(_query(f"DELETE FROM {schema.name}"))
            _ensure_partitions(cur, schema.name, frame)
            # Only the schema owner outside a scope may drop and rebuild indexes, and
            # only it sees every row when asking whether the table is empty.
            bulk = (
                len(frame) >= _BULK_ROWS
                and self.trusted
                and self._scope.get() is None
                and self._lock_if_empty(cur, schema.name)
            )
            if bulk:
                if "id" not in frame:
                    # Ids numbered here in one block (the table is empty and locked)
                    # spare the server a nextval() call per row.
                    seq = f"pg_get_serial_sequence('{schema.name}', 'id')"
                    row = cur.execute(_query(f"SELECT nextval({seq})")).fetchone()
                    first = int(row[0]) if row else 1
                    frame = frame.assign(id=np.arange(first, first + len(frame), dtype="int64"))
                inserted = self._bulk_copy(cur, schema, tables(frame))
            else:
                inserted = self._staged_insert(cur, schema, tables(frame))
            if "id" in frame:
                cur.execute(
                    _query(
                        f"SELECT setval(pg_get_serial_sequence('{schema.name}', 'id'), "
                        f"(SELECT coalesce(max(id), 1) FROM {schema.name}))"
                    )
                )
        return WriteResult(offered=offered, inserted=max(inserted, 0))

    @staticmethod
    def _lock_if_empty(cur: psycopg.Cursor[Any], table: str) -> bool:
        cur.execute(_query(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
        row = cur.execute(_query(f"SELECT NOT EXISTS (SELECT 1 FROM {table})")).fetchone()
        return bool(row and row[0])

    @staticmethod
    def _copy_arrow(
        cur: psycopg.Cursor[Any], target: str, tables: Iterator[pa.Table], *, freeze: bool = False
    ) -> int:
        """Stream Arrow tables into *target* (same column order) as one binary COPY."""
        first = next(tables, None)
        if first is None:
            return 0
        cols = ", ".join(quote(c) for c in first.column_names)
        encoder = pgpq.ArrowToPostgresBinaryEncoder(first.schema)
        options = "FORMAT BINARY, FREEZE" if freeze else "FORMAT BINARY"
        statement = f"COPY {target} ({cols}) FROM STDIN ({options})"
        rows = 0
        # A queued writer sends on its own thread, so the next chunk is prepared
        # while the server ingests this one.
        with cur.copy(_query(statement), writer=QueuedLibpqWriter(cur)) as copy:
            copy.write(encoder.write_header())
            for table in itertools.chain([first], tables):
                for batch in table.to_batches(max_chunksize=_COPY_BATCH):
                    copy.write(encoder.write_batch(batch))
                rows += table.num_rows
            copy.write(encoder.finish())
        return rows

    def _staged_insert(
        self, cur: psycopg.Cursor[Any], schema: LayerSchema, tables: Iterator[pa.Table]
    ) -> int:
        first = next(tables, None)
        if first is None:
            return 0
        names = first.column_names
        stage = f"_stage_{schema.name}"
        types = [_stage_type(schema, c) for c in names]
        ddl = ", ".join(f"{quote(c)} {t}" for c, t in zip(names, types, strict=True))
        cur.execute(_query(f"CREATE TEMP TABLE {stage} ({ddl}) ON COMMIT DROP"))
        self._copy_arrow(cur, stage, itertools.chain([first], tables))
        target = [quote(c) for c in names]
        select = ["ST_GeomFromWKB(geometry, 4326)" if c == "geometry" else quote(c) for c in names]
        res = cur.execute(
            _query(
                f"INSERT INTO {schema.name} ({', '.join(target)}) "
                f"SELECT {', '.join(select)} FROM {stage}"
                f"{_conflict_clause(cur, schema.name, stage)}"
            )
        )
        inserted = int(res.rowcount)
        cur.execute(_query(f"DROP TABLE {stage}"))
        return inserted

    def _bulk_copy(
        self, cur: psycopg.Cursor[Any], schema: LayerSchema, tables: Iterator[pa.Table]
    ) -> int:
        # Indexes are rebuilt after the load: building a GiST index once is several
        # times cheaper than growing it, and every row's insert into a b-tree (the
        # primary key too) costs a WAL record that a sorted build does not (measured
        # on 1M buildings: COPY 7.6-8.7 s -> 4.7 s, rebuild +0.6 s). Indexes that a
        # foreign key relies on stay, and so do partial indexes: rows outside
        # their predicate cost them nothing during COPY, while a rebuild would scan
        # the whole table again (0.35 s per index on 1M buildings).
        idx = cur.execute(
            "SELECT i.relname, pg_get_indexdef(x.indexrelid), c.conname, "
            "pg_get_constraintdef(c.oid) FROM pg_index x "
            "JOIN pg_class i ON i.oid = x.indexrelid "
            "LEFT JOIN pg_constraint c ON c.conindid = x.indexrelid AND c.conrelid = x.indrelid "
            "WHERE x.indrelid = %s::regclass AND x.indpred IS NULL AND NOT EXISTS ("
            "  SELECT 1 FROM pg_constraint f WHERE f.contype = 'f' "
            "  AND f.conindid = x.indexrelid) "
            "ORDER BY x.indisprimary DESC",
            (schema.name,),
        ).fetchall()
        for name, _, conname, _ in idx:
            if conname:
                cur.execute(
                    psql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                        psql.Identifier(schema.name), psql.Identifier(conname)
                    )
                )
            else:
                cur.execute(psql.SQL("DROP INDEX {}").format(psql.Identifier(name)))
        freeze = _can_freeze(cur, schema.name)
        if freeze:
            # COPY FREEZE needs a table emptied in this transaction; it is empty
            # and locked already, so TRUNCATE changes nothing but that. Rows land
            # frozen and all-visible: no hint-bit writes on the first reads, no
            # anti-wraparound vacuum rewriting them later.
            cur.execute(_query(f"TRUNCATE ONLY {schema.name}"))
        # WKB: geometry's binary input reads it and gives it the column's SRID.
        rows = self._copy_arrow(cur, schema.name, tables, freeze=freeze)
        cur.execute("SET LOCAL maintenance_work_mem = '512MB'")
        for _, indexdef, conname, condef in idx:
            if conname:
                cur.execute(
                    psql.SQL("ALTER TABLE {} ADD CONSTRAINT {} " + condef).format(
                        psql.Identifier(schema.name), psql.Identifier(conname)
                    )
                )
            else:
                # A partitioned table's index definition says ON ONLY: build it on every partition.
                cur.execute(_query(indexdef.replace(" ON ONLY ", " ON ", 1)))
        return rows

    def _update_rows(
        self, schema: LayerSchema, data: pd.DataFrame, cols: list[str], where: Where | None
    ) -> int:
        """COPY (id, values) into a staging table and UPDATE … FROM it."""
        types = ["int8", *(_PG_TYPES[schema.column(c).type] for c in cols)]
        stage = f"_upd_{schema.name}"
        ddl = ", ".join(f"{quote(c)} {t}" for c, t in zip(["id", *cols], types, strict=True))
        sets = ", ".join(f"{quote(c)} = u.{quote(c)}" for c in cols)
        with self.transaction(), self._conn() as conn, conn.cursor() as cur:
            cur.execute(_query(f"CREATE TEMP TABLE {stage} ({ddl}) ON COMMIT DROP"))
            columns = [_column_values(data[c], c, schema) for c in ["id", *cols]]
            copy_sql = (
                f"COPY {stage} ({', '.join(map(quote, ['id', *cols]))}) FROM STDIN (FORMAT BINARY)"
            )
            with cur.copy(_query(copy_sql)) as copy:
                copy.set_types(types)
                for row in zip(*columns, strict=True):
                    copy.write_row(row)
            cond, params = where_sql(schema, dict(where or {}), alias="t")
            res = cur.execute(
                _query(
                    f"UPDATE {schema.name} t SET {sets} FROM {stage} u "
                    f"WHERE t.id = u.id{cond.replace(' WHERE ', ' AND ', 1)}"
                ),
                params,
            )
            changed = int(res.rowcount)
            cur.execute(_query(f"DROP TABLE {stage}"))
        return changed

    def _change(self, query: str, params: Sequence[Any]) -> int:
        """Run a DELETE (or UPDATE); the rows it changed."""
        with self._conn() as conn:
            return int(conn.execute(_query(query), params).rowcount)

    # -- reads (statements built by SQLStore) ---------------------------------
    def sql(self, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run SQL, values bound as parameters; its rows (none for a statement without)."""
        with self._conn() as conn:
            cur = conn.execute(_query(query), list(params))
            return list(cur.fetchall()) if cur.description else []

    def _hidden_columns(self, schema: LayerSchema) -> frozenset[str]:
        # As the application role (a scope, or an API's login) secrets read as NULL.
        if self.trusted and self._scope.get() is None:
            return frozenset()
        return _SECRET_COLUMNS.get(schema.name, frozenset())

    def login_account(self, name: str) -> pd.DataFrame:
        """The account of user *name* with its password hash, to check a sign-in (0 or 1 rows).

        The application role may not read the hashes of ``users`` (migration
        026): outside the trusted owner's own session (an untrusted store, the
        API's LOGIN member of ``gridmap_app``, or inside :meth:`scoped`) the row
        comes from ``gridmap_login_account`` (031), a SECURITY DEFINER function
        that gives one name's account per transaction and a disabled account's
        hash as NULL. Columns as :meth:`read` of ``users`` (``api_key_hash`` NULL).
        """
        if self.trusted and self._scope.get() is None:
            frame = self.read("users", where={"name": name}, limit=1)
            return frame.assign(api_key_hash=None)
        cols = ["id", "name", "role", "areas", "can_unmask", "disabled", "password_hash"]
        return self._definer_account("gridmap_login_account", name, cols).assign(api_key_hash=None)

    def api_key_account(self, digest: str) -> pd.DataFrame:
        """The account whose API key has the SHA-256 *digest* (0 or 1 rows, no hashes).

        Through ``gridmap_api_key_account`` (031) outside the trusted owner's
        session, as :meth:`login_account`, which gives no disabled account;
        columns as :meth:`read` of ``users`` with both hashes NULL.
        """
        if self.trusted and self._scope.get() is None:
            frame = self.read("users", where={"api_key_hash": digest}, limit=1)
            return frame.assign(password_hash=None, api_key_hash=None)
        cols = ["id", "name", "role", "areas", "can_unmask", "disabled"]
        frame = self._definer_account("gridmap_api_key_account", digest, cols)
        return frame.assign(password_hash=None, api_key_hash=None)

    def _definer_account(self, function: str, key: str, cols: list[str]) -> pd.DataFrame:
        """The account (0 or 1 rows of *cols*) a SECURITY DEFINER function (031) gives *key*."""
        with self._conn() as conn:
            rows = conn.execute(
                _query(f"SELECT {', '.join(map(quote, cols))} FROM {function}(%s)"), (key,)
            ).fetchall()
        return frame_from_rows(layer_schema("users"), cols, rows)

    def close(self) -> None:
        """Close the pool."""
        self._pool.close()


def _query(text: str) -> bytes:
    """*text* as a psycopg query: a statement assembled here, values left as parameters.

    psycopg's ``Query`` is a ``LiteralString``, ``bytes`` or a
    :mod:`psycopg.sql` composition; statements built with f-strings from
    schema identifiers (never from users) are none of the first to a type
    checker, so they travel as UTF-8 bytes, which psycopg sends as they are.

    Examples
    --------
    >>> _query("SELECT 1")
    b'SELECT 1'
    """
    return text.encode()


def _connects_as_owner(url: str) -> bool:
    """Does *url* sign in as the owner of gridmap's tables, a member of it, or a superuser?

    True before the schema exists (whoever connects then is about to create it).
    """
    with _available(), psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT r.rolsuper OR c.oid IS NULL OR pg_has_role(current_user, c.relowner, 'USAGE') "
            "FROM pg_roles r LEFT JOIN pg_class c ON c.oid = to_regclass('users') "
            "WHERE r.rolname = current_user"
        ).fetchone()
    return bool(row and row[0])


def _first_row(
    conn: psycopg.Connection[Any], query: str | bytes, params: Sequence[Any] | None, *, raw: bool
) -> tuple[Any, ...] | None:
    """Execute *query* on *conn* and return its first row (``None`` without rows).

    *raw*: ``$n`` placeholders, sent as they are (``psycopg.RawCursor``).
    """
    cur = psycopg.RawCursor(conn) if raw else conn.cursor()
    cur.execute(query, params)
    return cur.fetchone() if cur.description else None


@contextmanager
def _available() -> Iterator[None]:
    """Turn a lost or unreachable server into :class:`StoreUnavailable`.

    ``psycopg.OperationalError`` covers a dropped connection (admin shutdown,
    crash), a server that is starting up, ``PoolTimeout`` and the transient
    conflicts (deadlock, serialization failure): all worth a retry. A
    statement cancelled by ``statement_timeout`` is a :class:`StatementTimeout`.
    """
    try:
        yield
    except psycopg.errors.QueryCanceled as exc:  # statement_timeout (or an operator's cancel)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        scope = cancel_scope()
        if scope is not None and scope.cancelled:  # interrupt_on_cancel: the client went away
            raise QueryCancelled(
                f"the request was cancelled (its client went away): {first[:200]}"
            ) from exc
        raise StatementTimeout(f"the database cancelled a statement: {first[:200]}") from exc
    except psycopg.OperationalError as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise StoreUnavailable(f"the database is unavailable: {first[:200]}") from exc


#: A pooled connection that came back within this many seconds skips the pool's
#: liveness round trip when a transaction takes it (:meth:`PostGISStore._begin`).
RECENT_S = 1.0


class MigrationsPending(GridmapError):
    """The schema is older than this gridmap and the connecting role may not upgrade it."""

    code = "migrations_pending"


class MissingPrivilege(GridmapError):
    """The role running ``gridmap init`` lacks a privilege a migration needs.

    The message names the migration, the privilege and the SQL that grants it.
    """

    code = "missing_privilege"


@contextmanager
def _privileged(conn: psycopg.Connection[Any], version: int, name: str) -> Iterator[None]:
    """Turn PostgreSQL's ``permission denied`` in a migration into :class:`MissingPrivilege`."""
    try:
        yield
    except psycopg.errors.InsufficientPrivilege as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        user = conn.info.user
        if "role" in first:  # create role / grant role (004 makes the application role)
            advice = (
                f"the database role {user!r} needs the CREATEROLE privilege (创建角色权限) to "
                "create the application role gridmap_app and make itself a member. As a "
                f'superuser run: ALTER ROLE "{user}" CREATEROLE; or create the role once '
                "yourself: CREATE ROLE gridmap_app NOLOGIN NOINHERIT; "
                f'GRANT gridmap_app TO "{user}" WITH ADMIN OPTION; then run gridmap init again'
            )
        elif "extension" in first:
            advice = (
                "PostGIS must be installed in the database by a superuser first: "
                "CREATE EXTENSION postgis; then run gridmap init again"
            )
        else:
            advice = (
                f"run gridmap init as the owner of the database and its schema "
                f"(connected as {user!r})"
            )
        raise MissingPrivilege(
            f"gridmap init: migration {version:03d}_{name} failed: {first}; {advice} "
            "(权限不足, 无法升级数据库结构)"
        ) from exc


def _partitioned(cur: psycopg.Cursor[Any], table: str) -> bool:
    """Is *table* partitioned (``events`` from migration 008 on)?"""
    row = cur.execute(
        "SELECT relkind = 'p' FROM pg_class WHERE oid = to_regclass(%s)", (table,)
    ).fetchone()
    return bool(row and row[0])


#: What the catalog said about ``events`` on a connection, once it reached its final
#: shape (partitioned, 008, with ``event_keys``, 016): ``(partitioned, keys)``.
_EVENTS_CATALOG: weakref.WeakKeyDictionary[psycopg.Connection[Any], tuple[bool, bool]] = (
    weakref.WeakKeyDictionary()
)


def _events_catalog(cur: psycopg.Cursor[Any]) -> tuple[bool, bool]:
    """``(partitioned, keys)``: is ``events`` partitioned (008), does ``event_keys`` exist (016)?

    Asked once per pooled connection, i.e. at most ``max_size`` times in a
    store's life instead of on every write. Only the final answer (both true)
    is kept: migrations only move forward and neither un-partitions ``events``
    nor drops ``event_keys``, while a store opened before ``gridmap init``
    upgraded its database must see the new shape on its next write. A restore
    of an older backup into a database that open stores keep using is the one
    case this misses (they must be restarted, as after any restore).
    """
    conn = cur.connection
    known = _EVENTS_CATALOG.get(conn)
    if known is not None:
        return known
    row = cur.execute(
        "SELECT coalesce((SELECT relkind = 'p' FROM pg_class WHERE oid = to_regclass('events')),"
        " false), to_regclass('event_keys') IS NOT NULL"
    ).fetchone()
    found = (bool(row and row[0]), bool(row and row[1]))
    if all(found):
        _EVENTS_CATALOG[conn] = found
    return found


def _conflict_clause(cur: psycopg.Cursor[Any], table: str, stage: str) -> str:
    """What makes a staged insert idempotent on ``source_key``.

    A partitioned ``events`` (008) is unique on ``(source_key, reported_at)``
    only, so a key stored in another month is no conflict there. With
    ``event_keys`` (016) the staged rows' keys are claimed first and the rows
    whose key was taken are dropped from *stage* (:func:`_claim_event_keys`);
    a store between 008 and 016 skips keys stored in any month with a
    ``NOT EXISTS`` probe, which two concurrent writers could both pass.
    """
    if table == "events":
        partitioned, keys = _events_catalog(cur)
    else:
        partitioned, keys = _partitioned(cur, table), False
    if not partitioned and table in _SELECT_HIDDEN:
        # Naming an arbiter makes PostgreSQL check the SELECT policy on the new
        # row, which the application role may append but not read (026); the
        # only unique keys of these tables are ``id`` and ``source_key``.
        return " ON CONFLICT DO NOTHING"
    if not partitioned:
        return " ON CONFLICT (source_key) DO NOTHING"
    if keys:
        _claim_event_keys(cur, stage)
        return " ON CONFLICT (source_key, reported_at) DO NOTHING"
    return (
        f" WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE t.source_key = {stage}.source_key)"
        " ON CONFLICT (source_key, reported_at) DO NOTHING"
    )


def _claim_event_keys(cur: psycopg.Cursor[Any], stage: str) -> int:
    """Claim the source keys of the staged events; drop the staged rows whose key is taken.

    ``gridmap_event_keys_claim`` (migration 016) inserts the keys into
    ``event_keys``, in key order, skipping those already there. A key another
    transaction claimed and has not committed yet makes this wait for it: then
    the key is taken (that writer stored the event) or free again (it rolled
    back). So of two concurrent writers of one event with different report
    times exactly one stores it; the other inserts nothing and sees no error.
    ``events`` is locked first in the mode the insert takes anyway (``ROW
    EXCLUSIVE``): a bulk load into the empty table locks ``events`` before
    adding keys, and taking the two locks in the same order keeps the two
    writers from deadlocking. Returns the number of staged rows dropped.
    """
    cur.execute("LOCK TABLE events IN ROW EXCLUSIVE MODE")
    res = cur.execute(
        _query(
            "WITH claimed AS MATERIALIZED ("
            f"SELECT k FROM gridmap_event_keys_claim(ARRAY(SELECT source_key FROM {stage})) AS k) "
            f"DELETE FROM {stage} s WHERE NOT EXISTS "
            "(SELECT 1 FROM claimed c WHERE c.k = s.source_key)"
        )
    )
    return int(res.rowcount)


def _ensure_partitions(cur: psycopg.Cursor[Any], table: str, frame: pd.DataFrame) -> None:
    """Create the monthly partitions of ``events`` that the rows of *frame* need.

    Rows of a month without a partition would land in the DEFAULT partition;
    creating the month first keeps them in their own (``gridmap_events_partition``,
    migration 008). Missing or unparsable report times stay in DEFAULT.
    Whether ``events`` is partitioned comes from :func:`_events_catalog`.
    """
    if table != "events" or "reported_at" not in frame or not _events_catalog(cur)[0]:
        return
    at = pd.to_datetime(frame["reported_at"], utc=True, errors="coerce").dropna()
    months = np.unique(at.dt.tz_localize(None).to_numpy().astype("datetime64[M]"))
    if len(months):
        cur.execute(
            "SELECT gridmap_events_ensure_partitions(%s::date[])",
            ([m.astype("datetime64[D]").item() for m in months],),
        )


def _fetch_all(conn: psycopg.Connection[Any]) -> Callable[[str], list[tuple[Any, ...]]]:
    return lambda query: list(conn.execute(_query(query)).fetchall())


def _update_many(conn: psycopg.Connection[Any]) -> Callable[[str, list[tuple[Any, ...]]], None]:
    def run(query: str, rows: list[tuple[Any, ...]]) -> None:
        with conn.cursor() as cur:
            cur.executemany(_query(query), rows)

    return run


def _arrow_chunk(layer: str, frame: pd.DataFrame) -> pa.Table:
    # write() kept the first row of each source key over the whole frame already
    schema, data, wkb = prepare_frame(layer, frame, dedupe=False)
    return to_arrow(schema, data, wkb, geometry="geometry")


def _can_freeze(cur: psycopg.Cursor[Any], table: str) -> bool:
    """Whether *table* (empty, locked) may be truncated and loaded with ``COPY … FREEZE``.

    Not a partitioned table (COPY FREEZE refuses those), not one that a foreign
    key points at (TRUNCATE refuses those), and only under READ COMMITTED, where
    no transaction snapshot is held (COPY FREEZE refuses "prior transaction activity").
    """
    row = cur.execute(
        "SELECT c.relkind = 'r' "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint f WHERE f.confrelid = c.oid) "
        "AND current_setting('transaction_isolation') = 'read committed' "
        "FROM pg_class c WHERE c.oid = %s::regclass",
        (table,),
    ).fetchone()
    return bool(row and row[0])


def _stage_type(schema: LayerSchema, column: str) -> str:
    if column == "source_key":
        return 'text COLLATE "C"'  # as stored (015): comparable with no collation conflict
    if column == "id":
        return "int8"
    if column == "geometry":
        return "bytea"
    return _PG_TYPES[schema.column(column).type]


def _column_values(s: pd.Series, name: str, schema: LayerSchema) -> list[Any]:
    """Python values for COPY: NA → None, numpy scalars → Python scalars (vectorized)."""
    ctype = (
        "int" if name == "id" else ("text" if name == "source_key" else schema.column(name).type)
    )
    if ctype in ("int", "float", "bool"):
        mask = s.isna().to_numpy()
        np_type = {"int": "int64", "float": "float64", "bool": "bool"}[ctype]
        values: list[Any] = s.to_numpy(dtype=np_type, na_value=0).tolist()
        for i in np.flatnonzero(mask):
            values[i] = None
        return values
    if ctype == "timestamp":
        return [None if pd.isna(v) else v.to_pydatetime() for v in s]
    if ctype == "text":
        return list(s.to_numpy(dtype=object))
    return [None if v is None or v is pd.NA else v for v in s]
