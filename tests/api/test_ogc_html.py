"""HTML views of the OGC API for people: content negotiation, links, escaping, a map in chromium.

``f=html`` or a browser's ``Accept: text/html`` gets the page; every other
client keeps JSON/GeoJSON. JSON documents link their HTML alternate and the
pages link their JSON one. Data: real Helsinki buildings and streets,
synthetic (seeded) events whose descriptions carry markup that must be escaped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient  # conftest.py imported it first (see there)
from playwright.sync_api import Browser, Route

from api.main import create_app
from gridmap.storage import Store
from layers.catalog import CATALOG
from tests.browser import launch

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"
XSS = "<img src=x onerror=alert(1)>"  # in every synthetic event description (conftest.py)


class _Tags(HTMLParser):
    """Start tags of a page with their attributes, and its text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(html: str) -> _Tags:
    tags = _Tags()
    tags.feed(html)
    return tags


def _pages(filled: Store) -> list[str]:
    fid = int(filled.read("buildings", limit=1, offset=3)["id"].iloc[0])
    return [
        "/",
        "/collections",
        "/collections/buildings",
        "/collections/buildings/items?limit=5",
        f"/collections/buildings/items/{fid}",
    ]


def _with(path: str, query: str) -> str:
    return path + ("&" if "?" in path else "?") + query


def _varies_on_accept(r: Any) -> bool:
    """``Vary`` names ``Accept`` (compressed answers add ``Accept-Encoding``)."""
    return "Accept" in [v.strip() for v in r.headers.get("vary", "").split(",")]


def test_content_negotiation_and_alternates(client: TestClient, filled: Store) -> None:
    for path in _pages(filled):
        for how in ({"params": {"f": "html"}}, {"headers": {"Accept": BROWSER}}):
            r = client.get(path, **how)  # type: ignore[arg-type]
            assert r.status_code == 200, (path, how, r.text[:200])
            assert r.headers["content-type"] == "text/html; charset=utf-8", (path, how)
            assert _varies_on_accept(r) and r.text.startswith("<!DOCTYPE html>")
        for headers in (
            {},
            {"Accept": "*/*"},
            {"Accept": "application/geo+json, application/json;q=0.9"},
            {"Accept": "application/json, text/html;q=0.5"},
            {"Accept": "text/html;q=0.5, application/json"},
            {"Accept": "text/html, application/json"},  # a tie keeps the default
        ):
            r = client.get(path, headers=headers)
            assert r.status_code == 200 and _varies_on_accept(r)
            assert r.headers["content-type"] in ("application/json", "application/geo+json")
            r.json()
        r = client.get(_with(path, "f=json"), headers={"Accept": BROWSER})
        assert r.headers["content-type"] in ("application/json", "application/geo+json")
        # f is declared: unknown, repeated and wrong values are still 400s
        for bad in ("f=html&nope=1", "f=html&f=html", "f=xml", "f=HTML"):
            assert client.get(_with(path, bad)).status_code == 400, (path, bad)
    _check_alternates(client, filled)


def _check_alternates(client: TestClient, filled: Store) -> None:
    """JSON documents link their HTML view, and the pages their JSON document."""
    for path in _pages(filled):
        doc = client.get(path).json()
        alternates = [link for link in doc["links"] if link["rel"] == "alternate"]
        assert [a["type"] for a in alternates] == ["text/html"], path
        page = client.get(alternates[0]["href"])
        assert page.headers["content-type"].startswith("text/html"), path
        tags = _parse(page.text)
        back = [a for t, a in tags.tags if t == "link" and a.get("rel") == "alternate"]
        assert len(back) == 1 and back[0]["type"] in ("application/json", "application/geo+json")
        again = client.get(str(back[0]["href"]))
        assert again.headers["content-type"] == back[0]["type"], path
        same = again.json()
        assert same.get("id") == doc.get("id") and same.get("title") == doc.get("title")
        if "features" in doc:
            assert [f["id"] for f in same["features"]] == [f["id"] for f in doc["features"]]
        # every link of the page stays on this service
        for tag, attrs in tags.tags:
            for key in ("href", "src"):
                if attrs.get(key):
                    assert str(attrs[key]).startswith("http://testserver/"), (path, tag, attrs)


def test_items_page_table_paging_and_escaping(client: TestClient, filled: Store) -> None:
    r = client.get("/collections/events/items", params={"f": "html", "limit": 7, "offset": 7})
    html = r.text
    events = filled.read("events").sort_values("id")
    tags = _parse(html)
    rows = [a for t, a in tags.tags if t == "tr"]
    assert len(rows) == 1 + 7  # header and one row per feature
    item_links = [
        str(a["href"]) for t, a in tags.tags if t == "a" and "/items/" in str(a.get("href"))
    ]
    assert (
        [int(re.search(r"/items/(\d+)", h).group(1)) for h in item_links]
        == (  # type: ignore[union-attr]
            events["id"].iloc[7:14].tolist()
        )
    )
    paging = {a["rel"]: str(a["href"]) for t, a in tags.tags if t == "a" and a.get("rel")}
    assert "offset=14" in paging["next"] and "offset=0" in paging["prev"]
    assert "f=html" in paging["next"]
    text = "".join(tags.text)
    assert f"共 {len(events)} 个要素" in text and f"{len(events)} features matched" in text
    for fd in CATALOG["events"].fields_for("city_admin"):
        assert fd.title() in text  # bilingual column labels
    # descriptions carry markup: escaped in the table, \u003c-escaped in the map data
    assert XSS not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "onerror=alert(1)&gt;" in html and "\\u003cimg src=x" in html
    assert html.count("<script") == 3  # the map's data, leaflet.js, the map's own code
    assert r.headers["link"].count("rel=self") == 1
    _check_link_header(client)


def test_item_page_shows_only_what_the_role_sees(
    client: TestClient, anonymous: TestClient, filled: Store
) -> None:
    grid = int(filled.read("grids", limit=1)["id"].iloc[0])
    staff = client.get(f"/collections/grids/items/{grid}", params={"f": "html"}).text
    public = anonymous.get(f"/collections/grids/items/{grid}", headers={"Accept": BROWSER}).text
    workers = next(fd for fd in CATALOG["grids"].fields if fd.name == "workers")
    assert workers.title() in staff and "张三" in staff
    assert workers.title() not in public and "张三" not in public and "990100001001001" in public
    assert anonymous.get("/collections/events/items", params={"f": "html"}).status_code == 404
    missing = anonymous.get("/collections/grids/items/999999999", params={"f": "html"})
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


def _check_link_header(client: TestClient) -> None:
    r = client.get("/collections/roads/items", params={"limit": 3, "bbox": "24.9,60.1,25,60.2"})
    links = {}
    for part in r.headers["link"].split(", "):
        href, *params = part.split("; ")
        attrs = dict(p.split("=", 1) for p in params)
        links[attrs["rel"].strip('"')] = (href.strip("<>"), attrs.get("type", "").strip('"'))
    assert links["self"][1] == "application/geo+json" and "bbox=24.9%2C60.1" in links["self"][0]
    assert links["alternate"][1] == "text/html"
    assert client.get(links["next"][0]).json()["numberReturned"] == 3
    queryables = links["http://www.opengis.net/def/rel/ogc/1.0/queryables"][0]
    assert client.get(queryables).json()["$id"] == queryables


# --- the pages in a browser -------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from launch()


@pytest.mark.browser
@pytest.mark.timeout(120)
def test_items_page_draws_its_map_offline(
    new_store: Store, make_settings: Any, serve: Any, browser: Browser
) -> None:
    external: list[str] = []
    errors: list[str] = []
    with serve(create_app(make_settings(), store=new_store)) as base:

        def route(r: Route) -> None:
            if r.request.url.startswith(base + "/"):
                r.continue_()
            else:
                external.append(r.request.url)
                r.abort()

        page = browser.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.route("**/*", route)
        page.goto(f"{base}/collections/buildings/items?limit=40")  # chromium's own Accept
        page.wait_for_function("window.gridmap !== undefined")
        assert page.evaluate("window.gridmap.layer.getLayers().length") == 40
        assert page.evaluate("window.gridmap.map.getZoom()") > 12
        assert page.locator("table.properties tbody tr").count() == 40
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "ogc_items_html.png"))
        page.click("a[rel=next]")
        page.wait_for_url("**offset=40**")
        page.wait_for_function("window.gridmap !== undefined")
        first = page.locator("table.properties tbody tr td a").first
        ids = new_store.read("buildings").sort_values("id")["id"]
        assert first.inner_text() == str(int(ids.iloc[40]))
        first.click()
        page.wait_for_url(f"**/items/{int(ids.iloc[40])}?f=html")
        page.wait_for_function("window.gridmap !== undefined")
        assert page.evaluate("window.gridmap.layer.getLayers().length") == 1
        page.screenshot(path=str(ARTIFACTS / "ogc_item_html.png"))
        page.close()
    assert not external and not errors, (external, errors)
