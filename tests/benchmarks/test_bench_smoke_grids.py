"""Smoke runs of the grid benchmarks at a tiny size: every method reports numbers.

The benchmarks' speed claims are measured by running the scripts (see
``benchmarks/bench_division.py`` and ``benchmarks/bench_assign.py``); here they
only have to run end to end on the real extract and print a complete table.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.benchmarks.smoke import run_script

ROOT = Path(__file__).resolve().parents[2]
NUMBER = r"-?\d+(?:\.\d+)?%?x?"


def _row(out: str, method: str, columns: int) -> list[str]:
    line = next((ln for ln in out.splitlines() if ln.startswith(method)), None)
    assert line is not None, f"no row for {method!r} in:\n{out}"
    values = line[len(method) :].split()
    assert len(values) == columns, line
    assert all(re.fullmatch(NUMBER, v) for v in values), line
    return values


def test_bench_division_tiny() -> None:
    out = run_script(
        "bench_division.py",
        "--buildings", "300",
        "--area", "0.04",
        "--maxp-construction", "1",
        "--maxp-sa", "1",
    )  # fmt: skip
    assert "synthetic town on the real Helsinki streets" in out
    rows = {
        m: _row(out, m, 8)
        for m in ("gridmap divide_balanced", "spopt MaxPHeuristic", "spopt Skater")
    }
    ours = rows["gridmap divide_balanced"]
    assert int(ours[0]) >= 1 and ours[1].endswith("%")
    assert "gridmap topology check: gaps 0, overlaps 0" in out
    assert re.search(r"runtime ratio peer/gridmap \d+\.\d+x", out)


def test_bench_assign_tiny() -> None:
    out = run_script("bench_assign.py", "--points", "20000", "--grids", "50", "--repeat", "1")
    for method in (
        "gridmap assign_points",
        "geopandas.sjoin within",
        "shapely STRtree.query within",
        "DuckDB spatial ST_Within (1 thread)",
    ):
        _row(out, method, 4)
    assert "answers identical for all methods: yes" in out
    assert re.search(r"ratio geopandas.sjoin / gridmap: \d+\.\d+x", out)
    assert re.search(r"ratio best DuckDB / gridmap: \d+\.\d+x", out)
