"""A scripted scenario through the core (both stores), KPIs checked figure by figure.

Grids are the real Helsinki demo grids; every event is synthetic. The
expected KPI figures below were worked out by hand from the script, not by
the code under test.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest

from gridmap.common.errors import BadInput, NotFound, OutsideJurisdiction
from gridmap.events.errors import (
    ConcurrentUpdate,
    IllegalTransition,
    NotPermitted,
    StaleVersion,
)
from gridmap.events.intake import parse_report, report_event
from gridmap.events.kpis import kpis
from gridmap.events.workflow import (
    TransitionRequest,
    history,
    supervision_list,
    transition,
)
from gridmap.security.access import SYSTEM, Principal
from gridmap.storage import Store
from tests.events_world import World, make_world

T0 = pd.Timestamp("2026-11-02T00:00:00Z")


def h(hours: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(hours=hours)


@pytest.fixture
def world(store: Store) -> Iterator[World]:
    yield make_world(store)


def report(w: World, grid: int, category: str, at: float, **extra: Any) -> int:
    r = parse_report(w.body(grid, category, **extra))
    row = report_event(w.store, r, principal=SYSTEM, now=h(at))
    return int(row["id"])


def step(w: World, eid: int, at: float, action: str, who: Principal = SYSTEM, **kw: Any) -> None:
    transition(w.store, eid, TransitionRequest(action, **kw), principal=who, now=h(at))


FULL = ["accept", "verify", "register", "dispatch", "handle"]


def test_scenario_and_kpis(world: World) -> None:
    w = world
    a, b, c = 0, 1, 2
    worker_a = Principal("网格员A", "grid_worker", (w.code(a),))
    worker_b = Principal("网格员B", "grid_worker", (w.code(b),))

    # e1: the full path, closed after 30 h (limit 120 h).
    e1 = report(w, a, "city_management", 0)
    # e10: the same problem as e1, 30 minutes later at the same place: a duplicate, merged.
    e10 = report(w, a, "city_management", 0.5)
    row10 = w.store.get("events", e10).iloc[0]
    assert int(row10["duplicate_of"]) == e1
    step(w, e10, 0.75, "merge", target=e1)
    for i, act in enumerate(FULL):
        step(w, e1, 1 + i, act)
    step(w, e1, 30, "inspect", result="pass")
    # e2: short path, the grid worker resolves it on the spot after 1 h.
    e2 = report(w, a, "dispute", 0)
    step(w, e2, 1, "self_handle", worker_a, note="当场调解")
    # e3: inspection fails once (返工), closed after 100 h (limit 120 h).
    e3 = report(w, b, "safety_hazard", 0)
    for i, act in enumerate(FULL):
        step(w, e3, 1 + i, act)
    step(w, e3, 20, "inspect", result="fail")
    step(w, e3, 40, "handle")
    step(w, e3, 100, "close")
    # e4: urgent public security (limit 48 h x 0.5 = 24 h), escalated, closed late at 50 h.
    e4 = report(w, b, "public_security", 0, urgency="urgent")
    step(w, e4, 2, "escalate", to="town")
    step(w, e4, 3, "register")
    step(w, e4, 4, "dispatch")
    step(w, e4, 10, "handle")
    step(w, e4, 50, "close")
    # e5: key task (limit 240 h), extension of 100 h approved, closed at 300 h: on time.
    e5 = report(w, c, "key_task", 0)
    for i, act in enumerate(FULL[:4]):
        step(w, e5, 1 + i, act)
    step(w, e5, 10, "extend", hours=100)
    step(w, e5, 11, "approve_extension")
    step(w, e5, 200, "handle")
    step(w, e5, 300, "close")
    # e6: accepted, then left: overdue; supervised (督办).
    e6 = report(w, c, "epidemic", 0)
    step(w, e6, 1, "accept")
    step(w, e6, 130, "supervise", Principal("镇街", "town_coordinator", (w.code(c)[:9],)))
    # e7: a resident's opinion, left open: overdue at the end.
    e7 = report(w, a, "residents_request", 0, kind="opinion")
    # e8: a request for help, solved on the spot after 5 h.
    e8 = report(w, b, "residents_request", 0, kind="help_request")
    step(w, e8, 5, "self_handle", worker_b)
    # e9: rejected (退回).
    e9 = report(w, c, "city_management", 0)
    step(w, e9, 1, "reject", note="不属于受理范围")

    events = w.store.read("events")
    assert len(events) == 10  # nothing deleted, the duplicate included
    now = h(400)

    # Figures worked out by hand from the script above.
    inf = float("nan")
    expected = {
        w.code(a): dict(
            reported=3, closed=2, closure_rate=2 / 3, on_time_rate=1.0, rework_rate=0.0,
            extension_rate=0.0, mean_hours_to_close=15.5, p90_hours_to_close=27.1,
            self_handled_share=0.5, overdue=1, opinions=1, help_requests=0, problems_solved=0,
        ),
        w.code(b): dict(
            reported=3, closed=3, closure_rate=1.0, on_time_rate=2 / 3, rework_rate=1 / 3,
            extension_rate=0.0, mean_hours_to_close=155 / 3, p90_hours_to_close=90.0,
            self_handled_share=1 / 3, overdue=0, opinions=0, help_requests=1, problems_solved=1,
        ),
        w.code(c): dict(
            reported=3, closed=1, closure_rate=1 / 3, on_time_rate=1.0, rework_rate=0.0,
            extension_rate=1 / 3, mean_hours_to_close=300.0, p90_hours_to_close=300.0,
            self_handled_share=0.0, overdue=1, opinions=0, help_requests=0, problems_solved=0,
        ),
    }  # fmt: skip
    table = kpis(events, by="grid", now=now)
    assert sorted(table.index) == sorted(expected)
    for grid, figures in expected.items():
        for name, value in figures.items():
            got = float(table.loc[grid, name])
            assert got == pytest.approx(value, nan_ok=value is inf), (grid, name)

    town = kpis(events, by="town", now=now)
    assert len(town) == 1
    t = town.iloc[0]
    assert (int(t["reported"]), int(t["closed"]), int(t["overdue"])) == (9, 6, 2)
    assert float(t["closure_rate"]) == pytest.approx(6 / 9)
    assert float(t["on_time_rate"]) == pytest.approx(5 / 6)
    assert float(t["mean_hours_to_close"]) == pytest.approx(81.0)
    assert float(t["p90_hours_to_close"]) == pytest.approx(200.0)
    assert float(t["self_handled_share"]) == pytest.approx(2 / 6)
    # The demo gives each grid one worker: by worker equals by grid.
    by_worker = kpis(events, by="worker", now=now)
    assert sorted(by_worker["reported"].tolist()) == [3, 3, 3]
    by_cat = kpis(events, by="category", now=now)
    assert int(by_cat.loc["city_management", "reported"]) == 2  # e1, e9 (e10 merged)
    by_month = kpis(events, by="period", now=now, period="month")
    assert by_month.index.tolist() == ["2026-11"]

    # The supervision list at the end: the two open, overdue events.
    listed = supervision_list(events, now=now)
    assert set(listed["id"]) == {e6, e7}
    assert events.set_index("id").loc[e6, "supervised_at"] == h(130)
    # Escalation and extension are recorded on the event and in its history.
    ev4 = events.set_index("id").loc[e4]
    assert ev4["escalated_to"] == "town" and ev4["closed_at"] > ev4["due_at"]
    ev5 = events.set_index("id").loc[e5]
    assert int(ev5["extension_count"]) == 1
    assert ev5["due_at"] == h(240 + 100)
    past = history(w.store, e3)
    assert past["action"].tolist() == ["report", *FULL, "inspect", "handle", "close"]
    assert past["seq"].tolist() == list(range(1, 10))
    assert past.loc[past["action"] == "inspect", "to_status"].item() == "handling"
    assert int(events.set_index("id").loc[e3, "rework_count"]) == 1
    assert (past["actor"] == "system").all()


def test_illegal_stale_and_permissions(world: World) -> None:
    w = world
    e = report(w, 0, "dispute", 0)
    with pytest.raises(IllegalTransition, match="cannot close"):
        step(w, e, 1, "close")
    with pytest.raises(NotPermitted):
        step(w, e, 1, "accept", Principal("v", "viewer"))
    stranger = Principal("网格员X", "grid_worker", (w.code(5),))
    with pytest.raises(NotFound):
        step(w, e, 1, "self_handle", stranger)
    transition(w.store, e, TransitionRequest("accept"), principal=SYSTEM, expected_version=1)
    with pytest.raises(StaleVersion):
        transition(w.store, e, TransitionRequest("verify"), principal=SYSTEM, expected_version=1)
    with pytest.raises(IllegalTransition, match="cannot approve_extension"):
        step(w, e, 2, "approve_extension")
    with pytest.raises(NotPermitted):  # a grid worker may not report outside their grids
        report_event(w.store, parse_report(w.body(0, "dispute")), principal=stranger, now=h(1))


def test_merge_and_unmerge_keep_everything(world: World) -> None:
    w = world
    first = report(w, 3, "safety_hazard", 0)
    second = report(w, 3, "safety_hazard", 1)
    other = report(w, 3, "dispute", 1)  # another category: not a duplicate
    ev = w.store.read("events").set_index("id")
    assert int(ev.loc[second, "duplicate_of"]) == first
    assert pd.isna(ev.loc[other, "duplicate_of"])
    step(w, second, 2, "accept")
    step(w, second, 3, "merge", target=first)
    assert w.store.get("events", second).iloc[0]["status"] == "merged"
    step(w, second, 4, "unmerge")
    row = w.store.get("events", second).iloc[0]
    assert row["status"] == "accepted" and pd.isna(row["duplicate_of"])
    with pytest.raises(BadInput):
        step(w, first, 5, "merge", target=first)
    # Closed events are not duplicated any more; old ones neither (N days).
    late = report(w, 3, "safety_hazard", 24 * 8)
    assert pd.isna(w.store.get("events", late).iloc[0]["duplicate_of"])
    assert w.store.count("events") == 4


def test_outside_jurisdiction_explains(world: World) -> None:
    w = world
    lon, lat = w.point(0)
    cases = [
        ({"lon": 0.0, "lat": 0.0, "crs": "wgs84"}, "null island"),
        ({"lon": lat, "lat": lon, "crs": "wgs84"}, "swapped"),
        ({"lon": 116.4, "lat": 39.9, "crs": "gcj02"}, "no grid"),
    ]
    for loc, fragment in cases:
        body = {**w.body(0), "location": loc}
        with pytest.raises(OutsideJurisdiction, match=fragment):
            report_event(w.store, parse_report(body), principal=SYSTEM, now=T0)
    assert w.store.count("events") == 0


def test_concurrent_transitions_exactly_one_wins(world: World) -> None:
    w = world
    e = report(w, 4, "dispute", 0)
    n = 6
    barrier = threading.Barrier(n)
    results: list[str] = []
    lock = threading.Lock()

    def attempt(i: int) -> None:
        barrier.wait()
        try:
            transition(
                w.store, e, TransitionRequest("accept", note=f"t{i}"),
                principal=SYSTEM, expected_version=1, now=h(1),
            )  # fmt: skip
            out = "won"
        except (StaleVersion, ConcurrentUpdate, IllegalTransition) as exc:
            out = type(exc).__name__
        with lock:
            results.append(out)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert results.count("won") == 1, results
    assert len(results) == n
    past = history(w.store, e)
    assert past["action"].tolist() == ["report", "accept"]
    assert int(w.store.get("events", e).iloc[0]["version"]) == 2
