"""The production store: PostgreSQL + PostGIS through psycopg 3 and a connection pool.

Bulk loads use binary ``COPY`` into a temporary staging table, then one
``INSERT … SELECT … ON CONFLICT (source_key) DO NOTHING``: fast, idempotent and
atomic. Geometry columns carry GiST indexes; the schema is versioned
(``schema_migrations``) and upgraded in place by :meth:`PostGISStore.migrate`.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
from psycopg import sql as psql
from psycopg_pool import ConnectionPool

from gridmap.errors import NotFound
from gridmap.model import LayerSchema, layer_schema
from gridmap.storage._sql import migrations, quote, where_sql
from gridmap.storage.base import (
    BBox,
    Where,
    WriteResult,
    check_bbox,
    frame_from_rows,
    prepare_frame,
    prepare_update,
)

__all__ = ["PostGISStore"]

_PG_TYPES = {
    "text": "text",
    "int": "int8",
    "float": "float8",
    "bool": "bool",
    "timestamp": "timestamptz",
    "date": "date",
    "text[]": "text[]",
}
_BBOX_SQL = "geometry && ST_MakeEnvelope(%s, %s, %s, %s, 4326)"
_COPY_CHUNK = 50_000


class PostGISStore:
    """Store layers in PostgreSQL/PostGIS.

    Parameters
    ----------
    url : str
        A libpq URL, ``postgresql://user:password@host:port/dbname``.
    min_size, max_size : int
        Connection pool bounds.

    Examples
    --------
    >>> store = PostGISStore("postgresql://gridmap@127.0.0.1:5432/gridmap")  # doctest: +SKIP
    >>> store.migrate()  # doctest: +SKIP
    2
    """

    dialect: Literal["postgis", "duckdb"] = "postgis"

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 8) -> None:
        self.url = url
        self._pool = ConnectionPool(
            url, min_size=min_size, max_size=max_size, open=True, kwargs={"autocommit": False}
        )
        self._tx: contextvars.ContextVar[psycopg.Connection[Any] | None] = contextvars.ContextVar(
            f"gridmap_pg_tx_{id(self)}", default=None
        )

    # -- connections -------------------------------------------------------
    @contextmanager
    def _conn(self) -> Iterator[psycopg.Connection[Any]]:
        tx = self._tx.get()
        if tx is not None:
            yield tx
            return
        with self._pool.connection() as conn:  # commits on success, rolls back on error
            yield conn

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes into one transaction (nested blocks join the outer one)."""
        if self._tx.get() is not None:
            yield
            return
        with self._pool.connection() as conn:
            token = self._tx.set(conn)
            try:
                with conn.transaction():
                    yield
            finally:
                self._tx.reset(token)

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
        never re-run, so data is kept across upgrades.
        """
        with self._pool.connection() as conn:
            with conn.transaction():
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
                    with conn.transaction():
                        conn.execute(mig.sql.encode("utf-8"))  # type: ignore[call-overload]
                        conn.execute(
                            "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                            (mig.version, mig.name),
                        )
        return self.schema_version()

    # -- writes ------------------------------------------------------------
    def write(
        self, layer: str, frame: pd.DataFrame, *, mode: Literal["append", "replace"] = "append"
    ) -> WriteResult:
        """Binary-COPY the rows into a staging table and insert those not yet stored."""
        schema, data, wkb = prepare_frame(layer, frame)
        cols = ["source_key", *(["id"] if "id" in data else []), *schema.column_names]
        types = ["text", *(["int8"] if "id" in data else [])]
        types += [_PG_TYPES[c.type] for c in schema.columns]
        stage = f"_stage_{schema.name}"
        stage_cols = [*cols, *(["wkb"] if wkb is not None else [])]
        stage_types = [*types, *(["bytea"] if wkb is not None else [])]
        target = [quote(c) for c in cols]
        select = [quote(c) for c in cols]
        if wkb is not None:
            target.append("geometry")
            select.append("ST_GeomFromWKB(wkb, 4326)")
        with self.transaction(), self._conn() as conn:
            if mode == "replace":
                conn.execute(f"DELETE FROM {schema.name}".encode())  # type: ignore[call-overload]
            ddl = ", ".join(f"{quote(c)} {t}" for c, t in zip(stage_cols, stage_types, strict=True))
            conn.execute(f"CREATE TEMP TABLE {stage} ({ddl}) ON COMMIT DROP".encode())  # type: ignore[call-overload]
            columns = [_column_values(data[c], c, schema) for c in cols]
            if wkb is not None:
                columns.append(list(wkb))
            with conn.cursor() as cur:
                copy_sql = f"COPY {stage} ({', '.join(map(quote, stage_cols))}) FROM STDIN (FORMAT BINARY)"
                with cur.copy(copy_sql.encode()) as copy:  # type: ignore[call-overload]
                    copy.set_types(stage_types)
                    for row in zip(*columns, strict=True):
                        copy.write_row(row)
                res = cur.execute(
                    (
                        f"INSERT INTO {schema.name} ({', '.join(target)}) "
                        f"SELECT {', '.join(select)} FROM {stage} "
                        "ON CONFLICT (source_key) DO NOTHING"
                    ).encode()  # type: ignore[call-overload]
                )
                inserted = res.rowcount
                if "id" in data:
                    cur.execute(
                        f"SELECT setval(pg_get_serial_sequence('{schema.name}', 'id'), "
                        f"(SELECT coalesce(max(id), 1) FROM {schema.name}))".encode()  # type: ignore[call-overload]
                    )
            conn.execute(f"DROP TABLE {stage}".encode())  # type: ignore[call-overload]
        return WriteResult(offered=len(frame), inserted=max(inserted, 0))

    def update(self, layer: str, frame: pd.DataFrame) -> int:
        """COPY (id, values) into a staging table and UPDATE … FROM it; return rows changed."""
        schema, data = prepare_update(layer, frame)
        cols = [c for c in data.columns if c != "id"]
        if data.empty or not cols:
            return 0
        types = ["int8", *(_PG_TYPES[schema.column(c).type] for c in cols)]
        stage = f"_upd_{schema.name}"
        ddl = ", ".join(f"{quote(c)} {t}" for c, t in zip(["id", *cols], types, strict=True))
        sets = ", ".join(f"{quote(c)} = u.{quote(c)}" for c in cols)
        with self.transaction(), self._conn() as conn, conn.cursor() as cur:
            cur.execute(f"CREATE TEMP TABLE {stage} ({ddl}) ON COMMIT DROP".encode())  # type: ignore[call-overload]
            columns = [_column_values(data[c], c, schema) for c in ["id", *cols]]
            copy_sql = f"COPY {stage} ({', '.join(map(quote, ['id', *cols]))}) FROM STDIN (FORMAT BINARY)"
            with cur.copy(copy_sql.encode()) as copy:  # type: ignore[call-overload]
                copy.set_types(types)
                for row in zip(*columns, strict=True):
                    copy.write_row(row)
            res = cur.execute(
                f"UPDATE {schema.name} t SET {sets} FROM {stage} u WHERE t.id = u.id".encode()  # type: ignore[call-overload]
            )
            changed = int(res.rowcount)
            cur.execute(f"DROP TABLE {stage}".encode())  # type: ignore[call-overload]
        return changed

    def delete(self, layer: str, *, where: Where | None = None) -> int:
        """Delete matching rows; return how many."""
        schema = layer_schema(layer)
        clause, params = where_sql(schema, dict(where or {}))
        with self._conn() as conn:
            cur = conn.execute(f"DELETE FROM {schema.name}{clause}".encode(), params)  # type: ignore[call-overload]
            return int(cur.rowcount)

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
    ) -> gpd.GeoDataFrame | pd.DataFrame:
        """Rows ordered by id, filtered by bbox (intersects), ids and equality filters."""
        schema = layer_schema(layer)
        clause, params = self._where(schema, where, ids, bbox)
        cols = ["id", *schema.column_names]
        select = [quote(c) for c in cols]
        if schema.geometry_type:
            cols.append("geometry")
            select.append("ST_AsBinary(geometry)")
        query = f"SELECT {', '.join(select)} FROM {schema.name}{clause} ORDER BY id"
        if limit is not None:
            query += f" LIMIT {int(limit)}"
        if offset:
            query += f" OFFSET {int(offset)}"
        with self._conn() as conn:
            rows = conn.execute(query.encode(), params).fetchall()  # type: ignore[call-overload]
        return frame_from_rows(schema, cols, rows)

    def count(self, layer: str, *, bbox: BBox | None = None, where: Where | None = None) -> int:
        """Number of matching rows."""
        schema = layer_schema(layer)
        clause, params = self._where(schema, where, None, bbox)
        with self._conn() as conn:
            row = conn.execute(f"SELECT count(*) FROM {schema.name}{clause}".encode(), params).fetchone()  # type: ignore[call-overload]
        return int(row[0]) if row else 0

    def get(self, layer: str, id: int) -> gpd.GeoDataFrame | pd.DataFrame:
        """One row by id; ``NotFound`` if there is none."""
        out = self.read(layer, ids=[id])
        if out.empty:
            raise NotFound(f"{layer} {id} not found")
        return out

    def bounds(self, layer: str) -> BBox | None:
        """Extent of the layer, ``None`` when empty or without geometry."""
        schema = layer_schema(layer)
        if not schema.geometry_type:
            return None
        with self._conn() as conn:
            row = conn.execute(
                psql.SQL(
                    "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) "
                    "FROM (SELECT ST_Extent(geometry) AS e FROM {}) s"
                ).format(psql.Identifier(schema.name))
            ).fetchone()
        if not row or row[0] is None:
            return None
        return (float(row[0]), float(row[1]), float(row[2]), float(row[3]))

    def sql(self, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run SQL for tests and benchmarks; values bound as parameters."""
        with self._conn() as conn:
            cur = conn.execute(query.encode(), list(params))  # type: ignore[call-overload]
            return list(cur.fetchall()) if cur.description else []

    def close(self) -> None:
        """Close the pool."""
        self._pool.close()

    def _where(
        self, schema: LayerSchema, where: Where | None, ids: Sequence[int] | None, bbox: BBox | None
    ) -> tuple[str, list[Any]]:
        box = check_bbox(bbox)
        bbox_sql = None
        if box and schema.geometry_type:
            bbox_sql = _BBOX_SQL + " AND ST_Intersects(geometry, ST_MakeEnvelope(%s, %s, %s, %s, 4326))"
        clause, params = where_sql(schema, dict(where or {}), ids=ids, bbox_sql=bbox_sql, bbox=box)
        if box and bbox_sql:
            params.extend(box)
        return clause, params


def _column_values(s: pd.Series, name: str, schema: LayerSchema) -> list[Any]:
    """Python values for COPY: NA → None, numpy scalars → Python scalars."""
    if name in ("source_key",):
        return list(s)
    if name == "id" or schema.column(name).type == "int":
        arr = s.astype("Int64")
        return [None if v is pd.NA else int(v) for v in arr]
    ctype = schema.column(name).type
    if ctype == "float":
        return [None if np.isnan(v) else float(v) for v in s.to_numpy(dtype="float64")]
    if ctype == "bool":
        return [None if v is pd.NA else bool(v) for v in s.astype("boolean")]
    if ctype == "timestamp":
        return [None if pd.isna(v) else v.to_pydatetime() for v in s]
    return [None if v is None or v is pd.NA else v for v in s]
