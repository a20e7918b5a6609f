"""Open311 GeoReport v2 over the event workflow (JSON).

Routes: ``GET /open311/v2/services.json``, ``GET /open311/v2/requests.json``,
``POST /open311/v2/requests.json`` (form-encoded as the spec says, or JSON),
``GET /open311/v2/requests/{id}.json``.

Service codes are the taxonomy's categories (``dispute``) and subcategories
(``city_management.garbage``). Workflow states map to ``open``/``closed``
with ``status_notes`` naming the state in Chinese and English. No resident
contact data (name, phone, e-mail) is ever emitted; ``media_url`` values are
never fetched.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import parse_qsl

import pandas as pd
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse

from api.deps import StoreDep
from api.params import parse_item_id, query_guard
from api.routers._json import parse_json
from api.routers.events import clock, parse_time, taxonomy_of
from api.security import CurrentPrincipal
from api.validation import check_form
from gridmap.errors import BadInput, NotFound, UnsupportedFormat
from gridmap.events.intake import (
    hide_foreign_duplicates,
    idempotent,
    list_events,
    parse_report,
    report_event,
    request_hash,
)
from gridmap.events.taxonomy import Taxonomy
from gridmap.events.workflow import CLOSED_STATES, STATES, read_event

__all__ = ["open311_request", "router", "service_list"]

router = APIRouter(prefix="/open311/v2", tags=["Open311 GeoReport v2"])

_POST_FIELDS = frozenset(
    {
        "service_code",
        "lat",
        "long",
        "address_string",
        "address_id",
        "description",
        "email",
        "device_id",
        "account_id",
        "first_name",
        "last_name",
        "phone",
        "media_url",
        "api_key",
        "jurisdiction_id",
        "urgency",
    }
)


def service_list(tax: Taxonomy) -> list[dict[str, Any]]:
    """GeoReport ``services``: one per category and subcategory.

    Examples
    --------
    >>> from gridmap.events.taxonomy import default_taxonomy
    >>> service_list(default_taxonomy())[0]["service_code"]
    'city_management'
    """
    out: list[dict[str, Any]] = []
    for cat in tax.categories.values():
        base = {
            "metadata": False,
            "type": "realtime",
            "group": f"{cat.name_zh} {cat.name_en}",
        }
        out.append(
            {
                "service_code": cat.code,
                "service_name": f"{cat.name_zh} {cat.name_en}",
                "description": f"{cat.name_en}; handled by {cat.responsible}",
                "keywords": cat.code.replace("_", " "),
                **base,
            }
        )
        for sub in cat.subcategories.values():
            out.append(
                {
                    "service_code": f"{cat.code}.{sub.code}",
                    "service_name": f"{sub.name_zh} {sub.name_en}",
                    "description": f"{cat.name_en}: {sub.name_en}",
                    "keywords": sub.code.replace("_", " "),
                    **base,
                }
            )
    return out


def _iso(value: Any) -> str | None:
    if value is None or value is pd.NaT:
        return None
    ts = pd.Timestamp(value)
    if pd.isna(ts):
        return None
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.isoformat().replace("+00:00", "Z")


def open311_request(row: Mapping[str, Any], tax: Taxonomy) -> dict[str, Any]:
    """One GeoReport ``request`` from an event row (no contact data).

    Examples
    --------
    >>> from gridmap.events.taxonomy import default_taxonomy
    >>> r = open311_request({"id": 4, "status": "rejected", "category": "dispute"},
    ...                     default_taxonomy())
    >>> r["status"], r["status_notes"]
    ('closed', '退回 Rejected')
    """
    status = str(row.get("status") or "reported")
    zh, en = STATES.get(status, (status, status))
    notes = f"{zh} {en}"
    dup = row.get("duplicate_of")
    if status == "merged" and dup is not None and not pd.isna(dup):
        notes += f": duplicate of request {int(dup)}"
    category = row.get("category")
    sub = row.get("subcategory")
    code = str(category) if isinstance(category, str) else None
    name = None
    if code in tax.categories:
        assert code is not None
        subs = tax.categories[code].subcategories
        if isinstance(sub, str) and sub in subs:
            name = f"{subs[sub].name_zh} {subs[sub].name_en}"
            code = f"{code}.{sub}"
        else:
            name = f"{tax.categories[code].name_zh} {tax.categories[code].name_en}"
    geom = row.get("geometry")
    lat = lon = None
    if geom is not None and getattr(geom, "is_empty", True) is False:
        lat, lon = round(float(geom.y), 6), round(float(geom.x), 6)
    return {
        "service_request_id": str(int(row["id"])),
        "status": "closed" if status in CLOSED_STATES else "open",
        "status_notes": notes,
        "service_name": name,
        "service_code": code,
        "description": row.get("description"),
        "agency_responsible": row.get("responsible"),
        "service_notice": None,
        "requested_datetime": _iso(row.get("reported_at")),
        "updated_datetime": _iso(row.get("updated_at")) or _iso(row.get("reported_at")),
        "expected_datetime": _iso(row.get("due_at")),
        "address": None,
        "address_id": None,
        "zipcode": None,
        "lat": lat,
        "long": lon,
        "media_url": None,
    }


@router.get(
    "/services.json",
    summary="Open311 service list",
    dependencies=[Depends(query_guard(["jurisdiction_id"]))],
)
def services(request: Request, principal: CurrentPrincipal) -> JSONResponse:
    """The services (event categories) requests can be filed under."""
    return JSONResponse(service_list(taxonomy_of(request)))


def _form(data: bytes) -> dict[str, str]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput("the form body is not valid UTF-8", field="body") from None
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text))
    except ValueError:
        raise BadInput("the form body is not valid application/x-www-form-urlencoded") from None
    out: dict[str, str] = {}
    for k, v in pairs:
        if k in out:
            raise BadInput(f"form field {k[:40]!r} is repeated", field=k[:40])
        out[k] = v
    check_form(out)
    return out


async def _post_fields(request: Request) -> dict[str, Any]:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if ctype == "application/x-www-form-urlencoded":
        fields: dict[str, Any] = _form(body)
    elif ctype == "application/json":
        parsed = parse_json(body)
        if not isinstance(parsed, dict):
            raise BadInput("the request must be a JSON object", field="body")
        fields = parsed
    else:
        raise UnsupportedFormat(
            "Content-Type must be application/x-www-form-urlencoded (GeoReport v2) "
            f"or application/json, got {ctype[:60] or 'none'!r}"
        )
    unknown = sorted(set(fields) - _POST_FIELDS)
    if unknown:
        raise BadInput(f"unknown field {unknown[0][:60]!r}", field=unknown[0][:60])
    return fields


def _coordinate(fields: Mapping[str, Any], name: str) -> Any:
    if name not in fields or fields[name] in (None, ""):
        raise BadInput(f"{name} is required (GeoReport v2 takes lat and long in WGS84)", field=name)
    value = fields[name]
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise BadInput(f"{name} must be a number, got {value[:40]!r}", field=name) from None
    return value


@router.post("/requests.json", summary="Open311 create a service request", status_code=201)
async def create_request(
    request: Request,
    store: StoreDep,
    principal: CurrentPrincipal,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    """File a request; answers ``[{"service_request_id": …}]``.

    Names, phones and e-mails are stored for the handling staff (masked to
    them) and never returned by any Open311 route; ``media_url`` is not fetched.
    """
    fields = await _post_fields(request)
    tax = taxonomy_of(request)
    code = fields.get("service_code")
    if not isinstance(code, str) or not code:
        raise BadInput("service_code is required", field="service_code")
    category, _, sub = code.partition(".")
    name = " ".join(
        str(fields[k]) for k in ("first_name", "last_name") if isinstance(fields.get(k), str)
    ).strip()
    contact = fields.get("phone") or fields.get("email")
    body: dict[str, Any] = {
        "category": category,
        "description": fields.get("description") or fields.get("address_string") or code,
        "location": {
            "lon": _coordinate(fields, "long"),
            "lat": _coordinate(fields, "lat"),
            "crs": "wgs84",
        },
        "channel": "open311",
        "kind": "help_request" if category == "residents_request" else "event",
    }
    if sub:
        body["subcategory"] = sub
    if fields.get("urgency") is not None:
        body["urgency"] = fields["urgency"]
    if name:
        body["reporter"] = name
    if contact:
        body["contact"] = contact
    report = parse_report(body, taxonomy=tax)
    now = clock(request)

    def create() -> tuple[int, dict[str, Any], int | None]:
        row = report_event(store, report, principal=principal, taxonomy=tax, now=now)
        hide_foreign_duplicates(store, [row], principal=principal)
        eid = int(row["id"])
        notice = "已受理 Received"
        if row.get("duplicate_of") is not None and not pd.isna(row.get("duplicate_of")):
            notice += f"; possibly the same as request {int(row['duplicate_of'])}"
        return 201, {"service_request_id": str(eid), "service_notice": notice}, eid

    status, doc, _ = idempotent(
        store,
        principal=principal,
        key=idempotency_key,
        digest=request_hash(fields),
        create=create,
        now=now,
    )
    return JSONResponse([{**doc, "account_id": None}], status_code=status)


@router.get(
    "/requests.json",
    summary="Open311 service requests",
    dependencies=[
        Depends(
            query_guard(
                [
                    "service_request_id",
                    "service_code",
                    "start_date",
                    "end_date",
                    "status",
                    "jurisdiction_id",
                ]
            )
        )
    ],
)
def list_requests(
    request: Request,
    store: StoreDep,
    principal: CurrentPrincipal,
    service_request_id: Annotated[str | None, Query(max_length=2000)] = None,
    service_code: Annotated[str | None, Query(max_length=100)] = None,
    start_date: Annotated[str | None, Query(max_length=40)] = None,
    end_date: Annotated[str | None, Query(max_length=40)] = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
) -> JSONResponse:
    """Requests the caller may see, newest first (at most 1000)."""
    tax = taxonomy_of(request)
    if status is not None and status not in ("open", "closed"):
        raise BadInput("status must be 'open' or 'closed'", field="status")
    filters: dict[str, Any] = {}
    if service_code:
        category, _, sub = service_code.partition(".")
        filters["category"] = category
        if sub:
            filters["subcategory"] = sub
    if status == "closed":
        filters["status"] = sorted(CLOSED_STATES)
    elif status == "open":
        filters["status"] = sorted(set(STATES) - CLOSED_STATES)
    if service_request_id:
        ids = [
            parse_item_id(p.strip(), layer="events") for p in service_request_id.split(",")[:1000]
        ]
        filters["id"] = ids
    page, _ = list_events(
        store,
        principal=principal,
        filters=filters,
        reported_from=parse_time(start_date, "start_date"),
        reported_to=parse_time(end_date, "end_date"),
        limit=1_000_000,
    )
    page = page.sort_values("id", ascending=False).head(1000) if not page.empty else page
    rows = [{str(k): v for k, v in r.items()} for r in page.to_dict("records")]
    hide_foreign_duplicates(store, rows, principal=principal)
    return JSONResponse([open311_request(r, tax) for r in rows])


@router.get("/requests/{request_id}.json", summary="Open311 one service request")
def get_request(
    request: Request, request_id: str, store: StoreDep, principal: CurrentPrincipal
) -> JSONResponse:
    """One request, as a one-element list (GeoReport v2)."""
    eid = parse_item_id(request_id, layer="events")
    try:
        row = read_event(store, eid, principal=principal)
    except NotFound:
        raise NotFound(f"no service request {eid}") from None
    hide_foreign_duplicates(store, [row], principal=principal)
    return JSONResponse([open311_request(row, taxonomy_of(request))])
