"""Heat maps of events (热力图): what a principal may see, per H3 cell and per map tile.

This module composes the others of :mod:`gridmap.analytics` into the heat map that
``GET /heatmap`` and its vector tiles serve:

- :func:`heatmap_cells` — events per H3 cell counted in the store
  (:func:`~gridmap.analytics.queries.event_cell_counts`), optional rates per 1,000
  residents or households (:mod:`gridmap.analytics.binning`), small counts merged
  where the rule applies (:mod:`gridmap.analytics.smallcounts`), cell polygons;
- :func:`heatmap_tile_cells` — the cells of one WebMercatorQuad tile at the
  resolution of its zoom (:func:`tile_resolution`, :data:`TILE_RESOLUTIONS`),
  counted over a margin around the tile so that they equal those of
  :func:`heatmap_cells`.

Kernel density (:mod:`gridmap.analytics.kde`) and counts per grid
(:mod:`gridmap.analytics.gridcounts`) are other views of the same events. Events
in the demo and the tests are synthetic (seeded, on real streets).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import shapely

from gridmap.analytics.binning import RATES, add_rates, cell_polygons, population_per_cell
from gridmap.analytics.queries import EventQuery, event_cell_counts, read_population_points
from gridmap.analytics.smallcounts import needs_protection, protect_small_counts
from gridmap.common.errors import BadInput
from gridmap.common.settings import DEFAULT_MIN_COUNT  # the one default (设置)
from gridmap.geo.h3cells import H3_RESOLUTIONS, check_resolution
from gridmap.geo.projection import WGS84
from gridmap.security.access import Principal
from gridmap.storage import Store

__all__ = ["TILE_RESOLUTIONS", "heatmap_cells", "heatmap_tile_cells", "tile_resolution"]


def heatmap_cells(
    store: Store,
    query: EventQuery,
    *,
    principal: Principal,
    resolution: int,
    rate: str | None = None,
    min_count: int = DEFAULT_MIN_COUNT,
) -> gpd.GeoDataFrame:
    """The heat map a principal may see: events per H3 cell, rates, small counts protected.

    Parameters
    ----------
    store : Store
    query : EventQuery
        Filters (category, status, channel, time window, area, bbox).
    principal : gridmap.security.access.Principal
        Only events in the principal's areas are counted; small counts are
        merged (:func:`~gridmap.analytics.smallcounts.protect_small_counts`) when
        :func:`~gridmap.analytics.smallcounts.needs_protection` says so.
    resolution : int
        7–11.
    rate : {"per_1000_residents", "per_1000_households"}, optional
        Add ``rate`` (and the denominator) from the buildings' estimates.
    min_count : int, default 3
        *k* of the small-count rule.

    Returns
    -------
    geopandas.GeoDataFrame
        ``h3``, ``count``, ``open``, ``merged`` [, ``residents``/``households``,
        ``rate``], cell polygons; ``attrs["protected"]`` tells whether the rule applied.

    Examples
    --------
    >>> from gridmap.storage import open_store
    >>> from gridmap.security.access import SYSTEM
    >>> cells = heatmap_cells(open_store(":memory:", migrate=True), EventQuery(),
    ...                       principal=SYSTEM, resolution=9)
    >>> len(cells), cells.attrs["protected"]
    (0, True)
    """
    resolution = check_resolution(resolution)
    if rate is not None and rate not in RATES:
        raise BadInput(f"rate must be one of {', '.join(RATES)}, got {rate[:40]!r}", field="rate")
    cells: pd.DataFrame = event_cell_counts(
        store, query, principal=principal, resolution=resolution
    )
    if rate is not None:
        population = population_per_cell(
            read_population_points(store, query, principal=principal), resolution
        )
        cells = add_rates(cells, population, rate)
    protected = needs_protection(principal.role, query.categories)
    if protected:
        cells = protect_small_counts(cells, k=min_count)
        if rate is not None:
            merged = cells["merged"].to_numpy(bool)
            for col in ("rate", RATES[rate]):
                cells[col] = cells[col].astype("float64").mask(merged)
    else:
        cells = cells.assign(merged=False)
    out = gpd.GeoDataFrame(cells, geometry=cell_polygons(cells["h3"].to_numpy()), crs=WGS84)
    out.attrs["protected"] = protected
    return out


# --------------------------------------------------------------------------- tiles

#: H3 resolution of heat-map tiles by zoom: about 10–25 px per cell on screen.
TILE_RESOLUTIONS: tuple[tuple[int, int], ...] = ((10, 7), (11, 8), (13, 9), (14, 10), (24, 11))


def tile_resolution(z: int) -> int:
    """The H3 resolution of a heat-map tile at zoom *z*.

    ====== ===========
    zoom   resolution
    ====== ===========
    0–10   7 (≈1.4 km edges)
    11     8 (≈530 m)
    12–13  9 (≈200 m)
    14     10 (≈76 m)
    15–24  11 (≈29 m)
    ====== ===========

    Examples
    --------
    >>> [tile_resolution(z) for z in (3, 10, 11, 12, 13, 14, 15, 20)]
    [7, 7, 8, 9, 9, 10, 11, 11]
    """
    for top, res in TILE_RESOLUTIONS:
        if int(z) <= top:
            return res
    return H3_RESOLUTIONS[-1]


def _grown(box: Sequence[float], metres: float) -> tuple[float, float, float, float]:
    """A WGS84 box grown by *metres* on every side (clamped to the globe)."""
    dlat = metres / 111_320.0
    far = min(89.9, max(abs(box[1]), abs(box[3])) + dlat)
    dlon = min(360.0, metres / (111_320.0 * math.cos(math.radians(far))))
    return (
        max(-180.0, box[0] - dlon),
        max(-90.0, box[1] - dlat),
        min(180.0, box[2] + dlon),
        min(90.0, box[3] + dlat),
    )


def heatmap_tile_cells(
    store: Store,
    query: EventQuery,
    *,
    principal: Principal,
    z: int,
    x: int,
    y: int,
    rate: str | None = None,
    min_count: int = DEFAULT_MIN_COUNT,
) -> gpd.GeoDataFrame:
    """The heat-map cells of WebMercatorQuad tile z/x/y: what :func:`heatmap_cells` shows there.

    The resolution comes from the zoom (:func:`tile_resolution`). Events are
    read from the tile grown by six edge lengths of the next coarser
    resolution, so every cell touching the tile and every small-count parent
    merged there (:func:`~gridmap.analytics.smallcounts.protect_small_counts`)
    is counted whole; the cells that intersect the tile are kept. Counts,
    ``open``, ``merged`` and rates are then those of ``/heatmap`` with the
    same filters. ``query.bbox`` is replaced by the tile's.

    Examples
    --------
    >>> from gridmap.storage import open_store
    >>> from gridmap.security.access import SYSTEM
    >>> cells = heatmap_tile_cells(open_store(":memory:", migrate=True), EventQuery(),
    ...                            principal=SYSTEM, z=14, x=9326, y=4742)
    >>> len(cells), cells.attrs["resolution"]
    (0, 10)
    """
    from dataclasses import replace

    from gridmap.geo.tiles import tile_bounds

    _, box = tile_bounds(int(z), int(x), int(y))
    resolution = tile_resolution(int(z))
    margin = 6.0 * h3.average_hexagon_edge_length(resolution - 1, unit="m")
    wide = replace(query, bbox=_grown(box, margin))
    cells = heatmap_cells(
        store, wide, principal=principal, resolution=resolution, rate=rate, min_count=min_count
    )
    inside = shapely.intersects(np.asarray(cells.geometry.values), shapely.box(*box))
    out = cells[inside].reset_index(drop=True)
    out.attrs.update(cells.attrs, resolution=resolution)
    return out
