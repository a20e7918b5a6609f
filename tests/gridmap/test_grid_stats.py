"""Per-grid statistics on a small constructed world, on DuckDB and a real PostGIS.

Three grids of community 990100001001 side by side (about 111 m × 111 m each
at 60.17° N) and one grid of a neighbouring community; buildings (one straddling
two grids), streets, key areas and events chosen so that every figure can be
worked out by hand.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from typer.testing import CliRunner

from gridmap.cli import app
from gridmap.common.errors import BadInput, NotFound
from gridmap.division.stats import (
    CATEGORY_COLUMNS,
    STAT_COLUMNS,
    WorkloadWeights,
    compute_grid_statistics,
    grid_statistics,
    refresh_grid_statistics,
    statistics_table,
)
from gridmap.geo.projection import length_m
from gridmap.storage import Store

C1, C2 = "990100001001", "990100001002"
G1, G2, G3, G4 = (f"{C1}001", f"{C1}002", f"{C1}003", f"{C2}001")
AT = pd.Timestamp("2026-11-01T00:00:00Z")
Y0, Y1 = 60.170, 60.171
BOXES = {G1: (24.940, 24.942), G2: (24.942, 24.944), G3: (24.944, 24.946), G4: (24.946, 24.948)}
STREET = shapely.LineString([(24.940, 60.1705), (24.946, 60.1705)])  # across G1, G2, G3
LANE = shapely.LineString([(24.945, 60.1701), (24.945, 60.1706)])  # inside G3
EDGE = shapely.LineString([(24.942, 60.1702), (24.942, 60.1708)])  # on the G1/G2 edge: both


def _gdf(rows: list[dict[str, object]]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(pd.DataFrame(rows), geometry="geometry", crs=4326)


def _multi(g: shapely.Geometry) -> shapely.MultiPolygon:
    return shapely.MultiPolygon([g])


def build_world(store: Store) -> dict[str, int]:
    """Write the constructed world; return event ids by name."""
    store.write(
        "admin_units",
        _gdf(
            [
                {
                    "code": C1,
                    "name": "一社区",
                    "level": "community",
                    "geometry": _multi(shapely.box(24.940, Y0, 24.946, Y1)),
                },
                {
                    "code": C2,
                    "name": "二社区",
                    "level": "community",
                    "geometry": _multi(shapely.box(24.946, Y0, 24.948, Y1)),
                },
            ]
        ),
    )
    store.write(
        "grids",
        _gdf(
            [
                {
                    "code": code,
                    "name": f"=cmd|' /C calc'!A0 {code[-3:]}" if code == G1 else code[-3:],
                    "community_code": code[:12],
                    "valid_from": pd.Timestamp("2026-01-01T00:00:00Z"),
                    "source": "test",
                    "source_id": code,
                    "geometry": _multi(shapely.box(x0, Y0, x1, Y1)),
                }
                for code, (x0, x1) in BOXES.items()
            ]
        ),
    )
    # A closed grid (history) over G1: never counted, never updated.
    store.write(
        "grids",
        _gdf(
            [
                {
                    "code": f"{C1}009",
                    "community_code": C1,
                    "valid_from": pd.Timestamp("2025-01-01T00:00:00Z"),
                    "valid_to": pd.Timestamp("2026-01-01T00:00:00Z"),
                    "source": "test",
                    "source_id": "old",
                    "geometry": _multi(shapely.box(24.940, Y0, 24.944, Y1)),
                }
            ]
        ),
    )
    store.write(
        "buildings",
        _gdf(
            [
                # inside G1
                {"households": 100, "residents": 250, "source_id": "b1",
                 "geometry": _multi(shapely.box(24.9402, 60.1702, 24.9410, 60.1708))},
                # straddles G1 (40 %) and G2 (60 %): goes to G2
                {"households": 50, "residents": 120, "source_id": "b2",
                 "geometry": _multi(shapely.box(24.9416, 60.1702, 24.9426, 60.1704))},
                {"households": 10, "residents": 20, "source_id": "b3",
                 "geometry": _multi(shapely.box(24.9442, 60.1702, 24.9446, 60.1704))},
                {"households": 999, "residents": 2000, "source_id": "b4",
                 "geometry": _multi(shapely.box(24.9462, 60.1702, 24.9466, 60.1704))},
            ]
        ).assign(source="test"),
    )  # fmt: skip
    store.write(
        "roads",
        _gdf(
            [
                {
                    "name": "Street",
                    "source_id": "r1",
                    "geometry": shapely.MultiLineString([STREET]),
                },
                {"name": "Lane", "source_id": "r2", "geometry": shapely.MultiLineString([LANE])},
                {"name": "Edge", "source_id": "r3", "geometry": shapely.MultiLineString([EDGE])},
            ]
        ).assign(source="test"),
    )
    store.write(
        "key_areas",
        _gdf(
            [
                {"name": "school", "kind": "key_place", "visits_per_day": 3.0,
                 "source_id": "k1", "geometry": shapely.Point(24.943, 60.1705)},
                # a main street over G2 and G3: counts in both
                {"name": "main", "kind": "main_street", "visits_per_day": 2.0, "source_id": "k2",
                 "geometry": shapely.LineString([(24.943, 60.1708), (24.945, 60.1708)])},
            ]
        ).assign(source="test"),
    )  # fmt: skip

    def ev(name: str, x: float, category: str, status: str, at: str) -> dict[str, object]:
        return {
            "category": category,
            "status": status,
            "reported_at": pd.Timestamp(at),
            "synthetic": True,
            "source": "test",
            "source_id": name,
            "geometry": shapely.Point(x, 60.1703),
        }

    store.write(
        "events",
        _gdf(
            [
                ev("e1", 24.9405, "dispute", "closed", "2026-10-01T08:00Z"),
                ev("e2", 24.9407, "safety_hazard", "reported", "2026-09-01T08:00Z"),
                ev("e3", 24.9430, "dispute", "handling", "2025-06-01T08:00Z"),  # before period
                ev("e4", 24.9450, "city_management", "handling", "2026-10-15T08:00Z"),
                ev("e5", 24.9451, "city_management", "reported", "2026-10-16T08:00Z"),
                ev("e6", 24.9470, "dispute", "reported", "2026-10-01T08:00Z"),  # community 2
                ev("e7", 24.9405, "dispute", "reported", "2026-11-15T08:00Z"),  # after AT
                ev("e8", 24.9432, "residents_request", "rejected", "2026-03-01T08:00Z"),
            ]
        ),
    )
    events = store.read("events")
    ids = dict(zip(events["source_id"], events["id"].astype(int), strict=True))
    # e5 is a duplicate of e4: linked to it, never counted.
    store.update("events", pd.DataFrame({"id": [ids["e5"]], "duplicate_of": [ids["e4"]]}))
    return ids


def _street(x0: float, x1: float) -> float:
    piece = shapely.clip_by_rect(STREET, x0, Y0, x1, Y1)
    return float(length_m(gpd.GeoSeries([piece], crs=4326)).iloc[0])


def _expected() -> pd.DataFrame:
    lane = float(length_m(gpd.GeoSeries([LANE], crs=4326)).iloc[0])
    edge = float(length_m(gpd.GeoSeries([EDGE], crs=4326)).iloc[0])
    rows = {
        G1: dict(households=100, residents=250, buildings=1, street=_street(*BOXES[G1]) + edge,
                 total=2, open=1, visits=0.0, cats={"dispute": 1, "safety_hazard": 1}),
        G2: dict(households=50, residents=120, buildings=1, street=_street(*BOXES[G2]) + edge,
                 total=1, open=1, visits=5.0, cats={"residents_request": 1}),
        G3: dict(households=10, residents=20, buildings=1, street=_street(*BOXES[G3]) + lane,
                 total=1, open=1, visits=2.0, cats={"city_management": 1}),
    }  # fmt: skip
    out = pd.DataFrame(rows).T
    w = WorkloadWeights()
    out["hours"] = [
        w.household * r["households"]
        + w.street_km * r["street"] / 1000
        + w.event * r["total"] / 12
        + w.key_area_visit * r["visits"]
        for r in rows.values()
    ]
    out["workload"] = out["hours"] / float(np.median(out["hours"].astype(float)))
    return out


def test_statistics_equal_hand_counts(store: Store) -> None:
    build_world(store)
    written = refresh_grid_statistics(store, at=AT)
    assert list(written["code"]) == [G1, G2, G3, G4]
    stored = store.read("grids", where={"valid_to": None}).set_index("code").sort_index()
    exp = _expected()
    for code, e in exp.iterrows():
        row = stored.loc[code]
        assert (row["households"], row["residents"], row["buildings"]) == (
            e["households"],
            e["residents"],
            e["buildings"],
        )
        assert row["street_length_m"] == pytest.approx(e["street"], abs=0.2)
        assert row["area_m2"] == pytest.approx(111.3 * 111.3 * 0.999, rel=0.01)
        assert (row["events_total"], row["events_open"]) == (e["total"], e["open"])
        for cat, col in CATEGORY_COLUMNS.items():
            assert row[col] == e["cats"].get(cat, 0), (code, cat)
        assert row["key_area_visits"] == pytest.approx(e["visits"])
        assert row["events_per_month"] == pytest.approx(e["total"] / 12)
        assert row["workload_hours"] == pytest.approx(e["hours"], abs=0.01)
        assert row["workload"] == pytest.approx(e["workload"], rel=1e-3)
        assert row["stats_at"] == AT
        assert row["stats_from"] == pd.Timestamp("2025-11-01T00:00:00Z")
    # the median grid of each community is 1.0 (a community of one grid: that grid)
    current = stored[stored.index.str.startswith(C1)]
    assert float(np.median(current["workload"])) == pytest.approx(1.0)
    assert stored.loc[G4, "workload"] == 1.0 and stored.loc[G4, "households"] == 999
    # the closed grid keeps what it had
    old = store.read("grids", where={"code": f"{C1}009"})
    assert old["workload"].isna().all() and old["households"].isna().all()


def test_merged_events_are_not_open(store: Store) -> None:
    """A merged event (已合并) is closed for grid statistics, as for the workflow."""
    ids = build_world(store)
    # e2 (G1, reported) merged without a duplicate link, e3 (G2, handling) still open
    store.update("events", pd.DataFrame({"id": [ids["e2"]], "status": ["merged"]}))
    stored = refresh_grid_statistics(store, at=AT).set_index("code")
    assert (stored.loc[G1, "events_total"], stored.loc[G1, "events_open"]) == (2, 0)
    assert stored.loc[G2, "events_open"] == 1
    live = compute_grid_statistics(store, community=C1, areas=(G1,), at=AT)
    assert list(live["events_open"]) == [0]


def test_scoping_and_bad_codes(store: Store) -> None:
    build_world(store)
    refresh_grid_statistics(store, at=AT)
    # a grid worker of G1 sees G1 only, computed or stored
    live = compute_grid_statistics(store, community=C1, areas=(G1,), at=AT)
    assert list(live["code"]) == [G1] and int(live["households"].iloc[0]) == 100
    assert int(live["events_total"].iloc[0]) == 2
    table = statistics_table(store, community=C1, areas=(G1,))
    assert list(table["code"]) == [G1]
    assert list(statistics_table(store, areas=(C1,))["code"]) == [G1, G2, G3]
    assert list(statistics_table(store, grid=G4)["code"]) == [G4]
    for kwargs in (
        {"community": C2, "areas": (C1,)},  # outside the caller's area
        {"community": "990100001077"},  # no such community
        {"grid": G4, "areas": (G1,)},
        {"grid": f"{C1}077"},
        {"community": C1, "areas": (G4,)},
    ):
        with pytest.raises(NotFound):
            statistics_table(store, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        compute_grid_statistics(store, community=C2, areas=(G1,))
    for bad in ("123", "99010000100x", "９９０１００００１００１"):
        with pytest.raises(BadInput):
            statistics_table(store, community=bad)


def test_cli_refreshes_and_prints(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    from gridmap import cli

    # The console's width comes from the terminal it started on (80 under xdist).
    monkeypatch.setattr(cli.out, "width", 200)
    build_world(store)
    result = CliRunner().invoke(
        app,
        ["grids", "stats", "--community", C1, "--database-url", store.url],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert G1 in result.stdout and "工作量指数" in result.stdout and "workload" in result.stdout
    stored = store.read("grids", where={"community_code": C1, "valid_to": None})
    assert stored["workload"].notna().all() and stored["street_length_m"].gt(100).all()
    other = store.read("grids", where={"code": G4})
    assert other["workload"].isna().all()  # only the community asked for
    bad = CliRunner().invoke(
        app, ["grids", "stats", "--community", "990100001077", "--database-url", store.url]
    )
    assert bad.exit_code == 1 and "not found" in bad.output
    # households only: the index follows households (100, 50, 10 → median 50)
    weights = "household=1,street_km=0,event=0,key_area_visit=0"
    only = CliRunner().invoke(
        app,
        ["grids", "stats", "--community", C1, "--weights", weights, "--database-url", store.url],
    )
    assert only.exit_code == 0, only.output
    again = store.read("grids", where={"community_code": C1, "valid_to": None})
    assert sorted(again["workload"]) == [0.2, 1.0, 2.0]
    wrong = CliRunner().invoke(
        app, ["grids", "stats", "--weights", "cats=3", "--database-url", store.url]
    )
    assert wrong.exit_code == 1 and "workload weights" in wrong.output


def test_weights_are_configurable_and_checked() -> None:
    grids = gpd.GeoDataFrame(
        {"community_code": [C1] * 3},
        geometry=[shapely.box(x0, Y0, x1, Y1) for x0, x1 in list(BOXES.values())[:3]],
        crs=4326,
    )
    buildings = gpd.GeoDataFrame(
        {"households": [10, 20, 40]},
        geometry=[
            shapely.box(x0 + 1e-4, Y0 + 1e-4, x0 + 5e-4, Y0 + 4e-4) for x0, _ in BOXES.values()
        ][:3],
        crs=4326,
    )
    only_households = WorkloadWeights(household=1.0, street_km=0, event=0, key_area_visit=0)
    s = grid_statistics(grids, buildings=buildings, at=AT, weights=only_households)
    assert s["workload"].tolist() == [0.5, 1.0, 2.0]
    assert list(s.columns) == list(STAT_COLUMNS)
    empty = grid_statistics(grids.iloc[:0], at=AT)
    assert empty.empty and list(empty.columns) == list(STAT_COLUMNS)
    with pytest.raises(BadInput):
        WorkloadWeights(household=-1)
    with pytest.raises(BadInput):
        WorkloadWeights(0, 0, 0, 0)
    with pytest.raises(BadInput):
        grid_statistics(grids, months=0)


def test_benchmark_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    """The benchmark runs at tiny size and its three contenders agree."""
    path = Path(__file__).parents[2] / "benchmarks" / "bench_grid_stats.py"
    spec = importlib.util.spec_from_file_location("bench_grid_stats", path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    times = bench.main(["--quick"])
    assert set(times) == {"gridmap", "per-grid geopandas loop", "DuckDB spatial SQL"}
    assert "ratio ours/peer" in capsys.readouterr().out


def test_imported_grids_get_statistics(store: Store, tmp_path: Path) -> None:
    build_world(store)
    grids = store.read("grids", where={"valid_to": None})
    store.delete("grids")
    path = tmp_path / "grids.geojson"
    grids[["code", "name", "community_code", "source", "source_id", "geometry"]].to_file(path)
    result = CliRunner().invoke(
        app, ["import", "layer", str(path), "--layer", "grids", "--database-url", store.url]
    )
    assert result.exit_code == 0, result.output
    stored = store.read("grids").set_index("code")
    assert stored.loc[G1, "households"] == 100 and stored.loc[G2, "buildings"] == 1
    assert stored["workload"].notna().all() and stored.loc[G3, "street_length_m"] > 100
