"""One SQL base for both stores: the statements are built here once.

In the manner of tipg's ``Collection``/``PgCollection`` and pygeoapi's
``GenericSQLProvider``: :class:`SQLStore` builds the ``read``, ``count``,
``delete``, tile and bounds statements and the ``WHERE`` clause of every
filter (equality, ids, bbox, CQL2). Where the two databases differ, the
statements take a fragment of the store's :class:`SQLDialect` (the two,
:data:`DUCKDB` and :data:`POSTGIS`, side by side below); each store runs the
statements on its own connections (:meth:`SQLStore.sql`,
:meth:`SQLStore._change`).

Only identifiers from the layer schema are pasted into the SQL; values are
always bound as parameters.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import geopandas as gpd
import pandas as pd

from gridmap.common.errors import BadInput
from gridmap.common.model import LayerSchema, layer_schema
from gridmap.geo.tiles import tile_filter_box
from gridmap.security.privacy import Vault
from gridmap.storage._sql import quote, where_sql
from gridmap.storage.base import (
    DEFAULT_TILE_ENCODING,
    BBox,
    StoreReads,
    TileEncoding,
    Where,
    check_bbox,
    check_paging,
    check_writable,
    frame_from_rows,
    prepare_update,
    tile_columns,
)
from gridmap.storage.cql import CqlFilter, filter_sql
from gridmap.storage.fieldcrypt import seal, unseal

__all__ = ["DUCKDB", "POSTGIS", "SQLDialect", "SQLStore", "mvt_geometry"]


@dataclass(frozen=True)
class SQLDialect:
    """The SQL fragments in which the two stores' databases differ.

    Attributes
    ----------
    name : {"postgis", "duckdb"}
        The store's dialect (also the CQL2 dialect of :mod:`gridmap.storage.cql`).
    placeholder : str
        How a statement marks a bound parameter.
    wkb : str
        The function writing a geometry as (ISO) WKB.
    bbox : str
        Does ``{geometry}`` intersect the box? Each four placeholders are bound
        to minx, miny, maxx, maxy.
    utc_text : str
        The timestamp ``{value}`` as ISO 8601 text in UTC, to the second, ``Z``.
    extent : str
        A statement answering minx, miny, maxx, maxy of ``{table}`` (NULL when empty).
    mvt_geometry : str
        The Mapbox Vector Tile geometry of row ``t``; its slots ``{box}`` (the
        tile grown by the buffer, Web Mercator), ``{zxy}``, ``{extent}`` and
        ``{buffer}`` become parameters (:func:`mvt_geometry`).
    tile_rows_end, tile_end : str
        What ends the subquery of the tile's rows (``q``), and the tile query.
    """

    name: Literal["postgis", "duckdb"]
    placeholder: str
    wkb: str
    bbox: str
    utc_text: str
    extent: str
    mvt_geometry: str
    tile_rows_end: str = ""
    tile_end: str = ""


#: The embedded store: DuckDB and its ``spatial`` extension.
DUCKDB = SQLDialect(
    name="duckdb",
    placeholder="?",
    wkb="ST_AsWKB",
    bbox="ST_Intersects({geometry}, ST_MakeEnvelope(?, ?, ?, ?))",
    utc_text="strftime(timezone('UTC', {value}), '%Y-%m-%dT%H:%M:%SZ')",
    extent=(
        "SELECT min(ST_XMin(geometry)), min(ST_YMin(geometry)), "
        "max(ST_XMax(geometry)), max(ST_YMax(geometry)) FROM {table}"
    ),
    # Clipped first, then encoded unclipped: the extension's own clipping fails
    # on some valid polygons ("unable to assign free hole").
    mvt_geometry=(
        "ST_AsMVTGeom(ST_CollectionExtract(ST_Intersection(ST_Transform("
        "CASE WHEN ST_IsValid(t.geometry) THEN t.geometry ELSE ST_MakeValid(t.geometry) END, "
        "'EPSG:4326', 'EPSG:3857', always_xy := true), ST_MakeEnvelope({box})), "
        "ST_Dimension(t.geometry) + 1), ST_Extent(ST_TileEnvelope({zxy})), "
        "{extent}, {buffer}, false)"
    ),
    # The extension's ST_AsMVT over no rows fails: no row is the empty tile.
    tile_end=" WHERE q.geom IS NOT NULL AND NOT ST_IsEmpty(q.geom) HAVING count(*) > 0",
)

#: The server store: PostgreSQL and PostGIS.
POSTGIS = SQLDialect(
    name="postgis",
    placeholder="%s",
    wkb="ST_AsBinary",
    # The index test (&&), then the exact one: ST_Envelope of the diagonal is a
    # point or a line when the box has no width or height, where
    # ST_MakeEnvelope would be degenerate.
    bbox=(
        "{geometry} && ST_MakeEnvelope(%s, %s, %s, %s, 4326) AND ST_Intersects({geometry}, "
        "ST_SetSRID(ST_Envelope(ST_MakeLine(ST_MakePoint(%s, %s), ST_MakePoint(%s, %s))), 4326))"
    ),
    utc_text="""to_char({value} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')""",
    extent=(
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) "
        "FROM (SELECT ST_Extent(geometry) AS e FROM {table}) s"
    ),
    mvt_geometry=(
        "ST_AsMVTGeom(ST_Transform(t.geometry, 3857), ST_TileEnvelope({zxy}), "
        "{extent}, {buffer}, true)"
    ),
    # Each row's clipped geometry is computed once: OFFSET 0 keeps the
    # subquery from being flattened into the aggregate, and nothing else
    # names q.geom (a "WHERE q.geom IS NOT NULL" or "HAVING count(q.geom)"
    # there made the planner compute ST_Transform + ST_AsMVTGeom again per
    # row: 6.1 -> 3.4 ms per z14 building tile, tipg's query 4.0 ms).
    # ST_AsMVT leaves out rows whose clipped geometry is NULL and gives an
    # empty bytea when none is left: the empty tile (204).
    tile_rows_end=" OFFSET 0",
)


def mvt_geometry(
    dialect: SQLDialect, z: int, x: int, y: int, *, extent: int, buffer: int
) -> tuple[str, list[Any]]:
    """The dialect's tile geometry of row ``t`` with placeholders, and their values in order.

    Examples
    --------
    >>> sql, args = mvt_geometry(POSTGIS, 1, 0, 1, extent=4096, buffer=64)
    >>> sql
    'ST_AsMVTGeom(ST_Transform(t.geometry, 3857), ST_TileEnvelope(%s, %s, %s), %s, %s, true)'
    >>> args
    [1, 0, 1, 4096, 64]
    """
    merc, _ = tile_filter_box(z, x, y, extent, buffer)
    slots: dict[str, list[Any]] = {
        "box": list(merc),
        "zxy": [int(z), int(x), int(y)],
        "extent": [int(extent)],
        "buffer": [int(buffer)],
    }
    parts: list[str] = []
    args: list[Any] = []
    for text, slot, _, _ in string.Formatter().parse(dialect.mvt_geometry):
        parts.append(text)
        if slot is not None:
            parts.append(", ".join([dialect.placeholder] * len(slots[slot])))
            args.extend(slots[slot])
    return "".join(parts), args


class SQLStore(StoreReads):
    """What both stores do with the same statements, in their :attr:`sql_dialect`.

    A subclass names its :class:`SQLDialect`, runs statements (:meth:`sql`,
    :meth:`_change`) and has a ``vault`` for the columns encrypted at rest.
    """

    dialect: Literal["postgis", "duckdb"]
    sql_dialect: ClassVar[SQLDialect]
    vault: Vault

    # -- what each store implements -----------------------------------------------
    def sql(self, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement with its parameters; its rows (each store implements it)."""
        raise NotImplementedError

    def _change(self, query: str, params: Sequence[Any]) -> int:
        """Run one write statement in a transaction; the rows it changed."""
        raise NotImplementedError

    def _update_rows(
        self, schema: LayerSchema, data: pd.DataFrame, cols: list[str], where: Where | None
    ) -> int:
        """Set *cols* of *data* on the rows with its ids (and *where*); the rows changed.

        *data* comes from :func:`~gridmap.storage.base.prepare_update`.
        """
        raise NotImplementedError

    def _hidden_columns(self, schema: LayerSchema) -> frozenset[str]:
        """Columns read as NULL (the connected role may not read them); none by default."""
        return frozenset()

    # -- filters ------------------------------------------------------------------
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
        """The `` WHERE …`` clause (or ``""``) of the filters and its parameters."""
        box = check_bbox(bbox)
        bbox_sql = None
        if box and schema.geometry_type:
            bbox_sql = self.sql_dialect.bbox.format(
                geometry=f"{alias}.geometry" if alias else "geometry"
            )
        clause, params = where_sql(
            schema,
            dict(where or {}),
            ids=ids,
            bbox_sql=bbox_sql,
            bbox=box,
            placeholder=self.sql_dialect.placeholder,
            alias=alias,
        )
        if box and bbox_sql:  # where_sql bound the box once
            params.extend(box * (bbox_sql.count(self.sql_dialect.placeholder) // 4 - 1))
        if cql is not None:
            sql, extra = filter_sql(cql, schema, dialect=self.dialect, alias=alias)
            clause = f"{clause} AND {sql}" if clause else f" WHERE {sql}"
            params.extend(extra)
        return clause, params

    # -- reads ----------------------------------------------------------------------
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
        hidden = self._hidden_columns(schema)
        select = [f"NULL AS {quote(c)}" if c in hidden else quote(c) for c in cols]
        if schema.geometry_type:
            cols.append("geometry")
            select.append(f"{self.sql_dialect.wkb}(geometry)")
        query = f"SELECT {', '.join(select)} FROM {schema.name}{clause} ORDER BY id"
        if limit is not None:
            query += f" LIMIT {int(limit)}"
        if offset:
            query += f" OFFSET {int(offset)}"
        rows = self.sql(query, params)
        return unseal(schema, frame_from_rows(schema, cols, rows), self.vault)

    def records(
        self,
        layer: str,
        columns: Sequence[str],
        *,
        where: Where | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Plain rows (dicts of driver values) of a few attribute *columns*, ordered by id.

        The lean read of a hot path that needs no frame: authenticating a
        request reads one user per call. No geometry and no encrypted column
        (those need :meth:`read`); columns the connected role may not read are
        ``None``, as in :meth:`read`.
        """
        schema = layer_schema(layer)
        check_paging(limit, 0)
        known = {c.name: c for c in schema.columns}
        for c in columns:
            if c != "id" and (c not in known or known[c].encrypted):
                raise BadInput(f"records: {layer}.{c} is not a plain attribute column")
        clause, params = self._where(schema, where, None, None, None)
        hidden = self._hidden_columns(schema)
        select = [f"NULL AS {quote(c)}" if c in hidden else quote(c) for c in columns]
        query = f"SELECT {', '.join(select)} FROM {schema.name}{clause} ORDER BY id"
        if limit is not None:
            query += f" LIMIT {int(limit)}"
        return [dict(zip(columns, row, strict=True)) for row in self.sql(query, params)]

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
        rows = self.sql(f"SELECT count(*) FROM {schema.name}{clause}", params)
        return int(rows[0][0]) if rows else 0

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
        encoding: TileEncoding = DEFAULT_TILE_ENCODING,
    ) -> bytes:
        """A Mapbox Vector Tile of *layer* (WebMercatorQuad z/x/y); ``b""`` if empty."""
        schema = layer_schema(layer)
        if not schema.geometry_type:
            raise BadInput(f"layer {layer!r} has no geometry", field="layer")
        extent, buffer = encoding.extent, encoding.buffer
        _, box = tile_filter_box(z, x, y, extent, buffer)
        clause, params = self._where(schema, where, None, box, cql, alias="t")
        cols = ["t.id AS id"] + [
            f"{self._tile_value(f't.{quote(c)}', ctype)} AS {quote(c)}"
            for c, ctype in tile_columns(schema, properties)
        ]
        d = self.sql_dialect
        geom, geom_args = mvt_geometry(d, z, x, y, extent=extent, buffer=buffer)
        query = (
            f"SELECT ST_AsMVT(q, {d.placeholder}, {d.placeholder}, 'geom', 'id') "
            f"FROM (SELECT {', '.join(cols)}, {geom} AS geom "
            f"FROM {schema.name} t{clause}{d.tile_rows_end}) q{d.tile_end}"
        )
        rows = self.sql(query, [schema.name, int(extent), *geom_args, *params])
        return bytes(rows[0][0]) if rows and rows[0][0] is not None else b""

    def _tile_value(self, value: str, ctype: str) -> str:
        """A tile property: numbers and booleans as they are, everything else as text."""
        if ctype in ("text", "int", "float", "bool"):
            return value
        if ctype == "timestamp":
            return self.sql_dialect.utc_text.format(value=value)
        if ctype == "text[]":
            return f"array_to_string({value}, ',')"
        return f"CAST({value} AS TEXT)"

    def bounds(self, layer: str) -> BBox | None:
        """Extent of the layer, ``None`` when empty or without geometry."""
        schema = layer_schema(layer)
        if not schema.geometry_type:
            return None
        rows = self.sql(self.sql_dialect.extent.format(table=schema.name))
        if not rows or rows[0][0] is None:
            return None
        minx, miny, maxx, maxy = rows[0]
        return (float(minx), float(miny), float(maxx), float(maxy))

    # -- writes ---------------------------------------------------------------------
    def update(self, layer: str, frame: pd.DataFrame, *, where: Where | None = None) -> int:
        """Set the columns of *frame* (besides ``id``) on the rows with those ids.

        *where* adds conditions every updated row must meet (optimistic
        concurrency: ``where={"version": 3}``); returns the rows changed.
        """
        schema, data = prepare_update(layer, seal(layer_schema(layer), frame, self.vault))
        check_writable(schema)
        cols = [c for c in data.columns if c != "id"]
        if data.empty or not cols:
            return 0
        return self._update_rows(schema, data, cols, where)

    def delete(self, layer: str, *, where: Where | None = None) -> int:
        """Delete matching rows (all rows when *where* is None); return how many."""
        schema = layer_schema(layer)
        check_writable(schema)
        clause, params = where_sql(
            schema, dict(where or {}), placeholder=self.sql_dialect.placeholder
        )
        return self._change(f"DELETE FROM {schema.name}{clause}", params)
