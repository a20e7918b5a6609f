"""A scripted month (November 2026) of activity in two towns of the real Helsinki demo.

The demo grids (real streets and buildings) are split into two towns: grids
001–012 stay in town 990100001, grids 013–023 move to town 990100002
(community 990100002001). Every event, track and visit is synthetic. The
expected figures are computed in the tests from this script, not by the code
under test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridmap.assessment.doorknock import Visit, create_campaign, record_visit
from gridmap.demo.job import run_demo
from gridmap.events.intake import parse_report, report_event
from gridmap.events.workflow import TransitionRequest, transition
from gridmap.patrol.service import grid_network, save_track
from gridmap.patrol.tracks import parse_track
from gridmap.population.registry import register_household
from gridmap.security.access import SYSTEM, Principal
from gridmap.storage import Store, open_store

TOWN_A, TOWN_B = "990100001", "990100002"
COMMUNITY_B = "990100002001"
EVIL = "<img src=x onerror=alert(1)>"
START, END = "2026-11-01", "2026-12-01"
T0 = pd.Timestamp("2026-11-02T00:00:00Z")
NOW = pd.Timestamp("2026-12-05T00:00:00Z")
LAYERS = ("admin_units", "grids", "workers", "buildings", "roads")


def h(hours: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(hours=hours)


def _recode(code: str) -> str:
    return f"{COMMUNITY_B}{code[-3:]}" if int(code[-3:]) >= 13 else code


@lru_cache(maxsize=1)
def world_layers() -> dict[str, pd.DataFrame]:
    """The demo layers, split into two towns (built once per session)."""
    s = open_store(":memory:", migrate=True)
    try:
        run_demo(s, events=0)
        layers = {name: s.read(name).drop(columns="id") for name in LAYERS}
    finally:
        s.close()
    grids = layers["grids"].copy()
    grids["code"] = grids["code"].map(_recode)
    grids["source_id"] = grids["code"]
    grids["community_code"] = grids["code"].str[:12]
    layers["grids"] = grids
    b = layers["buildings"].copy()
    b["grid_code"] = b["grid_code"].map(lambda c: _recode(c) if isinstance(c, str) else c)
    layers["buildings"] = b
    w = layers["workers"].copy()
    w["area_code"] = w["area_code"].map(_recode)
    w["grid_codes"] = [[_recode(c) for c in codes] for codes in w["grid_codes"]]
    w["source_id"] = w["area_code"]
    layers["workers"] = w
    units = layers["admin_units"].copy()
    geo_a = shapely.union_all(grids.loc[grids["code"].str.startswith(TOWN_A)].geometry.values)
    geo_b = shapely.union_all(grids.loc[grids["code"].str.startswith(TOWN_B)].geometry.values)
    units.loc[units["level"] != "city", "geometry"] = geo_a
    extra = gpd.GeoDataFrame(
        {
            "code": [TOWN_B, COMMUNITY_B],
            "name": [f"第二街道{EVIL}", "第二社区"],
            "name_en": ["Second town", "Second community"],
            "level": ["town", "community"],
            "kind": ["street", "community"],
            "parent_code": ["990100", TOWN_B],
            "source": "synthetic",
            "source_id": [TOWN_B, COMMUNITY_B],
        },
        geometry=[geo_b, geo_b],
        crs=4326,
    )
    layers["admin_units"] = pd.concat([units, extra], ignore_index=True)
    # Only grid 001 is patrolled: keep the streets around it (fewer rows to write).
    area = shapely.buffer(grids.loc[grids["code"] == "990100001001001"].geometry.iloc[0], 0.01)
    roads = layers["roads"]
    layers["roads"] = roads.loc[shapely.intersects(roads.geometry.values, area)]
    return layers


@dataclass
class Month:
    store: Store
    grids: gpd.GeoDataFrame
    events: dict[str, int] = field(default_factory=dict)
    track_id: int = 0
    track: pd.DataFrame | None = None
    visits: list[dict[str, Any]] = field(default_factory=list)
    households: list[int] = field(default_factory=list)

    def code(self, seq: int) -> str:
        """Grid code of demo grid number *seq* (1–23)."""
        return _recode(f"990100001001{seq:03d}")

    def point(self, seq: int) -> tuple[float, float]:
        geom = self.grids.loc[self.grids["code"] == self.code(seq)].geometry.iloc[0]
        p = shapely.point_on_surface(geom)
        return float(p.x), float(p.y)


def _report(m: Month, seq: int, category: str, at: float, kind: str = "event") -> int:
    lon, lat = m.point(seq)
    body = {
        "category": category,
        "kind": kind,
        "description": "合成事件 synthetic",
        "location": {"lon": lon + 0.00001 * at, "lat": lat, "crs": "wgs84"},
    }
    row = report_event(m.store, parse_report(body), principal=SYSTEM, now=h(at))
    return int(row["id"])


def _step(m: Month, eid: int, at: float, action: str, **kw: Any) -> None:
    transition(m.store, eid, TransitionRequest(action, **kw), principal=SYSTEM, now=h(at))


def build_month(store: Store) -> Month:
    """Write the world and script the month into *store*."""
    for name, frame in world_layers().items():
        store.write(name, frame)
    grids = store.read("grids")
    assert isinstance(grids, gpd.GeoDataFrame)
    m = Month(store, grids)
    e = m.events
    # Town A, grid 001.
    e["full"] = _report(m, 1, "city_management", 0)  # accepted after 1 h, closed at 30 h
    for i, act in enumerate(["accept", "verify", "register", "dispatch", "handle"]):
        _step(m, e["full"], 1 + i, act)
    _step(m, e["full"], 30, "inspect", result="pass")
    e["self"] = _report(m, 1, "dispute", 10)  # self-handled after 1 h
    _step(m, e["self"], 11, "self_handle", note="当场调解")
    e["late_close"] = _report(m, 1, "city_management", 20)  # accepted at 25 h (late), closed 200 h
    for i, act in enumerate(["accept", "verify", "register", "dispatch", "handle"]):
        _step(m, e["late_close"], 25 + i, act)
    _step(m, e["late_close"], 220, "inspect", result="pass")
    e["opinion"] = _report(m, 1, "residents_request", 40, kind="opinion")  # never answered
    # Town A, grid 002: a help request solved, and one never answered.
    e["help"] = _report(m, 2, "residents_request", 50, kind="help_request")
    _step(m, e["help"], 51, "self_handle")
    e["silent"] = _report(m, 2, "dispute", 60)
    # Town B, grid 013: one rejected, one open in handling.
    e["rejected"] = _report(m, 13, "dispute", 70)
    _step(m, e["rejected"], 71, "reject", note="不属于受理范围")
    e["open_b"] = _report(m, 13, "city_management", 80)
    for i, act in enumerate(["accept", "verify", "register", "dispatch"]):
        _step(m, e["open_b"], 81 + i, act)
    # Outside the month: reported in October (must not count).
    e["october"] = _report(m, 1, "dispute", -200)
    # A patrol track along the first required street of grid 001 on 3 November.
    streets = grid_network(store, m.code(1)).edges_frame()
    line = streets[streets["required"].astype(bool)].geometry.iloc[0]
    coords = shapely.get_coordinates(shapely.segmentize(line, 0.0001))
    times = pd.date_range("2026-11-03T08:00:00Z", periods=len(coords), freq="10s")
    fixes = pd.DataFrame({"time": times, "lon": coords[:, 0], "lat": coords[:, 1]})
    csv = "time,lon,lat\n" + "\n".join(
        f"{t.isoformat()},{x:.7f},{y:.7f}"
        for t, x, y in zip(times, coords[:, 0], coords[:, 1], strict=True)
    )
    worker = "网格员001 worker 001"
    saved = save_track(
        store, parse_track(csv, format="csv", crs="wgs84"), grid=m.code(1), worker=worker
    )
    m.track_id, m.track = int(saved["id"]), fixes
    # Door-knocking: 4 registered households in grid 001.
    for i in range(4):
        hh = register_household(store, SYSTEM, grid_code=m.code(1), address=f"测试路{i + 1}号")
        m.households.append(int(hh["id"]))
    camp = create_campaign(
        store, SYSTEM, name="十一月敲门行动", area_code=TOWN_A, starts_at=START, ends_at=END
    )
    w = Principal(worker, "grid_worker", (m.code(1),))
    lon, lat = m.point(1)
    plan = [
        (0, "visited", None, True),
        (0, "verified", True, None),
        (1, "visited", None, False),
        (2, "mobilised", False, None),
    ]
    for k, (i, status, correct, satisfied) in enumerate(plan):
        m.visits.append(
            record_visit(
                store,
                w,
                campaign_id=camp["id"],
                visit=Visit(
                    household_id=m.households[i],
                    status=status,
                    at=h(100 + k),
                    lon=lon,
                    lat=lat,
                    data_correct=correct,
                    satisfied=satisfied,
                ),
            )
        )
    return m


def rate(num: int, den: int) -> float:
    return num / den if den else float("nan")


__all__ = ["Month", "build_month", "h", "np", "rate"]
