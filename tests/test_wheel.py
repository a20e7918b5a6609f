"""The wheel, installed as a city would install it: no checkout, no node_modules, no extras.

One slow test (issue 24): build the wheel from the sources, install it into a
fresh virtual environment in a temporary folder, run ``gridmap demo --no-serve``
there, then ``gridmap serve`` and load ``/maps/overview`` in Debian's Chromium
with no failed request. The dependencies come from the development environment
(its site-packages is put on the fresh environment's path by a ``.pth`` file:
no internet), gridmap itself only from the wheel (checked by ``gridmap.__file__``).

The commands run with the optional extras' packages made unimportable (each
module set to ``None`` in ``sys.modules``: the import fails exactly as if it were
not installed), as after ``pip install gridmap`` without extras: the demo and
the server still work, and ``gridmap patrol plan`` names the extra to install.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gridmap.extras import MODULE_EXTRA
from gridmap.storage import open_store
from tests.api.webworld import CHROMIUM_ARGS
from tests.conftest import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
#: What the wheel is built from (the rest of the checkout stays out of the copy).
SOURCES = ("gridmap", "layers", "api", "pyproject.toml", "setup.py", "README.md", "package.json")

#: Run the gridmap CLI with every optional extra's modules unimportable.
NO_EXTRAS = """\
import sys
for name in {modules!r}:
    sys.modules[name] = None  # "import name" now fails as if it were not installed
from gridmap.cli import main
sys.argv[0] = "gridmap"
main()
"""


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRIDMAP_", "PYTHON"))}
    env.pop("VIRTUAL_ENV", None)
    env.update(extra)
    return env


def _run(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 900) -> str:
    proc = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert proc.returncode == 0, f"{args}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """(python of a fresh venv holding the gridmap wheel, an empty working folder)."""
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
    (wheel,) = dist.glob("gridmap-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "layers/vendor/leaflet/dist/leaflet.js" in names
    assert "api/templates/console/map.html" in names and "api/static/app/app.js" in names

    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=tmp, env=_clean_env())
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    # Dependencies from the development environment: after the venv's own packages.
    (site / "zz_gridmap_dev_dependencies.pth").write_text(
        sysconfig.get_path("purelib") + "\n", encoding="utf-8"
    )
    _run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        cwd=tmp,
        env=_clean_env(),
    )
    work = tmp / "work"
    work.mkdir()
    yield python, work


def _gridmap(python: Path, work: Path, *args: str) -> list[str]:
    launcher = work.parent / "gridmap_no_extras.py"
    if not launcher.exists():
        launcher.write_text(NO_EXTRAS.format(modules=sorted(MODULE_EXTRA)), encoding="utf-8")
    return [str(python), str(launcher), *args]


@pytest.mark.browser
def test_wheel_installs_and_serves_maps_without_node_modules_or_extras(
    installed: tuple[Path, Path],
) -> None:
    python, work = installed
    env = _clean_env()
    where = _run(
        [
            str(python),
            "-c",
            "import gridmap, layers.assets as a; print(gridmap.__file__); print(a.assets_dir())",
        ],
        cwd=work,
        env=env,
    ).split()
    venv = python.parent.parent
    assert Path(where[0]).is_relative_to(venv), where  # from the wheel, not the checkout
    assert Path(where[1]) == Path(where[0]).parent.parent / "layers" / "vendor", where
    assert not list(work.parent.rglob("node_modules"))

    out = _run(_gridmap(python, work, "demo", "--no-serve", "--events", "120"), cwd=work, env=env)
    assert "synthetic" in out
    assert (work / "gridmap.duckdb").is_file()
    store = open_store(f"duckdb:///{work / 'gridmap.duckdb'}", read_only=True)
    try:
        grid = str(sorted(store.read("grids")["code"])[0])
    finally:
        store.close()

    # Without the [patrol] extra, planning a route names the extra: exit 1, one line.
    plan = subprocess.run(
        _gridmap(python, work, "patrol", "plan", "--grid", grid, "--mode", "streets"),
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert plan.returncode == 1, plan.stdout + plan.stderr
    assert "pip install 'gridmap[patrol]'" in plan.stderr, plan.stderr
    assert "Traceback" not in plan.stderr

    port = free_port()
    server = subprocess.Popen(
        _gridmap(python, work, "serve", "--port", str(port)),
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_port("127.0.0.1", port, timeout=120)
        with httpx.Client(base_url=base, timeout=60) as http:
            assert http.get("/readyz").json()["status"] == "ready"
            items = http.get("/collections/buildings/items", params={"limit": 5})
            assert items.status_code == 200 and items.json()["numberReturned"] == 5
        failed, errors, drawn = _visit(f"{base}/maps/overview", base)
    finally:
        server.terminate()
        log, _ = server.communicate(timeout=60)
    assert failed == [], (failed, log[-3000:])
    assert errors == [], errors
    assert drawn > 100


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
