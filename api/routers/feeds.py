"""Feeds of event changes (事件动态): ``/events/feed.atom`` (Atom 1.0) and ``/events/feed.json``.

Both list the recorded workflow changes of events in the caller's areas,
newest first, ``limit`` per page (default 50, at most 1000); the ``next``
link (Atom) or ``next_url`` (JSON Feed 1.1) carries a ``cursor`` to the
older page. Staff roles only; no personal data is included. Built by
:func:`gridmap.events.feed.read_feed`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from api.deps import StoreDep
from api.params import query_guard
from api.security import require_roles
from gridmap.common.timeparse import iso_utc
from gridmap.events.feed import FeedEntry, FeedPage, read_feed
from gridmap.events.states import STATES
from gridmap.events.workflow import ACTIONS
from gridmap.security.access import Principal

__all__ = ["router"]

router = APIRouter(tags=["Events 事件"])

ATOM = "application/atom+xml"
JSON_FEED = "application/feed+json"
_NS = "http://www.w3.org/2005/Atom"
_GUARD = [Depends(query_guard(["limit", "cursor"]))]

Reader = Annotated[
    Principal,
    Depends(require_roles("city_admin", "town_coordinator", "community_staff", "grid_worker")),
]
Limit = Annotated[int, Query(ge=1, le=1000, description="Entries per page (newest first).")]
Cursor = Annotated[
    int | None, Query(ge=1, description="From the `next` link: entries older than this.")
]


def _iso(ts: Any) -> str:
    return iso_utc(ts) or ""


def _title(e: FeedEntry) -> str:
    action = ACTIONS.get(e.action)
    name = f"{action.name_zh} {action.name_en}" if action else e.action
    to = STATES.get(e.to_status or "", (e.to_status or "", e.to_status or ""))
    return f"事件 Event {e.event_id}: {name} → {to[0]} {to[1]}".strip()


def _summary(e: FeedEntry) -> str:
    parts = [
        f"event {e.event_id}",
        f"{e.from_status or '-'} → {e.to_status or '-'}",
        f"category {e.category or '-'}",
        f"grid {e.grid_code or '-'}",
    ]
    return "; ".join(parts)


def _urls(request: Request, page: FeedPage, limit: int) -> tuple[str, str | None]:
    self_url = str(request.url)
    if page.next_cursor is None:
        return self_url, None
    return self_url, str(request.url.include_query_params(cursor=page.next_cursor, limit=limit))


def _tag(request: Request) -> str:
    host = request.url.hostname or "gridmap"
    return f"tag:{host},2026:gridmap"


@router.get(
    "/events/feed.atom",
    summary="Atom feed of event changes (事件动态 Atom)",
    dependencies=_GUARD,
    response_class=Response,
    responses={200: {"content": {ATOM: {}}, "description": "An Atom 1.0 feed."}},
)
def atom_feed(
    request: Request, store: StoreDep, principal: Reader, limit: Limit = 50, cursor: Cursor = None
) -> Response:
    """Event changes in your areas as Atom 1.0, newest first (``rel="next"``: older)."""
    page = read_feed(store, principal, limit=limit, cursor=cursor)
    self_url, next_url = _urls(request, page, limit)
    base = str(request.base_url).rstrip("/")
    ET.register_namespace("", _NS)
    feed = ET.Element(f"{{{_NS}}}feed")
    ET.SubElement(feed, f"{{{_NS}}}id").text = f"{_tag(request)}:events:feed"
    ET.SubElement(feed, f"{{{_NS}}}title").text = "gridmap 事件动态 Event changes"
    updated = _iso(page.entries[0].at) if page.entries else "1970-01-01T00:00:00Z"
    ET.SubElement(feed, f"{{{_NS}}}updated").text = updated
    author = ET.SubElement(feed, f"{{{_NS}}}author")
    ET.SubElement(author, f"{{{_NS}}}name").text = "gridmap"
    ET.SubElement(feed, f"{{{_NS}}}link", rel="self", href=self_url, type=ATOM)
    if next_url is not None:
        ET.SubElement(feed, f"{{{_NS}}}link", rel="next", href=next_url, type=ATOM)
    for e in page.entries:
        entry = ET.SubElement(feed, f"{{{_NS}}}entry")
        ET.SubElement(entry, f"{{{_NS}}}id").text = f"{_tag(request)}:transition:{e.id}"
        ET.SubElement(entry, f"{{{_NS}}}title").text = _title(e)
        ET.SubElement(entry, f"{{{_NS}}}updated").text = _iso(e.at)
        ET.SubElement(entry, f"{{{_NS}}}link", rel="alternate", href=f"{base}/events/{e.event_id}")
        ET.SubElement(entry, f"{{{_NS}}}category", term=e.action)
        if e.to_status:
            ET.SubElement(entry, f"{{{_NS}}}category", term=f"status:{e.to_status}")
        ET.SubElement(entry, f"{{{_NS}}}summary", type="text").text = _summary(e)
    body = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return Response(body, media_type=f"{ATOM}; charset=utf-8")


@router.get(
    "/events/feed.json",
    summary="JSON Feed of event changes (事件动态 JSON Feed)",
    dependencies=_GUARD,
    response_class=JSONResponse,
    responses={200: {"content": {JSON_FEED: {}}, "description": "A JSON Feed 1.1."}},
)
def json_feed(
    request: Request, store: StoreDep, principal: Reader, limit: Limit = 50, cursor: Cursor = None
) -> JSONResponse:
    """Event changes in your areas as JSON Feed 1.1, newest first (``next_url``: older)."""
    page = read_feed(store, principal, limit=limit, cursor=cursor)
    self_url, next_url = _urls(request, page, limit)
    base = str(request.base_url).rstrip("/")
    doc: dict[str, Any] = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "gridmap 事件动态 Event changes",
        "home_page_url": f"{base}/events",
        "feed_url": self_url,
        "items": [
            {
                "id": f"{_tag(request)}:transition:{e.id}",
                "url": f"{base}/events/{e.event_id}",
                "title": _title(e),
                "content_text": _summary(e),
                "date_published": _iso(e.at),
                "tags": [e.action, *([f"status:{e.to_status}"] if e.to_status else [])],
                "_gridmap": {
                    "transition_id": e.id,
                    "event_id": e.event_id,
                    "seq": e.seq,
                    "action": e.action,
                    "from_status": e.from_status,
                    "to_status": e.to_status,
                    "category": e.category,
                    "grid_code": e.grid_code,
                    "status": e.status,
                },
            }
            for e in page.entries
        ],
    }
    if next_url is not None:
        doc["next_url"] = next_url
    return JSONResponse(doc, media_type=JSON_FEED)
