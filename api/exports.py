"""Items as files: ``f=gpkg``, ``f=fgb``, ``f=parquet`` (GeoParquet) and ``f=csv``.

``/collections/{layer}/items?f=…`` answers the same features as the GeoJSON
page (same ``bbox``, ``datetime``, ``filter``, queryables and area scoping,
only the properties the caller's role may see), as a file for QGIS, GDAL,
pandas or a spreadsheet. The file is written to a temporary folder by
pyogrio/pyarrow and streamed from there in chunks; it is removed when the
answer is sent. Without ``limit`` every matching feature is exported.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from gridmap.io.export import write_frame

__all__ = ["EXPORT_FORMATS", "export_response"]

#: ``f`` value → (media type, file suffix).
EXPORT_FORMATS: dict[str, tuple[str, str]] = {
    "gpkg": ("application/geopackage+sqlite3", ".gpkg"),
    "fgb": ("application/flatgeobuf", ".fgb"),
    "parquet": ("application/vnd.apache.parquet", ".parquet"),
    "csv": ("text/csv; charset=utf-8", ".csv"),
}

_CHUNK = 1 << 16


def _stream(folder: Path, path: Path) -> Iterator[bytes]:
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                yield chunk
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def export_file(frame: pd.DataFrame, layer: str, kind: str) -> tuple[Path, Path]:
    """Write *frame* (rows of *layer*) as *kind* into a new temporary folder.

    Returns
    -------
    (folder, path)
        The folder to remove when done and the written file in it.
    """
    _, suffix = EXPORT_FORMATS[kind]
    folder = Path(tempfile.mkdtemp(prefix="gridmap-export-"))
    path = folder / f"{layer}{suffix}"
    try:
        write_frame(frame, layer, kind, path)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return folder, path


def export_response(
    frame: pd.DataFrame, layer: str, kind: str, headers: dict[str, str] | None = None
) -> tuple[Iterator[bytes], str, dict[str, str]]:
    """The body (chunks), media type and headers of an items export.

    Parameters
    ----------
    frame : DataFrame
        The features to write (already filtered, scoped and reduced to the
        properties the caller may see), ``id`` first.
    layer : str
        The layer (names the file and, in GeoPackage, the table).
    kind : str
        A key of :data:`EXPORT_FORMATS`.
    headers : dict, optional
        More headers (``Link`` …).
    """
    media, suffix = EXPORT_FORMATS[kind]
    folder, path = export_file(frame, layer, kind)
    out = {
        "Content-Disposition": f'attachment; filename="{layer}{suffix}"',
        "Content-Length": str(path.stat().st_size),
        **(headers or {}),
    }
    return _stream(folder, path), media, out
