"""Export a stored layer to a file; the format follows the suffix.

=================  ===============================================================
``.gpkg``          GeoPackage, one layer named like the gridmap layer
``.geojson``       GeoJSON (RFC 7946 coordinates: WGS84, full precision)
``.parquet``       GeoParquet (``.geoparquet`` too)
``.fgb``           FlatGeobuf (with a spatial index)
``.csv``           UTF-8 with BOM (opens in Excel), geometry as WKT in ``geometry``,
                   plus ``lon``/``lat`` for points
=================  ===============================================================

What is exported imports back unchanged with :func:`gridmap.io.importer.import_layer`:
the ``source``/``source_id`` columns keep each row's identity, so re-importing
into the same store inserts nothing. List columns (``workers``) are written as
comma-separated text where the format has no lists.

Secrets are never exported: ``users`` is written without its password and
API-key hashes (:data:`SECRET_COLUMNS`). CSV cells are guarded against
spreadsheet formula injection: a text cell that starts with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return (or with quotes followed by one) gets
a leading ``'``; gridmap's CSV reader removes it again. The file is written
next to the target and moved into place when complete, so a failed export
never leaves half a file.
"""

from __future__ import annotations

import os
import uuid
import warnings
from pathlib import Path
from typing import Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from gridmap.common.errors import BadInput, UnsupportedFormat
from gridmap.common.model import LayerSchema, layer_schema
from gridmap.storage.base import Store

__all__ = ["EXPORT_SUFFIXES", "SECRET_COLUMNS", "export_layer", "guard_formula", "write_frame"]

#: Suffix → format.
EXPORT_SUFFIXES: dict[str, Literal["gpkg", "geojson", "parquet", "csv", "fgb"]] = {
    ".gpkg": "gpkg",
    ".fgb": "fgb",
    ".geojson": "geojson",
    ".json": "geojson",
    ".parquet": "parquet",
    ".geoparquet": "parquet",
    ".csv": "csv",
}

#: Columns never written to a file: password and API-key hashes (a stolen export would
#: let anyone guess passwords offline). ``export layer users`` writes the rest.
SECRET_COLUMNS: dict[str, tuple[str, ...]] = {
    "users": ("password_hash", "api_key_hash"),
    "webhook_subscriptions": ("secret",),  # webhook signing keys
}

_TRIGGER = r"^('*[=+\-@\t\r])"


def guard_formula(values: pd.Series) -> pd.Series:
    r"""Prefix ``'`` to text that a spreadsheet would run as a formula.

    Parameters
    ----------
    values : pandas.Series
        Text cells (others are left as they are).

    Returns
    -------
    pandas.Series
        The guarded cells, aligned to *values*.

    Examples
    --------
    >>> import pandas as pd
    >>> cells = pd.Series(["=1+1", "-5", "@SUM(A1)", "\tx", "ok", "'=x", None], dtype=object)
    >>> guard_formula(cells).tolist()
    ["'=1+1", "'-5", "'@SUM(A1)", "'\tx", 'ok', "''=x", None]
    """
    is_text = values.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)
    out = values.astype(object).copy()
    if is_text.any():
        text = values[is_text].astype("string")
        out[is_text] = text.str.replace(_TRIGGER, r"'\1", regex=True).astype(object)
    return out


def _lists_to_text(frame: pd.DataFrame, schema: LayerSchema) -> pd.DataFrame:
    for col in schema.columns:
        if col.type == "text[]" and col.name in frame:
            frame[col.name] = frame[col.name].map(
                lambda v: None if v is None else ",".join(str(x) for x in v)
            )
    return frame


def _csv_frame(frame: pd.DataFrame, schema: LayerSchema) -> pd.DataFrame:
    out = _lists_to_text(pd.DataFrame(frame.drop(columns=["geometry"], errors="ignore")), schema)
    for col in schema.columns:
        if col.name in out and col.type == "timestamp":
            stamps = pd.to_datetime(out[col.name], utc=True)
            out[col.name] = stamps.map(lambda t: None if pd.isna(t) else t.isoformat())
    for name in out.columns:
        if out[name].dtype == object or pd.api.types.is_string_dtype(out[name].dtype):
            out[name] = guard_formula(out[name].astype(object))
    if isinstance(frame, gpd.GeoDataFrame):
        geoms = np.asarray(frame.geometry.values, dtype=object)
        points = shapely.get_type_id(geoms) == 0
        out["lon"] = np.where(points, shapely.get_x(geoms), np.nan)
        out["lat"] = np.where(points, shapely.get_y(geoms), np.nan)
        out["geometry"] = shapely.to_wkt(geoms, rounding_precision=-1, trim=True)
    return out


def _write(frame: pd.DataFrame, schema: LayerSchema, kind: str, target: Path) -> None:
    if kind == "csv":
        _csv_frame(frame, schema).to_csv(target, index=False, encoding="utf-8-sig")
        return
    if kind == "parquet":
        frame.to_parquet(target, index=False)
        return
    frame = _lists_to_text(frame.copy(), schema)
    driver = {"gpkg": "GPKG", "fgb": "FlatGeobuf"}.get(kind, "GeoJSON")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        pyogrio.write_dataframe(frame, target, layer=schema.name, driver=driver, use_arrow=True)


def write_frame(frame: pd.DataFrame, layer: str, kind: str, target: Path) -> None:
    """Write rows of *layer* already read (and filtered) to *target* as *kind*.

    *kind* is a value of :data:`EXPORT_SUFFIXES` (``gpkg``, ``fgb``, ``parquet``,
    ``csv``, ``geojson``); CSV cells are guarded against formula injection as in
    :func:`export_layer`. Used by the HTTP exports (``f=gpkg`` …) of
    ``/collections/{layer}/items``.
    """
    _write(frame, layer_schema(layer), kind, target)


def export_layer(store: Store, layer: str, path: str | os.PathLike[str]) -> int:
    """Write every row of *layer* to *path*; the suffix picks the format.

    Parameters
    ----------
    store : Store
        Where the layer is stored.
    layer : str
        Layer name, e.g. ``"buildings"``.
    path : str or PathLike
        Target file: ``.gpkg``, ``.geojson``, ``.parquet`` or ``.csv``;
        replaced if it exists.

    Returns
    -------
    int
        Rows written.

    Raises
    ------
    gridmap.common.errors.UnknownLayer
        For a layer that is not in the model.
    gridmap.common.errors.UnsupportedFormat
        For another suffix, or GeoJSON for a layer without geometry.

    Examples
    --------
    >>> import tempfile, pathlib, geopandas as gpd, shapely
    >>> from gridmap.storage import open_store
    >>> store = open_store(":memory:", migrate=True)
    >>> frame = gpd.GeoDataFrame({"name": ["=cmd"], "source": ["demo"], "source_id": ["1"]},
    ...                          geometry=[shapely.Point(116.39, 39.9)], crs=4326)
    >>> _ = store.write("key_areas", frame)
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "key_areas.csv"
    >>> export_layer(store, "key_areas", out)
    1
    >>> "'=cmd" in out.read_text(encoding="utf-8-sig")
    True
    """
    schema = layer_schema(layer)
    p = Path(path)
    kind = EXPORT_SUFFIXES.get(p.suffix.lower())
    if kind is None:
        raise UnsupportedFormat(
            f"{p.name}: cannot export to {p.suffix or '(no suffix)'!r}; "
            f"use one of {', '.join(sorted(EXPORT_SUFFIXES))}",
            field="path",
        )
    if schema.geometry_type is None and kind in ("geojson", "fgb"):
        raise UnsupportedFormat(
            f"{p.name}: layer {layer!r} has no geometry; export it to .csv, .parquet or .gpkg",
            field="path",
        )
    if p.exists() and p.is_dir():
        raise BadInput(f"{p}: is a directory", field="path")
    if not p.parent.exists():
        raise BadInput(f"{p.parent}: no such directory", field="path")
    frame = store.read(layer)
    frame = frame.drop(columns=[c for c in SECRET_COLUMNS.get(schema.name, ()) if c in frame])
    tmp = p.with_name(f".{p.stem}.{uuid.uuid4().hex}.tmp{p.suffix}")
    try:
        _write(frame, schema, kind, tmp)
        os.replace(tmp, p)
    finally:
        for leftover in (tmp, *tmp.parent.glob(tmp.name + "-*")):
            if leftover.exists():
                leftover.unlink()
    return len(frame)
