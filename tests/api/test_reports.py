"""``GET /reports/period``: the scripted month through HTTP, compared with the core."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

from api.main import create_app
from api.routers import reports
from api.security import get_principal
from api.settings import Settings
from gridmap.access import SYSTEM, Principal
from gridmap.assessment.report import period_report
from gridmap.cli import app as cli_app
from gridmap.storage import open_store
from tests.gridmap.assessment.month import END, NOW, START, TOWN_A, TOWN_B, Month, build_month

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Month, str]]:
    url = f"duckdb:///{tmp_path_factory.mktemp('reports') / 'r.duckdb'}"
    store = open_store(url, migrate=True)
    try:
        yield build_month(store), url
    finally:
        store.close()


def app_for(m: Month, principal: Principal) -> FastAPI:
    settings = Settings(database_url=":memory:", cors_origins=[], assets_dir=None)
    app = create_app(settings, store=m.store)
    if not any(getattr(r, "path", None) == "/reports/period" for r in app.routes):
        app.include_router(reports.router)
    app.dependency_overrides[get_principal] = lambda: principal
    return app


def test_json_matches_core(month: tuple[Month, str]) -> None:
    m, _ = month
    core = period_report(m.store, SYSTEM, area=TOWN_A, start=START, end=END, now=NOW)
    with TestClient(app_for(m, SYSTEM)) as c:
        r = c.get(
            "/reports/period", params={"area": TOWN_A, "from": START, "to": END, "format": "json"}
        )
    assert r.status_code == 200, r.text
    got = {f["key"]: f for f in r.json()["figures"]}
    for f in core.figures:
        assert got[f.key]["value"] == pytest.approx(f.value), f.key
        assert got[f.key]["query"]["layer"] == f.query["layer"]
    assert got["events_reported"]["value"] == 6 and got["events_closed"]["value"] == 4


def test_html_and_scoping(month: tuple[Month, str]) -> None:
    m, _ = month
    coord_b = Principal("coord-b", "town_coordinator", (TOWN_B,))
    with TestClient(app_for(m, coord_b)) as c:
        page = c.get("/reports/period", params={"area": TOWN_B, "from": START, "to": END})
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "<img src=x" not in page.text and "https://" not in page.text
        other = c.get("/reports/period", params={"area": TOWN_A, "from": START, "to": END})
        assert other.status_code == 404
        bad = c.get("/reports/period", params={"area": TOWN_B, "from": END, "to": START})
        assert bad.status_code == 400
    with TestClient(app_for(m, Principal("v", "viewer"))) as c:
        denied = c.get("/reports/period", params={"area": TOWN_B, "from": START, "to": END})
        assert denied.status_code == 403


def test_cli_writes_report(month: tuple[Month, str], tmp_path: Path) -> None:
    m, url = month
    out = tmp_path / "report.html"
    m.store.close()
    try:
        res = CliRunner().invoke(
            cli_app,
            [
                "report",
                "--area",
                TOWN_A,
                "--from",
                START,
                "--to",
                END,
                "--out",
                str(out),
                "--database-url",
                url,
            ],
        )
    finally:
        m.store = open_store(url)
    assert res.exit_code == 0, res.output
    html = out.read_text(encoding="utf-8")
    assert "结案率" in html and "Closure rate" in html and "data:image/png;base64," in html
