"""Atom and JSON feeds of event changes, parsed (xml.etree, json), paged by cursor, by area.

Grids are the real Helsinki demo grids; every event is synthetic. Both stores.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from api.security import get_optional_principal
from gridmap.common.settings import WebhookSettings
from gridmap.security.access import Principal
from gridmap.storage import Store
from tests.api.events_app import events_app, map_event_errors
from tests.events_world import make_world

ADMIN = Principal("admin", "city_admin")
A = "{http://www.w3.org/2005/Atom}"


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


def _atom_pages(c: TestClient, first: str) -> list[ET.Element]:
    """Every entry, following rel=next, each page parsed and checked as Atom."""
    entries: list[ET.Element] = []
    url: str | None = first
    while url is not None:
        r = c.get(url)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/atom+xml")
        feed = ET.fromstring(r.content)
        assert feed.tag == f"{A}feed"
        for name in ("id", "title", "updated"):
            assert feed.find(f"{A}{name}") is not None
        page = feed.findall(f"{A}entry")
        for e in page:
            for name in ("id", "title", "updated", "summary"):
                assert (e.findtext(f"{A}{name}") or "").strip(), name
            assert e.find(f"{A}link[@rel='alternate']") is not None
        entries += page
        nxt = feed.find(f"{A}link[@rel='next']")
        url = None if nxt is None else _path(nxt.attrib["href"])
    return entries


def _json_pages(c: TestClient, first: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    url: str | None = first
    while url is not None:
        r = c.get(url)
        assert r.status_code == 200, r.text
        doc = r.json()
        assert doc["version"] == "https://jsonfeed.org/version/1.1" and doc["title"]
        for item in doc["items"]:
            assert item["id"] and item["date_published"] and item["url"]
        items += doc["items"]
        url = _path(doc["next_url"]) if "next_url" in doc else None
    return items


def test_feeds_list_every_change_newest_first_by_area(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    map_event_errors(monkeypatch)
    world = make_world(store)
    quiet = WebhookSettings(enabled=False)
    app = events_app(store, principal=ADMIN, media_dir=tmp_path / "media", webhooks=quiet)
    app.dependency_overrides[get_optional_principal] = lambda: app.state.principal
    with TestClient(app) as c:
        ids = [int(c.post("/events", json=world.body(i % 2)).json()["id"]) for i in range(4)]
        for eid in ids[:3]:
            for action in ("accept", "verify"):
                assert c.post(f"/events/{eid}/transitions", json={"action": action}).is_success
        history = store.read("event_transitions")
        assert len(history) == 4 + 6

        entries = _atom_pages(c, "/events/feed.atom?limit=3")
        ids_seen = [e.findtext(f"{A}id") for e in entries]
        assert len(ids_seen) == len(set(ids_seen)) == len(history)
        stamps = [e.findtext(f"{A}updated") or "" for e in entries]
        assert stamps == sorted(stamps, reverse=True)
        terms = {c.attrib["term"] for e in entries for c in e.findall(f"{A}category")}
        assert {"report", "accept", "verify", "status:verified"} <= terms

        items = _json_pages(c, "/events/feed.json?limit=4")
        assert [i["id"] for i in items] == ids_seen
        tids = [i["_gridmap"]["transition_id"] for i in items]
        assert tids == sorted(history["id"].astype(int), reverse=True)
        assert all(
            "description" not in str(i) and "synthetic test report" not in str(i) for i in items
        )

        # A town coordinator of grid 0 sees only that grid's events.
        app.state.principal = Principal("town", "town_coordinator", (world.code(0),))
        mine = {int(e) for e in ids if e in ids[0::2]}
        items = _json_pages(c, "/events/feed.json?limit=2")
        assert {i["_gridmap"]["event_id"] for i in items} == mine
        assert all(i["_gridmap"]["grid_code"] == world.code(0) for i in items)
        atom = _atom_pages(c, "/events/feed.atom")
        assert len(atom) == len(items)

        # Bad input and roles.
        assert c.get("/events/feed.json?limit=0").status_code in (400, 422)
        assert c.get("/events/feed.json?cursor=abc").status_code in (400, 422)
        assert c.get("/events/feed.json?bogus=1").status_code == 400
        app.state.principal = Principal("viewer", "viewer")
        assert c.get("/events/feed.atom").status_code == 403
