"""GeoJSON features written by PostgreSQL: one page of ``/collections/{layer}/items`` in one query.

Building a pandas frame from the rows and serialising it in Python cost more
than the query itself (100 buildings: ~15 ms for the frame, ~5 ms for the
JSON, against well under 1 ms for PostgreSQL to write the same features with
``ST_AsGeoJSON`` and ``row_to_json``). :func:`page_query` asks the server for
each feature as finished JSON text, and for ``numberMatched`` in the same
statement, counted only when the page cannot tell it (see :func:`page_query`).

The text is value-for-value what :func:`api.geojson.feature_collection` writes
from a frame:

- properties in the order asked for, nulls as ``null``; timestamps as ISO 8601
  UTC with ``Z`` (microseconds only when there are any, as pandas writes
  them); dates ``YYYY-MM-DD``; floats with Python's digits and a ``.0`` on
  whole numbers (``5.0``, not ``5``: clients guess field types from it); NaN
  and ±Infinity as ``null``; arrays as arrays;
- coordinates: ``ST_AsGeoJSON`` rounds to at most 15 decimals, which gives back
  the stored double exactly when every coordinate of the geometry is at least 8
  in magnitude (doubles there lie 1.8e-15 or more apart, so the rounded decimal
  is nearer to the stored double than to any other). Other geometries (rare:
  near the equator or the prime meridian) come back as WKB and are written by
  GEOS, as before, so no coordinate ever changes. (The digits may differ: GEOS
  sometimes writes 17 significant digits where PostGIS writes the shortest.)

Only identifiers from the layer schema are pasted into the SQL; values travel
as parameters (the caller's ``WHERE`` clause).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import shapely

from gridmap.common.errors import BadInput
from gridmap.common.model import LayerSchema, layer_schema
from gridmap.storage._sql import quote
from gridmap.storage.base import BBox, Where, check_paging
from gridmap.storage.cql import CqlFilter
from gridmap.storage.sqlstore import SQLStore

__all__ = ["FeaturePage", "FeaturePages", "assemble", "page_query"]

#: Coordinates at least this large (in magnitude) survive 15-decimal rounding exactly.
_EXACT_FROM = 8
#: The bands |x| < 8 and |y| < 8 as boxes. ``&&`` compares the geometry's cached
#: float bounding box, which is rounded outwards, so a geometry that does not
#: touch either band surely has no coordinate below 8 in magnitude.
_BANDS = (
    f"ST_MakeEnvelope(-{_EXACT_FROM}, -1e30, {_EXACT_FROM}, 1e30, 4326)",
    f"ST_MakeEnvelope(-1e30, -{_EXACT_FROM}, 1e30, {_EXACT_FROM}, 4326)",
)
#: A geometry left to Python is written ``null`` by the server, then replaced.
_GEOMETRY_KEY = '"geometry":'
_GEOMETRY_SLOT = _GEOMETRY_KEY + "null"
#: Largest offset sent to SQL (check_paging's bound); larger ones read the same empty page.
_LAST_OFFSET = 2**62 - 1


@dataclass(frozen=True)
class FeaturePage:
    """One page of GeoJSON features, as JSON text, and the paging counts.

    Attributes
    ----------
    features : str
        The Feature objects, comma-separated (the inside of a ``features`` array).
    returned : int
        Number of features on the page.
    matched : int
        Number of features matching the filters on all pages.
    """

    features: str
    returned: int
    matched: int


class FeaturePages(SQLStore):
    """A SQL store whose server writes pages of GeoJSON features itself (PostGIS).

    The page is built from the same filters as :meth:`~SQLStore.read` and
    :meth:`~SQLStore.count` (:meth:`~SQLStore._where`) by :func:`page_query`,
    whose JSON (``row_to_json``, ``ST_AsGeoJSON``) is PostgreSQL's. Callers
    ask ``isinstance(store, FeaturePages)`` and fall back to :meth:`read`.
    """

    def feature_page(
        self,
        layer: str,
        *,
        properties: Sequence[str],
        limit: int,
        offset: int = 0,
        bbox: BBox | None = None,
        where: Where | None = None,
        cql: CqlFilter | None = None,
        lat_first: bool = False,
    ) -> FeaturePage:
        """A page of *layer*'s features by id, with only *properties*, and ``numberMatched``.

        Same rows, order and filters as :meth:`read` and :meth:`count`, in one
        statement (:func:`page_query`): one round trip and one snapshot, with
        no DataFrame in between. *lat_first* swaps the axes (EPSG:4326 and
        EPSG:4490 order).

        Raises
        ------
        gridmap.common.errors.BadInput
            If *layer* has no geometry, a property is not one of its columns
            or is encrypted at rest (``events.reporter``: SQL cannot decrypt
            it), or *limit* or *offset* is negative.
        """
        schema = layer_schema(layer)
        if not schema.geometry_type:
            raise BadInput(f"layer {layer!r} has no geometry", field="layer")
        unknown = [p for p in properties if p not in schema.column_names]
        if unknown:
            raise BadInput(f"unknown property {unknown[0]!r} for layer {layer!r}", field=unknown[0])
        sealed = [p for p in properties if schema.column(p).encrypted]
        if sealed:  # SQL cannot decrypt: such pages are read with read() (api.items)
            raise BadInput(
                f"property {sealed[0]!r} of layer {layer!r} is encrypted at rest and cannot "
                "be written by the server",
                field=sealed[0],
            )
        # An offset past any table (up to 2^62 fits in SQL) reads an empty page,
        # as read_page does for an offset past numberMatched.
        offset = min(offset, _LAST_OFFSET)
        check_paging(limit, offset)
        clause, params = self._where(schema, where, None, bbox, cql, alias="t")
        query = page_query(
            schema, properties, clause, limit=limit, offset=offset, lat_first=lat_first
        )
        # The clause's parameters serve the page and the count.
        return assemble(self.sql(query, [*params, *params]))


def _value(column: str, ctype: str) -> str:
    """SQL for one property of row ``t`` whose JSON form is what the frame path writes."""
    col = f"t.{quote(column)}"
    if ctype == "timestamp":
        # pandas' isoformat in UTC: seconds always, microseconds only when not zero.
        utc = f"({col} AT TIME ZONE 'UTC')"
        return (
            f"to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || "
            f"CASE WHEN date_trunc('second', {utc}) = {utc} THEN '' "
            f"ELSE to_char({utc}, '.US') END || 'Z'"
        )
    if ctype == "float":
        # NaN and ±Infinity are no JSON numbers (row_to_json would write strings).
        # Whole numbers get Python's ".0": PostgreSQL writes 5, Python 5.0, and
        # clients that guess field types from values (GDAL) would see an integer.
        # From 1e15 on both write an exponent; below it PostgreSQL writes digits.
        return (
            f"CASE WHEN {col} IN ('NaN', 'Infinity', '-Infinity') THEN NULL "
            f"WHEN {col} = trunc({col}) AND abs({col}) < 1e15 THEN ({col}::text || '.0')::json "
            f"ELSE to_json({col}) END"
        )
    # int, bool, text, text[] (an array) and date ("YYYY-MM-DD") come out of
    # row_to_json as the frame path writes them.
    return col


def page_query(
    schema: LayerSchema,
    properties: Sequence[str],
    clause: str,
    *,
    limit: int,
    offset: int,
    lat_first: bool = False,
) -> str:
    """SQL for one page of features of *schema* and its ``numberMatched``.

    *clause* is the page's ``WHERE`` clause on the table aliased ``t`` (empty
    for none); its parameters are bound twice, in the page and in the count.
    Each row of the answer has a feature's JSON text (``None`` when the page
    is empty), the geometry as WKB when it is left to Python (else ``None``),
    the features returned and the features matched. The count runs only when
    the page cannot tell it: a page shorter than *limit* holds the last
    matching features (unless it is empty past the first page), so then
    ``matched = offset + returned``.

    Parameters
    ----------
    schema : LayerSchema
        The layer.
    properties : sequence of str
        Columns written as properties, in this order (unknown names are refused).
    clause : str
        `` WHERE …`` on alias ``t``, with ``%s`` placeholders.
    limit, offset : int
        Paging (validated by the caller).
    lat_first : bool
        Write latitude first (EPSG:4326/4490 axis order).

    Raises
    ------
    KeyError
        If a property is not a column of *schema*.

    Examples
    --------
    >>> from gridmap.common.model import layer_schema
    >>> sql = page_query(layer_schema("buildings"), ["floors"], "", limit=10, offset=0)
    >>> "row_to_json" in sql and "LIMIT 10" in sql
    True
    """
    types = {c.name: c.type for c in schema.columns}
    values = [f"{_value(name, types[name])} AS {quote(name)}" for name in properties]
    geom = "ST_FlipCoordinates(t.geometry)" if lat_first else "t.geometry"
    if schema.geometry_type is None:
        exact, as_json, wkb = "true", "'null'", "NULL::bytea"
    else:
        exact = " AND ".join(f"NOT (t.geometry && {band})" for band in _BANDS)
        as_json = (
            f"CASE WHEN t.geometry IS NULL OR NOT ({exact}) THEN 'null' "
            f"ELSE ST_AsGeoJSON({geom}, 15, 0) END"
        )
        wkb = f"CASE WHEN t.geometry IS NULL OR ({exact}) THEN NULL ELSE ST_AsBinary({geom}) END"
    props = "row_to_json(p)::text" if values else "'{}'"
    lateral = f" CROSS JOIN LATERAL (SELECT {', '.join(values)}) p" if values else ""
    feature = (
        f"""'{{"type":"Feature","id":' || t.id || ',{_GEOMETRY_KEY}' || {as_json} """
        f"""|| ',"properties":' || {props} || '}}'"""
    )
    limit, offset = int(limit), int(offset)
    # The rows are picked first and the JSON written for them only: in one
    # SELECT, PostgreSQL would also write every row that OFFSET skips.
    picked = ["id", *(["geometry"] if schema.geometry_type else []), *properties]
    rows = (
        f"(SELECT {', '.join(f't.{quote(c)}' for c in picked)} FROM {schema.name} t{clause} "
        f"ORDER BY t.id LIMIT {limit} OFFSET {offset}) t"
    )
    return (
        f"WITH page AS MATERIALIZED (SELECT t.id, {feature} AS f, {wkb} AS wkb "
        f"FROM {rows}{lateral}), "
        "n AS (SELECT count(*) AS returned FROM page) "
        "SELECT page.f, page.wkb, n.returned, "
        f"CASE WHEN n.returned < {limit} AND (n.returned > 0 OR {offset} = 0) "
        f"THEN {offset} + n.returned "
        f"ELSE (SELECT count(*) FROM {schema.name} t{clause}) END "
        "FROM n LEFT JOIN page ON true ORDER BY page.id"
    )


def assemble(rows: Sequence[Sequence[Any]]) -> FeaturePage:
    """The :class:`FeaturePage` of the rows of a :func:`page_query`.

    Geometries sent as WKB are written by GEOS (``shapely.to_geojson``), the
    writer of the frame path, and put into their feature's geometry slot.

    Examples
    --------
    >>> feature = '{"type":"Feature","id":1,"geometry":null,"properties":{}}'
    >>> page = assemble([(feature, shapely.to_wkb(shapely.Point(1, 2)), 1, 1)])
    >>> page.features[:60]
    '{"type":"Feature","id":1,"geometry":{"type":"Point","coordin'
    >>> assemble([(None, None, 0, 7)])
    FeaturePage(features='', returned=0, matched=7)
    """
    if not rows:  # the query answers at least one row; be safe anyway
        return FeaturePage("", 0, 0)
    returned, matched = int(rows[0][2]), int(rows[0][3])
    if returned == 0:  # one row of counts, no feature
        return FeaturePage("", 0, matched)
    texts: list[str] = [r[0] for r in rows]
    slow = [i for i, r in enumerate(rows) if r[1] is not None]
    if slow:
        geoms = shapely.to_geojson(shapely.from_wkb([bytes(rows[i][1]) for i in slow]))
        for i, geom in zip(slow, geoms, strict=True):
            texts[i] = texts[i].replace(_GEOMETRY_SLOT, f'"geometry":{geom}', 1)
    return FeaturePage(",".join(texts), returned, matched)
