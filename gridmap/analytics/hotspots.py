"""Hot spots of events: Getis-Ord Gi* on H3 cells, emerging hot spots, key areas for patrols.

**Gi*** (:func:`hot_spots`): each H3 cell's count is compared with the
counts of its k-ring neighbours (binary contiguity weights, the cell itself
included — the "star"), using ``esda.G_Local``. Inference is by conditional
permutation: the cell's count is held and the others are shuffled
*permutations* times. Two p-values come out of that:

- ``p_sim``: the pseudo p-value ``(extreme + 1) / (permutations + 1)``; its
  floor is ``1 / (permutations + 1)``, so with *m* cells Benjamini-Hochberg
  at level α can only flag cells when at least ``m / (α (permutations+1))``
  of them reach the floor — for a town's hundreds of cells that needs
  hundreds of thousands of permutations;
- ``p_z`` (default): the two-sided normal p-value of ``z_sim``, the observed
  Gi* standardized by the mean and standard deviation of its permutation
  distribution. It is continuous, so the false-discovery-rate step works at
  any size. Where the permutation distribution has no spread (every other
  cell holds the same count) the analytical z of Gi* stands in.

Conditional permutation holds a cell's own count fixed, so Gi* flags a
cell whose *neighbourhood* is high: a lone busy cell among ordinary ones is
not a hot spot, a cluster spanning a few cells is.

The p-values are corrected for the many cells tested with the
Benjamini-Hochberg false-discovery-rate procedure; a cell is ``hot_99`` if
its z is positive and it passes at α = 0.01, ``hot_95`` at 0.05,
``hot_90`` at 0.10, likewise ``cold_*``; otherwise ``none``.

**Emerging hot spots** (:func:`emerging_hot_spots`) split a period into
equal time windows, run Gi* in each, and apply a simplified rule built on
the Mann-Kendall trend test of each cell's Gi* z-scores (α_trend = 0.10,
since four windows can reach p ≈ 0.09 at best). With *T* windows, *H* the
windows in which the cell is a hot spot (90 % or more), and *last* the final one:

- ``new``: hot in *last* and in no earlier window;
- ``intensifying``: hot in *last* and in at least half the windows, with a
  significant upward trend;
- ``persistent``: hot in *last* and in at least 80 % of the windows, with
  no significant trend;
- ``diminishing``: hot in at least half the windows with a significant
  downward trend (hot in *last* or not);
- ``none``: anything else.

**Patrols** (:func:`hotspots_as_key_areas`): hot cells become ``key_areas``
rows with a priority and a suggested visit frequency following Koper's
finding — short (10–15 minute) visits at unpredictable times, no more than
two hours apart, over the active hours of the day.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any, NamedTuple

import geopandas as gpd
import h3
import numpy as np
import pandas as pd

from gridmap.analytics.binning import bin_counts, cell_polygons
from gridmap.analytics.queries import (
    EventQuery,
    event_cell_counts,
    read_event_points,
    scope_prefixes,
)
from gridmap.analytics.smallcounts import needs_protection
from gridmap.common.errors import BadInput
from gridmap.common.extras import require
from gridmap.common.settings import DEFAULT_MIN_COUNT
from gridmap.geo.h3cells import cell_strings, check_resolution, latlng_to_cells
from gridmap.geo.projection import WGS84
from gridmap.security.access import Principal
from gridmap.storage import Prefix, Store

__all__ = [
    "CLASSES",
    "CLASS_LABELS",
    "EMERGING_LABELS",
    "PATTERNS",
    "GiStar",
    "benjamini_hochberg",
    "emerging_hot_spots",
    "hot_spots",
    "hotspot_cells",
    "hotspots_as_key_areas",
    "mann_kendall",
    "neighbour_lists",
    "study_cells",
]

#: Hot-spot classes, hottest first.
CLASSES: tuple[str, ...] = ("hot_99", "hot_95", "hot_90", "cold_90", "cold_95", "cold_99", "none")
#: zh-CN and English names of the classes.
CLASS_LABELS: dict[str, tuple[str, str]] = {
    "hot_99": ("热点 (99% 置信)", "Hot spot, 99% confidence"),
    "hot_95": ("热点 (95% 置信)", "Hot spot, 95% confidence"),
    "hot_90": ("热点 (90% 置信)", "Hot spot, 90% confidence"),
    "cold_90": ("冷点 (90% 置信)", "Cold spot, 90% confidence"),
    "cold_95": ("冷点 (95% 置信)", "Cold spot, 95% confidence"),
    "cold_99": ("冷点 (99% 置信)", "Cold spot, 99% confidence"),
    "none": ("不显著", "Not significant"),
}
#: Emerging hot-spot patterns.
PATTERNS: tuple[str, ...] = ("new", "intensifying", "persistent", "diminishing", "none")
#: zh-CN and English names of the patterns.
EMERGING_LABELS: dict[str, tuple[str, str]] = {
    "new": ("新热点", "New hot spot"),
    "intensifying": ("加剧热点", "Intensifying hot spot"),
    "persistent": ("持续热点", "Persistent hot spot"),
    "diminishing": ("减弱热点", "Diminishing hot spot"),
    "none": ("无趋势", "No pattern"),
}


class GiStar(NamedTuple):
    """Settings of the Gi* permutation test, passed together to :func:`hot_spots`.

    Attributes
    ----------
    k : int, default 1
        Neighbourhood rings of each cell.
    permutations : int, default 999
        Conditional permutations (at least 99).
    seed : int or None, default 0
        Random seed of the permutations (reproducible classes).

    Examples
    --------
    >>> GiStar(permutations=499)
    GiStar(k=1, permutations=499, seed=0)
    """

    k: int = 1
    permutations: int = 999
    seed: int | None = 0


#: The default Gi* test of hot spots, and of each window of emerging hot spots.
_GI = GiStar()
_GI_WINDOW = GiStar(permutations=499)
_LEVELS = ((0.01, "99"), (0.05, "95"), (0.10, "90"))
_MAX_CELLS = 50_000


def study_cells(area: Any, resolution: int) -> np.ndarray:
    """H3 cells (hex str) whose centres lie in *area*: the study region of a hot-spot run.

    Parameters
    ----------
    area : shapely geometry, GeoSeries or GeoDataFrame
        Polygons in WGS84 (e.g. the grids in scope).
    resolution : int

    Examples
    --------
    >>> import shapely
    >>> len(study_cells(shapely.box(24.93, 60.16, 24.95, 60.17), 9)) > 5
    True
    """
    geom = area
    if isinstance(area, gpd.GeoDataFrame | gpd.GeoSeries):
        series = area.geometry if isinstance(area, gpd.GeoDataFrame) else area
        if series.crs is not None:
            series = series.to_crs(WGS84)
        geom = series.union_all()
    if geom is None or geom.is_empty:
        return np.array([], dtype=object)
    cells = h3.geo_to_cells(geom, int(resolution))
    return np.array(sorted(cells), dtype=object)


def neighbour_lists(cells: Sequence[str], k: int = 1) -> dict[int, list[int]]:
    """k-ring contiguity among *cells*: position → positions of cells within *k* steps.

    Examples
    --------
    >>> centre = "891126d338fffff"
    >>> ring = sorted(h3.grid_disk(centre, 1))
    >>> len(neighbour_lists(ring)[ring.index(centre)])
    6
    """
    if int(k) < 1:
        raise BadInput(f"k must be at least 1, got {k}", field="k")
    where = {c: i for i, c in enumerate(cells)}
    # One grid_disk per cell (not per event): H3 has no array form of it.
    return {
        i: [where[d] for d in h3.grid_disk(c, int(k)) if d != c and d in where]
        for i, c in enumerate(cells)
    }


def benjamini_hochberg(p: np.ndarray, alpha: float) -> np.ndarray:
    """Which p-values pass the Benjamini-Hochberg false-discovery-rate step at *alpha*.

    Examples
    --------
    >>> benjamini_hochberg(np.array([0.001, 0.02, 0.04, 0.5]), 0.05).tolist()
    [True, True, False, False]
    """
    p = np.asarray(p, dtype="float64")
    m = p.size
    if m == 0:
        return np.zeros(0, dtype=bool)
    order = np.argsort(p, kind="stable")
    ranked = p[order]
    ok = ranked <= alpha * np.arange(1, m + 1) / m
    passed = np.zeros(m, dtype=bool)
    if ok.any():
        last = int(np.nonzero(ok)[0].max())
        passed[order[: last + 1]] = True
    return passed


def _classes(z: np.ndarray, p: np.ndarray, fdr: bool) -> np.ndarray:
    out = np.full(z.shape, "none", dtype=object)
    finite = np.isfinite(z) & np.isfinite(p)
    for alpha, level in reversed(_LEVELS):  # 90, then 95, then 99 overwrite
        passed = np.zeros(z.shape, dtype=bool)
        passed[finite] = benjamini_hochberg(p[finite], alpha) if fdr else p[finite] <= alpha
        out[passed & (z > 0)] = f"hot_{level}"
        out[passed & (z < 0)] = f"cold_{level}"
    return out


def hot_spots(
    counts: pd.Series,
    *,
    k: int = 1,
    permutations: int = 999,
    seed: int | None = 0,
    p_value: str = "p_z",
    fdr: bool = True,
) -> pd.DataFrame:
    """Getis-Ord Gi* hot and cold spots of counts on H3 cells.

    Parameters
    ----------
    counts : pandas.Series
        Event counts indexed by H3 cell (hex str) — every cell of the study
        region, zeros included (see :func:`study_cells`).
    k : int, default 1
        Neighbours are the cells within *k* rings.
    permutations : int, default 999
        Conditional permutations (at least 99).
    seed : int or None
        Random seed of the permutations (reproducible classes).
    p_value : {"p_z", "p_sim"}
        Which p-value the classes use (see the module notes).
    fdr : bool, default True
        Correct for multiple testing (Benjamini-Hochberg); ``False`` tests
        each cell on its own.

    Returns
    -------
    pandas.DataFrame
        Indexed like *counts*: ``count``, ``gi_z`` (analytical z of Gi*),
        ``z_sim``, ``p_sim``, ``p_z``, ``class`` (one of :data:`CLASSES`).

    Examples
    --------
    >>> rings = [h3.grid_disk("891126d338fffff", r) for r in range(6)]  # a planted cluster
    >>> cells = sorted(rings[5])
    >>> counts = pd.Series(0, index=cells)
    >>> counts[list(rings[1])] = 30
    >>> hs = hot_spots(counts + np.arange(len(cells)) % 3)
    >>> hs.loc["891126d338fffff", "class"]
    'hot_99'
    """
    if p_value not in ("p_z", "p_sim"):
        raise BadInput("p_value must be 'p_z' or 'p_sim'", field="p_value")
    if int(permutations) < 99:
        raise BadInput(
            f"permutations must be at least 99, got {permutations}", field="permutations"
        )
    cells = [str(c) for c in counts.index]
    y = pd.to_numeric(counts, errors="coerce").fillna(0).to_numpy("float64")
    columns = ["count", "gi_z", "z_sim", "p_sim", "p_z", "class"]
    if len(cells) > _MAX_CELLS:
        raise BadInput(
            f"{len(cells):,} cells are too many for a hot-spot analysis (at most "
            f"{_MAX_CELLS:,}); choose a coarser resolution or a smaller area",
            field="resolution",
        )
    out = pd.DataFrame(index=counts.index, columns=columns)
    out["count"] = y.astype("int64")
    neighbours = neighbour_lists(cells, k)
    linked = np.array([bool(neighbours[i]) for i in range(len(cells))], dtype=bool)
    if linked.sum() < 3 or np.ptp(y[linked]) == 0:
        out[["gi_z", "z_sim", "p_sim", "p_z"]] = np.nan
        out["class"] = "none"
        return out
    gi = _gi_star(y[linked], cells, linked, neighbours, permutations, seed)
    for name, values in gi.items():
        column = np.full(len(cells), np.nan)
        column[linked] = values
        out[name] = column
    p = out[p_value].to_numpy("float64")
    out["class"] = _classes(out["gi_z"].to_numpy("float64"), p, fdr)
    return out


def _gi_star(
    y: np.ndarray,
    cells: list[str],
    linked: np.ndarray,
    neighbours: dict[int, list[int]],
    permutations: int,
    seed: int | None,
) -> dict[str, np.ndarray]:
    from esda.getisord import G_Local
    from libpysal.weights import W

    keep = np.nonzero(linked)[0]
    renumber = {int(old): new for new, old in enumerate(keep)}
    nb = {renumber[int(i)]: [renumber[j] for j in neighbours[int(i)]] for i in keep}
    w = W(nb, silence_warnings=True)
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        # esda announces a future change of its default alternative; we use z_sim anyway.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        g = G_Local(
            y,
            w,
            transform="B",
            permutations=int(permutations),
            star=True,
            seed=seed,
            n_jobs=1,
            keep_simulations=True,
        )
    z_sim = np.asarray(g.z_sim, dtype="float64")
    gi_z = np.asarray(g.Zs, dtype="float64")
    # A permutation distribution without spread (all other cells equal) has no
    # z_sim; the analytical z of Gi* stands in for it there.
    z_used = np.where(np.isfinite(z_sim), z_sim, gi_z)
    return {
        "gi_z": gi_z,
        "z_sim": z_sim,
        "p_sim": np.asarray(g.p_sim, dtype="float64"),
        "p_z": _two_sided_p(z_used),
    }


def mann_kendall(series: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mann-Kendall trend test of each column of *series* (rows are time steps), vectorized.

    Ties are not corrected for (z-scores rarely tie).

    Returns
    -------
    s, z, p : numpy.ndarray
        The S statistic, its continuity-corrected normal score, and the two-sided p-value.

    Examples
    --------
    >>> s, z, p = mann_kendall(np.array([[1.0, 4.0], [2.0, 3.0], [3.0, 2.0], [4.0, 1.0], [5, 0]]))
    >>> s.tolist(), bool(p[0] < 0.05)
    ([10.0, -10.0], True)
    """
    x = np.asarray(series, dtype="float64")
    if x.ndim == 1:
        x = x[:, None]
    t = x.shape[0]
    i, j = np.triu_indices(t, k=1)
    s = np.sign(x[j] - x[i]).sum(axis=0)
    var = t * (t - 1) * (2 * t + 5) / 18.0
    if var <= 0:
        zeros = np.zeros(x.shape[1])
        return zeros, zeros, np.ones(x.shape[1])
    z = (s - np.sign(s)) / math.sqrt(var)
    return s, z, _two_sided_p(z)


def _two_sided_p(z: np.ndarray) -> np.ndarray:
    """Two-sided normal p-value of each z-score (scipy comes with ``gridmap[analytics]``)."""
    stats = require("scipy.stats", extra="analytics")
    return np.asarray(2.0 * stats.norm.sf(np.abs(z)), dtype="float64")


def emerging_hot_spots(
    points: pd.DataFrame,
    cells: Sequence[str],
    *,
    resolution: int,
    start: pd.Timestamp,
    end: pd.Timestamp,
    windows: int = 6,
    gi: GiStar = _GI_WINDOW,
    trend_alpha: float = 0.10,
) -> pd.DataFrame:
    """Emerging hot-spot patterns over *windows* equal time windows of ``[start, end)``.

    Parameters
    ----------
    points : pandas.DataFrame
        ``lon``, ``lat``, ``reported_at`` (time-zone aware).
    cells : sequence of str
        The study region's cells at *resolution* (:func:`study_cells`).
    resolution : int
    start, end : pandas.Timestamp
        The period, split into *windows* windows (3–24).
    gi : GiStar, default ``GiStar(permutations=499)``
        The Gi* test of each window (:func:`hot_spots`).
    trend_alpha : float, default 0.10
        Significance of the Mann-Kendall trend.

    Returns
    -------
    pandas.DataFrame
        Indexed by cell: ``hot_windows`` (how many windows it was hot in),
        ``hot_last`` (bool), ``trend_z``, ``trend_p``, ``pattern``
        (one of :data:`PATTERNS`).

    Examples
    --------
    >>> centre = "891126d338fffff"
    >>> cells = sorted(h3.grid_disk(centre, 6))
    >>> lat, lon = h3.cell_to_latlng(centre)
    >>> rng = np.random.default_rng(0)
    >>> t0 = pd.Timestamp("2026-01-01", tz="UTC")
    >>> n, m = 300, 2000  # a cluster growing over time, on uniform background events
    >>> pts = pd.DataFrame({
    ...     "lon": np.r_[lon + rng.normal(0, 0.004, n), lon + rng.uniform(-0.03, 0.03, m)],
    ...     "lat": np.r_[lat + rng.normal(0, 0.002, n), lat + rng.uniform(-0.015, 0.015, m)],
    ...     "reported_at": t0 + pd.to_timedelta(np.r_[np.sqrt(rng.uniform(0, 1, n)),
    ...                                               rng.uniform(0, 1, m)] * 60, unit="D")})
    >>> em = emerging_hot_spots(pts, cells, resolution=9, start=t0,
    ...                         end=t0 + pd.Timedelta(days=60), windows=4)
    >>> em.loc[centre, "pattern"] in ("new", "intensifying", "persistent")
    True
    """
    windows = int(windows)
    if not 3 <= windows <= 24:
        raise BadInput(f"windows must be from 3 to 24, got {windows}", field="windows")
    if start.tzinfo is None or end.tzinfo is None or start >= end:
        raise BadInput("the period needs zone-aware start < end", field="from")
    cell_list = [str(c) for c in cells]
    at = pd.to_datetime(points["reported_at"], utc=True)
    share = ((at - start) / (end - start)).to_numpy("float64")
    slot = np.where(
        np.isfinite(share) & (share >= 0) & (share < 1),
        np.floor(np.nan_to_num(share, nan=-1.0) * windows),
        -1,
    ).astype("int64")
    ids = latlng_to_cells(points["lon"].to_numpy(), points["lat"].to_numpy(), resolution)
    names = pd.Series(cell_strings(ids), dtype=object)
    z = np.full((windows, len(cell_list)), np.nan)
    hot = np.zeros((windows, len(cell_list)), dtype=bool)
    for w in range(windows):
        in_window = (slot == w) & (ids != 0)
        counts = names[in_window].value_counts().reindex(cell_list).fillna(0)
        counts.index = pd.Index(cell_list)
        hs = hot_spots(counts, k=gi.k, permutations=gi.permutations, seed=gi.seed)
        z[w] = hs["gi_z"].to_numpy("float64")
        hot[w] = hs["class"].astype(str).str.startswith("hot").to_numpy()
    _, trend_z, trend_p = mann_kendall(np.nan_to_num(z))
    n_hot = hot.sum(axis=0)
    last = hot[-1]
    up = (trend_p <= trend_alpha) & (trend_z > 0)
    down = (trend_p <= trend_alpha) & (trend_z < 0)
    half = math.ceil(windows / 2)
    pattern = np.full(len(cell_list), "none", dtype=object)
    pattern[(n_hot >= half) & down] = "diminishing"
    pattern[last & (n_hot >= math.ceil(0.8 * windows)) & ~up & ~down] = "persistent"
    pattern[last & (n_hot >= half) & up] = "intensifying"
    pattern[last & (n_hot == 1)] = "new"
    return pd.DataFrame(
        {
            "hot_windows": n_hot,
            "hot_last": last,
            "trend_z": trend_z,
            "trend_p": trend_p,
            "pattern": pattern,
        },
        index=pd.Index(cell_list, name="h3"),
    )


_PRIORITY = {"hot_99": 1, "hot_95": 2, "hot_90": 3}


def hotspots_as_key_areas(
    hotspots: pd.DataFrame,
    *,
    grids: gpd.GeoDataFrame | None = None,
    min_class: str = "hot_95",
    active_hours: float = 16.0,
    max_gap_hours: float = 2.0,
    emerging: pd.DataFrame | None = None,
) -> gpd.GeoDataFrame:
    """Hot cells as ``key_areas`` rows for patrol planning (kind ``key_area``).

    Parameters
    ----------
    hotspots : pandas.DataFrame
        Output of :func:`hot_spots` (indexed by cell, with ``class`` and ``count``).
    grids : geopandas.GeoDataFrame, optional
        Grids with ``code`` and ``community_code``: the community of the grid
        holding each cell's centre is recorded.
    min_class : {"hot_99", "hot_95", "hot_90"}
        Weakest class turned into a key area.
    active_hours : float, default 16
        Hours of the day patrols run (e.g. 06:00–22:00).
    max_gap_hours : float, default 2
        Koper: visits no more than two hours apart (10–15 minutes each, at
        unpredictable times).
    emerging : pandas.DataFrame, optional
        Output of :func:`emerging_hot_spots`: ``new`` and ``intensifying``
        cells move up one priority step.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns of the ``key_areas`` layer: ``name``, ``kind`` ("key_area"),
        ``category`` ("hot_spot"), ``priority`` (1 highest), ``visits_per_day``
        (``ceil(active_hours / max_gap_hours)``, one fewer per lower priority
        step, at least 1), ``community_code``, ``source`` ("hotspots"),
        ``source_id`` (the cell), and the cell polygon.

    Examples
    --------
    >>> hs = pd.DataFrame({"class": ["hot_99", "hot_90", "none"], "count": [40, 12, 2]},
    ...                   index=["891126d338fffff", "891126d3387ffff", "891126d33a7ffff"])
    >>> ka = hotspots_as_key_areas(hs, min_class="hot_90")
    >>> ka["priority"].tolist(), ka["visits_per_day"].tolist()
    ([1, 3], [8.0, 6.0])
    """
    if min_class not in _PRIORITY:
        raise BadInput(f"min_class must be one of {', '.join(_PRIORITY)}", field="min_class")
    if not (0 < active_hours <= 24 and 0 < max_gap_hours <= active_hours):
        raise BadInput("need 0 < max_gap_hours <= active_hours <= 24", field="active_hours")
    classes = hotspots["class"].astype(str)
    chosen = hotspots[classes.map(_PRIORITY).fillna(99) <= _PRIORITY[min_class]]
    priority = chosen["class"].astype(str).map(_PRIORITY).astype("int64")
    if emerging is not None and len(chosen):
        boost = emerging["pattern"].reindex(chosen.index).isin(["new", "intensifying"])
        priority = (priority - boost.to_numpy().astype(int)).clip(lower=1)
    base = math.ceil(active_hours / max_gap_hours)
    visits = np.maximum(1, base - (priority.to_numpy() - 1)).astype("float64")
    cells = np.asarray(chosen.index, dtype=object)
    geometry = cell_polygons(cells)
    out = gpd.GeoDataFrame(
        {
            "name": [f"事件热点 Event hot spot {c}" for c in cells],
            "kind": "key_area",
            "category": "hot_spot",
            "priority": priority.to_numpy(),
            "visits_per_day": visits,
            "community_code": None,
            "source": "hotspots",
            "source_id": cells,
        },
        geometry=geometry,
        crs=WGS84,
    )
    if grids is not None and len(out) and len(grids):
        centres = gpd.GeoDataFrame(geometry=out.geometry.representative_point(), crs=WGS84)
        g = grids.to_crs(WGS84)[["community_code", "geometry"]]
        hit = gpd.sjoin(centres, g, how="left", predicate="within")
        hit = hit[~hit.index.duplicated(keep="first")]
        out["community_code"] = hit["community_code"].reindex(out.index).to_numpy()
    return out.sort_values(["priority", "source_id"]).reset_index(drop=True)


def hotspot_cells(
    store: Store,
    query: EventQuery,
    *,
    principal: Principal,
    resolution: int,
    gi: GiStar = _GI,
    windows: int | None = None,
    min_count: int = DEFAULT_MIN_COUNT,
) -> gpd.GeoDataFrame:
    """Hot and cold spots a principal may see, on the H3 cells of the grids in scope.

    The study region is every cell whose centre lies in a grid the principal
    (and the query's ``area``) covers, plus every cell holding an event, so
    empty cells count as zeros. With *windows*, the emerging pattern over
    that many equal windows of the query's time window (or of the events'
    time span) is added as ``pattern``. Where small counts are protected
    (:func:`gridmap.analytics.smallcounts.needs_protection`), counts from 1 to *min_count* − 1
    are blanked (``count`` null, ``suppressed`` true); the class stays. *gi*
    sets the Gi* test (:class:`GiStar`; emerging patterns use half its
    permutations, at least 99).

    Returns
    -------
    geopandas.GeoDataFrame
        ``h3``, ``count``, ``class``, ``gi_z``, ``p_value``, ``suppressed``
        [, ``pattern``], cell polygons; ``attrs["protected"]``.

    Examples
    --------
    >>> from gridmap.storage import open_store
    >>> from gridmap.security.access import SYSTEM
    >>> hs = hotspot_cells(open_store(":memory:", migrate=True), EventQuery(),
    ...                    principal=SYSTEM, resolution=9)
    >>> len(hs)
    0
    """
    resolution = check_resolution(resolution)
    points = pd.DataFrame()
    if windows is None:  # counts per cell from the store (pre-binned cells, GROUP BY)
        per_cell = event_cell_counts(store, query, principal=principal, resolution=resolution)
    else:  # emerging patterns need each event's time
        points = read_event_points(store, query, principal=principal)
        per_cell = bin_counts(points, resolution)
    counts = per_cell.set_index("h3")["count"]
    prefixes = scope_prefixes(principal, query.area)
    grids = store.read("grids", where={"code": Prefix(prefixes)}) if prefixes else None
    region = np.array([], dtype=object)
    if isinstance(grids, gpd.GeoDataFrame) and len(grids):
        region = study_cells(grids, resolution)
    cells = sorted(set(region.tolist()) | set(counts.index.tolist()))
    if query.bbox is not None and cells:
        minx, miny, maxx, maxy = query.bbox
        lat_lng = np.array([h3.cell_to_latlng(c) for c in cells])
        inside = (
            (lat_lng[:, 1] >= minx)
            & (lat_lng[:, 1] <= maxx)
            & (lat_lng[:, 0] >= miny)
            & (lat_lng[:, 0] <= maxy)
        )
        cells = [c for c, ok in zip(cells, inside, strict=True) if ok]
    full = counts.reindex(cells).fillna(0).astype("int64")
    result = hot_spots(full, k=gi.k, permutations=gi.permutations, seed=gi.seed)
    out = pd.DataFrame(
        {
            "h3": np.asarray(cells, dtype=object),
            "count": result["count"].astype("Int64").to_numpy(),
            "class": result["class"].astype(str).to_numpy(),
            "gi_z": result["gi_z"].astype("float64").to_numpy(),
            "p_value": result["p_z"].astype("float64").to_numpy(),
        }
    )
    if windows is not None and cells:
        times = points["reported_at"]
        start = query.start if query.start is not None else times.min()
        end = query.end if query.end is not None else times.max() + pd.Timedelta(seconds=1)
        if pd.isna(start) or pd.isna(end):
            out["pattern"] = "none"
        else:
            em = emerging_hot_spots(
                points,
                cells,
                resolution=resolution,
                start=pd.Timestamp(start),
                end=pd.Timestamp(end),
                windows=windows,
                gi=gi._replace(permutations=max(99, gi.permutations // 2)),
            )
            out["pattern"] = em["pattern"].to_numpy()
    protected = needs_protection(principal.role, query.categories)
    small = (out["count"] > 0) & (out["count"] < min_count)
    out["suppressed"] = small.to_numpy(bool) if protected else False
    if protected:
        out["count"] = out["count"].mask(small)
    gdf = gpd.GeoDataFrame(out, geometry=cell_polygons(out["h3"].to_numpy()), crs=WGS84)
    gdf.attrs["protected"] = protected
    return gdf
