"""Webhook subscriptions (事件订阅): ``/subscriptions`` and their deliveries.

Routes: ``POST /subscriptions`` (``{"url", "event_types", "secret"?}``; the
answer shows the secret once), ``GET /subscriptions``, ``DELETE
/subscriptions/{id}``, ``GET /subscriptions/{id}/deliveries?status=dead``
(the dead-letter list). Centre staff only (city, town, community); a
subscription covers its creator's areas and is seen only by staff whose
areas contain them. The delivery worker (:class:`gridmap.events.webhooks.WebhookWorker`)
runs in the API process from start to shutdown; see :mod:`gridmap.events.webhooks`
for signing, retries and the outbox.

Worker settings come from ``GRIDMAP_WEBHOOK_*`` variables
(:class:`WebhookSettings`), or from ``app.state.webhook_settings`` when a
program sets it before start.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from pydantic_settings import BaseSettings, SettingsConfigDict

from api.deps import StoreDep
from api.params import parse_item_id, query_guard
from api.routers._json import read_json
from api.security import require_roles
from gridmap.common.errors import BadInput
from gridmap.events import webhooks
from gridmap.security.access import Principal

__all__ = ["WebhookSettings", "router"]


class WebhookSettings(BaseSettings):
    """Settings of the webhook delivery worker (``GRIDMAP_WEBHOOK_*``).

    Parameters
    ----------
    enabled : bool
        Run the delivery worker in this process.
    max_attempts : int
        Attempts before a delivery goes to the dead-letter list.
    backoff_s, max_backoff_s : float
        First wait after a failure (doubled each time) and the longest wait.
    timeout_s : float
        HTTP timeout of one attempt.
    poll_s : float
        Pause of the worker between rounds.
    overdue_s : float
        How often the worker looks for events that became overdue (超期).
    allow_private_hosts : bool
        Allow subscription URLs on loopback or private addresses (intranets, tests).
    """

    model_config = SettingsConfigDict(env_prefix="GRIDMAP_WEBHOOK_")

    enabled: bool = True
    max_attempts: int = 12
    backoff_s: float = 1.0
    max_backoff_s: float = 600.0
    timeout_s: float = 5.0
    poll_s: float = 0.5
    overdue_s: float = 30.0
    allow_private_hosts: bool = False

    def options(self) -> webhooks.DeliveryOptions:
        """The worker's :class:`~gridmap.events.webhooks.DeliveryOptions`."""
        return webhooks.DeliveryOptions(
            max_attempts=self.max_attempts,
            backoff_s=self.backoff_s,
            max_backoff_s=self.max_backoff_s,
            timeout_s=self.timeout_s,
            poll_s=self.poll_s,
            overdue_s=self.overdue_s,
            allow_private_hosts=self.allow_private_hosts,
        )


def _settings(app: FastAPI) -> WebhookSettings:
    found = getattr(app.state, "webhook_settings", None)
    if found is None:
        found = WebhookSettings()
        app.state.webhook_settings = found
    return found


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Run the delivery worker while the service runs (after the store is open)."""
    cfg = _settings(app)
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
async def create(request: Request, store: StoreDep, principal: Staff) -> dict[str, Any]:
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
    cfg = _settings(request.app)
    doc = webhooks.create_subscription(
        store,
        url=body["url"],
        event_types=kinds,
        principal=principal,
        secret=secret,
        allow_private=cfg.allow_private_hosts,
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
