"""Operations (issue 24): health and readiness, request ids, JSON logs, metrics,
``gridmap serve`` options, zh-CN error texts, exit codes, the PDF font setting."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from api.errors import ZH
from api.main import create_app
from api.settings import Settings
from gridmap.assessment.pdf import CJK_FONT, FontMissing, render_pdf
from gridmap.cli import app as cli_app
from gridmap.security.access import Principal
from gridmap.storage import Store, open_store
from tests.api.events_app import events_app, map_event_errors
from tests.conftest import free_port, wait_for_port
from tests.events_world import make_world

ROOT = Path(__file__).resolve().parents[2]
GRID = "990100001001001"


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[s.name, tuple(sorted(s.labels.items()))] = s.value
    return out


def test_health_ready_and_request_ids(filled: Store, make_app: Callable[..., FastAPI]) -> None:
    with TestClient(make_app(filled)) as c:
        health = c.get("/healthz")
        assert health.status_code == 200 and health.json() == {"status": "ok"}
        ready = c.get("/readyz")
        assert ready.status_code == 200, ready.text
        doc = ready.json()
        assert doc["status"] == "ready" and doc["store"] == filled.dialect
        assert doc["schema_version"] == doc["latest_version"] > 0
        # A client's request id is echoed; without one (or with a bad one) one is made.
        assert health.headers["x-request-id"] != ready.headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", health.headers["x-request-id"])
        given = c.get("/collections", headers={"X-Request-ID": "lb-7f3a.2"})
        assert given.headers["x-request-id"] == "lb-7f3a.2"
        for bad in ("x" * 129, "<script>", "a b"):
            made = c.get("/healthz", headers={"X-Request-ID": bad}).headers["x-request-id"]
            assert made != bad and re.fullmatch(r"[0-9a-f]{32}", made)
        # Error answers carry it too.
        missing = c.get("/collections/nope", headers={"X-Request-ID": "trace-404"})
        assert missing.status_code == 404 and missing.headers["x-request-id"] == "trace-404"


def test_readyz_not_ready_when_migrations_pending_or_store_unusable(tmp_path: Path) -> None:
    # A store whose schema was never created: migrations pending, 503 naming `gridmap init`.
    bare = open_store(f"duckdb:///{tmp_path / 'bare.duckdb'}")
    try:
        with TestClient(create_app(Settings(), store=bare)) as c:
            r = c.get("/readyz")
            assert r.status_code == 503 and r.headers["retry-after"]
            doc = r.json()
            assert doc["status"] == "not_ready" and doc["code"] == "migrations_pending"
            assert "gridmap init" in doc["description"] and "gridmap init" in doc["description_zh"]
            assert doc["schema_version"] == 0 < doc["latest_version"]
            assert c.get("/healthz").status_code == 200  # the process is still up
            bare.migrate()
            assert c.get("/readyz").status_code == 200
    finally:
        bare.close()
    # A store that cannot be reached (closed under the service): 503, not 500.
    gone = open_store(f"duckdb:///{tmp_path / 'gone.duckdb'}", migrate=True)
    with TestClient(create_app(Settings(), store=gone)) as c:
        gone.close()
        r = c.get("/readyz")
        assert r.status_code == 503 and r.json()["status"] == "not_ready", r.text
        assert r.json()["code"] == "store_unavailable"


@pytest.mark.postgis
def test_readyz_and_pool_metrics_on_postgis(pg_url: str) -> None:
    store = open_store(pg_url, migrate=True)
    try:
        with TestClient(create_app(Settings(), store=store)) as c:
            ready = c.get("/readyz").json()
            assert ready["status"] == "ready" and ready["store"] == "postgis"
            got = _samples(c.get("/metrics").text)
            assert got["gridmap_db_pool_max", ()] >= got["gridmap_db_pool_min", ()] >= 1
            assert got["gridmap_db_pool_size", ()] >= 1
            assert ("gridmap_db_requests_waiting", ()) in got
    finally:
        store.close()


def test_metrics_count_by_route_template(filled: Store, make_app: Callable[..., FastAPI]) -> None:
    with TestClient(make_app(filled)) as c:
        for _ in range(3):
            assert c.get("/collections/buildings/items", params={"limit": 1}).status_code == 200
        assert c.get("/collections/roads/items", params={"limit": 1}).status_code == 200
        assert c.get("/collections/nope/items").status_code == 404
        assert c.get("/no/such/path").status_code == 404
        page = c.get("/metrics")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/plain")
    got = _samples(page.text)
    items = (("method", "GET"), ("route", "/collections/{layer}/items"))
    assert got["gridmap_http_requests_total", (*items, ("status", "200"))] == 4
    assert got["gridmap_http_requests_total", (*items, ("status", "404"))] == 1
    unmatched = (("method", "GET"), ("route", "<unmatched>"), ("status", "404"))
    assert got["gridmap_http_requests_total", unmatched] == 1
    assert got["gridmap_http_request_duration_seconds_count", items] == 5
    assert got["gridmap_http_request_duration_seconds_sum", items] > 0
    # No raw paths as labels: the layer names are not in any label value.
    assert "buildings" not in page.text and "/no/such/path" not in page.text


def test_metrics_count_intake(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = make_world(store)
    map_event_errors(monkeypatch)
    app = events_app(store, principal=Principal("admin", "city_admin"), media_dir=tmp_path)
    intake = ("gridmap_intake_total", (("channel", "api"),))
    with TestClient(app) as c:
        before = _samples(c.get("/metrics").text).get(intake, 0)
        body = world.body(0, "city_management")
        first = c.post("/events", json=body, headers={"Idempotency-Key": "ops-1"})
        assert first.status_code == 201, first.text
        assert c.post("/events", json={"category": "aliens"}).status_code == 400
        second = c.post("/events", json=world.body(1, "dispute"))
        assert second.status_code == 201, second.text
        got = _samples(c.get("/metrics").text)
    assert got[intake] - before == 2  # stored reports only, not the refused one


def test_error_bodies_carry_zh_text(filled: Store, make_app: Callable[..., FastAPI]) -> None:
    with TestClient(make_app(filled, max_body_bytes=1000)) as c:
        cases = [
            (c.get("/collections/nope"), 404, "unknown_layer"),
            (c.get("/collections/buildings/items", params={"limit": "x"}), 400, "bad_input"),
            (c.get("/no/such/path"), 404, "not_found"),
            (c.post("/locate", content=b"{" + b" " * 2000 + b"}"), 413, "payload_too_large"),
        ]
        for r, status, code in cases:
            body = r.json()
            assert r.status_code == status, r.text
            # The fields clients rely on stay; the zh-CN text is beside the English.
            assert body["code"] == code and body["description"]
            assert body["description_zh"] == ZH[code], body
            assert re.search(r"[\u4e00-\u9fff]", body["description_zh"])


def test_missing_extra_answers_501_naming_it(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = make_world(store)
    app = events_app(store, principal=Principal("admin", "city_admin"), media_dir=tmp_path)
    period = {"area": world.code(0)[:9], "from": "2026-11-01", "to": "2026-12-01"}
    # As after `pip install gridmap` without [pdf]: fpdf cannot be imported.
    monkeypatch.setitem(sys.modules, "fpdf", None)
    with TestClient(app) as c:
        r = c.get("/reports/period", params={**period, "f": "pdf"})
        html = c.get("/reports/period", params={**period, "f": "html"})
    assert r.status_code == 501, r.text
    body = r.json()
    assert body["code"] == "missing_extra"
    assert "pip install 'gridmap[pdf]'" in body["description"]
    assert body["description_zh"] == ZH["missing_extra"]
    assert html.status_code == 200  # the rest of the feature works without the extra


def test_pdf_font_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import pandas as pd

    from gridmap.assessment._figures import PeriodReport
    from gridmap.assessment.rules import default_rules

    report = PeriodReport(
        "990100001",
        "第一街道",
        pd.Timestamp("2026-11-01", tz="UTC"),
        pd.Timestamp("2026-12-01", tz="UTC"),
        [],
        [],
        {},
        default_rules(),
    )
    monkeypatch.setenv("GRIDMAP_PDF_FONT", str(tmp_path / "nowhere.ttc"))
    with pytest.raises(FontMissing, match=r"nowhere\.ttc.*GRIDMAP_PDF_FONT"):
        render_pdf(report)
    # A copy of the CJK font elsewhere, named by the variable, is the one used.
    other = tmp_path / "fonts" / "cjk.ttc"
    other.parent.mkdir()
    other.write_bytes(CJK_FONT.read_bytes())
    monkeypatch.setenv("GRIDMAP_PDF_FONT", str(other))
    assert render_pdf(report)[:5] == b"%PDF-"
    monkeypatch.delenv("GRIDMAP_PDF_FONT")
    monkeypatch.setattr("gridmap.assessment.pdf.CJK_FONT", tmp_path / "no-wqy.ttc")
    with pytest.raises(FontMissing, match=r"fonts-wqy-microhei.*GRIDMAP_PDF_FONT"):
        render_pdf(report)


def test_cli_domain_errors_exit_1_usage_errors_2(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path / 'cli.duckdb'}"
    runner = CliRunner()
    assert runner.invoke(cli_app, ["init", "--database-url", url]).exit_code == 0
    domain = runner.invoke(cli_app, ["token", "nobody", "--database-url", url])
    assert domain.exit_code == 1 and "no active user" in domain.output, domain.output
    unknown = runner.invoke(
        cli_app,
        ["export", "layer", "nope", "--out", str(tmp_path / "x.gpkg"), "--database-url", url],
    )
    assert unknown.exit_code == 1 and "unknown layer" in unknown.output, unknown.output
    usage = runner.invoke(cli_app, ["token", "--no-such-option"])
    assert usage.exit_code == 2
    bad_level = runner.invoke(cli_app, ["serve", "--log-level", "loud"])
    assert bad_level.exit_code == 2 and "--log-level" in bad_level.output


def test_serve_json_logs_root_path_and_forwarded_headers(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path / 'served.duckdb'}"
    open_store(url, migrate=True).close()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDMAP_")}
    env.update(GRIDMAP_LOG_FORMAT="json", GRIDMAP_DATABASE_URL=url)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gridmap",
            "serve",
            "--port",
            str(port),
            "--root-path",
            "/gridmap",
            "--forwarded-allow-ips",
            "*",
            "--log-level",
            "info",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_port("127.0.0.1", port, timeout=60)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            assert http.get("/readyz").status_code == 200
            landing = http.get(
                "/",
                params={"f": "json"},
                headers={
                    "X-Request-ID": "from-the-proxy-1",
                    "X-Forwarded-Proto": "https",
                    "X-Forwarded-Host": "grid.example.cn",
                },
            )
            assert landing.status_code == 200, landing.text
            hrefs = [link["href"] for link in landing.json()["links"]]
            # Links name the proxy's scheme and the mount prefix.
            assert all(h.startswith("https://") and "/gridmap/" in h for h in hrefs), hrefs
            assert http.get("/collections/nope").status_code == 404
        time.sleep(0.5)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=60)
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert lines and len(lines) == len([x for x in err.splitlines() if x.strip()]), err[-2000:]
    access = [d for d in lines if d["logger"] == "gridmap.access"]
    landing_line = next(d for d in access if d["request_id"] == "from-the-proxy-1")
    assert landing_line["route"] == "/" and landing_line["status"] == 200
    assert landing_line["method"] == "GET" and landing_line["duration_ms"] >= 0
    missing = next(d for d in access if d["path"].endswith("/collections/nope"))
    assert missing["status"] == 404 and missing["route"] == "/collections/{layer}"
    assert re.fullmatch(r"[0-9a-f]{32}", missing["request_id"])
    # uvicorn's own lines (start-up) are JSON too.
    assert any(d["logger"].startswith("uvicorn") for d in lines), lines


def test_readme_configuration_table_names_every_setting() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("## Configuration") : readme.index("## Deploy")]
    # Every variable of the one settings tree (gridmap.common.settings), and every
    # GRIDMAP_* name the code mentions.
    names: set[str] = set(Settings.all_variables())
    for path in [
        *ROOT.glob("gridmap/**/*.py"),
        *ROOT.glob("api/**/*.py"),
        *ROOT.glob("layers/**/*.py"),
    ]:
        names.update(re.findall(r"GRIDMAP_[A-Z0-9_]*[A-Z0-9]\b", path.read_text(encoding="utf-8")))
    assert len(names) > 30
    missing = sorted(n for n in names if f"`{n}`" not in table)
    assert missing == [], missing


def test_cli_without_the_postgis_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # As after `pip install gridmap` without [postgis]: psycopg and friends are absent.
    monkeypatch.delitem(sys.modules, "gridmap.storage.postgis", raising=False)
    for name in ("psycopg", "psycopg_pool", "pgpq"):
        monkeypatch.setitem(sys.modules, name, None)
    res = CliRunner().invoke(
        cli_app, ["init", "--database-url", "postgresql://gridmap@127.0.0.1:1/gridmap"]
    )
    assert res.exit_code == 1, res.output
    assert "pip install 'gridmap[postgis]'" in res.output and "PostGIS" in res.output
    assert "Traceback" not in res.output


def test_service_is_warm_before_its_first_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service that opens its own store builds the locate index at start (issue 22)."""
    import gc

    from gridmap.common.settings import StoreSettings
    from gridmap.geo.locate import LocatorCache

    path = tmp_path / "warm.duckdb"
    seeded = open_store(f"duckdb:///{path}", migrate=True)
    make_world(seeded)
    seeded.close()
    builds: list[int] = []
    real = LocatorCache.build

    def counted(self: LocatorCache, store: Store) -> object:
        builds.append(1)
        return real(self, store)

    monkeypatch.setattr(LocatorCache, "build", counted)
    app = create_app(Settings(store=StoreSettings(database_url=f"duckdb:///{path}")))
    try:
        with TestClient(app) as c:
            # No request yet: the index is built, and the long-lived heap is frozen.
            assert builds == [1]
            assert gc.get_freeze_count() > 0
            r = c.get("/locate", params={"lon": 0, "lat": 0, "crs": "wgs84"})
            assert r.status_code == 200, r.text
            assert builds == [1]  # the first request used it
    finally:
        gc.unfreeze()
