"""``GET /reports/period``: the scripted month through HTTP, compared with the core."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import pytest
from fastapi import FastAPI
from pypdf import PdfReader
from typer.testing import CliRunner

from api.main import create_app
from api.routers import reports
from api.security import get_principal
from api.settings import Settings
from gridmap.assessment import pdf as pdf_module
from gridmap.assessment.report import ReportOptions, period_report
from gridmap.cli import app as cli_app
from gridmap.common.settings import MapSettings, StoreSettings
from gridmap.security.access import SYSTEM, Principal
from gridmap.storage import open_store
from tests.gridmap.assessment.month import END, NOW, START, TOWN_A, TOWN_B, Month

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient


pytest_plugins = ["tests.gridmap.assessment.shared"]


@pytest.fixture
def month(month_duckdb: tuple[Month, str]) -> tuple[Month, str]:
    """The scripted month in the embedded store (shared with the core tests)."""
    return month_duckdb


def app_for(m: Month, principal: Principal) -> FastAPI:
    settings = Settings(
        store=StoreSettings(database_url=":memory:"),
        cors_origins=[],
        maps=MapSettings(assets_dir=None),
    )
    app = create_app(settings, store=m.store)
    if not any(getattr(r, "path", None) == "/reports/period" for r in app.routes):
        app.include_router(reports.router)
    app.dependency_overrides[get_principal] = lambda: principal
    return app


def test_json_matches_core(month: tuple[Month, str]) -> None:
    m, _ = month
    core = period_report(
        m.store,
        SYSTEM,
        area=TOWN_A,
        start=START,
        end=END,
        now=NOW,
        options=ReportOptions(charts=False),
    )
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


def test_pdf_without_the_font(month: tuple[Month, str], monkeypatch: pytest.MonkeyPatch) -> None:
    m, _ = month
    monkeypatch.setattr(pdf_module, "CJK_FONT", Path("/usr/share/fonts/none/wqy-microhei.ttc"))
    grid = m.code(13)  # one grid of town B: a small report
    with TestClient(app_for(m, Principal("coord-b", "town_coordinator", (TOWN_B,)))) as c:
        r = c.get("/reports/period", params={"area": grid, "from": START, "to": END, "f": "pdf"})
    assert r.status_code == 503
    assert "wqy-microhei.ttc" in r.json()["description"]
    assert "fonts-wqy-microhei" in r.json()["description"]


def test_viewer_gets_small_counts_hidden(month: tuple[Month, str]) -> None:
    m, _ = month
    params = {"area": TOWN_A, "from": START, "to": END}
    for who in (Principal("hotline", "external_system"), Principal("v", "viewer")):
        with TestClient(app_for(m, who)) as c:
            r = c.get("/reports/period", params={**params, "f": "json"})
            assert r.status_code == 200, r.text
            doc = r.json()
            got = {f["key"]: f for f in doc["figures"]}
            assert doc["small_counts_hidden"] is True and doc["min_count"] == 3
            assert got["events_reported"]["value"] == 6 and got["events_reported"]["hidden"] is None
            for key in ("opinions", "help_requests", "problems_solved"):  # 1 each
                assert (got[key]["value"], got[key]["hidden"]) == (None, "<3"), key
            # 4 closed of 6 reported: the 2 open events would follow by subtraction.
            assert (got["events_closed"]["value"], got["events_closed"]["hidden"]) == (None, "*")
            assert got["closure_rate"]["value"] is None and got["closure_rate"]["hidden"] == "*"
            assert got["doorknock_visited"]["value"] == 3
            assert "worker" not in doc["rankings"] and '"evidence"' not in r.text
            assert "tracks" not in got["patrol_coverage"]["query"]
            both = c.get("/reports/period", params={**params, "f": "pdf", "format": "json"})
            assert both.status_code == 400 and "format" in both.json()["description"]
        # The PDF of the viewer's report keeps the same cells hidden.
        pdf = c.get("/reports/period", params={**params, "f": "pdf"})
        assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
        text = "".join(
            "".join(p.extract_text().split()) for p in PdfReader(io.BytesIO(pdf.content)).pages
        )
        assert "<3" in text and "66.7%" not in text and "Closurerate" in text


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
                "--pdf",
                str(tmp_path / "report.pdf"),
                "--database-url",
                url,
            ],
        )
    finally:
        m.store = open_store(url)
    assert res.exit_code == 0, res.output
    html = out.read_text(encoding="utf-8")
    assert "结案率" in html and "Closure rate" in html and "data:image/png;base64," in html
    pdf = PdfReader(tmp_path / "report.pdf")
    text = "".join("".join(p.extract_text().split()) for p in pdf.pages)
    assert "结案率" in text and "66.7%" in text and sum(len(p.images) for p in pdf.pages) >= 2
    missing = CliRunner().invoke(
        cli_app, ["report", "--area", TOWN_A, "--from", START, "--to", END, "--database-url", url]
    )
    assert missing.exit_code == 1 and "--pdf" in missing.output
