"""H3 binning, kernel density, per-grid rates and the small-count rule (synthetic points)."""

from __future__ import annotations

from collections import Counter

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import pytest
import shapely

from gridmap.analytics.binning import (
    add_rates,
    bin_counts,
    cell_polygons,
    h3_index,
    population_per_cell,
)
from gridmap.analytics.gridcounts import grid_counts, grid_period_table
from gridmap.analytics.heat import tile_resolution
from gridmap.analytics.kde import kde_bandwidth, kde_surface
from gridmap.analytics.queries import EventQuery, event_cell_counts, fill_event_cells
from gridmap.analytics.smallcounts import needs_protection, protect_small_counts
from gridmap.common.errors import BadInput
from gridmap.geo.h3cells import H3_RESOLUTIONS, check_resolution, latlng_to_cells, point_cells
from gridmap.security.access import SYSTEM, Principal
from gridmap.storage import Store

RNG = np.random.default_rng(20261128)
# Synthetic events over central Helsinki (real place, invented events).
LON = RNG.uniform(24.90, 24.98, 20_000)
LAT = RNG.uniform(60.15, 60.19, 20_000)


@pytest.mark.parametrize("resolution", [7, 9, 11])
def test_counts_equal_brute_force(resolution: int) -> None:
    pts = pd.DataFrame({"lon": LON, "lat": LAT})
    got = bin_counts(pts, resolution).set_index("h3")["count"].to_dict()
    expected = Counter(
        h3.latlng_to_cell(y, x, resolution) for x, y in zip(LON.tolist(), LAT.tolist(), strict=True)
    )
    assert got == dict(expected)


def test_bad_coordinates_are_left_out() -> None:
    lon = np.array([24.94, np.nan, np.inf, 200.0, 24.94])
    lat = np.array([60.17, 60.17, 60.17, 60.17, 91.0])
    cells = latlng_to_cells(lon, lat, 9)
    assert cells[0] != 0 and (cells[1:] == 0).all()
    assert bin_counts(pd.DataFrame({"lon": lon, "lat": lat}), 9)["count"].tolist() == [1]
    assert len(bin_counts(pd.DataFrame({"lon": [], "lat": []}), 9)) == 0


def test_h3_index_is_aligned() -> None:
    gdf = gpd.GeoDataFrame(
        geometry=[shapely.Point(24.94, 60.17), None, shapely.box(24.94, 60.17, 24.941, 60.171)],
        index=[10, 20, 30],
        crs=4326,
    )
    out = h3_index(gdf, 10)
    assert out.index.tolist() == [10, 20, 30]
    assert out[10] == h3.latlng_to_cell(60.17, 24.94, 10) and out[20] is None


@pytest.mark.parametrize("bad", [6, 12, "9", 9.0, True, None])
def test_resolution_is_checked(bad: object) -> None:
    with pytest.raises(BadInput) as err:
        check_resolution(bad)
    assert err.value.field == "resolution"


def test_open_counts_and_rates() -> None:
    cell = h3.latlng_to_cell(60.17, 24.94, 9)
    pts = pd.DataFrame(
        {
            "lon": [24.94] * 4,
            "lat": [60.17] * 4,
            "status": ["closed", "reported", "handling", "closed"],
        }
    )
    cells = bin_counts(pts, 9)
    assert cells.to_dict("records") == [{"h3": cell, "count": 4, "open": 2}]
    buildings = pd.DataFrame(
        {
            "lon": [24.94, 24.94],
            "lat": [60.17, 60.17],
            "residents": [1500, 500],
            "households": [800, None],
        }
    )
    pop = population_per_cell(buildings, 9)
    assert add_rates(cells, pop, "per_1000_residents")["rate"].tolist() == [2.0]
    assert add_rates(cells, pop, "per_1000_households")["rate"].tolist() == [5.0]
    with pytest.raises(BadInput):
        add_rates(cells, pop, "per_cat")


def test_small_counts_hidden_or_merged() -> None:
    parent = h3.latlng_to_cell(60.17, 24.94, 9)
    kids = sorted(h3.cell_to_children(parent, 10))
    cells = pd.DataFrame({"h3": kids[:4], "count": [7, 1, 1, 2], "open": [1, 0, 1, 2]})
    merged = protect_small_counts(cells, k=3)
    assert merged["count"].min() >= 3
    assert merged.loc[merged["merged"], "h3"].tolist() == [parent]
    assert merged.loc[merged["merged"], "count"].tolist() == [4]
    assert merged.loc[~merged["merged"], "open"].isna().all()  # 1 open event is a small count
    lone = pd.DataFrame({"h3": kids[:2], "count": [7, 2]})
    assert protect_small_counts(lone, k=3)["count"].tolist() == [7]  # 2 alone is not shown
    assert protect_small_counts(cells, k=3, mode="hide")["count"].tolist() == [7]


def test_who_needs_protection() -> None:
    assert needs_protection("viewer", ["safety_hazard"])
    assert needs_protection("external_system", ["safety_hazard"])
    assert needs_protection("city_admin", ["dispute"])
    assert needs_protection("city_admin", ["public_security"])
    assert needs_protection("city_admin", None)
    assert not needs_protection("grid_worker", ["city_management"])


def test_event_query_validation() -> None:
    with pytest.raises(BadInput) as err:
        EventQuery(category="nonsense")
    assert err.value.field == "category"
    with pytest.raises(BadInput) as err:
        EventQuery(start=pd.Timestamp("2026-01-01"))
    assert err.value.field == "start"
    t = pd.Timestamp("2026-01-01", tz="UTC")
    with pytest.raises(BadInput) as err:
        EventQuery(start=t, end=t)
    assert err.value.field == "from"


def test_kde_in_metres_with_documented_bandwidth() -> None:
    rng = np.random.default_rng(5)
    # 400 synthetic events around a point in Helsinki, σ ≈ 100 m in each direction.
    lon = 24.94 + rng.normal(0, 100 / 55_400, 400)
    lat = 60.17 + rng.normal(0, 100 / 111_300, 400)
    pts = pd.DataFrame({"lon": lon, "lat": lat})
    s = kde_surface(pts)
    assert s.crs.to_epsg() == 32635
    expected = 100 * 400 ** (-1 / 6)  # Scott: σ n^(-1/6)
    assert s.bandwidth_m == pytest.approx(expected, rel=0.15)
    assert s.cell_m == pytest.approx(max(5.0, s.bandwidth_m / 5))
    total = s.density.sum() * (s.cell_m / 1000) ** 2
    assert total == pytest.approx(400, rel=0.01)
    peak_row, peak_col = np.unravel_index(np.argmax(s.density), s.density.shape)
    centre = gpd.GeoSeries([shapely.Point(24.94, 60.17)], crs=4326).to_crs(s.crs)
    assert abs(s.x[peak_col] - centre.x[0]) < 50 and abs(s.y[peak_row] - centre.y[0]) < 50
    wide = kde_surface(pts, bandwidth=300.0, cell_m=30.0)
    assert wide.bandwidth_m == 300.0 and wide.density.max() < s.density.max()
    assert kde_bandwidth(np.r_[0.0, 1.0], np.r_[0.0, 1.0], "silverman") > 0
    for bad in ("nope", -5.0, float("nan")):
        with pytest.raises(BadInput):
            kde_surface(pts, bandwidth=bad)
    with pytest.raises(BadInput):
        kde_surface(pts, bandwidth=10.0, cell_m=0.1)
    assert len(s.to_points()) > 0


def test_grid_counts_are_aligned_and_comparable_across_periods() -> None:
    grids = pd.DataFrame(
        {"code": ["g1", "g2", "g3"], "residents": [1000, 2000, 0], "households": [400, 800, 0]},
        index=[5, 6, 7],
    )
    events = pd.DataFrame(
        {
            "grid_code": ["g1", "g1", "g2", "g2", "g3", "gx"],
            "status": ["closed", "reported", "closed", "closed", "reported", "closed"],
            "reported_at": pd.to_datetime(
                [
                    "2026-02-01",
                    "2026-02-15",
                    "2026-03-01",
                    "2026-03-31",
                    "2026-03-02",
                    "2026-03-03",
                ],
                utc=True,
            ),
        }
    )
    out = grid_counts(grids, events)
    assert out.index.tolist() == [5, 6, 7]
    assert out["count"].tolist() == [2, 2, 1] and out["open"].tolist() == [1, 0, 1]
    assert out["per_1000_residents"].tolist()[:2] == [2.0, 1.0]
    assert np.isnan(out["per_1000_residents"].iloc[2])
    table = grid_period_table(grids, events)
    assert set(table["period"]) == {"2026-02", "2026-03"} and len(table) == 6
    feb = table[(table["period"] == "2026-02") & (table["code"] == "g1")].iloc[0]
    assert feb["days"] == 28 and feb["per_1000_residents_30d"] == pytest.approx(2 * 30 / 28)


def test_docstring_examples_run() -> None:
    import doctest

    import gridmap.analytics.binning
    import gridmap.analytics.gridcounts
    import gridmap.analytics.heat
    import gridmap.analytics.hotspots
    import gridmap.analytics.kde
    import gridmap.analytics.queries
    import gridmap.analytics.smallcounts
    import layers.heat

    modules = (
        gridmap.analytics.binning,
        gridmap.analytics.gridcounts,
        gridmap.analytics.heat,
        gridmap.analytics.hotspots,
        gridmap.analytics.kde,
        gridmap.analytics.queries,
        gridmap.analytics.smallcounts,
        layers.heat,
    )
    for module in modules:
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE, verbose=False)
        assert result.failed == 0 and result.attempted >= 5, module.__name__


def test_point_cells_equal_h3_at_every_resolution() -> None:
    pts = shapely.points(LON[:2000], LAT[:2000])
    cells = point_cells(pts)
    assert cells.columns.tolist() == [f"h3_r{r}" for r in H3_RESOLUTIONS]
    for r in H3_RESOLUTIONS:
        got = [format(int(c), "x") for c in cells[f"h3_r{r}"]]
        assert got == [
            h3.latlng_to_cell(y, x, r) for x, y in zip(LON[:2000], LAT[:2000], strict=True)
        ]
    # Why one column per resolution: a point's cell is not always its finer cell's parent.
    fine = [h3.cell_to_parent(format(int(c), "x"), 9) for c in cells["h3_r11"]]
    assert fine != [format(int(c), "x") for c in cells["h3_r9"]]


def _synthetic_events(n: int = 3000) -> gpd.GeoDataFrame:
    """Seeded synthetic events over central Helsinki in two grids of one community."""
    rng = np.random.default_rng(7)
    return gpd.GeoDataFrame(
        {
            "category": rng.choice(["safety_hazard", "dispute"], n),
            "status": rng.choice(["reported", "handling", "closed", "merged"], n),
            "grid_code": rng.choice(["990100001001001", "990100001001002"], n),
            "reported_at": pd.Timestamp("2026-10-01T00:00:00Z")
            + pd.to_timedelta(rng.uniform(0, 30, n), unit="D"),
            "synthetic": True,
            "source": "synthetic",
            "source_id": [f"cells-{i}" for i in range(n)],
        },
        geometry=shapely.points(LON[:n], LAT[:n]),
        crs=4326,
    )


def _brute(events: gpd.GeoDataFrame, resolution: int) -> dict[str, tuple[int, int]]:
    events = events[events["status"] != "merged"]
    out: dict[str, list[int]] = {}
    for p, status in zip(events.geometry, events["status"], strict=True):
        c = out.setdefault(h3.latlng_to_cell(p.y, p.x, resolution), [0, 0])
        c[0] += 1
        c[1] += status in ("reported", "handling")
    return {k: (v[0], v[1]) for k, v in out.items()}


def _counts(store: Store, query: EventQuery, principal: Principal, resolution: int) -> dict:
    got = event_cell_counts(store, query, principal=principal, resolution=resolution)
    return {h: (int(c), int(o)) for h, c, o in got[["h3", "count", "open"]].itertuples(index=False)}


def test_store_counts_equal_brute_force_with_and_without_stored_cells(store: Store) -> None:
    events = _synthetic_events()
    store.write("events", events)
    stored = store.read("events", where={"source_id": "cells-0"})
    assert int(stored["h3_r11"].iloc[0]) == h3.str_to_int(
        h3.latlng_to_cell(LAT[0], LON[0], 11)
    )  # filled on write
    worker = Principal("wang", "grid_worker", ("990100001001002",))
    query = EventQuery(category="safety_hazard", bbox=(24.91, 60.155, 24.97, 60.185))
    mine = events[
        (events["grid_code"] == "990100001001002") & (events["category"] == "safety_hazard")
    ]
    inside = mine[
        (mine.geometry.x >= 24.91)
        & (mine.geometry.x <= 24.97)
        & (mine.geometry.y >= 60.155)
        & (mine.geometry.y <= 60.185)
    ]
    for r in H3_RESOLUTIONS:
        assert _counts(store, EventQuery(), SYSTEM, r) == _brute(events, r)
    assert _counts(store, query, worker, 10) == _brute(inside, 10)
    # Rows stored before migration 011 have no cells: binned in Python, same answer.
    store.sql("UPDATE events SET h3_r7 = NULL, h3_r9 = NULL, h3_r11 = NULL WHERE mod(id, 3) = 0")
    for r in (7, 9, 11):
        assert _counts(store, EventQuery(), SYSTEM, r) == _brute(events, r)
    assert _counts(store, query, worker, 9) == _brute(inside, 9)
    filled = fill_event_cells(store, batch=400)
    assert filled == len(events) // 3
    assert fill_event_cells(store) == 0
    assert store.sql("SELECT count(*) FROM events WHERE h3_r9 IS NULL")[0][0] == 0
    assert _counts(store, EventQuery(), SYSTEM, 9) == _brute(events, 9)


def test_tile_resolution_mapping() -> None:
    assert [tile_resolution(z) for z in range(25)] == [7] * 11 + [8, 9, 9, 10] + [11] * 10


@pytest.mark.browser
def test_hazard_map_period_selector_in_chromium() -> None:
    from layers.heat import hazard_map
    from tests.browser import MemoryPage, launch

    def cells(names: list[str]) -> gpd.GeoDataFrame:
        return gpd.GeoDataFrame(
            {"h3": names, "count": [3] * len(names)},
            geometry=cell_polygons(names),
            crs=4326,
        )

    a, b = h3.latlng_to_cell(60.17, 24.94, 9), h3.latlng_to_cell(60.18, 24.95, 9)
    label = "2026-10 <img src=x onerror=alert(1)>"
    html = hazard_map(cells={"2026-09": cells([a]), label: cells([a, b])}, lang="en")
    html = html.get_root().render()
    for browser in launch():
        page = MemoryPage(browser, html)
        options = page.js(
            "Array.from(document.querySelectorAll('.gridmap-period option'))"
            ".map(o => [o.textContent, o.selected])"
        )
        assert options == [["2026-09", False], [label, True]]
        paths = "document.querySelectorAll('path.leaflet-interactive').length"
        assert page.js(paths) == 2  # the last period is shown: two cells
        page.page.select_option(".gridmap-period select", "0")
        assert page.js(paths) == 1
        page.page.select_option(".gridmap-period select", "1")
        assert page.js(paths) == 2
        assert page.errors == [] and page.external == [], (page.errors, page.external)


def test_events_stored_before_migration_011_are_backfilled(store_url: str) -> None:
    from gridmap.storage import open_store

    store = open_store(store_url, migrate=False)
    try:
        store.migrate(target=10)
        point = (
            "ST_Point(?, ?)"
            if store.dialect == "duckdb"
            else "ST_SetSRID(ST_MakePoint(%s, %s), 4326)"
        )
        ph = "?" if store.dialect == "duckdb" else "%s"
        for i in range(40):
            store.sql(  # type: ignore[attr-defined]
                f"INSERT INTO events (source_key, category, status, grid_code, geometry) "
                f"VALUES ({ph}, 'safety_hazard', 'reported', '990100001001001', {point})",
                [f"old:{i}", float(LON[i]), float(LAT[i])],
            )
        assert store.migrate() >= 11
        old = gpd.GeoDataFrame(
            {"status": ["reported"] * 40},
            geometry=shapely.points(LON[:40], LAT[:40]),
            crs=4326,
        )
        assert _counts(store, EventQuery(), SYSTEM, 10) == _brute(old, 10)  # binned in Python
        assert fill_event_cells(store) == 40
        assert _counts(store, EventQuery(), SYSTEM, 10) == _brute(old, 10)  # counted in SQL
        nulls = store.sql("SELECT count(*) FROM events WHERE h3_r10 IS NULL")  # type: ignore[attr-defined]
        assert nulls[0][0] == 0
    finally:
        store.close()
