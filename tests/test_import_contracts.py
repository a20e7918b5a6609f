"""The import contracts of ``pyproject.toml`` catch what they promise, on new modules too.

``tests/test_boundaries.py`` checks that the contracts hold on the tree. Here
the same ``[tool.importlinter]`` section runs over a small tree of the three
packages, with modules no contract names, and must report each kind of
violation: the core importing an edge, an edge importing one above it (directly
or through the core), the core importing the web framework.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: A miniature of the real layout that keeps every contract.
CLEAN = {
    "gridmap/__init__.py": "",
    "gridmap/__main__.py": "from gridmap import cli\n",
    "gridmap/core.py": "import shapely\n",
    "gridmap/storage/__init__.py": "",
    "gridmap/storage/store.py": "import duckdb\nimport psycopg\nimport psycopg_pool\n",
    "gridmap/cli/__init__.py": "import gridmap.core\nfrom gridmap.cli import serve\n",
    "gridmap/cli/serve.py": "import api.main\nimport layers.catalog\n",
    "api/__init__.py": "",
    "api/main.py": "import fastapi\nimport layers.catalog\nimport gridmap.storage\n",
    "api/server.py": "import uvicorn\nimport api.main\n",
    "layers/__init__.py": "",
    "layers/catalog.py": "import folium\nimport gridmap.core\n",
}

#: One new module (or two) per case, and the contracts it breaks.
BROKEN = {
    "core imports api": (
        {"gridmap/newtopic.py": "import api.main\n"},
        ("The core imports no edge",),
    ),
    "core imports the cli": (
        {"gridmap/newtopic/__init__.py": "from gridmap.cli import serve\n"},
        ("The core imports no edge",),
    ),
    "core imports layers": (
        {"gridmap/storage/tiles.py": "import layers.catalog\n"},
        ("The core imports no edge",),
    ),
    "api imports the cli": (
        {"api/routers.py": "import gridmap.cli.serve\n"},
        ("Layers: gridmap.cli",),
    ),
    "layers imports api through the core": (
        {
            "layers/render.py": "import gridmap.bridge\n",
            "gridmap/bridge.py": "import api.main\n",
        },
        ("Layers: gridmap.cli", "The core imports no edge"),
    ),
    "core imports the web framework": (
        {"gridmap/web.py": "import starlette\n"},
        ("The core knows no web framework",),
    ),
    "a driver outside storage": (
        {"layers/tiles.py": "import duckdb\n"},
        ("Only gridmap.storage talks to databases",),
    ),
}


def _importlinter_section() -> str:
    """The ``[tool.importlinter]`` tables of the checkout's ``pyproject.toml``, as written."""
    kept: list[str] = []
    inside = False
    for line in (ROOT / "pyproject.toml").read_text(encoding="utf-8").splitlines():
        if line.startswith("["):
            inside = line.strip("[] ").startswith("tool.importlinter")
        if inside:
            kept.append(line)
    assert any(line.strip() == 'type = "layers"' for line in kept), kept
    return "\n".join(kept) + "\n"


def _lint(tmp: Path, files: dict[str, str]) -> subprocess.CompletedProcess[str]:
    (tmp / "pyproject.toml").write_text(_importlinter_section(), encoding="utf-8")
    for name, text in files.items():
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(tmp)}  # the miniature, not the checkout
    exe = Path(sys.executable).with_name("lint-imports")
    return subprocess.run(
        [str(exe), "--no-cache"], cwd=tmp, env=env, capture_output=True, text=True, check=False
    )


def test_the_miniature_keeps_every_contract(tmp_path: Path) -> None:
    proc = _lint(tmp_path, CLEAN)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout
    # the miniature really is the one analysed (not the installed gridmap)
    analysed = re.search(r"Analyzed (\d+) files", proc.stdout)
    assert analysed is not None and int(analysed[1]) < 2 * len(CLEAN), proc.stdout


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_new_module_breaking_the_layers_is_reported(tmp_path: Path, case: str) -> None:
    extra, contracts = BROKEN[case]
    proc = _lint(tmp_path, {**CLEAN, **extra})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    broken = proc.stdout[proc.stdout.index("Broken contracts") :]
    for contract in contracts:
        assert contract in broken, proc.stdout
    assert f"{len(contracts)} broken" in proc.stdout, proc.stdout
