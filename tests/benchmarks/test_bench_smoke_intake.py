"""A tiny run of ``benchmarks/profile_intake.py`` on the session's PostGIS server.

No timing is asserted (speed is compared in full runs, one after the other):
the script must drive ``POST /events`` through the whole app, count the two
statements of the lean path per report, measure both processes' CPU and
print a profile that reaches into the intake threads.
"""

from __future__ import annotations

import math

import pytest

from gridmap.storage.pgserver import PgServer
from tests.benchmarks.smoke import run_script, summary_of
from tests.conftest import fresh_pg_url

pytestmark = pytest.mark.postgis


@pytest.mark.parametrize("spot", [False, True], ids=["spread", "hot-spot"])
def test_profile_intake_measures_the_whole_path(pg_server: PgServer, spot: bool) -> None:
    with fresh_pg_url(pg_server, "prof_") as url:
        args = ["--reports", "24", "--clients", "3", "--top", "60", "--url", url]
        out = run_script("profile_intake.py", *args, *(["--hot-spot"] if spot else []), timeout=300)
    summary = summary_of(out)
    assert summary["reports"] == 24 and summary["clients"] == 3
    # The lean path: a read and a write per report (and a partition check once a month).
    assert 2.0 <= summary["statements_per_report"] < 2.5
    for key in ("cpu_ms_per_report", "postgres_cpu_ms_per_report", "wall_ms_per_report"):
        assert math.isfinite(summary[key]) and summary[key] > 0, (key, summary)
    # The profile merges the intake threads with the event loop's thread.
    assert "report_once" in out and "api/middleware.py" in out, out
