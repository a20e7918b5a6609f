"""Point lookup: which admin units, grid, workers and key areas cover a location.

Other systems (hotlines, phone apps, dispatch) ask "who looks after this
point?". :func:`check_points` validates and converts coordinates to WGS84 at
the edge; a :class:`Locator` holds the current grids (``valid_to IS NULL``),
admin units, workers and key areas with STRtree indexes and the JSON-ready
records of each, and answers many points at once, vectorized;
:class:`LocatorCache` keeps one per store and rebuilds it when the store's
lookup layers change (:func:`gridmap.storage.changes.data_version`, checked
at most every ``check_seconds``), so a lookup costs no database round trip.

Points outside every admin unit are not an error: they get empty admin
units, no grid, no workers (the HTTP answer is 200 with nulls).

Who sees what (:func:`answer`): admin units and key areas are public; a grid
outside the caller's area is answered as ``null`` (nothing of it is
revealed); workers' names are personal data, shown masked (张*) only to roles
with detail rights inside their area and omitted for every other role.
"""

from __future__ import annotations

import gc
import math
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import pyproj
import shapely

from gridmap.common.errors import BadInput
from gridmap.geo import chinacrs
from gridmap.geo.projection import local_crs, position_crs, positions_to_wgs84
from gridmap.security.access import ALL_AREAS, Principal
from gridmap.security.privacy import mask_name
from gridmap.storage import Store
from gridmap.storage.changes import data_version

__all__ = [
    "DEFAULT_RADIUS_M",
    "LOOKUP_LAYERS",
    "MAX_POINTS",
    "MAX_RADIUS_M",
    "Location",
    "Locator",
    "LocatorCache",
    "StoreCache",
    "answer",
    "check_points",
    "locate_points",
    "paused_gc",
]

#: Largest number of points one lookup takes.
MAX_POINTS = 10_000
#: Key areas within this distance (metres) are reported by default.
DEFAULT_RADIUS_M = 200.0
#: Largest search radius accepted (metres).
MAX_RADIUS_M = 5_000.0
#: At most this many key areas per point, nearest first.
MAX_KEY_AREAS = 5
#: The layers a :class:`Locator` is built from (a change to any rebuilds it).
T = TypeVar("T")

LOOKUP_LAYERS = ("grids", "admin_units", "key_areas", "workers")

_LEVEL_RANK = {"city": 0, "town": 1, "community": 2}
_CRS_HELP = "use wgs84, gcj02, bd09, cgcs2000 or EPSG:n"
FloatArray = npt.NDArray[np.float64]
JSON = dict[str, Any]


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
    gridmap.common.errors.BadInput
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
    gridmap.common.errors.BadInput: point 0: latitude 90.0000001 is outside [-90, 90]
    """
    if crs is None or not isinstance(crs, str) or not crs.strip():
        raise BadInput(f"crs is required: {_CRS_HELP.removeprefix('use ')}", field="crs")
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
            raise BadInput(f"unknown crs {crs[:60]!r}; {_CRS_HELP}", field="crs")
        name = crs.strip().upper()
        try:
            source = position_crs(name)
        except BadInput as exc:
            raise BadInput(f"{exc.message}; {_CRS_HELP}", field="crs") from None
        if source.is_geographic:
            _check_degrees(x, y)
        lon, lat = positions_to_wgs84(x, y, name)  # NaN where the crs does not reach
    out = ~(np.isfinite(lon) & np.isfinite(lat))
    if out.any():
        i = int(np.flatnonzero(out)[0])
        raise BadInput(
            f"point {i}: ({float(x[i])!r}, {float(y[i])!r}) is outside the area {crs[:40]} "
            "covers; it cannot be converted to WGS84",
            field="points",
        )
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


@dataclass(frozen=True)
class _Records:
    """JSON-ready pieces of the answers, built once per :class:`Locator`.

    Shared between answers: treat them as read-only.
    """

    codes: list[str | None]
    grids: list[JSON]
    units: list[JSON]
    keys: list[tuple[int | None, Any, Any]]
    workers_named: list[list[JSON]]
    workers_roles: list[list[JSON]]


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
    _records: _Records = field(repr=False)
    _key_geoms: npt.NDArray[np.object_] = field(repr=False)
    #: Per grid row: (code, community_code, workers, valid_from); per admin unit row:
    #: (code, level). Plain values for report intake, built with the locator (never lazily:
    #: a locator is shared by every request thread).
    grid_rows: list[tuple[str, str | None, tuple[str, ...], pd.Timestamp | None]] = field(
        default_factory=list, repr=False
    )
    admin_rows: list[tuple[str | None, str | None]] = field(default_factory=list, repr=False)

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
        locator = cls(
            grids,
            admin_units,
            key_areas,
            by_grid,
            _prepared_tree(grids),
            _prepared_tree(admin_units),
            key_tree,
            metric,
            _admin_ranks(admin_units),
            _records(grids, admin_units, key_areas, by_grid),
            np.asarray(key_areas["_metric"].values if "_metric" in key_areas else [], dtype=object),
        )
        locator.grid_rows = _grid_rows(grids)
        locator.admin_rows = list(
            zip(_col(admin_units, "code"), _col(admin_units, "level"), strict=True)
        )
        return locator

    @classmethod
    def from_store(cls, store: Store) -> Locator:
        """Read the layers from *store*, every area (:func:`answer` filters by caller)."""
        with store.scoped(ALL_AREAS):
            grids = store.read("grids", where={"valid_to": None})
            admin = store.read("admin_units", where={"valid_to": None})  # units in force
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
        if len(x) == 1:
            return self._locate_one(x, y, radius_m)
        n = len(x)
        points: npt.NDArray[np.object_] = np.asarray(shapely.points(x, y), dtype=object)
        grid = np.full(n, -1, dtype=np.int64)
        pi, gi = self._covering(self._grid_tree, points)
        if len(pi):
            # The lowest grid position (id) wins on a shared edge.
            order = np.lexsort((gi, pi))
            pi, gi = pi[order], gi[order]
            first = np.unique(pi, return_index=True)[1]
            grid[pi[first]] = gi[first]
        ai, ui = self._covering(self._admin_tree, points)
        order = np.lexsort((ui, self._admin_rank[ui], ai))
        admin = _group(ai[order], ui[order].tolist(), n)
        return Location(x, y, grid, admin, self._near(x, y, radius_m))

    def _locate_one(self, x: FloatArray, y: FloatArray, radius_m: float) -> Location:
        """:meth:`locate` of one point with scalar tree queries (the same answer, less overhead)."""
        px, py = float(x[0]), float(y[0])
        point = shapely.Point(px, py)
        hits = self._covering_one(self._grid_tree, point)
        grid = np.array([int(hits.min()) if len(hits) else -1], dtype=np.int64)
        rank = self._admin_rank
        units = sorted(self._covering_one(self._admin_tree, point).tolist())
        units.sort(key=lambda u: rank[u])
        keys: list[tuple[int, float]] = []
        if self._key_tree is not None and self._metric is not None and radius_m > 0:
            here = shapely.Point(*self._metric.transform(px, py))
            near = self._key_tree.query(here, predicate="dwithin", distance=radius_m)
            if len(near):
                dist = np.round(shapely.distance(here, self._key_geoms[near]), 1)
                pairs = sorted(zip(dist.tolist(), near.tolist(), strict=True))
                keys = [(k, d) for d, k in pairs[:MAX_KEY_AREAS]]
        return Location(x, y, grid, [units], [keys])

    def covering(self, lon: float, lat: float) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
        """Row positions of the grids and of the admin units covering one WGS84 point.

        Every covering row, unordered (a point on a shared edge is in both
        grids): report intake applies its own tie rule and validity dates.

        Examples
        --------
        >>> import geopandas as gpd, pandas as pd, shapely
        >>> g = gpd.GeoDataFrame({"code": ["990100001001001"]},
        ...                      geometry=[shapely.box(0, 0, 1, 1)])
        >>> loc = Locator.build(g, g.iloc[:0], g.iloc[:0], pd.DataFrame())
        >>> [p.tolist() for p in loc.covering(0.5, 0.5)]
        [[0], []]
        """
        point = shapely.Point(lon, lat)
        return self._covering_one(self._grid_tree, point), self._covering_one(
            self._admin_tree, point
        )

    @staticmethod
    def _covering(
        tree: shapely.STRtree, points: npt.NDArray[np.object_]
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
        """Pairs (point, polygon) where the polygon intersects the point.

        Candidates by bounding box, then the exact test with the polygons
        prepared (:func:`_prepared_tree`): the same answer as
        ``tree.query(points, predicate="intersects")``, which prepares the
        points instead, several times faster for detailed polygons.
        """
        pi, gi = tree.query(points)
        if len(pi):
            hit = shapely.intersects(tree.geometries[gi], points[pi])
            pi, gi = pi[hit], gi[hit]
        return pi, gi

    @staticmethod
    def _covering_one(tree: shapely.STRtree, point: shapely.Point) -> npt.NDArray[np.intp]:
        """:meth:`_covering` of one point: positions of the polygons it intersects."""
        # One GEOS call (it releases the GIL once, not twice: report intake runs
        # this in worker threads that queue for the GIL after each release).
        hits: npt.NDArray[np.intp] = tree.query(point, predicate="intersects")
        return hits

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
        dist: FloatArray = np.round(np.asarray(shapely.distance(pts[pi], self._key_geoms[ki])), 1)
        order = np.lexsort((ki, dist, pi))
        pi, ki, dist = pi[order], ki[order], dist[order]
        starts = np.searchsorted(pi, pi, side="left")
        keep = np.arange(len(pi)) - starts < MAX_KEY_AREAS
        pi, ki, dist = pi[keep], ki[keep], dist[keep]
        return _group(pi, list(zip(ki.tolist(), dist.tolist(), strict=True)), len(x))


def _grid_rows(
    grids: pd.DataFrame,
) -> list[tuple[str, str | None, tuple[str, ...], pd.Timestamp | None]]:
    """(code, community_code, workers, valid_from) of each grid row, as plain values."""
    starts = (
        pd.to_datetime(grids["valid_from"], utc=True)
        if "valid_from" in grids
        else pd.Series([pd.NaT] * len(grids))
    )
    out = []
    for code, community, workers, start in zip(
        _col(grids, "code"),
        _col(grids, "community_code"),
        grids["workers"] if "workers" in grids else [None] * len(grids),
        starts,
        strict=True,
    ):
        names = (
            tuple(str(w) for w in workers) if isinstance(workers, list | tuple | np.ndarray) else ()
        )
        out.append(
            (
                str(code),
                community if isinstance(community, str) else None,
                names,
                None if pd.isna(start) else pd.Timestamp(start),
            )
        )
    return out


def _prepared_tree(frame: gpd.GeoDataFrame) -> shapely.STRtree:
    """An STRtree over copies of the frame's geometries, prepared for fast predicates."""
    geoms = shapely.from_wkb(shapely.to_wkb(np.asarray(frame.geometry.values)))
    shapely.prepare(geoms)
    return shapely.STRtree(geoms)


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
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def _col(frame: pd.DataFrame, name: str) -> list[Any]:
    if name not in frame:
        return [None] * len(frame)
    return [_text(v) for v in frame[name].astype(object).tolist()]


def _records(
    grids: pd.DataFrame,
    admin_units: pd.DataFrame,
    key_areas: pd.DataFrame,
    workers_by_grid: dict[str, list[tuple[str, str]]],
) -> _Records:
    """The JSON pieces of every grid, admin unit, key area and grid's workers."""
    codes = _col(grids, "code")
    rows = [
        {"code": c, "name": nm, "community_code": cc}
        for c, nm, cc in zip(codes, _col(grids, "name"), _col(grids, "community_code"), strict=True)
    ]
    units = [
        {"code": c, "name": nm, "level": lv}
        for c, nm, lv in zip(
            _col(admin_units, "code"),
            _col(admin_units, "name"),
            _col(admin_units, "level"),
            strict=True,
        )
    ]
    ids = [None if v is None else int(v) for v in _col(key_areas, "id")]
    keys = list(zip(ids, _col(key_areas, "name"), _col(key_areas, "kind"), strict=True))
    crews = [workers_by_grid.get(c, []) if c is not None else [] for c in codes]
    named = [[{"name": mask_name(nm), "role": role} for nm, role in crew] for crew in crews]
    roles = [[{"role": role} for _, role in crew] for crew in crews]
    return _Records(codes, rows, units, keys, named, roles)


def answer(locator: Locator, location: Location, principal: Principal) -> list[dict[str, Any]]:
    """JSON-ready answers, one per point, with what *principal* may see.

    Admin-unit and worker records are shared with other answers of the same
    locator: serialize them, do not modify them.

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
    with paused_gc(len(location.lon)):
        return _answer(locator, location, principal)


@contextmanager
def paused_gc(n: int) -> Iterator[None]:
    """Hold the cyclic garbage collector while building *n* answers (or parsing *n* points).

    Tens of thousands of fresh dicts and lists (none in a cycle) would set
    off repeated collections that cost about as much as building them.
    Collection resumes at the end of the block; below 64 items nothing changes.

    Examples
    --------
    >>> with paused_gc(10_000):
    ...     rows = [{"i": i} for i in range(10_000)]
    >>> gc.isenabled()
    True
    """
    if n < 64 or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _answer(locator: Locator, location: Location, principal: Principal) -> list[dict[str, Any]]:
    rec = locator._records
    crews = rec.workers_named if principal.sees_personal_data else rec.workers_roles
    everything = principal.sees_everything
    covers = principal.covers
    units, keys, codes = rec.units, rec.keys, rec.codes
    lons, lats = location.lon.tolist(), location.lat.tolist()
    out: list[dict[str, Any]] = []
    for i, g in enumerate(location.grid.tolist()):
        grid: JSON | None = None
        workers: list[JSON] = []
        if g >= 0 and (everything or covers(codes[g])):
            grid = dict(rec.grids[g])
            workers = list(crews[g])
        out.append(
            {
                "lon": lons[i],
                "lat": lats[i],
                "admin_units": [units[u] for u in location.admin[i]],
                "grid": grid,
                "workers": workers,
                "key_areas": [
                    {"id": keys[k][0], "name": keys[k][1], "kind": keys[k][2], "distance_m": d}
                    for k, d in location.key_areas[i]
                ],
            }
        )
    return out


@dataclass
class _Entry(Generic[T]):
    version: tuple[Any, ...]
    checked: float
    value: T
    lock: threading.Lock = field(default_factory=threading.Lock)


class StoreCache(Generic[T]):
    """One value per store, built from some of its layers and rebuilt when they change.

    The freshness rule of every in-memory index gridmap keeps (the point
    locator, the address index): the change check
    (:func:`~gridmap.storage.changes.data_version` of :attr:`layers`, one
    cheap query) runs at most every *check_seconds*, so a busy service does
    not query the store on every request; edits show within that delay, on
    every worker process. While one request checks or rebuilds, the others
    keep answering from the value they have instead of waiting; only the
    first build makes them wait.

    Subclasses name :attr:`layers` and say how to :meth:`build` the value.
    """

    #: The layers the value is built from (their changes trigger a rebuild).
    layers: tuple[str, ...] = ()

    def __init__(self, *, check_seconds: float = 1.0) -> None:
        self.check_seconds = check_seconds
        self._lock = threading.Lock()
        self._entries: weakref.WeakKeyDictionary[Store, _Entry[T]] = weakref.WeakKeyDictionary()

    def build(self, store: Store) -> T:
        """Build the value of *store* (every area: these layers are shared reference data)."""
        raise NotImplementedError

    def stamp(self, store: Store) -> tuple[Any, ...]:
        """What must stay equal for a cached value to remain valid."""
        with store.scoped(ALL_AREAS):
            return data_version(store, self.layers)

    def fresh(self, store: Store) -> T | None:
        """The cached value if it was checked within *check_seconds* (no I/O), else None."""
        entry = self._entries.get(store)
        if entry is not None and time.monotonic() - entry.checked < self.check_seconds:
            return entry.value
        return None

    def current(self, store: Store) -> T | None:
        """What :meth:`get` would answer without I/O, else None (no I/O, never waits).

        The cached value when it was checked within *check_seconds*, or while
        another thread is checking or rebuilding it (as :meth:`get` answers then).
        """
        entry = self._entries.get(store)
        if entry is None:
            return None
        if time.monotonic() - entry.checked < self.check_seconds or entry.lock.locked():
            return entry.value
        return None

    def get(self, store: Store) -> T:
        """The value of *store*, checked against the store and rebuilt if it changed."""
        entry = self._entries.get(store)
        if entry is not None:
            if time.monotonic() - entry.checked < self.check_seconds:
                return entry.value
            if not entry.lock.acquire(blocking=False):
                return entry.value  # another request is checking; answer from this one
            try:
                return self._refresh(store, entry)
            finally:
                entry.lock.release()
        with self._lock:  # the first build: everyone waits for it
            entry = self._entries.get(store)
            if entry is not None:
                return entry.value
            # The version is read before the layers: a write landing in between
            # makes the next check rebuild again instead of keeping stale data.
            version = self.stamp(store)
            value = self.build(store)
            self._entries[store] = _Entry(version, time.monotonic(), value)
            return value

    def _refresh(self, store: Store, entry: _Entry[T]) -> T:
        if time.monotonic() - entry.checked < self.check_seconds:
            return entry.value
        version = self.stamp(store)
        if version != entry.version:
            entry.value = self.build(store)
            entry.version = version
        entry.checked = time.monotonic()
        return entry.value

    def clear(self) -> None:
        """Forget every cached value."""
        with self._lock:
            self._entries.clear()


class LocatorCache(StoreCache[Locator]):
    """One :class:`Locator` per store, rebuilt when the store's lookup layers change.

    The change check (:func:`~gridmap.storage.changes.data_version` of
    :data:`LOOKUP_LAYERS`: one cheap query) runs at most every
    *check_seconds*, so a busy lookup service does not query the store on
    every request; edits show within that delay, on every worker process.
    While one request checks or rebuilds, the others keep answering from the
    locator they have instead of waiting.

    Examples
    --------
    >>> cache = LocatorCache(check_seconds=0)
    >>> from gridmap.storage import open_store
    >>> cache.get(open_store(":memory:", migrate=True)).grids.empty
    True
    """

    layers = LOOKUP_LAYERS

    def build(self, store: Store) -> Locator:
        """The locator of *store*'s lookup layers."""
        return Locator.from_store(store)


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
    >>> from gridmap.security.access import SYSTEM
    >>> locate_points(loc, [[0.5, 0.5]], "wgs84", SYSTEM)[0]["grid"]["code"]
    '990100001001001'
    """
    if not (0 <= radius_m <= MAX_RADIUS_M) or math.isnan(radius_m):
        raise BadInput(f"radius must be between 0 and {MAX_RADIUS_M:g} metres", field="radius")
    size = len(xy) if isinstance(xy, Sequence | np.ndarray) else 0
    if size > MAX_POINTS:
        raise BadInput(f"at most {MAX_POINTS} points per request", field="points")
    lon, lat = check_points(xy, crs)
    return answer(locator, locator.locate(lon, lat, radius_m=radius_m), principal)
