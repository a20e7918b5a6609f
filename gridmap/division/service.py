"""Grid division over a store: generate, keep history, read grids valid at a time.

These functions read the community, its buildings and roads from a
:class:`~gridmap.storage.Store`, divide, give the grids stable codes and write
them with history: a grid whose shape or counts changed is closed
(``valid_to = now``) and kept; its successor is a new row valid from now with
a new ``source_key``. Unchanged grids are left alone. After every save the
statistics of the community's grids in force are refreshed
(:func:`gridmap.division.stats.refresh_grid_statistics`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from gridmap.common.errors import BadInput, NotFound
from gridmap.division.balanced import Division, GridSize, divide_balanced
from gridmap.division.bisect import divide_bisect
from gridmap.division.codes import grids_valid_at, stable_codes
from gridmap.division.lattice import divide_h3, divide_square
from gridmap.division.stats import refresh_grid_statistics
from gridmap.storage import Store

__all__ = [
    "METHODS",
    "DivisionOptions",
    "SavedDivision",
    "check_grids",
    "community_inputs",
    "current_grids",
    "divide",
    "generate_grids",
    "grids_at",
    "rebalance_grids",
    "save_division",
]

#: Division methods with zh-CN and English names.
METHODS: dict[str, tuple[str, str]] = {
    "balanced": ("沿街均衡划分", "Street-following, balanced"),
    "h3": ("H3六边形", "H3 hexagons"),
    "square": ("方格", "Squares"),
    "bisect": ("递归二分", "Recursive bisection"),
}

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class DivisionOptions(GridSize):
    """How to divide: a :class:`GridSize` and the method with its own settings.

    The options of ``gridmap grids generate`` and ``POST /grids/generate``.

    Attributes
    ----------
    method : str
        ``balanced`` (default), ``h3``, ``square`` or ``bisect`` (see :data:`METHODS`).
    resolution : int
        H3 resolution of ``h3``.
    size_m : float
        Side of the ``square`` cells in metres.
    compactness : float
        Preference for short grid boundaries of ``balanced`` (0 = balance only).

    Examples
    --------
    >>> DivisionOptions(method="h3", high=400)
    DivisionOptions(target=300, low=200, high=400, weight='households', method='h3', \
resolution=9, size_m=250.0, compactness=0.05)
    """

    method: str = "balanced"
    resolution: int = 9
    size_m: float = 250.0
    compactness: float = 0.05


@dataclass
class SavedDivision:
    """A division written to the store: what was kept, closed and added."""

    community_code: str
    division: Division
    kept: list[str] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)


def _frame(x: gpd.GeoDataFrame | pd.DataFrame) -> gpd.GeoDataFrame:
    assert isinstance(x, gpd.GeoDataFrame)
    return x


def community_inputs(
    store: Store, community_code: str
) -> tuple[BaseGeometry, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """The community polygon, and the buildings and roads meeting it.

    Raises
    ------
    gridmap.common.errors.NotFound
        When no community has that code.
    """
    units = _frame(
        store.read(
            "admin_units",
            where={"code": community_code, "level": "community", "valid_to": None},
        )
    )
    if units.empty:
        raise NotFound(f"no community with code {community_code!r}")
    geom: BaseGeometry = shapely.union_all(np.asarray(units.geometry.values))
    bbox = tuple(float(v) for v in shapely.bounds(geom))
    b = _frame(store.read("buildings", bbox=bbox))  # type: ignore[arg-type]
    r = _frame(store.read("roads", bbox=bbox))  # type: ignore[arg-type]
    return geom, b, r


def current_grids(store: Store, community_code: str) -> gpd.GeoDataFrame:
    """Grids of a community valid now (``valid_to`` empty)."""
    g = _frame(store.read("grids", where={"community_code": community_code}))
    return g[g["valid_to"].isna().to_numpy()].reset_index(drop=True)


def divide(
    community: BaseGeometry,
    buildings: gpd.GeoDataFrame,
    roads: gpd.GeoDataFrame | None,
    *,
    community_code: str,
    options: DivisionOptions = DivisionOptions(),
    events: gpd.GeoDataFrame | None = None,
    previous: gpd.GeoDataFrame | None = None,
) -> Division:
    """Divide one community with ``options.method`` (``balanced``, ``h3``, ``square``, ``bisect``).

    Examples
    --------
    >>> import shapely, geopandas as gpd
    >>> b = gpd.GeoDataFrame({"households": [250, 250]}, geometry=[
    ...     shapely.Point(24.941, 60.171).buffer(1e-4), shapely.Point(24.948, 60.171).buffer(1e-4)],
    ...     crs=4326)
    >>> d = divide(shapely.box(24.94, 60.17, 24.95, 60.175), b, None,
    ...            community_code="990100001001",
    ...            options=DivisionOptions(method="bisect", high=300))
    >>> d.grids["households"].tolist()
    [250, 250]
    """
    method = options.method
    limits = (options.target, options.low, options.high)
    if method == "balanced":
        return divide_balanced(
            community,
            buildings,
            roads,
            community_code=community_code,
            size=options,
            points=events,
            compactness=options.compactness,
            previous=previous,
        )
    lattices = {
        "h3": partial(divide_h3, resolution=options.resolution),
        "square": partial(divide_square, size_m=options.size_m),
    }
    if method in lattices:
        return lattices[method](community, buildings, community_code=community_code, limits=limits)
    if method == "bisect":
        from gridmap.division.balanced import finish_grids
        from gridmap.division.bisect import assign_grid_codes

        lim = options.limits()
        g = divide_bisect(
            community, buildings, community_code=community_code, max_households=int(options.high)
        )
        codes = assign_grid_codes(buildings, g)
        out = finish_grids(g[["code", "geometry"]], buildings, codes, community_code=community_code)
        out["status"] = [
            "over_max" if w > lim.high else "under_min" if w < lim.low else "ok"
            for w in out["households"]
        ]
        out["reason"] = [
            "" if s == "ok" else "bisection balances only the maximum" for s in out["status"]
        ]
        return Division(out, codes, lim, "households")
    raise BadInput(f"unknown method {method!r}; available: {', '.join(METHODS)}", field="method")


def _same(a: BaseGeometry, b: BaseGeometry) -> bool:
    sym = shapely.area(shapely.symmetric_difference(a, b))
    return bool(sym <= 1e-12 * max(shapely.area(a), 1e-30))


def save_division(
    store: Store,
    division: Division,
    *,
    community_code: str,
    method: str,
    now: pd.Timestamp | None = None,
    min_iou: float = 0.5,
) -> SavedDivision:
    """Write *division* as the community's grids, with stable codes and history.

    Grids that mostly overlap a current one keep its code; a current grid whose
    shape changed (or that disappeared) is closed with ``valid_to = now``; new
    rows are valid from *now* (a redrawn grid keeps its ``workers``).
    ``buildings.grid_code`` is updated. All in one transaction.

    Returns
    -------
    SavedDivision
        Codes kept unchanged, closed, and added.
    """
    now = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
    now = now.tz_localize("UTC") if now.tzinfo is None else now.tz_convert("UTC")
    history = _frame(store.read("grids", where={"community_code": community_code}))
    old = history[history["valid_to"].isna().to_numpy()].reset_index(drop=True)
    grids = division.grids.copy()
    new_codes = stable_codes(
        grids, old, community_code, used=history["code"].dropna(), min_iou=min_iou
    )
    rename = dict(zip(grids["code"], new_codes, strict=True))
    grids["code"] = new_codes.to_numpy()
    b_codes = division.building_codes.map(lambda c: rename.get(c) if c is not None else None)
    division.grids = grids.sort_values("code").reset_index(drop=True)
    division.building_codes = b_codes
    old_by_code = {str(c): i for i, c in enumerate(old["code"])}
    kept, closed, added = [], [], []
    close_ids: list[int] = []
    count_updates: list[dict[str, object]] = []
    rows = []
    for row in division.grids.itertuples(index=False):
        i = old_by_code.pop(str(row.code), None)
        if i is not None and _same(old.geometry.iat[i], row.geometry):
            kept.append(str(row.code))
            count_updates.append(
                {
                    "id": int(old["id"].iat[i]),
                    "households": row.households,
                    "residents": row.residents,
                    "buildings": row.buildings,
                }
            )
            continue
        if i is not None:
            close_ids.append(int(old["id"].iat[i]))
            closed.append(str(row.code))
        added.append(str(row.code))
        rows.append(row)
    for code, i in old_by_code.items():
        close_ids.append(int(old["id"].iat[i]))
        closed.append(code)
    stamp = now.strftime("%Y%m%dT%H%M%S%fZ")
    new = gpd.GeoDataFrame(
        pd.DataFrame([r._asdict() for r in rows], columns=list(division.grids.columns)),
        geometry="geometry",
        crs=4326,
    )
    if len(new):
        new["name"] = [f"第{c[-3:]}网格 Grid {c[-3:]}" for c in new["code"]]
        # A redrawn grid keeps its code and its workers (gridmap.units.workers): events
        # reported there are still assigned to them.
        crews = dict(zip(old["code"].astype(str), old["workers"], strict=True))
        new["workers"] = [crews.get(str(c)) for c in new["code"]]
        new["valid_from"] = now
        new["valid_to"] = pd.NaT
        new["source"] = f"gridmap-{method}"
        new["source_id"] = [f"{c}@{stamp}" for c in new["code"]]
        new["geometry"] = [
            g if g.geom_type == "MultiPolygon" else shapely.MultiPolygon([g]) for g in new.geometry
        ]
    with store.transaction():
        if close_ids:
            store.update(
                "grids", pd.DataFrame({"id": close_ids, "valid_to": [now] * len(close_ids)})
            )
        if count_updates:
            store.update("grids", pd.DataFrame(count_updates))
        if len(new):
            store.write("grids", new)
        bld = _frame(store.read("buildings", bbox=tuple(division.grids.total_bounds)))
        if len(bld):
            from gridmap.division.bisect import assign_grid_codes

            codes = assign_grid_codes(bld, division.grids)
            mine = codes.notna() | bld["grid_code"].isin(closed + kept + added)
            if mine.any():
                store.update(
                    "buildings",
                    pd.DataFrame({"id": bld.loc[mine, "id"], "grid_code": codes[mine]}),
                )
    # The new grids' statistics (area, streets, events, workload) on the grids layer.
    refresh_grid_statistics(store, community=community_code)
    return SavedDivision(community_code, division, kept, closed, added)


def generate_grids(
    store: Store,
    *,
    community: str | None = None,
    options: DivisionOptions = DivisionOptions(),
    fresh: bool = False,
    now: pd.Timestamp | None = None,
    progress: Progress | None = None,
) -> list[SavedDivision]:
    """Divide one community (or every community) of *store* and save the grids with history.

    Parameters
    ----------
    store : Store
        Where the communities, buildings and roads are, and grids go.
    community : str, optional
        12-digit community code; every community when None.
    options : DivisionOptions
        Method, target, bounds and weight (see :func:`divide`).
    fresh : bool
        Divide from scratch; by default a balanced re-division starts from the
        grids in force, so shapes and codes change only where needed.
    now : pandas.Timestamp, optional
        Validity start of new grids (default: the current time).
    progress : callable, optional
        ``progress(step, done, total)``.

    Returns
    -------
    list of SavedDivision
        One per community.

    Examples
    --------
    >>> from gridmap.demo.job import demo_store
    >>> saved = generate_grids(demo_store(), community="990100001001")
    >>> saved[0].division.within_limits
    True
    """

    def one(code: str, geom: BaseGeometry, b: gpd.GeoDataFrame, r: gpd.GeoDataFrame) -> Division:
        events = None
        if options.weight == "events":
            bbox = tuple(float(v) for v in shapely.bounds(geom))
            events = _frame(store.read("events", bbox=bbox))  # type: ignore[arg-type]
        return divide(
            geom,
            b,
            r,
            community_code=code,
            options=options,
            events=events,
            previous=None if fresh or options.method != "balanced" else current_grids(store, code),
        )

    return _each_community(
        store, community, one, step="divide 划分", method=options.method, now=now, progress=progress
    )


def grids_at(
    store: Store, at: pd.Timestamp | str, *, community: str | None = None
) -> gpd.GeoDataFrame:
    """Grids valid at time *at* (so past events stay attributed to the grid of their time).

    Examples
    --------
    >>> from gridmap.storage import open_store
    >>> store = open_store(":memory:", migrate=True)
    >>> len(grids_at(store, "2026-01-01T00:00Z"))
    0
    """
    where = {"community_code": community} if community else None
    return grids_valid_at(_frame(store.read("grids", where=where)), at).reset_index(drop=True)


def rebalance_grids(
    store: Store,
    *,
    community: str | None = None,
    size: GridSize = GridSize(),
    now: pd.Timestamp | None = None,
    progress: Progress | None = None,
) -> list[SavedDivision]:
    """Rebalance the grids in force: only grids outside the limits (and neighbours) change.

    Examples
    --------
    >>> from gridmap.demo.job import demo_store
    >>> store = demo_store()
    >>> _ = generate_grids(store, community="990100001001")
    >>> rebalance_grids(store, community="990100001001")[0].closed
    []
    """
    from gridmap.division.rebalance import rebalance_division

    def one(code: str, geom: BaseGeometry, b: gpd.GeoDataFrame, r: gpd.GeoDataFrame) -> Division:
        old = current_grids(store, code)
        if old.empty:
            raise NotFound(f"community {code} has no grids to rebalance; generate them first")
        return rebalance_division(geom, old, b, r, community_code=code, size=size)

    return _each_community(
        store, community, one, step="rebalance 调整", method="rebalance", now=now, progress=progress
    )


def _each_community(
    store: Store,
    community: str | None,
    divide_one: Callable[[str, BaseGeometry, gpd.GeoDataFrame, gpd.GeoDataFrame], Division],
    *,
    step: str,
    method: str,
    now: pd.Timestamp | None,
    progress: Progress | None,
) -> list[SavedDivision]:
    """Divide and save each community in turn: ``divide_one(code, community, buildings, roads)``.

    *step* names the work in ``progress(f"{step} {code}", done, total)``;
    *method* is recorded with the saved grids.
    """
    codes = _community_codes(store, community)
    out = []
    for i, code in enumerate(codes):
        if progress is not None:
            progress(f"{step} {code}", i, len(codes))
        geom, b, r = community_inputs(store, code)
        d = divide_one(code, geom, b, r)
        out.append(save_division(store, d, community_code=code, method=method, now=now))
    if progress is not None:
        progress("done 完成", len(codes), len(codes))
    return out


def _community_codes(store: Store, community: str | None) -> list[str]:
    if community is not None:
        return [community]
    # Closed communities (``gridmap units close``) keep their grids' history only.
    units = _frame(store.read("admin_units", where={"level": "community", "valid_to": None}))
    return sorted({str(c) for c in units["code"]})


def check_grids(
    store: Store,
    *,
    community: str | None = None,
    fix: bool = False,
    now: pd.Timestamp | None = None,
) -> tuple[gpd.GeoDataFrame, list[str]]:
    """Topology check of the grids in force; with *fix*, repair and save them (with history).

    Returns
    -------
    (GeoDataFrame, list of str)
        The problems found (see :func:`gridmap.division.topology.check_topology`)
        and, with *fix*, the repairs made.

    Examples
    --------
    >>> from gridmap.storage import open_store
    >>> problems, _ = check_grids(open_store(":memory:", migrate=True))
    >>> len(problems)
    0
    """
    from gridmap.division.topology import check_topology, fix_topology

    communities = _frame(store.read("admin_units", where={"level": "community", "valid_to": None}))
    if community is not None:
        communities = communities[communities["code"] == community]
        if communities.empty:
            raise NotFound(f"no community with code {community!r}")
    problems = []
    actions: list[str] = []
    for comm in communities.itertuples():
        code = str(comm.code)
        grids = current_grids(store, code)
        if grids.empty:
            continue
        bbox = tuple(float(v) for v in shapely.bounds(comm.geometry))
        b = _frame(store.read("buildings", bbox=bbox))  # type: ignore[arg-type]
        sub = communities[communities["code"] == code]
        found = check_topology(grids, sub, b)
        if fix and len(found):
            fixed, done = fix_topology(grids, comm.geometry)
            from gridmap.division.bisect import assign_grid_codes

            codes = assign_grid_codes(b, fixed)
            from gridmap.division.balanced import finish_grids
            from gridmap.division.regions import Limits

            out = finish_grids(fixed[["code", "geometry"]], b, codes, community_code=code)
            d = Division(out, codes, Limits(300.0, 0.0, float("inf")), "households")
            save_division(store, d, community_code=code, method="topology-fix", now=now)
            actions.extend(f"{code}: {a}" for a in done)
        problems.append(found)
    if not problems:
        from gridmap.division.topology import COLUMNS

        return gpd.GeoDataFrame(pd.DataFrame(columns=COLUMNS), geometry="geometry", crs=4326), []
    return (
        gpd.GeoDataFrame(pd.concat(problems, ignore_index=True), geometry="geometry", crs=4326),
        actions,
    )
