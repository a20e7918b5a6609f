"""Rows of an import that are stored already: unchanged, or changed since.

An import is idempotent by source key (``source`` + ``source_id``): a row
whose key is stored is not inserted again. A corrected boundary file keeps
its feature ids, so its changed rows have stored keys too; they must not be
skipped silently. :func:`stored_twins` finds, for each row of an import, the
stored row with the same key and what differs (attributes, geometry); the
importer then reports the changed rows, or replaces them when asked
(``gridmap import layer … --update``).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridmap.common.model import LayerSchema
from gridmap.storage.base import Store, source_keys

__all__ = ["IGNORED_COLUMNS", "stored_twins"]

#: Columns an import never sets, so never compared (validity is the store's own).
IGNORED_COLUMNS = frozenset({"valid_from", "valid_to"})
_CHUNK = 1_000


def _same_values(a: pd.Series, b: pd.Series, kind: str) -> np.ndarray:
    """Elementwise equality of two aligned columns, nulls equal to nulls."""
    if kind in ("int", "float"):
        x = pd.to_numeric(a, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        y = pd.to_numeric(b, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        both = np.isnan(x) & np.isnan(y)
        close = np.isclose(x, y, rtol=1e-9, atol=1e-9)
        return np.asarray(both | close, dtype=bool)
    if kind == "text[]":
        return np.array(
            [list(u or []) == list(v or []) for u, v in zip(a, b, strict=True)], dtype=bool
        )
    x = a.astype("string").fillna("\x00").to_numpy(dtype=object)
    y = b.astype("string").fillna("\x00").to_numpy(dtype=object)
    return np.asarray(x == y, dtype=bool)


def _multi(geoms: np.ndarray) -> np.ndarray:
    """Polygons as one-part MultiPolygons, lines as MultiLineStrings, for comparison."""
    out = geoms.copy()
    kinds = shapely.get_type_id(out)
    for kind, maker in ((3, shapely.multipolygons), (1, shapely.multilinestrings)):
        mask = kinds == kind
        if mask.any():
            out[mask] = [maker([g]) for g in out[mask]]
    return shapely.normalize(out)


def stored_twins(store: Store, schema: LayerSchema, data: pd.DataFrame) -> pd.DataFrame:
    """The stored row of each imported row that has the same source key, and what differs.

    Parameters
    ----------
    store : Store
        Where the layer is stored.
    schema : LayerSchema
        The layer.
    data : DataFrame
        Rows about to be written (the layer's columns, ``source``, ``source_id``).

    Returns
    -------
    pandas.DataFrame
        Indexed by the rows of *data* that have a stored twin: ``stored_id``
        and ``changed`` (the columns that differ, comma-separated; ``""``
        when the rows are the same).
    """
    empty = pd.DataFrame(
        {"stored_id": pd.Series(dtype="int64"), "changed": pd.Series(dtype=object)}
    )
    if len(data) == 0 or "source_id" not in data or data["source_id"].isna().all():
        return empty
    keys = source_keys(data, schema)
    sids = sorted({str(s) for s in data["source_id"].dropna()})
    parts = []
    for i in range(0, len(sids), _CHUNK):
        parts.append(store.read(schema.name, where={"source_id": sids[i : i + _CHUNK]}))
    stored = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if stored.empty:
        return empty
    stored_keys = source_keys(stored, schema)
    position = {k: i for i, k in enumerate(stored_keys)}
    mine = keys.map(lambda k: position.get(k, -1))
    hit = mine[mine >= 0]
    if hit.empty:
        return empty
    ours = data.loc[hit.index]
    theirs = stored.iloc[hit.to_numpy()].set_index(hit.index)
    differ: list[list[str]] = [[] for _ in range(len(hit))]
    for col in schema.columns:
        if col.name in IGNORED_COLUMNS or col.name not in ours or col.name not in theirs:
            continue
        same = _same_values(ours[col.name], theirs[col.name], col.type)
        for j in np.flatnonzero(~same):
            differ[j].append(col.name)
    if schema.geometry_type is not None and isinstance(ours, gpd.GeoDataFrame):
        a = _multi(np.asarray(ours.geometry.values, dtype=object))
        b = _multi(np.asarray(theirs.geometry.values, dtype=object))
        same_geom = shapely.equals_exact(a, b, tolerance=1e-9)
        for j in np.flatnonzero(~same_geom):
            differ[j].append("geometry")
    return pd.DataFrame(
        {
            "stored_id": theirs["id"].astype("int64").to_numpy(),
            "changed": [", ".join(d) for d in differ],
        },
        index=hit.index,
    )
