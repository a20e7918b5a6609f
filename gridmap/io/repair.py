"""Validate and repair imported geometries, with a per-row report of what happened.

Every row ends up ``ok``, ``repaired`` or ``rejected``, with a reason that a
person can act on. The rules, applied vectorized over the whole frame:

* null or EMPTY geometries, unreadable ones, non-finite coordinates (NaN,
  ±Inf, 1e400) and coordinates outside longitude [-180, 180] / latitude
  [-90, 90] are rejected;
* Z and M values are dropped (gridmap is 2-D); curves were linearized by the
  reader;
* **Polygon layers** keep polygons only: invalid ones are repaired with
  ``shapely.make_valid(method="structure", keep_collapsed=False)`` keeping the
  polygonal parts; what collapses to zero area is rejected; rings are oriented
  exterior counter-clockwise (RFC 7946); the result is a MultiPolygon;
* **LineString layers** keep lines only, without zero-length parts; the result
  is a MultiLineString;
* **Point layers** keep points (a MultiPoint of one point becomes that point);
* **Geometry layers** (e.g. ``key_areas``) accept any type, polygons and lines
  repaired as above.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Mapping

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridmap.common.errors import BadInput
from gridmap.io.readers import GEOMETRY_NOTES

__all__ = ["GEOMETRY_TYPES", "STATUSES", "repair"]

#: Layer geometry types :func:`repair` knows (``LayerSchema.geometry_type``).
GEOMETRY_TYPES: tuple[str, ...] = ("Polygon", "LineString", "Point", "Geometry")

#: Row statuses of the report.
STATUSES: tuple[str, ...] = ("ok", "repaired", "rejected")

_POINT, _LINE, _RING, _POLYGON, _MPOINT, _MLINE, _MPOLYGON, _COLLECTION = range(8)
_TYPE_NAMES = {
    -1: "missing",
    _POINT: "Point",
    _LINE: "LineString",
    _RING: "LinearRing",
    _POLYGON: "Polygon",
    _MPOINT: "MultiPoint",
    _MLINE: "MultiLineString",
    _MPOLYGON: "MultiPolygon",
    _COLLECTION: "GeometryCollection",
}
_ALIASES = {"MultiPolygon": "Polygon", "MultiLineString": "LineString", "MultiPoint": "Point"}


class _Report:
    """Statuses and reasons being built up, one per input row."""

    def __init__(self, n: int) -> None:
        self.status = np.full(n, "ok", dtype=object)
        self.reason = np.full(n, "", dtype=object)
        self.alive = np.ones(n, dtype=bool)

    def _append(self, rows: np.ndarray, text: str | np.ndarray) -> None:
        if rows.size == 0:
            return
        old = self.reason[rows]
        add = np.broadcast_to(np.asarray(text, dtype=object), old.shape)
        joined = [a if not o else f"{o}; {a}" for o, a in zip(old, add, strict=True)]
        self.reason[rows] = np.asarray(joined, dtype=object)

    def reject(self, mask: np.ndarray, text: str | np.ndarray) -> None:
        rows = np.flatnonzero(mask & self.alive)
        if isinstance(text, np.ndarray):
            text = text[mask & self.alive] if text.shape == mask.shape else text
        self.status[rows] = "rejected"
        self._append(rows, text)
        self.alive[rows] = False

    def repaired(self, mask: np.ndarray, text: str | np.ndarray) -> None:
        rows = np.flatnonzero(mask & self.alive)
        if isinstance(text, np.ndarray):
            text = text[mask & self.alive] if text.shape == mask.shape else text
        self.status[rows] = "repaired"
        self._append(rows, text)


def repair(
    gdf: gpd.GeoDataFrame,
    geometry_type: str,
    *,
    notes: Mapping[Hashable, str] | None = None,
) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """Validate and repair the geometries of *gdf* for a layer of *geometry_type*.

    Parameters
    ----------
    gdf : geopandas.GeoDataFrame
        Rows to check, geometries in WGS84 (as :func:`gridmap.io.readers.read_file`
        returns them).
    geometry_type : {"Polygon", "LineString", "Point", "Geometry"}
        The layer's geometry type (``LayerSchema.geometry_type``).
    notes : mapping, optional
        ``{row label: note}`` about geometries the reader had to fix or could
        not read; defaults to ``gdf.attrs["geometry_notes"]``.

    Returns
    -------
    kept : geopandas.GeoDataFrame
        The rows that are ``ok`` or ``repaired``, with their original index
        and repaired geometries (MultiPolygon for Polygon layers,
        MultiLineString for LineString layers).
    report : pandas.DataFrame
        One row per input row, aligned to ``gdf.index``, with columns
        ``status`` (``"ok"``, ``"repaired"`` or ``"rejected"``) and ``reason``
        (``""`` when ok).

    Raises
    ------
    gridmap.common.errors.BadInput
        For an unknown *geometry_type*.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> bowtie = shapely.from_wkt("POLYGON ((0 0, 2 2, 2 0, 0 2, 0 0))")
    >>> frame = gpd.GeoDataFrame(geometry=[bowtie, None], crs=4326)
    >>> kept, report = repair(frame, "Polygon")
    >>> report.status.tolist()
    ['repaired', 'rejected']
    >>> report.reason.tolist()
    ['self-intersection repaired (bow-tie split into 2 parts)', 'null geometry']
    >>> kept.geometry.iloc[0].geom_type
    'MultiPolygon'
    """
    kind = _ALIASES.get(geometry_type, geometry_type)
    if kind not in GEOMETRY_TYPES:
        raise BadInput(
            f"unknown geometry type {geometry_type!r}; expected one of {', '.join(GEOMETRY_TYPES)}",
            field="geometry_type",
        )
    if notes is None:
        notes = gdf.attrs.get(GEOMETRY_NOTES) or {}
    geoms = np.array(gdf.geometry.values, dtype=object, copy=True)
    rep = _Report(len(geoms))
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        _apply_notes(rep, geoms, gdf.index, notes)
        geoms = _common(rep, geoms)
        if kind == "Polygon":
            geoms = _polygon_layer(rep, geoms)
        elif kind == "LineString":
            geoms = _line_layer(rep, geoms)
        elif kind == "Point":
            geoms = _point_layer(rep, geoms)
        else:
            geoms = _any_layer(rep, geoms)
    report = pd.DataFrame(
        {"status": rep.status.astype(str), "reason": rep.reason.astype(str)}, index=gdf.index
    )
    kept = gdf.loc[rep.alive].copy()
    kept[gdf.geometry.name] = gpd.GeoSeries(geoms[rep.alive], index=kept.index, crs=gdf.crs)
    kept.attrs.pop(GEOMETRY_NOTES, None)
    return kept, report


# ----------------------------------------------------------------------------- shared steps


def _apply_notes(
    rep: _Report, geoms: np.ndarray, index: pd.Index, notes: Mapping[Hashable, str]
) -> None:
    if not notes:
        return
    labels = [k for k in notes if k in index]
    if not labels:
        return
    pos = index.get_indexer(pd.Index(labels))
    texts = np.asarray([notes[k] for k in labels], dtype=object)
    missing = shapely.is_missing(geoms[pos])
    for p, text, gone in zip(pos, texts, missing, strict=True):
        mask = np.zeros(len(geoms), dtype=bool)
        mask[p] = True
        if gone:
            rep.reject(mask, str(text))
        else:
            rep.repaired(mask, str(text))


def _common(rep: _Report, geoms: np.ndarray) -> np.ndarray:
    """Null, empty, dimension, finiteness and range checks for every layer."""
    rep.reject(shapely.is_missing(geoms), "null geometry")
    rep.reject(shapely.is_empty(geoms), "empty geometry")
    live = rep.alive
    extra = np.zeros(len(geoms), dtype=bool)
    extra[live] = shapely.has_z(geoms[live]) | shapely.has_m(geoms[live])
    if extra.any():
        geoms[extra] = shapely.force_2d(geoms[extra])
        rep.repaired(extra, "reduced to 2-D (Z/M values dropped)")
    live = np.flatnonzero(rep.alive)
    coords, idx = shapely.get_coordinates(geoms[live], return_index=True)
    if len(coords):
        finite = np.isfinite(coords).all(axis=1)
        bad = np.zeros(len(geoms), dtype=bool)
        bad[live[np.unique(idx[~finite])]] = True
        rep.reject(bad, "non-finite coordinates (NaN or infinity)")
        x, y = coords[:, 0], coords[:, 1]
        out = finite & ((x < -180) | (x > 180) | (y < -90) | (y > 90))
        far = np.zeros(len(geoms), dtype=bool)
        far[live[np.unique(idx[out])]] = True
        # Would the row fit with x and y swapped? Then say so.
        unswappable = finite & ((np.abs(x) > 90) | (np.abs(y) > 180))
        no_swap = np.zeros(len(geoms), dtype=bool)
        no_swap[live[np.unique(idx[unswappable])]] = True
        outside = "coordinates outside longitude [-180, 180] / latitude [-90, 90]"
        rep.reject(far & ~no_swap, outside + " (latitude and longitude swapped?)")
        rep.reject(far, outside)
    return geoms


def _type_names(type_ids: np.ndarray) -> np.ndarray:
    return np.asarray([_TYPE_NAMES.get(int(t), "unknown") for t in type_ids], dtype=object)


def _flatten(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Explode multi-part geometries and collections, recursively, into single parts."""
    parts = np.asarray(geoms, dtype=object)
    idx = np.arange(len(parts))
    while True:
        types = shapely.get_type_id(parts)
        multi = types >= _MPOINT
        if not multi.any():
            return parts, idx
        sub, sub_idx = shapely.get_parts(parts[multi], return_index=True)
        keep = ~multi
        parts = np.concatenate([parts[keep], np.asarray(sub, dtype=object)])
        idx = np.concatenate([idx[keep], idx[multi][sub_idx]])
        order = np.argsort(idx, kind="stable")
        parts, idx = parts[order], idx[order]


def _collect(parts: np.ndarray, idx: np.ndarray, n: int, kind: str) -> np.ndarray:
    """Build one Multi* geometry per row index from single parts (None where no part)."""
    out = np.empty(n, dtype=object)
    out[:] = None
    if len(parts) == 0:
        return out
    rows, inverse = np.unique(idx, return_inverse=True)
    build = shapely.multipolygons if kind == "Polygon" else shapely.multilinestrings
    out[rows] = np.asarray(build(parts, indices=inverse), dtype=object)
    return out


def _keep_types(
    rep: _Report, geoms: np.ndarray, wanted: tuple[int, ...], what: str
) -> tuple[np.ndarray, np.ndarray]:
    """Flatten the live rows to parts of the wanted types; reject rows without any."""
    live = np.flatnonzero(rep.alive)
    types = shapely.get_type_id(geoms)
    parts, pidx = _flatten(geoms[live])
    ptypes = shapely.get_type_id(parts)
    wanted_part = np.isin(ptypes, wanted) & ~shapely.is_empty(parts)
    rows = live[pidx]
    has = np.zeros(len(geoms), dtype=bool)
    has[rows[wanted_part]] = True
    other = np.zeros(len(geoms), dtype=bool)
    other[rows[~wanted_part]] = True
    names = _type_names(types)
    rep.reject(rep.alive & ~has, np.asarray([f"not a {what} ({t})" for t in names], dtype=object))
    rep.repaired(
        rep.alive & has & other,
        np.asarray([f"kept the {what} parts of a {t}" for t in names], dtype=object),
    )
    alive_part = rep.alive[rows] & wanted_part
    return parts[alive_part], rows[alive_part]


# ----------------------------------------------------------------------------- polygons


_POLYGON_REASONS = (
    ("Hole lies outside shell", "hole outside shell repaired"),
    ("Nested shells", "nested shells merged"),
    ("Nested holes", "nested holes repaired"),
    ("Interior is disconnected", "disconnected interior repaired"),
    ("Duplicate Rings", "duplicate rings removed"),
    ("Too few points", "ring with too few points repaired"),
)


def _fix_polygons(rep: _Report, geoms: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Repair the (multi)polygons ``geoms[rows]``; returns the new geometries for those rows."""
    sub = geoms[rows]
    invalid = ~shapely.is_valid(sub)
    fixed = sub.copy()
    if invalid.any():
        bad = sub[invalid]
        why = np.asarray(shapely.is_valid_reason(bad), dtype=object)
        made = np.asarray(
            shapely.make_valid(bad, method="structure", keep_collapsed=False), dtype=object
        )
        parts, pidx = _flatten(made)
        ok_part = (shapely.get_type_id(parts) == _POLYGON) & (shapely.area(parts) > 0)
        rebuilt = _collect(parts[ok_part], pidx[ok_part], len(bad), "Polygon")
        fixed[invalid] = rebuilt
        before = shapely.get_num_geometries(bad)
        after = np.where(shapely.is_missing(rebuilt), 0, shapely.get_num_geometries(rebuilt))
        parts_valid = _parts_valid(bad)
        reasons = np.asarray(
            [
                _polygon_reason(str(w), int(t), int(b), int(a), bool(v))
                for w, t, b, a, v in zip(
                    why, shapely.get_type_id(bad), before, after, parts_valid, strict=True
                )
            ],
            dtype=object,
        )
        collapsed = shapely.is_missing(rebuilt)
        mask = np.zeros(len(geoms), dtype=bool)
        mask[rows[invalid][collapsed]] = True
        rep.reject(
            mask,
            np.asarray(
                [f"ring collapsed to zero area ({_geos_reason(str(w))})" for w in why[collapsed]],
                dtype=object,
            ),
        )
        mask = np.zeros(len(geoms), dtype=bool)
        mask[rows[invalid][~collapsed]] = True
        full = np.empty(len(geoms), dtype=object)
        full[rows[invalid][~collapsed]] = reasons[~collapsed]
        rep.repaired(mask, full)
    zero = ~shapely.is_missing(fixed) & (shapely.area(fixed) <= 0)
    mask = np.zeros(len(geoms), dtype=bool)
    mask[rows[zero]] = True
    rep.reject(mask, "ring collapsed to zero area")
    return np.asarray(fixed, dtype=object)


def _parts_valid(geoms: np.ndarray) -> np.ndarray:
    """Whether every part of each multipolygon is valid on its own."""
    parts, idx = shapely.get_parts(geoms, return_index=True)
    invalid_parts = np.bincount(idx[~shapely.is_valid(parts)], minlength=len(geoms))
    return np.asarray(invalid_parts == 0, dtype=bool)


def _geos_reason(why: str) -> str:
    return why.split("[", 1)[0].strip().lower()


def _polygon_reason(why: str, type_id: int, before: int, after: int, parts_valid: bool) -> str:
    for key, text in _POLYGON_REASONS:
        if why.startswith(key):
            return text
    if "Self-intersection" in why:
        if type_id == _MPOLYGON and parts_valid:
            return "overlapping parts merged"
        if after > before:
            return f"self-intersection repaired (bow-tie split into {after} parts)"
        return "self-intersection repaired (spike or loop removed)"
    return f"invalid polygon repaired ({_geos_reason(why)})"


def _orient(rep: _Report, geoms: np.ndarray, rows: np.ndarray) -> None:
    """Exterior rings counter-clockwise, holes clockwise (RFC 7946); report changes."""
    if rows.size == 0:
        return
    before = geoms[rows]
    after = np.asarray(shapely.orient_polygons(before, exterior_cw=False), dtype=object)
    changed = ~shapely.equals_identical(before, after)
    geoms[rows] = after
    mask = np.zeros(len(geoms), dtype=bool)
    mask[rows[changed]] = True
    mask &= rep.status == "ok"
    rep.repaired(mask, "ring winding corrected")


def _polygon_layer(rep: _Report, geoms: np.ndarray) -> np.ndarray:
    parts, rows = _keep_types(rep, geoms, (_POLYGON,), "polygon")
    multi = _collect(parts, rows, len(geoms), "Polygon")
    live = np.flatnonzero(rep.alive)
    geoms[live] = multi[live]
    geoms[live] = _fix_polygons(rep, geoms, live)
    live = np.flatnonzero(rep.alive)
    _orient(rep, geoms, live)
    return geoms


# ----------------------------------------------------------------------------- lines


def _ring_to_line(parts: np.ndarray) -> np.ndarray:
    rings = shapely.get_type_id(parts) == _RING
    if rings.any():
        parts = parts.copy()
        parts[rings] = [shapely.LineString(shapely.get_coordinates(r)) for r in parts[rings]]
    return parts


def _line_layer(rep: _Report, geoms: np.ndarray) -> np.ndarray:
    parts, rows = _keep_types(rep, geoms, (_LINE, _RING), "line")
    parts = _ring_to_line(parts)
    return _drop_degenerate(rep, geoms, parts, rows)


def _drop_degenerate(
    rep: _Report, geoms: np.ndarray, parts: np.ndarray, rows: np.ndarray
) -> np.ndarray:
    """Drop zero-length line parts; reject rows left without any; rows become MultiLineStrings."""
    degenerate = shapely.length(parts) <= 0
    some = np.zeros(len(geoms), dtype=bool)
    some[rows[~degenerate]] = True
    dropped = np.bincount(rows[degenerate], minlength=len(geoms))
    rep.reject(rep.alive & ~some & (dropped > 0), "degenerate line (zero length)")
    rep.repaired(
        rep.alive & (dropped > 0),
        np.asarray([f"dropped {d} zero-length part(s)" for d in dropped], dtype=object),
    )
    multi = _collect(parts[~degenerate], rows[~degenerate], len(geoms), "LineString")
    live = np.flatnonzero(rep.alive)
    geoms[live] = multi[live]
    return geoms


# ----------------------------------------------------------------------------- points


def _point_layer(rep: _Report, geoms: np.ndarray) -> np.ndarray:
    types = shapely.get_type_id(geoms)
    single = rep.alive & (types == _MPOINT) & (shapely.get_num_geometries(geoms) == 1)
    if single.any():
        geoms[single] = shapely.get_geometry(geoms[single], 0)
        rep.repaired(single, "MultiPoint of one point reduced to a Point")
    types = shapely.get_type_id(geoms)
    names = _type_names(types)
    rep.reject(
        rep.alive & (types != _POINT),
        np.asarray([f"not a point ({t})" for t in names], dtype=object),
    )
    return geoms


# ----------------------------------------------------------------------------- any type


def _any_layer(rep: _Report, geoms: np.ndarray) -> np.ndarray:
    types = shapely.get_type_id(geoms)
    polygonal = np.flatnonzero(rep.alive & np.isin(types, (_POLYGON, _MPOLYGON)))
    if polygonal.size:
        geoms[polygonal] = _fix_polygons(rep, geoms, polygonal)
        _orient(rep, geoms, polygonal[rep.alive[polygonal]])
    lineal = rep.alive & np.isin(types, (_LINE, _RING, _MLINE))
    if lineal.any():
        rows_all = np.flatnonzero(lineal)
        parts, pidx = _flatten(geoms[rows_all])
        parts = _ring_to_line(parts)
        rows = rows_all[pidx]
        degenerate = shapely.length(parts) <= 0
        some = np.zeros(len(geoms), dtype=bool)
        some[rows[~degenerate]] = True
        rep.reject(lineal & ~some, "degenerate line (zero length)")
    collections = np.flatnonzero(rep.alive & (types == _COLLECTION))
    if collections.size:
        sub = geoms[collections]
        invalid = ~shapely.is_valid(sub)
        if invalid.any():
            made = np.asarray(
                shapely.make_valid(sub[invalid], method="structure", keep_collapsed=False),
                dtype=object,
            )
            sub[invalid] = made
            geoms[collections] = sub
            mask = np.zeros(len(geoms), dtype=bool)
            mask[collections[invalid]] = True
            rep.repaired(mask, "invalid collection repaired")
            empty = np.zeros(len(geoms), dtype=bool)
            empty[collections] = shapely.is_empty(sub)
            rep.reject(empty, "collection collapsed to nothing")
    return geoms
