"""Event plans (issue 21, migration 024) on both stores.

A SYNTHETIC street lattice laid in Laixi (莱西, Qingdao: inside the GCJ-02
box, so the GCJ-02 export is really offset) with two generated grids and
synthetic key areas. On both stores: key areas keep their time columns, a
plan is stored as one ``patrol_plans`` row and one ``patrol_routes`` row per
worker and shift, read back only inside the caller's area (row-level security
on PostGIS, the service's check on DuckDB), exported as GCJ-02 GPX that
round-trips to the stored route, and matched against an uploaded track.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from gridmap.common.errors import NotFound
from gridmap.geo.chinacrs import to_wgs84
from gridmap.patrol import plans
from gridmap.patrol.service import save_track
from gridmap.patrol.tracks import parse_track
from gridmap.security.access import Principal
from gridmap.storage import Store

from .helpers import lattice_roads

LON0, LAT0 = 120.52, 36.86
COMMUNITY = "370285001001"
T0 = pd.Timestamp("2026-10-01T08:00:00+08:00")
COORD = Principal("zhao", "town_coordinator", ("370285001",))
STRANGER = Principal("wang", "town_coordinator", ("370285002",))


def _world(store: Store) -> gpd.GeoDataFrame:
    roads = lattice_roads(LON0, LAT0, n=6, step_m=100.0, seed=3)
    roads["class"] = np.where(roads["name"].isin(["东西2路", "南北3街"]), "primary", "residential")
    roads["source"], roads["source_id"] = "test", roads["id"].astype(str)
    store.write("roads", roads.drop(columns="id"))
    minx, miny, maxx, maxy = roads.total_bounds
    mid = (minx + maxx) / 2
    grids = gpd.GeoDataFrame(
        {
            "code": [f"{COMMUNITY}001", f"{COMMUNITY}002"],
            "community_code": COMMUNITY,
            "valid_from": pd.Timestamp("2026-01-01T00:00:00Z"),
            "source": "test",
            "source_id": ["1", "2"],
        },
        geometry=[shapely.box(minx, miny, mid, maxy), shapely.box(mid, miny, maxx, maxy)],
        crs=4326,
    )
    store.write("grids", grids)
    lines = shapely.get_parts(np.asarray(roads.geometry.values, dtype=object))
    ends = shapely.get_point(lines[[0, 7, 19]], 0)
    areas = gpd.GeoDataFrame(
        {
            "name": ["东门 <b>", "广场", "车站"],
            "kind": "key_area",
            "priority": [1, 2, 2],
            "frequency_min": 30.0,
            "dwell_min": 5.0,
            "valid_from": T0,
            "valid_to": T0 + pd.Timedelta(hours=2),
            "hotspot_cells": [["89abc"], None, None],
            "source": "test",
            "source_id": ["a", "b", "c"],
        },
        geometry=ends,
        crs=4326,
    )
    store.write("key_areas", areas)
    return grids


def test_key_areas_keep_their_time_columns(store: Store) -> None:
    _world(store)
    rows = store.read("key_areas").sort_values("source_id")
    assert rows["frequency_min"].tolist() == [30.0, 30.0, 30.0]
    assert pd.Timestamp(rows["valid_to"].iloc[0]) == T0 + pd.Timedelta(hours=2)
    assert list(rows["hotspot_cells"].iloc[0]) == ["89abc"]
    assert store.schema_version() >= 24


def test_a_plan_is_stored_scoped_exported_and_followed(store: Store) -> None:
    _world(store)
    centre = store.read("grids").union_all().representative_point()
    req = plans.PlanRequest.from_json(
        {
            "area": {"code": COMMUNITY},
            "start": T0.isoformat(),
            "end": (T0 + pd.Timedelta(hours=2)).isoformat(),
            "workers": [
                {"name": "李四", "start": {"lon": centre.x, "lat": centre.y}},
                {"name": "王五", "start": {"lon": centre.x, "lat": centre.y}},
            ],
            "time_limit_s": 0.5,
        }
    )
    answer = plans.make_plan(store, req, principal=COORD)
    assert answer["area_code"] == COMMUNITY and answer["summary"]["visits_required"] == 12
    pid = answer["id"]
    with store.scoped(COORD.areas):
        routes = store.read("patrol_routes", where={"plan_id": pid})
    assert sorted(routes["worker"]) == ["李四", "王五"]
    assert set(routes["mode"]) == {"event"} and set(routes["grid_code"]) == {COMMUNITY}
    assert set(routes["shift"]) == {1}
    assert all(pd.Timestamp(v) == T0 for v in routes["valid_from"])

    plan = plans.read_plan(store, pid, principal=COORD)
    assert [f["id"] for f in plan["routes"]["features"]] == [
        f["id"]
        for f in sorted(answer["routes"]["features"], key=lambda f: f["properties"]["worker"])
    ]
    with pytest.raises(NotFound):
        plans.read_plan(store, pid, principal=STRANGER)

    feature = next(f for f in plan["routes"]["features"] if f["properties"]["worker"] == "李四")
    text, name = plans.plan_export(
        store, pid, worker="李四", format="gpx", crs="gcj02", principal=COORD
    )
    assert name.endswith("-gcj02.gpx")
    pts = (
        ET.parse(io.StringIO(text)).getroot().findall(".//{http://www.topografix.com/GPX/1/1}trkpt")
    )
    lon = np.array([float(p.get("lon", "nan")) for p in pts])
    lat = np.array([float(p.get("lat", "nan")) for p in pts])
    want = np.asarray(feature["geometry"]["coordinates"], float)
    assert np.abs(lon - want[:, 0]).max() > 1e-3  # GCJ-02 is offset here
    np.testing.assert_allclose(np.column_stack(to_wgs84(lon, lat, "gcj02")), want, atol=1e-6)

    # 李四 walks the planned route; 王五 uploads nothing
    t = np.asarray(feature["properties"]["times_s"], float)
    s = np.arange(t[0], t[-1], 15.0)
    fixes = pd.DataFrame(
        {
            "time": (T0 + pd.to_timedelta(s, unit="s"))
            .tz_convert("UTC")
            .strftime("%Y-%m-%dT%H:%M:%SZ"),
            "lon": np.interp(s, t, want[:, 0]),
            "lat": np.interp(s, t, want[:, 1]),
        }
    )
    track = parse_track(fixes.to_csv(index=False), format="csv", crs="wgs84")
    save_track(store, track, grid=f"{COMMUNITY}001", worker="李四", principal=COORD)
    report = plans.plan_compliance(store, pid, principal=COORD)
    mine = {
        (v["key_area"], v["slot"])
        for v in feature["properties"]["timetable"]
        if v["type"] == "visit"
    }
    made = {(v["key_area"], v["slot"]) for v in report["visits"] if v["status"] == "made"}
    assert mine and mine <= made
    assert report["summary"]["required"] == 12
    assert report["hotspots"]["areas"] == 1


def test_cli_plan_event_writes_gpx_and_kml_per_worker(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from gridmap.cli import app
    from gridmap.storage import open_store

    url = f"duckdb:///{tmp_path / 'cli.duckdb'}"
    store = open_store(url, migrate=True)
    try:
        centre = _world(store).union_all().representative_point()
    finally:
        store.close()
    args = [
        "patrol",
        "plan-event",
        "--area",
        COMMUNITY,
        "--start",
        T0.isoformat(),
        "--end",
        (T0 + pd.Timedelta(hours=1)).isoformat(),
        "--worker",
        f"李四@{centre.x},{centre.y}",
        "--worker",
        f"王五@{centre.x},{centre.y}",
        "--time-limit",
        "0.3",
        "--out",
        str(tmp_path / "routes"),
        "--crs",
        "gcj02",
        "--pdf",
        str(tmp_path / "plan.pdf"),
        "--database-url",
        url,
    ]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "plan 1 area 370285001001" in r.output
    from pypdf import PdfReader

    pages = PdfReader(tmp_path / "plan.pdf").pages
    texts = [pg.extract_text() for pg in pages[:2]]
    assert len(pages) >= 2 and "李四" in texts[0] + texts[1] and "王五" in texts[0] + texts[1]
    assert all("巡逻时刻表 Timetable" in t and "东门 <b>" in t for t in texts)
    nosave = CliRunner().invoke(app, [*args, "--no-save"])
    assert nosave.exit_code != 0 and "--pdf prints a saved plan" in nosave.output
    files = sorted(p.name for p in (tmp_path / "routes").iterdir())
    assert files == [
        "plan-1-route-001-shift-1-gcj02.gpx",
        "plan-1-route-001-shift-1-gcj02.kml",
        "plan-1-route-002-shift-1-gcj02.gpx",
        "plan-1-route-002-shift-1-gcj02.kml",
    ]
    bad = CliRunner().invoke(app, [*args[:2], "--start", "x", "--end", "y", "--database-url", url])
    assert bad.exit_code != 0 and "exactly one of --area" in bad.output


def test_an_area_drawn_in_gcj02_finds_its_grids(store: Store) -> None:
    from gridmap.geo.chinacrs import from_wgs84

    grids = _world(store)
    ring = np.asarray(shapely.get_coordinates(grids.union_all().buffer(-0.0002).exterior))
    lon, lat = from_wgs84(ring[:, 0], ring[:, 1], "gcj02")
    body = {
        "area": {
            "polygon": {"type": "Polygon", "coordinates": [np.column_stack([lon, lat]).tolist()]},
            "crs": "gcj02",
        },
        "start": T0.isoformat(),
        "end": (T0 + pd.Timedelta(hours=1)).isoformat(),
        "workers": [{"name": "李四", "start": {"lon": LON0, "lat": LAT0}}],
    }
    req = plans.PlanRequest.from_json(body)
    area, codes, area_code = plans.resolve_area(store, req)
    assert codes == [f"{COMMUNITY}001", f"{COMMUNITY}002"] and area_code == COMMUNITY
    assert shapely.hausdorff_distance(area, shapely.Polygon(ring)) < 1e-6  # back in WGS84


def test_idempotent_plan_listing_key_areas_and_printout(store: Store) -> None:
    """One Idempotency-Key stores one plan on both stores; the stored plan lists and prints."""
    from pypdf import PdfReader

    from gridmap.events.errors import IdempotencyKeyReused
    from gridmap.patrol.printout import render_plan_pdf

    _world(store)
    centre = store.read("grids").union_all().representative_point()
    body = {
        "name": "国庆安保",
        "area": {"code": COMMUNITY},
        "start": T0.isoformat(),
        "end": (T0 + pd.Timedelta(hours=2)).isoformat(),
        "workers": [
            {"name": "李四", "start": {"lon": centre.x, "lat": centre.y}},
            {"name": "王五", "start": {"lon": centre.x, "lat": centre.y}},
        ],
        "time_limit_s": 0.5,
    }
    req = plans.PlanRequest.from_json(body)
    digest = plans.plan_digest(body)
    status, first, replayed = plans.make_plan_once(
        store, req, key="k-1", digest=digest, principal=COORD
    )
    assert status == 201 and not replayed and first["id"] is not None
    status, again, replayed = plans.make_plan_once(
        store, req, key="k-1", digest=digest, principal=COORD
    )
    assert status == 201 and replayed and again == first
    assert store.count("patrol_plans") == 1
    other = {**body, "name": "另一个"}
    with pytest.raises(IdempotencyKeyReused):
        plans.make_plan_once(
            store,
            plans.PlanRequest.from_json(other),
            key="k-1",
            digest=plans.plan_digest(other),
            principal=COORD,
        )
    # another caller's key is their own
    status, theirs, replayed = plans.make_plan_once(
        store,
        req,
        key="k-1",
        digest=digest,
        principal=Principal("qian", "town_coordinator", ("370285001",)),
    )
    assert not replayed and theirs["id"] != first["id"] and store.count("patrol_plans") == 2

    assert [p["id"] for p in plans.list_plans(store, principal=COORD)] == [
        theirs["id"],
        first["id"],
    ]
    assert plans.list_plans(store, principal=STRANGER) == []

    plan = plans.read_plan(store, first["id"], principal=COORD)
    areas = {f["properties"]["name"]: f["properties"] for f in plan["key_areas"]["features"]}
    assert set(areas) == {"东门 <b>", "广场", "车站"}
    assert pd.Timestamp(areas["东门 <b>"]["valid_to"]) == T0 + pd.Timedelta(hours=2)
    assert areas["东门 <b>"]["hotspot_cells"] == ["89abc"] and areas["广场"]["frequency_min"] == 30
    assert plan["synthetic"] is False  # no synthetic events behind the hot-spot area here

    pages = PdfReader(io.BytesIO(render_plan_pdf(plan))).pages
    n_routes = len(plan["routes"]["features"])
    assert len(pages) == n_routes + (1 if plan["unmet"] else 0)
    for page, f in zip(pages, plan["routes"]["features"], strict=False):
        text = page.extract_text()
        assert f["properties"]["worker"] in text and "合成数据" not in text
        for v in f["properties"]["timetable"]:
            if v["type"] == "visit":
                assert v["name"] in text
