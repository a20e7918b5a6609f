"""Tracks are stored on both stores and visible only to the right principals."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from gridmap.common.errors import NotFound
from gridmap.patrol.service import read_tracks, save_track
from gridmap.patrol.tracks import parse_track
from gridmap.security.access import Principal
from gridmap.security.auth import PermissionDenied

from .helpers import walk_track

GRID_A = "990100001001001"
GRID_B = "990100001001002"


def _grids(store) -> None:
    frame = gpd.GeoDataFrame(
        {
            "code": [GRID_A, GRID_B],
            "community_code": [GRID_A[:12]] * 2,
            "source": "test",
            "source_id": [GRID_A, GRID_B],
        },
        geometry=[
            shapely.box(24.94, 60.17, 24.95, 60.175),
            shapely.box(24.95, 60.17, 24.96, 60.175),
        ],
        crs=4326,
    )
    store.write("grids", frame)


def _track(seed: int):
    fixes = walk_track(shapely.LineString([(24.941, 60.171), (24.949, 60.171)]), seed=seed)
    csv = "lon,lat,time\n" + "\n".join(
        f"{x},{y},{t.isoformat()}" for x, y, t in zip(fixes.lon, fixes.lat, fixes.time, strict=True)
    )
    return parse_track(csv, crs="wgs84")


def test_tracks_visible_only_to_the_right_principals(store) -> None:
    _grids(store)
    li = Principal("li", "grid_worker", (GRID_A,))
    wang = Principal("wang", "grid_worker", (GRID_A,))
    coord_a = Principal("zhao", "town_coordinator", (GRID_A[:9],))
    coord_other = Principal("qian", "town_coordinator", ("990100002",))
    admin = Principal("sun", "city_admin")
    viewer = Principal("anon", "viewer")
    saved = save_track(store, _track(1), grid=GRID_A, principal=li)
    save_track(store, _track(2), grid=GRID_A, principal=wang)
    again = save_track(store, _track(1), grid=GRID_A, principal=li)
    assert again["id"] == saved["id"]  # idempotent upload
    assert store.count("patrol_tracks") == 2

    def names(p: Principal, **kw) -> list[str]:
        return sorted(read_tracks(store, p, **kw)["worker"])

    assert names(li) == ["li"]
    assert names(wang) == ["wang"]
    assert names(li, worker="wang") == []
    assert names(coord_a) == ["li", "wang"]
    assert names(coord_a, grid=GRID_A, day="2026-05-01") == ["li", "wang"]
    assert names(coord_a, day="2026-05-02") == []
    assert names(coord_other) == []
    assert names(admin) == ["li", "wang"]
    with pytest.raises(PermissionDenied):
        read_tracks(store, viewer)
    with pytest.raises(NotFound):
        read_tracks(store, wang, track_id=saved["id"])
    with pytest.raises(NotFound):
        read_tracks(store, coord_other, track_id=saved["id"])
    assert len(read_tracks(store, coord_a, track_id=saved["id"])) == 1
    # A worker cannot upload a track for someone else, nor for a grid outside their area.
    with pytest.raises(PermissionDenied):
        save_track(store, _track(3), grid=GRID_A, worker="wang", principal=li)
    with pytest.raises(PermissionDenied):
        save_track(store, _track(3), grid=GRID_B, principal=li)
    row = read_tracks(store, admin, track_id=saved["id"]).iloc[0]
    assert row["point_count"] == len(_track(1).fixes)
    assert pd.Timestamp(row["started_at"]) == pd.Timestamp("2026-05-01T08:00:00Z")
