"""The ``Store`` protocol both storage backends implement, and helpers they share.

The idea comes from pygeoapi's provider contract: callers talk to one
interface and the PostGIS and embedded (DuckDB) stores are interchangeable.
Every storage test runs against both (``tests/gridmap/storage``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from gridmap.common.errors import BadInput, GridmapError, NotFound
from gridmap.common.model import LayerSchema, layer_schema
from gridmap.storage._sql import quote

if TYPE_CHECKING:
    from gridmap.storage.cql import CqlFilter

__all__ = [
    "ARROW_TYPES",
    "BBox",
    "Store",
    "StoreBusy",
    "StoreInvalidated",
    "StoreUnavailable",
    "WriteResult",
    "area_setting",
    "check_bbox",
    "check_writable",
    "first_of_each_key",
    "prepare_frame",
    "source_keys",
    "to_arrow",
]


#: (minx, miny, maxx, maxy) in WGS84 degrees.
BBox = tuple[float, float, float, float]

#: Equality filters: column → value, or column → sequence of values (IN).
Where = Mapping[str, Any]


class StoreUnavailable(GridmapError):
    """The database cannot be reached or dropped the connection; retry later.

    Raised by the server store when its connection is lost (a restart, a
    fail-over) or none can be had in time; nothing of the failed transaction
    was kept. The API answers 503 with ``Retry-After``.
    """

    code = "store_unavailable"


class StoreInvalidated(StoreUnavailable):
    """The database file cannot be used by this process any more (or at all).

    Raised by the embedded store when DuckDB reports a fatal or internal
    error (its database instance is then invalidated: nothing more may be
    read or written through it) or cannot open the file. The message names
    the file and the recovery commands, ``gridmap db check`` and ``gridmap db
    recover``. The API answers 503 and stops, for its supervisor to restart
    it on a freshly opened file.
    """

    code = "store_invalidated"


class StoreBusy(StoreUnavailable):
    """The database file is held by another process (an embedded store has one writer).

    The message says which process holds it and what to do: stop it, or use
    PostGIS for several processes.
    """

    code = "store_busy"


@dataclass(frozen=True)
class WriteResult:
    """What a write did: rows offered, inserted, and skipped as already stored."""

    offered: int
    inserted: int

    @property
    def skipped(self) -> int:
        """Rows not inserted because an identical row (same ``source_key``) exists."""
        return self.offered - self.inserted


@dataclass(frozen=True)
class TileEncoding:
    """How a vector tile is encoded: its grid size and the buffer around it (tile units).

    Examples
    --------
    >>> TileEncoding()
    TileEncoding(extent=4096, buffer=64)
    >>> TileEncoding(buffer=0).extent
    4096
    """

    extent: int = 4096
    buffer: int = 64


DEFAULT_TILE_ENCODING = TileEncoding()


@runtime_checkable
class Store(Protocol):
    """A place where gridmap keeps its layers.

    Geometries go in and come out in WGS84 (EPSG:4326), x = longitude.
    Writes are idempotent on ``source_key``; a ``transaction()`` groups several
    writes so that a failure leaves the store as it was.
    """

    url: str
    dialect: Literal["postgis", "duckdb"]

    def migrate(self, *, target: int | None = None) -> int:
        """Create or upgrade the schema; return the schema version now in force."""
        ...

    def schema_version(self) -> int:
        """The schema version in force (0 for an empty database)."""
        ...

    def transaction(self) -> AbstractContextManager[None]:
        """Group the writes inside the ``with`` block into one transaction."""
        ...

    def scoped(self, areas: Sequence[str]) -> AbstractContextManager[None]:
        """Act for a principal whose areas are the code prefixes *areas*.

        PostGIS runs the block in one transaction as the application role with
        ``gridmap.areas`` set, so row-level security applies as the last line;
        DuckDB only records the scope. Callers filter with ``Prefix`` as well.
        """
        ...

    def write(
        self, layer: str, frame: pd.DataFrame, *, mode: Literal["append", "replace"] = "append"
    ) -> WriteResult:
        """Insert rows of *frame* not yet stored (by ``source_key``); ``replace`` empties first."""
        ...

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
        """Rows of *layer* ordered by ``id``, filtered by bbox (intersects), equality and CQL2."""
        ...

    def records(
        self,
        layer: str,
        columns: Sequence[str],
        *,
        where: Where | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Plain rows of a few attribute *columns* (no frame; a hot path's lean read)."""
        ...

    def count(
        self,
        layer: str,
        *,
        bbox: BBox | None = None,
        where: Where | None = None,
        cql: CqlFilter | None = None,
    ) -> int:
        """Number of rows :meth:`read` would return without limit."""
        ...

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
        """A Mapbox Vector Tile (WebMercatorQuad z/x/y) of *layer*; ``b""`` when empty.

        The tile layer is named after *layer*; feature ids are the row ids and
        only *properties* (columns of the layer) are written; *encoding* sets
        the tile's extent and buffer.
        """
        ...

    def get(self, layer: str, id: int) -> gpd.GeoDataFrame | pd.DataFrame:
        """One row by id (``NotFound`` if absent)."""
        ...

    def update(self, layer: str, frame: pd.DataFrame, *, where: Where | None = None) -> int:
        """Set the columns of *frame* (besides ``id``) on the rows with those ids.

        *where* adds conditions every updated row must meet (optimistic
        concurrency: ``where={"version": 3}``); returns the rows changed.
        """
        ...

    def delete(self, layer: str, *, where: Where | None = None) -> int:
        """Delete matching rows (all rows when *where* is None); return how many."""
        ...

    def bounds(self, layer: str) -> BBox | None:
        """Extent of the layer, or ``None`` when it is empty."""
        ...

    def column_range(self, layer: str, column: str) -> tuple[Any, Any]:
        """Smallest and largest non-null value of *column* (``(None, None)`` when none)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def area_setting(areas: Sequence[str]) -> str:
    """The ``gridmap.areas`` value for code prefixes *areas*.

    ``"*"`` when *areas* contains the empty prefix (everything), ``""`` (deny)
    when it is empty, else the prefixes joined by commas. Prefixes must be digits.

    Examples
    --------
    >>> area_setting(["990100001001003", "990100002"])
    '990100001001003,990100002'
    >>> area_setting([""]), area_setting([])
    ('*', '')
    """
    if "" in areas:
        return "*"
    for a in areas:
        if not a.isdigit() or not a.isascii():
            raise BadInput(f"area prefix must be digits, got {a[:40]!r}", field="area")
    return ",".join(areas)


def check_writable(schema: LayerSchema) -> None:
    """Refuse updates and deletes on append-only layers (the audit log).

    Examples
    --------
    >>> from gridmap.common.model import layer_schema
    >>> check_writable(layer_schema("events"))
    >>> check_writable(layer_schema("audit_log"))
    Traceback (most recent call last):
    ...
    gridmap.common.errors.BadInput: layer 'audit_log' is append-only
    """
    if schema.extra.get("append_only") == "true":
        raise BadInput(f"layer {schema.name!r} is append-only", field=schema.name)


class StoreReads:
    """What both stores answer the same way on top of their own ``read`` and ``sql``."""

    def read(self, layer: str, *, ids: Sequence[int] | None = None) -> Any:
        """Rows of *layer* (each store implements it)."""
        raise NotImplementedError

    def sql(
        self, query: str, params: Sequence[Any] = ()
    ) -> list[tuple[Any, ...]]:  # pragma: no cover
        """Run read-only SQL (each store implements it)."""
        raise NotImplementedError

    def get(self, layer: str, id: int) -> gpd.GeoDataFrame | pd.DataFrame:
        """One row by id; ``NotFound`` if there is none."""
        out = self.read(layer, ids=[id])
        if out.empty:
            raise NotFound(f"{layer} {id} not found")
        return out

    def column_range(self, layer: str, column: str) -> tuple[Any, Any]:
        """Smallest and largest non-null value of *column* (``(None, None)`` when none)."""
        schema = layer_schema(layer)
        if column not in schema.column_names:
            raise BadInput(f"unknown property {column!r} for layer {layer!r}", field=column)
        rows = self.sql(f"SELECT min({quote(column)}), max({quote(column)}) FROM {schema.name}")
        if not rows:
            return (None, None)
        lo, hi = rows[0]
        if schema.column(column).type == "timestamp":
            lo = None if lo is None else pd.Timestamp(lo).tz_convert("UTC")
            hi = None if hi is None else pd.Timestamp(hi).tz_convert("UTC")
        return (lo, hi)


def check_bbox(bbox: Sequence[float] | None) -> BBox | None:
    """Validate a WGS84 bbox; raise ``BadInput`` naming the problem.

    Examples
    --------
    >>> check_bbox([24.9, 60.1, 25.0, 60.2])
    (24.9, 60.1, 25.0, 60.2)
    """
    if bbox is None:
        return None
    if len(bbox) != 4:
        raise BadInput(f"bbox needs 4 numbers (minx,miny,maxx,maxy), got {len(bbox)}", field="bbox")
    try:
        vals = tuple(float(v) for v in bbox)
    except (TypeError, ValueError):
        raise BadInput("bbox values must be numbers", field="bbox") from None
    if not all(np.isfinite(vals)):
        raise BadInput("bbox values must be finite numbers", field="bbox")
    minx, miny, maxx, maxy = vals
    if not (
        -180 <= minx <= 180 and -180 <= maxx <= 180 and -90 <= miny <= 90 and -90 <= maxy <= 90
    ):
        raise BadInput("bbox lies outside lon [-180, 180] / lat [-90, 90]", field="bbox")
    if minx > maxx or miny > maxy:
        raise BadInput("bbox minimum is greater than its maximum", field="bbox")
    return (minx, miny, maxx, maxy)


def tile_columns(schema: LayerSchema, properties: Sequence[str]) -> list[tuple[str, str]]:
    """(column, type) of the tile properties; unknown names are refused.

    Columns encrypted at rest (``events.reporter``, ``contact``) are left out:
    tiles are encoded in SQL, which cannot decrypt them.
    """
    out: list[tuple[str, str]] = []
    for name in properties:
        if name == "id":
            continue
        if name not in schema.column_names:
            raise BadInput(f"unknown property {name!r} for layer {schema.name!r}", field=name)
        if schema.column(name).encrypted:
            continue
        out.append((name, schema.column(name).type))
    return out


def check_paging(limit: int | None, offset: int) -> None:
    """Refuse a negative or out-of-range ``limit``/``offset`` (they go into SQL)."""
    for name, value in (("limit", limit), ("offset", offset)):
        if value is not None and not (0 <= int(value) < 2**62):
            raise BadInput(f"{name} must be between 0 and 2^62, got {value}", field=name)


def source_keys(frame: pd.DataFrame, schema: LayerSchema) -> pd.Series:
    """Stable per-row identity used to make imports idempotent.

    ``source`` + ``source_id`` when a row has a source id, otherwise a hash of
    the geometry (WKB) and every attribute value. Aligned to ``frame.index``.

    Examples
    --------
    >>> import pandas as pd
    >>> from gridmap.common.model import layer_schema
    >>> df = pd.DataFrame({"source": ["osm"], "source_id": ["way/1"]})
    >>> source_keys(df, layer_schema("roads")).iloc[0]
    'osm:way/1'
    """
    n = len(frame)
    src = (
        frame["source"].astype("string").fillna("")
        if "source" in frame
        else pd.Series([""] * n, index=frame.index, dtype="string")
    )
    if "source_id" in frame:
        sid = frame["source_id"].astype("string")
    else:
        sid = pd.Series([pd.NA] * n, index=frame.index, dtype="string")
    keys = (src + ":" + sid.fillna("")).astype(object)
    missing = sid.isna().to_numpy()
    if missing.any():
        sub = frame.loc[missing]
        geom = sub.geometry if isinstance(sub, gpd.GeoDataFrame) else None
        wkb = (
            shapely.to_wkb(geom.values, hex=True)
            if geom is not None
            else np.full(len(sub), "", dtype=object)
        )
        cols = [c for c in schema.column_names if c in sub.columns and c != "source_id"]
        attrs = sub[cols].astype("string").fillna("\x00").agg("\x1f".join, axis=1) if cols else None
        hashed = [
            "h:"
            + hashlib.sha1(
                (str(w) + "\x1e" + ("" if attrs is None else str(a))).encode("utf-8")
            ).hexdigest()
            for w, a in zip(wkb, attrs if attrs is not None else [""] * len(sub), strict=True)
        ]
        keys.loc[missing] = hashed
    return pd.Series(keys, index=frame.index, name="source_key", dtype=object)


ARROW_TYPES = {
    "text": pa.string(),
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "date": pa.date32(),
    "text[]": pa.list_(pa.string()),
}
_ARROW = ARROW_TYPES

_NUMPY_KIND = {"int": "Int64", "float": "float64", "bool": "boolean", "text": "object"}


def prepare_frame(
    layer: str, frame: pd.DataFrame, *, srid: int | None = None, dedupe: bool = True
) -> tuple[LayerSchema, pd.DataFrame, np.ndarray | None]:
    """Bring *frame* to the layer's columns and types for a store to write.

    Returns the schema, a DataFrame with ``source_key`` and the attribute
    columns (missing ones filled with nulls, unknown ones dropped; text
    columns already Arrow strings, which :func:`to_arrow` takes as they are),
    and the geometries as a WKB array (``None`` for a layer without
    geometry), EWKB carrying *srid* when one is given. With *dedupe* (the
    default) only the first row of a repeated ``source_key`` is kept; a
    caller that deduplicated the whole frame already passes ``False`` for
    its chunks.
    Geometries must already be WGS84; a frame with another CRS is refused.
    """
    schema = layer_schema(layer)
    out = pd.DataFrame(index=frame.index)
    out["source_key"] = (
        frame["source_key"].astype(object)
        if "source_key" in frame and frame["source_key"].notna().all()
        else source_keys(frame, schema)
    )
    if "id" in frame.columns:
        out["id"] = pd.to_numeric(frame["id"], errors="raise").astype("Int64")
    for col in schema.columns:
        if col.name in frame.columns:
            s = frame[col.name]
        else:
            s = pd.Series([None] * len(frame), index=frame.index, dtype=object)
        out[col.name] = _coerce(s, col.type, col.name, arrow=True)
    wkb: np.ndarray | None = None
    if schema.geometry_type is not None:
        if not isinstance(frame, gpd.GeoDataFrame):
            raise BadInput(f"layer {layer!r} needs geometries", field="geometry")
        crs = frame.crs
        if crs is not None and crs.to_epsg() not in (4326, 4490):
            raise BadInput(
                f"geometries for {layer!r} must be WGS84 (EPSG:4326), got {crs.to_string()}",
                field="geometry",
            )
        geoms = np.asarray(frame.geometry.values, dtype=object)
        if (shapely.is_missing(geoms) | shapely.is_empty(geoms)).any():
            raise BadInput(f"layer {layer!r}: null or empty geometry", field="geometry")
        if "h3_r11" in out:  # events: H3 cells of each point, filled on write (011)
            from gridmap.geo.h3cells import point_cells

            for name, cells in point_cells(geoms).set_axis(out.index).items():
                out[name] = cells
        if srid is not None:
            geoms = shapely.set_srid(geoms, srid)
        wkb = shapely.to_wkb(geoms, output_dimension=2, byte_order=1, include_srid=srid is not None)
    # Duplicates inside one batch would otherwise be stored twice.
    keep = first_of_each_key(out["source_key"]) if dedupe else None
    if keep is not None:
        out = out.loc[keep]
        if wkb is not None:
            wkb = wkb[keep]
    return schema, out, wkb


def first_of_each_key(keys: pd.Series) -> np.ndarray | None:
    """Mask keeping the first row of each repeated key; ``None`` when all keys differ.

    The usual answer (no repeats) comes from the length of Arrow's
    ``unique`` (0.11 s on a million keys; its ``count_distinct`` takes 0.3 s,
    going through a Python list 0.5 s).

    Examples
    --------
    >>> first_of_each_key(pd.Series(["a", "b"])) is None
    True
    >>> first_of_each_key(pd.Series(["a", "b", "a"])).tolist()
    [True, True, False]
    """
    if len(keys) < 2:
        return None
    try:
        values = keys.to_numpy(dtype=object) if keys.dtype == object else keys
        distinct = len(pc.unique(pa.array(values, pa.string(), from_pandas=True)))
    except pa.ArrowException:  # not all text: pandas compares them
        distinct = -1
    if distinct == len(keys):
        return None
    mask: np.ndarray = ~keys.duplicated().to_numpy()
    return mask


def prepare_update(layer: str, frame: pd.DataFrame) -> tuple[LayerSchema, pd.DataFrame]:
    """Check an update frame: an ``id`` column plus known attribute columns, typed."""
    schema = layer_schema(layer)
    if "id" not in frame.columns:
        raise BadInput("an update needs an 'id' column", field="id")
    unknown = [c for c in frame.columns if c != "id" and c not in schema.column_names]
    if unknown:
        raise BadInput(
            f"unknown properties for layer {layer!r}: {', '.join(unknown)}", field=unknown[0]
        )
    out = pd.DataFrame({"id": pd.to_numeric(frame["id"], errors="raise").astype("int64")})
    for name in frame.columns:
        if name != "id":
            out[name] = _coerce(frame[name], schema.column(name).type, name)
    return schema, out


def _coerce(s: pd.Series, type_: str, name: str, *, arrow: bool = False) -> pd.Series:
    """*s* as the column type; text as object values with None for missing,
    or (*arrow*) as an Arrow-backed string Series.
    """
    try:
        if type_ == "int":
            return pd.to_numeric(s, errors="raise").round().astype("Int64")
        if type_ == "float":
            return pd.to_numeric(s, errors="raise").astype("float64")
        if type_ == "bool":
            return s.astype("boolean")
        if type_ == "timestamp":
            return pd.to_datetime(s, utc=True, errors="raise")
        if type_ == "date":
            return pd.to_datetime(s, errors="raise").dt.date.astype(object)
        if type_ == "text[]":
            return s.map(_as_text_list).astype(object)
    except (TypeError, ValueError) as exc:
        raise BadInput(f"column {name!r} is not of type {type_}: {exc}", field=name) from None
    if arrow and (s.dtype == object or isinstance(s.dtype, pd.StringDtype)):
        # strings and missing values straight to Arrow, once (anything else in
        # the column, e.g. numbers, is stringified by pandas below)
        try:
            if s.dtype == object:
                text = pa.array(s.to_numpy(), pa.string(), from_pandas=True)
            else:
                text = pa.array(s, from_pandas=True).cast(pa.string())
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            pass
        else:
            return pd.Series(pd.arrays.ArrowExtensionArray(text), index=s.index)
    # Object dtype with None for missing values (pandas 3 would otherwise use NaN).
    values = s.astype("string").to_numpy(dtype=object, na_value=None)  # type: ignore[call-overload]
    return pd.Series(values, index=s.index, dtype=object)


def _isna(v: Any) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v))


def _as_text_list(v: Any) -> list[str] | None:
    if _isna(v):
        return None
    if isinstance(v, str):
        return [p for p in (x.strip() for x in v.split(",")) if p]
    return [str(x) for x in v]


def iter_chunks(n: int, size: int) -> Iterator[slice]:
    """Slices covering ``range(n)`` in chunks of *size*."""
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


def frame_from_rows(
    schema: LayerSchema, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> gpd.GeoDataFrame | pd.DataFrame:
    """Build the read result from DB rows: ``id``, attributes, then WKB geometry last."""
    df = pd.DataFrame.from_records([tuple(r) for r in rows], columns=list(columns))
    for col in schema.columns:
        if col.name not in df:
            continue
        if col.type == "int":
            df[col.name] = df[col.name].astype("Int64")
        elif col.type == "float":
            df[col.name] = df[col.name].astype("float64")
        elif col.type == "bool":
            df[col.name] = df[col.name].astype("boolean")
        elif col.type == "timestamp":
            df[col.name] = pd.to_datetime(df[col.name], utc=True)
        elif col.type == "text[]":
            df[col.name] = pd.Series(
                [None if v is None else list(v) for v in df[col.name]], index=df.index, dtype=object
            )
        elif col.type == "text":
            df[col.name] = pd.Series(
                [None if _isna(v) else v for v in df[col.name]], index=df.index, dtype=object
            )
    if "id" in df:
        df["id"] = df["id"].astype("int64")
    if schema.geometry_type is None:
        return df
    wkb = df.pop("geometry").to_numpy(dtype=object)
    geoms = shapely.from_wkb(np.array([None if w is None else bytes(w) for w in wkb], dtype=object))
    return gpd.GeoDataFrame(df, geometry=geoms, crs="EPSG:4326")


def to_arrow(
    schema: LayerSchema,
    data: pd.DataFrame,
    wkb: np.ndarray | pa.Array | None,
    *,
    geometry: str = "wkb",
) -> pa.Table:
    """Arrow table of a prepared frame: ``source_key``, [``id``], attributes, then WKB bytes."""
    arrays: dict[str, pa.Array] = {"source_key": pa.array(data["source_key"], pa.string())}
    if "id" in data:
        arrays["id"] = pa.array(data["id"], pa.int64(), from_pandas=True)
    for col in schema.columns:
        s = data[col.name]
        if col.type == "timestamp":
            # Stored to the microsecond (both databases' resolution): drop the nanoseconds.
            arrays[col.name] = pa.Array.from_pandas(
                s.dt.tz_convert("UTC"), type=_ARROW["timestamp"], safe=False
            )
        elif col.type in ("int", "float", "bool"):
            arrays[col.name] = pa.array(s, _ARROW[col.type], from_pandas=True)
        elif isinstance(s.dtype, pd.ArrowDtype) and s.dtype.pyarrow_dtype == _ARROW[col.type]:
            text = pa.array(s)  # prepared as Arrow already (no copy)
            if isinstance(text, pa.ChunkedArray):  # e.g. rows of several frames
                text = text.combine_chunks()
            arrays[col.name] = text
        else:
            values = s.to_numpy(dtype=object)
            arrays[col.name] = pa.array(values, _ARROW[col.type], from_pandas=True)
    if wkb is not None:
        arrays[geometry] = wkb if isinstance(wkb, pa.Array) else pa.array(wkb, pa.binary())
    for name, array in arrays.items():
        _refuse_nul(schema.name, name, array)
    return pa.table(arrays)


def _refuse_nul(layer: str, name: str, array: pa.Array) -> None:
    """Refuse text holding NUL, which PostgreSQL's text cannot store (both stores alike).

    Named here as a 400 instead of failing inside PostgreSQL's COPY. A NUL
    byte in UTF-8 is only ever the NUL character, so the check looks for a
    zero byte in the string data buffer itself (memory speed, ~1 ms per
    million short strings).
    """
    kind = array.type
    if pa.types.is_list(kind):
        array, kind = array.flatten(), kind.value_type
    if not pa.types.is_string(kind) or len(array) == 0:
        return
    offsets, data = array.buffers()[1:3]
    if data is None:
        return
    ends = np.frombuffer(offsets, dtype=np.int32)[array.offset : array.offset + len(array) + 1]
    used = np.frombuffer(data, dtype=np.uint8)[ends[0] : ends[-1]]
    if used.size and not used.all():
        raise BadInput(
            f"layer {layer!r}: column {name!r} contains a NUL character (\\x00), "
            "which text cannot hold",
            field=name,
        )
