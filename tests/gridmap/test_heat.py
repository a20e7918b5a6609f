"""H3 binning, kernel density, per-grid rates and the small-count rule (synthetic points)."""

from __future__ import annotations

from collections import Counter

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import pytest
import shapely

from gridmap.errors import BadInput
from gridmap.heat import (
    EventQuery,
    add_rates,
    bin_counts,
    check_resolution,
    grid_counts,
    grid_period_table,
    h3_index,
    kde_bandwidth,
    kde_surface,
    latlng_to_cells,
    needs_protection,
    population_per_cell,
    protect_small_counts,
)

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

    import gridmap.heat
    import gridmap.hotspots
    import layers.heat

    for module in (gridmap.heat, gridmap.hotspots, layers.heat):
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE, verbose=False)
        assert result.failed == 0 and result.attempted >= 5, module.__name__
