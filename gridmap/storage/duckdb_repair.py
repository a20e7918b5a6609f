"""Check and recover an embedded store's file: ``gridmap db check`` and ``gridmap db recover``.

:func:`check_file` opens the file the way every command does (a write-ahead
log left by a killed process is replayed and its R-tree indexes rebuilt, see
:func:`gridmap.storage.duckdb._attach`), reads every row of every table (DuckDB
verifies each block's checksum as it reads it) and compares what each R-tree
index finds with the rows it should hold.

:func:`recover_file` copies what is readable into a fresh file built by the
migrations, table by table (and, where a table cannot be read whole, range of
rows by range of rows), then swaps it in and keeps the old file (and its log)
beside it as ``<file>.broken-<time>``. It reads the old file read-only in a
DuckDB instance of its own, so a fatal error there never touches the new file.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from gridmap.common.errors import BadInput
from gridmap.security.privacy import Vault
from gridmap.storage._sql import migrations
from gridmap.storage.base import StoreInvalidated
from gridmap.storage.duckdb import (
    CATALOG,
    CONFIG,
    RTREE_REBUILD,
    DuckDBStore,
    first_lines,
    ident,
    is_fatal,
    leftover_wal,
    open_error,
    spatial_extension_path,
)

__all__ = ["FileCheck", "Recovery", "check_file", "embedded_file", "recover_file"]

#: Rows read at a time when a table cannot be copied whole.
_SALVAGE_ROWS = 2048
_RTREE_COLUMN = re.compile(r"USING\s+RTREE\s*\(\s*\"?(\w+)\"?\s*\)", re.I)


@dataclass
class FileCheck:
    """What :func:`check_file` found."""

    path: str
    wal_replayed: bool
    schema_version: int
    latest_version: int
    rows: dict[str, int] = field(default_factory=dict)
    rtrees: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: Damage: a table that cannot be read, an index that misses rows.
    problems: list[str] = field(default_factory=list)
    #: Advice that is no damage (an older schema).
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No table or index problem found."""
        return not self.problems


@dataclass
class Recovery:
    """What :func:`recover_file` copied, lost and kept."""

    path: str
    kept: str
    copied: dict[str, int] = field(default_factory=dict)
    lost: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def embedded_file(url: str) -> str | None:
    """The file of an embedded store URL (as ``open_store`` reads it); ``None`` for PostGIS.

    Examples
    --------
    >>> embedded_file("duckdb:////srv/gridmap.duckdb")
    '/srv/gridmap.duckdb'
    >>> embedded_file("postgresql://localhost/gridmap") is None
    True
    """
    if url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        return None
    path = url.removeprefix("duckdb://")
    if path.startswith("//") and url.startswith("duckdb:///"):
        path = path[1:]
    if path == ":memory:":
        raise BadInput("an in-memory store has no file to check or recover", field="database_url")
    return path


def _latest() -> int:
    return max((m.version for m in migrations("duckdb")), default=0)


def _root() -> duckdb.DuckDBPyConnection:
    root = duckdb.connect(":memory:", config=CONFIG)
    root.execute(f"LOAD '{spatial_extension_path()}'")
    return root


def _quoted(path: str) -> str:
    return "'" + path.replace("'", "''") + "'"


def check_file(path: str | Path) -> FileCheck:
    """Open the store file *path* and validate every table and R-tree index.

    Raises :class:`~gridmap.storage.base.StoreBusy` while another process
    holds the file and :class:`~gridmap.storage.base.StoreInvalidated` when
    DuckDB cannot open it (then only :func:`recover_file` can help).
    """
    key = os.path.realpath(path)
    if not Path(key).is_file():
        raise BadInput(f"no database file {key}", field="database_url")
    replayed = leftover_wal(key)
    try:
        store = DuckDBStore(key)
    except StoreInvalidated as exc:
        report = FileCheck(key, replayed, -1, _latest())
        why = first_lines(exc.__cause__) if exc.__cause__ is not None else exc.message
        report.problems.append(f"the file cannot be opened: {why}")
        return report
    try:
        report = FileCheck(key, replayed, store.schema_version(), _latest())
        _check_tables(store._new_cursor(), report)
    except StoreInvalidated as exc:
        report = FileCheck(key, replayed, -1, _latest())
        report.problems.append(exc.message)
    finally:
        store.close()
    if 0 <= report.schema_version < report.latest_version:
        report.notes.append(
            f"schema version {report.schema_version} is older than this gridmap's "
            f"({report.latest_version}): run `gridmap init`"
        )
    return report


def _check_tables(cur: duckdb.DuckDBPyConnection, report: FileCheck) -> None:
    try:
        _check_each(cur, report)
    except _Invalidated as exc:
        report.problems.append(
            f"DuckDB invalidated the database while checking it: {first_lines(exc.args[0])}"
        )


class _Invalidated(Exception):
    """DuckDB's instance is invalid: the check cannot go on."""


def _check_each(cur: duckdb.DuckDBPyConnection, report: FileCheck) -> None:
    tables = [
        str(r[0])
        for r in cur.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = ? ORDER BY 1",
            [CATALOG],
        ).fetchall()
    ]
    for table in tables:
        try:
            rows = 0
            for batch in cur.execute(f"SELECT * FROM {ident(table)}").to_arrow_reader(65536):
                rows += batch.num_rows
            report.rows[table] = rows
        except duckdb.Error as exc:
            if is_fatal(exc):
                raise _Invalidated(exc) from exc
            report.problems.append(f"table {table} cannot be read: {first_lines(exc)}")
    if RTREE_REBUILD in report.rows:
        report.problems.append("R-tree indexes were left half rebuilt")
    indexes = cur.execute(
        "SELECT index_name, table_name, sql FROM duckdb_indexes() "
        "WHERE database_name = ? AND sql ILIKE '%USING RTREE%' ORDER BY 1",
        [CATALOG],
    ).fetchall()
    for name, table, sql in indexes:
        match = _RTREE_COLUMN.search(str(sql))
        if match is None or table not in report.rows:
            continue
        col = ident(match.group(1))
        try:
            pair = _rtree_counts(cur, table, col)
        except duckdb.Error as exc:
            if is_fatal(exc):
                raise _Invalidated(exc) from exc
            report.problems.append(f"R-tree index {name} cannot be read: {first_lines(exc)}")
            continue
        report.rtrees[str(name)] = pair
        if pair[0] != pair[1]:
            report.problems.append(
                f"R-tree index {name} finds {pair[0]} of the {pair[1]} geometries of {table}"
            )


def _rtree_counts(cur: duckdb.DuckDBPyConnection, table: str, col: str) -> tuple[int, int]:
    """(rows the R-tree finds in the whole plane, non-empty geometries of *table*)."""
    found = cur.execute(
        f"SELECT count(*) FROM {ident(table)} "
        f"WHERE ST_Intersects({col}, ST_MakeEnvelope(-1e300, -1e300, 1e300, 1e300))"
    ).fetchone()
    held = cur.execute(
        f"SELECT count(*) FILTER (WHERE {col} IS NOT NULL AND NOT ST_IsEmpty({col})) "
        f"FROM {ident(table)}"
    ).fetchone()
    return (int(found[0]) if found else 0, int(held[0]) if held else 0)


def recover_file(path: str | Path, *, vault: Vault | None = None) -> Recovery:
    """Copy what is readable of the store file *path* into a fresh file and swap it in.

    *vault* holds the data key (``GRIDMAP_DATA_KEY``) the migrations after the old
    file's version encrypt with (025 encrypts events' reporters and contacts).

    The old file is never written to. It (and its write-ahead log, if any) is renamed
    ``<file>.broken-<YYYYmmddTHHMMSS>`` and kept. Fails with
    :class:`~gridmap.storage.base.StoreBusy` while another process holds it.
    """
    key = os.path.realpath(path)
    if not Path(key).is_file():
        raise BadInput(f"no database file {key}", field="database_url")
    notes: list[str] = []
    fresh = f"{key}.recovering"
    for leftover in (fresh, fresh + ".wal"):
        Path(leftover).unlink(missing_ok=True)
    recovery = Recovery(key, f"{key}.broken-{datetime.now():%Y%m%dT%H%M%S}", notes=notes)
    # The old file is only read, read-only (its log replayed in memory; full
    # scans never bind an index), and kept as it is. Its shared lock keeps a
    # server from opening it meanwhile.
    source = _Source.open(key, notes)
    try:
        version = source.schema_version()
        target = DuckDBStore(fresh)
        try:
            target.migrate(target=version)
        finally:
            target.close()
        _copy_all(source, fresh, recovery)
    except BaseException:
        Path(fresh).unlink(missing_ok=True)
        Path(fresh + ".wal").unlink(missing_ok=True)
        raise
    finally:
        source.close()
    store = DuckDBStore(fresh, vault=vault)  # then the migrations after the old file's version
    try:
        store.migrate()
    finally:
        store.close()
    os.replace(key, recovery.kept)
    if Path(key + ".wal").exists():
        os.replace(key + ".wal", recovery.kept + ".wal")
    os.replace(fresh, key)
    return recovery


class _Source:
    """The old file attached read-only as ``src`` in a DuckDB instance of its own.

    After a fatal error DuckDB's instance is invalid: :meth:`reopen` starts
    another one, so the copy goes on with the next rows.
    """

    def __init__(self, path: str, root: duckdb.DuckDBPyConnection) -> None:
        self.path = path
        self.root = root

    @classmethod
    def open(cls, key: str, notes: list[str]) -> _Source:
        """The file with its write-ahead log replayed; failing that, a copy without it."""
        try:
            return cls(key, cls._attach(key))
        except duckdb.Error as exc:
            if "Could not set lock" in str(exc):
                raise open_error(key, exc) from exc
            notes.append(f"reading the file with its write-ahead log failed: {first_lines(exc)}")
        copy = f"{key}.salvage"
        shutil.copyfile(key, copy)
        Path(copy + ".wal").unlink(missing_ok=True)
        try:
            source = cls(copy, cls._attach(copy))
        except duckdb.Error as exc:
            Path(copy).unlink(missing_ok=True)
            raise StoreInvalidated(
                f"the database file {key} cannot be read at all ({first_lines(exc)}); "
                "restore a backup (`gridmap restore FILE`)"
            ) from exc
        notes.append(
            "writes after the file's last checkpoint (in its write-ahead log) are lost; "
            "the log is kept with the old file"
        )
        return source

    @staticmethod
    def _attach(path: str) -> duckdb.DuckDBPyConnection:
        root = _root()
        try:
            root.execute(f"ATTACH {_quoted(path)} AS src (READ_ONLY)")
        except BaseException:
            root.close()
            raise
        return root

    def reopen(self) -> None:
        with contextlib.suppress(duckdb.Error):
            self.root.close()
        self.root = self._attach(self.path)

    def close(self) -> None:
        try:
            self.root.close()
        finally:
            if self.path.endswith(".salvage"):
                Path(self.path).unlink(missing_ok=True)

    def schema_version(self) -> int:
        try:
            row = self.root.execute(
                "SELECT coalesce(max(version), 0) FROM src.schema_migrations"
            ).fetchone()
        except duckdb.Error as exc:
            raise BadInput(
                f"{self.path} is not a gridmap store, or its schema_migrations cannot be read: "
                f"{first_lines(exc)}"
            ) from None
        return int(row[0]) if row else 0

    def read(self, sql: str) -> pa.Table:
        """Run *sql*; a fatal error reopens the instance before it is raised again."""
        try:
            return self.root.execute(sql).to_arrow_table()
        except duckdb.Error as exc:
            if is_fatal(exc):
                self.reopen()
            raise


def _columns(root: duckdb.DuckDBPyConnection, database: str) -> dict[str, dict[str, str]]:
    """The columns of each table of *database*: {table: {column: type}}, in order."""
    out: dict[str, dict[str, str]] = {}
    for table, column, dtype in root.execute(
        "SELECT table_name, column_name, data_type FROM duckdb_columns() "
        "WHERE database_name = ? ORDER BY table_name, column_index",
        [database],
    ).fetchall():
        out.setdefault(str(table), {})[str(column)] = str(dtype)
    return out


def _copy_all(source: _Source, fresh: str, recovery: Recovery) -> None:
    """Copy every table of the old file that the schema has, then move the sequences on."""
    dst = _root()
    try:
        dst.execute(f"ATTACH {_quoted(fresh)} AS dst")
        theirs = _columns(source.root, "src")
        ours = _columns(dst, "dst")
        for table, src_cols in theirs.items():
            if table == RTREE_REBUILD:
                continue
            if table not in ours:
                recovery.notes.append(f"table {table} is not in gridmap's schema: not copied")
                continue
            cols = [c for c in ours[table] if c in src_cols]
            geo = {c for c in cols if src_cols[c].upper().startswith("GEOMETRY")}
            copied, lost = _copy_table(source, dst, table, cols, geo)
            recovery.copied[table] = copied
            if lost:
                recovery.lost[table] = lost
        _move_sequences(source, dst)
        dst.execute("CHECKPOINT dst")
    finally:
        dst.close()


def _copy_table(
    source: _Source,
    dst: duckdb.DuckDBPyConnection,
    table: str,
    cols: list[str],
    geo: set[str],
) -> tuple[int, int]:
    """Copy *cols* of *table*: whole, else range of rows by range; (copied, lost) rows."""
    select = ", ".join(
        f"ST_AsWKB({ident(c)}) AS {ident(c)}" if c in geo else ident(c) for c in cols
    )
    base = f"SELECT {select} FROM src.{ident(table)}"
    try:
        return _insert(dst, table, cols, geo, source.read(base)), 0
    except duckdb.Error:
        pass
    try:
        top = source.read(f"SELECT max(rowid) AS top FROM src.{ident(table)}").column(0)[0]
        last = int(top.as_py()) if top.is_valid else -1
    except duckdb.Error:
        return 0, 0  # not even its row ids: nothing known to copy
    copied = lost = 0
    for start in range(0, last + 1, _SALVAGE_ROWS):
        where = f" WHERE rowid >= {start} AND rowid < {start + _SALVAGE_ROWS}"
        try:
            copied += _insert(dst, table, cols, geo, source.read(base + where))
        except duckdb.Error:
            lost += _SALVAGE_ROWS if start + _SALVAGE_ROWS <= last + 1 else last + 1 - start
    return copied, lost


def _insert(
    dst: duckdb.DuckDBPyConnection, table: str, cols: list[str], geo: set[str], rows: pa.Table
) -> int:
    if rows.num_rows == 0:
        return 0
    # GeoArrow metadata dropped: the WKB goes in as bytes, turned into geometry below.
    rows = pa.table(
        {
            name: rows.column(i)
            .combine_chunks()
            .cast(pa.binary() if name in geo else rows.schema.field(i).type)
            for i, name in enumerate(rows.column_names)
        }
    )
    values = ", ".join(f"ST_GeomFromWKB({ident(c)})" if c in geo else ident(c) for c in cols)
    dst.register("_recover_rows", rows)
    try:
        dst.execute(
            f"INSERT OR IGNORE INTO dst.{ident(table)} ({', '.join(ident(c) for c in cols)}) "
            f"SELECT {values} FROM _recover_rows"
        )
    finally:
        dst.unregister("_recover_rows")
    return int(rows.num_rows)


def _move_sequences(source: _Source, dst: duckdb.DuckDBPyConnection) -> None:
    """Each ``<table>_id_seq`` of the new file past the old sequence and the copied ids."""
    try:
        old = dict(
            source.root.execute(
                "SELECT sequence_name, coalesce(last_value, 0) FROM duckdb_sequences() "
                "WHERE database_name = 'src'"
            ).fetchall()
        )
    except duckdb.Error:
        old = {}
    tables = {
        str(t)
        for (t,) in dst.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = 'dst'"
        ).fetchall()
    }
    dst.execute("USE dst")
    for name, current in dst.execute(
        "SELECT sequence_name, coalesce(last_value, 0) FROM duckdb_sequences() "
        "WHERE database_name = 'dst'"
    ).fetchall():
        goal = int(old.get(name, 0) or 0)
        table = str(name).removesuffix("_id_seq")
        if table in tables:
            row = dst.execute(f"SELECT coalesce(max(id), 0) FROM {ident(table)}").fetchone()
            goal = max(goal, int(row[0]) if row else 0)
        if goal > int(current):
            dst.execute(f"SELECT max(nextval('{name}')) FROM range(?)", [goal - int(current)])
