"""Plain scalars from Python, numpy and pandas values: what JSON and vector tiles hold.

GeoJSON answers (``api.geojson.json_value``) and vector tile properties
(``layers.crs84tiles.mvt_value``) agree on the scalars (missing → ``None``,
booleans, integers, finite floats, text) and differ on times and lists. Both
run once per property value of every feature served, so the common types are
converted through a table keyed by their exact type (one dictionary lookup)
before any ``isinstance`` chain.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Final

import numpy as np
import pandas as pd

__all__ = ["NOT_SCALAR", "SCALARS", "scalar"]


def _finite(value: Any) -> float | None:
    f = float(value)
    return f if math.isfinite(f) else None


def _none(value: Any) -> None:
    return None


#: Exact type → conversion to a plain scalar (``None`` for missing and non-finite).
SCALARS: Final[dict[type, Callable[[Any], Any]]] = {
    str: str,
    int: int,
    float: _finite,
    bool: bool,
    type(None): _none,
    type(pd.NA): _none,
    type(pd.NaT): _none,
    np.bool_: bool,
    **{t: int for t in (np.int8, np.int16, np.int32, np.int64)},
    **{t: int for t in (np.uint8, np.uint16, np.uint32, np.uint64)},
    **{t: _finite for t in (np.float16, np.float32, np.float64, np.longdouble)},
}

#: What :func:`scalar` answers for a value that is no scalar (a time, a list, ...).
NOT_SCALAR: Final = object()


def scalar(value: Any) -> Any:
    """*value* as ``None``, ``bool``, ``int``, finite ``float`` or ``str``; else :data:`NOT_SCALAR`.

    Subclasses (an ``IntEnum``, a ``str`` enum) are converted like their base.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> [scalar(v) for v in (np.int32(3), np.float64("nan"), pd.NA, np.True_, "网格")]
    [3, None, None, True, '网格']
    >>> scalar([1, 2]) is NOT_SCALAR
    True
    """
    conv = SCALARS.get(type(value))
    if conv is not None:
        return conv(value)
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return _finite(value)
    if isinstance(value, str):
        return str(value)
    return NOT_SCALAR
