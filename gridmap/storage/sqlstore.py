"""One SQL base for both stores: the statements are built here once.

In the manner of tipg's ``Collection``/``PgCollection`` and pygeoapi's
``GenericSQLProvider``: :class:`SQLStore` builds the ``read``, ``count``,
``delete``, tile and bounds statements and the ``WHERE`` clause of every
filter (equality, ids, bbox, CQL2); each store fills in the few places where
the dialects differ and runs the statements on its own connections:

- class attributes: :attr:`~SQLStore.dialect` (also the CQL2 dialect), the
  parameter :attr:`~SQLStore.placeholder` (``?`` or ``%s``) and the function
  writing geometries as WKB (``ST_AsWKB`` or ``ST_AsBinary``);
- SQL hooks: the bbox test (:meth:`~SQLStore._bbox_sql`), a timestamp as UTC
  text (:meth:`~SQLStore._utc_text`), the Mapbox Vector Tile statement
  (:meth:`~SQLStore._tile_query`), the extent (:meth:`~SQLStore._extent_sql`)
  and the columns the connected role may not read
  (:meth:`~SQLStore._hidden_columns`);
- execution: :meth:`~SQLStore.sql` (a statement's rows) and
  :meth:`~SQLStore._change` (a write statement's row count).

Only identifiers from the layer schema are pasted into the SQL; values are
always bound as parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import geopandas as gpd
import pandas as pd

from gridmap.common.errors import BadInput
from gridmap.common.model import LayerSchema, layer_schema
from gridmap.geo.tiles import tile_filter_box
from gridmap.storage._sql import quote, where_sql
from gridmap.storage.base import (
    BBox,
    StoreReads,
    Where,
    check_bbox,
    check_paging,
    check_writable,
    frame_from_rows,
    tile_columns,
)
from gridmap.storage.cql import CqlFilter, filter_sql
from gridmap.storage.fieldcrypt import unseal

if TYPE_CHECKING:
    from gridmap.security.privacy import Vault

__all__ = ["SQLStore", "TileRequest"]


@dataclass(frozen=True)
class TileRequest:
    """One WebMercatorQuad tile asked of a store.

    Attributes
    ----------
    layer : str
        Name of the tile layer (the store layer's name).
    z, x, y : int
        The tile.
    extent, buffer : int
        Tile units across the tile, and around it.
    mercator : BBox
        The tile grown by *buffer*, in Web Mercator metres.
    """

    layer: str
    z: int
    x: int
    y: int
    extent: int
    buffer: int
    mercator: BBox


class SQLStore(StoreReads):
    """What both stores do with the same SQL, up to a few dialect hooks.

    A subclass sets :attr:`dialect`, :attr:`placeholder` and
    :attr:`wkb_function`, implements :meth:`sql`, :meth:`_change`,
    :meth:`_bbox_sql`, :meth:`_utc_text`, :meth:`_tile_query` and
    :meth:`_extent_sql`, and has a ``vault`` for the columns encrypted at rest.
    """

    dialect: Literal["postgis", "duckdb"]
    #: How a statement marks a bound parameter.
    placeholder: ClassVar[str]
    #: The SQL function writing a geometry as (ISO) WKB.
    wkb_function: ClassVar[str]
    vault: Vault

    # -- dialect hooks ----------------------------------------------------------
    def sql(self, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement with its parameters; its rows (each store implements it)."""
        raise NotImplementedError

    def _change(self, query: str, params: Sequence[Any]) -> int:
        """Run one write statement in a transaction; the rows it changed."""
        raise NotImplementedError

    def _bbox_sql(self, geometry: str) -> str:
        """Does *geometry* intersect the box (minx, miny, maxx, maxy)?

        Each group of four placeholders is bound to the box's four numbers.
        """
        raise NotImplementedError

    def _utc_text(self, value: str) -> str:
        """A timestamp as ISO 8601 text in UTC, to the second (``…T…Z``)."""
        raise NotImplementedError

    def _tile_query(
        self, table: str, columns: Sequence[str], clause: str, tile: TileRequest
    ) -> tuple[str, list[Any]]:
        """The Mapbox Vector Tile statement over the rows of *table* (alias ``t``).

        *columns* are the feature id and properties (``t.id AS id`` first);
        *clause* the rows' filter, whose parameters follow those returned here.
        The statement answers one row with the tile, empty or NULL when no
        feature is left.
        """
        raise NotImplementedError

    def _extent_sql(self, table: str) -> str:
        """A statement answering minx, miny, maxx, maxy of *table*'s geometries (NULL if none)."""
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
            bbox_sql = self._bbox_sql(f"{alias}.geometry" if alias else "geometry")
        clause, params = where_sql(
            schema,
            dict(where or {}),
            ids=ids,
            bbox_sql=bbox_sql,
            bbox=box,
            placeholder=self.placeholder,
            alias=alias,
        )
        if box and bbox_sql:  # where_sql bound the box once
            params.extend(box * (bbox_sql.count(self.placeholder) // 4 - 1))
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
            select.append(f"{self.wkb_function}(geometry)")
        query = f"SELECT {', '.join(select)} FROM {schema.name}{clause} ORDER BY id"
        if limit is not None:
            query += f" LIMIT {int(limit)}"
        if offset:
            query += f" OFFSET {int(offset)}"
        rows = self.sql(query, params)
        return unseal(schema, frame_from_rows(schema, cols, rows), self.vault)

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
        extent: int = 4096,
        buffer: int = 64,
    ) -> bytes:
        """A Mapbox Vector Tile of *layer* (WebMercatorQuad z/x/y); ``b""`` if empty."""
        schema = layer_schema(layer)
        if not schema.geometry_type:
            raise BadInput(f"layer {layer!r} has no geometry", field="layer")
        merc, box = tile_filter_box(z, x, y, extent, buffer)
        clause, params = self._where(schema, where, None, box, cql, alias="t")
        cols = ["t.id AS id"] + [
            f"{self._tile_value(f't.{quote(c)}', ctype)} AS {quote(c)}"
            for c, ctype in tile_columns(schema, properties)
        ]
        request = TileRequest(schema.name, int(z), int(x), int(y), int(extent), int(buffer), merc)
        query, args = self._tile_query(schema.name, cols, clause, request)
        rows = self.sql(query, [*args, *params])
        return bytes(rows[0][0]) if rows and rows[0][0] is not None else b""

    def _tile_value(self, value: str, ctype: str) -> str:
        """A tile property: numbers and booleans as they are, everything else as text."""
        if ctype in ("text", "int", "float", "bool"):
            return value
        if ctype == "timestamp":
            return self._utc_text(value)
        if ctype == "text[]":
            return f"array_to_string({value}, ',')"
        return f"CAST({value} AS TEXT)"

    def bounds(self, layer: str) -> BBox | None:
        """Extent of the layer, ``None`` when empty or without geometry."""
        schema = layer_schema(layer)
        if not schema.geometry_type:
            return None
        rows = self.sql(self._extent_sql(schema.name))
        if not rows or rows[0][0] is None:
            return None
        minx, miny, maxx, maxy = rows[0]
        return (float(minx), float(miny), float(maxx), float(maxy))

    # -- writes ---------------------------------------------------------------------
    def delete(self, layer: str, *, where: Where | None = None) -> int:
        """Delete matching rows (all rows when *where* is None); return how many."""
        schema = layer_schema(layer)
        check_writable(schema)
        clause, params = where_sql(schema, dict(where or {}), placeholder=self.placeholder)
        return self._change(f"DELETE FROM {schema.name}{clause}", params)
