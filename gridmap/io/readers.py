"""Read vector files of any common format and CRS into WGS84 GeoDataFrames.

Formats are chosen by suffix:

========================  ==========================================================
``.geojson``, ``.json``   GeoJSON (pyogrio/GDAL); no CRS member means WGS84
``.gpkg``                 GeoPackage (pass ``layer=`` when it holds several layers)
``.shp``, ``.zip``        Shapefile, also zipped
``.fgb``                  FlatGeobuf
``.parquet``, ``.geoparquet``  GeoParquet (a plain Parquet table is read like a CSV)
``.csv``                  text with lon/lat columns or a WKT column
========================  ==========================================================

CRS rules, in order:

1. ``crs=`` overrides whatever the file says: ``"wgs84"``, ``"cgcs2000"``
   (EPSG:4490, taken as WGS84: they differ by less than a metre), ``"gcj02"``
   and ``"bd09"`` (shifted with :mod:`gridmap.geo.chinacrs`, every vertex of every
   geometry), or any ``"EPSG:n"`` pyproj knows (x = easting/longitude).
2. Otherwise the file's own CRS (a ``.prj``, the GeoPackage or GeoParquet
   metadata, a legacy GeoJSON ``crs`` member, an EWKT ``SRID=n;`` prefix).
3. Otherwise WGS84, as RFC 7946 says for GeoJSON.

A projected ``crs=`` (such as ``EPSG:3857``) is refused for a file whose
coordinates all lie within longitude/latitude range: they are degrees, and
read as metres they would land near (0, 0) unnoticed. After conversion the
coordinates are checked: when most geometries fall outside longitude
[-180, 180] / latitude [-90, 90] the file is refused with a hint ("looks
projected, pass --crs"); the few stray rows of an otherwise sound file are
left for :func:`gridmap.io.repair.repair` to reject row by row, so nothing is
dropped silently.

CSV files are decoded as UTF-8 (with or without BOM) or GB18030 and every
column is read as text (codes such as ``001`` keep their zeros); the importer
converts columns to the layer's types. Text cells that gridmap's CSV export
guarded against formula injection (``'=…``) get their guard quote removed.

Geometries a reader could only build after fixing them (unclosed rings,
curves) carry a note in ``frame.attrs["geometry_notes"]`` ({row: note}) that
the repair report picks up.
"""

from __future__ import annotations

import io
import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyogrio.errors
import pyproj
import shapely
from pyproj.exceptions import CRSError

from gridmap.common.errors import BadInput, UnsupportedFormat
from gridmap.geo.chinacrs import is_chinese_crs
from gridmap.geo.chinacrs import to_wgs84 as china_to_wgs84

__all__ = [
    "GEOMETRY_NOTES",
    "LAT_NAMES",
    "LON_NAMES",
    "SUFFIXES",
    "WKT_NAMES",
    "CrsSpec",
    "layer_names",
    "parse_crs",
    "read_file",
    "read_table",
]

#: Key of ``frame.attrs`` holding ``{row label: note}`` for geometries fixed while reading.
GEOMETRY_NOTES = "geometry_notes"

#: Suffix → reader.
SUFFIXES: dict[str, Literal["ogr", "parquet", "csv"]] = {
    ".geojson": "ogr",
    ".json": "ogr",
    ".gpkg": "ogr",
    ".shp": "ogr",
    ".zip": "ogr",
    ".fgb": "ogr",
    ".parquet": "parquet",
    ".geoparquet": "parquet",
    ".csv": "csv",
}

#: Column names recognised as longitude / latitude / WKT (case-insensitive, in order).
LON_NAMES: tuple[str, ...] = ("lon", "lng", "long", "longitude", "x", "经度")
LAT_NAMES: tuple[str, ...] = ("lat", "latitude", "y", "纬度")
WKT_NAMES: tuple[str, ...] = ("geometry", "wkt", "geom", "the_geom")

#: A parsed ``crs`` argument: a Chinese web-map system to shift, or a pyproj CRS.
CrsSpec = Literal["gcj02", "bd09"] | pyproj.CRS

_WGS84 = pyproj.CRS.from_epsg(4326)
_SHIFTED = {"gcj02": "gcj02", "bd09": "bd09", "bd09ll": "bd09"}
_GUARDED = r"^'('*[=+\-@\t\r])"


def parse_crs(crs: str) -> CrsSpec:
    """Parse a ``--crs`` value.

    Parameters
    ----------
    crs : str
        ``"wgs84"``, ``"cgcs2000"``, ``"gcj02"``, ``"bd09"`` (any case, with or
        without ``-``/``_``), or anything pyproj understands such as
        ``"EPSG:3857"``.

    Returns
    -------
    CrsSpec
        ``"gcj02"`` or ``"bd09"`` for coordinates to shift with
        :mod:`gridmap.geo.chinacrs`; otherwise a :class:`pyproj.CRS` (WGS84 for
        ``"wgs84"`` and ``"cgcs2000"``).

    Raises
    ------
    gridmap.common.errors.BadInput
        With ``field="crs"`` for a name nobody knows.

    Examples
    --------
    >>> parse_crs("GCJ-02")
    'gcj02'
    >>> parse_crs("EPSG:3857").to_epsg()
    3857
    >>> parse_crs("cgcs2000").to_epsg()
    4326
    """
    if not isinstance(crs, str) or not crs.strip():
        raise BadInput(f"unknown CRS {crs!r}", field="crs")
    key = crs.strip().lower().replace("-", "").replace("_", "").replace(" ", "")
    if is_chinese_crs(crs):
        shifted = _SHIFTED.get(key)
        if shifted == "gcj02":
            return "gcj02"
        if shifted == "bd09":
            return "bd09"
        return _WGS84
    try:
        parsed = pyproj.CRS.from_user_input(crs.strip())
    except CRSError:
        raise BadInput(
            f"unknown CRS {crs!r}; use wgs84, cgcs2000, gcj02, bd09 or EPSG:<code>", field="crs"
        ) from None
    if parsed.to_epsg() == 4490:
        return _WGS84
    return parsed


def _format(path: Path) -> Literal["ogr", "parquet", "csv"]:
    name = path.name.lower()
    if name.endswith((".osm.pbf", ".pbf", ".osm")):
        raise UnsupportedFormat(
            f"{path.name}: OpenStreetMap files are imported with `gridmap import osm`",
            field="path",
        )
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        known = ", ".join(sorted(SUFFIXES))
        raise UnsupportedFormat(
            f"{path.name}: unsupported file type {path.suffix or '(no suffix)'!r}; "
            f"gridmap reads {known}",
            field="path",
        )
    return kind


def _check_file(path: Path) -> None:
    if not path.exists():
        raise BadInput(f"{path}: no such file", field="path")
    if path.is_dir():
        raise BadInput(f"{path}: is a directory, not a file", field="path")
    if path.stat().st_size == 0:
        raise BadInput(f"{path.name}: the file is empty", field="path")


def layer_names(path: str | os.PathLike[str]) -> list[str]:
    """Names of the layers in a GeoPackage, Shapefile or other GDAL dataset.

    Parameters
    ----------
    path : str or PathLike
        The file.

    Returns
    -------
    list of str
        Layer names; a single-layer format gives one name, CSV and Parquet none.

    Examples
    --------
    >>> layer_names("missing.gpkg")
    Traceback (most recent call last):
    ...
    gridmap.common.errors.BadInput: missing.gpkg: no such file
    """
    p = Path(path)
    kind = _format(p)
    _check_file(p)
    if kind != "ogr":
        return []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return [str(row[0]) for row in pyogrio.list_layers(str(p))]
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, RuntimeError) as exc:
        raise BadInput(f"{p.name}: cannot read the file ({_short(exc)})", field="path") from None


def read_file(
    path: str | os.PathLike[str],
    *,
    layer: str | None = None,
    crs: str | None = None,
    lon: str | None = None,
    lat: str | None = None,
) -> gpd.GeoDataFrame:
    """Read a vector file into a GeoDataFrame in WGS84 (EPSG:4326, x = longitude).

    Parameters
    ----------
    path : str or PathLike
        The file; its suffix picks the reader (see the module docs).
    layer : str, optional
        Layer to read from a multi-layer file (GeoPackage).
    crs : str, optional
        The CRS of the coordinates, overriding the file's own:
        ``"wgs84"``, ``"cgcs2000"``, ``"gcj02"``, ``"bd09"`` or ``"EPSG:n"``.
    lon, lat : str, optional
        CSV/Parquet columns holding longitude and latitude; found by name
        (``lon``/``lng``/``longitude``/``x``, ``lat``/``latitude``/``y``) when
        not given.

    Returns
    -------
    geopandas.GeoDataFrame
        All attribute columns, a ``geometry`` column in EPSG:4326 and a fresh
        ``RangeIndex`` (row ``i`` is the ``i``-th feature of the file). Null
        and invalid geometries are kept for :func:`gridmap.io.repair.repair`
        to report.

    Raises
    ------
    gridmap.common.errors.UnsupportedFormat
        For a suffix gridmap cannot read.
    gridmap.common.errors.BadInput
        For a missing, empty, corrupt or unreadable file, missing coordinate
        columns, an unknown CRS, a projected *crs* for coordinates that are
        degrees, or coordinates that are not longitude/latitude after
        conversion. The message names the file and the problem.

    Examples
    --------
    >>> import json, tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> feature = {"type": "Feature", "properties": {"name": "天安门"},
    ...            "geometry": {"type": "Point", "coordinates": [116.39759, 39.908776]}}
    >>> _ = (folder / "gate.geojson").write_text(json.dumps(
    ...     {"type": "FeatureCollection", "features": [feature]}))
    >>> frame = read_file(folder / "gate.geojson", crs="gcj02")
    >>> pt = frame.geometry.iloc[0]
    >>> print(f"{pt.x:.6f} {pt.y:.6f} {frame.crs.to_epsg()}")
    116.391349 39.907375 4326
    """
    p = Path(path)
    kind = _format(p)
    target = parse_crs(crs) if crs is not None else None
    _check_file(p)
    notes: dict[Any, str] = {}
    if kind == "csv":
        table = _read_csv(p)
        frame, file_crs = _table_to_frame(table, p, lon=lon, lat=lat, notes=notes)
    elif kind == "parquet":
        frame, file_crs = _read_parquet(p, lon=lon, lat=lat, notes=notes)
    else:
        frame, file_crs = _read_ogr(p, layer, notes=notes)
    if target is not None:
        hint = f"check --crs {crs}"
    elif file_crs is not None:
        stated = pyproj.CRS.from_user_input(file_crs).to_string()
        hint = f"the file states {stated}; pass --crs if that is wrong"
    else:
        hint = "the file states no CRS and looks projected, pass --crs (e.g. EPSG:3857)"
    if isinstance(target, pyproj.CRS) and target.is_projected:
        _check_not_degrees(frame, p, crs=str(crs))
    frame = _to_wgs84(frame, target if target is not None else file_crs, p)
    _check_ranges(frame, p, hint=hint)
    frame.attrs[GEOMETRY_NOTES] = notes
    return frame


def read_table(path: str | os.PathLike[str], *, layer: str | None = None) -> pd.DataFrame:
    r"""Read the attribute table of a file, without geometry (for layers without one).

    Parameters
    ----------
    path : str or PathLike
        A CSV, Parquet or GDAL-readable file.
    layer : str, optional
        Layer of a multi-layer file.

    Returns
    -------
    pandas.DataFrame
        The attribute columns with a ``RangeIndex``; CSV columns are text.

    Raises
    ------
    gridmap.common.errors.BadInput
        For a missing, empty or unreadable file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "workers.csv"
    >>> _ = f.write_text("name,role\n张三,grid_worker\n", encoding="utf-8")
    >>> read_table(f).to_dict("records")
    [{'name': '张三', 'role': 'grid_worker'}]
    """
    p = Path(path)
    kind = _format(p)
    _check_file(p)
    if kind == "csv":
        return _read_csv(p)
    if kind == "parquet":
        try:
            table = pd.read_parquet(p)
        except Exception as exc:  # pyarrow raises many unrelated types for corrupt files
            raise BadInput(f"{p.name}: cannot read Parquet ({_short(exc)})", field="path") from None
        return table.drop(columns=[c for c in table.columns if c == "geometry"])
    name = _pick_layer(p, layer)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            table = pyogrio.read_dataframe(str(p), layer=name, read_geometry=False)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, RuntimeError) as exc:
        raise BadInput(f"{p.name}: cannot read the file ({_short(exc)})", field="path") from None
    return pd.DataFrame(table).reset_index(drop=True)


# ----------------------------------------------------------------------------- OGR


def _short(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _pick_layer(p: Path, layer: str | None) -> str | None:
    names = layer_names(p)
    if layer is not None:
        if layer not in names:
            raise BadInput(
                f"{p.name}: no layer {layer!r}; layers are: {', '.join(names) or '(none)'}",
                field="layer",
            )
        return layer
    if not names:
        raise BadInput(f"{p.name}: the file holds no layer", field="path")
    if len(names) > 1:
        raise BadInput(
            f"{p.name}: holds {len(names)} layers ({', '.join(names)}); say which one to read",
            field="layer",
        )
    return names[0]


def _read_ogr(p: Path, layer: str | None, *, notes: dict[Any, str]) -> tuple[gpd.GeoDataFrame, Any]:
    name = _pick_layer(p, layer)
    src = str(p)
    # pyogrio's errors are RuntimeErrors; GDAL and the decoders raise the others.
    errors = (RuntimeError, ValueError, OSError, UnicodeError, shapely.errors.GEOSException)
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            try:
                frame = pyogrio.read_dataframe(src, layer=name)
            except (shapely.errors.GEOSException, ValueError, NotImplementedError):
                frame = _read_ogr_tolerant(src, name, notes)
    except errors as exc:
        raise BadInput(f"{p.name}: cannot read the file ({_short(exc)})", field="path") from None
    if not isinstance(frame, gpd.GeoDataFrame) or frame.geometry.name is None:
        raise BadInput(f"{p.name}: layer {name!r} has no geometry column", field="path")
    frame = frame.reset_index(drop=True)
    if frame.geometry.name != "geometry" and "geometry" not in frame.columns:
        frame = frame.rename_geometry("geometry")
    return frame, frame.crs


def _read_ogr_tolerant(src: str, layer: str | None, notes: dict[Any, str]) -> gpd.GeoDataFrame:
    """Read attributes and raw WKB separately when some geometry breaks GEOS."""
    table = pyogrio.read_dataframe(src, layer=layer, read_geometry=False)
    meta, _fids, wkb, _fields = pyogrio.raw.read(src, layer=layer, columns=[])
    geoms = _parse_binary(np.asarray(wkb, dtype=object), notes)
    return gpd.GeoDataFrame(
        pd.DataFrame(table).reset_index(drop=True), geometry=geoms, crs=meta.get("crs")
    )


def _parse_binary(wkb: np.ndarray, notes: dict[Any, str]) -> np.ndarray:
    """WKB → geometries; rows GEOS refuses are fixed (rings closed) or left null with a note."""
    try:
        geoms = np.asarray(shapely.from_wkb(wkb, on_invalid="ignore"), dtype=object)
    except (shapely.errors.GEOSException, NotImplementedError, ValueError):
        geoms = np.empty(len(wkb), dtype=object)
        geoms[:] = None
    given = np.array([b is not None for b in wkb], dtype=bool)
    for i in np.flatnonzero(shapely.is_missing(geoms) & given):
        try:
            geom = shapely.from_wkb(wkb[i], on_invalid="ignore")
            if geom is None:
                geom = shapely.from_wkb(wkb[i], on_invalid="fix")
                notes[i] = "unclosed ring closed" if geom is not None else "unreadable geometry"
        except (shapely.errors.GEOSException, NotImplementedError, ValueError) as exc:
            geom = None
            notes[i] = f"unreadable geometry ({_short(exc, 80)})"
        geoms[i] = geom
    return geoms


# ----------------------------------------------------------------------------- tables


def _read_csv(p: Path) -> pd.DataFrame:
    raw = p.read_bytes()
    text: str | None = None
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    if text is None or "\x00" in text:
        raise BadInput(f"{p.name}: not a text file (neither UTF-8 nor GB18030)", field="path")
    try:
        table = pd.read_csv(
            io.StringIO(text),
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            skipinitialspace=True,
        )
    except pd.errors.EmptyDataError:
        raise BadInput(f"{p.name}: the CSV file has no header row", field="path") from None
    except (pd.errors.ParserError, ValueError) as exc:
        raise BadInput(f"{p.name}: cannot parse CSV ({_short(exc)})", field="path") from None
    table.columns = [str(c).strip() for c in table.columns]
    for col in table.columns:
        s = table[col]
        if s.notna().any():
            table[col] = s.str.replace(_GUARDED, r"\1", regex=True)
    return table.reset_index(drop=True)


def _read_parquet(
    p: Path, *, lon: str | None, lat: str | None, notes: dict[Any, str]
) -> tuple[gpd.GeoDataFrame, Any]:
    try:
        frame = gpd.read_parquet(p)
    except ValueError as exc:
        if "geo" not in str(exc).lower():
            raise BadInput(f"{p.name}: cannot read Parquet ({_short(exc)})", field="path") from None
        try:
            table = pd.read_parquet(p)
        except Exception as exc2:  # pyarrow raises many unrelated types for corrupt files
            raise BadInput(
                f"{p.name}: cannot read Parquet ({_short(exc2)})", field="path"
            ) from None
        return _table_to_frame(table.reset_index(drop=True), p, lon=lon, lat=lat, notes=notes)
    except Exception as exc:  # pyarrow raises many unrelated types for corrupt files
        raise BadInput(f"{p.name}: cannot read Parquet ({_short(exc)})", field="path") from None
    frame = frame.reset_index(drop=True)
    if frame.geometry.name != "geometry" and "geometry" not in frame.columns:
        frame = frame.rename_geometry("geometry")
    return frame, frame.crs


def _find(
    columns: Sequence[str], wanted: str | None, names: Sequence[str], what: str, p: Path
) -> str | None:
    if wanted is not None:
        if wanted in columns:
            return wanted
        lowered = {c.lower(): c for c in columns}
        if wanted.lower() in lowered:
            return lowered[wanted.lower()]
        raise BadInput(
            f"{p.name}: no {what} column {wanted!r}; columns are: {_list(columns)}", field=what
        )
    lowered = {c.lower(): c for c in columns}
    for name in names:
        if name in lowered:
            return lowered[name]
    return None


def _list(columns: Sequence[str], limit: int = 20) -> str:
    shown = [repr(str(c))[:40] for c in list(columns)[:limit]]
    more = f" … ({len(columns)} in all)" if len(columns) > limit else ""
    return ", ".join(shown) + more if shown else "(none)"


def _table_to_frame(
    table: pd.DataFrame, p: Path, *, lon: str | None, lat: str | None, notes: dict[Any, str]
) -> tuple[gpd.GeoDataFrame, Any]:
    columns = [str(c) for c in table.columns]
    if lon is None and lat is None:
        wkt_col = _find(columns, None, WKT_NAMES, "wkt", p)
        has_xy = _find(columns, None, LON_NAMES, "lon", p) and _find(
            columns, None, LAT_NAMES, "lat", p
        )
        if wkt_col is not None and (table[wkt_col].notna().any() or not has_xy):
            geoms, srid = _parse_wkt(table[wkt_col], notes, p)
            frame = gpd.GeoDataFrame(table.drop(columns=[wkt_col]), geometry=geoms)
            if srid is None:
                return frame, None
            try:
                return frame, pyproj.CRS.from_epsg(srid)
            except CRSError:
                raise BadInput(
                    f"{p.name}: EWKT names SRID={srid}, which is not a known EPSG code",
                    field="crs",
                ) from None
    lon_col = _find(columns, lon, LON_NAMES, "lon", p)
    lat_col = _find(columns, lat, LAT_NAMES, "lat", p)
    if lon_col is None or lat_col is None:
        raise BadInput(
            f"{p.name}: no coordinate columns found; expected longitude "
            f"({'/'.join(LON_NAMES)}) and latitude ({'/'.join(LAT_NAMES)}) columns or a WKT "
            f"column ({'/'.join(WKT_NAMES)}); pass --lon/--lat. Columns are: {_list(columns)}",
            field="lon" if lon_col is None else "lat",
        )
    x = _numbers(table[lon_col])
    y = _numbers(table[lat_col])
    missing = np.isnan(x) | np.isnan(y)
    with np.errstate(all="ignore"):
        points = shapely.points(np.where(missing, 0.0, x), np.where(missing, 0.0, y))
    points = np.asarray(points, dtype=object)
    points[missing] = None
    for i in np.flatnonzero(missing):
        notes[table.index[int(i)]] = f"missing or non-numeric {lon_col}/{lat_col}"
    return gpd.GeoDataFrame(table, geometry=points), None


def _numbers(s: pd.Series) -> np.ndarray:
    """Column of text → float array; full-width digits accepted, anything else NaN."""
    if pd.api.types.is_numeric_dtype(s.dtype):
        return pd.to_numeric(s, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    text = s.astype("string").str.normalize("NFKC").str.strip()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values = pd.to_numeric(text, errors="coerce")
    return np.asarray(values.to_numpy(dtype="float64", na_value=np.nan), dtype="float64")


def _parse_wkt(s: pd.Series, notes: dict[Any, str], p: Path) -> tuple[np.ndarray, int | None]:
    """WKT/EWKT text → geometries and the one SRID the EWKT prefixes name (if any)."""
    text = s.astype("string").str.normalize("NFKC")
    parts = text.str.extract(r"^\s*SRID\s*=\s*(\d+)\s*;(.*)$", expand=True)
    has_srid = parts[0].notna().to_numpy()
    srid: int | None = None
    if has_srid.any():
        found = sorted({int(v) for v in parts[0][has_srid]})
        if len(found) > 1:
            raise BadInput(
                f"{p.name}: EWKT geometries name several SRIDs ({', '.join(map(str, found))}); "
                "split the file by SRID",
                field="geometry",
            )
        srid = found[0]
        text = text.where(~has_srid, parts[1])
    values = np.array(text.astype(object).to_numpy(), dtype=object, copy=True)
    values[np.asarray(text.isna(), dtype=bool)] = None
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            geoms = np.asarray(shapely.from_wkt(values, on_invalid="ignore"), dtype=object)
        except NotImplementedError:
            geoms = _parse_wkt_rows(values, notes, s.index)
    bad = np.flatnonzero(shapely.is_missing(geoms) & text.notna().to_numpy())
    for i in bad:
        label = s.index[int(i)]
        if label in notes:
            continue
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            try:
                fixed = shapely.from_wkt(values[i], on_invalid="fix")
            except (shapely.errors.GEOSException, NotImplementedError):
                fixed = None
        geoms[i] = fixed
        notes[label] = "unclosed ring closed" if fixed is not None else "unparseable WKT"
    return geoms, srid


def _parse_wkt_rows(values: np.ndarray, notes: dict[Any, str], index: pd.Index) -> np.ndarray:
    """Row-by-row WKT parsing; curved geometries are linearized through GDAL."""
    geoms = np.empty(len(values), dtype=object)
    curved: list[int] = []
    for i, v in enumerate(values):
        if v is None:
            continue
        try:
            geoms[i] = shapely.from_wkt(v, on_invalid="ignore")
        except NotImplementedError:
            curved.append(i)
        except shapely.errors.GEOSException:
            geoms[i] = None
    if curved:
        linear = _linearize([str(values[i]) for i in curved])
        for i, g in zip(curved, linear, strict=True):
            geoms[i] = g
            notes[index[i]] = "curve linearized" if g is not None else "unreadable curved geometry"
    return geoms


def _linearize(wkts: list[str]) -> list[Any]:
    """Let GDAL (through pyogrio) turn curved WKT into linear geometries."""
    fd, name = tempfile.mkstemp(suffix=".csv")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write("WKT,gridmap_row\n")
            for i, w in enumerate(wkts):
                fh.write('"' + w.replace('"', "") + f'",{i}\n')
        try:
            frame = pyogrio.read_dataframe(name)
        except (pyogrio.errors.DataSourceError, RuntimeError, shapely.errors.GEOSException):
            return [None] * len(wkts)
        out: list[Any] = [None] * len(wkts)
        for row, geom in zip(frame["gridmap_row"], frame.geometry, strict=True):
            out[int(row)] = geom
        return out
    finally:
        os.unlink(name)


# ----------------------------------------------------------------------------- CRS


def _shift(geoms: np.ndarray, system: str) -> np.ndarray:
    def fn(coords: np.ndarray) -> np.ndarray:
        x, y = china_to_wgs84(coords[:, 0], coords[:, 1], system)
        return np.column_stack([x, y])

    return np.asarray(shapely.transform(geoms, fn), dtype=object)


def _to_wgs84(frame: gpd.GeoDataFrame, source: Any, p: Path) -> gpd.GeoDataFrame:
    """Declare *source* (override or the file's CRS) and convert to EPSG:4326."""
    try:
        if isinstance(source, str):
            geoms = _shift(np.asarray(frame.geometry.values, dtype=object), source)
            frame = frame.set_geometry(gpd.GeoSeries(geoms, index=frame.index, crs=_WGS84))
            return frame.set_crs(_WGS84, allow_override=True)
        if source is None:
            return frame.set_crs(_WGS84, allow_override=True)
        crs = pyproj.CRS.from_user_input(source)
        if crs.to_epsg() in (4326, 4490):
            return frame.set_crs(_WGS84, allow_override=True)
        frame = frame.set_crs(crs, allow_override=True)
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            return frame.to_crs(_WGS84)
    except (CRSError, pyproj.exceptions.ProjError) as exc:
        raise BadInput(
            f"{p.name}: cannot convert coordinates to WGS84 ({_short(exc)})", field="crs"
        ) from None


def _check_not_degrees(frame: gpd.GeoDataFrame, p: Path, *, crs: str) -> None:
    """Refuse a projected ``crs=`` for a file whose coordinates all look like degrees.

    Degrees read as metres land within 200 m of (0, 0) in Web Mercator, or on
    the equator for UTM and Gauss-Krüger, and still pass :func:`_check_ranges`:
    the file would be imported far from where it belongs without a word.
    """
    geoms = np.asarray(frame.geometry.values, dtype=object)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        b = shapely.bounds(geoms)
    b = b[np.isfinite(b).all(axis=1)]
    if len(b) == 0:
        return
    minx, miny = float(b[:, 0].min()), float(b[:, 1].min())
    maxx, maxy = float(b[:, 2].max()), float(b[:, 3].max())
    if minx < -180 or maxx > 180 or miny < -90 or maxy > 90:
        return
    raise BadInput(
        f"{p.name}: --crs {crs} is projected (metres), but every coordinate lies within "
        f"longitude [-180, 180] / latitude [-90, 90] (x {minx:.6g}…{maxx:.6g}, "
        f"y {miny:.6g}…{maxy:.6g}): the file looks like degrees; pass --crs wgs84, "
        "cgcs2000, gcj02 (高德/腾讯) or bd09 (百度)",
        field="crs",
    )


def _check_ranges(frame: gpd.GeoDataFrame, p: Path, *, hint: str) -> None:
    """Refuse a file whose geometries are mostly not longitude/latitude."""
    geoms = np.asarray(frame.geometry.values, dtype=object)
    if len(geoms) == 0:
        return
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        b = shapely.bounds(geoms)
    finite = np.isfinite(b).all(axis=1)
    inside = (b[:, 0] >= -180) & (b[:, 2] <= 180) & (b[:, 1] >= -90) & (b[:, 3] <= 90)
    checked = int(finite.sum())
    outside = int((finite & ~inside).sum())
    if checked == 0 or outside * 2 <= checked:
        return
    sample = b[np.flatnonzero(finite & ~inside)[0]]
    where = f"e.g. x={sample[0]:.6g}, y={sample[1]:.6g}"
    raise BadInput(
        f"{p.name}: {outside} of {checked} geometries lie outside longitude [-180, 180] / "
        f"latitude [-90, 90] after conversion to WGS84 ({where}); {hint}",
        field="crs",
    )
