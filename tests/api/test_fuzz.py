"""Issue 25 fuzz suite: every route, every role (anonymous too), both stores, the red-team corpus.

The operations come from the service's own OpenAPI document (``/api``). Two
passes run per store (the embedded DuckDB file and the real PostGIS server)
and per role (city admin, town coordinator, community staff, grid worker,
viewer, external system by API key, anonymous):

* the corpus sweep: every query and path parameter of every operation gets
  values from the issue's corpus (year 0 and negative years, a lone surrogate
  as raw ``%ED%A0%80``, integers of 5,000 digits, NUL, bboxes of ±1e30, the
  ``%_`` LIKE pair 2,000 times, trailing-space and full-width login names…),
  rotated over the roles so that each role sends three corpus values per
  parameter and the seven roles together send every value to every
  parameter; every write operation gets the raw JSON bodies of the corpus
  (lone surrogates, huge integers, year 0, NUL, ±1e30 coordinates,
  10,000-deep nesting) and the login forms the corpus names;
* a Hypothesis pass: schemathesis draws requests for operations chosen by
  Hypothesis from the document, and Hypothesis swaps one of their
  parameters for a corpus value (explicit examples pin the worst ones).

Every answer must be below 500. The world is the real Helsinki demo extract
with SYNTHETIC events (``gridmap.demo.job.run_demo``) and one demo user per role.
"""

from __future__ import annotations

import re
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.main import create_app
from api.settings import Settings
from gridmap.common.settings import MediaSettings, SecuritySettings, StoreSettings
from gridmap.demo.job import run_demo
from gridmap.security.auth import demo_users, get_user, issue_token
from gridmap.storage import Store, open_store
from tests.conftest import fresh_pg_url

ROLES = (
    "city_admin",
    "town_coordinator",
    "community_staff",
    "grid_worker",
    "viewer",
    "external_system",
    "anonymous",
)
_USERS = {
    "city_admin": "demo_admin",
    "town_coordinator": "demo_town",
    "community_staff": "demo_community",
    "grid_worker": "demo_worker",
    "viewer": "demo_viewer",
}
BIG = "7" * 5000  # more digits than Python's int() reads by default (4,300)
#: A lone surrogate (U+D800) as raw UTF-8-like bytes: not valid UTF-8, sent unencoded.
SURROGATE_RAW = "%ED%A0%80"
#: The red-team corpus (issue 25) for query and path parameters, before URL quoting.
CORPUS: tuple[str, ...] = (
    "0000-01-01T00:00:00Z",
    "-0001-12-31T00:00:00Z",
    "0000-01-01",
    "\x00",
    "a\x00b",
    BIG,
    "-" + BIG,
    "-1e30,-1e30,1e30,1e30",
    "1e400",
    "NaN",
    f"name LIKE '{'%_' * 2000}'",
    "%_" * 2000,
    "demo_community" + " " * 40,
    "ｄｅｍｏ＿ｃｏｍｍｕｎｉｔｙ",  # full-width
    "9223372036854775808",
    "..",
    "𠮷\u200b\u202e<img src=x onerror=alert(1)>",
    "99999-01-01T00:00:00Z",
    "\ud800",  # sent as SURROGATE_RAW
)
#: Raw JSON bodies of the corpus (the text is sent as it is).
BODIES: tuple[str, ...] = (
    '{"description": "\\ud800", "reporter": "\\ud800", "note": "\\ud800", "name": "\\ud800",'
    ' "category": "city_management", "address": "\\ud800",'
    ' "location": {"lon": 24.94, "lat": 60.17, "crs": "wgs84"}}',
    f'{{"category": "city_management", "description": "d", "urgency": {BIG},'
    f' "location": {{"lon": {BIG}, "lat": 60.17}}, "grid": {BIG}, "limit": {BIG}}}',
    '{"starts_at": "0000-01-01T00:00:00Z", "ends_at": "-0001-01-01T00:00:00Z",'
    ' "reported_at": "0000-01-01T00:00:00Z", "date": "0000-01-01", "name": "x",'
    ' "from": "0000-01-01", "to": "-0001-01-01"}',
    '{"description": "a\\u0000b", "category": "\\u0000", "name": "\\u0000", "grid": "\\u0000",'
    ' "grid_code": "\\u0000", "address": "\\u0000"}',
    '{"points": [[1e30, 1e30], [1e400, 0]], "bbox": [-1e30, -1e30, 1e30, 1e30],'
    ' "crs": "EPSG:4978", "location": {"lon": 1e30, "lat": 1e30}}',
    '"\\ud800"',
    BIG,
    "[" * 10_000 + "]" * 10_000,
    f'{{"grids": ["\\ud800", {BIG}], "community": "\\u0000", "area": "{BIG}"}}',
)
#: Login forms of the corpus (raw, form-encoded).
LOGINS: tuple[str, ...] = (
    "username=demo_community" + "%20" * 40 + "&password=wrong+password+123",
    "username=" + quote("ｄｅｍｏ＿ｃｏｍｍｕｎｉｔｙ") + "&password=wrong+password+123",
    "username=demo%00worker&password=wrong+password+123",
    "username=" + SURROGATE_RAW + "&password=" + SURROGATE_RAW,
    "username=" + "7" * 5000 + "&password=x",
)
_FORMS = {"/auth/token", "/login"}


def _q(value: str) -> str:
    """*value* URL-quoted, a lone surrogate as its raw (invalid UTF-8) escape."""
    return SURROGATE_RAW if value == "\ud800" else quote(value, safe="")


@dataclass
class FuzzWorld:
    """A store with the demo world, the app over it and each role's headers."""

    store: Store
    client: TestClient
    grid: str
    event_id: int
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    ops: list[tuple[str, str, list[dict[str, Any]]]] = field(default_factory=list)

    def defaults(self) -> dict[str, str]:
        """A plausible value for each path parameter (so the corpus reaches the handler)."""
        e = str(self.event_id)
        return {
            "layer": "buildings",
            "item_id": "1",
            "tms": "WebMercatorQuad",
            "z": "14",
            "y": "4742",
            "x": "9327",
            "event_id": e,
            "fmt": "json",
            "service_code": "city_management",
            "request_id": e,
            "name": "demo_worker",
            "grid": self.grid,
        }


def _build(url: str, media: Path) -> Iterator[FuzzWorld]:
    store = open_store(url, migrate=True)
    try:
        run_demo(store, events=40)
        grid = str(store.read("grids", limit=1)["code"].iloc[0])
        creds = demo_users(store, grid_code=grid, password="fuzz corpus password")
        app = create_app(
            Settings(
                store=StoreSettings(database_url=store.url), media=MediaSettings(media_dir=media)
            ),
            store=store,
        )
        cfg = SecuritySettings().token_config()
        headers: dict[str, dict[str, str]] = {"anonymous": {}}
        for role, name in _USERS.items():
            user = get_user(store, name)
            assert user is not None
            headers[role] = {"Authorization": f"Bearer {issue_token(user, cfg)}"}
        headers["external_system"] = {"X-API-Key": creds.api_key}
        event_id = int(store.read("events", limit=1)["id"].iloc[0])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with TestClient(app, raise_server_exceptions=False) as client:
                doc = client.get("/api").json()
                ops = [
                    (method.upper(), path, list(op.get("parameters", [])))
                    for path, methods in doc["paths"].items()
                    for method, op in methods.items()
                    if method in ("get", "post", "put", "patch", "delete")
                ]
                assert len(ops) > 50
                yield FuzzWorld(store, client, grid, event_id, headers, ops)
    finally:
        store.close()


@pytest.fixture(
    scope="module", params=["duckdb", pytest.param("postgis", marks=pytest.mark.postgis)]
)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FuzzWorld]:
    """The demo world with one user per role, once per store."""
    media = tmp_path_factory.mktemp("fuzz-media")
    if request.param == "postgis":
        with fresh_pg_url(request.getfixturevalue("pg_server")) as url:
            yield from _build(url, media)
    else:
        path = tmp_path_factory.mktemp("fuzz") / "fuzz.duckdb"
        yield from _build(f"duckdb:///{path}", media)


def _fill(path: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        path = path.replace("{" + name + "}", value)
    return path


def _rotation(role: str, k: int, n: int = 3) -> list[str]:
    """The *n* corpus values parameter *k* gets from *role* (all roles: every value)."""
    r = ROLES.index(role)
    return [CORPUS[(r * n + j + k) % len(CORPUS)] for j in range(n)]


def _server_errors(world: FuzzWorld, role: str) -> tuple[list[str], Counter[int]]:
    """Send *role*'s share of the corpus to every operation; the answers of 500 and above."""
    c, headers = world.client, world.headers[role]
    defaults = world.defaults()
    bad: list[str] = []
    codes: Counter[int] = Counter()

    def send(method: str, url: str, **kw: Any) -> None:
        r = c.request(method, url, headers={**headers, **kw.pop("headers", {})}, **kw)
        codes[r.status_code] += 1
        if r.status_code >= 500:
            bad.append(f"{role} {method} {url[:160]} -> {r.status_code} {r.text[:160]}")

    k = 0
    for method, path, params in world.ops:
        base = _fill(path, {n: defaults.get(n, "1") for n in _path_names(path)})
        for p in params:
            if p["in"] not in ("query", "path"):
                continue
            k += 1
            for value in _rotation(role, k):
                if p["in"] == "query":
                    url = f"{base}?{quote(p['name'])}={_q(value)}"
                else:
                    url = _fill(path, {**defaults, p["name"]: _q(value)})
                    url = _fill(url, {n: "1" for n in _path_names(url)})
                send(method, url)
        if method in ("POST", "PUT", "PATCH"):
            if path in _FORMS:
                form = {"Content-Type": "application/x-www-form-urlencoded"}
                for body in LOGINS:
                    send(method, base, content=body.encode("latin-1"), headers=form)
                continue
            k += 1
            json_type = {"Content-Type": "application/json", "Idempotency-Key": f"fuzz-{k}"}
            for j in range(3):
                body = BODIES[(ROLES.index(role) * 3 + j + k) % len(BODIES)]
                send(method, base, content=body.encode("utf-8"), headers=json_type)
    return bad, codes


def _path_names(path: str) -> list[str]:
    return re.findall(r"{([^}]+)}", path)


@pytest.mark.parametrize("role", ROLES)
def test_corpus_sweep_has_no_server_error(world: FuzzWorld, role: str) -> None:
    started = time.monotonic()
    bad, codes = _server_errors(world, role)
    sent = sum(codes.values())
    assert sent > 500, sent
    # the corpus reached the handlers: refused as bad input, not only as unauthorised
    assert codes[400] + codes[422] > 100, codes
    if role != "anonymous":
        assert codes[200] > 10, codes
    assert not bad, f"{len(bad)} of {sent} answers were 5xx:\n" + "\n".join(bad[:40])
    # the store still answers at once (no runaway query left behind)
    t0 = time.monotonic()
    assert world.store.count("buildings") > 0
    assert time.monotonic() - t0 < 5, time.monotonic() - started


def test_the_rotation_covers_the_whole_corpus() -> None:
    for k in range(40):
        assert {v for role in ROLES for v in _rotation(role, k)} == set(CORPUS)
    assert len(ROLES) * 3 >= len(CORPUS) and len(ROLES) * 3 >= len(BODIES)


# -- Hypothesis + schemathesis -------------------------------------------------------
_AUTH = {"authorization", "x-api-key", "cookie"}


@pytest.fixture(scope="module")
def schema(world: FuzzWorld) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return schemathesis.openapi.from_asgi("/api", world.client.app)


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("role", ROLES)
def test_generated_requests_with_corpus_values(world: FuzzWorld, schema: Any, role: str) -> None:
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) > 50

    # values a client can put in a URL (the sweep sends the lone surrogate raw)
    values = st.sampled_from([v for v in CORPUS if v != "\ud800"]) | st.text(max_size=20)

    @settings(
        max_examples=25,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data(), value=values)
    def check(data: Any, value: str) -> None:
        op = data.draw(st.sampled_from(operations), label="operation")
        case = data.draw(op.as_strategy(), label="case")
        case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() not in _AUTH}
        if case.query:
            name = data.draw(st.sampled_from(sorted(case.query)), label="corpus into")
            case.query = {**case.query, name: value}
        elif case.path_parameters:
            name = data.draw(st.sampled_from(sorted(case.path_parameters)), label="corpus into")
            case.path_parameters = {**case.path_parameters, name: value}
        response = case.call(headers=world.headers[role])
        assert response.status_code < 500, (
            role,
            case.method,
            case.formatted_path,
            case.query,
            response.status_code,
            response.text[:300],
        )

    check()
