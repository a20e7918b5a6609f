"""Spreadsheets people send (CSV, XLSX) read as text, with their row numbers.

Registers and code tables arrive as spreadsheets. Every cell is read as text
(codes and ID numbers keep their leading zeros), full-width characters are
left to the validators, and each row carries ``row``: its number in the
sheet as a person sees it (the header is row 1), so a report can say
"row 17: …".
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gridmap.common.errors import BadInput, UnsupportedFormat

__all__ = ["MAX_ROWS", "read_sheet"]

#: Most data rows one sheet may have.
MAX_ROWS = 1_000_000
_INTEGRAL = re.compile(r"^-?\d+\.0+$")


def _text(v: Any) -> str | None:
    if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
        v = int(v)
    text = str(v).strip()
    if _INTEGRAL.match(text):
        text = text.split(".", 1)[0]
    return text or None


def read_sheet(path: str | Path, *, sheet: str | int = 0) -> pd.DataFrame:
    r"""Read a CSV (UTF-8, UTF-8 with BOM or GB18030) or XLSX file as text cells.

    Returns
    -------
    pandas.DataFrame
        The sheet's columns (names stripped) with ``str`` or ``None`` values,
        plus ``row``, the row number in the sheet (header = 1).

    Raises
    ------
    gridmap.common.errors.BadInput
        Missing, empty or unreadable file, or more than :data:`MAX_ROWS` rows.
    gridmap.common.errors.UnsupportedFormat
        Any suffix other than ``.csv``, ``.xlsx``, ``.xlsm``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = p.write_text("区划代码,名称\n370285001,水集街道\n", encoding="utf-8")
    >>> read_sheet(p).to_dict("records")
    [{'区划代码': '370285001', '名称': '水集街道', 'row': 2}]
    """
    p = Path(path)
    if not p.is_file():
        raise BadInput(f"{p}: no such file", field="file")
    suffix = p.suffix.lower()
    try:
        if suffix == ".csv":
            frame = _read_csv(p)
        elif suffix in (".xlsx", ".xlsm"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # openpyxl's notes on styles and validation
                frame = pd.read_excel(p, sheet_name=sheet, dtype=object, engine="openpyxl")
        else:
            raise UnsupportedFormat(
                f"{p.name}: registers and code tables are .csv or .xlsx files", field="file"
            )
    except (UnsupportedFormat, BadInput):
        raise
    except Exception as exc:  # the readers raise anything on a broken file
        raise BadInput(f"{p.name}: cannot read the sheet ({exc})", field="file") from None
    if len(frame) > MAX_ROWS:
        raise BadInput(f"{p.name}: more than {MAX_ROWS} rows", field="file")
    frame.columns = [str(c).strip().lstrip("\ufeff") for c in frame.columns]
    out = pd.DataFrame(
        {c: [_text(v) for v in frame[c].tolist()] for c in frame.columns}, index=frame.index
    )
    out = out.astype(object)
    out["row"] = np.arange(2, len(out) + 2)
    blank = out.drop(columns="row").isna().all(axis=1)
    return out[~blank.to_numpy()].reset_index(drop=True)


def _read_csv(p: Path) -> pd.DataFrame:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return pd.read_csv(p, dtype=str, keep_default_na=False, encoding=encoding)
        except UnicodeDecodeError:
            continue
    raise BadInput(f"{p.name}: text is neither UTF-8 nor GB18030", field="file")
