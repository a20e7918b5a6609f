"""OGC API Features Part 2: the CRSs gridmap serves and the reprojection at the edge.

Geometries are stored in CRS84 (WGS84, longitude first). Output may be asked
for in EPSG:4326 or EPSG:4490 (CGCS2000) — both with the authority's axis
order, latitude first — or in EPSG:3857 (Web Mercator, metres). ``bbox-crs``
accepts the same list and is turned back into CRS84 before querying.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer

from api.params import CRS84, clip, parse_bbox
from gridmap.common.errors import BadInput
from gridmap.geo.projection import positions_to_wgs84
from gridmap.storage import BBox, check_bbox

__all__ = ["SUPPORTED_CRS", "bbox_to_crs84", "parse_bbox_in", "parse_crs", "reproject_frame"]

_EPSG = "http://www.opengis.net/def/crs/EPSG/0/"
#: Half the width of the Web Mercator world (metres).
_MERCATOR_X = 20037508.342789244

#: Served CRS URIs → (EPSG code or None for CRS84, latitude first?).
SUPPORTED_CRS: dict[str, tuple[int | None, bool]] = {
    CRS84: (None, False),
    f"{_EPSG}4326": (4326, True),
    f"{_EPSG}4490": (4490, True),
    f"{_EPSG}3857": (3857, False),
}
_ALIASES = {
    "[OGC:CRS84]": CRS84,
    "OGC:CRS84": CRS84,
    "EPSG:4326": f"{_EPSG}4326",
    "[EPSG:4326]": f"{_EPSG}4326",
    "EPSG:4490": f"{_EPSG}4490",
    "[EPSG:4490]": f"{_EPSG}4490",
    "EPSG:3857": f"{_EPSG}3857",
    "[EPSG:3857]": f"{_EPSG}3857",
}


def parse_crs(value: str | None, *, field: str) -> str:
    """The canonical URI of a ``crs``/``bbox-crs`` value (CRS84 when absent).

    Examples
    --------
    >>> parse_crs("EPSG:3857", field="crs")
    'http://www.opengis.net/def/crs/EPSG/0/3857'
    >>> parse_crs(None, field="crs") == CRS84
    True
    """
    if value is None:
        return CRS84
    uri = _ALIASES.get(value, value)
    if uri not in SUPPORTED_CRS:
        raise BadInput(
            f"{field} {clip(value)!r} is not supported; use one of {', '.join(SUPPORTED_CRS)}",
            field=field,
        )
    return uri


@cache
def _transformer(epsg: int, *, inverse: bool) -> Transformer:
    src, dst = ("EPSG:4326", f"EPSG:{epsg}") if not inverse else (f"EPSG:{epsg}", "EPSG:4326")
    return Transformer.from_crs(src, dst, always_xy=True)


def _swap(coords: np.ndarray) -> np.ndarray:
    return coords[:, ::-1].copy()


def reproject_frame(frame: pd.DataFrame, uri: str) -> pd.DataFrame:
    """A copy of *frame* whose ``geometry`` is in *uri* (axis order of the authority).

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> f = gpd.GeoDataFrame(geometry=[shapely.Point(24.9, 60.1)], crs=4326)
    >>> reproject_frame(f, "http://www.opengis.net/def/crs/EPSG/0/4326").geometry[0].wkt
    'POINT (60.1 24.9)'
    """
    epsg, lat_first = SUPPORTED_CRS[uri]
    if epsg is None or "geometry" not in frame:
        return frame
    geoms = np.asarray(frame["geometry"].values, dtype=object)
    if epsg == 3857:
        tr = _transformer(3857, inverse=False)

        def fwd(c: np.ndarray) -> np.ndarray:
            x, y = tr.transform(c[:, 0], c[:, 1])
            return np.column_stack([x, y])

        out = shapely.transform(geoms, fwd)
    else:  # EPSG:4326 and CGCS2000 (equal to WGS84 within a metre): latitude first
        out = shapely.transform(geoms, _swap) if lat_first else geoms
    result = frame.copy()
    result["geometry"] = out
    return result


def parse_bbox_in(text: str | None, uri: str) -> BBox | None:
    """Parse ``bbox`` given in *uri* and return it in CRS84 (validated there).

    Examples
    --------
    >>> box = parse_bbox_in("2773000,8437000,2776000,8440000", "EPSG:3857".replace(
    ...     "EPSG:", "http://www.opengis.net/def/crs/EPSG/0/"))
    >>> [round(v, 3) for v in box]
    [24.91, 60.167, 24.937, 60.18]
    """
    if text is None:
        return None
    if uri == CRS84:
        return parse_bbox(text)
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 4:
        raise BadInput(f"bbox needs 4 comma-separated numbers; got {len(parts)}", field="bbox")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise BadInput(f"bbox values must be numbers, got {clip(text)!r}", field="bbox") from None
    if not all(np.isfinite(values)):
        raise BadInput("bbox values must be finite numbers", field="bbox")
    return bbox_to_crs84((values[0], values[1], values[2], values[3]), uri)


def bbox_to_crs84(bbox: BBox | None, uri: str) -> BBox | None:
    """Turn a bbox given in *uri* into a CRS84 bbox (the store's).

    Examples
    --------
    >>> bbox_to_crs84((60.1, 24.9, 60.2, 25.0), "http://www.opengis.net/def/crs/EPSG/0/4326")
    (24.9, 60.1, 25.0, 60.2)
    """
    if bbox is None:
        return None
    epsg, lat_first = SUPPORTED_CRS[uri]
    if epsg is None:
        return bbox
    a, b, c, d = bbox
    if epsg == 3857:
        xs, ys = positions_to_wgs84([a, c, a, c], [b, b, d, d], "EPSG:3857")
        if not (np.isfinite(xs).all() and np.isfinite(ys).all()):
            raise BadInput(
                f"bbox {clip(','.join(f'{v:g}' for v in bbox))} is outside the extent of "
                f"EPSG:3857 (x within ±{_MERCATOR_X:.2f} m)",
                field="bbox",
            )
        return check_bbox([float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())])
    return check_bbox([b, a, d, c] if lat_first else [a, b, c, d])
