"""Every bad input of quality.md's "Query parameters" and "IDs" lists gets a clear 4xx.

The cases run in one test per store (DuckDB and PostGIS) to keep the suite
fast; a failure lists every case that went wrong. The test client re-raises
server errors, so a case that reached a 5xx fails loudly.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import Request
from fastapi.testclient import TestClient  # conftest.py imported it first (see there)

from api.errors import STATUS, status_for
from api.main import create_app
from gridmap.common import errors as E
from gridmap.events.errors import (
    IdempotencyKeyReused,
    IllegalTransition,
    MediaTooLarge,
    NotPermitted,
    StaleVersion,
)
from gridmap.security.auth import NotAuthenticated, PermissionDenied
from gridmap.storage import Store

ITEMS = "/collections/buildings/items"
EVENTS = "/collections/events/items"
ONE = "/collections/buildings/items/"

#: (path, status, a fragment the description must contain)
CASES: list[tuple[str, int, str]] = [
    # bbox
    (f"{ITEMS}?bbox=24.9,60.1,25.0", 400, "bbox needs 4"),
    (f"{ITEMS}?bbox=24.9,60.1,25.0,60.2,1", 400, "bbox needs 4"),
    (f"{ITEMS}?bbox=24.9,60.1,0,25.0,60.2,1", 400, "bbox needs 4"),
    (f"{ITEMS}?bbox=1,2,3,4,5,6,7", 400, "bbox needs 4"),
    (f"{ITEMS}?bbox=null", 400, "bbox"),
    (f"{ITEMS}?bbox=", 400, "bbox"),
    (f"{ITEMS}?bbox=,,,", 400, "bbox values must be numbers"),
    (f"{ITEMS}?bbox=25.0,60.1,24.9,60.2", 400, "minimum is greater"),
    (f"{ITEMS}?bbox=24.9,60.2,25.0,60.1", 400, "minimum is greater"),
    (f"{ITEMS}?bbox=nan,60.1,25.0,60.2", 400, "finite"),
    (f"{ITEMS}?bbox=-inf,60.1,25.0,60.2", 400, "finite"),
    (f"{ITEMS}?bbox=1e400,60.1,25.0,60.2", 400, "finite"),
    (f"{ITEMS}?bbox=a,b,c,d", 400, "numbers"),
    (f"{ITEMS}?bbox=0,-90.0000001,1,1", 400, "outside"),
    (f"{ITEMS}?bbox=0,0,181,1", 400, "outside"),
    (f"{ITEMS}?bbox=[24.9,60.1,25.0,60.2]", 400, "numbers"),
    # limit and offset
    (f"{ITEMS}?limit=0", 400, "limit"),
    (f"{ITEMS}?limit=-1", 400, "limit"),
    (f"{ITEMS}?limit=unlimited", 400, "limit"),
    (f"{ITEMS}?limit=1.5", 400, "limit"),
    (f"{ITEMS}?limit=", 400, "limit"),
    (f"{ITEMS}?limit=1e3", 400, "limit"),
    (f"{ITEMS}?offset=-1", 400, "offset"),
    (f"{ITEMS}?offset=abc", 400, "offset"),
    # repeated and unknown parameters
    (f"{ITEMS}?limit=10&limit=20", 400, "'limit' is repeated"),
    (f"{ITEMS}?bbox=0,0,1,1&bbox=0,0,2,2", 400, "'bbox' is repeated"),
    (f"{ITEMS}?foo=bar", 400, "unknown query parameter 'foo'"),
    (f"{ITEMS}?BBOX=0,0,1,1", 400, "unknown query parameter 'BBOX'"),
    (f"{ITEMS}?filter=name%3D%27x%27%20OR%201%3D1", 400, "filter: = needs exactly one property"),
    (f"{ITEMS}?filter=name%3D%27x", 400, "filter syntax error"),
    (f"{ITEMS}?filter=reporter%3D%27x%27", 400, "unknown property 'reporter'"),
    (f"{ITEMS}?filter=floors%3E1&filter-lang=sql", 400, "filter-lang"),
    (f"{ITEMS}?{'q' * 10_000}=1", 400, "unknown query parameter"),
    (f"{ITEMS}?f=xml", 400, "f"),  # (f=html is the HTML view)
    ("/collections?x=1", 400, "unknown query parameter 'x'"),
    ("/conformance?f=xml", 400, "f"),
    ("/?limit=5", 400, "unknown query parameter 'limit'"),
    (f"{ONE}1?bbox=0,0,1,1", 400, "unknown query parameter 'bbox'"),
    # datetime
    (f"{EVENTS}?datetime=2026-11-01T08:00:00", 400, "no time zone"),
    (f"{EVENTS}?datetime=2026-11-01T08:00:00/..", 400, "no time zone"),
    (f"{EVENTS}?datetime=2026-11-01", 400, "date without a time"),
    (f"{EVENTS}?datetime=2026-13-01T00:00:00Z", 400, "not a valid date-time"),
    (f"{EVENTS}?datetime=2026-02-30T00:00:00Z", 400, "not a valid date-time"),
    (f"{EVENTS}?datetime=0000-01-01T00:00:00Z", 400, "not a valid date-time"),
    (f"{EVENTS}?datetime=9999-12-31T23:59:59-01:00", 400, "not a valid date-time"),
    (f"{EVENTS}?datetime=../..", 400, "at least one closed end"),
    (f"{EVENTS}?datetime=/", 400, "at least one closed end"),
    (f"{EVENTS}?datetime=a/b/c", 400, "more than one"),
    (f"{EVENTS}?datetime=2026-11-02T00:00:00Z/2026-11-01T00:00:00Z", 400, "ends before"),
    (f"{EVENTS}?datetime=yesterday", 400, "RFC 3339"),
    (f"{EVENTS}?datetime=1730000000", 400, "RFC 3339"),
    (f"{ITEMS}?datetime=2026-11-01T00:00:00Z", 400, "no time column"),
    # ids
    (f"{ONE}%2E%2E", 404, "positive integers"),
    (f"{ONE}%00", 404, "positive integers"),
    (f"{ONE}{2**63}", 404, "positive integers"),
    (f"{ONE}{2**64 + 1}", 404, "positive integers"),
    (f"{ONE}{2**63 - 1}", 404, "not found"),
    (f"{ONE}0", 404, "positive integers"),
    (f"{ONE}-1", 404, "positive integers"),
    (f"{ONE}01", 404, "positive integers"),
    (f"{ONE}1.0", 404, "positive integers"),
    (f"{ONE}1e3", 404, "positive integers"),
    (f"{ONE}%EF%BC%91", 404, "positive integers"),  # full-width 1
    (f"{ONE}%FF%FE", 404, "positive integers"),  # invalid UTF-8
    (f"{ONE}123e4567-e89b-12d3-a456-42661417400Z", 404, "positive integers"),
    (f"{ONE}{'9' * 10_240}", 404, "positive integers"),
    (f"{ONE}1%20OR%201=1", 404, "positive integers"),
    (ONE, 404, "no resource"),
    (f"{ONE}%2F", 404, "no resource"),
    ("/collections/buildings/items/1/extra", 404, "no resource"),
]


def _check(client: TestClient, path: str, status: int, fragment: str) -> str | None:
    r = client.get(path)
    if r.status_code != status:
        return f"{path[:80]}: {r.status_code} (wanted {status}) {r.text[:200]}"
    if not r.headers["content-type"].startswith("application/json"):
        return f"{path[:80]}: content-type {r.headers['content-type']}"
    body = r.json()
    if set(body) != {"code", "description", "description_zh"} or not body["description_zh"]:
        return f"{path[:80]}: body {body}"
    if fragment not in body["description"] or len(body["description"]) > 600:
        return f"{path[:80]}: description {body['description'][:200]!r} lacks {fragment!r}"
    return None


def test_bad_inputs_get_a_clear_4xx(client: TestClient) -> None:
    failures = [msg for case in CASES if (msg := _check(client, *case)) is not None]
    assert not failures, "\n".join(failures)


def test_over_limit_and_odd_methods(filled: Store, make_app: Any) -> None:
    app = make_app(filled, max_body_bytes=1000)

    @app.post("/_echo")
    async def echo(request: Request) -> dict[str, int]:  # reads the body (chunked upload)
        return {"size": len(await request.body())}

    with TestClient(app) as c:
        r = c.post("/collections", content=b"x" * 2000)
        assert r.status_code == 413 and r.json()["code"] == "payload_too_large"
        r = c.post("/_echo", content=iter([b"x" * 600, b"y" * 600]))
        assert r.status_code == 413, r.text
        assert c.post("/_echo", content=b"x" * 10).json() == {"size": 10}
        r = c.post("/collections", content=b"{}")
        assert r.status_code == 405 and r.json()["code"] == "method_not_allowed"
        r = c.delete("/collections/buildings/items/1")
        assert r.status_code == 405


def test_cors_only_when_configured(filled: Store, make_app: Any) -> None:
    origin = {"Origin": "https://map.example.org"}
    with TestClient(make_app(filled)) as c:
        assert "access-control-allow-origin" not in c.get("/", headers=origin).headers
    app = make_app(filled, cors_origins=["https://map.example.org"])
    with TestClient(app) as c:
        r = c.get("/", headers=origin)
        assert r.headers["access-control-allow-origin"] == "https://map.example.org"


class _BrokenStore:
    """A store whose every call fails as a broken database would."""

    url = "postgresql://gridmap:s3cret@db/gridmap"
    dialect = "postgis"

    def __getattr__(self, name: str) -> Any:
        def fail(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError(f"connection to {self.url} failed: password s3cret rejected")

        return fail


def test_unexpected_errors_are_500_without_details(make_app: Any) -> None:
    app = make_app(_BrokenStore())
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/collections/buildings/items")
    assert r.status_code == 500
    assert r.json() == {
        "code": "server_error",
        "description": "internal error",
        "description_zh": "服务器内部错误",
    }
    assert "s3cret" not in r.text


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (E.BadInput("x"), 400),
        (E.BadGeometry("x"), 400),
        (E.UnsupportedFormat("x"), 415),
        (E.OutsideJurisdiction("x"), 422),
        (E.UnknownLayer("x"), 404),
        (E.NotFound("x"), 404),
        (E.ImportFailed("x"), 409),
        (NotAuthenticated("x"), 401),
        (PermissionDenied("x"), 403),
        (NotPermitted("x"), 403),
        (IllegalTransition("x"), 409),
        (StaleVersion("x", current=2), 412),
        (IdempotencyKeyReused("x"), 422),
        (MediaTooLarge("x"), 413),
        (E.GridmapError("x"), 500),
    ],
)
def test_one_table_maps_domain_errors(error: E.GridmapError, status: int) -> None:
    assert status_for(error) == status
    assert all(issubclass(cls, E.GridmapError) for cls in STATUS)


def test_factory_opens_and_closes_the_configured_store(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``uvicorn --factory api.main:create_app``: settings from GRIDMAP_*, store from lifespan."""
    monkeypatch.setenv("GRIDMAP_DATABASE_URL", f"duckdb:///{tmp_path / 'served.duckdb'}")
    monkeypatch.setenv("GRIDMAP_DEFAULT_LIMIT", "7")
    app = create_app()
    with TestClient(app) as c:
        assert c.get("/collections/buildings/items").json()["numberMatched"] == 0
        store = app.state.store
        assert store.url.endswith("served.duckdb") and store.schema_version() >= 2
        api = c.get("/api").json()
        params = api["paths"]["/collections/{layer}/items"]["get"]["parameters"]
        assert next(p for p in params if p["name"] == "limit")["schema"]["default"] == 7
    with pytest.raises(Exception, match=r"(?i)closed"):  # closed at shutdown
        store.count("buildings")
