"""Running a benchmark script the way a person does, for the smoke tests of ``benchmarks/``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def run_script(script: str, *args: str, timeout: float = 600) -> str:
    """The standard output of ``python benchmarks/<script> <args>``, which must exit 0."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def summary_of(out: str) -> dict[str, Any]:
    """The one ``SUMMARY {json}`` line a benchmark prints, read."""
    found = [ln for ln in out.splitlines() if ln.startswith("SUMMARY ")]
    assert len(found) == 1, out
    value: dict[str, Any] = json.loads(found[0].removeprefix("SUMMARY "))
    return value
