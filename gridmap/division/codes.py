"""Grid codes that stay stable across re-division, and grids valid at a time.

A redrawn grid that mostly overlaps an old one (area IoU above 0.5 by default)
keeps the old code; other grids get fresh sequence numbers, never reusing a
number the community ever had (past events keep pointing at the right grid).
Fresh numbers run west→east, north→south like :func:`gridmap.division.bisect.grid_codes`.
"""

from __future__ import annotations

from collections.abc import Iterable

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridmap.common.errors import BadInput
from gridmap.division.bisect import grid_codes

__all__ = ["grids_valid_at", "match_grids", "stable_codes"]


def match_grids(
    new: gpd.GeoDataFrame, old: gpd.GeoDataFrame, *, min_iou: float = 0.5
) -> pd.DataFrame:
    """Pairs (new row, old row) whose area IoU exceeds *min_iou*, one to one.

    Returns
    -------
    pandas.DataFrame
        ``new`` and ``old`` positional indices and their ``iou``.

    Examples
    --------
    >>> import shapely, geopandas as gpd
    >>> a = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)])
    >>> b = gpd.GeoDataFrame(geometry=[shapely.box(1.1, 0, 2, 1)])
    >>> match_grids(a, b)[["new", "old"]].values.tolist()
    [[1, 0]]
    """
    empty = pd.DataFrame({"new": [], "old": [], "iou": []}).astype(
        {"new": int, "old": int, "iou": float}
    )
    if len(new) == 0 or len(old) == 0:
        return empty
    g_new = np.asarray(new.geometry.values)
    g_old = np.asarray(old.geometry.values)
    ni, oi = shapely.STRtree(g_old).query(g_new, predicate="intersects")
    if len(ni) == 0:
        return empty
    inter = shapely.area(shapely.intersection(g_new[ni], g_old[oi]))
    union = shapely.area(g_new[ni]) + shapely.area(g_old[oi]) - inter
    iou = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
    pairs = pd.DataFrame({"new": ni, "old": oi, "iou": iou})
    pairs = pairs[pairs["iou"] > min_iou].sort_values("iou", ascending=False, kind="stable")
    pairs = pairs.drop_duplicates("new").drop_duplicates("old")
    return pairs.reset_index(drop=True)


def stable_codes(
    new: gpd.GeoDataFrame,
    old: gpd.GeoDataFrame | None,
    community_code: str,
    *,
    used: Iterable[str] = (),
    min_iou: float = 0.5,
) -> pd.Series:
    """Codes for *new* grids: an old grid's code where they mostly overlap, else fresh ones.

    Parameters
    ----------
    new : GeoDataFrame
        The redrawn grids (WGS84).
    old : GeoDataFrame, optional
        The grids valid until now, with ``code``.
    community_code : str
        12-digit community code.
    used : iterable of str
        Every code the community ever had (closed grids too); never reused.
    min_iou : float
        Area intersection-over-union above which a grid keeps the old code.

    Returns
    -------
    pandas.Series
        15-digit codes aligned to *new*'s index.

    Examples
    --------
    >>> import shapely, geopandas as gpd
    >>> old = gpd.GeoDataFrame({"code": ["990100001001001", "990100001001002"]},
    ...                        geometry=[shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)])
    >>> new = gpd.GeoDataFrame(geometry=[shapely.box(1.1, 0, 2, 1), shapely.box(0, 0, 1.1, 0.5),
    ...                                  shapely.box(0, 0.5, 1.1, 1)])
    >>> stable_codes(new, old, "990100001001").tolist()
    ['990100001001002', '990100001001004', '990100001001003']
    """
    if old is None or len(old) == 0:
        if not list(used):
            return grid_codes(new, community_code)
        old = gpd.GeoDataFrame({"code": []}, geometry=[], crs=new.crs)
    pairs = match_grids(new, old, min_iou=min_iou)
    codes = np.full(len(new), None, dtype=object)
    codes[pairs["new"].to_numpy(dtype=int)] = old["code"].to_numpy()[
        pairs["old"].to_numpy(dtype=int)
    ]
    taken = {str(c) for c in list(used) + old["code"].tolist() if c}
    seqs = [
        int(c[-3:]) for c in taken if str(c).startswith(community_code) and str(c)[-3:].isdigit()
    ]
    nxt = max(seqs, default=0) + 1
    fresh = np.flatnonzero(codes == None)  # noqa: E711 - object array
    if len(fresh):
        order = grid_codes(new.iloc[fresh], community_code).to_numpy()
        ranks = np.argsort(np.argsort(order))
        for pos, r in zip(fresh, ranks, strict=True):
            seq = nxt + int(r)
            if seq > 999:
                raise BadInput("a community cannot hold more than 999 grid codes", field="grids")
            codes[pos] = f"{community_code}{seq:03d}"
    return pd.Series(codes, index=new.index, name="code", dtype=object)


def grids_valid_at(grids: gpd.GeoDataFrame, at: pd.Timestamp | str) -> gpd.GeoDataFrame:
    """Rows of a grids history valid at time *at* (``valid_from <= at < valid_to``).

    Examples
    --------
    >>> import pandas as pd, shapely, geopandas as gpd
    >>> t = pd.Timestamp
    >>> h = gpd.GeoDataFrame({"code": ["a", "b"],
    ...     "valid_from": [t("2026-01-01", tz="UTC"), t("2026-03-01", tz="UTC")],
    ...     "valid_to": [t("2026-03-01", tz="UTC"), pd.NaT]},
    ...     geometry=[shapely.box(0, 0, 1, 1)] * 2)
    >>> grids_valid_at(h, "2026-02-01T00:00Z")["code"].tolist()
    ['a']
    """
    ts = pd.Timestamp(at)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    start = pd.to_datetime(grids["valid_from"], utc=True)
    end = pd.to_datetime(grids["valid_to"], utc=True)
    ok = (start.isna() | (start <= ts)) & (end.isna() | (end > ts))
    return grids[ok.to_numpy()]
