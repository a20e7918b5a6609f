"""The feed of event changes (事件动态): every recorded transition, newest first, by area.

Read by ``/events/feed.atom`` and ``/events/feed.json``. A page holds the
newest changes below a cursor (a transition id); the next page's cursor is
the smallest id on this page. Only events in the principal's areas are
included; entries carry no personal data (no reporter, description, actor
name or photos).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from gridmap.common.errors import BadInput
from gridmap.security.access import Principal
from gridmap.storage import Cmp, Prefix, Store

__all__ = ["FeedEntry", "FeedPage", "read_feed"]


@dataclass(frozen=True)
class FeedEntry:
    """One change of one event."""

    id: int
    event_id: int
    seq: int | None
    action: str
    from_status: str | None
    to_status: str | None
    at: pd.Timestamp
    category: str | None
    grid_code: str | None
    status: str | None


@dataclass(frozen=True)
class FeedPage:
    """A page of the feed and the cursor of the next (older) page, if any."""

    entries: list[FeedEntry]
    next_cursor: int | None


def _text(value: Any) -> str | None:
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    return str(value)


def read_feed(
    store: Store, principal: Principal, *, limit: int = 50, cursor: int | None = None
) -> FeedPage:
    """The newest changes (below *cursor*) of events in *principal*'s areas.

    Raises
    ------
    BadInput
        A limit outside 1–1000 or a cursor below 1.
    """
    if not 1 <= limit <= 1000:
        raise BadInput("limit must be 1 to 1000", field="limit")
    if cursor is not None and cursor < 1:
        raise BadInput("cursor must be a positive integer", field="cursor")
    where: dict[str, Any] = {}
    events = None
    if not principal.sees_everything:
        events = store.read("events", where={"grid_code": Prefix(tuple(principal.areas))})
        where["event_id"] = [int(i) for i in events["id"]]
    if cursor is not None:
        where["id"] = Cmp("<", int(cursor))
    matched = store.count("event_transitions", where=where)
    offset = max(0, matched - limit)
    rows = store.read("event_transitions", where=where, offset=offset, limit=limit)
    if events is None:
        ids = [int(i) for i in rows["event_id"].dropna().unique()]
        events = store.read("events", ids=ids) if ids else store.read("events", limit=0)
    facts = events.set_index("id") if not events.empty else None
    entries = []
    for _, r in rows.iloc[::-1].iterrows():
        eid = int(r["event_id"])
        ev = facts.loc[eid] if facts is not None and eid in facts.index else None
        entries.append(
            FeedEntry(
                id=int(r["id"]),
                event_id=eid,
                seq=None if pd.isna(r["seq"]) else int(r["seq"]),
                action=str(r["action"]),
                from_status=_text(r["from_status"]),
                to_status=_text(r["to_status"]),
                at=pd.Timestamp(r["at"]),
                category=None if ev is None else _text(ev["category"]),
                grid_code=None if ev is None else _text(ev["grid_code"]),
                status=None if ev is None else _text(ev["status"]),
            )
        )
    next_cursor = entries[-1].id if entries and offset > 0 else None
    return FeedPage(entries, next_cursor)
