"""The small-count rule of public aggregates (小数值保护): when it applies, and how.

No count smaller than *k* is shown to a caller without detail rights, nor for a
sensitive category, so that nobody can be singled out from an aggregate. *k* is
``DEFAULT_MIN_COUNT`` (3), defined in :mod:`gridmap.common.settings` and set for a
service by ``GRIDMAP_PRIVACY_MIN_COUNT``. What this module owns:

- **the policy** — :data:`DETAIL_ROLES` (roles that see aggregates in full detail),
  :data:`SENSITIVE_CATEGORIES` (categories whose small counts are never shown, whoever
  asks) and :func:`needs_protection`, which says when the rule applies;
- **its application to H3 cells** — :func:`protect_small_counts` hides the cells
  with fewer than *k* events or merges them into their parent cell.

Heat maps (:mod:`gridmap.analytics.heat`) and hot spots
(:mod:`gridmap.analytics.hotspots`) apply it to cells; published tables follow the
same roles through :mod:`gridmap.assessment.disclosure`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import geopandas as gpd
import h3
import numpy as np
import pandas as pd

from gridmap.analytics.binning import cell_polygons
from gridmap.common.errors import BadInput
from gridmap.common.settings import DEFAULT_MIN_COUNT  # the one default (设置)

__all__ = [
    "DETAIL_ROLES",
    "SENSITIVE_CATEGORIES",
    "needs_protection",
    "protect_small_counts",
]

#: Categories whose small counts are never shown (矛盾纠纷, 治安).
SENSITIVE_CATEGORIES: frozenset[str] = frozenset({"dispute", "public_security"})
#: Roles that see aggregates in full detail (when the categories are not sensitive).
DETAIL_ROLES: frozenset[str] = frozenset(
    {"city_admin", "town_coordinator", "community_staff", "grid_worker"}
)


# --------------------------------------------------------------------------- privacy


def needs_protection(role: str, categories: Iterable[str] | None) -> bool:
    """Whether small counts must be hidden for *role* looking at *categories*.

    They are, for roles without detail rights (``viewer``, ``external_system``)
    and whenever the selection may contain a sensitive category (矛盾纠纷
    ``dispute``, 治安 ``public_security``) — including "all categories".

    Examples
    --------
    >>> needs_protection("town_coordinator", ["safety_hazard"])
    False
    >>> needs_protection("town_coordinator", None), needs_protection("viewer", ["epidemic"])
    (True, True)
    """
    if role not in DETAIL_ROLES:
        return True
    if categories is None:
        return True
    return bool(SENSITIVE_CATEGORIES & set(categories))


def protect_small_counts(
    cells: pd.DataFrame,
    *,
    k: int = DEFAULT_MIN_COUNT,
    mode: Literal["merge", "hide"] = "merge",
) -> pd.DataFrame:
    """Hide or merge cells with fewer than *k* events.

    ``hide`` drops them. ``merge`` adds their events up by parent cell (one
    resolution coarser); a parent that reaches *k* is kept as one cell with
    ``merged=True`` (its count covers only the small children), the rest are
    dropped. Other count columns (``open``) below *k* are blanked in kept
    cells, and rates of merged cells are left out. No total of what was hidden
    is given, so a single hidden cell cannot be recovered by subtraction.

    Parameters
    ----------
    cells : pandas.DataFrame or geopandas.GeoDataFrame
        Columns ``h3`` and ``count`` (optionally ``open``, ``rate`` …).
    k : int, default 3
        Smallest count shown (k ≥ 1; 1 shows everything).
    mode : {"merge", "hide"}

    Returns
    -------
    pandas.DataFrame or geopandas.GeoDataFrame
        Same type and columns as *cells*, plus ``merged`` (bool).

    Examples
    --------
    >>> cells = pd.DataFrame({"h3": ["8a1126d338c7fff", "8a1126d338cffff", "8a1126d338d7fff"],
    ...                       "count": [5, 1, 2]})
    >>> protect_small_counts(cells, k=3)[["h3", "count", "merged"]].values.tolist()
    [['8a1126d338c7fff', 5, False], ['891126d338fffff', 3, True]]
    >>> protect_small_counts(cells, k=3, mode="hide")["count"].tolist()
    [5]
    """
    if int(k) < 1:
        raise BadInput(f"k must be at least 1, got {k}", field="k")
    if mode not in ("merge", "hide"):
        raise BadInput(f"mode must be 'merge' or 'hide', got {mode!r}", field="mode")
    small = cells["count"] < k
    big = cells[~small].copy()
    big["merged"] = False
    for col in ("open",):
        if col in big:
            big[col] = big[col].astype("Int64").mask(big[col] < k)
    if mode == "hide" or not small.any():
        return big
    children = cells[small]
    parents = np.array(
        [h3.cell_to_parent(c, h3.get_resolution(c) - 1) for c in children["h3"]], dtype=object
    )
    sums = children.groupby(parents)["count"].sum()
    sums = sums[sums >= k]
    merged = pd.DataFrame({"h3": sums.index.to_numpy(dtype=object), "count": sums.to_numpy()})
    merged["merged"] = True
    if isinstance(cells, gpd.GeoDataFrame):
        merged = gpd.GeoDataFrame(
            merged, geometry=cell_polygons(merged["h3"].to_numpy()), crs=cells.crs
        )
        merged = merged.rename_geometry(cells.geometry.name)
    out = pd.concat([big, merged], ignore_index=True)
    out = pd.DataFrame(out[[c for c in [*cells.columns, "merged"] if c in out.columns]])
    if isinstance(cells, gpd.GeoDataFrame):
        geo: pd.DataFrame = gpd.GeoDataFrame(out, geometry=cells.geometry.name, crs=cells.crs)
        return geo
    return out
