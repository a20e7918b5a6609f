"""schemathesis over /api: every documented operation, once per role, no 5xx, no leak.

A client nobody here wrote, driven by the OpenAPI document itself. The app runs
over an embedded store holding the real Helsinki demo world (synthetic events)
with one demo user per role (``gridmap.security.auth.demo_users``: the same code as
``gridmap demo``). Every operation is exercised as a city admin, a town
coordinator, community staff, a grid worker, a viewer, an external system (by
API key) and anonymously. Each answer must not be a server error, must match
the documented response schema, and the grid worker's answers must carry no
grid or area code outside the worker's grid.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from api.main import create_app
from api.settings import Settings
from gridmap.common.settings import MediaSettings, SecuritySettings, StoreSettings
from gridmap.demo.job import run_demo
from gridmap.security.auth import demo_users, get_user, issue_token
from gridmap.storage import open_store

_DIR = Path(__import__("tempfile").mkdtemp(prefix="gridmap-st-"))
_STORE = open_store(f"duckdb:///{_DIR / 'st.duckdb'}", migrate=True)
run_demo(_STORE, events=60)
_APP = create_app(
    Settings(
        store=StoreSettings(database_url=_STORE.url), media=MediaSettings(media_dir=_DIR / "media")
    ),
    store=_STORE,
)
_GRID = str(_STORE.read("grids", limit=1)["code"].iloc[0])
_CREDS = demo_users(_STORE, grid_code=_GRID, password="schemathesis password")
_CFG = SecuritySettings().token_config()


def _bearer(name: str) -> dict[str, str]:
    user = get_user(_STORE, name)
    assert user is not None
    return {"Authorization": f"Bearer {issue_token(user, _CFG)}"}


HEADERS: dict[str, dict[str, str]] = {
    "city_admin": _bearer("demo_admin"),
    "town_coordinator": _bearer("demo_town"),
    "community_staff": _bearer("demo_community"),
    "grid_worker": _bearer("demo_worker"),
    "viewer": _bearer("demo_viewer"),
    "external_system": {"X-API-Key": _CREDS.api_key},
    "anonymous": {},
}
_AUTH = {"authorization", "x-api-key"}

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    schema = schemathesis.openapi.from_asgi("/api", _APP)
# The schema's own examples and one generated case per operation and role; the
# coverage phase (dozens of boundary cases per operation) would take minutes
# for 57 operations × 7 roles.
schema.config.phases.update(phases=["examples", "fuzzing"])


def outside_codes(doc: Any, grid: str) -> list[str]:
    """Grid and area codes in *doc* that lie outside *grid* (ancestors of it are fine).

    Examples
    --------
    >>> outside_codes({"features": [{"properties": {"grid_code": "990100001001002"}}]},
    ...               "990100001001003")
    ['990100001001002']
    >>> outside_codes({"code": "990100001", "grid_code": None}, "990100001001003")
    []
    """
    found: list[str] = []
    if isinstance(doc, dict):
        for key, value in doc.items():
            if key in ("grid_code", "code", "community_code", "town_code") and isinstance(
                value, str
            ):
                if value.isdigit() and not (value.startswith(grid) or grid.startswith(value)):
                    found.append(value)
            else:
                found.extend(outside_codes(value, grid))
    elif isinstance(doc, list):
        for item in doc:
            found.extend(outside_codes(item, grid))
    return found


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("role", list(HEADERS))
@schema.parametrize()
@settings(
    max_examples=3,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_every_operation_per_role(case: schemathesis.Case, role: str) -> None:
    # Generated credentials are replaced by the role's own (none for anonymous).
    case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() not in _AUTH}
    response = case.call(headers=HEADERS[role])
    where = (role, case.method, case.formatted_path, response.status_code)
    assert response.status_code < 500, (*where, response.text[:300])
    case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
    if role == "grid_worker" and response.status_code == 200:
        ctype = response.headers.get("content-type", "")
        if "json" in ctype:
            leaked = outside_codes(json.loads(response.text), _GRID)
            assert not leaked, (*where, sorted(set(leaked))[:10])


def test_grid_worker_reads_stay_in_area() -> None:
    """The leak check on answers that surely carry data: every collection, the event list."""
    from fastapi.testclient import TestClient

    with TestClient(_APP) as client:
        names = [
            c["id"]
            for c in client.get("/collections", headers=HEADERS["grid_worker"]).json()[
                "collections"
            ]
        ]
        assert "grids" in names and "events" in names
        paths = [f"/collections/{n}/items?limit=1000" for n in names]
        paths += ["/events?limit=1000", "/grids/statistics", "/kpis"]
        seen = 0
        for path in paths:
            r = client.get(path, headers=HEADERS["grid_worker"])
            assert r.status_code < 500, (path, r.text[:300])
            if r.status_code == 200:
                doc = r.json()
                leaked = outside_codes(doc, _GRID)
                assert not leaked, (path, sorted(set(leaked))[:10])
                seen += len(doc.get("features", doc.get("events", [])) or [])
        assert seen > 0
