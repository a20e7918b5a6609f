"""Webhook subscriptions (事件订阅): ``/subscriptions`` and their deliveries.

Routes: ``POST /subscriptions`` (``{"url", "event_types", "secret"?}``; the
answer shows the secret once), ``GET /subscriptions``, ``DELETE
/subscriptions/{id}``, ``GET /subscriptions/{id}/deliveries?status=dead``
(the dead-letter list). Centre staff only (city, town, community); a
subscription covers its creator's areas and is seen only by staff whose
areas contain them. The delivery worker (:class:`gridmap.events.webhooks.WebhookWorker`)
runs in the API process from start to shutdown; see :mod:`gridmap.events.webhooks`
for signing, retries and the outbox.

Worker settings are the ``webhooks`` section of the application's settings
tree (``GRIDMAP_WEBHOOK_*`` variables,
:class:`gridmap.common.settings.WebhookSettings`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response

from api.deps import SettingsDep, StoreDep
from api.params import parse_item_id, query_guard
from api.routers._json import read_json
from api.security import require_roles
from api.settings import settings_of
from gridmap.common.errors import BadInput
from gridmap.events import webhooks
from gridmap.security.access import Principal

__all__ = ["router"]


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Run the delivery worker while the service runs (after the store is open)."""
    cfg = settings_of(app).webhooks
    store = getattr(app.state, "store", None)
    worker = None
    if cfg.enabled and store is not None:
        worker = webhooks.WebhookWorker(store, cfg.options()).start()
    app.state.webhook_worker = worker
    try:
        yield
    finally:
        if worker is not None:
            worker.stop()


router = APIRouter(tags=["Webhooks 事件订阅"], lifespan=_lifespan)

Staff = Annotated[
    Principal, Depends(require_roles("city_admin", "town_coordinator", "community_staff"))
]
_NONE = [Depends(query_guard([]))]


def _sub_id(text: str) -> int:
    return parse_item_id(text, layer="subscriptions")


@router.post(
    "/subscriptions",
    status_code=201,
    summary="Subscribe to event changes (订阅事件推送)",
    dependencies=_NONE,
)
async def create(
    request: Request, store: StoreDep, settings: SettingsDep, principal: Staff
) -> dict[str, Any]:
    """Deliver event changes of your areas to ``url``, signed with ``secret``.

    Body: ``{"url": "https://…", "event_types": ["reported", "dispatched",
    "overdue", "supervised", "closed"], "secret": "…"}`` (``secret``: 16–200
    characters; generated when omitted). Every delivery is a ``POST`` with
    ``X-Gridmap-Signature: sha256=<HMAC-SHA256 of the body>`` and
    ``X-Gridmap-Delivery`` (the id to deduplicate by). The answer shows the
    secret once.
    """
    body = await read_json(request)
    if not isinstance(body, dict):
        raise BadInput("the subscription must be a JSON object (订阅须为 JSON 对象)", field="body")
    unknown = sorted(set(body) - {"url", "event_types", "secret"})
    if unknown:
        raise BadInput(f"unknown field {unknown[0][:40]!r}", field=unknown[0][:40])
    if "url" not in body:
        raise BadInput("url is required (缺少订阅地址)", field="url")
    kinds = body.get("event_types", list(webhooks.EVENT_TYPES))
    if not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
        raise BadInput("event_types must be a list of texts", field="event_types")
    secret = body.get("secret")
    if secret is not None and not isinstance(secret, str):
        raise BadInput("secret must be a text", field="secret")
    doc = webhooks.create_subscription(
        store,
        url=body["url"],
        event_types=kinds,
        principal=principal,
        secret=secret,
        allow_private=settings.webhooks.allow_private_hosts,
    )
    worker = getattr(request.app.state, "webhook_worker", None)
    if worker is not None:
        worker.wake()
    return doc


@router.get("/subscriptions", summary="Your subscriptions (订阅列表)", dependencies=_NONE)
def list_all(store: StoreDep, principal: Staff) -> dict[str, Any]:
    """Active subscriptions within your areas (secrets are never shown again)."""
    return {
        "subscriptions": webhooks.list_subscriptions(store, principal),
        "event_types": {k: {"zh": zh, "en": en} for k, (zh, en) in webhooks.EVENT_TYPES.items()},
    }


@router.delete(
    "/subscriptions/{sub_id}",
    status_code=204,
    summary="Cancel a subscription (取消订阅)",
    dependencies=_NONE,
    response_class=Response,
)
def delete(sub_id: str, store: StoreDep, principal: Staff) -> Response:
    """Stop deliveries of a subscription (its delivery history stays readable by nobody)."""
    webhooks.delete_subscription(store, _sub_id(sub_id), principal)
    return Response(status_code=204)


@router.get(
    "/subscriptions/{sub_id}/deliveries",
    summary="Deliveries of a subscription (投递记录, dead letters)",
    dependencies=[Depends(query_guard(["status"]))],
)
def list_deliveries(
    sub_id: str,
    store: StoreDep,
    principal: Staff,
    status: Annotated[
        Literal["pending", "delivered", "dead"] | None,
        Query(description="Only deliveries in this state; `dead` is the dead-letter list."),
    ] = None,
) -> dict[str, Any]:
    """Each delivery's id, event, type, status, attempts and last error."""
    return {"deliveries": webhooks.deliveries(store, _sub_id(sub_id), principal, status=status)}
