"""Street-coverage routes: every required edge walked, length at the exact bound."""

from __future__ import annotations

import networkx as nx
import pytest
import shapely

from gridmap.common.errors import BadInput
from gridmap.patrol.network import street_network
from gridmap.patrol.postman import postman_route

from .helpers import lattice_roads


def _und(edges):
    return {(min(u, v), max(u, v), k) for u, v, k in edges}


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_route_covers_every_required_edge_at_the_bound(seed: int) -> None:
    net = street_network(lattice_roads(n=6, seed=seed))
    route = postman_route(net)
    assert _und(net.required_edges) <= _und(route.edges)
    assert route.nodes[0] == route.nodes[-1]
    if route.exact:
        assert route.length_m == pytest.approx(route.lower_bound_m, rel=1e-9)
    # Independent check: the bound from networkx on the metric closure of odd nodes.
    ref = postman_route(net, method="networkx")
    assert route.length_m == pytest.approx(ref.length_m, rel=1e-9)


def test_bound_matches_textbook_chinese_postman() -> None:
    """All edges required on a connected graph: the classic CPP optimum."""
    net = street_network(lattice_roads(n=5, seed=5))
    every = list(net.graph.edges(keys=True))
    route = postman_route(net, required=every)
    g = nx.Graph()
    for u, v, d in net.graph.edges(data="length"):
        g.add_edge(u, v, weight=d)
    odd = [n for n, deg in net.graph.degree() if deg % 2]
    dist = dict(nx.all_pairs_dijkstra_path_length(g))
    k = nx.Graph()
    for i, a in enumerate(odd):
        for b in odd[i + 1 :]:
            k.add_edge(a, b, weight=dist[a][b])
    matching = sum(dist[a][b] for a, b in nx.min_weight_matching(k))
    total = sum(d for _, _, d in net.graph.edges(data="length"))
    assert route.exact
    assert route.length_m == pytest.approx(total + matching, rel=1e-9)


def test_required_area_and_start_point() -> None:
    roads = lattice_roads(n=6, seed=0)
    area = shapely.box(*roads.total_bounds).buffer(-0.0005)
    net = street_network(roads, area=area)
    assert 0 < len(net.required_edges) < net.graph.number_of_edges()
    start = (24.9405, 60.1705)
    route = postman_route(net, start=start)
    assert _und(net.required_edges) <= _und(route.edges)
    assert route.steps and route.steps[0].turn == "depart"
    assert {"straight", "left", "right"} & {s.turn for s in route.steps}
    assert all(s.text_zh and s.text_en for s in route.steps)
    geom = route.geometry()
    assert geom.is_valid and geom.coords[0] == geom.coords[-1]


def test_disconnected_network_is_repaired_and_reported() -> None:
    a = lattice_roads(n=3)
    b = lattice_roads(lon0=24.96, n=3)
    import geopandas as gpd
    import pandas as pd

    roads = gpd.GeoDataFrame(pd.concat([a, b], ignore_index=True), crs=4326)
    net = street_network(roads)
    assert net.components == 2 and len(net.connectors) == 1
    route = postman_route(net)
    assert not route.exact and route.components == 2
    assert _und(net.required_edges) <= _und(route.edges)


def test_bad_inputs() -> None:
    roads = lattice_roads(n=3)
    with pytest.raises(BadInput, match="network mode"):
        street_network(roads, mode="fly")  # type: ignore[arg-type]
    far = shapely.box(0, 0, 0.001, 0.001)
    with pytest.raises(BadInput, match="no walk roads"):
        street_network(roads, area=far)
    with pytest.raises(BadInput, match="matching method"):
        postman_route(street_network(roads), method="greedy")  # type: ignore[arg-type]
