"""The embedded store: one DuckDB file with the ``spatial`` extension.

The extension is loaded from the ``duckdb-extension-spatial`` wheel installed
next to DuckDB, so nothing is ever downloaded. Geometry columns carry R-tree
indexes.
"""

from __future__ import annotations

import contextvars
import os
import shutil
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import duckdb
import geopandas as gpd
import pandas as pd
import pyarrow as pa

from gridmap.errors import BadInput
from gridmap.model import LayerSchema, layer_schema
from gridmap.storage._sql import migrations, quote, where_sql
from gridmap.storage.base import ARROW_TYPES as _ARROW
from gridmap.storage.base import (
    BBox,
    StoreReads,
    Where,
    WriteResult,
    area_setting,
    check_bbox,
    check_paging,
    check_writable,
    frame_from_rows,
    prepare_frame,
    prepare_update,
    tile_columns,
    tile_filter_box,
    to_arrow,
)
from gridmap.storage.cql import CqlFilter, filter_sql

__all__ = ["DuckDBStore", "spatial_extension_path"]


_BBOX_SQL = "ST_Intersects(geometry, ST_MakeEnvelope(?, ?, ?, ?))"


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


#: Name of every attached database file inside its DuckDB instance.
_CATALOG = "gridmap"
_CONFIG: dict[str, str | bool | int | float | list[str]] = {"autoinstall_known_extensions": "false"}


@dataclass
class _Instance:
    """The DuckDB instance holding one attached database file, and how many stores use it."""

    root: duckdb.DuckDBPyConnection
    users: int = 0


# One DuckDB instance per database file in this process, shared by the stores
# that open it (as duckdb.connect(path) shares one), by real path.
_FILES: dict[str, _Instance] = {}
_FILES_LOCK = threading.Lock()


def _use(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """*con* (a new cursor) pointed at the attached file, not the instance's in-memory default."""
    con.execute(f"USE {_CATALOG}")
    return con


def _open_file(path: str, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A connection to the database file *path* with the spatial extension loaded first.

    ``duckdb.connect(path)`` reads the file before ``LOAD spatial`` can run, so
    the file's R-tree indexes come up unbound and DuckDB buffers appends for
    them until it binds them; DuckDB 1.5.5 then failed inside the R-tree's
    append with "INTERNAL Error: Operation requires a flat vector" (its
    database invalidated) on real imports into some files (seen with
    ``patrol_demo.duckdb`` and ``assessment.duckdb``, not reproducibly).
    Loading the extension into an empty instance and then attaching the file
    has the indexes bound from the start.
    """
    key = os.path.realpath(path)
    with _FILES_LOCK:
        entry = _FILES.get(key)
        if entry is None:
            root = duckdb.connect(":memory:", config=_CONFIG)
            try:
                root.execute(f"LOAD '{spatial_extension_path()}'")
                quoted = "'" + key.replace("'", "''") + "'"
                root.execute(f"ATTACH {quoted} AS {_CATALOG}{' (READ_ONLY)' if read_only else ''}")
            except BaseException:
                root.close()
                raise
            entry = _FILES[key] = _Instance(root)
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
            entry.root.close()


class DuckDBStore(StoreReads):
    """Store layers in one DuckDB database file (or in memory).

    Parameters
    ----------
    path : str or Path
        Database file, or ``":memory:"``.

    Examples
    --------
    >>> store = DuckDBStore(":memory:")
    >>> store.migrate() >= 1
    True
    """

    dialect: Literal["postgis", "duckdb"] = "duckdb"

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.url = self.path if self.path == ":memory:" else f"duckdb:///{self.path}"
        if self.path == ":memory:":
            self._con = duckdb.connect(self.path, config=_CONFIG)
            self._con.execute(f"LOAD '{spatial_extension_path()}'")
        else:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._con = _open_file(self.path)
        self._closed = False
        # One writer at a time; readers use their own cursors.
        self._lock = threading.RLock()
        self._tx: contextvars.ContextVar[duckdb.DuckDBPyConnection | None] = contextvars.ContextVar(
            f"gridmap_duckdb_tx_{id(self)}", default=None
        )
        self._areas: contextvars.ContextVar[str | None] = contextvars.ContextVar(
            f"gridmap_duckdb_areas_{id(self)}", default=None
        )

    # -- connections -------------------------------------------------------
    def _new_cursor(self) -> duckdb.DuckDBPyConnection:
        cur = self._con.cursor()
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
        with self._lock:
            cur = self._new_cursor()
            cur.execute("BEGIN TRANSACTION")
            token = self._tx.set(cur)
            try:
                yield
            except BaseException:
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

    def migrate(self, *, target: int | None = None) -> int:
        """Apply pending migrations up to *target* (default: all), each in a transaction."""
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
                    cur.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
                        [mig.version, mig.name],
                    )
                except BaseException:
                    cur.execute("ROLLBACK")
                    raise
                cur.execute("COMMIT")
            return self.schema_version()

    # -- writes ------------------------------------------------------------
    def write(
        self, layer: str, frame: pd.DataFrame, *, mode: Literal["append", "replace"] = "append"
    ) -> WriteResult:
        """Insert rows not yet stored (by ``source_key``); ``replace`` empties the layer first."""
        schema, data, wkb = prepare_frame(layer, frame)
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

    def update(self, layer: str, frame: pd.DataFrame, *, where: Where | None = None) -> int:
        """Set columns on the rows with the given ids (and *where*); return rows changed."""
        schema, data = prepare_update(layer, frame)
        check_writable(schema)
        cols = [c for c in data.columns if c != "id"]
        if data.empty or not cols:
            return 0
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

    def delete(self, layer: str, *, where: Where | None = None) -> int:
        """Delete matching rows; return how many."""
        schema = layer_schema(layer)
        check_writable(schema)
        clause, params = where_sql(schema, dict(where or {}), placeholder="?")
        with self.transaction():
            cur = self._cursor()
            before = self._count(cur, schema.name)
            cur.execute(f"DELETE FROM {schema.name}{clause}", params)
            return before - self._count(cur, schema.name)

    # -- reads -------------------------------------------------------------
    def read(
        self,
        layer: str,
        *,
        bbox: BBox | None = None,
        where: Where | None = None,
        ids: Sequence[int] | None = None,
        limit: int | None = None,
        offset: int = 0,
        cql: CqlFilter | None = None,
    ) -> gpd.GeoDataFrame | pd.DataFrame:
        """Rows ordered by id, filtered by bbox (intersects), ids, equality and CQL2 filters."""
        schema = layer_schema(layer)
        check_paging(limit, offset)
        clause, params = self._where(schema, where, ids, bbox, cql)
        cols = ["id", *schema.column_names]
        select = [quote(c) for c in cols]
        if schema.geometry_type:
            cols.append("geometry")
            select.append("ST_AsWKB(geometry)")
        sql = f"SELECT {', '.join(select)} FROM {schema.name}{clause} ORDER BY id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        if offset:
            sql += f" OFFSET {int(offset)}"
        rows = self._cursor().execute(sql, params).fetchall()
        return frame_from_rows(schema, cols, rows)

    def count(
        self,
        layer: str,
        *,
        bbox: BBox | None = None,
        where: Where | None = None,
        cql: CqlFilter | None = None,
    ) -> int:
        """Number of matching rows."""
        schema = layer_schema(layer)
        clause, params = self._where(schema, where, None, bbox, cql)
        row = (
            self._cursor().execute(f"SELECT count(*) FROM {schema.name}{clause}", params).fetchone()
        )
        return int(row[0]) if row else 0

    def tile(
        self,
        layer: str,
        z: int,
        x: int,
        y: int,
        *,
        where: Where | None = None,
        cql: CqlFilter | None = None,
        properties: Sequence[str] = (),
        extent: int = 4096,
        buffer: int = 64,
    ) -> bytes:
        """A Mapbox Vector Tile of *layer* (spatial extension's ``ST_AsMVT``); ``b""`` if empty."""
        schema = layer_schema(layer)
        if not schema.geometry_type:
            raise BadInput(f"layer {layer!r} has no geometry", field="layer")
        merc, box = tile_filter_box(z, x, y, extent, buffer)
        clause, params = self._where(schema, where, None, box, cql, alias="t")
        cols = ["t.id AS id"] + [
            f"{_tile_value(quote(c), ctype)} AS {quote(c)}"
            for c, ctype in tile_columns(schema, properties)
        ]
        sql = (
            f"SELECT ST_AsMVT(q, ?, ?, 'geom', 'id') FROM ("
            # Clipped first, then encoded unclipped: the extension's own clipping
            # fails on some valid polygons ("unable to assign free hole").
            f"SELECT {', '.join(cols)}, ST_AsMVTGeom(ST_CollectionExtract(ST_Intersection("
            "ST_Transform(CASE WHEN ST_IsValid(t.geometry) THEN t.geometry "
            "ELSE ST_MakeValid(t.geometry) END, 'EPSG:4326', 'EPSG:3857', always_xy := true), "
            "ST_MakeEnvelope(?, ?, ?, ?)), ST_Dimension(t.geometry) + 1), "
            "ST_Extent(ST_TileEnvelope(?, ?, ?)), ?, ?, false) AS geom "
            f"FROM {schema.name} t{clause}) q "
            "WHERE q.geom IS NOT NULL AND NOT ST_IsEmpty(q.geom) HAVING count(*) > 0"
        )
        args = [
            schema.name,
            int(extent),
            *merc,
            int(z),
            int(x),
            int(y),
            int(extent),
            int(buffer),
            *params,
        ]
        row = self._cursor().execute(sql, args).fetchone()
        return bytes(row[0]) if row and row[0] is not None else b""

    def bounds(self, layer: str) -> BBox | None:
        """Extent of the layer, ``None`` when empty or without geometry."""
        schema = layer_schema(layer)
        if not schema.geometry_type:
            return None
        row = (
            self._cursor()
            .execute(
                f"SELECT min(ST_XMin(geometry)), min(ST_YMin(geometry)), "
                f"max(ST_XMax(geometry)), max(ST_YMax(geometry)) FROM {schema.name}"
            )
            .fetchone()
        )
        if not row or row[0] is None:
            return None
        return (float(row[0]), float(row[1]), float(row[2]), float(row[3]))

    def sql(self, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run read-only SQL (for tests and benchmarks); values bound as parameters."""
        return self._cursor().execute(query, list(params)).fetchall()

    def close(self) -> None:
        """Close the database (the file's instance closes with its last store)."""
        if self.path == ":memory:":
            self._con.close()
        elif not self._closed:
            self._closed = True
            _close_file(self.path, self._con)

    # -- backup (``gridmap backup`` / ``gridmap restore``) -------------------
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
        except duckdb.Error as exc:
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

    def _where(
        self,
        schema: LayerSchema,
        where: Where | None,
        ids: Sequence[int] | None,
        bbox: BBox | None,
        cql: CqlFilter | None = None,
        *,
        alias: str = "",
    ) -> tuple[str, list[Any]]:
        box = check_bbox(bbox)
        bbox_sql = _BBOX_SQL if box and schema.geometry_type else None
        if bbox_sql and alias:
            bbox_sql = bbox_sql.replace("(geometry", f"({alias}.geometry")
        clause, params = where_sql(
            schema,
            dict(where or {}),
            ids=ids,
            bbox_sql=bbox_sql,
            bbox=box,
            placeholder="?",
            alias=alias,
        )
        if cql is not None:
            sql, extra = filter_sql(cql, schema, dialect="duckdb", alias=alias)
            clause = f"{clause} AND {sql}" if clause else f" WHERE {sql}"
            params.extend(extra)
        return clause, params


def _tile_value(col: str, ctype: str) -> str:
    """A tile property: numbers and booleans as they are, everything else as text."""
    if ctype in ("text", "int", "float", "bool"):
        return f"t.{col}"
    if ctype == "timestamp":
        return f"strftime(timezone('UTC', t.{col}), '%Y-%m-%dT%H:%M:%SZ')"
    if ctype == "text[]":
        return f"array_to_string(t.{col}, ',')"
    return f"CAST(t.{col} AS VARCHAR)"


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
