"""Fixtures of the security tests: a real Helsinki world per store, users, clients.

The world (admin units, ~23 grids, real OSM buildings and roads, seeded
SYNTHETIC events) is built once per session and store by
:func:`gridmap.demo.job.run_demo`; each module gets a copy of its own (a copied
DuckDB file, a PostGIS database made from it as a template), so modules never
see each other's writes. The API runs in production mode with strong test
secrets, so the default-secret guard is exercised too.
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

import gridmap.security.auth
from api.main import create_app
from api.security import install_security
from api.settings import Settings
from gridmap.common.settings import SecuritySettings
from gridmap.demo.job import run_demo
from gridmap.security.auth import add_user, get_user, issue_api_key, issue_token
from gridmap.security.privacy import Vault
from gridmap.storage import Store, open_store
from gridmap.storage.pgserver import PgServer
from tests.conftest import fresh_pg_url

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

SECRET = "test-secret-OrKNQIC3Dy1NMRq7UT4m6CwxXDfZQh9J8uDww8ZwXTW8nGLG8LiBpCXHBeJghFrK"
DATA_KEY = "test-data-key-0123456789abcdef0123456789abcdef"
PASSWORD = "correct horse battery staple"


def security_settings(**kw: object) -> SecuritySettings:
    base: dict[str, object] = {
        "environment": "production",
        "secret_key": SECRET,
        "data_key": DATA_KEY,
        "login_burst": 3,
        "login_per_minute": 1,
    }
    base.update(kw)
    return SecuritySettings(**base)  # type: ignore[arg-type]


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashes() -> Iterator[None]:
    """Argon2id with test-sized cost (production keeps pwdlib's recommended parameters)."""
    cheap = PasswordHash((Argon2Hasher(time_cost=1, memory_cost=8192, parallelism=1),))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(gridmap.security.auth, "_hasher", cheap)
        mp.setattr(gridmap.security.auth, "_DUMMY_HASH", cheap.hash("dummy password"))
        yield


@dataclass
class World:
    """A store with the demo world, its grid codes and users with tokens."""

    store: Store
    grid_a: str
    grid_b: str
    town: str
    tokens: dict[str, str] = field(default_factory=dict)
    api_key: str = ""

    @property
    def vault(self) -> Vault:
        return Vault.from_secret(DATA_KEY)

    def headers(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}


def _grid_codes(store: Store) -> tuple[str, str]:
    grids = store.read("grids")
    codes = sorted(
        c for c in grids["code"].dropna() if store.count("events", where={"grid_code": c})
    )
    return codes[0], codes[-1]


@contextmanager
def build_world(url: str) -> Iterator[World]:
    """Open *url*, build the demo world and the users; close at the end."""
    store = open_store(url, migrate=True)
    try:
        run_demo(store, events=300)
        a, b = _grid_codes(store)
        w = World(store, a, b, a[:9])
        cfg = security_settings().token_config()
        users = {
            "worker_a": dict(role="grid_worker", areas=[a], can_unmask=True),
            "worker_b": dict(role="grid_worker", areas=[b]),
            "staff_a": dict(role="community_staff", areas=[a[:12]]),
            "coordinator": dict(role="town_coordinator", areas=[w.town]),
            "admin": dict(role="city_admin", areas=[], can_unmask=True),
            "viewer": dict(role="viewer", areas=[]),
            "hotline": dict(role="external_system", areas=[]),
        }
        for name, spec in users.items():
            user = add_user(store, name, password=PASSWORD, **spec)  # type: ignore[arg-type]
            w.tokens[name] = issue_token(user, cfg)
        w.api_key = issue_api_key(store, "hotline")
        yield w
    finally:
        store.close()


@dataclass(frozen=True)
class Pristine:
    """A built world at rest (its store closed): where it lies and what it holds."""

    where: str  # the DuckDB file, or the name of the PostGIS database
    grid_a: str
    grid_b: str
    town: str
    users: tuple[str, ...]
    api_key: str


def _pristine(url: str, where: str) -> Pristine:
    with build_world(url) as w:
        return Pristine(where, w.grid_a, w.grid_b, w.town, tuple(w.tokens), w.api_key)


@contextmanager
def copy_world(pristine: Pristine, url: str) -> Iterator[World]:
    """Open the copy of *pristine* at *url*, with fresh tokens of its users."""
    store = open_store(url, migrate=True)
    try:
        w = World(store, pristine.grid_a, pristine.grid_b, pristine.town)
        cfg = security_settings().token_config()
        for name in pristine.users:
            user = get_user(store, name)
            assert user is not None, name
            w.tokens[name] = issue_token(user, cfg)
        w.api_key = pristine.api_key
        yield w
    finally:
        store.close()


@pytest.fixture(scope="session")
def pristine_duckdb(tmp_path_factory: pytest.TempPathFactory) -> Pristine:
    """The demo world with users in a closed DuckDB file, built once per session."""
    path = tmp_path_factory.mktemp("sec-pristine") / "gridmap.duckdb"
    return _pristine(f"duckdb:///{path}", str(path))


@pytest.fixture(scope="session")
def pristine_pg(pg_server: PgServer) -> Iterator[Pristine]:
    """The demo world with users in a PostGIS database nobody is connected to."""
    with fresh_pg_url(pg_server, "secw_", migrated=True) as url:
        yield _pristine(url, url.rsplit("/", 1)[1])


@contextmanager
def pg_copy(pg_server: PgServer, pristine: Pristine) -> Iterator[World]:
    with fresh_pg_url(pg_server, template=pristine.where) as url, copy_world(pristine, url) as w:
        yield w


@pytest.fixture(
    scope="module", params=["duckdb", pytest.param("postgis", marks=pytest.mark.postgis)]
)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """The demo world with users, once per store: this module's own copy."""
    if request.param == "postgis":
        server = request.getfixturevalue("pg_server")
        with pg_copy(server, request.getfixturevalue("pristine_pg")) as w:
            yield w
    else:
        pristine: Pristine = request.getfixturevalue("pristine_duckdb")
        path = tmp_path_factory.mktemp("sec") / "gridmap.duckdb"
        shutil.copyfile(pristine.where, path)
        wal = Path(pristine.where + ".wal")
        if wal.exists():
            shutil.copyfile(wal, str(path) + ".wal")
        with copy_world(pristine, f"duckdb:///{path}") as w:
            yield w


@pytest.fixture(scope="module")
def pg_world(pg_server: PgServer, pristine_pg: Pristine) -> Iterator[World]:
    """The demo world on PostGIS only (row-level security tests): this module's own copy."""
    with pg_copy(pg_server, pristine_pg) as w:
        yield w


def make_app(store: Store, **kw: object) -> TestClient:
    app = create_app(Settings(), store=store)
    install_security(app, security_settings(**kw))
    return TestClient(app)


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    with make_app(world.store) as c:
        yield c


@pytest.fixture(scope="module")
def registered(world: World, client: TestClient) -> dict[str, int]:
    """One household and two residents in grid A, one of each in grid B (via the API)."""
    ids: dict[str, int] = {}
    for grid, user, people in (
        (
            world.grid_a,
            "worker_a",
            [
                ("张三", "11010519491231002X", "+86 138 1234 1234"),
                ("𠮷田花子", "370285199001011238", "13912345678"),
            ],
        ),
        (world.grid_b, "worker_b", [("李四", "110101800101001", "０５３２-８７６５４３２１")]),
    ):
        r = client.post(
            "/registry/households",
            json={"grid_code": grid, "address": "Mannerheimintie 1"},
            headers=world.headers(user),
        )
        assert r.status_code == 201, r.text
        hid = r.json()["id"]
        ids[f"household_{grid}"] = hid
        for i, (name, idn, phone) in enumerate(people):
            r = client.post(
                "/registry/residents",
                json={"household_id": hid, "name": name, "id_number": idn, "phone": phone},
                headers=world.headers(user),
            )
            assert r.status_code == 201, r.text
            ids[f"resident_{grid}_{i}"] = r.json()["id"]
    return ids
