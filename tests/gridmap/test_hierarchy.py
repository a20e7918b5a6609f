"""Codes and hierarchy (issue 19 item 1) on both stores: set-code, rename, set-parent, close,
code tables and boundary re-imports.

The world is built from a real OSM extract gridmap does not ship (a corner of
Ulm, see ``tests/gridmap/ulm.py``) with SYNTHETIC boundaries, grids divided by
gridmap, and SYNTHETIC events, users, households and residents.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from typer.testing import CliRunner

from gridmap.cli import app
from gridmap.common.errors import BadInput, NotFound
from gridmap.demo.job import seed_events
from gridmap.division.coverage import place_orphans
from gridmap.division.service import generate_grids
from gridmap.io.importer import import_layer, import_osm
from gridmap.population.registry import Person, register_household, register_resident
from gridmap.security.access import SYSTEM
from gridmap.security.auth import add_user
from gridmap.security.privacy import Vault
from gridmap.storage import Store, open_store
from gridmap.units import hierarchy
from gridmap.units.hierarchy import (
    CodeCollision,
    close_unit,
    import_code_table,
    list_units,
    rename_unit,
    set_code,
    set_parent,
)
from gridmap.units.workers import assign_grids
from tests.gridmap.ulm import ulm_pbf

COMMUNITY = "370285001001"
VAULT = Vault.from_secret("hierarchy test data key (synthetic people)")


def build_world(store: Store, folder: Path) -> str:
    """Ulm with two communities and grids; synthetic events, users, registers. Returns a grid."""
    import_osm(store, ulm_pbf(folder, boundaries=True), town_prefix="370285001")
    place_orphans(store, "community")
    generate_grids(store)
    seed_events(store, n=30, seed=7)  # synthetic events on the real streets
    ev = store.read("events")
    store.update(
        "events",
        pd.DataFrame(
            {
                "id": ev["id"],
                "community_code": ev["grid_code"].str.slice(0, 12),
                "town_code": ev["grid_code"].str.slice(0, 9),
            }
        ),
    )
    grid = str(store.read("grids", where={"community_code": COMMUNITY})["code"].iat[0])
    add_user(store, "wang", role="grid_worker", areas=[grid])
    assign_grids(store, "wang", [grid])
    add_user(store, "li", role="community_staff", areas=[COMMUNITY])
    hh = register_household(store, SYSTEM, grid_code=grid, address="合成路1号 (synthetic)")
    register_resident(
        store,
        VAULT,
        SYSTEM,
        household_id=hh["id"],
        person=Person(name="张三", id_number="11010519491231002X"),
    )
    store.write(
        "key_areas",
        gpd.GeoDataFrame(
            {
                "name": ["合成学校 synthetic school"],
                "community_code": [COMMUNITY],
                "source_id": ["k"],
            },
            geometry=[shapely.Point(10.069, 48.1355)],
            crs=4326,
        ),
    )
    return grid


def snapshot(store: Store) -> dict[str, list[Any]]:
    """Every code column of every table, row by row (the lists as JSON)."""
    out: dict[str, list[Any]] = {}
    for table, cols in {
        **hierarchy.CASCADE,
        "users": ("areas",),
        "workers": ("grid_codes",),
    }.items():
        frame = store.read(table).sort_values("id")
        out[table] = [
            json.dumps(
                [
                    r["id"],
                    *[
                        None if v is None else list(v) if not isinstance(v, str) else v
                        for v in (r[c] for c in cols)
                    ],
                ],
                default=str,
            )
            for _, r in frame.iterrows()
        ]
    return out


@pytest.fixture
def world(store: Store, tmp_path: Path) -> tuple[Store, str]:
    return store, build_world(store, tmp_path)


@pytest.mark.timeout(600)
def test_set_code_moves_everything(world: tuple[Store, str]) -> None:
    store, grid = world
    new = "370285001009"
    done = set_code(store, COMMUNITY, new)
    assert {"admin_units", "grids", "buildings", "events", "households", "residents"} <= set(
        done.changed
    )
    assert {"users", "workers", "key_areas"} <= set(done.changed)
    moved = new + grid[12:]
    assert store.read("admin_units", where={"code": new})["level"].iat[0] == "community"
    assert store.read("admin_units", where={"code": COMMUNITY}).empty
    g = store.read("grids", where={"code": moved})
    assert len(g) == 1 and g["community_code"].iat[0] == new
    for table, cols in hierarchy.CASCADE.items():
        frame = store.read(table)
        for col in cols:
            left = frame[col].dropna().astype(str)
            assert not left.str.startswith(COMMUNITY).any(), (table, col)
    assert (store.read("buildings", where={"grid_code": moved})).shape[0] > 0
    ev = store.read("events", where={"grid_code": moved})
    assert len(ev) and set(ev["community_code"]) == {new}
    users = {
        u: list(a)
        for u, a in zip(store.read("users")["name"], store.read("users")["areas"], strict=True)
    }
    assert users["wang"] == [moved] and users["li"] == [new]
    w = store.read("workers", where={"name": "wang"})
    assert list(w["grid_codes"].iat[0]) == [moved] and w["area_code"].iat[0] == moved
    assert store.read("households")["grid_code"].tolist() == [moved]
    assert store.read("residents")["grid_code"].tolist() == [moved]
    assert store.read("key_areas")["community_code"].tolist() == [new]
    log = store.read("audit_log", where={"action": "unit.set_code"})
    assert len(log) == 1 and COMMUNITY in log["detail"].iat[0]
    # and back: the codes are stable again
    set_code(store, new, COMMUNITY)
    assert store.read("grids", where={"code": grid}).shape[0] == 1


@pytest.mark.timeout(600)
def test_set_code_is_all_or_nothing(
    world: tuple[Store, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, _grid = world
    before = snapshot(store)
    real: Callable[..., int] = hierarchy._recode_table
    calls: list[str] = []

    def failing(st: Store, table: str, *args: Any) -> int:
        calls.append(table)
        if table == "events":  # after admin units, grids, buildings and key areas
            raise RuntimeError("injected failure mid-way")
        return real(st, table, *args)

    monkeypatch.setattr(hierarchy, "_recode_table", failing)
    with pytest.raises(RuntimeError, match="injected"):
        set_code(store, COMMUNITY, "370285001009")
    assert calls[:4] == ["admin_units", "grids", "buildings", "key_areas"]
    assert snapshot(store) == before
    assert store.read("audit_log", where={"action": "unit.set_code"}).empty


def test_set_code_refuses_collisions_and_bad_codes(world: tuple[Store, str]) -> None:
    store, _grid = world
    before = snapshot(store)
    with pytest.raises(CodeCollision, match="in use"):
        set_code(store, COMMUNITY, "370285001002")
    with pytest.raises(BadInput, match="12 digits"):
        set_code(store, COMMUNITY, "370285001")
    with pytest.raises(NotFound):
        set_code(store, "370285009009", "370285001008")
    assert snapshot(store) == before
    town = set_code(store, "370285001", "370285003")  # a town: its subtree follows
    assert town.changed["admin_units"] == 3  # rows: the town and its two communities
    assert {u.code for u in list_units(store)} == {"370285003", "370285003001", "370285003002"}


def test_rename_set_parent_close(world: tuple[Store, str]) -> None:
    store, _grid = world
    unit = rename_unit(store, COMMUNITY, " 合成社区（改名） ", name_en="Renamed (synthetic)")
    assert unit.name == "合成社区（改名）"
    with pytest.raises(BadInput, match="higher level"):
        set_parent(store, COMMUNITY, "370285001002")
    assert set_parent(store, "370285001002", "370285001").parent_code == "370285001"
    with pytest.raises(BadInput, match="below it"):
        close_unit(store, "370285001")
    closed = close_unit(store, "370285001002")
    assert not closed.in_force
    assert store.read("grids", where={"community_code": "370285001002", "valid_to": None}).empty
    assert len(store.read("grids", where={"community_code": "370285001002"})) >= 1  # history
    assert "370285001002" not in {u.code for u in list_units(store)}
    assert "370285001002" in {u.code for u in list_units(store, closed=True)}
    saved = generate_grids(store)  # closed communities are not divided any more
    assert [s.community_code for s in saved] == [COMMUNITY]


def test_code_table_matches_names_within_parents(world: tuple[Store, str], tmp_path: Path) -> None:
    store, grid = world
    table = tmp_path / "codes.csv"
    table.write_text(
        "区划代码,名称,上级代码\n"
        "370285101,合成街道 synthetic town,370285\n"
        "370285101201,合成社区 synthetic community,370285101\n"
        "370285101202,未划分区域,370285101\n"
        "370285101203,不存在的社区,370285101\n",
        encoding="utf-8",
    )
    report = import_code_table(store, table)
    assert (report.matched, report.unmatched) == (3, 1)
    bad = report.rows[report.rows["status"] == "unmatched"].iloc[0]
    assert int(bad["row"]) == 5 and "不存在的社区" in bad["reason"]
    codes = {u.code: u.parent_code for u in list_units(store)}
    assert codes == {
        "370285101": None,
        "370285101201": "370285101",
        "370285101202": "370285101",
    }
    moved = "370285101201" + grid[12:]
    assert len(store.read("grids", where={"code": moved})) == 1
    users = dict(zip(store.read("users")["name"], store.read("users")["areas"], strict=True))
    assert list(users["wang"]) == [moved]
    again = import_code_table(store, table)  # the same table again changes nothing
    assert (again.matched, again.unmatched, len(again.recodes)) == (3, 1, 0)


def test_boundary_reimport_updates_only_when_asked(store: Store, tmp_path: Path) -> None:
    def boundaries(name: str, box: tuple[float, float, float, float]) -> Path:
        features = [
            {
                "type": "Feature",
                "id": code,
                "properties": {"name": n, "level": "community", "parent_code": "370285001"},
                "geometry": shapely.geometry.mapping(shapely.box(*b)),
            }
            for code, n, b in (
                ("370285001001", name, box),
                ("370285001002", "合成二社区 (synthetic)", (10.07, 48.1345, 10.072, 48.137)),
            )
        ]
        path = tmp_path / f"b-{len(list(tmp_path.iterdir()))}.geojson"
        path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), "utf-8")
        return path

    first = boundaries("合成一社区 (synthetic)", (10.0675, 48.1345, 10.07, 48.137))
    assert import_layer(store, first, layer="admin_units", source="bnd").inserted == 2
    ids = store.read("admin_units").sort_values("code")["id"].tolist()
    fixed = boundaries("合成一社区（更正）", (10.0675, 48.1345, 10.0701, 48.137))
    quiet = import_layer(store, fixed, layer="admin_units", source="bnd")
    assert (quiet.inserted, quiet.updated, quiet.skipped) == (0, 0, 2)
    assert any("NOT updated" in n and "--update" in n for n in quiet.notes)
    assert "name, geometry" in quiet.rows["reason"].iloc[0]
    assert (
        store.read("admin_units", where={"code": COMMUNITY})["name"].iat[0]
        == "合成一社区 (synthetic)"
    )
    loud = import_layer(store, fixed, layer="admin_units", source="bnd", update=True)
    assert (loud.inserted, loud.updated) == (0, 1)
    row = store.read("admin_units", where={"code": COMMUNITY})
    assert row["name"].iat[0] == "合成一社区（更正）" and int(row["id"].iat[0]) == ids[0]
    assert row.geometry.iat[0].bounds[2] == pytest.approx(10.0701)
    assert store.count("admin_units") == 2
    assert import_layer(store, fixed, layer="admin_units", source="bnd", update=True).updated == 0


def test_units_cli(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path / 'g.duckdb'}"
    s = open_store(url, migrate=True)
    try:
        build_world(s, tmp_path)
    finally:
        s.close()
    runner = CliRunner()

    def gm(*args: str, code: int = 0) -> str:
        res = runner.invoke(app, [*args, "--database-url", url])
        assert res.exit_code == code, res.output
        return res.output

    assert "370285001001" in gm("units", "list", "--level", "community")
    out = gm("units", "set-code", COMMUNITY, "370285001005")
    assert "370285001001 → 370285001005" in out and "grids" in out
    assert "in use" in gm("units", "set-code", "370285001005", "370285001002", code=1)
    assert "改名" in gm("units", "rename", "370285001005", "合成社区改名")
    assert "higher level" in gm("units", "set-parent", "370285001005", "370285001002", code=1)
    assert "closed 已撤销" in gm("units", "close", "370285001002")
    table = tmp_path / "codes.csv"
    table.write_text(
        "区划代码,名称\n370285101,合成街道 synthetic town\n370285101777,无此社区\n", "utf-8"
    )
    out = gm("import", "codes", str(table))
    assert "matched 匹配 1" in out and "unmatched 未匹配 1" in out and "无此社区" in out
