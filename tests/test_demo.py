"""The demo, end to end: the CLI job, its map file, its API, in a real Chromium."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner

from gridmap.cli import app
from gridmap.demo.job import run_demo
from gridmap.storage import Store, open_store
from tests.api.webworld import CHROMIUM_ARGS
from tests.conftest import free_port, wait_for_port

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.I)


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("demo")
    url = f"duckdb:///{d / 'gridmap.duckdb'}"
    result = CliRunner().invoke(
        app,
        [
            "demo",
            "--no-serve",
            "--out",
            str(d / "gridmap-demo"),
            "--events",
            "300",
            "--database-url",
            url,
        ],
    )
    assert result.exit_code == 0, result.output
    assert "synthetic" in result.output
    return d


def test_demo_stores_everything(demo_dir: Path) -> None:
    store = open_store(f"duckdb:///{demo_dir / 'gridmap.duckdb'}")
    try:
        assert store.count("buildings") > 400
        assert store.count("roads") > 1000
        assert store.count("events") == 300
        assert store.count("grids") >= 3
        levels = sorted(store.read("admin_units")["level"])
        assert levels == ["city", "community", "town"]
        grids = store.read("grids")
        assert grids["code"].str.fullmatch(r"\d{15}").all()
        b = store.read("buildings")
        assert b["grid_code"].notna().mean() > 0.95
        ev = store.read("events")
        assert ev["synthetic"].all()
        assert ev["grid_code"].notna().mean() > 0.95
    finally:
        store.close()


def test_demo_twice_adds_nothing(demo_dir: Path) -> None:
    url = f"duckdb:///{demo_dir / 'gridmap.duckdb'}"
    store = open_store(url)
    before = {layer: store.count(layer) for layer in ("buildings", "roads", "events", "grids")}
    store.close()
    result = CliRunner().invoke(
        app,
        [
            "demo",
            "--no-serve",
            "--out",
            str(demo_dir / "gridmap-demo"),
            "--events",
            "300",
            "--database-url",
            url,
        ],
    )
    assert result.exit_code == 0, result.output
    store = open_store(url)
    after = {layer: store.count(layer) for layer in before}
    store.close()
    assert after == before


def test_demo_map_file_is_offline(demo_dir: Path) -> None:
    html = (demo_dir / "gridmap-demo" / "map.html").read_text(encoding="utf-8")
    assert not EXTERNAL.findall(html)
    for ref in re.findall(r"""(?:src|href)=["'](assets/[^"']+)["']""", html):
        assert (demo_dir / "gridmap-demo" / ref).exists(), ref


def test_demo_job_on_both_stores(store: Store) -> None:
    summary = run_demo(store, events=100)
    assert summary.counts["events"] == 100
    assert summary.counts["buildings"] > 400
    assert summary.counts["grids"] >= 3


@pytest.fixture(scope="module")
def served(demo_dir: Path) -> Iterator[str]:
    from api.main import create_app
    from api.settings import Settings
    from gridmap.common.settings import StoreSettings

    url = f"duckdb:///{demo_dir / 'gridmap.duckdb'}"
    store = open_store(url)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(Settings(store=StoreSettings(database_url=url)), store=store),
            host="127.0.0.1",
            port=port,
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for_port("127.0.0.1", port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        store.close()


def test_demo_api_answers(served: str) -> None:
    with httpx.Client(base_url=served, timeout=30) as client:
        assert client.get("/").status_code == 200
        cols = client.get("/collections").json()
        ids = {c["id"] for c in cols["collections"]}
        assert {"buildings", "grids", "roads", "admin_units"} <= ids
        assert "events" not in ids  # anonymous callers are viewers: no events
        assert client.get("/collections/events/items").status_code in (401, 403, 404)
        page = client.get("/collections/buildings/items", params={"limit": 50}).json()
        assert page["numberReturned"] == 50 and page["numberMatched"] > 400
        assert any(link["rel"] == "next" for link in page["links"])
        assert client.get("/docs").status_code == 200


def _chromium_visit(
    url: str, allowed: tuple[str, ...], shot: str, *, selector: str | None = None
) -> tuple[list[str], list[str], int]:
    """Open *url* in Debian chromium; return (external requests, console errors, drawn count)."""
    from playwright.sync_api import sync_playwright

    external: list[str] = []
    errors: list[str] = []
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 800})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))

        def guard(route, request):  # type: ignore[no-untyped-def]
            if request.url.startswith(("data:", "blob:", *allowed)):
                route.continue_()
            else:
                external.append(request.url)
                route.abort()

        page.route("**/*", guard)
        page.goto(url, wait_until="load")
        if selector is not None:
            page.wait_for_selector(selector)
        page.wait_for_timeout(800)
        drawn = int(
            page.evaluate(
                "document.querySelectorAll('.leaflet-overlay-pane path, .leaflet-marker-pane *,"
                " .leaflet-overlay-pane canvas, .swagger-ui .opblock').length"
            )
        )
        page.screenshot(path=str(ARTIFACTS / shot))
        browser.close()
    return external, errors, drawn


@pytest.mark.browser
def test_docs_page_in_chromium_is_offline(served: str) -> None:
    # Swagger UI fetches /api and renders it after load: wait for the operations
    # (the document grew with per-collection item paths; a loaded machine takes seconds).
    external, errors, drawn = _chromium_visit(
        f"{served}/docs", (served,), "docs.png", selector=".swagger-ui .opblock"
    )
    assert external == []
    assert errors == []
    assert drawn > 5  # Swagger UI rendered the operations


@pytest.mark.browser
@pytest.mark.parametrize("page_kind", ["served", "file"])
def test_demo_map_in_chromium(served: str, demo_dir: Path, page_kind: str) -> None:
    url = (
        f"{served}/maps/overview"
        if page_kind == "served"
        else ((demo_dir / "gridmap-demo" / "map.html").resolve().as_uri())
    )
    external, errors, drawn = _chromium_visit(
        url, ("file://", served), f"demo-map-{page_kind}.png", selector=".leaflet-container"
    )
    assert external == []
    assert errors == []
    assert drawn > 100


def test_demo_command_serves_what_it_printed(tmp_path: Path) -> None:
    """`gridmap demo` as a user runs it: default store in the working folder, then serving.

    The printed password signs in at /login and /auth/token on the server it starts.
    """
    import os
    import signal
    import subprocess
    import sys

    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "GRIDMAP_DATABASE_URL"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gridmap", "demo", "--port", str(port), "--events", "50"],
        cwd=tmp_path,
        env={**env, "COLUMNS": "200"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        out = []
        for line in proc.stdout:
            out.append(line)
            if "Ctrl-C" in line:
                break
        text = "".join(out)
        password = re.search(r"password 密码:\s+(\S+)", text)
        assert password, text[-2000:]
        wait_for_port("127.0.0.1", port, timeout=60)
        base = f"http://127.0.0.1:{port}"
        r = httpx.post(
            f"{base}/auth/token",
            data={"username": "demo_worker", "password": password.group(1)},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        r = httpx.post(
            f"{base}/login",
            data={"username": "demo_worker", "password": password.group(1)},
            headers={"Sec-Fetch-Site": "same-origin"},
            timeout=30,
        )
        assert r.status_code == 303 and r.headers["location"] == "/app/"
        assert (tmp_path / "gridmap.duckdb").exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    # SIGTERM closed the store: no write-ahead log left behind.
    assert not (tmp_path / "gridmap.duckdb.wal").exists()
