"""Open311 GeoReport v2 over the event workflow, in JSON and XML.

Routes (each in both formats, ``.json`` or ``.xml``; XML is the spec's
required one): ``discovery``, ``services`` (public), ``services/{code}`` (the
service definition), ``requests`` (GET list, POST create), ``requests/{id}``.
Requests are answered with their ``service_request_id`` at once, so no
``tokens/{token}`` route is needed.

Who calls: the spec's ``api_key`` (a form field of the POST, or a query
parameter) is the API key of an ``external_system`` user
(``gridmap users api-key NAME``); ``X-API-Key`` and bearer tokens work as on
every other route. ``jurisdiction_id``, when given, must be the configured
jurisdiction (``GRIDMAP_OPEN311_JURISDICTION_ID``, the ``open311`` section of
the settings tree; by default the code of the store's city), else 404. A
request may give ``lat``/``long`` (WGS84) or only an ``address_string``,
placed by :func:`gridmap.geo.addresses.lookup_address` over the store's
buildings and roads. Every error on these paths is in the spec's form,
``[{"code": 400, "description": "…"}]`` or ``<errors><error><code>400</code>…``.

Service codes are the taxonomy's categories (``dispute``) and subcategories
(``city_management.garbage``). Workflow states map to ``open``/``closed``
with ``status_notes`` naming the state in Chinese and English. No resident
contact data (name, phone, e-mail) is ever emitted; ``media_url`` (an http(s)
URL to a public host) is stored as given and never fetched.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlsplit

import pandas as pd
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute

from api.deps import SettingsDep, StoreDep
from api.open311_xml import (
    XmlResponse,
    discovery_xml,
    errors_xml,
    requests_xml,
    service_definition_xml,
    services_xml,
)
from api.params import parse_item_id, query_guard
from api.routers._json import parse_json
from api.routers.events import clock, off_loop, parse_time, taxonomy_of
from api.routers.locate import shared_locator
from api.security import ANONYMOUS, CallerPrincipal
from api.validation import check_form
from gridmap.common.errors import BadInput, NotFound, UnsupportedFormat
from gridmap.common.settings import Settings
from gridmap.common.timeparse import iso_utc
from gridmap.events.intake import (
    IntakeRules,
    KeyClaim,
    hide_foreign_duplicates,
    list_events,
    parse_report,
    report_once,
    request_hash,
)
from gridmap.events.states import CLOSED_STATES, STATES
from gridmap.events.taxonomy import Taxonomy
from gridmap.events.workflow import read_event
from gridmap.geo.addresses import lookup_address
from gridmap.security import disclosure as disclosure
from gridmap.security.access import Principal
from gridmap.security.auth import NotAuthenticated, principal_for_api_key
from gridmap.storage import Store

__all__ = [
    "Open311Principal",
    "open311_request",
    "router",
    "service_list",
]

log = logging.getLogger("gridmap.api")

#: The GeoReport v2 specification, named by the discovery document.
SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
_FORMATS = ("text/xml", "application/json")
_MAX_MEDIA_URL = 2000


def _wants_xml(request: Request) -> bool:
    return request.url.path.endswith(".xml")


def _spec_errors(
    request: Request, status: int, errors: Sequence[Mapping[str, Any]], headers: Mapping[str, str]
) -> Response:
    keep = {k: v for k, v in headers.items() if k.lower() not in ("content-length", "content-type")}
    if _wants_xml(request):
        return XmlResponse(errors_xml(errors), status_code=status, headers=keep)
    return JSONResponse(list(errors), status_code=status, headers=keep)


async def _as_spec_error(request: Request, exc: Exception) -> Response:
    """Answer *exc* as the application would, then in GeoReport's error form.

    The application's handlers (:mod:`api.errors`) choose the status, the
    message and headers such as ``Retry-After`` and ``WWW-Authenticate``;
    only the body changes shape. Extra members (e.g. ``description_zh``) stay.
    """
    handler = None
    for cls in type(exc).__mro__:
        handler = request.app.exception_handlers.get(cls)
        if handler is not None:
            break
    if handler is None:
        raise exc
    answer = handler(request, exc)
    response: Response = await answer if isinstance(answer, Awaitable) else answer
    if not isinstance(response, JSONResponse):
        return response  # e.g. a browser sent to /login
    try:
        body = json.loads(bytes(response.body))
    except ValueError:
        return response
    if not isinstance(body, dict):
        return response
    error = {
        "code": response.status_code,
        "description": str(body.get("description") or body.get("code") or "error"),
    }
    error.update({k: v for k, v in body.items() if k not in ("code", "description")})
    return _spec_errors(request, response.status_code, [error], response.headers)


class Open311Route(APIRoute):
    """A route answering every error in the GeoReport v2 form (JSON or XML by suffix)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The route's handler, wrapped to reshape its errors."""
        handler = super().get_route_handler()

        async def spec_errors(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:  # reshaped, never swallowed: unknown ones re-raise
                return await _as_spec_error(request, exc)

        return spec_errors


router = APIRouter(prefix="/open311/v2", tags=["Open311 GeoReport v2"], route_class=Open311Route)

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
        "requested_datetime": iso_utc(row.get("reported_at")),
        "updated_datetime": iso_utc(row.get("updated_at")) or iso_utc(row.get("reported_at")),
        "expected_datetime": iso_utc(row.get("due_at")),
        "address": None,
        "address_id": None,
        "zipcode": None,
        "lat": lat,
        "long": lon,
        "media_url": _media_of(row),
    }


def _answer(
    request: Request, data: Any, xml: Callable[[Any], bytes], status: int = 200
) -> Response:
    if _wants_xml(request):
        return XmlResponse(xml(data), status_code=status)
    return JSONResponse(data, status_code=status)


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
    """The fields of a POST (form-encoded or JSON), parsed once per request."""
    cached: dict[str, Any] | None = getattr(request.state, "open311_fields", None)
    if cached is not None:
        return cached
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
    request.state.open311_fields = fields
    return fields


async def _field(request: Request, name: str) -> Any:
    """A query parameter, or for a POST the form/JSON field of that name."""
    if request.method == "POST":
        value = (await _post_fields(request)).get(name)
        if value not in (None, ""):
            return value
    return request.query_params.get(name)


async def open311_principal(request: Request, caller: CallerPrincipal) -> Principal:
    """The caller: by the spec's ``api_key`` field, else ``X-API-Key`` or a bearer token.

    ``api_key`` is the API key of an external system (``gridmap users api-key``).
    A request with neither is answered 401.
    """
    key = await _field(request, "api_key")
    if key is not None:
        if not isinstance(key, str):
            raise BadInput("api_key must be text", field="api_key")
        store: Store = request.app.state.store
        principal = principal_for_api_key(store, key)
        request.state.principal = principal
        return principal
    if caller is ANONYMOUS:
        raise NotAuthenticated(
            "authentication required: send api_key (a form field of the POST, or a query "
            "parameter) or the X-API-Key header"
        )
    return caller


#: The caller of an Open311 route that needs one (see :func:`open311_principal`).
Open311Principal = Annotated[Principal, Depends(open311_principal)]


def _jurisdictions(settings: Settings, store: Store) -> list[str]:
    configured = settings.open311.jurisdiction_id
    if configured:
        return [configured]
    cities = store.read("admin_units", where={"level": "city"})
    return sorted(str(c) for c in cities["code"]) if not cities.empty else []


async def check_jurisdiction(request: Request, store: StoreDep, settings: SettingsDep) -> None:
    """Dependency: a given ``jurisdiction_id`` must be this endpoint's (404 otherwise)."""
    given = await _field(request, "jurisdiction_id")
    if given is None:
        return
    served = _jurisdictions(settings, store)
    if str(given) not in served:
        raise NotFound(
            f"unknown jurisdiction_id {str(given)[:40]!r}; this endpoint serves "
            f"{', '.join(served) or 'no jurisdiction yet'} (未知的辖区)"
        )


_Jurisdiction = Depends(check_jurisdiction)


def _media_of(row: Mapping[str, Any]) -> str | None:
    value = row.get("media_url")
    return value if isinstance(value, str) and value else None


def _media_url(value: Any) -> str | None:
    """Check a ``media_url``: an http(s) URL of a public host, kept as given, never fetched."""
    if value in (None, ""):
        return None
    problem = "media_url must be an http or https URL"
    if not isinstance(value, str) or len(value) > _MAX_MEDIA_URL:
        raise BadInput(f"{problem} of at most {_MAX_MEDIA_URL} characters", field="media_url")
    try:
        parts = urlsplit(value)
        host = parts.hostname or ""
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:
        raise BadInput(f"{problem}, got {value[:60]!r}", field="media_url") from None
    if parts.scheme not in ("http", "https") or not host or any(c.isspace() for c in value):
        raise BadInput(f"{problem}, got {value[:60]!r}", field="media_url")
    if parts.username is not None or parts.password is not None:
        raise BadInput("media_url must not carry a user name or password", field="media_url")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        local = host == "localhost" or host.endswith((".localhost", ".local", ".internal"))
    else:
        local = not address.is_global
    if local:
        raise BadInput(
            f"media_url must point to a public host, not {host[:60]!r}", field="media_url"
        )
    return value


@router.get("/discovery.json", summary="Open311 discovery")
@router.get("/discovery.xml", summary="Open311 discovery (XML)")
def discovery(request: Request, settings: SettingsDep) -> Response:
    """The GeoReport v2 discovery document: this endpoint, both formats (public)."""
    cfg = settings.open311
    url = str(request.url_for("services_list", fmt="json")).rsplit("/", 1)[0]
    now = pd.Timestamp.now(tz="UTC").floor("s").isoformat().replace("+00:00", "Z")
    doc = {
        "changeset": now,
        "contact": cfg.contact,
        "key_service": cfg.key_service,
        "endpoints": [
            {
                "specification": SPECIFICATION,
                "url": url,
                "changeset": now,
                "type": "production",
                "formats": list(_FORMATS),
            }
        ],
    }
    return _answer(request, doc, discovery_xml)


@router.get(
    "/services.{fmt}",
    summary="Open311 service list (public)",
    name="services_list",
    dependencies=[Depends(query_guard(["jurisdiction_id"])), _Jurisdiction],
)
def services(request: Request, fmt: str) -> Response:
    """The services (event categories) requests can be filed under; no credentials needed."""
    _check_format(fmt)
    return _answer(request, service_list(taxonomy_of(request)), services_xml)


@router.get(
    "/services/{service_code}.{fmt}",
    summary="Open311 service definition (public)",
    dependencies=[Depends(query_guard(["jurisdiction_id"])), _Jurisdiction],
)
def service_definition(request: Request, service_code: str, fmt: str) -> Response:
    """A service's definition: no extra attributes (every service has ``metadata: false``)."""
    _check_format(fmt)
    codes = {s["service_code"] for s in service_list(taxonomy_of(request))}
    if service_code not in codes:
        raise NotFound(f"no service {service_code[:60]!r}; see services.{fmt} (未知的服务类型)")
    return _answer(
        request, {"service_code": service_code, "attributes": []}, service_definition_xml
    )


def _check_format(fmt: str) -> None:
    if fmt not in ("json", "xml"):
        raise NotFound(f"unknown format {fmt[:20]!r}: GeoReport v2 answers .json or .xml")


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


def _location(store: Store, fields: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The report's location and, when placed by address, a note saying where."""
    given = [k for k in ("lat", "long") if fields.get(k) not in (None, "")]
    address = fields.get("address_string")
    if not given and isinstance(address, str) and address.strip():
        found = lookup_address(store, address)
        how = "exact" if found.exact else "closest match"
        note = f"placed at {found.source} {found.matched!r} ({how}; 按地址定位)"
        return {"lon": found.lon, "lat": found.lat, "crs": "wgs84"}, note
    if not given and fields.get("address_id") not in (None, ""):
        raise BadInput(
            "address_id is not supported here; give lat and long, or address_string",
            field="address_id",
        )
    if not given:
        raise BadInput(
            "lat and long, or address_string, is required (GeoReport v2; lat is required)",
            field="lat",
        )
    return {
        "lon": _coordinate(fields, "long"),
        "lat": _coordinate(fields, "lat"),
        "crs": "wgs84",
    }, None


def _report_body(fields: Mapping[str, Any], location: dict[str, Any]) -> dict[str, Any]:
    code = fields.get("service_code")
    if not isinstance(code, str) or not code:
        raise BadInput("service_code is required", field="service_code")
    category, _, sub = code.partition(".")
    name = " ".join(
        str(fields[k]) for k in ("first_name", "last_name") if isinstance(fields.get(k), str)
    ).strip()
    contact = fields.get("phone") or fields.get("email")
    description = fields.get("description")
    address = fields.get("address_string")
    if isinstance(address, str) and address.strip():
        description = f"{description}\n地址 Address: {address.strip()}" if description else address
    body: dict[str, Any] = {
        "category": category,
        "description": description or code,
        "location": location,
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
    return body


@router.post(
    "/requests.{fmt}",
    summary="Open311 create a service request",
    status_code=201,
    dependencies=[Depends(query_guard(["api_key", "jurisdiction_id"])), _Jurisdiction],
)
async def create_request(
    request: Request,
    fmt: str,
    store: StoreDep,
    principal: Open311Principal,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Response:
    """File a request; answers ``[{"service_request_id": …}]`` (or its XML).

    Names, phones and e-mails are stored for the handling staff (masked to
    them) and never returned by any Open311 route; ``media_url`` is not fetched.
    """
    _check_format(fmt)
    fields = await _post_fields(request)
    tax = taxonomy_of(request)
    if not isinstance(fields.get("service_code"), str) or not fields.get("service_code"):
        raise BadInput("service_code is required", field="service_code")
    media_url = _media_url(fields.get("media_url"))
    now = clock(request)
    placed: str | None = None

    def respond(row: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        notice = "已受理 Received"
        if placed:
            notice += f"; {placed}"
        if row.get("duplicate_of") is not None and not pd.isna(row.get("duplicate_of")):
            notice += f"; possibly the same as request {int(row['duplicate_of'])}"
        return 201, {"service_request_id": str(int(row["id"])), "service_notice": notice}

    def store_it() -> tuple[int, dict[str, Any], bool]:
        nonlocal placed
        location, placed = _location(store, fields)  # an address lookup reads the store
        report = parse_report(_report_body(fields, location), taxonomy=tax)
        report = dataclasses.replace(report, media_url=media_url)
        return report_once(
            store,
            report,
            principal=principal,
            claim=KeyClaim(
                idempotency_key,
                request_hash({k: v for k, v in fields.items() if k != "api_key"}),
                respond,
            ),
            rules=IntakeRules(taxonomy=tax),
            now=now,
            locator=shared_locator(request, store),
        )

    status, doc, _ = await off_loop(request, store_it)
    return _answer(request, [{**doc, "account_id": None}], requests_xml, status)


@router.get(
    "/requests.{fmt}",
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
                    "api_key",
                ]
            )
        ),
        _Jurisdiction,
    ],
)
def list_requests(
    request: Request,
    fmt: str,
    store: StoreDep,
    principal: Open311Principal,
    service_request_id: Annotated[str | None, Query(max_length=2000)] = None,
    service_code: Annotated[str | None, Query(max_length=100)] = None,
    start_date: Annotated[str | None, Query(max_length=40)] = None,
    end_date: Annotated[str | None, Query(max_length=40)] = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    """Requests the caller may see, newest first (at most 1000), shaped as docs/roles.md says."""
    _check_format(fmt)
    found = disclosure.require(principal, "open311")
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
    docs = [disclosure.shape(open311_request(r, tax), found, blank=True) for r in rows]
    return _answer(request, docs, requests_xml)


@router.get(
    "/requests/{request_id}.{fmt}",
    summary="Open311 one service request",
    dependencies=[Depends(query_guard(["jurisdiction_id", "api_key"])), _Jurisdiction],
)
def get_request(
    request: Request, request_id: str, fmt: str, store: StoreDep, principal: Open311Principal
) -> Response:
    """One request, as a one-element list (GeoReport v2), shaped as docs/roles.md says."""
    _check_format(fmt)
    found = disclosure.require(principal, "open311")
    eid = parse_item_id(request_id, layer="events")
    try:
        row = read_event(store, eid, principal=principal)
    except NotFound:
        raise NotFound(f"no service request {eid}") from None
    hide_foreign_duplicates(store, [row], principal=principal)
    doc = disclosure.shape(open311_request(row, taxonomy_of(request)), found, blank=True)
    return _answer(request, [doc], requests_xml)


@router.api_route(
    "/{rest:path}",
    methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
    include_in_schema=False,
)
def not_found(request: Request, rest: str) -> Response:
    """Anything else under ``/open311/v2``: 404 in the spec's error form."""
    raise NotFound(
        f"no Open311 resource {rest[:80]!r}; see discovery.json (GeoReport v2: "
        "services, services/{code}, requests, requests/{id}, each .json or .xml)"
    )
