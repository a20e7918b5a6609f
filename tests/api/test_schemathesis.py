"""schemathesis over /api: generated requests for every documented operation, no 5xx.

A client nobody here wrote, driven by the OpenAPI document itself. The app runs
over an embedded store holding the real Helsinki demo world (synthetic events);
requests are anonymous, so protected operations must answer 401, never 500.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from api.main import create_app
from api.settings import Settings
from gridmap.demo import run_demo
from gridmap.storage import open_store

_DIR = Path(__import__("tempfile").mkdtemp(prefix="gridmap-st-"))
_STORE = open_store(f"duckdb:///{_DIR / 'st.duckdb'}", migrate=True)
run_demo(_STORE, events=60)
_APP = create_app(Settings(database_url=_STORE.url, media_dir=_DIR / "media"), store=_STORE)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    schema = schemathesis.openapi.from_asgi("/api", _APP)


@pytest.mark.filterwarnings("ignore")
@schema.parametrize()
@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_server_errors(case: schemathesis.Case) -> None:
    response = case.call()
    assert response.status_code < 500, (case.method, case.formatted_path, response.text[:300])
