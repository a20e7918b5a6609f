"""Webhooks: tell other systems about event changes, signed, retried, never lost.

Three tables (migration 027): ``webhook_subscriptions`` (URL, secret, event
types, the subscriber's areas), ``webhook_outbox`` and ``webhook_deliveries``.

* **Outbox.** :func:`enqueue` is called by the intake and the workflow inside
  the transaction that stores an event change, so a change and its
  announcement are committed together or not at all. A change no active
  subscription wants (by type and area) writes no outbox row: a subscription
  hears only of changes made after it (:func:`forget_subscriptions`,
  :func:`outbox_rows`). Event types:

  ==============  =========  ======================================================
  ``reported``    上报        a report was stored
  ``dispatched``  派遣        the event was dispatched to a responsible party
  ``overdue``     超期        an open event passed its time limit (found by the worker)
  ``supervised``  督办        a leader supervised the event
  ``closed``      结案        the event was closed
  ==============  =========  ======================================================

* **Fan-out.** The worker turns each new outbox row into one delivery per
  active subscription that wants its type and whose areas cover the event's
  grid (a subscriber never hears about another area's events) and that existed
  when the change was made. A delivery's
  ``delivery_id`` is stable over its retries: receivers deduplicate by it.
* **Delivery.** ``POST`` of a JSON body with ``X-Gridmap-Signature:
  sha256=<HMAC-SHA256 of the body with the subscription's secret>``,
  ``X-Gridmap-Delivery`` and ``X-Gridmap-Event``. A 2xx answer delivers it;
  anything else (or no answer) is retried with exponential backoff
  (``base · 2^(attempt-1)``, capped) until ``max_attempts``, then the delivery
  is ``dead`` (the dead-letter list). A delivery is claimed (a lease on
  ``next_attempt_at`` set by compare-and-set on ``attempts``) before it is
  sent, so several workers never send the same attempt twice.

The sender is a function (URL, body, headers, timeout) → HTTP status, so the
worker can be driven by any HTTP client; :func:`http_send` uses the standard
library.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import secrets
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from gridmap.common.errors import BadInput, NotFound
from gridmap.common.timeparse import iso_utc
from gridmap.events.states import OPEN_STATES
from gridmap.security.access import Principal
from gridmap.storage import Cmp, Store

__all__ = [
    "EVENT_TYPES",
    "DeliveryOptions",
    "WebhookWorker",
    "check_url",
    "create_subscription",
    "delete_subscription",
    "deliveries",
    "enqueue",
    "enqueue_many",
    "enqueue_overdue",
    "fan_out",
    "forget_subscriptions",
    "http_send",
    "kinds_of",
    "list_subscriptions",
    "outbox_rows",
    "run_once",
    "sign",
]

#: Event types a subscription may ask for: code → (zh, en).
EVENT_TYPES: dict[str, tuple[str, str]] = {
    "reported": ("上报", "Reported"),
    "dispatched": ("派遣", "Dispatched"),
    "overdue": ("超期", "Overdue"),
    "supervised": ("督办", "Supervised"),
    "closed": ("结案", "Closed"),
}

#: Roles that may subscribe (staff of a centre: they may read events of their area).
SUBSCRIBER_ROLES = frozenset({"city_admin", "town_coordinator", "community_staff"})


Sender = Callable[[str, bytes, Mapping[str, str], float], int]
#: A row: a mapping or a pandas row (``DataFrame.iloc[i]``, ``iterrows``).
Row = Mapping[str, Any] | pd.Series


@dataclass(frozen=True)
class DeliveryOptions:
    """How the delivery worker retries.

    Parameters
    ----------
    max_attempts : int
        Attempts before a delivery is dead (dead-letter list).
    backoff_s : float
        Wait after the first failure; doubled after each further one.
    max_backoff_s : float
        Longest wait between attempts.
    timeout_s : float
        HTTP timeout of one attempt.
    lease_s : float
        How long a claimed delivery is not retried by another worker.
    poll_s : float
        Pause of the worker between rounds.
    overdue_s : float
        How often the worker looks for events that became overdue.
    allow_private_hosts : bool
        Allow URLs on loopback/private addresses (tests, intranets); refused
        by default so a subscription cannot reach internal services.
    """

    max_attempts: int = 12
    backoff_s: float = 1.0
    max_backoff_s: float = 600.0
    timeout_s: float = 5.0
    lease_s: float = 60.0
    poll_s: float = 0.5
    overdue_s: float = 30.0
    allow_private_hosts: bool = False

    def backoff(self, attempts: int) -> float:
        """Seconds to wait after *attempts* failed attempts.

        Examples
        --------
        >>> [DeliveryOptions(backoff_s=1, max_backoff_s=5).backoff(n) for n in (1, 2, 3, 4)]
        [1.0, 2.0, 4.0, 5.0]
        """
        return float(min(self.max_backoff_s, self.backoff_s * 2 ** max(0, attempts - 1)))


def sign(secret: str, body: bytes) -> str:
    """The ``X-Gridmap-Signature`` value of *body*: ``sha256=`` + hex HMAC-SHA256.

    Examples
    --------
    >>> sign("k", b"{}")[:14]
    'sha256=add853b'
    """
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def _now() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC")


def _iso(value: Any) -> str | None:
    try:
        return iso_utc(value)
    except (TypeError, ValueError):
        return str(value)


def _text(value: Any) -> str | None:
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    return str(value)


def kinds_of(record: Row) -> list[str]:
    """Webhook event types announced by a transition record (a row of ``event_transitions``).

    Examples
    --------
    >>> kinds_of({"action": "report", "to_status": "reported"})
    ['reported']
    >>> kinds_of({"action": "self_handle", "to_status": "closed"})
    ['closed']
    >>> kinds_of({"action": "accept", "to_status": "accepted"})
    []
    """
    action, to = record.get("action"), record.get("to_status")
    out = []
    if action == "report":
        out.append("reported")
    if action == "dispatch":
        out.append("dispatched")
    if action == "supervise":
        out.append("supervised")
    if to == "closed" and record.get("from_status") != "closed":
        out.append("closed")
    return out


def _payload(kind: str, event: Row, record: Row) -> dict[str, Any]:
    """What a receiver is told (no personal data: no reporter, description or photos)."""
    eid = int(event["id"])
    return {
        "type": kind,
        "type_zh": EVENT_TYPES[kind][0],
        "event": {
            "id": eid,
            "category": _text(event.get("category")),
            "status": _text(event.get("status")),
            "urgency": _text(event.get("urgency")),
            "grid_code": _text(event.get("grid_code")),
            "reported_at": _iso(event.get("reported_at")),
            "due_at": _iso(event.get("due_at")),
            "closed_at": _iso(event.get("closed_at")),
            "href": f"/events/{eid}",
        },
        "transition": {
            "seq": None if record.get("seq") is None else int(record["seq"]),
            "action": _text(record.get("action")),
            "from_status": _text(record.get("from_status")),
            "to_status": _text(record.get("to_status")),
            "at": _iso(record.get("at")),
        },
    }


def _outbox_rows(event: Row, record: Row, at: pd.Timestamp) -> list[dict[str, Any]]:
    eid = int(event["id"])
    seq = record.get("seq")
    return [
        {
            "source_key": f"event:{eid}:v{seq}:{kind}",
            "event_id": eid,
            "grid_code": _text(event.get("grid_code")),
            "kind": kind,
            "payload": json.dumps(_payload(kind, event, record), ensure_ascii=False),
            "state": "new",
            "created_at": at,  # wall time: compared with subscriptions' creation
        }
        for kind in kinds_of(record)
    ]


def _write_outbox(store: Store, rows: list[dict[str, Any]]) -> int:
    if not rows:
        return 0
    frame = pd.DataFrame(rows)
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    return store.write("webhook_outbox", frame).inserted


def enqueue(store: Store, event: Row, record: Row) -> int:
    """Write the outbox rows of one event change; call it in the change's transaction.

    Parameters
    ----------
    store : Store
        The store the change is written to (inside its ``transaction()``).
    event : mapping
        The event's columns after the change (``id``, ``status``, ``grid_code`` …).
    record : mapping
        The change's ``event_transitions`` row (``action``, ``from_status``,
        ``to_status``, ``seq``, ``at``).

    Returns
    -------
    int
        Outbox rows written (0 when the change announces nothing).
    """
    rows = _outbox_rows(event, record, _now())
    if rows and not _wanted(store, rows):
        return 0
    return _write_outbox(store, rows)


def outbox_rows(event: Row, record: Row) -> list[dict[str, Any]]:
    """The ``webhook_outbox`` rows of one event change, for a store that writes them itself.

    The lean intake path (:mod:`gridmap.storage.intake_sql`) writes them in
    its one statement, and only when an active subscription wants each kind
    and covers the grid (checked in that statement).

    Examples
    --------
    >>> rows = outbox_rows({"id": 7, "grid_code": "990100001001003", "status": "reported"},
    ...                    {"action": "report", "to_status": "reported", "seq": 1})
    >>> [(r["source_key"], r["kind"]) for r in rows]
    [('event:7:v1:reported', 'reported')]
    """
    return _outbox_rows(event, record, _now())


#: How long (seconds) an embedded store's answer to "which kinds do active
#: subscriptions want, in which areas" is reused by :func:`enqueue`.
SUBSCRIPTION_CACHE_SECONDS = 5.0
_subs_lock = threading.Lock()
#: Per store object (a new store never inherits a closed one's answer).
_subs_cache: weakref.WeakKeyDictionary[
    Any, tuple[float, list[tuple[frozenset[str], tuple[str, ...]]]]
] = weakref.WeakKeyDictionary()


def forget_subscriptions(store: Store | None = None) -> None:
    """Drop the cached subscriptions of *store* (all stores when ``None``).

    Called whenever this process creates or deletes a subscription.
    """
    with _subs_lock:
        if store is None:
            _subs_cache.clear()
        else:
            _subs_cache.pop(store, None)


def _active_subscriptions(store: Store) -> list[tuple[frozenset[str], tuple[str, ...]]]:
    subs = store.read("webhook_subscriptions", where={"active": True})
    return [
        (
            frozenset(str(t) for t in (types if types is not None else [])),
            tuple(str(a) for a in (areas if areas is not None else [])),
        )
        for types, areas in zip(subs.get("event_types", []), subs.get("areas", []), strict=True)
    ]


def _wanted(store: Store, rows: list[dict[str, Any]]) -> bool:
    """Whether an active subscription wants one of the outbox *rows* (kind and area).

    Nobody is told of a change made while no subscription wanted it (a
    subscription hears of changes made after it only), so such rows need not
    be written. An embedded store (one process writes it) caches the answer
    for :data:`SUBSCRIPTION_CACHE_SECONDS`, dropped when this process changes
    a subscription; a PostgreSQL store, which several API processes share,
    asks each time when any subscription is active (a count when there is none).
    """
    if getattr(store, "dialect", None) == "postgis":
        if store.count("webhook_subscriptions", where={"active": True}) == 0:
            return False
        subs = _active_subscriptions(store)
    else:
        now = time.monotonic()
        with _subs_lock:
            hit = _subs_cache.get(store)
        if hit is not None and now - hit[0] < SUBSCRIPTION_CACHE_SECONDS:
            subs = hit[1]
        else:
            subs = _active_subscriptions(store)
            with _subs_lock:
                _subs_cache[store] = (now, subs)
    return any(
        r["kind"] in types and _covers(list(areas), r.get("grid_code"))
        for r in rows
        for types, areas in subs
    )


def enqueue_many(store: Store, events: pd.DataFrame, records: pd.DataFrame) -> int:
    """:func:`enqueue` for many changes in one write (batch intake).

    *records* are ``event_transitions`` rows; *events* holds (at least) the
    events they belong to, matched by ``records["event_id"]``.
    """
    by_id = {int(r["id"]): r for _, r in events.iterrows()}
    at = _now()
    rows = [
        row
        for _, rec in records.iterrows()
        for row in _outbox_rows(by_id[int(rec["event_id"])], rec, at)
    ]
    if rows and not _wanted(store, rows):
        return 0
    return _write_outbox(store, rows)


def enqueue_overdue(store: Store, *, now: pd.Timestamp | None = None) -> int:
    """Announce open events past their time limit (``due_at``), once per limit.

    The outbox key names the event and its ``due_at``: an extension (a later
    ``due_at``) that passes again is announced again.
    """
    when = now or _now()
    if not _has_subscriptions(store, "overdue"):
        return 0
    late = store.read("events", where={"status": sorted(OPEN_STATES), "due_at": Cmp("<", when)})
    if late.empty:
        return 0
    rows = []
    for _, ev in late.iterrows():
        record = {"action": "overdue", "from_status": ev["status"], "to_status": ev["status"]}
        record.update({"seq": ev.get("version"), "at": when})
        rows.append(
            {
                "source_key": f"event:{int(ev['id'])}:overdue:{_iso(ev['due_at'])}",
                "event_id": int(ev["id"]),
                "grid_code": _text(ev.get("grid_code")),
                "kind": "overdue",
                "payload": json.dumps(_payload("overdue", ev, record), ensure_ascii=False),
                "state": "new",
                "created_at": when,
            }
        )
    if not rows:
        return 0
    frame = pd.DataFrame(rows)
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    return store.write("webhook_outbox", frame).inserted


def _has_subscriptions(store: Store, kind: str) -> bool:
    subs = store.read("webhook_subscriptions", where={"active": True})
    return any(kind in list(t if t is not None else []) for t in subs.get("event_types", []))


def _covers(areas: Sequence[str], code: str | None) -> bool:
    if "" in areas:
        return True
    return code is not None and any(a and code.startswith(a) for a in areas)


def fan_out(store: Store, *, now: pd.Timestamp | None = None) -> int:
    """Turn new outbox rows into deliveries (one per matching subscription); return how many.

    Outbox rows and their deliveries change in one transaction, and
    deliveries are keyed by (subscription, outbox row): a repeated fan-out
    adds nothing.
    """
    when = now or _now()
    new = store.read("webhook_outbox", where={"state": "new"})
    if new.empty:
        return 0
    subs = store.read("webhook_subscriptions", where={"active": True})
    made = 0
    for _, row in new.iterrows():
        rows = []
        made_at = pd.Timestamp(row["created_at"])
        for _, sub in subs.iterrows():
            types = list(sub["event_types"] if sub["event_types"] is not None else [])
            areas = list(sub["areas"] if sub["areas"] is not None else [])
            if row["kind"] not in types or not _covers(areas, _text(row["grid_code"])):
                continue
            if pd.notna(sub["created_at"]) and pd.Timestamp(sub["created_at"]) > made_at:
                continue  # a subscription hears of changes made after it only
            rows.append(
                {
                    "source_key": f"sub:{int(sub['id'])}:outbox:{int(row['id'])}",
                    "delivery_id": str(uuid.uuid4()),
                    "subscription_id": int(sub["id"]),
                    "outbox_id": int(row["id"]),
                    "event_id": int(row["event_id"]),
                    "kind": row["kind"],
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": when,
                    "created_at": when,
                }
            )
        with store.transaction():
            if rows:
                frame = pd.DataFrame(rows)
                for col in ("next_attempt_at", "created_at"):
                    frame[col] = pd.to_datetime(frame[col], utc=True)
                made += store.write("webhook_deliveries", frame).inserted
            store.update(
                "webhook_outbox",
                pd.DataFrame([{"id": int(row["id"]), "state": "fanned"}]),
                where={"state": "new"},
            )
    return made


def _body(delivery: Row, payload: str) -> bytes:
    doc = json.loads(payload)
    doc = {
        "delivery_id": delivery["delivery_id"],
        "subscription_id": int(delivery["subscription_id"]),
        **doc,
    }
    return json.dumps(doc, ensure_ascii=False, sort_keys=True).encode("utf-8")


def http_send(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> int:
    """POST *body* to *url*; the HTTP status (0 when no answer came)."""
    req = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    opener = urllib.request.build_opener(_NoRedirect())
    try:
        with opener.open(req, timeout=timeout) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (OSError, ValueError):
        return 0


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are not followed (they could lead to internal hosts)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def run_once(
    store: Store,
    *,
    options: DeliveryOptions | None = None,
    send: Sender = http_send,
    now: Callable[[], pd.Timestamp] = _now,
    overdue: bool = True,
) -> dict[str, int]:
    """One round of the worker: overdue check (if *overdue*), fan-out, every delivery due.

    Returns counts: ``queued`` (deliveries made), ``delivered``, ``failed``
    (to retry), ``dead``.
    """
    opts = options or DeliveryOptions()
    if store.count("webhook_subscriptions", where={"active": True}) == 0:
        # Idle: nobody listens. Changes stay in the outbox (state new) and are never
        # sent to subscriptions made after them.
        return {"queued": 0, "delivered": 0, "failed": 0, "dead": 0}
    if overdue:
        enqueue_overdue(store, now=now())
    out = {"queued": fan_out(store, now=now()), "delivered": 0, "failed": 0, "dead": 0}
    pending = store.read("webhook_deliveries", where={"status": "pending"})
    if pending.empty:
        return out
    due_at = pd.to_datetime(pending["next_attempt_at"], utc=True)
    pending = pending[due_at.isna() | (due_at <= now())]
    if pending.empty:
        return out
    subs = store.read("webhook_subscriptions").set_index("id")
    outbox = store.read("webhook_outbox", ids=[int(i) for i in pending["outbox_id"].unique()])
    payloads = dict(zip(outbox["id"].astype(int), outbox["payload"], strict=True))
    for _, d in pending.iterrows():
        attempts = int(d["attempts"] or 0)
        sid = int(d["subscription_id"])
        # Claim the attempt: count it and lease the row, compare-and-set on the count.
        lease_until = now() + pd.Timedelta(seconds=opts.lease_s)
        lease = pd.DataFrame(
            [{"id": int(d["id"]), "attempts": attempts + 1, "next_attempt_at": lease_until}]
        )
        lease["next_attempt_at"] = pd.to_datetime(lease["next_attempt_at"], utc=True)
        where = {"attempts": attempts, "status": "pending"}
        if store.update("webhook_deliveries", lease, where=where) != 1:
            continue  # another worker claimed it
        if sid not in subs.index or not bool(subs.at[sid, "active"]):
            _finish(store, d, attempts, status="dead", error="subscription deleted", code=None)
            out["dead"] += 1
            continue
        body = _body(d, payloads[int(d["outbox_id"])])
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "gridmap-webhooks/1",
            "X-Gridmap-Delivery": str(d["delivery_id"]),
            "X-Gridmap-Event": str(d["kind"]),
            "X-Gridmap-Signature": sign(str(subs.at[sid, "secret"]), body),
        }
        code = send(str(subs.at[sid, "url"]), body, headers, opts.timeout_s)
        if 200 <= code < 300:
            _finish(store, d, attempts + 1, status="delivered", error=None, code=code, at=now())
            out["delivered"] += 1
        elif attempts + 1 >= opts.max_attempts:
            error = f"HTTP {code}" if code else "no answer"
            _finish(store, d, attempts + 1, status="dead", error=error, code=code)
            out["dead"] += 1
        else:
            retry = now() + pd.Timedelta(seconds=opts.backoff(attempts + 1))
            error = f"HTTP {code}" if code else "no answer"
            _finish(store, d, attempts + 1, status="pending", error=error, code=code, retry=retry)
            out["failed"] += 1
    return out


def _finish(
    store: Store,
    d: Row,
    attempts: int,
    *,
    status: str,
    error: str | None,
    code: int | None,
    at: pd.Timestamp | None = None,
    retry: pd.Timestamp | None = None,
) -> None:
    row = {
        "id": int(d["id"]),
        "status": status,
        "attempts": attempts,
        "last_error": error,
        "last_status": code or None,
        "delivered_at": at,
        "next_attempt_at": retry,
    }
    frame = pd.DataFrame([row])
    for col in ("delivered_at", "next_attempt_at"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    store.update("webhook_deliveries", frame)


class WebhookWorker:
    """The delivery worker: :func:`run_once` in a daemon thread until stopped.

    Parameters
    ----------
    store : Store
        Where outbox, subscriptions and deliveries live.
    options : DeliveryOptions
        Retry, timeout and polling settings.
    send : callable, optional
        The HTTP sender (default :func:`http_send`).
    """

    def __init__(
        self, store: Store, options: DeliveryOptions | None = None, send: Sender = http_send
    ) -> None:
        self.store = store
        self.options = options or DeliveryOptions()
        self.send = send
        self.errors = 0
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gridmap-webhooks", daemon=True)

    def start(self) -> WebhookWorker:
        """Start the thread; return self."""
        self._thread.start()
        return self

    def wake(self) -> None:
        """Run the next round now (e.g. after a change was stored)."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the thread to stop and wait for it."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        last_overdue = float("-inf")
        while not self._stop.is_set():
            check = time.monotonic() - last_overdue >= self.options.overdue_s
            try:
                run_once(self.store, options=self.options, send=self.send, overdue=check)
                if check:
                    last_overdue = time.monotonic()
            except Exception:  # any failure: a failed round is retried next round
                self.errors += 1
            self._wake.wait(self.options.poll_s)
            self._wake.clear()


def check_url(url: str, *, allow_private: bool = False) -> str:
    """Check a subscription URL: http(s), a host, and (by default) not a private address.

    Raises
    ------
    BadInput
        Naming what is wrong.

    Examples
    --------
    >>> check_url("http://127.0.0.1:9/x", allow_private=True)
    'http://127.0.0.1:9/x'
    >>> check_url("ftp://example.org/")
    Traceback (most recent call last):
    ...
    gridmap.common.errors.BadInput: url must be http:// or https:// (订阅地址须为 http 或 https)
    """
    if not isinstance(url, str) or len(url) > 2000:
        raise BadInput("url must be a text of at most 2000 characters", field="url")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise BadInput("url must be http:// or https:// (订阅地址须为 http 或 https)", field="url")
    if not parts.hostname or parts.username or parts.password:
        raise BadInput("url must name a host and carry no credentials", field="url")
    if not allow_private:
        try:
            infos = socket.getaddrinfo(parts.hostname, parts.port or 80, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError):
            raise BadInput(
                f"url host {parts.hostname[:80]!r} cannot be resolved", field="url"
            ) from None
        for info in infos:
            ip = ipaddress.ip_address(str(info[4][0]))
            if not ip.is_global:
                raise BadInput(
                    f"url host {parts.hostname[:80]!r} is an internal address; webhooks are "
                    "only sent to public hosts (不允许内网地址)",
                    field="url",
                )
    return url


def _subscription_doc(row: Row) -> dict[str, Any]:
    return {
        "id": int(row["id"]),
        "url": row["url"],
        "event_types": list(row["event_types"] if row["event_types"] is not None else []),
        "areas": list(row["areas"] if row["areas"] is not None else []),
        "owner": row["owner"],
        "active": bool(row["active"]),
        "created_at": _iso(row["created_at"]),
    }


def _visible(row: Row, principal: Principal) -> bool:
    """A subscription is the caller's business when all its areas lie in the caller's areas."""
    areas = list(row["areas"] if row["areas"] is not None else [])
    return all(_covers(principal.areas, a) for a in areas)


def create_subscription(
    store: Store,
    *,
    url: str,
    event_types: Sequence[str],
    principal: Principal,
    secret: str | None = None,
    allow_private: bool = False,
    now: pd.Timestamp | None = None,
) -> dict[str, Any]:
    """Store a subscription for *principal*'s areas; the answer shows the secret once.

    Raises
    ------
    BadInput
        A bad URL, unknown or no event type, or a secret shorter than 16 characters.
    """
    check_url(url, allow_private=allow_private)
    kinds = list(dict.fromkeys(event_types))
    unknown = [k for k in kinds if k not in EVENT_TYPES]
    if not kinds or unknown:
        raise BadInput(
            f"event_types must name some of {', '.join(EVENT_TYPES)}"
            + (f"; unknown: {str(unknown[0])[:40]!r}" if unknown else ""),
            field="event_types",
        )
    if secret is None:
        secret = secrets.token_urlsafe(32)
    if not isinstance(secret, str) or not 16 <= len(secret) <= 200:
        raise BadInput("secret must be a text of 16 to 200 characters", field="secret")
    sid = uuid.uuid4().hex
    row = {
        "source": "api",
        "source_id": sid,
        "url": url,
        "secret": secret,
        "event_types": kinds,
        "areas": list(principal.areas),
        "owner": principal.name,
        "owner_role": principal.role,
        "active": True,
        "created_at": now or _now(),
    }
    frame = pd.DataFrame([row])
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    store.write("webhook_subscriptions", frame)
    forget_subscriptions(store)
    stored = store.read("webhook_subscriptions", where={"source": "api", "source_id": sid})
    doc = _subscription_doc(stored.iloc[0])
    doc["secret"] = secret
    return doc


def list_subscriptions(store: Store, principal: Principal) -> list[dict[str, Any]]:
    """Active subscriptions within *principal*'s areas."""
    subs = store.read("webhook_subscriptions", where={"active": True})
    return [_subscription_doc(r) for _, r in subs.iterrows() if _visible(r, principal)]


def _own(store: Store, sub_id: int, principal: Principal) -> Row:
    subs = store.read("webhook_subscriptions", ids=[sub_id])
    if subs.empty or not bool(subs["active"].iloc[0]) or not _visible(subs.iloc[0], principal):
        raise NotFound(f"subscription {sub_id} not found (订阅不存在)")
    row: Row = subs.iloc[0]
    return row


def delete_subscription(store: Store, sub_id: int, principal: Principal) -> None:
    """Deactivate a subscription of *principal*'s areas (its deliveries stay listed)."""
    _own(store, sub_id, principal)
    store.update("webhook_subscriptions", pd.DataFrame([{"id": int(sub_id), "active": False}]))
    forget_subscriptions(store)


def deliveries(
    store: Store, sub_id: int, principal: Principal, *, status: str | None = None
) -> list[dict[str, Any]]:
    """The deliveries of a subscription, oldest first (``status="dead"``: the dead-letter list)."""
    if status is not None and status not in ("pending", "delivered", "dead"):
        raise BadInput("status must be pending, delivered or dead", field="status")
    _own(store, sub_id, principal)
    where: dict[str, Any] = {"subscription_id": int(sub_id)}
    if status is not None:
        where["status"] = status
    rows = store.read("webhook_deliveries", where=where)
    return [
        {
            "delivery_id": r["delivery_id"],
            "event_id": int(r["event_id"]),
            "type": r["kind"],
            "status": r["status"],
            "attempts": int(r["attempts"] or 0),
            "last_status": None if pd.isna(r["last_status"]) else int(r["last_status"]),
            "last_error": _text(r["last_error"]),
            "next_attempt_at": _iso(r["next_attempt_at"]) if r["status"] == "pending" else None,
            "delivered_at": _iso(r["delivered_at"]),
            "created_at": _iso(r["created_at"]),
        }
        for _, r in rows.iterrows()
    ]
