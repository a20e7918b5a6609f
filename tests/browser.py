"""Shared Chromium helpers for browser tests: a map page served from memory.

Debian's chromium (never a downloaded browser) is driven by Playwright. Every
request is answered from memory or refused: the page, the local map assets,
``data:``/``blob:`` URLs, plus whatever a subclass's :meth:`MemoryPage.serve`
answers; anything else is recorded in ``external`` and aborted.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Dialog, Page, Route, sync_playwright

from layers.assets import DEFAULT_BASE_URL, asset_file

ORIGIN = "http://gridmap.test"
CHROMIUM = "/usr/bin/chromium"


def launch() -> Iterator[Browser]:
    """Yield a headless Debian chromium (fails, never skips, when it is missing)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


class MemoryPage:
    """``{ORIGIN}/map.html`` with *html*, its local assets, and nothing else reachable."""

    def __init__(self, browser: Browser, html: str, *, wait_ms: int = 800) -> None:
        self.html = html
        self.errors: list[str] = []
        self.external: list[str] = []
        self.assets: list[str] = []
        self.page: Page = browser.new_page(viewport={"width": 1200, "height": 800})
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("dialog", self._dialog)
        self.page.route("**/*", self._route)
        self.page.goto(f"{ORIGIN}/map.html")
        self.page.wait_for_timeout(wait_ms)

    def _dialog(self, dialog: Dialog) -> None:
        self.errors.append(f"dialog: {dialog.message}")
        dialog.dismiss()

    def serve(self, route: Route, url: str) -> bool:
        """Answer more URLs in a subclass; return True when *route* was answered."""
        return False

    def _route(self, route: Route) -> None:
        url = route.request.url
        if url == f"{ORIGIN}/map.html":
            route.fulfill(body=self.html, content_type="text/html; charset=utf-8")
        elif url.startswith(ORIGIN + DEFAULT_BASE_URL):
            self.assets.append(url)
            route.fulfill(path=str(asset_file(url[len(ORIGIN + DEFAULT_BASE_URL) :])))
        elif self.serve(route, url):
            return
        elif url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            self.external.append(url)
            route.abort()

    def js(self, expression: str) -> Any:
        """Evaluate *expression* in the page."""
        return self.page.evaluate(expression)
