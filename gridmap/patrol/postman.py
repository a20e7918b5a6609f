"""Street-coverage routes: the undirected Chinese / rural postman problem.

A patrol must walk every required street of its grid and come back to where
it started. The classic construction (Edmonds & Johnson) is exact for a
connected set of required streets:

1. the required edges give every node a degree; nodes of odd degree must be
   joined in pairs by extra walks (deadheading);
2. the cheapest extra walks form a minimum-weight T-join of the odd nodes in
   the whole network (optional streets may be used), i.e. a minimum-weight
   perfect matching of the odd nodes under shortest-path distances;
3. the required edges plus the T-join form an Eulerian multigraph, whose
   Euler circuit from the start node is the route.

Its length is then exactly the lower bound *required length + minimum matching
cost*. The matching is solved by sparse blossom on the street graph
(PyMatching, exact and fast) or by networkx's blossom on the metric closure
(``method="networkx"``, the slow reference). When the required streets fall in
several pieces (rural postman, NP-hard), the pieces are first joined along a
minimum spanning tree of shortest paths (Frederickson's heuristic) and the
route is flagged ``exact=False``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
import shapely

from gridmap.common.errors import BadInput
from gridmap.common.extras import LazyModule
from gridmap.patrol.network import EdgeKey, StreetNetwork, street_name

if TYPE_CHECKING:
    import networkx as nx
else:  # the [patrol] extra, imported on first use
    nx = LazyModule("networkx", extra="patrol")
_csgraph = LazyModule("scipy.sparse.csgraph", extra="patrol")

__all__ = ["MatchingMethod", "PostmanRoute", "Step", "postman_route", "turn_steps"]

MatchingMethod = Literal["blossom", "networkx"]
FloatArray = npt.NDArray[np.float64]

_TURNS = {
    "depart": ("出发", "Start"),
    "straight": ("直行", "Continue straight"),
    "slight_left": ("稍向左转", "Bear left"),
    "left": ("左转", "Turn left"),
    "slight_right": ("稍向右转", "Bear right"),
    "right": ("右转", "Turn right"),
    "u_turn": ("掉头", "Make a U-turn"),
}


@dataclass(frozen=True)
class Step:
    """One turn-by-turn instruction: a turn, then a stretch along one street."""

    street: str
    turn: str
    distance_m: float
    text_zh: str
    text_en: str


@dataclass
class PostmanRoute:
    """A closed walk covering the required streets.

    Attributes
    ----------
    edges : list of (u, v, key)
        Edges in travel order, each oriented u → v.
    length_m : float
        Total length walked.
    required_length_m : float
        Length of the required streets.
    matching_m : float
        Extra (deadhead) length of the minimum T-join / matching.
    connection_m : float
        Extra length joining separate pieces of required streets (0 when exact).
    exact : bool
        Whether ``length_m`` is provably minimal (required streets connected).
    """

    network: StreetNetwork
    edges: list[EdgeKey]
    start: int
    required_length_m: float
    matching_m: float
    connection_m: float
    exact: bool
    method: str
    components: int = 1
    steps: list[Step] = field(default_factory=list)

    @property
    def length_m(self) -> float:
        """Length of the closed walk in metres."""
        g = self.network.graph
        return float(sum(g.edges[e]["length"] for e in self.edges))

    @property
    def lower_bound_m(self) -> float:
        """Required length + minimum matching cost (+ connections when not exact)."""
        return self.required_length_m + self.matching_m + self.connection_m

    @property
    def nodes(self) -> list[int]:
        """Nodes visited in order (first = last = start)."""
        return [self.start] + [v for _, v, _ in self.edges]

    def coords(self) -> FloatArray:
        """Metric coordinates of the whole walk."""
        return self.network.walk_coords(self.start, self.edges)

    def geometry(self) -> shapely.LineString:
        """The walk as a WGS84 line string."""
        return shapely.LineString(self.network.to_wgs84(self.coords()))


def postman_route(
    net: StreetNetwork,
    *,
    start: tuple[float, float] | None = None,
    required: Sequence[EdgeKey] | None = None,
    method: MatchingMethod = "blossom",
) -> PostmanRoute:
    """Plan a closed walk that traverses every required edge at least once.

    Parameters
    ----------
    net : StreetNetwork
        The network (see :func:`gridmap.patrol.network.street_network`).
    start : (lon, lat), optional
        WGS84 start point; the nearest node of a required street is used
        (default: the first required edge).
    required : sequence of (u, v, key), optional
        Edges to cover (default: the network's required edges).
    method : {"blossom", "networkx"}
        Sparse blossom on the street graph (fast) or networkx's blossom on the
        complete graph of odd nodes (reference, cubic time).

    Returns
    -------
    PostmanRoute
        With turn-by-turn ``steps``.

    Raises
    ------
    gridmap.common.errors.BadInput
        When there is nothing to cover.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> roads = gpd.GeoDataFrame({"name": ["A", "B"]}, crs=4326, geometry=[
    ...     shapely.LineString([(24.94, 60.17), (24.945, 60.17), (24.95, 60.17)]),
    ...     shapely.LineString([(24.945, 60.17), (24.945, 60.175)])])
    >>> from gridmap.patrol.network import street_network
    >>> route = postman_route(street_network(roads))
    >>> round(route.length_m) == round(route.lower_bound_m), route.exact
    (True, True)
    """
    if method not in ("blossom", "networkx"):
        raise BadInput(
            f"matching method must be blossom or networkx, got {method!r}", field="method"
        )
    g = net.graph
    req = list(required) if required is not None else net.required_edges
    if not req:
        raise BadInput("there are no required streets to patrol", field="grid")
    req_len = float(sum(g.edges[e]["length"] for e in req))
    multi = nx.MultiGraph()
    for u, v, k in req:
        multi.add_edge(u, v, eid=(u, v, k))
    pieces = [list(c) for c in nx.connected_components(multi)]
    connection = 0.0
    if len(pieces) > 1:
        connection = _join_pieces(net, multi, pieces)
    odd = [n for n, d in multi.degree() if d % 2]
    join = _t_join(net, odd, method) if odd else []
    matching = float(sum(g.edges[e]["length"] for e in join))
    for u, v, k in join:
        multi.add_edge(u, v, eid=(u, v, k))
    if start is not None:
        x, y = net.project(*start)
        first = net.nearest_node(x, y, among=[n for n in multi.nodes])
    else:
        first = req[0][0]
    circuit = nx.eulerian_circuit(multi, source=first, keys=True)
    edges: list[EdgeKey] = []
    for a, b, key in circuit:
        edges.append((a, b, multi.edges[a, b, key]["eid"][2]))
    route = PostmanRoute(
        network=net,
        edges=edges,
        start=first,
        required_length_m=req_len,
        matching_m=matching,
        connection_m=connection,
        exact=len(pieces) == 1,
        method=method,
        components=len(pieces),
    )
    route.steps = turn_steps(net, edges)
    return route


def _node_path(pred: npt.NDArray[np.int32], target: int) -> list[int]:
    out = [target]
    while pred[out[-1]] >= 0:
        out.append(int(pred[out[-1]]))
    return out[::-1]


def _path_edges(net: StreetNetwork, rows: list[int]) -> list[EdgeKey]:
    nodes = [net.nodes[r] for r in rows]
    return [(a, b, net.best_edge(a, b)) for a, b in itertools.pairwise(nodes)]


def _join_pieces(net: StreetNetwork, multi: nx.MultiGraph, pieces: list[list[int]]) -> float:
    """Join separate pieces of required streets along an MST of shortest paths."""
    mat = net.matrix()
    piece_of = {net.index_of(n): i for i, p in enumerate(pieces) for n in p}
    comp = nx.Graph()
    paths: dict[tuple[int, int], list[int]] = {}
    for i, piece in enumerate(pieces):
        src = [net.index_of(n) for n in piece]
        dist, pred, _ = _csgraph.dijkstra(
            mat, directed=False, indices=src, return_predecessors=True, min_only=True
        )
        best: dict[int, tuple[float, int]] = {}
        for row, j in piece_of.items():
            if j != i and np.isfinite(dist[row]) and (j not in best or dist[row] < best[j][0]):
                best[j] = (float(dist[row]), row)
        for j, (d, row) in best.items():
            a, b = min(i, j), max(i, j)
            if not comp.has_edge(a, b) or d < comp[a][b]["weight"]:
                comp.add_edge(a, b, weight=d)
                paths[(a, b)] = _node_path(pred, row)
    if nx.number_connected_components(comp) > 1 or comp.number_of_nodes() < len(pieces):
        raise BadInput("required streets cannot all be reached from each other", field="grid")
    total = 0.0
    for a, b in nx.minimum_spanning_edges(comp, data=False):
        for e in _path_edges(net, paths[(min(a, b), max(a, b))]):
            multi.add_edge(e[0], e[1], eid=e)
            total += float(net.graph.edges[e]["length"])
    return total


def _t_join(net: StreetNetwork, odd: list[int], method: MatchingMethod) -> list[EdgeKey]:
    """Minimum-weight T-join of the *odd* nodes (edges to walk once more)."""
    if method == "networkx":
        return _t_join_networkx(net, odd)
    import pymatching

    mat = net.matrix().tocoo()
    m = pymatching.Matching()
    upper = mat.row < mat.col
    for a, b, w in zip(mat.row[upper], mat.col[upper], mat.data[upper], strict=True):
        m.add_edge(int(a), int(b), weight=float(w), merge_strategy="smallest-weight")
    n = mat.shape[0]
    if m.num_detectors < n:  # isolated nodes: pad so the syndrome fits
        m.add_boundary_edge(n - 1, weight=1e12, merge_strategy="smallest-weight")
    syndrome = np.zeros(m.num_detectors, dtype=np.uint8)
    syndrome[[net.index_of(x) for x in odd]] = 1
    pairs = m.decode_to_edges_array(syndrome)
    if (pairs < 0).any():
        raise BadInput("odd street ends cannot be paired (disconnected network)", field="grid")
    return _path_edges_pairs(net, pairs)


def _path_edges_pairs(net: StreetNetwork, pairs: npt.NDArray[np.int64]) -> list[EdgeKey]:
    nodes = net.nodes
    return [
        (nodes[a], nodes[b], net.best_edge(nodes[a], nodes[b]))
        for a, b in pairs.astype(int).tolist()
    ]


def _t_join_networkx(net: StreetNetwork, odd: list[int]) -> list[EdgeKey]:
    rows = [net.index_of(x) for x in odd]
    dist, pred = _csgraph.dijkstra(
        net.matrix(), directed=False, indices=rows, return_predecessors=True
    )
    complete = nx.Graph()
    for i in range(len(rows)):
        for j in range(i + 1, len(rows)):
            if not np.isfinite(dist[i, rows[j]]):
                raise BadInput("odd street ends cannot be paired (disconnected)", field="grid")
            complete.add_edge(i, j, weight=float(dist[i, rows[j]]))
    out: list[EdgeKey] = []
    for i, j in nx.min_weight_matching(complete):
        out.extend(_path_edges(net, _node_path(pred[i], rows[j])))
    return out


# -- turn-by-turn -------------------------------------------------------------
def _heading(coords: FloatArray, *, at_end: bool) -> float:
    """Bearing (radians, counter-clockwise from east) at the start or end of a line."""
    if at_end:
        a, b = coords[-2], coords[-1]
    else:
        a, b = coords[0], coords[1]
    return math.atan2(float(b[1] - a[1]), float(b[0] - a[0]))


def _turn(before: float, after: float) -> str:
    delta = math.degrees((after - before + math.pi) % (2 * math.pi) - math.pi)
    size = abs(delta)
    if size < 25:
        return "straight"
    if size > 155:
        return "u_turn"
    side = "left" if delta > 0 else "right"
    return f"slight_{side}" if size < 60 else side


def turn_steps(net: StreetNetwork, edges: Sequence[EdgeKey]) -> list[Step]:
    """Group a walk into turn-by-turn steps (one per street stretch), zh-CN and English.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> from gridmap.patrol.network import street_network
    >>> roads = gpd.GeoDataFrame({"name": ["东路", "北路"]}, crs=4326, geometry=[
    ...     shapely.LineString([(24.94, 60.17), (24.95, 60.17)]),
    ...     shapely.LineString([(24.95, 60.17), (24.95, 60.175)])])
    >>> net = street_network(roads)
    >>> u, v, k = net.graph.edges(keys=True).__iter__().__next__()
    >>> [s.turn for s in turn_steps(net, [(u, v, k)])]
    ['depart']
    """
    g = net.graph
    steps: list[Step] = []
    current: dict[str, Any] | None = None
    prev_heading: float | None = None
    for u, v, k in edges:
        d = g.edges[u, v, k]
        coords = net.oriented(u, v, k)
        label = street_name(d["name"], connector=d["connector"])
        label_en = street_name(d["name"], connector=d["connector"], lang="en")
        if current is not None and current["street"] == label:
            current["distance"] += d["length"]
        else:
            if current is not None:
                steps.append(_step(current))
            turn = (
                "depart"
                if prev_heading is None
                else _turn(prev_heading, _heading(coords, at_end=False))
            )
            current = {
                "street": label,
                "street_en": label_en,
                "turn": turn,
                "distance": d["length"],
            }
        prev_heading = _heading(coords, at_end=True)
    if current is not None:
        steps.append(_step(current))
    return steps


def _step(cur: dict[str, Any]) -> Step:
    zh, en = _TURNS[cur["turn"]]
    dist = float(cur["distance"])
    return Step(
        street=cur["street"],
        turn=cur["turn"],
        distance_m=dist,
        text_zh=f"{zh}，沿{cur['street']}行进{dist:.0f}米",
        text_en=f"{en} along {cur['street_en']} for {dist:.0f} m",
    )
