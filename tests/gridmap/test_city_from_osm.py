"""A city from its own data, with no hand edits: import → codes → grids → KPIs (issue 19).

The data is a real OSM extract gridmap does not ship: a corner of Ulm
(osmnx's test input, from Debian's python-osmnx-doc; see ``tests/gridmap/ulm.py``),
with two SYNTHETIC administrative boundaries added (a town over all of it, a
community over its western part only). Events are SYNTHETIC (seeded, on the
real streets). Everything runs through the ``gridmap`` command line, on the
embedded store and on a real PostGIS.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from typer.testing import CliRunner

from gridmap.cli import app
from gridmap.demo.job import seed_events
from gridmap.storage import Store, open_store
from tests.gridmap.ulm import ULM_BUILDINGS, ulm_pbf

runner = CliRunner()


def gm(*args: str) -> str:
    res = runner.invoke(app, list(args))
    assert res.exit_code == 0, res.output
    return res.output


def one_grid_each(store: Store) -> None:
    """Every building lies in exactly one grid in force, the one its grid_code names."""
    buildings = store.read("buildings")
    grids = store.read("grids", where={"valid_to": None})
    assert isinstance(buildings, gpd.GeoDataFrame) and isinstance(grids, gpd.GeoDataFrame)
    rep = np.asarray(buildings.geometry.representative_point().values)
    polys = np.asarray(grids.geometry.values)[:, None]
    inside = shapely.contains_properly(polys, rep[None, :])  # interiors: at most one grid
    touch = shapely.intersects(polys, rep[None, :])  # a point on a shared edge: either
    assert (inside.sum(axis=0) <= 1).all() and (touch.sum(axis=0) >= 1).all()
    codes = grids["code"].to_numpy()
    for j, code in enumerate(buildings["grid_code"]):
        assert code in set(codes[touch[:, j]]), (j, code)
    assert buildings["grid_code"].notna().all()


@pytest.mark.timeout(600)
def test_city_from_its_own_extract(store_url: str, tmp_path: Path) -> None:
    pbf = ulm_pbf(tmp_path, boundaries=True)
    db = ["--database-url", store_url]

    out = gm("import", "osm", str(pbf), "--town-prefix", "370285001", *db)
    assert "370285001001" in out and "合成社区" in out
    assert "outside every community 不在任何社区: 19" in out  # the eastern buildings

    listed = gm("units", "list", *db)
    assert "370285001 " in listed.replace("│", " ") and "370285001001" in listed
    assert "osm-relation" not in listed

    out = gm("grids", "generate", "--orphans", "community", *db)
    assert "orphans 归属: 19 buildings" in out and "370285001002" in out
    assert "outside every community 不在任何社区: 0" in out
    assert "in no grid 不在任何网格: 0" in out

    store = open_store(store_url)
    try:
        units = store.read("admin_units").sort_values("code")
        assert units["code"].tolist() == ["370285001", "370285001001", "370285001002"]
        assert units["parent_code"].tolist()[1:] == ["370285001", "370285001"]
        assert units["name"].iloc[2] == "未划分区域"
        assert store.count("buildings") == ULM_BUILDINGS
        one_grid_each(store)
        n = seed_events(store, n=40, seed=19)  # synthetic events on the real streets
        graded = store.read("events")["grid_code"].notna().sum()
    finally:
        store.close()
    assert n == 40

    rows = json.loads(gm("kpis", "--by", "community", "--format", "json", *db))
    by = {r["community"]: r for r in rows}
    assert set(by) <= {"370285001001", "370285001002", None}
    assert sum(r["reported"] for k, r in by.items() if k) == graded > 0

    # importing the same extract again adds nothing and keeps the codes
    out = gm("import", "osm", str(pbf), "--town-prefix", "370285001", *db)
    store = open_store(store_url)
    try:
        assert store.count("admin_units") == 3 and store.count("buildings") == ULM_BUILDINGS
    finally:
        store.close()


@pytest.mark.timeout(600)
def test_extract_without_boundaries_gets_prefixed_codes(tmp_path: Path) -> None:
    pbf = ulm_pbf(tmp_path)
    url = f"duckdb:///{tmp_path / 'g.duckdb'}"
    out = gm("import", "osm", str(pbf), "--town-prefix", "370285002", "--database-url", url)
    assert "370285002001" in out and "outside every community 不在任何社区: 0" in out
    out = gm("grids", "generate", "--database-url", url)
    assert "in no grid 不在任何网格: 0" in out
    store = open_store(url)
    try:
        assert store.read("grids")["code"].tolist() == ["370285002001001"]
        one_grid_each(store)
    finally:
        store.close()
    bad = runner.invoke(
        app, ["import", "osm", str(pbf), "--town-prefix", "3702", "--database-url", url]
    )
    assert bad.exit_code == 1 and "--town-prefix" in bad.output


@pytest.mark.timeout(600)
def test_orphans_into_the_nearest_community(tmp_path: Path) -> None:
    pbf = ulm_pbf(tmp_path, boundaries=True)
    url = f"duckdb:///{tmp_path / 'g.duckdb'}"
    gm("import", "osm", str(pbf), "--town-prefix", "370285001", "--database-url", url)
    out = gm("grids", "generate", "--orphans", "assign", "--database-url", url)
    assert "orphans 归属: 19 buildings" in out and "→ 370285001001" in out
    assert "outside every community 不在任何社区: 0" in out
    store = open_store(url)
    try:
        assert store.count("admin_units") == 2
        one_grid_each(store)
    finally:
        store.close()
