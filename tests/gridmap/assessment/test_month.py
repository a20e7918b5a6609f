"""The scripted month, figure by figure, on both stores (expected values worked out by hand)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from gridmap.assessment.doorknock import Visit, campaign_progress, record_visit
from gridmap.assessment.report import ReportOptions, period_report, render_html
from gridmap.assessment.scores import assess
from gridmap.common.errors import BadInput, NotFound
from gridmap.patrol.coverage import measure_coverage
from gridmap.patrol.service import grid_network
from gridmap.security.access import SYSTEM, Principal
from gridmap.security.auth import PermissionDenied
from tests.gridmap.assessment.month import (
    END,
    NOW,
    START,
    TOWN_A,
    TOWN_B,
    Month,
    h,
    world_layers,
)

pytest_plugins = ["tests.gridmap.assessment.shared"]


@pytest.fixture(params=["duckdb", pytest.param("postgis", marks=pytest.mark.postgis)])
def month(request: pytest.FixtureRequest) -> Month:
    """The scripted month, built once per backend and session (the tests only read it)."""
    built: tuple[Month, str] = request.getfixturevalue(f"month_{request.param}")
    return built[0]


def coverage_001(m: Month, days: int = 30) -> float:
    """Grid 001's coverage: the assessment's (over 30 patrol days) or the period's (days=1)."""
    streets = grid_network(m.store, m.code(1)).edges_frame()
    streets = streets[streets["required"].astype(bool)]
    fixes = m.track.copy()  # type: ignore[union-attr]
    fixes[["lon", "lat"]] = fixes[["lon", "lat"]].round(7)
    res = measure_coverage([fixes], streets)
    return res.covered_m / (res.length_m * days)


def estimates(town: str, skip: str | None = None) -> int:
    g = world_layers()["grids"]
    g = g[g["code"].str.startswith(town) & (g["code"] != skip)]
    return int(pd.to_numeric(g["households"]).sum())


def test_report_figures_one_by_one(month: Month) -> None:
    m = month
    r = period_report(
        m.store,
        SYSTEM,
        area=TOWN_A,
        start=START,
        end=END,
        now=NOW,
        options=ReportOptions(charts=False),
    )
    b = world_layers()["buildings"]
    in_a = b["grid_code"].astype("string").str.startswith(TOWN_A).fillna(False)
    # Grid 001 has 4 of its estimated households registered: it counts its estimate.
    hh_total = estimates(TOWN_A)
    expected = {
        "buildings": int(in_a.sum()),
        "households_estimated": int(pd.to_numeric(b.loc[in_a, "households"]).fillna(0).sum()),
        "buildings_unassigned": 0,
        "dwellings": int(pd.to_numeric(b.loc[in_a, "households"]).fillna(0).sum()),
        "residents_estimated": int(pd.to_numeric(b.loc[in_a, "residents"]).fillna(0).sum()),
        "households_registered": 4,
        "residents_registered": 0,
        "events_reported": 6,  # full, self, late_close, opinion, help, silent (not October's)
        "events_closed": 4,  # full, self, late_close, help
        "closure_rate": 4 / 6,
        "overdue": 2,  # opinion and silent, still open at the end of November
        "supervised": 0,
        "on_time_rate": 3 / 4,  # late_close took 200 h of 120
        "opinions": 1,
        "help_requests": 1,
        "problems_solved": 1,
        # The share of grid 001's required streets its one track covered; 12 grids in
        # town A, the other 11 without tracks count 0.
        "patrol_coverage": coverage_001(m, days=1) / 12,
        "doorknock_households": hh_total,
        "doorknock_visited": 3,
        "doorknock_progress": 3 / hh_total,
    }
    for key, value in expected.items():
        got = r.figure(key).value
        assert got is not None, key
        assert math.isclose(float(got), float(value), rel_tol=1e-4, abs_tol=1e-9), key
        assert r.figure(key).query["layer"], key
    assert r.figure("events_reported").query["where"]["grid_code"] == {"prefix": [TOWN_A]}
    assert r.figure("patrol_coverage").query["tracks"] == [m.track_id]
    cats = {c["category"]: c for c in r.categories}
    assert (cats["city_management"]["reported"], cats["city_management"]["closed"]) == (2, 2)
    assert (cats["dispute"]["reported"], cats["dispute"]["closed"]) == (2, 1)
    assert cats["residents_request"]["closure_rate"] == 0.5
    towns = {row["unit"]: row for row in r.rankings["town"]}
    assert list(towns) == [TOWN_A]  # the report of town A ranks only what it covers


def test_town_ranking_and_evidence(month: Month) -> None:
    m = month
    a = assess(m.store, SYSTEM, area="990100", start=START, end=END, level="town", now=NOW)
    s = a.scores
    assert list(s.index) == [TOWN_B, TOWN_A]
    # Town B: timeliness 2/2 (15 points, full), coverage 0, closure 0/2, door-knocking 0;
    # on-time, accuracy and satisfaction not assessed: 15 of 70 possible points.
    assert s.loc[TOWN_B, "report_timeliness_band"] == "full"
    assert s.loc[TOWN_B, "on_time_rate_band"] == "not_assessed"
    assert s.loc[TOWN_B, "possible"] == 70
    assert math.isclose(s.loc[TOWN_B, "score"], 100 * 15 / 70, rel_tol=1e-6)
    # Town A: timeliness 3/6 (late_close answered after 5 h of 2; opinion and silent never).
    assert s.loc[TOWN_A, "report_timeliness_value"] == 0.5
    assert s.loc[TOWN_A, "data_accuracy_value"] == 0.5
    assert s.loc[TOWN_A, "satisfaction_value"] == 0.5
    assert s.loc[TOWN_A, "score"] == 0
    ev = s.loc[TOWN_A, "evidence"]
    e = m.events
    assert sorted(ev["report_timeliness"]["late"]) == sorted(
        [e["late_close"], e["opinion"], e["silent"]]
    )
    assert ev["on_time_rate"]["late"] == [e["late_close"]]
    assert ev["patrol_coverage"]["tracks"] == [m.track_id]
    assert ev["doorknock"]["visits"] == sorted(v["id"] for v in m.visits)
    assert e["october"] not in ev["closure_rate"]["events"]
    g = assess(m.store, SYSTEM, area=TOWN_A, start=START, end=END, level="grid", now=NOW)
    assert math.isclose(
        g.scores.loc[m.code(1), "patrol_coverage_value"], coverage_001(m), rel_tol=1e-4
    )
    w = assess(m.store, SYSTEM, area=TOWN_A, start=START, end=END, level="worker", now=NOW)
    estimate_001 = estimates(m.code(1))  # 4 registered of 292 estimated: the estimate counts
    assert w.scores.loc["网格员001 worker 001", "doorknock_progress_value"] == 3 / estimate_001


def test_progress_and_access(month: Month) -> None:
    m = month
    t = campaign_progress(m.store, SYSTEM, campaign_id=1, by="grid")
    row = t.loc[m.code(1)]
    estimate = estimates(m.code(1))
    assert (row["households"], row["visited"], row["verified"], row["mobilised"]) == (
        estimate,
        3,
        2,
        1,
    )
    # 4 households registered of an estimated 292: progress against the estimate.
    assert row["households_source"] == "estimate" and row["progress"] == 3 / estimate
    other = Principal("other", "grid_worker", (m.code(2),))
    with pytest.raises(NotFound):
        record_visit(
            m.store,
            other,
            campaign_id=1,
            visit=Visit(
                household_id=m.households[3],
                status="visited",
                at=h(300),
                lon=24.9,
                lat=60.2,
            ),
        )
    w = Principal("网格员001 worker 001", "grid_worker", (m.code(1),))
    with pytest.raises(BadInput):
        record_visit(
            m.store,
            w,
            campaign_id=1,
            visit=Visit(
                household_id=m.households[3],
                status="knocked",
                at=h(300),
                lon=24.9,
                lat=60.2,
            ),
        )
    with pytest.raises(BadInput):  # outside the campaign's window
        record_visit(
            m.store,
            w,
            campaign_id=1,
            visit=Visit(
                household_id=m.households[3],
                status="visited",
                at="2027-01-05",
                lon=24.9,
                lat=60.2,
            ),
        )
    coord_b = Principal("coord-b", "town_coordinator", (TOWN_B,))
    with pytest.raises(NotFound):
        period_report(m.store, coord_b, area=TOWN_A, start=START, end=END)
    with pytest.raises(PermissionDenied):  # viewers read reports (small counts hidden), never write
        record_visit(
            m.store,
            Principal("v", "viewer"),
            campaign_id=1,
            visit=Visit(
                household_id=m.households[3],
                status="visited",
                at=h(300),
                lon=24.9,
                lat=60.2,
            ),
        )


def test_html_is_self_contained_and_escaped(month: Month) -> None:
    r = period_report(month.store, SYSTEM, area="990100", start=START, end=END, now=NOW)
    assert {row["unit"] for row in r.rankings["town"]} == {TOWN_A, TOWN_B}
    html = render_html(r)
    town_b = period_report(month.store, SYSTEM, area=TOWN_B, start=START, end=END, now=NOW)
    page = render_html(town_b)
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    for text in (html, page):
        assert "http://" not in text and "https://" not in text
        assert "url(" not in text and "<script" not in text
        for src in text.split('src="')[1:]:
            assert src.startswith("data:image/png;base64,")
    assert 'src="data:image/png;base64,' in html
