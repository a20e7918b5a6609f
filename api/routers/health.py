"""Operations: ``/healthz`` (process up), ``/readyz`` (store ready) and ``/metrics``.

For load balancers, orchestrators (Kubernetes probes, compose health checks)
and Prometheus. None of them needs credentials or reveals data: ``/readyz``
names the store kind and schema versions, ``/metrics`` counts requests by
route template.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from api.errors import error_body
from api.metrics import CONTENT_TYPE, Metrics
from gridmap.common.errors import GridmapError
from gridmap.storage import latest_migration

__all__ = ["readiness", "router"]

router = APIRouter(tags=["Operations 运维"])
log = logging.getLogger("gridmap.api")

_NO_STORE = {"Cache-Control": "no-store"}


def readiness(state: Any) -> tuple[bool, dict[str, Any]]:
    """Whether the application in *state* can answer: store reachable, schema current.

    Parameters
    ----------
    state : starlette.datastructures.State
        The application's state (``store``, ``store_failure``).

    Returns
    -------
    (bool, dict)
        Ready or not, and the document ``/readyz`` answers.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> from gridmap.storage import open_store
    >>> ok, doc = readiness(SimpleNamespace(store=open_store(":memory:", migrate=True)))
    >>> ok, doc["status"], doc["store"], doc["schema_version"] == doc["latest_version"]
    (True, 'ready', 'duckdb', True)
    >>> readiness(SimpleNamespace(store=open_store(":memory:")))[1]["code"]
    'migrations_pending'
    """
    store = getattr(state, "store", None)
    failure = getattr(state, "store_failure", None)
    if store is None:
        return False, _not_ready("store_unavailable", "the store is not open yet")
    if failure:
        return False, _not_ready("store_invalidated", f"the store is unusable: {failure}")
    dialect = str(getattr(store, "dialect", "duckdb"))
    latest = latest_migration(dialect)
    try:
        version = store.schema_version()
    except Exception as exc:  # any failure to reach the store: not ready (503), never a 500
        text = exc.message if isinstance(exc, GridmapError) else type(exc).__name__
        log.warning("readiness: the store is unreachable: %s", exc)
        return False, _not_ready("store_unavailable", f"the store is unreachable: {text}")
    doc: dict[str, Any] = {"store": dialect, "schema_version": version, "latest_version": latest}
    if version < latest:
        return False, {
            **_not_ready(
                "migrations_pending",
                f"the schema is at version {version}, this gridmap needs {latest}: "
                "run `gridmap init`",
            ),
            **doc,
        }
    return True, {"status": "ready", **doc}


def _not_ready(code: str, description: str) -> dict[str, Any]:
    body = error_body(code, description, 503)
    if code == "migrations_pending":
        body["description_zh"] = "数据库结构需要升级：请运行 gridmap init"
    return {"status": "not_ready", **body}


@router.get("/healthz", include_in_schema=False)
def healthz() -> JSONResponse:
    """The process is up and answers (liveness): always 200."""
    return JSONResponse({"status": "ok"}, headers=_NO_STORE)


@router.get("/readyz", include_in_schema=False)
def readyz(request: Request) -> JSONResponse:
    """The store is reachable and its migrations current (readiness): 200, else 503."""
    ok, doc = readiness(request.app.state)
    headers = dict(_NO_STORE) if ok else {**_NO_STORE, "Retry-After": "5"}
    return JSONResponse(doc, status_code=200 if ok else 503, headers=headers)


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """Prometheus metrics (text exposition format)."""
    collected: Metrics = request.app.state.metrics
    return Response(collected.render(), media_type=CONTENT_TYPE, headers=_NO_STORE)
