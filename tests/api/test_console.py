"""The coordinators' console and the leaders' dashboard in Debian Chromium (1400×900).

The demo world (real Helsinki OSM extract, synthetic events) plus a second town
with a probe event: a town coordinator must not see it on the map, in the list,
in the event tiles or in the counts. A scripted month of events gives the
dashboard figures, checked against values computed here from the store.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import httpx
import mapbox_vector_tile
import morecantile
import pandas as pd
import pytest
import shapely
from playwright.sync_api import Page

from gridmap.events.intake import parse_report, report_event
from gridmap.security.access import SYSTEM
from gridmap.storage import Store
from tests.api.conftest import serving
from tests.api.webworld import ARTIFACTS, PASSWORD, chromium, demo_world, token, wait, web_app

__all__ = ["chromium"]  # the module's browser (a fixture)

pytestmark = pytest.mark.browser

DESKTOP: dict[str, Any] = {
    "viewport": {"width": 1400, "height": 900},
    "locale": "zh-CN",
    "timezone_id": "Asia/Shanghai",
    "accept_downloads": True,
}
PROBE_TOWN = "990100002"
TZ = "Asia/Shanghai"
#: The scripted month (Shanghai time), the one before it and the same month a year before:
#: (reported, closed) events per month, all reported and closed inside it.
SCRIPT = {"2025-06": (10, 6), "2025-05": (4, 2), "2024-06": (5, 5)}


@dataclass
class World:
    base: str
    store: Store
    probe_id: int
    probe_point: tuple[float, float]


def _probe_town(store: Store) -> tuple[int, tuple[float, float]]:
    """A second town east of the demo area, one community, one grid, one event in it."""
    bounds = store.bounds("grids")
    assert bounds is not None
    minx, miny, maxx, maxy = bounds
    w = maxx - minx
    box = shapely.box(maxx + w, miny, maxx + 2 * w, maxy)
    units = gpd.GeoDataFrame(
        {
            "code": [PROBE_TOWN, PROBE_TOWN + "001"],
            "name": ["探针街道 Probe town", "探针社区 Probe community"],
            "level": ["town", "community"],
            "parent_code": ["990100", PROBE_TOWN],
        },
        geometry=[box, box],
        crs=4326,
    )
    store.write("admin_units", units)
    grid = gpd.GeoDataFrame(
        {
            "code": [PROBE_TOWN + "001001"],
            "community_code": [PROBE_TOWN + "001"],
            "name": ["探针网格 Probe grid"],
        },
        geometry=[box],
        crs=4326,
    )
    store.write("grids", grid)
    c = box.centroid
    report = parse_report(
        {
            "category": "dispute",
            "description": "合成探针事件 synthetic probe event (another town)",
            "location": {"lon": c.x, "lat": c.y, "crs": "wgs84"},
        }
    )
    row = report_event(store, report, principal=SYSTEM, synthetic=True)
    assert row["town_code"] == PROBE_TOWN
    return int(row["id"]), (c.x, c.y)


def _scripted_month(store: Store) -> None:
    """Events of the scripted months, on real places of the demo grid (synthetic)."""
    grids = store.read("grids")
    demo = grids.loc[grids["code"].str.startswith("990100001")].iloc[0]
    point = shapely.point_on_surface(demo.geometry)
    rows = []
    for month, (reported, closed) in SCRIPT.items():
        start = pd.Timestamp(f"{month}-03 09:00", tz=TZ)
        for i in range(reported):
            at = start + pd.Timedelta(hours=30 * i)
            done = i < closed
            rows.append(
                {
                    "category": "city_management",
                    "status": "closed" if done else "dispatched",
                    "urgency": "normal",
                    "description": f"合成脚本事件 scripted synthetic {month} #{i}",
                    "channel": "patrol",
                    "reported_at": at.tz_convert("UTC"),
                    "updated_at": at.tz_convert("UTC"),
                    "due_at": (at + pd.Timedelta(days=5)).tz_convert("UTC"),
                    "closed_at": (at + pd.Timedelta(hours=20)).tz_convert("UTC") if done else None,
                    "grid_code": str(demo["code"]),
                    "community_code": str(demo["community_code"]),
                    "town_code": "990100001",
                    "synthetic": True,
                    "source": "scripted",
                    "source_id": f"script-{month}-{i}",
                    "version": 1,
                }
            )
    frame = gpd.GeoDataFrame(rows, geometry=[point] * len(rows), crs=4326)
    for col in ("reported_at", "updated_at", "due_at", "closed_at"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    store.write("events", frame)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("console")
    store, url, _ = demo_world(folder, events=200)
    probe_id, probe_point = _probe_town(store)
    _scripted_month(store)
    app = web_app(url, store, folder / "media")
    with serving(app) as base:
        yield World(base, store, probe_id, probe_point)
    store.close()


def _sign_in(chromium: Any, world: World, user: str) -> tuple[Any, Page]:
    ctx = chromium.new_context(**DESKTOP)
    external: list[str] = []

    def guard(route: Any) -> None:
        url = route.request.url
        if url.startswith((world.base, "data:", "blob:")):
            route.continue_()
        else:
            external.append(url)
            route.abort()

    ctx.route("**/*", guard)
    ctx.external = external
    page = ctx.new_page()
    page.goto(f"{world.base}/login")
    page.fill("#username", user)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{world.base}/console/")
    return ctx, page


def test_town_coordinator_sees_only_the_town(chromium: Any, world: World) -> None:
    ctx, page = _sign_in(chromium, world, "demo_town")
    wait(page, "document.body.dataset.ready === '1'", timeout=30000)
    page.wait_for_timeout(500)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "console-town.png"))
    # The list and the count.
    listed = page.eval_on_selector_all(
        "#event-list button", "els => els.map(e => Number(e.dataset.eventId))"
    )
    assert listed and world.probe_id not in listed
    shown_total = int(page.get_attribute("#event-count", "data-total") or -1)
    with httpx.Client(base_url=world.base, timeout=60) as c:
        c.headers["Authorization"] = f"Bearer {token(world.base, 'demo_town')}"
        api_total = c.get("/events", params={"limit": 1}).json()["total"]
    all_in_town = world.store.count("events") - 1  # every event but the probe lies in 990100001
    assert shown_total == api_total == all_in_town
    # The map's markers.
    on_map = page.evaluate(
        "(() => { const ids = []; window.gridmapConsole.overlays.events.eachLayer("
        "l => ids.push(l.options.eventId)); return ids; })()"
    )
    assert len(on_map) == shown_total and world.probe_id not in on_map
    # The event tiles, with the same browser session.
    lon, lat = world.probe_point
    t = morecantile.tms.get("WebMercatorQuad").tile(lon, lat, 15)
    tile = page.request.get(
        f"{world.base}/collections/events/tiles/WebMercatorQuad/{t.z}/{t.y}/{t.x}"
    )
    if tile.status == 200:
        decoded = mapbox_vector_tile.decode(tile.body())
        ids = [f.get("id") for layer in decoded.values() for f in layer["features"]]
        assert world.probe_id not in ids
    else:
        assert tile.status in (204, 404)
    # The admin sees the probe in the same tile: the tile test above can fail.
    with httpx.Client(base_url=world.base, timeout=60) as c:
        c.headers["Authorization"] = f"Bearer {token(world.base, 'demo_admin')}"
        admin_tile = c.get(f"/collections/events/tiles/WebMercatorQuad/{t.z}/{t.y}/{t.x}")
    assert admin_tile.status_code == 200
    decoded = mapbox_vector_tile.decode(admin_tile.content)
    assert world.probe_id in [f.get("id") for layer in decoded.values() for f in layer["features"]]
    assert ctx.external == []
    ctx.close()


def test_grid_popup_fits_and_search_counts(chromium: Any, world: World) -> None:
    ctx, page = _sign_in(chromium, world, "demo_town")
    wait(page, "document.body.dataset.ready === '1'", timeout=30000)
    page.click(".side-tabs button[data-side=grids]")
    page.fill("#grid-search", "Grid 00")
    text = page.text_content("#grid-count") or ""
    n = len(page.query_selector_all("#grid-list li"))
    assert f"找到 {n} 个网格" == text and "{n}" not in text and 0 < n < 23
    page.click("#grid-list li:first-child button")
    page.wait_for_timeout(600)
    # Open the popup of the grid at the map's centre.
    box = page.locator("#map").bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_selector(".leaflet-popup-content table.popup")
    popup = page.locator(".leaflet-popup").bounding_box()
    assert popup is not None and popup["width"] <= 400 and popup["height"] <= 500
    page.screenshot(path=str(ARTIFACTS / "console-grid-popup.png"))
    ctx.close()


def test_plan_a_route_and_download_gpx_and_kml(chromium: Any, world: World, tmp_path: Path) -> None:
    import gpxpy

    ctx, page = _sign_in(chromium, world, "demo_town")
    wait(page, "document.body.dataset.ready === '1'", timeout=30000)
    # A key-area route: a grid of the town holding key places.
    grids = world.store.read("grids")
    keys = world.store.read("key_areas")
    town = grids.loc[grids["code"].str.startswith("990100001")]
    hits = town.loc[
        [bool(shapely.intersects(g, keys.geometry.to_numpy()).sum() >= 2) for g in town.geometry]
    ]
    assert len(hits), "the demo world has key places in its grids"
    page.click(".side-tabs button[data-side=routes]")
    page.select_option("#route-grid", str(hits["code"].iloc[0]))
    page.select_option("#route-mode", "points")
    page.click("#route-plan")
    wait(page, "document.getElementById('route-info').dataset.length > 0", timeout=60000)
    length = float(page.get_attribute("#route-info", "data-length") or 0)
    assert length > 0
    page.screenshot(path=str(ARTIFACTS / "console-route.png"))
    with page.expect_download() as got:
        page.click("#route-gpx")
    gpx = gpxpy.parse(Path(got.value.path()).read_text(encoding="utf-8"))
    points = [p for trk in gpx.tracks for seg in trk.segments for p in seg.points]
    points += [p for rte in gpx.routes for p in rte.points]
    assert len(points) >= 2
    with page.expect_download() as got:
        page.click("#route-kml")
    root = ET.fromstring(Path(got.value.path()).read_bytes())
    coords = [
        el.text
        for el in root.iter()
        if el.tag.endswith("coordinates") and el.text and el.text.strip()
    ]
    assert coords and len(coords[0].split()) >= 2
    # The printable route sheet (A4) draws the same route with its turn list.
    sheet = ctx.new_page()
    grid = page.eval_on_selector("#route-grid", "e => e.value")
    sheet.goto(f"{world.base}/console/route-sheet?grid={grid}&mode=points")
    wait(sheet, "document.body.dataset.ready === '1'", timeout=60000)
    sheet.screenshot(path=str(ARTIFACTS / "console-route-sheet.png"), full_page=True)
    assert "米" in (sheet.text_content("#sheet-summary") or "")
    assert sheet.locator("#sheet-steps li").count() > 0
    assert ctx.external == []
    ctx.close()


def _figure(page: Page, key: str) -> dict[str, str]:
    card = page.locator(f".card[data-key={key}]")
    return {
        "value": card.get_attribute("data-value") or "",
        "previous": card.get_attribute("data-previous") or "",
        "last_year": card.get_attribute("data-last-year") or "",
    }


def test_dashboard_figures_equal_the_store(chromium: Any, world: World) -> None:
    ctx, page = _sign_in(chromium, world, "demo_admin")
    page.goto(f"{world.base}/console/dashboard?from=2025-06-01&to=2025-07-01")
    wait(page, "document.body.dataset.ready === '1'", timeout=30000)
    page.screenshot(path=str(ARTIFACTS / "console-dashboard.png"), full_page=True)
    events = world.store.read("events")
    at = pd.to_datetime(events["reported_at"], utc=True).dt.tz_convert(TZ)
    closed_at = pd.to_datetime(events["closed_at"], utc=True).dt.tz_convert(TZ)

    def month(m: str) -> tuple[int, int]:
        lo = pd.Timestamp(f"{m}-01", tz=TZ)
        hi = lo + pd.DateOffset(months=1)
        reported = int(((at >= lo) & (at < hi)).sum())
        closed = int(((closed_at >= lo) & (closed_at < hi)).sum())
        return reported, closed

    (r_now, c_now), (r_prev, c_prev), (r_ly, c_ly) = (month(m) for m in SCRIPT)
    assert (r_now, c_now) == SCRIPT["2025-06"]  # nothing else in those months
    rep = _figure(page, "events_reported")
    assert (int(rep["value"]), int(rep["previous"]), int(rep["last_year"])) == (r_now, r_prev, r_ly)
    clo = _figure(page, "events_closed")
    assert (int(clo["value"]), int(clo["previous"]), int(clo["last_year"])) == (c_now, c_prev, c_ly)
    rate = _figure(page, "closure_rate")
    assert float(rate["value"]) == pytest.approx(c_now / r_now)
    assert float(rate["previous"]) == pytest.approx(c_prev / r_prev)
    # Changes shown against the previous period and last year.
    change = page.locator(".card[data-key=events_reported] .chg").first.get_attribute("data-change")
    assert float(change or "nan") == r_now - r_prev
    buildings = _figure(page, "buildings")
    assert int(buildings["value"]) == world.store.count("buildings")
    assert "本期上报事件" in (page.text_content(".highlights") or "")
    assert ctx.external == []
    ctx.close()


def test_console_needs_a_session(world: World) -> None:
    with httpx.Client(base_url=world.base, timeout=30, follow_redirects=False) as c:
        r = c.get("/console/", headers={"Accept": "text/html"})
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
        assert c.get("/console/dashboard").status_code == 401


def test_filter_and_act_on_an_event(chromium: Any, world: World) -> None:
    grids = world.store.read("grids")
    demo = grids.loc[grids["code"].str.startswith("990100001")].iloc[0]
    p = shapely.point_on_surface(demo.geometry)
    with httpx.Client(base_url=world.base, timeout=60) as c:
        c.headers["Authorization"] = f"Bearer {token(world.base, 'demo_admin')}"
        r = c.post(
            "/events",
            json={
                "category": "safety_hazard",
                "description": "合成测试 synthetic: 消防通道堵塞 fire lane blocked",
                "location": {"lon": p.x, "lat": p.y, "crs": "wgs84"},
            },
        )
        assert r.status_code == 201, r.text
        eid = r.json()["id"]
    ctx, page = _sign_in(chromium, world, "demo_town")
    wait(page, "document.body.dataset.ready === '1'", timeout=30000)
    page.select_option("#f-category", "safety_hazard")
    page.select_option("#f-status", "reported")
    page.click("#filters button[type=submit]")
    # Only reported safety hazards are listed (and the new one among them).
    wait(
        page,
        "(() => { const b = [...document.querySelectorAll('#event-list button')];"
        f" return b.some(e => e.dataset.eventId === '{eid}') &&"
        " b.every(e => e.textContent.includes('安全隐患') && e.textContent.includes('上报')); })()",
    )
    page.click(f"#event-list button[data-event-id='{eid}']")
    page.wait_for_selector(f"#event-detail[data-event-id='{eid}'] button[data-action=accept]")
    page.fill("#event-detail textarea", "受理,转社区核实 accepted")
    page.click("#event-detail button[data-action=accept]")
    wait(
        page,
        f"document.querySelector('#event-detail[data-event-id=\"{eid}\"] h3')"
        "?.textContent.includes('受理')",
    )
    page.screenshot(path=str(ARTIFACTS / "console-event-accepted.png"))
    with httpx.Client(base_url=world.base, timeout=60) as c:
        c.headers["Authorization"] = f"Bearer {token(world.base, 'demo_admin')}"
        assert c.get(f"/events/{eid}").json()["status"] == "accepted"
    ctx.close()


def test_one_session_opens_every_page(chromium: Any, world: World) -> None:
    """The overview map, the period report and the console share the sign-in."""
    ctx, page = _sign_in(chromium, world, "demo_town")
    page.goto(f"{world.base}/maps/overview")
    html = page.content()
    assert "leaflet" in html.lower()
    anonymous = httpx.get(f"{world.base}/maps/overview", timeout=60).text
    # Events are staff data: on the map for the signed-in coordinator only.
    assert "事件" in html and len(html) > len(anonymous)
    page.goto(f"{world.base}/console/")
    with page.expect_navigation():
        page.click("nav.main-nav a[href*='/reports/period']")
    assert page.url.startswith(f"{world.base}/reports/period?area=990100001&from=")
    assert "990100001" in page.content()
    page.screenshot(path=str(ARTIFACTS / "console-period-report.png"), full_page=True)
    assert ctx.external == []
    ctx.close()


def test_assign_a_worker_to_a_grid(chromium: Any, world: World) -> None:
    from gridmap.security.auth import add_user, get_user
    from gridmap.security.privacy import mask_name

    grids = sorted(world.store.read("grids")["code"])
    home, other = grids[1], grids[2]
    if get_user(world.store, "li_si") is None:
        add_user(world.store, "li_si", role="grid_worker", areas=[home], password=PASSWORD)
    ctx, page = _sign_in(chromium, world, "demo_town")
    wait(page, "document.body.dataset.ready === '1'", timeout=30000)
    page.click(".side-tabs button[data-side=grids]")
    page.fill("#grid-search", other)
    page.click(f"#grid-list button[data-grid='{other}']")
    page.wait_for_selector(f"#grid-detail[data-grid='{other}']")
    page.fill("#gd-assign input[name=user]", "li_si")
    page.click("#gd-assign button[type=submit]")
    page.wait_for_selector("#gd-workers li[data-worker='li_si']")
    page.screenshot(path=str(ARTIFACTS / "console-assign.png"))
    # /locate inside that grid now names the worker; the user works both grids.
    geom = world.store.read("grids", where={"code": other}).geometry.iloc[0]
    p = shapely.point_on_surface(geom)
    with httpx.Client(base_url=world.base, timeout=60) as c:
        c.headers["Authorization"] = f"Bearer {token(world.base, 'demo_admin')}"
        found = c.get("/locate", params={"lon": p.x, "lat": p.y, "crs": "wgs84"}).json()
    assert found["grid"]["code"] == other
    # Names are masked on /locate (张* style): li_si shows as l****.
    assert {"name": mask_name("li_si"), "role": "grid_worker"} in found["workers"]
    user = get_user(world.store, "li_si")
    assert user is not None and set(user.areas) == {home, other}
    ctx.close()


def test_event_plan_layer_draws_each_workers_route_and_key_areas(
    chromium: Any, world: World
) -> None:
    """A stored event plan on the console map: a colour per worker, key areas with windows."""
    community = "990100001001"
    grids = world.store.read("grids")
    mine = grids.loc[grids["code"].str.startswith(community)]
    area = shapely.union_all(mine.geometry.to_numpy())
    start = pd.Timestamp("2026-12-31T20:00:00+08:00")
    end = start + pd.Timedelta(hours=2)
    # a temporary event area (synthetic) valid for the window, beside the demo's key places
    centre = shapely.point_on_surface(mine.geometry.iloc[len(mine) // 2])
    temp = gpd.GeoDataFrame(
        {
            "name": ["跨年临时管控区 Temporary zone (合成数据)"],
            "kind": ["event"],
            "priority": [1],
            "community_code": [community],
            "valid_from": [start.tz_convert("UTC")],
            "valid_to": [end.tz_convert("UTC")],
            "frequency_min": [60.0],
            "dwell_min": [10.0],
            "source": ["console-test"],
            "source_id": ["temporary-zone-1"],
        },
        geometry=[shapely.buffer(centre, 0.0008)],
        crs=4326,
    )
    world.store.write("key_areas", temp)
    keys = world.store.read("key_areas")
    inside = keys.loc[keys.intersects(area).to_numpy()]
    ids = sorted(int(i) for i in inside["id"])[:5]
    temp_id = int(keys.loc[keys["source_id"] == "temporary-zone-1", "id"].iloc[0])
    ids = sorted({*ids[:4], temp_id})
    posts = [shapely.point_on_surface(g) for g in mine.geometry.iloc[:3]]
    body = {
        "name": "跨年夜安保 New Year's Eve",
        "area": {"code": community},
        "start": start.isoformat(),
        "end": end.isoformat(),
        "workers": [
            {"name": f"巡逻员{i + 1}", "start": {"lon": p.x, "lat": p.y}}
            for i, p in enumerate(posts)
        ],
        "key_areas": ids,
        "time_limit_s": 1.0,
    }
    with httpx.Client(base_url=world.base, timeout=120) as c:
        c.headers["Authorization"] = f"Bearer {token(world.base, 'demo_town')}"
        made = c.post("/patrol/plans", json=body)
        assert made.status_code == 201, made.text
        stored = c.get(f"/patrol/plans/{made.json()['id']}").json()
    pid = stored["id"]
    routes = stored["routes"]["features"]
    assert len(routes) == 3 and {f["id"] for f in stored["key_areas"]["features"]} <= set(ids)

    ctx, page = _sign_in(chromium, world, "demo_town")
    wait(page, "document.body.dataset.ready === '1'", timeout=30000)
    page.click(".side-tabs button[data-side=plans]")
    page.wait_for_selector(f"#plan-list button[data-plan-id='{pid}']", timeout=30000)
    page.click(f"#plan-list button[data-plan-id='{pid}']")
    wait(page, "document.getElementById('plan-detail').dataset.ready === '1'", timeout=30000)
    page.wait_for_timeout(500)
    page.screenshot(path=str(ARTIFACTS / "console-event-plan.png"))
    drawn = page.evaluate(
        "window.gridmapConsole.plan.routes.map(l => ({worker: l.options.worker, "
        "shift: l.options.shift, colour: l.options.color, n: l.getLatLngs().length}))"
    )
    # every route of the plan is drawn, with its own vertices, in one colour per worker
    want = sorted(
        (f["properties"]["worker"], f["properties"]["shift"], len(f["geometry"]["coordinates"]))
        for f in routes
    )
    assert sorted((d["worker"], d["shift"], d["n"]) for d in drawn) == want
    colours = {d["worker"]: d["colour"] for d in drawn}
    assert len(set(colours.values())) == len(colours) == 3
    listed = page.eval_on_selector_all(
        "#pd-workers li", "els => els.map(e => [e.dataset.worker, e.dataset.colour])"
    )
    assert {w: c for w, c in listed} == colours
    # key areas with their windows: the temporary zone shows its window, in Shanghai time
    n_areas = page.evaluate("window.gridmapConsole.plan.areas.getLayers().length")
    assert n_areas == len(stored["key_areas"]["features"]) >= 2
    window = page.get_attribute(f"#pd-areas li[data-key-area='{temp_id}']", "data-window")
    assert window == "12/31 20:00 – 12/31 22:00", window
    assert page.locator(f"#pd-areas li[data-key-area='{ids[0]}']").count() in (0, 1)
    # the printable plan and a worker's GPX (GCJ-02) through the same session
    href = page.get_attribute("#pd-pdf", "href")
    assert href == f"/patrol/plans/{pid}/print.pdf"
    pdf = page.request.get(f"{world.base}{href}")
    assert pdf.status == 200 and pdf.body()[:5] == b"%PDF-"
    page.select_option("#pd-crs", "gcj02")
    gpx_href = page.get_attribute("#pd-workers li:first-child a", "href") or ""
    assert "crs=gcj02" in gpx_href and f"/patrol/plans/{pid}/routes?worker=" in gpx_href
    gpx = page.request.get(f"{world.base}{gpx_href}")
    assert gpx.status == 200 and b"<gpx" in gpx.body()
    assert ctx.external == []
    ctx.close()
