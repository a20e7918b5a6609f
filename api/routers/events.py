"""Events: report intake, reading, the handling workflow, photos, supervision and KPIs.

Routes: ``POST /events`` (``Idempotency-Key``), ``POST /events:batch`` (up to
1,000 reports, one key each, 207 with a result per report), ``GET /events``,
``GET /events/supervision``, ``GET /events/{id}`` (``ETag``),
``GET /events/{id}/transitions``, ``POST /events/{id}/transitions``
(``If-Match``), ``POST /events/media`` (multipart photo upload),
``GET /events/media/{name}``, ``GET /kpis``.

Settings come from the application's tree (:func:`api.settings.get_settings`:
limits, time zone, ``media`` and ``privacy`` sections). Optional ``app.state``
attributes read here: ``event_taxonomy`` (:class:`gridmap.events.taxonomy.Taxonomy`) and
``clock`` (a callable returning the current UTC ``pd.Timestamp``; tests
set it to replay a scenario).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

import orjson
import pandas as pd
from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response

from api import validation
from api.deps import SettingsDep, StoreDep
from api.errors import error_body, status_for
from api.params import clamp_limit, parse_item_id, query_guard
from api.routers._json import read_json
from api.routers.locate import shared_locator
from api.security import CurrentPrincipal
from api.settings import Settings
from api.threads import WorkerThreads
from gridmap.assessment.scores import worker_kpis
from gridmap.common.errors import BadInput, GridmapError, NotFound
from gridmap.events.errors import NotPermitted
from gridmap.events.intake import (
    BatchResult,
    IntakeRules,
    KeyClaim,
    Report,
    event_document,
    hide_foreign_duplicates,
    list_events,
    parse_report,
    report_batch,
    report_once,
    request_hash,
)
from gridmap.events.kpis import kpi_records, kpis
from gridmap.events.media import (
    may_see_photo,
    media_path,
    store_photo,
)
from gridmap.events.taxonomy import Taxonomy, default_taxonomy
from gridmap.events.workflow import (
    TransitionRequest,
    history,
    read_event,
    supervision_list,
    transition,
)
from gridmap.security import disclosure as disclosure
from gridmap.security.access import Principal
from gridmap.storage import Store

__all__ = ["parse_if_match", "parse_time", "router"]

router = APIRouter(tags=["Events 事件"])

_LIST_PARAMS = ["status", "category", "kind", "grid_code", "from", "to", "limit", "offset"]
_ETAG = re.compile(r'\s*(?:W/)?"?(\d{1,18})"?\s*')


def clock(request: Request) -> pd.Timestamp:
    """The current time (``app.state.clock`` when a test set one)."""
    fn: Callable[[], pd.Timestamp] | None = getattr(request.app.state, "clock", None)
    return fn() if fn is not None else pd.Timestamp.now(tz="UTC")


def taxonomy_of(request: Request) -> Taxonomy:
    """The taxonomy in force (``app.state.event_taxonomy`` or the default)."""
    tax: Taxonomy | None = getattr(request.app.state, "event_taxonomy", None)
    return tax or default_taxonomy()


def parse_time(text: str | None, name: str) -> pd.Timestamp | None:
    """An ISO 8601 instant with a zone (or a plain date, taken as UTC midnight).

    The one time parser of the edge (:func:`api.validation.parse_time`):
    years outside 1–9999 are refused, naming *name*.

    Examples
    --------
    >>> parse_time("2026-11-01", "from")
    Timestamp('2026-11-01 00:00:00+0000', tz='UTC')
    """
    return validation.parse_time(text, name)


def parse_if_match(value: str | None) -> int | None:
    """The version named by an ``If-Match`` header (``None`` for absent or ``*``).

    Examples
    --------
    >>> parse_if_match('"3"'), parse_if_match('W/"4"'), parse_if_match("*")
    (3, 4, None)
    """
    if value is None or value.strip() == "*":
        return None
    m = _ETAG.fullmatch(value)
    if not m:
        raise BadInput('If-Match must be the ETag of the event, e.g. "3"', field="If-Match")
    return int(m.group(1))


def _etag(doc: dict[str, Any]) -> str:
    return f'"{int(doc.get("version") or 0)}"'


def _json(doc: dict[str, Any], status: int = 200, **headers: str) -> Response:
    """*doc* as a JSON answer, written by orjson.

    The same compact UTF-8 text as Starlette's ``JSONResponse`` gives the plain
    values of an event document, several times faster.
    """
    return Response(
        orjson.dumps(doc),
        status_code=status,
        headers=headers or None,
        media_type="application/json",
    )


#: Reports stored at the same time by one API process: below the store's pool size,
#: so a burst waits here (cheaply, on the event loop) instead of in the pool.
INTAKE_THREADS = 6
#: Most reports one ``POST /events:batch`` takes.
MAX_BATCH = 1_000
#: Roles that may send batches: staff and other systems (hotlines), not field workers.
BATCH_ROLES = frozenset({"city_admin", "town_coordinator", "community_staff", "external_system"})


def _intake_threads(request: Request) -> WorkerThreads:
    threads: WorkerThreads | None = getattr(request.app.state, "intake_threads", None)
    if threads is None:
        threads = WorkerThreads(INTAKE_THREADS, "gridmap-intake")
        request.app.state.intake_threads = threads
    return threads


def close_intake_threads(app: FastAPI) -> None:
    """Let the intake threads (made by the first report) end; the lifespan's last step."""
    threads: WorkerThreads | None = getattr(app.state, "intake_threads", None)
    if threads is not None:
        threads.close()
        app.state.intake_threads = None


async def off_loop(request: Request, fn: Callable[[], Any]) -> Any:
    """Run blocking store work in a worker thread, at most :data:`INTAKE_THREADS` at once."""
    return await _intake_threads(request).run(fn)


def _store_report(
    request: Request,
    store: Store,
    principal: Principal,
    body: Any,
    key: str | None,
    *,
    rules: IntakeRules,
    now: pd.Timestamp,
    report: Report | None = None,
) -> tuple[int, dict[str, Any], bool]:
    """Validate (unless *report* is the parsed *body*), place and store one report once per key."""
    tax = rules.tax
    report = report if report is not None else parse_report(body, taxonomy=tax)

    def respond(row: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return 201, event_document(row, principal=principal, taxonomy=tax)

    return report_once(
        store,
        report,
        principal=principal,
        claim=KeyClaim(key, request_hash(body), respond),
        rules=rules,
        now=now,
        locator=shared_locator(request, store),
    )


def _rules(settings: Settings, tax: Taxonomy) -> IntakeRules:
    """The intake rules of this service: its taxonomy and settings."""
    return IntakeRules(
        taxonomy=tax,
        observed_max_age_hours=settings.observed_max_age_hours,
        edge_tolerance_m=settings.edge_tolerance_m,
    )


@router.post("/events", status_code=201, summary="Report an event (事件上报)")
async def create_event(
    request: Request,
    store: StoreDep,
    principal: CurrentPrincipal,
    settings: SettingsDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Response:
    """Store a report once: located, routed, checked for duplicates.

    Optional ``observed_at`` (ISO 8601 with a zone: when the problem was seen)
    and ``accuracy_m`` (GPS accuracy in metres); a point just outside the
    reporter's grids is accepted within ``min(accuracy_m, edge_tolerance_m)``.
    A replay with the same ``Idempotency-Key`` returns the stored answer;
    the same key with another body is refused (422).
    """
    body = await read_json(request)
    tax = taxonomy_of(request)
    now = clock(request)
    report = parse_report(body, taxonomy=tax)  # a bad body is a 400 before any thread work
    status, doc, replayed = await off_loop(
        request,
        lambda: _store_report(
            request,
            store,
            principal,
            body,
            idempotency_key,
            rules=_rules(settings, tax),
            now=now,
            report=report,
        ),
    )
    headers = {"ETag": _etag(doc), "Location": f"/events/{doc['id']}"}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return _json(doc, status, **headers)


def _batch_items(body: Any) -> list[Any]:
    if not isinstance(body, dict) or set(body) != {"reports"}:
        raise BadInput(
            'the batch must be an object {"reports": [{"idempotency_key": K, "report": {...}}, …]}',
            field="body",
        )
    items = body["reports"]
    if not isinstance(items, list) or not items:
        raise BadInput("reports must be a non-empty list", field="reports")
    if len(items) > MAX_BATCH:
        raise BadInput(f"at most {MAX_BATCH} reports per batch, got {len(items)}", field="reports")
    return items


def _batch_item(index: int, item: Any) -> tuple[str, Any]:
    """``(key, report body)`` of one batch item, or ``BadInput`` naming what is wrong."""
    if isinstance(item, dict) and not isinstance(item.get("idempotency_key"), str):
        raise BadInput(
            f"reports[{index}].idempotency_key is required: every report of a batch "
            "needs its own key",
            field=f"reports[{index}].idempotency_key",
        )
    if not isinstance(item, dict) or set(item) != {"idempotency_key", "report"}:
        raise BadInput(
            f'reports[{index}] must be {{"idempotency_key": K, "report": {{...}}}}',
            field=f"reports[{index}]",
        )
    return str(item["idempotency_key"]), item["report"]


def _batch_entry(index: int, key: Any, result: BatchResult) -> dict[str, Any]:
    """The result entry of one batch item: its status and event, or its error."""
    entry: dict[str, Any] = {
        "index": index,
        "idempotency_key": key if isinstance(key, str) else None,
    }
    if isinstance(result, GridmapError):
        status = status_for(result)
        entry.update(status=status, error=error_body(result.code, result.message, status))
        if isinstance(result, BadInput) and result.field:
            entry["error"]["field"] = result.field
        return entry
    status, doc, replayed = result
    entry.update(status=200 if replayed else status, replayed=replayed, event=doc)
    return entry


@router.post(
    "/events:batch",
    status_code=207,
    summary="Report many events at once (批量上报)",
    responses={207: {"description": "One result per report, in order, each with its status."}},
)
async def create_events_batch(
    request: Request, store: StoreDep, principal: CurrentPrincipal, settings: SettingsDep
) -> JSONResponse:
    """Up to 1,000 reports from a hotline (12345) or another system, each stored once.

    Body ``{"reports": [{"idempotency_key": K, "report": {POST /events body}}, …]}``.
    The answer (207) has one entry per report, in order: ``status`` 201 (stored),
    200 (``replayed``: the key was seen with the same report) or the 4xx the
    report alone would get, with ``event`` or ``error``. The accepted reports
    are stored in one transaction with bulk writes
    (:func:`gridmap.events.intake.report_batch`); a database outage stops the
    batch with 503 (nothing stored), and sending the same batch again stores
    every report exactly once. Staff and
    ``external_system`` callers only (403 for other roles).
    """
    if principal.role not in BATCH_ROLES:
        raise NotPermitted(
            f"角色 {principal.role} 不能批量上报 / role {principal.role!r} may not send "
            "batches; report one event at a time with POST /events"
        )
    items = _batch_items(await read_json(request))
    tax = taxonomy_of(request)
    now = clock(request)

    def run() -> list[dict[str, Any]]:
        checked: list[tuple[str, Any] | GridmapError] = []
        for i, item in enumerate(items):
            try:
                checked.append(_batch_item(i, item))
            except BadInput as exc:
                checked.append(exc)
        valid = [c for c in checked if not isinstance(c, GridmapError)]
        done = iter(
            report_batch(
                store,
                valid,
                principal=principal,
                rules=_rules(settings, tax),
                now=now,
                locator=shared_locator(request, store),
            )
        )
        return [
            _batch_entry(
                i,
                item.get("idempotency_key") if isinstance(item, dict) else None,
                c if isinstance(c, GridmapError) else next(done),
            )
            for i, (item, c) in enumerate(zip(items, checked, strict=True))
        ]

    results: list[dict[str, Any]] = await off_loop(request, run)
    counts = {
        "stored": sum(r["status"] == 201 for r in results),
        "replayed": sum(r["status"] == 200 for r in results),
        "failed": sum(r["status"] >= 400 for r in results),
    }
    return JSONResponse(
        {"count": len(results), **counts, "results": results},
        status_code=207,
        headers={"Cache-Control": "no-store"},
    )


@router.get(
    "/events",
    summary="List events (事件列表)",
    dependencies=[Depends(query_guard(_LIST_PARAMS))],
)
def get_events(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    principal: CurrentPrincipal,
    status: Annotated[str | None, Query(max_length=40)] = None,
    category: Annotated[str | None, Query(max_length=60)] = None,
    kind: Annotated[str | None, Query(max_length=40)] = None,
    grid_code: Annotated[str | None, Query(max_length=15)] = None,
    from_: Annotated[str | None, Query(alias="from", max_length=40)] = None,
    to: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int | None, Query()] = None,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> dict[str, Any]:
    """A page of the events the caller may see, newest ids last (shaped as docs/roles.md says)."""
    found = disclosure.require(principal, "events")
    size = clamp_limit(limit, default=settings.default_limit, maximum=settings.max_limit)
    filters = {
        k: v
        for k, v in {
            "status": status,
            "category": category,
            "kind": kind,
            "grid_code": grid_code,
        }.items()
        if v is not None
    }
    page, total = list_events(
        store,
        principal=principal,
        filters=filters,
        reported_from=parse_time(from_, "from"),
        reported_to=parse_time(to, "to"),
        limit=size,
        offset=offset,
    )
    tax = taxonomy_of(request)
    rows = hide_foreign_duplicates(store, _rows(page), principal=principal)
    docs = [
        disclosure.shape(event_document(r, principal=principal, taxonomy=tax), found) for r in rows
    ]
    return {"events": docs, "total": total, "limit": size, "offset": offset}


def _rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in r.items()} for r in frame.to_dict("records")]


def _scoped_events(store: Store, principal: Principal) -> pd.DataFrame:
    page, _ = list_events(store, principal=principal, limit=1_000_000)
    return page


@router.get(
    "/events/supervision",
    summary="Supervision list (督办清单)",
    dependencies=[Depends(query_guard([]))],
)
def get_supervision(
    request: Request, store: StoreDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Open events a leader supervised (督办) or past a time limit; ``reasons`` says which."""
    found = disclosure.require(principal, "supervision")
    frame = _scoped_events(store, principal)
    listed = supervision_list(frame, now=clock(request)) if not frame.empty else frame
    tax = taxonomy_of(request)
    out = []
    for row in hide_foreign_duplicates(store, _rows(listed), principal=principal):
        doc = event_document(row, principal=principal, taxonomy=tax)
        doc["reasons"] = list(row["reasons"])
        doc["supervised"] = bool(row["supervised"])
        doc["overdue"] = bool(row["overdue"])
        doc["step_overdue"] = bool(row["step_overdue"])
        doc["hours_late"] = round(float(row["hours_late"]), 2)
        out.append(disclosure.shape(doc, found))
    return {"events": out, "total": len(out)}


@router.post("/events/media", status_code=201, summary="Upload a photo (上传照片)")
async def upload_photo(
    principal: CurrentPrincipal, settings: SettingsDep, file: UploadFile
) -> dict[str, Any]:
    """Store one photo (JPEG/PNG/WebP) stripped of EXIF; answer its media name."""
    if principal.role in ("viewer",):
        raise NotPermitted("viewers may not upload photos")
    limit = settings.media.max_photo_bytes
    data = await file.read(limit + 1)
    name = store_photo(data, media_dir=settings.media.media_dir, max_bytes=limit)
    return {"name": name, "href": f"/events/media/{name}"}


@router.get("/events/media/{name}", summary="A stored photo")
def get_photo(
    name: str, store: StoreDep, settings: SettingsDep, principal: CurrentPrincipal
) -> FileResponse:
    """The photo file (names come only from uploads), to callers who may read its event.

    404 when no event the caller may read holds it (as itself or in a transition).
    """
    path = media_path(name, media_dir=settings.media.media_dir)
    if not may_see_photo(store, name, principal=principal):
        raise NotFound(f"no photo {name[:80]!r}")
    return FileResponse(path, headers={"Cache-Control": "private, no-store"})


@router.get(
    "/events/{event_id}",
    summary="One event (事件详情)",
    dependencies=[Depends(query_guard(["unmask", "reason"]))],
)
def get_event(
    request: Request,
    event_id: str,
    store: StoreDep,
    principal: CurrentPrincipal,
    unmask: Annotated[
        bool,
        Query(
            description="Show reporter and contact in clear (查看明文): city admins and "
            "town/community coordinators with the unmask grant, own area only; audited."
        ),
    ] = False,
    reason: Annotated[
        str | None, Query(max_length=500, description="Why (审计事由), written to the audit log.")
    ] = None,
) -> Response:
    """The event, with its version as ``ETag``; ``unmask=true`` is audited (docs/roles.md)."""
    found = disclosure.require(principal, "events")
    why = disclosure.check_unmask(principal, reason=reason) if unmask else None
    eid = parse_item_id(event_id, layer="events")
    row = read_event(store, eid, principal=principal)
    hide_foreign_duplicates(store, [row], principal=principal)
    doc = event_document(row, principal=principal, taxonomy=taxonomy_of(request))
    if not unmask:
        return _json(disclosure.shape(doc, found), ETag=_etag(doc))
    area = row.get("grid_code")
    disclosure.check_unmask(principal, areas=[area], reason=why)
    disclosure.audit_unmask(store, principal, [(eid, area)], surface="events", reason=why)
    doc.update(disclosure.contacts(row, unmask=True))
    response = _json(disclosure.shape(doc, found), ETag=_etag(doc))
    response.headers["Cache-Control"] = "no-store"  # clear personal data: never cached
    return response


@router.get(
    "/events/{event_id}/transitions",
    summary="History of an event (流转记录)",
    dependencies=[Depends(query_guard([]))],
)
def get_transitions(event_id: str, store: StoreDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Every recorded transition: who, when, from, to, note, photos (as docs/roles.md says)."""
    found = disclosure.require(principal, "transitions")
    eid = parse_item_id(event_id, layer="events")
    read_event(store, eid, principal=principal)
    past = history(store, eid)
    items = []
    for r in _rows(past):
        at = pd.Timestamp(r["at"]) if r["at"] is not None and not pd.isna(r["at"]) else None
        items.append(
            {
                "seq": int(r["seq"]),
                "action": r["action"],
                "from": r["from_status"],
                "to": r["to_status"],
                "actor": r["actor"],
                "actor_role": r["actor_role"],
                "at": None if at is None else at.isoformat().replace("+00:00", "Z"),
                "note": r["note"],
                "photos": list(r["photos"]) if isinstance(r["photos"], list) else [],
            }
        )
    return {"event_id": eid, "transitions": [disclosure.shape(t, found) for t in items]}


@router.post(
    "/events/{event_id}/transitions",
    summary="Move an event through the workflow (流转)",
    dependencies=[Depends(query_guard([]))],
)
async def post_transition(
    request: Request,
    event_id: str,
    store: StoreDep,
    principal: CurrentPrincipal,
    if_match: Annotated[str | None, Header(alias="If-Match")] = None,
) -> Response:
    """Apply one action; a stale ``If-Match`` is 412, an illegal action 409."""
    eid = parse_item_id(event_id, layer="events")
    expected = parse_if_match(if_match)
    req = TransitionRequest.from_json(await read_json(request))
    tax = taxonomy_of(request)
    row = transition(
        store,
        eid,
        req,
        principal=principal,
        expected_version=expected,
        taxonomy=tax,
        now=clock(request),
    )
    hide_foreign_duplicates(store, [row], principal=principal)
    doc = event_document(row, principal=principal, taxonomy=tax)
    return _json(doc, ETag=_etag(doc))


@router.get(
    "/kpis",
    summary="Assessment figures (考核指标)",
    dependencies=[Depends(query_guard(["by", "from", "to", "period"]))],
)
def get_kpis(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    principal: CurrentPrincipal,
    by: Annotated[
        Literal["grid", "community", "town", "worker", "category", "period"], Query()
    ] = "grid",
    from_: Annotated[str | None, Query(alias="from", max_length=40)] = None,
    to: Annotated[str | None, Query(max_length=40)] = None,
    period: Annotated[Literal["day", "week", "month"], Query()] = "month",
) -> dict[str, Any]:
    """KPIs by grid, community, town, worker, category or period, over ``[from, to)``.

    ``by=worker`` counts separately what each worker did: reports made, events
    handled, workflow steps, events assigned (with the event KPIs over those)
    and patrol coverage (:func:`gridmap.assessment.scores.worker_kpis`).
    """
    found = disclosure.require(principal, "kpis_by_worker" if by == "worker" else "kpis")
    start, end = parse_time(from_, "from"), parse_time(to, "to")
    if start is not None and end is not None and start >= end:
        raise BadInput("from must be earlier than to", field="from")
    if by == "worker":
        tz = settings.time_zone
        table = worker_kpis(store, principal, start=start, end=end, now=clock(request), tz=tz)
        return {
            "by": by,
            "from": None if start is None else start.isoformat(),
            "to": None if end is None else end.isoformat(),
            "rows": kpi_records(table),
        }
    page, _ = list_events(
        store, principal=principal, reported_from=start, reported_to=end, limit=10_000_000
    )
    table = kpis(page, by=by, now=clock(request), period=period)
    if found.access == "aggregates":  # small counts hidden (docs/roles.md)
        table = disclosure.protect_kpis(table, k=settings.privacy.min_count)
    return {
        "by": by,
        "from": None if start is None else start.isoformat(),
        "to": None if end is None else end.isoformat(),
        "rows": kpi_records(table),
    }
