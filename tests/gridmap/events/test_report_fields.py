"""Phone-app fields of a report (issue 17): observed_at, accuracy_m, grid-edge tolerance.

Grids are the real Helsinki demo grids (both stores); the points just outside
a grid are found from its polygon (tests/events_edges.py). Every event is
synthetic. Expected figures were worked out by hand from the script.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
import shapely

from gridmap.common.errors import BadInput
from gridmap.events.errors import NotPermitted
from gridmap.events.intake import IntakeRules, nearest_own_grid, parse_report, report_event
from gridmap.events.kpis import kpis
from gridmap.events.workflow import TransitionRequest, transition
from gridmap.security.access import SYSTEM, Principal
from gridmap.storage import Store
from tests.events_edges import beyond
from tests.events_world import World, make_world

T0 = pd.Timestamp("2026-11-02T00:00:00Z")
OWN = 2  # a demo grid with long edges shared with its neighbours


def h(hours: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(hours=hours)


@pytest.fixture
def world(store: Store) -> Iterator[World]:
    yield make_world(store)


def worker(w: World, i: int) -> Principal:
    return Principal(f"网格员{i}", "grid_worker", (w.code(i),))


def body_at(w: World, location: dict[str, object], **extra: Any) -> dict[str, Any]:
    return {**w.body(OWN, "city_management"), "location": location, **extra}


def test_edge_tolerance_routes_to_the_grid_of_the_point(world: World) -> None:
    w = world
    edge = beyond(w, OWN, 20.0)
    assert edge.other != OWN
    row = report_event(
        w.store,
        parse_report(body_at(w, edge.location(), accuracy_m=25)),
        principal=worker(w, OWN),
        now=T0,
    )
    stored = w.store.get("events", int(row["id"])).iloc[0]
    # Stored where it was reported, routed to the grid that contains the point.
    assert shapely.equals_exact(stored.geometry, shapely.Point(edge.lon, edge.lat), 1e-9)
    neighbour = w.grids.iloc[edge.other]
    assert stored["grid_code"] == w.code(edge.other)
    assert stored["community_code"] == neighbour["community_code"]
    assert stored["town_code"] == w.code(edge.other)[:9]
    assert list(stored["assigned_to"]) == list(neighbour["workers"])
    assert list(stored["assigned_to"]) != list(w.grids.iloc[OWN]["workers"])
    # … and the reporter's own grid is recorded.
    assert stored["reporter_grid_code"] == w.code(OWN)
    assert stored["accuracy_m"] == 25.0
    # The distance the tolerance was judged on, in metres.
    code, metres = nearest_own_grid(w.store, worker(w, OWN), edge.lon, edge.lat, now=T0) or ("", 0)
    assert code == w.code(OWN) and metres == pytest.approx(20.0, abs=0.5)
    # Within tolerance of a report made inside the grid: no reporter grid recorded.
    inside = report_event(
        w.store,
        parse_report(w.body(OWN, "dispute", accuracy_m=25)),
        principal=worker(w, OWN),
        now=T0,
    )
    assert inside["grid_code"] == w.code(OWN) and inside["reporter_grid_code"] is None


def test_edge_tolerance_refusals(world: World) -> None:
    w = world
    near, far = beyond(w, OWN, 20.0), beyond(w, OWN, 500.0)
    me = worker(w, OWN)

    def refused(location: dict[str, object], **kw: Any) -> str:
        extra = {k: v for k, v in kw.items() if k == "accuracy_m"}
        opts = {k: v for k, v in kw.items() if k != "accuracy_m"}
        with pytest.raises(NotPermitted) as info:
            report_event(
                w.store,
                parse_report(body_at(w, location, **extra)),
                principal=me,
                now=T0,
                rules=IntakeRules(**opts),
            )
        return str(info.value)

    # 500 m away: refused, in Chinese and English, with the distance and the tolerance.
    msg = refused(far.location(), accuracy_m=25)
    assert "该位置" in msg and "不在您负责的网格内(距最近网格 500 米)" in msg
    assert "500 m outside your grids (tolerance 25 m)" in msg
    assert w.code(far.other) in msg
    # No accuracy_m: no tolerance, refused as before.
    msg = refused(near.location())
    assert "距最近网格 20 米" in msg and "no tolerance without accuracy_m" in msg
    # The tolerance is the smaller of accuracy_m and the cap.
    assert "(tolerance 10 m)" in refused(near.location(), accuracy_m=10)
    assert "(tolerance 15 m)" in refused(near.location(), accuracy_m=100, edge_tolerance_m=15)
    # A worker without any grid in force: refused without a distance.
    stranger = Principal("外地", "grid_worker", ("990199999999999",))
    with pytest.raises(NotPermitted, match="outside the areas of '外地'"):
        report_event(
            w.store,
            parse_report(body_at(w, near.location(), accuracy_m=25)),
            principal=stranger,
            now=T0,
        )
    assert w.store.count("events") == 0
    # accuracy_m above the cap still gets the cap (50 m by default): accepted.
    ok = report_event(
        w.store,
        parse_report(body_at(w, near.location(), accuracy_m=400)),
        principal=me,
        now=T0,
    )
    assert ok["reporter_grid_code"] == w.code(OWN)


def test_observed_at_window_and_format(world: World) -> None:
    w = world

    def send(observed: Any, **kw: Any) -> dict[str, Any]:
        r = parse_report(w.body(0, "dispute", observed_at=observed))
        return report_event(w.store, r, principal=SYSTEM, now=T0, rules=IntakeRules(**kw))

    def bad(observed: Any, fragment: str, **kw: Any) -> None:
        with pytest.raises(BadInput, match=fragment) as info:
            send(observed, **kw)
        assert info.value.field == "observed_at"

    bad("2026-11-02T00:06:00Z", "in the future")  # 6 min ahead: more than the skew
    bad("2026-11-02T08:06:00+08:00", "in the future")
    bad("2026-10-29T23:59:59Z", "more than 72 hours before")  # 72 h and 1 s
    bad("2026-10-31T00:00:00Z", "more than 24 hours", observed_max_age_hours=24)
    for no_zone in ("2026-11-01T10:00:00", "2026-11-01", "2026-11-01 10:00"):
        bad(no_zone, "zone")
    for junk in (5, True, ["2026-11-01T10:00:00Z"], "yesterday", "2026-13-01T00:00:00Z"):
        bad(junk, "ISO 8601|zone")
    assert w.store.count("events") == 0
    # A phone clock 4 minutes fast: accepted, stored as the time of the report.
    fast = send("2026-11-02T00:04:00Z")
    assert pd.Timestamp(fast["observed_at"]) == T0
    # 71 h ago, in another zone: stored as the same instant in UTC.
    old = send("2026-10-30T09:00:00+08:00")
    assert pd.Timestamp(old["observed_at"]) == pd.Timestamp("2026-10-30T01:00:00Z")
    assert pd.Timestamp(send("2026-10-28T00:00:00Z", observed_max_age_hours=200)["observed_at"])


@pytest.mark.parametrize(
    "value", [0, -1, 10_000.5, 1e400, math.nan, math.inf, "25", True, None, [25]]
)
def test_accuracy_m_is_a_finite_positive_number(world: World, value: Any) -> None:
    body = world.body(0, "dispute", accuracy_m=value)
    if value is None:
        assert parse_report(body).accuracy_m is None
        return
    with pytest.raises(BadInput, match="accuracy_m") as info:
        parse_report(body)
    assert info.value.field == "accuracy_m"


def test_accuracy_m_bounds_accepted(world: World) -> None:
    assert parse_report(world.body(0, accuracy_m=10_000)).accuracy_m == 10_000.0
    assert parse_report(world.body(0, accuracy_m=0.5)).accuracy_m == 0.5


def test_on_time_counts_from_observed_at(world: World) -> None:
    """City management has 120 h; the clock starts when the problem was seen."""
    w = world
    a, b, c = 0, 1, 3

    def report(grid: int, observed: str | None) -> int:
        extra = {} if observed is None else {"observed_at": observed}
        r = parse_report(w.body(grid, "city_management", **extra))
        row = report_event(w.store, r, principal=SYSTEM, now=T0)
        assert row["due_at"] == h(120)
        return int(row["id"])

    def close(grid: int, eid: int, at: float) -> None:
        transition(
            w.store, eid, TransitionRequest("self_handle"), principal=worker(w, grid), now=h(at)
        )

    # e1: seen 48 h before it was reported, closed 100 h after the report:
    #     on time from reported_at (100 <= 120), late from observed_at (148 > 120).
    e1 = report(a, "2026-10-31T00:00:00Z")
    close(a, e1, 100)
    # e2: no observed_at, closed at 100 h: on time, 100 h.
    e2 = report(b, None)
    close(b, e2, 100)
    # e3: seen 2 h before, closed at 10 h: on time either way, 12 h.
    e3 = report(c, "2026-11-01T22:00:00Z")
    close(c, e3, 10)
    events = w.store.read("events")
    town = kpis(events, by="town", now=h(200)).iloc[0]
    assert (int(town["reported"]), int(town["closed"]), int(town["on_time_closed"])) == (3, 3, 2)
    assert float(town["on_time_rate"]) == pytest.approx(2 / 3)
    assert float(town["mean_hours_to_close"]) == pytest.approx((148 + 100 + 12) / 3)
    assert float(town["mean_report_lag_h"]) == pytest.approx((48 + 2) / 2)
    by_grid = kpis(events, by="grid", now=h(200))
    assert by_grid["on_time_rate"].to_dict()[w.code(a)] == 0.0
    assert math.isnan(by_grid["mean_report_lag_h"].to_dict()[w.code(b)])
    # Counted from reported_at only (the rule before observed_at), the answer differs.
    before = kpis(events.drop(columns="observed_at"), by="town", now=h(200)).iloc[0]
    assert float(before["on_time_rate"]) == 1.0
    assert float(before["mean_hours_to_close"]) == pytest.approx((100 + 100 + 10) / 3)
    assert math.isnan(float(before["mean_report_lag_h"]))
