"""Gi* hot spots on H3 cells: a planted cluster is found, random data gives few false hot cells."""

from __future__ import annotations

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import pytest
import shapely

from gridmap.analytics.binning import bin_counts
from gridmap.analytics.hotspots import (
    CLASSES,
    benjamini_hochberg,
    emerging_hot_spots,
    hot_spots,
    hotspots_as_key_areas,
    mann_kendall,
    study_cells,
)
from gridmap.common.errors import BadInput

# A study region in central Helsinki (real place; every event here is synthetic).
REGION = shapely.box(24.90, 60.15, 24.98, 60.19)
CELLS = study_cells(REGION, 9)
CENTRE = h3.latlng_to_cell(60.17, 24.94, 9)


def uniform(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"lon": rng.uniform(24.90, 24.98, n), "lat": rng.uniform(60.15, 60.19, n)})


def counts_of(points: pd.DataFrame) -> pd.Series:
    counts = bin_counts(points, 9).set_index("h3")["count"]
    return counts.reindex(CELLS).fillna(0).astype(int)


def test_planted_cluster_is_a_99_percent_hot_spot() -> None:
    rng = np.random.default_rng(1)
    lat, lon = h3.cell_to_latlng(CENTRE)
    cluster = pd.DataFrame(
        {"lon": lon + rng.normal(0, 0.003, 250), "lat": lat + rng.normal(0, 0.0015, 250)}
    )
    pts = pd.concat([uniform(2000, 2), cluster], ignore_index=True)
    hs = hot_spots(counts_of(pts), permutations=999, seed=3)
    assert hs.loc[CENTRE, "class"] == "hot_99"
    hot = hs.index[hs["class"] == "hot_99"]
    # Every 99 % hot cell is near the plant (within 3 rings of its centre).
    assert all(h3.grid_distance(CENTRE, c) <= 3 for c in hot)
    assert set(hs["class"]) <= set(CLASSES)
    assert hs.index.equals(pd.Index(CELLS))


@pytest.mark.parametrize("seed", range(6))
def test_random_data_yields_about_the_false_discovery_rate(seed: int) -> None:
    hs = hot_spots(counts_of(uniform(3000, 100 + seed)), permutations=499, seed=seed)
    inner = [c for c in CELLS if all(n in set(CELLS) for n in h3.grid_disk(c, 1))]
    flagged = (hs.loc[inner, "class"] != "none").mean()
    # Under the null, Benjamini-Hochberg at 10 % keeps false hot/cold cells rare.
    assert flagged <= 0.05


def test_benjamini_hochberg_and_mann_kendall() -> None:
    p = np.array([0.01, 0.04, 0.03, 0.005, 0.9])
    assert benjamini_hochberg(p, 0.05).tolist() == [True, True, True, True, False]
    assert benjamini_hochberg(np.array([]), 0.05).size == 0
    s, z, pv = mann_kendall(np.arange(6.0))
    assert s[0] == 15 and z[0] > 0 and pv[0] < 0.05
    flat = mann_kendall(np.array([[1.0], [1.0], [1.0], [1.0]]))
    assert flat[0][0] == 0 and flat[2][0] == 1.0


def test_degenerate_inputs() -> None:
    zeros = pd.Series(0, index=CELLS)
    assert (hot_spots(zeros)["class"] == "none").all()
    with pytest.raises(BadInput):
        hot_spots(zeros, permutations=10)
    with pytest.raises(BadInput):
        hot_spots(zeros, p_value="p_magic")


def test_emerging_hot_spot_patterns() -> None:
    rng = np.random.default_rng(7)
    t0 = pd.Timestamp("2026-09-01", tz="UTC")
    lat, lon = h3.cell_to_latlng(CENTRE)
    base = uniform(2500, 8)
    base["reported_at"] = t0 + pd.to_timedelta(rng.uniform(0, 60, len(base)), unit="D")
    growing = pd.DataFrame(
        {
            "lon": lon + rng.normal(0, 0.003, 400),
            "lat": lat + rng.normal(0, 0.0015, 400),
            # more and more events as time goes on
            "reported_at": t0 + pd.to_timedelta(np.sqrt(rng.uniform(0, 1, 400)) * 60, unit="D"),
        }
    )
    late_lat, late_lon = h3.cell_to_latlng(h3.latlng_to_cell(60.18, 24.91, 9))
    new = pd.DataFrame(
        {
            "lon": late_lon + rng.normal(0, 0.003, 150),
            "lat": late_lat + rng.normal(0, 0.0015, 150),
            "reported_at": t0 + pd.to_timedelta(rng.uniform(46, 60, 150), unit="D"),
        }
    )
    pts = pd.concat([base, growing, new], ignore_index=True)
    em = emerging_hot_spots(
        pts, CELLS, resolution=9, start=t0, end=t0 + pd.Timedelta(days=60), windows=4
    )
    assert em.loc[CENTRE, "pattern"] in ("intensifying", "persistent")
    assert em.loc[h3.latlng_to_cell(late_lat, late_lon, 9), "pattern"] == "new"
    assert set(em["pattern"]) <= {"new", "intensifying", "persistent", "diminishing", "none"}
    shrinking = pts.assign(reported_at=t0 + (t0 + pd.Timedelta(days=60) - pts["reported_at"]))
    shrinking = shrinking[~shrinking.index.isin(range(len(base) + 400, len(pts)))]
    em2 = emerging_hot_spots(
        shrinking, CELLS, resolution=9, start=t0, end=t0 + pd.Timedelta(days=60), windows=4
    )
    assert em2.loc[CENTRE, "pattern"] in ("diminishing", "persistent")
    with pytest.raises(BadInput):
        emerging_hot_spots(pts, CELLS, resolution=9, start=t0, end=t0, windows=4)


def test_hot_spots_feed_patrol_planning() -> None:
    hs = pd.DataFrame(
        {"class": ["hot_99", "hot_95", "hot_90", "none"], "count": [50, 30, 20, 3]},
        index=[CENTRE, *sorted(h3.grid_ring(CENTRE, 1))[:3]],
    )
    grids = gpd.GeoDataFrame(
        {"code": ["990100001001001"], "community_code": ["990100001001"]},
        geometry=[REGION],
        crs=4326,
    )
    em = pd.DataFrame({"pattern": ["none", "intensifying"]}, index=hs.index[:2])
    ka = hotspots_as_key_areas(hs, grids=grids, emerging=em)
    assert ka["kind"].unique().tolist() == ["key_area"]
    assert len(ka) == 2 and ka["priority"].tolist() == [1, 1]  # intensifying moved up
    assert ka["visits_per_day"].tolist() == [8.0, 8.0]  # Koper: every 2 h over 16 h
    assert ka["community_code"].tolist() == ["990100001001"] * 2
    assert set(ka["source_id"]) == set(hs.index[:2])
    assert (ka.geometry.geom_type == "Polygon").all()
    three = hotspots_as_key_areas(hs, min_class="hot_90", active_hours=12, max_gap_hours=3)
    assert three["visits_per_day"].tolist() == [4.0, 3.0, 2.0]
