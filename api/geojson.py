"""GeoJSON output: frames from the store → JSON-safe properties and FeatureCollection bytes.

Geometries are written by GEOS (``shapely.to_geojson``) and spliced into the
document, so a page of 10,000 features costs one vectorized call plus one
``json.dumps`` per feature. Features a store wrote as JSON text itself
(PostGIS) are spliced in as they are (:func:`feature_collection_text`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd
import shapely

from gridmap.common.scalars import NOT_SCALAR, SCALARS, scalar

__all__ = [
    "feature_collection",
    "feature_collection_text",
    "feature_document",
    "json_column",
    "json_value",
]


def json_value(value: Any) -> Any:
    """One value as a JSON-safe Python value (NA/NaN/±Inf → None, times → ISO 8601 UTC 'Z').

    Examples
    --------
    >>> json_value(pd.Timestamp("2026-11-01T08:00:00+08:00"))
    '2026-11-01T00:00:00Z'
    >>> json_value(float("nan")) is None
    True
    """
    conv = SCALARS.get(type(value))
    if conv is not None:  # the common case: one lookup
        return conv(value)
    if isinstance(value, pd.Timestamp | datetime):
        ts = pd.Timestamp(value)
        ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
        return ts.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple | np.ndarray):
        return [json_value(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): json_value(v) for k, v in value.items()}
    plain = scalar(value)
    return str(value) if plain is NOT_SCALAR else plain


def json_column(values: pd.Series) -> list[Any]:
    """A column as a list of JSON-safe values."""
    if pd.api.types.is_datetime64_any_dtype(values):
        utc = pd.to_datetime(values, utc=True)
        return [None if pd.isna(v) else json_value(v) for v in utc]
    return [json_value(v) for v in values.astype(object)]


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _features(frame: pd.DataFrame, properties: Sequence[str]) -> list[str]:
    n = len(frame)
    if n == 0:
        return []
    ids = frame["id"].to_numpy(dtype="int64")
    geoms = shapely.to_geojson(np.asarray(frame.geometry.values, dtype=object))
    columns = {name: json_column(frame[name]) for name in properties if name in frame.columns}
    out = []
    for i in range(n):
        props = {name: col[i] for name, col in columns.items()}
        geom = geoms[i] if geoms[i] is not None else "null"
        out.append(
            f'{{"type":"Feature","id":{int(ids[i])},"geometry":{geom},'
            f'"properties":{_dumps(props)}}}'
        )
    return out


def feature_collection(
    frame: pd.DataFrame, *, properties: Sequence[str], members: Mapping[str, Any]
) -> bytes:
    """A GeoJSON FeatureCollection of *frame*, with extra top-level *members* (links, counts).

    Examples
    --------
    >>> import geopandas as gpd
    >>> g = gpd.GeoDataFrame({"id": [1], "name": ["a"]}, geometry=[shapely.Point(1, 2)])
    >>> json.loads(feature_collection(g, properties=["name"], members={}))["features"][0]["id"]
    1
    """
    head = _dumps({"type": "FeatureCollection", **members})
    body = ",".join(_features(frame, properties))
    return (head[:-1] + f',"features":[{body}]}}').encode("utf-8")


def feature_collection_text(features: str, *, members: Mapping[str, Any]) -> bytes:
    """A GeoJSON FeatureCollection of Feature objects already written as JSON text.

    *features* is the inside of the ``features`` array (comma-separated
    Features, ``""`` for none); *members* are added at the top level, before it,
    as :func:`feature_collection` does.

    Examples
    --------
    >>> doc = feature_collection_text('{"type":"Feature","id":1}', members={"numberReturned": 1})
    >>> json.loads(doc)["features"][0]["id"], json.loads(doc)["numberReturned"]
    (1, 1)
    """
    head = _dumps({"type": "FeatureCollection", **members})
    return (head[:-1] + ',"features":[' + features + "]}").encode("utf-8")


def feature_document(
    frame: pd.DataFrame, *, properties: Sequence[str], members: Mapping[str, Any]
) -> bytes:
    """The single feature of *frame* as a GeoJSON Feature with extra *members*."""
    feature = _features(frame.iloc[:1], properties)[0]
    extra = _dumps(dict(members))
    return (feature[:-1] + ("," + extra[1:] if len(extra) > 2 else "}")).encode("utf-8")
