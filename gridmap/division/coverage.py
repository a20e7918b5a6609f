"""Coverage of the whole area: buildings outside every community, and where they go.

Grids are drawn inside communities, so a building outside every community
would be left out of grids, KPIs and reports without a word. :func:`coverage`
counts them (and the households they hold) after an import or a division;
:func:`place_orphans` puts them somewhere, as the coordinator chooses:

``assign``
    into the nearest community (within the same town when there is one):
    the community's boundary grows to take their footprints in;
``community``
    into a new community "未划分区域 (unassigned area)" under the town that
    holds most of them, with the next free 12-digit code, whose boundary is
    the hull of their footprints outside the other communities.

A building is inside a community (or a grid) when its representative point
is, as for the assignment of buildings to grids (:mod:`gridmap.division.bisect`).

Examples
--------
>>> import geopandas as gpd, shapely
>>> from gridmap.storage import open_store
>>> store = open_store(":memory:", migrate=True)
>>> _ = store.write("admin_units", gpd.GeoDataFrame(
...     {"code": ["370285001", "370285001001"], "level": ["town", "community"],
...      "parent_code": [None, "370285001"], "source_id": ["t", "c"]},
...     geometry=[shapely.box(120.0, 36.0, 120.02, 36.01),
...               shapely.box(120.0, 36.0, 120.01, 36.01)], crs=4326))
>>> _ = store.write("buildings", gpd.GeoDataFrame(
...     {"households": [10, 7], "source_id": ["a", "b"]},
...     geometry=[shapely.box(120.004, 36.004, 120.0042, 36.0042),
...               shapely.box(120.014, 36.004, 120.0142, 36.0042)], crs=4326))
>>> c = coverage(store)
>>> c.outside, c.outside_households
(1, 7)
>>> place_orphans(store, "community").created
'370285001002'
>>> coverage(store).outside
0
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from gridmap.common.errors import BadInput
from gridmap.geo.projection import to_local, to_metric, to_wgs84
from gridmap.security import audit
from gridmap.security.access import SYSTEM, Principal
from gridmap.storage import Store

__all__ = [
    "ORPHAN_MODES",
    "UNASSIGNED_NAME",
    "Coverage",
    "Placement",
    "community_of",
    "coverage",
    "place_orphans",
]

#: What ``grids generate --orphans`` may do with buildings outside every community.
ORPHAN_MODES: dict[str, tuple[str, str]] = {
    "none": ("仅报告", "Report them only"),
    "assign": ("并入最近社区", "Put them into the nearest community"),
    "community": ("新建未划分区域", "Put them into a new 'unassigned area' community"),
}
#: Name of the community :func:`place_orphans` creates (zh, en).
UNASSIGNED_NAME = ("未划分区域", "Unassigned area")
#: Metres around a footprint that a grown or new community takes in.
FOOTPRINT_MARGIN_M = 5.0
#: Metres around the hull of the orphans of a new community.
HULL_MARGIN_M = 20.0


@dataclass(frozen=True)
class Coverage:
    """Buildings (and their households) inside and outside the communities and grids.

    ``outside``: buildings outside every community in force; ``ungridded``:
    inside a community but in no grid in force (none after a division).
    """

    buildings: int
    households: int
    outside: int
    outside_households: int
    ungridded: int
    ungridded_households: int
    outside_ids: tuple[int, ...] = ()

    @property
    def complete(self) -> bool:
        """Every building lies in a community and in a grid."""
        return self.outside == 0 and self.ungridded == 0

    def lines(self) -> list[str]:
        """What the CLI prints."""
        out = [
            f"buildings 楼栋 {self.buildings} (households 户 {self.households}); "
            f"outside every community 不在任何社区: {self.outside} "
            f"(households {self.outside_households}); in a community but in no grid "
            f"不在任何网格: {self.ungridded} (households {self.ungridded_households})"
        ]
        if self.outside:
            out.append(
                "buildings outside every community are in no grid and no report: "
                "`gridmap grids generate --orphans assign` puts them into the nearest "
                "community, `--orphans community` into a new 未划分区域 community"
            )
        return out


@dataclass(frozen=True)
class Placement:
    """What :func:`place_orphans` did: buildings placed, communities grown or created."""

    mode: str
    placed: int
    households: int
    grown: tuple[str, ...] = ()
    created: str | None = None


def _frame(x: gpd.GeoDataFrame | pd.DataFrame) -> gpd.GeoDataFrame:
    if not isinstance(x, gpd.GeoDataFrame):
        return gpd.GeoDataFrame(x, geometry=gpd.GeoSeries([], crs=4326), crs=4326)
    return x


def _communities(store: Store) -> gpd.GeoDataFrame:
    units = _frame(store.read("admin_units", where={"level": "community", "valid_to": None}))
    return units.reset_index(drop=True)


def community_of(buildings: gpd.GeoDataFrame, communities: gpd.GeoDataFrame) -> pd.Series:
    """The community code holding each building's representative point (None outside).

    Aligned to ``buildings.index``.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> c = gpd.GeoDataFrame({"code": ["370285001001"]}, geometry=[shapely.box(0, 0, 1, 1)],
    ...                      crs=4326)
    >>> b = gpd.GeoDataFrame(geometry=[shapely.box(0.1, 0.1, 0.2, 0.2),
    ...                                shapely.box(2, 2, 2.1, 2.1)], crs=4326)
    >>> community_of(b, c).tolist()
    ['370285001001', None]
    """
    from gridmap.division.bisect import assign_points

    if len(buildings) == 0:
        return pd.Series([], index=buildings.index, dtype=object)
    rep = buildings.geometry.representative_point()
    return assign_points(rep, communities[["code", "geometry"]], predicate="intersects")


def _households(buildings: pd.DataFrame, mask: np.ndarray) -> int:
    if "households" not in buildings or not mask.any():
        return 0
    return int(pd.to_numeric(buildings.loc[mask, "households"]).fillna(0).sum())


def coverage(store: Store) -> Coverage:
    """Count the buildings outside every community, and those in no grid in force."""
    buildings = _frame(store.read("buildings"))
    if len(buildings) == 0:
        return Coverage(0, 0, 0, 0, 0, 0)
    outside = community_of(buildings, _communities(store)).isna().to_numpy()
    grids = store.read("grids", where={"valid_to": None})
    live = set(grids["code"].astype(str))
    gridded = buildings["grid_code"].map(lambda c: c is not None and str(c) in live)
    ungridded = ~gridded.to_numpy(dtype=bool) & ~outside
    return Coverage(
        buildings=len(buildings),
        households=_households(buildings, np.ones(len(buildings), dtype=bool)),
        outside=int(outside.sum()),
        outside_households=_households(buildings, outside),
        ungridded=int(ungridded.sum()),
        ungridded_households=_households(buildings, ungridded),
        outside_ids=tuple(int(i) for i in buildings.loc[outside, "id"]),
    )


def _polygonal(geom: shapely.Geometry) -> shapely.MultiPolygon:
    """The polygon parts of *geom* (made valid) as one MultiPolygon."""
    geom = shapely.make_valid(geom)
    parts = [
        g
        for g in shapely.get_parts(geom)
        if g.geom_type in ("Polygon", "MultiPolygon") and not g.is_empty
    ]
    flat = [p for g in parts for p in shapely.get_parts(g)]
    return shapely.MultiPolygon(flat)


def _rewrite(store: Store, row: gpd.GeoDataFrame, geometry: shapely.Geometry) -> None:
    """Replace a unit's geometry, keeping its id and attributes (and so its source key)."""
    new = row.copy()
    new["geometry"] = [geometry]
    store.delete("admin_units", where={"id": [int(new["id"].iat[0])]})
    store.write("admin_units", gpd.GeoDataFrame(new, geometry="geometry", crs=4326))


def _orphans(store: Store) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    buildings = _frame(store.read("buildings"))
    communities = _communities(store)
    outside = community_of(buildings, communities).isna().to_numpy()
    return buildings[outside], communities


def place_orphans(
    store: Store,
    mode: Literal["assign", "community"] | str,
    *,
    principal: Principal = SYSTEM,
) -> Placement:
    """Put the buildings outside every community into one (see the module docs).

    All in one transaction; the change is audited (``unit.orphans``).

    Raises
    ------
    gridmap.common.errors.BadInput
        For an unknown *mode*, or ``assign`` when there is no community at all.
    """
    if mode not in ("assign", "community"):
        raise BadInput("--orphans must be none, assign or community", field="orphans")
    orphans, communities = _orphans(store)
    if len(orphans) == 0:
        return Placement(mode, 0, 0)
    households = _households(orphans, np.ones(len(orphans), dtype=bool))
    metric, crs = to_metric(gpd.GeoSeries(orphans.geometry.values, crs=4326))
    margin = shapely.buffer(np.asarray(metric.values, dtype=object), FOOTPRINT_MARGIN_M)
    with store.transaction():
        if mode == "assign":
            grown = _assign(store, orphans, communities, margin, crs)
            placement = Placement(mode, len(orphans), households, grown=grown)
        else:
            code = _new_community(store, orphans, communities, margin, crs)
            placement = Placement(mode, len(orphans), households, created=code)
        audit.record(
            store,
            principal,
            "unit.orphans",
            "admin_units",
            {"mode": mode, "buildings": len(orphans), "households": households},
        )
    return placement


def _assign(
    store: Store,
    orphans: gpd.GeoDataFrame,
    communities: gpd.GeoDataFrame,
    margin: np.ndarray,
    crs: pyproj.CRS,
) -> tuple[str, ...]:
    if len(communities) == 0:
        raise BadInput(
            "there is no community to put the buildings into: use --orphans community",
            field="orphans",
        )
    local = to_local(communities[["code", "geometry"]], crs)
    points = to_local(gpd.GeoDataFrame(geometry=orphans.geometry.representative_point()), crs)
    nearest = gpd.sjoin_nearest(points.reset_index(drop=True), local, how="left")
    nearest = nearest[~nearest.index.duplicated(keep="first")]
    target = nearest["index_right"].to_numpy()
    grown: list[str] = []
    for pos in sorted(set(int(t) for t in target)):
        mine = margin[target == pos]
        others = np.asarray(local.geometry.drop(index=pos).values, dtype=object)
        add = shapely.union_all(mine)
        if len(others):
            add = shapely.difference(add, shapely.union_all(others))
        bigger = shapely.union(local.geometry.iat[pos], add)
        back = to_wgs84(gpd.GeoSeries([bigger], crs=local.crs)).iat[0]
        _rewrite(store, communities.iloc[[pos]], _polygonal(back))
        grown.append(str(communities["code"].iat[pos]))
    return tuple(grown)


def _new_community(
    store: Store,
    orphans: gpd.GeoDataFrame,
    communities: gpd.GeoDataFrame,
    margin: np.ndarray,
    crs: pyproj.CRS,
) -> str:
    town = _town_of(store, orphans, communities)
    used = {str(c) for c in store.read("admin_units")["code"] if c is not None}
    used |= {str(c) for c in store.read("grids")["community_code"] if c is not None}
    code = next((f"{town}{n:03d}" for n in range(1, 1000) if f"{town}{n:03d}" not in used), None)
    if code is None:
        raise BadInput(f"no free community number left under {town}", field="orphans")
    coords = shapely.get_coordinates(margin)
    hull = shapely.buffer(
        shapely.concave_hull(shapely.multipoints(coords), ratio=0.3), HULL_MARGIN_M
    )
    area = shapely.union(hull, shapely.union_all(margin))
    if len(communities):
        taken = to_local(gpd.GeoSeries(communities.geometry.values, crs=4326), crs)
        area = shapely.difference(area, shapely.union_all(np.asarray(taken.values, dtype=object)))
    shape = _polygonal(to_wgs84(gpd.GeoSeries([area], crs=crs)).iat[0])
    zh, en = UNASSIGNED_NAME
    row = gpd.GeoDataFrame(
        {
            "code": [code],
            "name": [zh],
            "name_en": [en],
            "level": ["community"],
            "kind": ["unassigned"],
            "parent_code": [town],
            "valid_from": [pd.Timestamp.now(tz="UTC")],
            "source": ["gridmap"],
            "source_id": [f"unassigned/{code}"],
        },
        geometry=[shape],
        crs=4326,
    )
    store.write("admin_units", row)
    return code


def _town_of(store: Store, orphans: gpd.GeoDataFrame, communities: gpd.GeoDataFrame) -> str:
    """The 9-digit town holding most orphans, else the town of the nearest community."""
    towns = _frame(store.read("admin_units", where={"level": "town", "valid_to": None}))
    towns = towns[towns["code"].astype("string").str.fullmatch(r"\d{9}").fillna(False)]
    if len(towns):
        held = community_of(orphans, towns.reset_index(drop=True)).dropna()
        if len(held):
            return str(held.value_counts().index[0])
    codes = [str(c) for c in communities["code"] if str(c).isdigit() and len(str(c)) == 12]
    if codes and len(orphans):
        local, crs = to_metric(gpd.GeoSeries(orphans.geometry.values, crs=4326))
        ok = communities[communities["code"].isin(codes)].reset_index(drop=True)
        dist = [
            float(shapely.distance(shapely.union_all(np.asarray(local.values)), g))
            for g in to_local(gpd.GeoSeries(ok.geometry.values, crs=4326), crs)
        ]
        return str(ok["code"].iat[int(np.argmin(dist))])[:9]
    if len(towns) == 1:
        return str(towns["code"].iat[0])
    raise BadInput(
        "no town to put an unassigned-area community under: give the units 9- and "
        "12-digit codes first (gridmap units set-code, import osm --town-prefix)",
        field="orphans",
    )
