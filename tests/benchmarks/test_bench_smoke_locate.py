"""Tiny runs of the /locate and tipg benchmark scripts: they start, measure and print numbers.

No timing is asserted (speed goals are met in the full benchmark runs); each
test checks that the printed table has a finite measurement in every cell it
should and that every request was answered.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from tests.benchmarks.smoke import run_script, summary_of

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks"


def _run(script: str, *args: str) -> tuple[str, dict[str, Any]]:
    out = run_script(script, *args, timeout=300)
    return out, summary_of(out)


def _numbers(line: str) -> list[float]:
    return [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", line)]


def test_bench_locate_prints_throughput_latency_and_post_time() -> None:
    out, summary = _run(
        "bench_locate.py",
        "--seconds",
        "0.5",
        "--concurrency",
        "2",
        "--only",
        "duckdb",
        "--post-points",
        "300",
        "--post-repeat",
        "1",
        "--in-process",
        "200",
    )
    rows = [ln for ln in out.splitlines() if ln.startswith("gridmap /locate")]
    assert len(rows) == 1, out
    # req/s, p50, p99, CPU us/req, capacity, POST s: six finite numbers after the label.
    values = _numbers(rows[0].split("  ", 1)[1])
    assert len(values) == 6 and all(math.isfinite(v) for v in values), rows[0]
    r = summary["duckdb"]
    assert r["requests"] > 0 and r["rps"] > 0 and r["p99_ms"] >= r["p50_ms"] > 0
    assert r["statuses"] == {"200": r["requests"]}
    assert r["server_cpu_ms"] > 0
    assert summary["duckdb"]["post_s"] > 0
    inproc = summary["in_process"]
    assert inproc["locate_us"] > 0 and inproc["floor_us"] > 0
    assert "in-process CPU per GET" in out
    assert "POST 300 points (duckdb)" in out


def test_bench_tipg_prints_both_servers_side_by_side() -> None:
    out, summary = _run(
        "bench_tipg.py", "--buildings", "600", "--seconds", "0.5", "--concurrency", "2"
    )
    assert "ratio gridmap/tipg items?limit=100" in out
    assert "ratio gridmap/tipg z14 building tiles" in out
    for name in ("gridmap", "tipg"):
        for kind in ("items", "tiles"):
            r = summary[name][kind]
            assert r["requests"] > 0 and r["rps"] > 0 and r["p99_ms"] >= r["p50_ms"] > 0
            # Empty tiles are 204 on gridmap; nothing else but 200/204 is acceptable.
            assert set(r["statuses"]) <= {"200", "204"}, r["statuses"]
        assert summary[name]["items"]["bytes"] > 1000
