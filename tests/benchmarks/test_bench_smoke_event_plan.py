"""A tiny run of the event-plan benchmark: it starts, solves both ways and prints its numbers.

No timing or quality is asserted (the goals are measured in the full run,
``python benchmarks/bench_event_plan.py``); the test checks that each
contender's row and the two ratios are printed with finite numbers.
"""

from __future__ import annotations

import math
from pathlib import Path

from tests.benchmarks.smoke import run_script, summary_of

ROOT = Path(__file__).resolve().parents[2]


def test_bench_event_plan_prints_both_contenders_and_the_ratios() -> None:
    out = run_script(
        "bench_event_plan.py",
        "--key-areas",
        "4",
        "--workers",
        "2",
        "--hours",
        "2",
        "--ours-seconds",
        "0.3",
        "--baseline-seconds",
        "0.6",
        timeout=300,
    )
    lines = out.splitlines()
    s = summary_of(out)
    for key in ("ours", "ortools", "ortools_same_budget"):
        r = s[key]
        assert r["visits_required"] == 8
        assert r["wall_s"] > 0 and math.isfinite(r["travel_km"]) and r["travel_km"] >= 0
    assert s["ours"]["method"] == "decomposed" and s["ortools"]["method"] == "direct"
    assert math.isfinite(s["travel_ratio"]) and s["speed_ratio"] > 0
    assert any(ln.startswith("ratio travel ours/OR-Tools alone") for ln in lines)
    assert any(ln.startswith("ratio time OR-Tools alone/ours") for ln in lines)
    assert "cores" in lines[0]
