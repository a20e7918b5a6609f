"""The period report against a scripted November 2026 and the periods it is compared with.

The real Helsinki demo (two towns, as in :mod:`tests.gridmap.assessment.month`)
plus five buildings outside every grid (two inside town A, three outside
every boundary). Events, tracks and visits are synthetic and scripted in
Asia/Shanghai time: November 2026 (this period), October 2026 (the previous
period) and November 2025 (the same period last year), with one event on
each side of a local midnight that is another day in UTC. Every expected
figure is computed here, from the script and the store's own rows, never by
the code under test.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from pypdf import PdfReader

from gridmap.assessment._figures import PeriodReport
from gridmap.assessment.doorknock import Visit, create_campaign, record_visit
from gridmap.assessment.pdf import render_pdf
from gridmap.assessment.report import (
    RANKING_SIZE,
    ReportOptions,
    _trim_rankings,
    dashboard_figures,
    period_report,
    render_html,
)
from gridmap.assessment.rules import INDICATORS, default_rules
from gridmap.events.intake import parse_report, report_event
from gridmap.events.workflow import TransitionRequest, transition
from gridmap.patrol.coverage import measure_coverage
from gridmap.patrol.service import grid_network, save_track
from gridmap.patrol.tracks import parse_track
from gridmap.population.registry import register_household
from gridmap.security.access import SYSTEM, Principal
from gridmap.storage import Store, open_store
from gridmap.storage.pgserver import PgServer
from tests.conftest import fresh_pg_url
from tests.gridmap.assessment.month import COMMUNITY_B, TOWN_A, TOWN_B, world_layers

TZ = "Asia/Shanghai"
START, END = "2026-11-01", "2026-12-01"
NOW = pd.Timestamp("2026-12-05T00:00:00Z")
#: [start, end) in UTC of this period, the previous one and the same period last year.
PERIODS = {
    "value": (pd.Timestamp("2026-10-31T16:00Z"), pd.Timestamp("2026-11-30T16:00Z")),
    "previous": (pd.Timestamp("2026-09-30T16:00Z"), pd.Timestamp("2026-10-31T16:00Z")),
    "last_year": (pd.Timestamp("2025-10-31T16:00Z"), pd.Timestamp("2025-11-30T16:00Z")),
}
COORD_A = Principal("镇街协调员", "town_coordinator", (TOWN_A,))
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"


def _code(seq: int) -> str:
    return f"{COMMUNITY_B}{seq:03d}" if seq >= 13 else f"990100001001{seq:03d}"


@dataclass
class World:
    store: Store
    url: str
    grids: gpd.GeoDataFrame
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    tracks: dict[str, list[pd.DataFrame]] = field(default_factory=dict)
    loose: int = 0

    def point(self, seq: int, k: int = 0) -> tuple[float, float]:
        geom = self.grids.loc[self.grids["code"] == _code(seq)].geometry.iloc[0]
        p = shapely.point_on_surface(geom)
        return float(p.x) + 0.00003 * k, float(p.y)


def _loose_buildings(grids: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Two buildings in town A and three east of every boundary, none in a grid."""
    spots = []
    for seq in (5, 6):
        p = shapely.point_on_surface(grids.loc[grids["code"] == _code(seq)].geometry.iloc[0])
        spots.append(p)
    east = float(grids.total_bounds[2]) + 0.01
    spots += [shapely.Point(east + 0.001 * i, 60.17) for i in range(3)]
    return gpd.GeoDataFrame(
        {
            "name": [f"未划入网格楼{i}" for i in range(5)],
            "use": "residential",
            "floors": 3,
            "households": 10,
            "residents": 26,
            "grid_code": None,
            "source": "synthetic",
            "source_id": [f"loose-{i}" for i in range(5)],
        },
        geometry=[shapely.buffer(p, 0.00005, cap_style="square") for p in spots],
        crs=4326,
    )


def _event(w: World, name: str, seq: int, category: str, at: str, k: int = 0, **extra: Any) -> None:
    lon, lat = w.point(seq, k)
    body = {
        "category": category,
        "description": "合成事件 synthetic",
        "location": {"lon": lon, "lat": lat, "crs": "wgs84"},
        **extra,
    }
    row = report_event(w.store, parse_report(body), principal=SYSTEM, now=pd.Timestamp(at))
    w.events[name] = {"id": int(row["id"]), "seq": seq, "at": pd.Timestamp(at)}


def _step(w: World, name: str, action: str, at: str, who: Principal = SYSTEM, **kw: Any) -> None:
    eid = w.events[name]["id"]
    request = TransitionRequest(action, **kw)
    transition(w.store, eid, request, principal=who, now=pd.Timestamp(at))


def _track(w: World, period: str, street: int, day: str, *, reverse: bool = False) -> None:
    streets = grid_network(w.store, _code(1)).edges_frame()
    line = streets[streets["required"].astype(bool)].geometry.iloc[street]
    coords = shapely.get_coordinates(shapely.segmentize(line, 0.0001))
    if reverse:  # the same street walked the other way (another track, not a re-upload)
        coords = coords[::-1]
    times = pd.date_range(f"{day}T01:00:00Z", periods=len(coords), freq="10s")
    csv = "time,lon,lat\n" + "\n".join(
        f"{t.isoformat()},{x:.7f},{y:.7f}"
        for t, x, y in zip(times, coords[:, 0], coords[:, 1], strict=True)
    )
    save_track(
        w.store, parse_track(csv, format="csv", crs="wgs84"), grid=_code(1), worker="网格员001"
    )
    fixes = pd.DataFrame({"time": times, "lon": coords[:, 0], "lat": coords[:, 1]})
    fixes[["lon", "lat"]] = fixes[["lon", "lat"]].round(7)
    w.tracks.setdefault(period, []).append(fixes)


def build(store: Store, url: str) -> World:
    layers = dict(world_layers())
    # The grids were drawn in 2025, so that last year's events lie in them too.
    layers["grids"] = layers["grids"].assign(valid_from=pd.Timestamp("2025-01-01", tz="UTC"))
    for name, frame in layers.items():
        store.write(name, frame)
    grids = store.read("grids")
    assert isinstance(grids, gpd.GeoDataFrame)
    store.write("buildings", _loose_buildings(grids))
    w = World(store, url, grids, loose=5)
    # In the order they happened (duplicates are looked for among earlier reports).
    # The same period last year (November 2025).
    _event(w, "y_self", 1, "dispute", "2025-11-15T02:00Z", k=12)
    _step(w, "y_self", "self_handle", "2025-11-15T03:00Z")
    # The previous period (October 2026).
    _event(w, "p_self", 1, "city_management", "2026-10-10T02:00Z", k=6)
    _step(w, "p_self", "self_handle", "2026-10-10T03:00Z")
    _event(w, "p_open", 2, "dispute", "2026-10-20T02:00Z", k=6)
    # 15:00 UTC on 31 October is 23:00 in Shanghai: still October, due after it ends.
    _event(w, "p_last_hour", 1, "residents_request", "2026-10-31T15:00Z", k=9)
    # This period (November 2026, Asia/Shanghai).
    # 20:00 UTC on 31 October is 04:00 on 1 November in Shanghai: this period.
    _event(w, "c_midnight", 2, "safety_hazard", "2026-10-31T20:00Z", k=3)
    _event(w, "c_full", 1, "city_management", "2026-11-03T02:00Z")
    for i, act in enumerate(["accept", "verify", "register", "dispatch", "handle"]):
        _step(w, "c_full", act, f"2026-11-03T{3 + i:02d}:00Z")
    _step(w, "c_full", "inspect", "2026-11-04T08:00Z", result="pass")  # closed after 30 h
    _event(w, "c_self", 2, "dispute", "2026-11-05T02:00Z")
    _step(w, "c_self", "self_handle", "2026-11-05T03:00Z")
    _event(w, "c_supervised", 1, "dispute", "2026-11-10T02:00Z", k=3)
    _step(w, "c_supervised", "supervise", "2026-11-11T02:00Z", COORD_A)
    _event(w, "c_town_b", 13, "dispute", "2026-11-06T02:00Z")
    stored = store.read("events")
    assert "merged" not in set(stored["status"])  # no report taken as a duplicate
    assert (stored["status"] == "closed").sum() == 4  # c_full, c_self, p_self, y_self
    # Patrols of grid 001: two streets on two days of November, one in October.
    _track(w, "value", 0, "2026-11-03")
    _track(w, "value", 1, "2026-11-04")
    _track(w, "previous", 0, "2026-10-15", reverse=True)
    # Door-knocking: 4 households registered in grid 001 (of ~292 estimated), 3 visited.
    ids = [
        int(register_household(store, SYSTEM, grid_code=_code(1), address=f"测试路{i}号")["id"])
        for i in range(4)
    ]
    camp = create_campaign(
        store, SYSTEM, name="十一月敲门", area_code=TOWN_A, starts_at=START, ends_at=END
    )
    lon, lat = w.point(1)
    for k, hid in enumerate(ids[:3]):
        record_visit(
            store,
            SYSTEM,
            campaign_id=camp["id"],
            visit=Visit(
                household_id=hid,
                status="visited",
                at=f"2026-11-0{6 + k}T02:00Z",
                lon=lon,
                lat=lat,
            ),
        )
    return w


@pytest.fixture(scope="module")
def world_duckdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    url = f"duckdb:///{tmp_path_factory.mktemp('periods') / 'p.duckdb'}"
    store = open_store(url, migrate=True)
    try:
        yield build(store, url)
    finally:
        store.close()


@pytest.fixture(scope="module")
def world_postgis(pg_server: PgServer) -> Iterator[World]:
    with fresh_pg_url(pg_server, "rp_") as url:
        store = open_store(url, migrate=True)
        try:
            yield build(store, url)
        finally:
            store.close()


@pytest.fixture(params=["duckdb", pytest.param("postgis", marks=pytest.mark.postgis)])
def world(request: pytest.FixtureRequest) -> World:
    built: World = request.getfixturevalue(f"world_{request.param}")
    return built


# --------------------------------------------------------------------------- expected


def _events(w: World, town: str, which: str) -> pd.DataFrame:
    """The events of *town* reported in a period, read back from the store."""
    t0, t1 = PERIODS[which]
    rows = w.store.read("events")
    at = pd.to_datetime(rows["reported_at"], utc=True)
    keep = rows["grid_code"].astype(str).str.startswith(town) & (at >= t0) & (at < t1)
    return pd.DataFrame(rows.loc[keep & (rows["status"] != "merged")])


def _expected_events(w: World, town: str, which: str) -> dict[str, Any]:
    ev = _events(w, town, which)
    t1 = PERIODS[which][1]
    judged = min(NOW, t1)
    closed = ev["status"] == "closed"
    due = pd.to_datetime(ev["due_at"], utc=True)
    closed_at = pd.to_datetime(ev["closed_at"], utc=True)
    open_ = ~ev["status"].isin(["closed", "rejected", "merged"])
    supervised = pd.to_datetime(ev["supervised_at"], utc=True)
    n, c = len(ev), int(closed.sum())
    on_time = int((closed & (closed_at <= due)).sum())
    return {
        "events_reported": n,
        "events_closed": c,
        "closure_rate": c / n if n else None,
        "on_time_rate": on_time / c if c else None,
        "overdue": int((open_ & (due < judged)).sum()),
        "supervised": int((supervised.notna() & (supervised < t1)).sum()),
    }


def _coverage(w: World, which: str, grids_in_town: int) -> float:
    tracks = w.tracks.get(which, [])
    if not tracks:
        return 0.0
    streets = grid_network(w.store, _code(1)).edges_frame()
    streets = streets[streets["required"].astype(bool)]
    res = measure_coverage(tracks, streets)
    return res.covered_m / res.length_m / grids_in_town


def _estimates(town: str) -> int:
    g = world_layers()["grids"]
    return int(pd.to_numeric(g.loc[g["code"].str.startswith(town), "households"]).sum())


def _close(got: Any, want: Any, key: str) -> None:
    if want is None:
        assert got is None, key
    else:
        assert got is not None, key
        assert math.isclose(float(got), float(want), rel_tol=1e-6, abs_tol=1e-9), (key, got, want)


# --------------------------------------------------------------------------- tests


def test_buildings_equal_the_store_count(world: World) -> None:
    w = world
    city = period_report(
        w.store,
        SYSTEM,
        area="990100",
        start=START,
        end=END,
        now=NOW,
        options=ReportOptions(charts=False, compare=False),
    )
    assert city.figure("buildings").value == w.store.count("buildings")  # 483 + 5
    assert city.figure("buildings_unassigned").value == w.loose == 5
    b = w.store.read("buildings")
    in_a = b["grid_code"].astype("string").str.startswith(TOWN_A).fillna(False)
    town = period_report(
        w.store,
        SYSTEM,
        area=TOWN_A,
        start=START,
        end=END,
        now=NOW,
        options=ReportOptions(charts=False, compare=False),
    )
    assert town.figure("buildings").value == int(in_a.sum()) + 2
    assert town.figure("buildings_unassigned").value == 2
    hh = pd.to_numeric(b.loc[in_a, "households"]).fillna(0).sum() + 2 * 10
    assert town.figure("dwellings").value == town.figure("households_estimated").value == hh
    res = pd.to_numeric(b.loc[in_a, "residents"]).fillna(0).sum() + 2 * 26
    assert town.figure("residents_estimated").value == res
    b_town = period_report(
        w.store,
        SYSTEM,
        area=TOWN_B,
        start=START,
        end=END,
        now=NOW,
        options=ReportOptions(charts=False, compare=False),
    )
    in_b = b["grid_code"].astype("string").str.startswith(TOWN_B).fillna(False)
    assert b_town.figure("buildings").value == int(in_b.sum())
    assert b_town.figure("buildings_unassigned").value == 0
    # Towns and the unassigned outside every boundary add up to the store.
    assert town.figure("buildings").value + b_town.figure("buildings").value + 3 == len(b)


def test_figures_and_comparisons(world: World) -> None:
    w = world
    r = period_report(
        w.store, SYSTEM, area=TOWN_A, start=START, end=END, now=NOW, options=ReportOptions(tz=TZ)
    )
    grids_a = int(world_layers()["grids"]["code"].str.startswith(TOWN_A).sum())
    hh = w.store.read("households")
    created = pd.to_datetime(hh["created_at"], utc=True)
    for which in ("value", "previous", "last_year"):
        expected = _expected_events(w, TOWN_A, which)
        expected["patrol_coverage"] = _coverage(w, which, grids_a)
        expected["doorknock_visited"] = 3 if which == "value" else 0
        expected["doorknock_households"] = _estimates(TOWN_A)
        expected["doorknock_progress"] = expected["doorknock_visited"] / _estimates(TOWN_A)
        registered = len(hh) if which == "value" else int((created < PERIODS[which][1]).sum())
        expected["households_registered"] = registered
        for key, want in expected.items():
            f = r.figure(key)
            _close(getattr(f, which), want, f"{key} ({which})")
        if which != "value":
            for key in ("events_reported", "closure_rate", "overdue", "patrol_coverage"):
                now_, past = r.figure(key).value, getattr(r.figure(key), which)
                want = None if now_ is None or past is None else now_ - past
                _close(r.figure(key).change(which), want, f"change of {key} ({which})")
    # The script, by hand: 4 events in town A this period (the one reported at 04:00
    # local on 1 November included), 3 in October (the one at 23:00 local on 31 October
    # included), 1 a year ago.
    assert [r.figure("events_reported").display(x) for x in ("value", "previous", "last_year")] == [
        "4",
        "3",
        "1",
    ]
    assert r.figure("supervised").value == 1
    # Overdue in October: only the event of the 20th; the one of the last hour was not yet due.
    assert r.figure("overdue").previous == 1
    assert r.figure("events_reported").display_change("previous") == "+1 (+33.3%)"
    # Coverage: two streets on two days in November, one in October (the share of the
    # required streets covered, not a mean over the month's days).
    assert r.figure("patrol_coverage").value > r.figure("patrol_coverage").previous > 0
    assert r.figure("patrol_coverage").query["track_days"] == 2
    note = r.figure("patrol_coverage").note_zh or ""
    assert "必巡街道" in note and "有轨迹 2 天" in note
    # The estimates keep no history: no comparison is made up for them.
    assert r.figure("buildings").history is False and r.figure("buildings").previous is None
    # Periods and times in Asia/Shanghai.
    doc = r.to_dict()
    assert doc["from"] == "2026-11-01T00:00:00+08:00" and doc["time_zone"] == TZ
    assert doc["previous_period"] == {
        "from": "2026-10-01T00:00:00+08:00",
        "to": "2026-11-01T00:00:00+08:00",
    }
    assert doc["same_period_last_year"]["from"] == "2025-11-01T00:00:00+08:00"


def test_doorknock_progress_never_exceeds_visited_over_estimated(world: World) -> None:
    w = world
    r = period_report(
        w.store,
        SYSTEM,
        area=TOWN_A,
        start=START,
        end=END,
        now=NOW,
        options=ReportOptions(charts=False, compare=False),
    )
    grid = {row["unit"]: row for row in r.rankings["grid"]}[_code(1)]
    estimate = _estimates(_code(1))
    # 4 registered households of ~292 estimated, 3 visited: 3/292, never 3/4.
    assert grid["doorknock_progress"] == pytest.approx(3 / estimate, abs=1e-6)  # 6 places
    assert grid["doorknock_progress"] <= round(3 / estimate, 6)
    assert r.figure("doorknock_progress").value <= 3 / _estimates(TOWN_A) + 1e-12
    assert "按估算" in (r.figure("doorknock_progress").note_zh or "")


def test_page_pdf_and_dashboard(world: World) -> None:
    w = world
    r = period_report(
        w.store, SYSTEM, area=TOWN_A, start=START, end=END, now=NOW, options=ReportOptions(tz=TZ)
    )
    page = render_html(r)
    assert "来源 Query" not in page and "<details>" not in page
    assert "Asia/Shanghai" in page and "2026-11-01 – 2026-12-01" in page
    assert "2026-10-01 – 2026-11-01" in page and "2025-11-01 – 2025-12-01" in page
    assert 'id="highlights"' in page and "变化最大" in page and "Biggest change" in page
    assert 'alt="分类事件 Events by category"' in page
    # Communities and grids by name with code.
    assert "第001网格 Grid 001（990100001001001）" in page
    assert 'id="note-patrol_coverage"' in page and "必巡街道" in page
    text = "".join(
        "".join((p.extract_text() or "").split())
        for p in PdfReader(io.BytesIO(render_pdf(r))).pages
    )
    for label in ("环比", "同比", "去年同期", "要点与问题", "必巡街道", "Asia/Shanghai"):
        assert label in text, label
    d = dashboard_figures(
        w.store, COORD_A, start=START, end=END, now=NOW, options=ReportOptions(tz=TZ)
    )
    assert d["area"] == TOWN_A and d["time_zone"] == TZ
    f = d["figures"]
    assert set(f) >= {
        "buildings",
        "dwellings",
        "households_estimated",
        "households_registered",
        "residents_estimated",
        "residents_registered",
        "events_reported",
        "events_closed",
        "closure_rate",
        "on_time_rate",
        "overdue",
        "supervised",
        "patrol_coverage",
        "doorknock_progress",
    }
    for key in ("events_reported", "closure_rate", "overdue", "patrol_coverage"):
        assert f[key]["value"] == pytest.approx(r.figure(key).value)
        assert f[key]["previous"] == pytest.approx(r.figure(key).previous)
        assert f[key]["last_year"] == pytest.approx(r.figure(key).last_year)
    assert f["events_reported"]["change_previous"] == 1
    assert f["events_reported"]["change_last_year"] == 3
    assert f["closure_rate"]["kind"] == "ratio" and f["buildings"]["history"] is False
    assert set(d["rankings"]["grid"]) == {"top", "bottom", "others", "idle", "units"}
    assert "变化最大" in d["highlights"]["zh"]
    # A viewer's dashboard hides small counts, this period and the earlier ones.
    v = dashboard_figures(w.store, Principal("v", "viewer"), area=TOWN_A, start=START, end=END)
    assert v["small_counts_hidden"] is True
    assert v["figures"]["events_reported"]["hidden"]["last_year"] == "<3"
    assert v["figures"]["events_reported"]["previous"] == 3
    assert v["figures"]["events_closed"]["hidden"]["previous"] == "<3"  # 1 of 3 closed
    assert v["figures"]["events_closed"]["previous"] is None


@pytest.mark.browser
def test_report_page_in_chromium(world_duckdb: World) -> None:
    from tests.browser import launch

    r = period_report(
        world_duckdb.store,
        SYSTEM,
        area=TOWN_A,
        start=START,
        end=END,
        now=NOW,
        options=ReportOptions(tz=TZ),
    )
    html = render_html(r)
    ARTIFACTS.mkdir(exist_ok=True)
    for browser in launch():
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        try:
            page.route("**/*", lambda route: route.abort())  # the page needs nothing
            page.set_content(html)
            page.screenshot(path=str(ARTIFACTS / "report-period-town.png"), full_page=True)
            widths = page.evaluate("[...document.images].map(i => [i.naturalWidth, i.complete])")
            assert widths and all(wd > 0 and ok for wd, ok in widths)
        finally:
            page.close()


def test_rankings_trimmed_with_others_and_no_idle_filler() -> None:
    def row(i: int, score: float, idle: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"unit": f"99010000100{i:04d}", "name": f"网格{i}", "rank": i}
        out["score"] = score
        for code in INDICATORS:
            out[code] = None if idle else (0.5 if code == "closure_rate" else None)
        return out

    rows = [row(i, 100 - i) for i in range(1, 24)] + [row(90 + i, 0.0, True) for i in range(5)]
    report = PeriodReport(
        "990100001",
        "街道",
        PERIODS["value"][0],
        PERIODS["value"][1],
        [],
        [],
        {"grid": rows},
        default_rules(),
    )
    _trim_rankings(report)
    kept = report.rankings["grid"]
    assert len(kept) == 2 * RANKING_SIZE
    assert [x["rank"] for x in kept] == [*range(1, 11), *range(14, 24)]
    assert report.ranking_notes["grid"] == {"units": 28, "others": 3, "idle": 5}
    page = render_html(report)
    assert "其余 3 个单位" in page and "另有 5 个单位本期无考核数据" in page
    assert "网格1（990100001000001）" in page
