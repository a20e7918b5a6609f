"""``gridmap kpis`` gives the same figures as the core (embedded store, synthetic events)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from gridmap.cli import app
from gridmap.events.intake import parse_report, report_event
from gridmap.events.kpis import kpi_records, kpis
from gridmap.events.workflow import TransitionRequest, transition
from gridmap.security.access import SYSTEM
from gridmap.storage import open_store
from tests.events_world import make_world


def test_cli_kpis_match_core(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path / 'g.duckdb'}"
    store = open_store(url, migrate=True)
    world = make_world(store)
    t0 = pd.Timestamp("2026-11-02T00:00:00Z")
    ids = []
    for i, cat in enumerate(["dispute", "safety_hazard", "city_management", "dispute"]):
        row = report_event(store, parse_report(world.body(i, cat)), principal=SYSTEM, now=t0)
        ids.append(int(row["id"]))
    transition(store, ids[0], TransitionRequest("self_handle"), principal=SYSTEM, now=t0)
    transition(store, ids[1], TransitionRequest("reject"), principal=SYSTEM, now=t0)
    expected = kpi_records(kpis(store.read("events"), by="grid"))
    store.close()
    result = CliRunner().invoke(
        app, ["kpis", "--by", "grid", "--format", "json", "--database-url", url]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == expected
    assert [r["reported"] for r in expected] == [1, 1, 1, 1]
    bad = CliRunner().invoke(app, ["kpis", "--by", "planet", "--database-url", url])
    assert bad.exit_code == 1 and "unknown grouping" in bad.output
    table = CliRunner().invoke(app, ["kpis", "--by", "town", "--database-url", url])
    assert table.exit_code == 0 and "closure_rate" in table.stdout
