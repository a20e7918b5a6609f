"""The wheel, installed as a city would install it: no checkout, no node_modules.

One slow test (issue 24), one virtual environment, two installs:

1. build the wheel once from the sources (the map assets copied from the
   checkout's ``node_modules`` into it), create a fresh venv in a temporary
   folder (no ``node_modules`` anywhere on its path) and ``pip install`` the
   wheel **without extras**, for real: pip resolves the core dependencies
   from its indexes (``PIP_FIND_LINKS`` and the configured indexes; the
   machine's pip cache makes it quick). None of the extras' packages may be
   there. Then ``gridmap init``, ``gridmap import layer`` of real OpenStreetMap
   buildings and walkable roads (pyrosm's bundled ``test.osm.pbf``, written
   as GeoJSON by this test) and of one grid (its statistics are computed on
   import), ``gridmap serve`` answers ``/collections/buildings/items``, and
   ``gridmap patrol plan`` exits 1 naming ``pip install 'gridmap[patrol]'``;
2. ``pip install '<wheel>[all]'`` into the same venv: ``gridmap demo
   --no-serve`` runs on the bundled extract, the patrol plan now succeeds, and
   ``/maps/overview`` loads in Debian's Chromium with no failed request.

The wall time of each step is printed (``-s``) and recorded as test properties.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import warnings
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import geopandas as gpd
import httpx
import pandas as pd
import pyrosm
import pytest
import shapely

from gridmap.storage import open_store
from tests.api.webworld import CHROMIUM_ARGS
from tests.conftest import free_port, wait_for_port
from tests.test_optional_extras import HEAVY

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
#: What the wheel is built from (the rest of the checkout stays out of the copy).
SOURCES = ("gridmap", "layers", "api", "pyproject.toml", "setup.py", "README.md", "package.json")
GRID = "990100001001001"
#: The grid: a block of the town in pyrosm's test extract (about 550 m by 1.1 km).
GRID_BOX = (26.945, 60.525, 26.955, 60.535)


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRIDMAP_", "PYTHON"))}
    env.pop("VIRTUAL_ENV", None)
    env.update(extra)
    return env


def _run(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 900) -> str:
    proc = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert proc.returncode == 0, f"{args}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


class _Clock:
    """Wall time of each step, printed and kept as test properties."""

    def __init__(self, record: Callable[[str, object], None]) -> None:
        self.record = record
        self.started = self.last = time.monotonic()

    def lap(self, step: str) -> None:
        now = time.monotonic()
        print(f"wheel test: {step}: {now - self.last:.1f} s (total {now - self.started:.1f} s)")
        self.record(f"seconds_{step}", round(now - self.last, 1))
        self.last = now


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The gridmap wheel, built once from the checkout's sources."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "--", *SOURCES],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    for rel in filter(None, listed):
        if (ROOT / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, src / rel)
    dist = tmp / "dist"
    # The build copies the map assets from the checkout's node_modules into the wheel.
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(src)],
        cwd=tmp,
        env=_clean_env(GRIDMAP_ASSETS_DIR=str(ROOT / "node_modules")),
    )
    shutil.rmtree(src)
    (built,) = dist.glob("gridmap-*.whl")
    names = zipfile.ZipFile(built).namelist()
    assert "layers/vendor/leaflet/dist/leaflet.js" in names
    assert "api/templates/console/map.html" in names and "api/static/app/app.js" in names
    return built


@pytest.fixture(scope="module")
def osm_files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Real buildings and walkable roads (OpenStreetMap, pyrosm's ``test.osm.pbf``) and a grid."""
    folder = tmp_path_factory.mktemp("osm")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        osm = pyrosm.OSM(str(Path(pyrosm.__file__).parent / "data" / "test.osm.pbf"))
        b = osm.get_buildings()
        r = osm.get_network("walking")
    box = shapely.box(*GRID_BOX)
    b = b[b.intersects(box)]
    gpd.GeoDataFrame(
        {
            "name": b["name"].astype("string"),
            "use": b["building"].astype("string"),
            "floors": pd.to_numeric(b["building:levels"], errors="coerce"),
            "source_id": "way/" + b["id"].astype(str),
        },
        geometry=b.geometry.values,
        crs=4326,
    ).to_file(folder / "buildings.geojson")
    gpd.GeoDataFrame(
        {
            "name": r["name"].astype("string"),
            "class": r["highway"].astype("string"),
            "walkable": True,
            "source_id": "way/" + r["id"].astype(str),
        },
        geometry=r.geometry.values,
        crs=4326,
    ).to_file(folder / "roads.geojson")
    gpd.GeoDataFrame(
        {"code": [GRID], "name": ["演示网格"], "community_code": [GRID[:12]], "source_id": ["g1"]},
        geometry=[box],
        crs=4326,
    ).to_file(folder / "grids.geojson")
    yield folder


def _missing(python: Path) -> list[str]:
    """Which of the heavy packages the venv's python cannot find."""
    code = (
        "import importlib.util, json, sys; "
        "print(json.dumps([m for m in sys.argv[1:] if importlib.util.find_spec(m) is None]))"
    )
    out = subprocess.run(
        [str(python), "-c", code, *HEAVY], capture_output=True, text=True, check=True
    ).stdout
    return list(json.loads(out))


def _serve(gridmap: Path, work: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    server = subprocess.Popen(
        [str(gridmap), "serve", "--port", str(port)],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    wait_for_port("127.0.0.1", port, timeout=120)
    return server, f"http://127.0.0.1:{port}"


def _stop(server: subprocess.Popen[str]) -> str:
    server.terminate()
    log, _ = server.communicate(timeout=60)
    return log


@pytest.mark.browser
def test_wheel_installs_without_extras_then_with_all(
    wheel: Path,
    osm_files: Path,
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    clock = _Clock(record_property)
    env = _clean_env()
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path, env=env)
    python, gridmap = venv / "bin" / "python", venv / "bin" / "gridmap"

    # -- 1. pip install gridmap: no extras ---------------------------------------
    # --no-compile: Python compiles what it imports; byte-compiling every module of
    # the dependencies up front only costs time here.
    pip = [str(python), "-m", "pip", "install", "-q", "--no-compile"]
    _run([*pip, str(wheel)], cwd=tmp_path, env=env)
    clock.lap("install_core")
    assert sorted(_missing(python)) == sorted(HEAVY)  # none of the extras' packages came
    work = tmp_path / "core"
    work.mkdir()
    where = _run(
        [
            str(python),
            "-c",
            "import gridmap, layers.assets as a; print(gridmap.__file__); print(a.assets_dir())",
        ],
        cwd=work,
        env=env,
    ).split()
    assert Path(where[0]).is_relative_to(venv), where  # from the wheel, not the checkout
    assert Path(where[1]) == Path(where[0]).parent.parent / "layers" / "vendor", where
    assert not list(tmp_path.rglob("node_modules"))

    _run([str(gridmap), "init"], cwd=work, env=env)
    for layer in ("buildings", "roads", "grids"):  # grids get their statistics on import
        out = _run(
            [
                str(gridmap),
                "import",
                "layer",
                str(osm_files / f"{layer}.geojson"),
                "--layer",
                layer,
            ],
            cwd=work,
            env=env,
        )
        assert f"imported {layer}.geojson" in out, out
    clock.lap("core_init_and_import")

    # Without the [patrol] extra, planning a route names the extra: exit 1, one line.
    plan = subprocess.run(
        [str(gridmap), "patrol", "plan", "--grid", GRID, "--mode", "streets"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert plan.returncode == 1, plan.stdout + plan.stderr
    assert "pip install 'gridmap[patrol]'" in plan.stdout + plan.stderr, plan.stdout + plan.stderr
    assert "Traceback" not in plan.stdout + plan.stderr

    server, base = _serve(gridmap, work, env)
    try:
        with httpx.Client(base_url=base, timeout=60) as http:
            assert http.get("/readyz").json()["status"] == "ready"
            items = http.get("/collections/buildings/items", params={"limit": 5})
            assert items.status_code == 200, items.text
            assert items.json()["numberReturned"] == 5
            kinds = {f["geometry"]["type"] for f in items.json()["features"]}
            assert kinds <= {"Polygon", "MultiPolygon"}, kinds
            grids = http.get("/collections/grids/items").json()["features"]
            assert [g["properties"]["code"] for g in grids] == [GRID]
            assert grids[0]["properties"]["buildings"] > 100  # statistics without scipy
    finally:
        log = _stop(server)
    assert "Traceback" not in log, log[-3000:]
    clock.lap("core_serve")

    # -- 2. the same venv with every extra ---------------------------------------
    _run([*pip, f"{wheel}[all]"], cwd=tmp_path, env=env)
    clock.lap("install_all")
    assert sorted(_missing(python)) == ["pytest_postgresql", "reportlab", "spopt"]  # not in [all]
    demo = tmp_path / "demo"
    demo.mkdir()
    out = _run([str(gridmap), "demo", "--no-serve", "--events", "120"], cwd=demo, env=env)
    assert "synthetic" in out
    assert (demo / "gridmap.duckdb").is_file()
    store = open_store(f"duckdb:///{demo / 'gridmap.duckdb'}", read_only=True)
    try:
        grid = str(sorted(store.read("grids")["code"])[0])
    finally:
        store.close()
    clock.lap("all_demo")
    out = _run(
        [str(gridmap), "patrol", "plan", "--grid", grid, "--mode", "streets"], cwd=demo, env=env
    )
    assert f"route {grid} (streets)" in out, out

    server, base = _serve(gridmap, demo, env)
    try:
        with httpx.Client(base_url=base, timeout=60) as http:
            assert http.get("/readyz").json()["status"] == "ready"
            items = http.get("/collections/buildings/items", params={"limit": 5})
            assert items.status_code == 200 and items.json()["numberReturned"] == 5
        failed, errors, drawn = _visit(f"{base}/maps/overview", base)
    finally:
        log = _stop(server)
    assert failed == [], (failed, log[-3000:])
    assert errors == [], errors
    assert drawn > 100
    clock.lap("all_serve_and_browser")


def _visit(url: str, base: str) -> tuple[list[str], list[str], int]:
    """Load *url* in Debian Chromium: (failed or refused requests, console errors, drawn)."""
    from playwright.sync_api import sync_playwright

    failed: list[str] = []
    errors: list[str] = []
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 800})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("requestfailed", lambda r: failed.append(f"{r.url} {r.failure}"))
        page.on(
            "response", lambda r: failed.append(f"{r.url} {r.status}") if r.status >= 400 else None
        )

        def guard(route, request):  # type: ignore[no-untyped-def]
            if request.url.startswith(("data:", "blob:", base)):
                route.continue_()
            else:
                failed.append(f"{request.url} (outside the server)")
                route.abort()

        page.route("**/*", guard)
        page.goto(url, wait_until="load")
        page.wait_for_selector(".leaflet-container")
        page.wait_for_timeout(1000)
        drawn = int(
            page.evaluate(
                "document.querySelectorAll('.leaflet-overlay-pane path, .leaflet-marker-pane *,"
                " .leaflet-overlay-pane canvas').length"
            )
        )
        page.screenshot(path=str(ARTIFACTS / "wheel-overview.png"))
        browser.close()
    return failed, errors, drawn
