"""Point lookup: which admin units, grid, workers and key areas cover a location.

Other systems (hotlines, phone apps, dispatch) ask "who looks after this
point?". :func:`check_points` validates and converts coordinates to WGS84 at
the edge; a :class:`Locator` holds the current grids (``valid_to IS NULL``),
admin units, workers and key areas with STRtree indexes and answers many
points at once, vectorized; :class:`LocatorCache` rebuilds it when the store
changes.

Points outside every admin unit are not an error: they get empty admin
units, no grid, no workers (the HTTP answer is 200 with nulls).

Who sees what (:func:`answer`): admin units and key areas are public; a grid
outside the caller's area is answered as ``null`` (nothing of it is
revealed); workers' names are personal data, shown masked (张*) only to roles
with detail rights inside their area and omitted for every other role.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import pyproj
import shapely

from gridmap import chinacrs
from gridmap.access import ALL_AREAS, Principal
from gridmap.errors import BadInput
from gridmap.privacy import mask_name
from gridmap.projection import local_crs
from gridmap.storage import Store

__all__ = [
    "DEFAULT_RADIUS_M",
    "MAX_POINTS",
    "MAX_RADIUS_M",
    "Locator",
    "LocatorCache",
    "Location",
    "answer",
    "check_points",
    "locate_points",
]

#: Largest number of points one lookup takes.
MAX_POINTS = 10_000
#: Key areas within this distance (metres) are reported by default.
DEFAULT_RADIUS_M = 200.0
#: Largest search radius accepted (metres).
MAX_RADIUS_M = 5_000.0
#: At most this many key areas per point, nearest first.
MAX_KEY_AREAS = 5

_LEVEL_RANK = {"city": 0, "town": 1, "community": 2}
FloatArray = npt.NDArray[np.float64]


def _transformer(crs: str) -> pyproj.Transformer:
    try:
        source = pyproj.CRS.from_user_input(crs)
    except pyproj.exceptions.CRSError:
        raise BadInput(
            f"unknown crs {crs[:60]!r}; use wgs84, gcj02, bd09, cgcs2000 or EPSG:n", field="crs"
        ) from None
    return pyproj.Transformer.from_crs(source, 4326, always_xy=True)


def check_points(xy: npt.ArrayLike, crs: str | None) -> tuple[FloatArray, FloatArray]:
    """Validate positions stated in *crs* and return WGS84 longitudes and latitudes.

    Parameters
    ----------
    xy : array_like, shape (n, 2)
        ``[x, y]`` positions: longitude/latitude in degrees for geographic
        systems (``wgs84``, ``gcj02``, ``bd09``, ``cgcs2000``, ``EPSG:4326``,
        ``EPSG:4490``), easting/northing for projected ``EPSG:n``.
    crs : str
        The coordinate system the positions are stated in (required).

    Returns
    -------
    lon, lat : ndarray
        WGS84 degrees, aligned to the input.

    Raises
    ------
    gridmap.errors.BadInput
        Naming the problem: a missing or unknown crs, a non-finite value, a
        position that is not two numbers, or one outside lon [-180, 180] /
        lat [-90, 90].

    Examples
    --------
    >>> lon, lat = check_points([[24.94, 60.17]], "wgs84")
    >>> float(lon[0]), float(lat[0])
    (24.94, 60.17)
    >>> check_points([[0, 90.0000001]], "wgs84")
    Traceback (most recent call last):
    ...
    gridmap.errors.BadInput: point 0: latitude 90.0000001 is outside [-90, 90]
    """
    if crs is None or not isinstance(crs, str) or not crs.strip():
        raise BadInput("crs is required: wgs84, gcj02, bd09, cgcs2000 or EPSG:n", field="crs")
    try:
        arr = np.asarray(xy, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise BadInput("positions must be [x, y] pairs of numbers", field="points") from None
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise BadInput("each position must be exactly two numbers [x, y]", field="points")
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise BadInput(f"point {i}: coordinates must be finite numbers", field="points")
    x, y = arr[:, 0], arr[:, 1]
    if chinacrs.is_chinese_crs(crs):
        _check_degrees(x, y)
        lon, lat = chinacrs.to_wgs84(x, y, crs)
    else:
        if not crs.strip().upper().startswith("EPSG:"):
            raise BadInput(
                f"unknown crs {crs[:60]!r}; use wgs84, gcj02, bd09, cgcs2000 or EPSG:n",
                field="crs",
            )
        transformer = _transformer(crs)
        if transformer.source_crs is not None and transformer.source_crs.is_geographic:
            _check_degrees(x, y)
        lon, lat = transformer.transform(x, y, errcheck=False)
        lon, lat = np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
    out = ~(np.isfinite(lon) & np.isfinite(lat))
    if out.any():
        i = int(np.flatnonzero(out)[0])
        raise BadInput(f"point {i}: cannot be converted from {crs} to WGS84", field="points")
    _check_degrees(lon, lat)
    return np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)


def _check_degrees(lon: FloatArray, lat: FloatArray) -> None:
    bad_lat = np.abs(lat) > 90
    if bad_lat.any():
        i = int(np.flatnonzero(bad_lat)[0])
        raise BadInput(
            f"point {i}: latitude {float(lat[i])!r} is outside [-90, 90]", field="points"
        )
    bad_lon = np.abs(lon) > 180
    if bad_lon.any():
        i = int(np.flatnonzero(bad_lon)[0])
        raise BadInput(
            f"point {i}: longitude {float(lon[i])!r} is outside [-180, 180]", field="points"
        )


@dataclass(frozen=True)
class Location:
    """Where a batch of points falls, aligned to the input points.

    ``grid`` holds positions into :attr:`Locator.grids` (-1: no grid),
    ``admin`` a list of positions into :attr:`Locator.admin_units` per point,
    ``key_areas`` a list of ``(position, distance_m)`` per point, nearest first.
    """

    lon: FloatArray
    lat: FloatArray
    grid: npt.NDArray[np.int64]
    admin: list[list[int]]
    key_areas: list[list[tuple[int, float]]]


@dataclass
class Locator:
    """Lookup tables built from one snapshot of the store.

    Parameters
    ----------
    grids, admin_units, key_areas : GeoDataFrame
        Current grids (``valid_to`` null), admin units and key areas (WGS84).
    workers : DataFrame
        ``name``, ``role``, ``grid_codes`` of grid workers.

    Examples
    --------
    >>> import geopandas as gpd, pandas as pd, shapely
    >>> g = gpd.GeoDataFrame({"code": ["990100001001001"]}, geometry=[shapely.box(0, 0, 1, 1)])
    >>> loc = Locator.build(g, g.iloc[:0], g.iloc[:0], pd.DataFrame())
    >>> int(loc.locate([0.5, 2.0], [0.5, 0.5]).grid[1])
    -1
    """

    grids: gpd.GeoDataFrame
    admin_units: gpd.GeoDataFrame
    key_areas: gpd.GeoDataFrame
    workers_by_grid: dict[str, list[tuple[str, str]]]
    _grid_tree: shapely.STRtree = field(repr=False)
    _admin_tree: shapely.STRtree = field(repr=False)
    _key_tree: shapely.STRtree | None = field(repr=False)
    _metric: pyproj.Transformer | None = field(repr=False)
    _admin_rank: npt.NDArray[np.int64] = field(repr=False)

    @classmethod
    def build(
        cls,
        grids: gpd.GeoDataFrame,
        admin_units: gpd.GeoDataFrame,
        key_areas: gpd.GeoDataFrame,
        workers: pd.DataFrame,
    ) -> Locator:
        """Index the layers (grids sorted by id so ties on shared edges are deterministic)."""
        if "id" in grids:
            grids = grids.sort_values("id")
        grids = grids.reset_index(drop=True)
        admin_units = admin_units.reset_index(drop=True)
        key_areas = key_areas.reset_index(drop=True)
        by_grid: dict[str, list[tuple[str, str]]] = {}
        if not workers.empty and "grid_codes" in workers:
            for name, role, codes in zip(
                workers["name"], workers["role"], workers["grid_codes"], strict=True
            ):
                for code in codes if codes is not None else ():
                    by_grid.setdefault(str(code), []).append((name or "", role or ""))
        key_tree = metric = None
        if not key_areas.empty:
            metric = pyproj.Transformer.from_crs(
                4326, local_crs(tuple(key_areas.total_bounds)), always_xy=True
            )
            projected = shapely.transform(
                np.asarray(key_areas.geometry.values), lambda c: _project(metric, c)
            )
            key_areas = key_areas.assign(_metric=projected)
            key_tree = shapely.STRtree(projected)
        return cls(
            grids,
            admin_units,
            key_areas,
            by_grid,
            shapely.STRtree(np.asarray(grids.geometry.values)),
            shapely.STRtree(np.asarray(admin_units.geometry.values)),
            key_tree,
            metric,
            _admin_ranks(admin_units),
        )

    @classmethod
    def from_store(cls, store: Store) -> Locator:
        """Read the layers from *store*, every area (:func:`answer` filters by caller)."""
        with store.scoped(ALL_AREAS):
            grids = store.read("grids", where={"valid_to": None})
            admin = store.read("admin_units")
            keys = store.read("key_areas")
            workers = store.read("workers")
        assert isinstance(grids, gpd.GeoDataFrame) and isinstance(admin, gpd.GeoDataFrame)
        assert isinstance(keys, gpd.GeoDataFrame)
        return cls.build(grids, admin, keys, workers)

    def locate(
        self, lon: npt.ArrayLike, lat: npt.ArrayLike, *, radius_m: float = DEFAULT_RADIUS_M
    ) -> Location:
        """Grid, admin units and nearby key areas of WGS84 points, vectorized."""
        x = np.atleast_1d(np.asarray(lon, dtype=np.float64))
        y = np.atleast_1d(np.asarray(lat, dtype=np.float64))
        n = len(x)
        points = shapely.points(x, y)
        grid = np.full(n, -1, dtype=np.int64)
        pi, gi = self._grid_tree.query(points, predicate="intersects")
        if len(pi):
            # The lowest grid position (id) wins on a shared edge.
            order = np.lexsort((gi, pi))
            pi, gi = pi[order], gi[order]
            first = np.unique(pi, return_index=True)[1]
            grid[pi[first]] = gi[first]
        ai, ui = self._admin_tree.query(points, predicate="intersects")
        order = np.lexsort((ui, self._admin_rank[ui], ai))
        admin = _group(ai[order], ui[order].tolist(), n)
        return Location(x, y, grid, admin, self._near(x, y, radius_m))

    def _near(self, x: FloatArray, y: FloatArray, radius_m: float) -> list[list[tuple[int, float]]]:
        out: list[list[tuple[int, float]]] = [[] for _ in range(len(x))]
        if self._key_tree is None or self._metric is None or radius_m <= 0:
            return out
        mx, my = self._metric.transform(x, y)
        pts: npt.NDArray[np.object_] = np.asarray(
            shapely.points(np.asarray(mx), np.asarray(my)), dtype=object
        )
        pi, ki = self._key_tree.query(pts, predicate="dwithin", distance=radius_m)
        if not len(pi):
            return out
        geoms = np.asarray(self.key_areas["_metric"].values)
        dist: FloatArray = np.round(np.asarray(shapely.distance(pts[pi], geoms[ki])), 1)
        order = np.lexsort((ki, dist, pi))
        pi, ki, dist = pi[order], ki[order], dist[order]
        starts = np.searchsorted(pi, pi, side="left")
        keep = np.arange(len(pi)) - starts < MAX_KEY_AREAS
        pi, ki, dist = pi[keep], ki[keep], dist[keep]
        return _group(pi, list(zip(ki.tolist(), dist.tolist(), strict=True)), len(x))


def _group(owner: npt.NDArray[np.intp], values: list[Any], n: int) -> list[list[Any]]:
    """Split *values* (sorted by *owner*) into one list per owner 0..n-1."""
    out: list[list[Any]] = [[] for _ in range(n)]
    if not len(owner):
        return out
    bounds = np.flatnonzero(np.diff(owner)) + 1
    starts = np.concatenate([[0], bounds]).tolist()
    ends = np.concatenate([bounds, [len(owner)]]).tolist()
    for o, a, b in zip(owner[starts].tolist(), starts, ends, strict=True):
        out[o] = values[a:b]
    return out


def _admin_ranks(admin_units: pd.DataFrame) -> npt.NDArray[np.int64]:
    """Sort key of each admin unit: city, town, community, then anything else."""
    levels = admin_units["level"] if "level" in admin_units else [None] * len(admin_units)
    return np.array([_LEVEL_RANK.get(str(v), 9) for v in levels], dtype=np.int64)


def _project(transformer: pyproj.Transformer, coords: FloatArray) -> FloatArray:
    x, y = transformer.transform(coords[:, 0], coords[:, 1])
    return np.column_stack([x, y])


def _text(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def _col(frame: pd.DataFrame, name: str) -> list[Any]:
    if name not in frame:
        return [None] * len(frame)
    return [_text(v) for v in frame[name].astype(object).tolist()]


def answer(locator: Locator, location: Location, principal: Principal) -> list[dict[str, Any]]:
    """JSON-ready answers, one per point, with what *principal* may see.

    Examples
    --------
    >>> import geopandas as gpd, pandas as pd, shapely
    >>> g = gpd.GeoDataFrame({"id": [1], "code": ["990100001001001"], "name": ["G1"]},
    ...                      geometry=[shapely.box(0, 0, 1, 1)])
    >>> w = pd.DataFrame({"name": ["张三"], "role": ["grid_worker"],
    ...                   "grid_codes": [["990100001001001"]]})
    >>> loc = Locator.build(g, g.iloc[:0], g.iloc[:0], w)
    >>> p = Principal("x", "grid_worker", ("990100001001001",))
    >>> answer(loc, loc.locate([0.5], [0.5]), p)[0]["workers"]
    [{'name': '张*', 'role': 'grid_worker'}]
    """
    gr, au, ka = locator.grids, locator.admin_units, locator.key_areas
    codes, names, community = _col(gr, "code"), _col(gr, "name"), _col(gr, "community_code")
    units = [
        {"code": c, "name": nm, "level": lv}
        for c, nm, lv in zip(_col(au, "code"), _col(au, "name"), _col(au, "level"), strict=True)
    ]
    keys = list(zip(_col(ka, "id"), _col(ka, "name"), _col(ka, "kind"), strict=True))
    personal = principal.sees_personal_data
    out: list[dict[str, Any]] = []
    for i in range(len(location.lon)):
        g = int(location.grid[i])
        grid: dict[str, Any] | None = None
        workers: list[dict[str, Any]] = []
        if g >= 0 and principal.covers(codes[g]):
            grid = {"code": codes[g], "name": names[g], "community_code": community[g]}
            for name, role in locator.workers_by_grid.get(codes[g], ()):
                workers.append(
                    {"name": mask_name(name), "role": role} if personal else {"role": role}
                )
        out.append(
            {
                "lon": float(location.lon[i]),
                "lat": float(location.lat[i]),
                "admin_units": [units[u] for u in location.admin[i]],
                "grid": grid,
                "workers": workers,
                "key_areas": [
                    {"id": int(keys[k][0]), "name": keys[k][1], "kind": keys[k][2], "distance_m": d}
                    for k, d in location.key_areas[i]
                ],
            }
        )
    return out


class LocatorCache:
    """One :class:`Locator` per store, rebuilt when the store's lookup layers change.

    The change check (row counts of the four layers and the schema version)
    runs at most every *check_seconds*, so a busy lookup service does not
    query the store on every request; edits show within that delay.

    Examples
    --------
    >>> cache = LocatorCache(check_seconds=0)
    >>> from gridmap.storage import open_store
    >>> cache.get(open_store(":memory:", migrate=True)).grids.empty
    True
    """

    def __init__(self, *, check_seconds: float = 2.0) -> None:
        self.check_seconds = check_seconds
        self._lock = threading.Lock()
        self._entries: dict[int, tuple[tuple[int, ...], float, Locator]] = {}

    @staticmethod
    def stamp(store: Store) -> tuple[int, ...]:
        """What must stay equal for a cached locator to remain valid."""
        with store.scoped(ALL_AREAS):
            return (
                store.schema_version(),
                store.count("grids"),
                store.count("grids", where={"valid_to": None}),
                store.count("admin_units"),
                store.count("key_areas"),
                store.count("workers"),
            )

    def get(self, store: Store) -> Locator:
        """The locator of *store*, rebuilt if the store changed."""
        now = time.monotonic()
        entry = self._entries.get(id(store))
        if entry is not None and now - entry[1] < self.check_seconds:
            return entry[2]
        with self._lock:
            entry = self._entries.get(id(store))
            if entry is not None and now - entry[1] < self.check_seconds:
                return entry[2]
            stamp = self.stamp(store)
            if entry is not None and entry[0] == stamp:
                self._entries[id(store)] = (stamp, now, entry[2])
                return entry[2]
            locator = Locator.from_store(store)
            self._entries[id(store)] = (stamp, time.monotonic(), locator)
            return locator

    def clear(self) -> None:
        """Forget every cached locator."""
        with self._lock:
            self._entries.clear()


def locate_points(
    locator: Locator,
    xy: Sequence[Sequence[float]] | npt.ArrayLike,
    crs: str | None,
    principal: Principal,
    *,
    radius_m: float = DEFAULT_RADIUS_M,
) -> list[dict[str, Any]]:
    """Validate, convert and look up positions: the whole ``/locate`` job.

    Examples
    --------
    >>> import geopandas as gpd, pandas as pd, shapely
    >>> g = gpd.GeoDataFrame({"code": ["990100001001001"]}, geometry=[shapely.box(0, 0, 1, 1)])
    >>> loc = Locator.build(g, g.iloc[:0], g.iloc[:0], pd.DataFrame())
    >>> from gridmap.access import SYSTEM
    >>> locate_points(loc, [[0.5, 0.5]], "wgs84", SYSTEM)[0]["grid"]["code"]
    '990100001001001'
    """
    if not (0 <= radius_m <= MAX_RADIUS_M) or math.isnan(radius_m):
        raise BadInput(f"radius must be between 0 and {MAX_RADIUS_M:g} metres", field="radius")
    arr = np.asarray(xy, dtype=object) if not isinstance(xy, np.ndarray) else xy
    if arr.ndim == 2 and len(arr) > MAX_POINTS:
        raise BadInput(f"at most {MAX_POINTS} points per request", field="points")
    lon, lat = check_points(xy, crs)
    return answer(locator, locator.locate(lon, lat, radius_m=radius_m), principal)
