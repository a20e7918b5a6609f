"""``gridmap map render``: a file for sharing holds no personal data unless asked (both stores).

The real Helsinki demo grids; the events (with a reporter, a phone and a
description of a dispute) are synthetic.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from gridmap.cli import app
from gridmap.events.intake import parse_report, report_event
from gridmap.security.access import SYSTEM
from gridmap.storage import open_store
from tests.events_world import make_world

REPORTER, PHONE = "王小明", "13912345678"
DESCRIPTION = "邻里纠纷：三楼住户噪音扰民，双方争吵"


def forms(text: str) -> list[str]:
    """How a text can appear in a page: as is, or JSON-escaped (folium writes ASCII)."""
    return [text, json.dumps(text)[1:-1]]


def absent(page: str, text: str) -> bool:
    return not any(f in page for f in forms(text))


@pytest.fixture
def url(store_url: str) -> str:
    """A store with the demo grids and two reported events, closed again for the CLI."""
    store = open_store(store_url, migrate=True)
    try:
        w = make_world(store)
        for i, at in ((2, "2026-11-02T00:00Z"), (5, "2026-11-03T00:00Z")):
            body = w.body(i, "dispute", reporter=REPORTER, contact=PHONE)
            body["description"] = DESCRIPTION
            report_event(store, parse_report(body), principal=SYSTEM, now=pd.Timestamp(at))
        assert store.count("events") == 2
    finally:
        store.close()
    return store_url


def render(url: str, out: Path, *args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(
        app, ["map", "render", "--out", str(out), "--database-url", url, *args]
    )
    page = out.read_text(encoding="utf-8") if out.exists() else ""
    return res.exit_code, res.output, page


def test_default_is_the_public_view(url: str, tmp_path: Path) -> None:
    code, output, page = render(url, tmp_path / "public.html")
    assert code == 0, output
    for secret in (REPORTER, PHONE, DESCRIPTION, "139****5678", "王**"):
        assert absent(page, secret), secret
    assert "gridmap demo" not in page and "网格地图 Grid map" in page
    assert "990100001001003" in page  # the grids are there


def test_a_staff_role_sees_events_masked(url: str, tmp_path: Path) -> None:
    code, output, page = render(
        url,
        tmp_path / "town.html",
        "--role",
        "town_coordinator",
        "--area",
        "990100001",
        "--title",
        "演示街道 事件地图",
    )
    assert code == 0, output
    assert absent(page, REPORTER) and absent(page, PHONE)
    assert not absent(page, "王**") and "139****5678" in page  # masked as the API masks
    assert not absent(page, DESCRIPTION)  # a coordinator may read what was reported
    assert re.search(r"<title>\s*演示街道 事件地图\s*</title>", page)


def test_area_layers_and_basemap(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    grid = "990100001001003"
    code, output, page = render(url, tmp_path / "grid.html", "--area", grid, "--layers", "grids")
    assert code == 0, output
    assert grid in page and "990100001001007" not in page
    assert absent(page, "道路 Roads") and not absent(page, "第003网格 Grid 003")
    assert not absent(page, f"第003网格 Grid 003（{grid}） 网格地图 Grid map")
    refused, output, _ = render(url, tmp_path / "no.html", "--layers", "grids,events")
    assert refused != 0 and "events" in output and "--role" in output
    monkeypatch.setenv("GRIDMAP_TILES_URL", "http://tiles.intra/{z}/{x}/{y}.png")
    monkeypatch.setenv("GRIDMAP_TILES_ATTRIBUTION", "内网底图")
    code, output, page = render(url, tmp_path / "tiles.html", "--basemap-crs", "gcj02")
    assert code == 0, output
    assert "http://tiles.intra/{z}/{x}/{y}.png" in page and not absent(page, "内网底图")
    code, output, page = render(
        url, tmp_path / "other.html", "--tiles-url", "http://t.intra/{z}/{x}/{y}.png"
    )
    assert code == 0, output
    assert "http://t.intra/{z}/{x}/{y}.png" in page
