"""A cheap fingerprint of layers that changes whenever their rows change.

Caches built from a store (the point locator of :mod:`gridmap.geo.locate`) ask
:func:`data_version` every now and then and rebuild when the answer differs.
One query, no geometry decoded on the server:

- **PostGIS**: per table the row count and the sum of the rows' ``xmin``
  (the id of the transaction that wrote each row version). An insert or a
  delete changes the count; an update writes a new row version whose
  ``xmin`` is a newer transaction, so the sum changes. Committed writes of
  every process and connection are seen, the moment they commit.
- **DuckDB**: per table the row count and the XOR of a hash of every whole
  row (geometry included). The embedded file is opened by one process only,
  so all its writers are in this process; the fingerprint is exact up to
  64-bit hash collisions.

Both are full scans of the named tables, cheap for the small lookup layers
(grids, admin units, key areas, workers: about 1 ms per few thousand rows);
callers rate-limit them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, cast

from gridmap.common.model import layer_schema

__all__ = ["data_version"]


class _SqlStore(Protocol):
    dialect: str

    def sql(self, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...


def _query(dialect: str, tables: Sequence[str]) -> str:
    if dialect == "postgis":
        part = "SELECT {i} AS k, count(*) AS n, coalesce(sum(xmin::text::bigint), 0) AS v FROM {t}"
    else:
        part = "SELECT {i} AS k, count(*) AS n, coalesce(bit_xor(hash(t)), 0) AS v FROM {t} t"
    union = " UNION ALL ".join(part.format(i=i, t=t) for i, t in enumerate(tables))
    return f"SELECT n, v FROM ({union}) AS versions ORDER BY k"


def data_version(store: Any, layers: Sequence[str]) -> tuple[Any, ...]:
    """A value that differs whenever a row of *layers* was inserted, updated or deleted.

    Parameters
    ----------
    store : Store
        A PostGIS or DuckDB store. On PostGIS call it inside
        ``store.scoped(ALL_AREAS)`` when the store is not trusted (row-level
        security hides the rows of other areas otherwise).
    layers : sequence of str
        Layer names (:data:`gridmap.common.model.LAYERS`).

    Returns
    -------
    tuple
        ``(count, fingerprint)`` per layer, flattened; compare with ``==``.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> from gridmap.storage import open_store
    >>> store = open_store(":memory:", migrate=True)
    >>> before = data_version(store, ["key_areas"])
    >>> frame = gpd.GeoDataFrame({"name": ["市场"], "kind": ["market"], "source_id": ["k1"]},
    ...                          geometry=[shapely.box(0, 0, 1, 1)], crs=4326)
    >>> _ = store.write("key_areas", frame)
    >>> data_version(store, ["key_areas"]) == before
    False
    """
    tables = [layer_schema(name).name for name in layers]
    if not tables:
        return ()
    sql_store = cast(_SqlStore, store)
    rows = sql_store.sql(_query(sql_store.dialect, tables))
    return tuple(v for row in rows for v in (int(row[0]), int(row[1])))
