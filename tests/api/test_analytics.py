"""GET /heatmap and GET /hotspots over the real Helsinki demo grids (events synthetic, seeded).

Both stores (DuckDB and a real PostGIS) serve the counts and the area scoping.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Iterator
from typing import Any

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import pytest
import shapely
from fastapi import FastAPI

from api.main import create_app
from api.routers import analytics
from api.security import get_principal
from api.settings import Settings, get_settings
from gridmap.analytics.hotspots import CLASSES
from gridmap.common.settings import PrivacySettings, StoreSettings
from gridmap.division.bisect import assign_grid_codes
from gridmap.security.access import Principal
from gridmap.storage import Store, open_store
from tests.events_world import World, make_world

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

CATEGORIES = ["safety_hazard", "dispute", "city_management"]


def synthetic_events(world: World, n: int = 700, seed: int = 8) -> gpd.GeoDataFrame:
    """Seeded synthetic events, uniform over the demo grids, tagged with their grid code."""
    rng = np.random.default_rng(seed)
    minx, miny, maxx, maxy = world.grids.total_bounds
    pts = gpd.GeoDataFrame(
        geometry=shapely.points(rng.uniform(minx, maxx, 3 * n), rng.uniform(miny, maxy, 3 * n)),
        crs=4326,
    )
    pts["grid_code"] = assign_grid_codes(pts, world.grids)
    pts = pts[pts["grid_code"].notna()].iloc[:n].reset_index(drop=True)
    m = len(pts)
    start = pd.Timestamp("2026-09-01T00:00:00Z")
    return gpd.GeoDataFrame(
        {
            "category": rng.choice(CATEGORIES, m),
            "status": rng.choice(["reported", "handling", "closed"], m),
            "channel": rng.choice(["patrol", "hotline_12345"], m),
            "grid_code": pts["grid_code"].to_numpy(),
            "reported_at": start + pd.to_timedelta(rng.uniform(0, 60, m), unit="D"),
            "synthetic": True,
            "source": "synthetic",
            "source_id": [f"heat-{i}" for i in range(m)],
        },
        geometry=pts.geometry.values,
        crs=4326,
    )


@pytest.fixture(scope="module")
def empty_store() -> Iterator[Store]:
    """Parameter parsing does not depend on the store: one embedded store serves those tests."""
    s = open_store(":memory:", migrate=True)
    yield s
    s.close()


@pytest.fixture
def world(store: Store) -> tuple[World, gpd.GeoDataFrame]:
    w = make_world(store)
    events = synthetic_events(w)
    store.write("events", events)
    return w, events


def client_for(store: Store, principal: Principal, settings: Settings | None = None) -> TestClient:
    """A client acting as *principal*; *settings* replace the app's through ``get_settings``."""
    app: FastAPI = create_app(Settings(store=StoreSettings(database_url=":memory:")), store=store)
    if not any(getattr(r, "path", None) == "/heatmap" for r in app.routes):
        app.include_router(analytics.router)
    app.dependency_overrides[get_principal] = lambda: principal
    if settings is not None:
        app.dependency_overrides[get_settings] = lambda: settings
    return TestClient(app)


ADMIN = Principal("admin", "city_admin")


def brute_force(events: gpd.GeoDataFrame, resolution: int) -> Counter[str]:
    return Counter(
        h3.latlng_to_cell(p.y, p.x, resolution)
        for p in events.geometry  # lat first
    )


def test_counts_equal_brute_force_on_both_stores(world: tuple[World, gpd.GeoDataFrame]) -> None:
    w, events = world
    with client_for(w.store, ADMIN) as client:
        r = client.get("/heatmap", params={"resolution": 10, "category": "safety_hazard"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/geo+json")
    doc = r.json()
    assert doc["type"] == "FeatureCollection" and doc["protected"] is False
    got = {f["properties"]["h3"]: f["properties"]["count"] for f in doc["features"]}
    assert got == dict(brute_force(events[events["category"] == "safety_hazard"], 10))
    shape = shapely.geometry.shape(doc["features"][0]["geometry"])
    centre = h3.cell_to_latlng(doc["features"][0]["properties"]["h3"])
    assert shape.contains(shapely.Point(centre[1], centre[0]))  # x = longitude


def test_grid_worker_sees_only_their_grids(world: tuple[World, gpd.GeoDataFrame]) -> None:
    w, events = world
    mine = w.code(3)
    worker = Principal("wang", "grid_worker", (mine,))
    params = {"resolution": 11, "category": "city_management"}
    with client_for(w.store, worker) as client:
        doc = client.get("/heatmap", params=params).json()
        other = client.get("/heatmap", params={**params, "area": w.code(4)}).json()
        hs = client.get("/hotspots", params=params).json()
    expected = events[(events["grid_code"] == mine) & (events["category"] == "city_management")]
    got = {f["properties"]["h3"]: f["properties"]["count"] for f in doc["features"]}
    assert got == dict(brute_force(expected, 11))
    assert sum(got.values()) == len(expected) > 0
    assert other["features"] == []
    assert sum(f["properties"]["count"] or 0 for f in hs["features"]) == len(expected)


@pytest.mark.parametrize(
    ("principal", "category"),
    [
        (Principal("v", "viewer"), "safety_hazard"),
        (Principal("x", "external_system"), None),
        (ADMIN, "dispute"),
        (ADMIN, None),
    ],
)
def test_small_cells_are_hidden(
    world: tuple[World, gpd.GeoDataFrame], principal: Principal, category: str | None
) -> None:
    w, events = world
    params: dict[str, Any] = {"resolution": 11}
    if category:
        params["category"] = category
    with client_for(w.store, principal) as client:
        doc = client.get("/heatmap", params=params).json()
        hs = client.get("/hotspots", params=params).json()
    counts = [f["properties"]["count"] for f in doc["features"]]
    assert doc["protected"] is True and counts and min(counts) >= 3
    assert all(
        f["properties"]["open"] is None or f["properties"]["open"] >= 3 for f in doc["features"]
    )
    selected = events if category is None else events[events["category"] == category]
    raw = brute_force(selected, 11)
    assert sum(1 for c in raw.values() if c < 3) > 0  # there were small cells to hide
    assert any(f["properties"]["merged"] for f in doc["features"])
    shown = [f["properties"]["count"] for f in hs["features"]]
    assert all(c is None or c == 0 or c >= 3 for c in shown)
    assert any(f["properties"]["suppressed"] for f in hs["features"])


def test_min_count_is_configurable(world: tuple[World, gpd.GeoDataFrame]) -> None:
    w, _ = world
    six = Settings(
        store=StoreSettings(database_url=":memory:"), privacy=PrivacySettings(min_count=6)
    )
    with client_for(w.store, ADMIN, six) as client:
        doc = client.get("/heatmap", params={"resolution": 10}).json()
    assert min(f["properties"]["count"] for f in doc["features"]) >= 6


def test_min_count_override_takes_effect(
    world: tuple[World, gpd.GeoDataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same app, before and after app.dependency_overrides[get_settings]; and the
    # variable GRIDMAP_PRIVACY_MIN_COUNT reaching the heat map through the settings tree.
    w, _ = world
    client = client_for(w.store, ADMIN)
    with client:
        params = {"resolution": 10}
        default = [
            f["properties"]["count"]
            for f in client.get("/heatmap", params=params).json()["features"]
        ]
        assert 0 < min(default) < 6  # counts the override will hide
        app: Any = client.app
        tree = Settings(
            store=StoreSettings(database_url=":memory:"), privacy=PrivacySettings(min_count=6)
        )
        app.dependency_overrides[get_settings] = lambda: tree
        hidden = [
            f["properties"]["count"]
            for f in client.get("/heatmap", params=params).json()["features"]
        ]
        assert min(hidden) >= 6
    monkeypatch.setenv("GRIDMAP_PRIVACY_MIN_COUNT", "6")
    with client_for(w.store, ADMIN) as from_env:
        doc = from_env.get("/heatmap", params={"resolution": 10}).json()
    assert min(f["properties"]["count"] for f in doc["features"]) >= 6


def test_rates_and_filters(world: tuple[World, gpd.GeoDataFrame]) -> None:
    w, events = world
    params = {
        "resolution": 9,
        "category": "safety_hazard",
        "status": "closed",
        "channel": "patrol",
        "from": "2026-09-10T00:00:00+08:00",
        "to": "2026-10-10T00:00:00Z",
        "rate": "per_1000_residents",
    }
    with client_for(w.store, ADMIN) as client:
        doc = client.get("/heatmap", params=params).json()
    at = pd.to_datetime(events["reported_at"], utc=True)
    sel = events[
        (events["category"] == "safety_hazard")
        & (events["status"] == "closed")
        & (events["channel"] == "patrol")
        & (at >= pd.Timestamp("2026-09-10T00:00:00+08:00"))
        & (at < pd.Timestamp("2026-10-10T00:00:00Z"))
    ]
    assert sum(f["properties"]["count"] for f in doc["features"]) == len(sel)
    assert all("rate" in f["properties"] for f in doc["features"])


def test_hotspots_answer_classes(world: tuple[World, gpd.GeoDataFrame]) -> None:
    w, _ = world
    with client_for(w.store, ADMIN) as client:
        r = client.get("/hotspots", params={"resolution": 10, "windows": 4})
    assert r.status_code == 200, r.text
    props = [f["properties"] for f in r.json()["features"]]
    assert props and {p["class"] for p in props} <= set(CLASSES)
    assert {"h3", "count", "class", "pattern"} <= set(props[0])


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"resolution": "6"}, "resolution"),
        ({"resolution": "12"}, "resolution"),
        ({"resolution": "x"}, "resolution"),
        ({"resolution": "9.0"}, "resolution"),
        ({}, "resolution"),
        ({"resolution": "9", "from": "2026-10-02T00:00:00Z", "to": "2026-10-01T00:00:00Z"}, "from"),
        ({"resolution": "9", "from": "2026-10-01T00:00:00"}, "from"),
        ({"resolution": "9", "to": "yesterday"}, "to"),
        ({"resolution": "9", "category": "nonsense"}, "category"),
        ({"resolution": "9", "status": "<script>"}, "status"),
        ({"resolution": "9", "channel": "pigeon"}, "channel"),
        ({"resolution": "9", "area": "12ab"}, "area"),
        ({"resolution": "9", "bbox": "1,2,3"}, "bbox"),
        ({"resolution": "9", "bbox": "3,2,1,4"}, "bbox"),
        ({"resolution": "9", "bbox": "a,b,c,d"}, "bbox"),
        ({"resolution": "9", "bbox": "0,0,1,1e400"}, "bbox"),
        ({"resolution": "9", "limit": "5"}, "limit"),
    ],
)
@pytest.mark.parametrize("path", ["/heatmap", "/hotspots"])
def test_bad_input_is_a_400_naming_the_parameter(
    empty_store: Store, path: str, params: dict[str, str], name: str
) -> None:
    with client_for(empty_store, ADMIN) as client:
        r = client.get(path, params=params)
    assert r.status_code == 400, r.text
    assert name in r.json()["description"]


def test_bad_rate_and_windows(empty_store: Store) -> None:
    with client_for(empty_store, ADMIN) as client:
        r1 = client.get("/heatmap", params={"resolution": 9, "rate": "per_cat"})
        r2 = client.get("/hotspots", params={"resolution": 9, "windows": 1})
    assert r1.status_code == 400 and "rate" in r1.json()["description"]
    assert r2.status_code == 400 and "windows" in r2.json()["description"]


def _box_at(lon: float, lat: float, half: float = 0.00004) -> shapely.Polygon:
    return shapely.box(lon - half, lat - half, lon + half, lat + half)


@pytest.mark.parametrize(
    ("rate", "expected"),
    [
        # cell A: 5 events, 600 + 400 residents, 250 + 150 households
        # cell B: 3 events, 2,000 residents, no households; cell C: 2 events, no buildings
        ("per_1000_residents", {"A": 5.0, "B": 1.5, "C": None}),
        ("per_1000_households", {"A": 12.5, "B": None, "C": None}),
    ],
)
def test_rates_equal_hand_computed_values(
    store: Store, rate: str, expected: dict[str, float | None]
) -> None:
    w = make_world(store)
    places = {"A": w.point(3), "B": w.point(5), "C": w.point(7)}
    codes = {"A": w.code(3), "B": w.code(5), "C": w.code(7)}
    cells = {k: h3.latlng_to_cell(lat, lon, 9) for k, (lon, lat) in places.items()}
    assert len(set(cells.values())) == 3
    (ax, ay), (bx, by) = places["A"], places["B"]
    buildings = gpd.GeoDataFrame(
        {
            "residents": [600, 400, 2000],
            "households": [250, 150, 0],
            "grid_code": [codes["A"], codes["A"], codes["B"]],
            "source": "synthetic",
            "source_id": ["rate-a1", "rate-a2", "rate-b1"],
        },
        geometry=[_box_at(ax + 0.0002, ay), _box_at(ax - 0.0002, ay), _box_at(bx, by)],
        crs=4326,
    )
    for k in ("A", "B"):  # every building's inside point lies in its cell
        rep = buildings[buildings["grid_code"] == codes[k]].geometry.representative_point()
        assert {h3.latlng_to_cell(p.y, p.x, 9) for p in rep} == {cells[k]}
    store.write("buildings", buildings)
    n = {"A": 5, "B": 3, "C": 2}
    rows = [(k, i) for k in n for i in range(n[k])]
    events = gpd.GeoDataFrame(
        {
            "category": "safety_hazard",
            "status": "reported",
            "grid_code": [codes[k] for k, _ in rows],
            "reported_at": pd.Timestamp("2026-10-01T08:00:00Z"),
            "synthetic": True,
            "source": "synthetic",
            "source_id": [f"rate-{k}-{i}" for k, i in rows],
        },
        geometry=[shapely.Point(places[k]) for k, _ in rows],
        crs=4326,
    )
    store.write("events", events)
    with client_for(store, ADMIN) as client:
        doc = client.get(
            "/heatmap", params={"resolution": 9, "category": "safety_hazard", "rate": rate}
        ).json()
    got = {f["properties"]["h3"]: f["properties"] for f in doc["features"]}
    assert doc["protected"] is False and set(got) == set(cells.values())
    for k, cell in cells.items():
        assert got[cell]["count"] == n[k]
        if expected[k] is None:
            assert got[cell]["rate"] is None, k
        else:
            assert got[cell]["rate"] == pytest.approx(expected[k]), k


def test_heatmap_request_benchmark_runs_at_tiny_size(tmp_path: Any) -> None:
    """Smoke test of benchmarks/bench_heatmap_request.py's timed part (DuckDB, 300 events)."""
    import importlib.util
    from pathlib import Path

    from tests.events_world import demo_layers

    path = Path(__file__).parents[2] / "benchmarks" / "bench_heatmap_request.py"
    spec = importlib.util.spec_from_file_location("bench_heatmap_request", path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    layers = {k: demo_layers()[k].drop(columns="id") for k in ("admin_units", "grids")}
    scratch = open_store(":memory:", migrate=True)
    events = synthetic_events(make_world(scratch), n=300)
    scratch.close()
    town = str(events["grid_code"].iloc[0])[:9]
    lines: list[str] = []
    url = f"duckdb:///{tmp_path / 'bench.duckdb'}"
    bench.run_store(
        "DuckDB", url, layers, events, {"resolution": 9, "area": town}, 3, True, lines.append
    )
    assert "pushed down" in lines[0] and "p50" in lines[0]
    assert lines[1].endswith("same cells and counts: True")
    assert bench.percentiles([0.001, 0.002, 0.003]) == (2.0, 3.0)
