"""Street networks for patrol planning: a graph per grid or community, in metres.

Roads arrive as stored (WGS84 line strings, OSM ways that may run through
several crossings). :func:`street_network` projects them to the local UTM zone
(:mod:`gridmap.geo.projection`), splits them at every vertex shared with another
road (OSM topology) and builds an undirected multigraph whose edges carry the
street name, the length in metres and the metric geometry. Edges whose middle
lies inside the *required* area are marked ``required``: those are the streets a
patrol must walk. Disconnected pieces are joined by straight connector edges
over the shortest gap between components (and reported), so every route can be
closed.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import pyproj
import shapely

from gridmap.common.errors import BadInput
from gridmap.common.extras import LazyModule
from gridmap.geo.projection import local_crs

if TYPE_CHECKING:
    import networkx as nx
    from scipy.sparse import csr_matrix
else:  # the [patrol] extra, imported on first use
    nx = LazyModule("networkx", extra="patrol")
_sparse = LazyModule("scipy.sparse", extra="patrol")
_spatial = LazyModule("scipy.spatial", extra="patrol")

__all__ = [
    "Connector",
    "EdgeKey",
    "NetworkMode",
    "StreetNetwork",
    "example_streets",
    "street_network",
]

#: ``"walk"`` keeps walkable roads, ``"drive"`` drivable ones.
NetworkMode = Literal["walk", "drive"]

#: An edge of the multigraph: ``(u, v, key)``.
EdgeKey = tuple[int, int, int]

FloatArray = npt.NDArray[np.float64]

_UNNAMED = ("无名道路", "unnamed road")
_CONNECTOR = ("连接线", "connector")


@dataclass(frozen=True)
class Connector:
    """A straight edge added to join two disconnected parts of the network."""

    u: int
    v: int
    length_m: float


@dataclass
class StreetNetwork:
    """An undirected street multigraph in a metric CRS.

    Attributes
    ----------
    graph : networkx.MultiGraph
        Nodes are integers with ``x``, ``y`` (metres). Edges carry ``length``
        (m), ``name``, ``road_id``, ``coords`` (an ``(n, 2)`` array oriented from
        the node stored in ``start``), ``required`` and ``connector``.
    crs : pyproj.CRS
        The metric CRS of every coordinate.
    components : int
        Connected components before repair.
    connectors : list of Connector
        Edges added by the repair (empty when none was needed or allowed).
    """

    graph: nx.MultiGraph
    crs: pyproj.CRS
    components: int = 1
    connectors: list[Connector] = field(default_factory=list)
    _index: dict[int, int] = field(default_factory=dict, repr=False)
    _matrix: csr_matrix | None = field(default=None, repr=False)
    _tree: Any = field(default=None, repr=False)

    # -- measures ----------------------------------------------------------
    @property
    def required_edges(self) -> list[EdgeKey]:
        """Edges that must be walked."""
        return [(u, v, k) for u, v, k, r in self.graph.edges(keys=True, data="required") if r]

    @property
    def required_length_m(self) -> float:
        """Total length of the required edges in metres."""
        return float(sum(self.graph.edges[e]["length"] for e in self.required_edges))

    @property
    def length_m(self) -> float:
        """Total length of every edge (connectors included)."""
        return float(sum(d for _, _, d in self.graph.edges(data="length")))

    # -- lookups -----------------------------------------------------------
    @property
    def nodes(self) -> list[int]:
        """Node ids in matrix order."""
        return list(self._index)

    def index_of(self, node: int) -> int:
        """Row of *node* in :meth:`matrix`."""
        return self._index[node]

    def matrix(self) -> csr_matrix:
        """Sparse symmetric matrix of the shortest parallel edge between nodes (m)."""
        if self._matrix is None:
            self._index = {n: i for i, n in enumerate(self.graph.nodes)}
            best: dict[tuple[int, int], float] = {}
            for u, v, length in self.graph.edges(data="length"):
                a, b = sorted((self._index[u], self._index[v]))
                if a == b:
                    continue
                if (a, b) not in best or length < best[(a, b)]:
                    best[(a, b)] = float(length)
            n = self.graph.number_of_nodes()
            if best:
                rows, cols = zip(*best, strict=True)
                w = np.maximum(np.fromiter(best.values(), float), 1e-9)
                r = np.concatenate([rows, cols])
                c = np.concatenate([cols, rows])
                self._matrix = _sparse.csr_matrix((np.concatenate([w, w]), (r, c)), shape=(n, n))
            else:
                self._matrix = _sparse.csr_matrix((n, n))
        return self._matrix

    def nearest_node(self, x: float, y: float, *, among: Iterable[int] | None = None) -> int:
        """The node closest to the metric point ``(x, y)`` (optionally among some nodes)."""
        if among is not None:
            cand = list(among)
            xy = np.array([[self.graph.nodes[n]["x"], self.graph.nodes[n]["y"]] for n in cand])
            return cand[int(np.argmin(np.hypot(xy[:, 0] - x, xy[:, 1] - y)))]
        if self._tree is None:
            self.matrix()
            self._tree = _spatial.cKDTree(self.xy(self.nodes))
        _, i = self._tree.query([x, y])
        return self.nodes[int(i)]

    def xy(self, nodes: Sequence[int]) -> FloatArray:
        """Metric coordinates of *nodes* as an ``(n, 2)`` array."""
        g = self.graph.nodes
        return np.array([[g[n]["x"], g[n]["y"]] for n in nodes], dtype=float).reshape(-1, 2)

    def project(self, lon: float, lat: float) -> tuple[float, float]:
        """WGS84 longitude/latitude to this network's metric CRS."""
        t = pyproj.Transformer.from_crs(4326, self.crs, always_xy=True)
        x, y = t.transform(lon, lat)
        if not (np.isfinite(x) and np.isfinite(y)):
            raise BadInput(f"point ({lon}, {lat}) cannot be projected", field="start")
        return float(x), float(y)

    def best_edge(self, a: int, b: int) -> int:
        """Key of the shortest parallel edge between *a* and *b*."""
        data = self.graph.get_edge_data(a, b)
        if not data:
            raise KeyError((a, b))
        return int(min(data, key=lambda k: data[k]["length"]))

    def oriented(self, a: int, b: int, key: int) -> FloatArray:
        """Coordinates of edge ``(a, b, key)`` in the direction a → b."""
        d = self.graph.edges[a, b, key]
        coords: FloatArray = d["coords"]
        return coords if d["start"] == a else coords[::-1]

    def walk_coords(self, start: int, edges: Sequence[EdgeKey]) -> FloatArray:
        """Metric coordinates of a walk from *start* along *edges* (*start* alone when none)."""
        parts = [self.oriented(u, v, k) for u, v, k in edges]
        return _concat(parts, self.xy([start]))

    def path_coords(self, nodes: Sequence[int]) -> FloatArray:
        """Metric coordinates of a node path (shortest parallel edges)."""
        parts = [self.oriented(a, b, self.best_edge(a, b)) for a, b in itertools.pairwise(nodes)]
        return _concat(parts, self.xy(nodes[:1]))

    def to_wgs84(self, coords: FloatArray) -> FloatArray:
        """Metric coordinates back to WGS84 longitude/latitude."""
        if len(coords) == 0:
            return coords
        t = pyproj.Transformer.from_crs(self.crs, 4326, always_xy=True)
        lon, lat = t.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([lon, lat])

    def edges_frame(self) -> gpd.GeoDataFrame:
        """Edges as a GeoDataFrame in WGS84 (``u``, ``v``, ``key``, name, length, flags).

        Examples
        --------
        >>> import geopandas as gpd, shapely
        >>> roads = gpd.GeoDataFrame(
        ...     {"name": ["A"], "walkable": [True]},
        ...     geometry=[shapely.LineString([(24.94, 60.17), (24.95, 60.17)])], crs=4326)
        >>> street_network(roads).edges_frame()[["name", "required"]].values.tolist()
        [['A', True]]
        """
        rows = [
            {
                "u": u,
                "v": v,
                "key": k,
                "name": d["name"],
                "road_id": d["road_id"],
                "length_m": d["length"],
                "required": d["required"],
                "connector": d["connector"],
                "geometry": shapely.LineString(self.to_wgs84(d["coords"])),
            }
            for u, v, k, d in self.graph.edges(keys=True, data=True)
        ]
        cols = ["u", "v", "key", "name", "road_id", "length_m", "required", "connector"]
        if not rows:
            return gpd.GeoDataFrame({c: [] for c in cols}, geometry=[], crs=4326)
        return gpd.GeoDataFrame(rows, geometry="geometry", crs=4326)


def _concat(parts: Sequence[FloatArray], first: FloatArray) -> FloatArray:
    if not parts:
        return first
    out = [parts[0]] + [p[1:] for p in parts[1:]]
    return np.concatenate(out, axis=0)


def street_name(name: Any, *, connector: bool = False, lang: str = "zh") -> str:
    """Display name of a street (``无名道路`` / ``unnamed road`` when it has none)."""
    if connector:
        return _CONNECTOR[0] if lang == "zh" else _CONNECTOR[1]
    if name is None or (isinstance(name, float) and np.isnan(name)) or name is pd.NA or not name:
        return _UNNAMED[0] if lang == "zh" else _UNNAMED[1]
    return str(name)


def _to(geom: shapely.Geometry, t: pyproj.Transformer) -> shapely.Geometry:
    return shapely.transform(geom, t.transform, interleaved=False)  # type: ignore[arg-type]


def _select(roads: gpd.GeoDataFrame, mode: NetworkMode) -> gpd.GeoDataFrame:
    if mode not in ("walk", "drive"):
        raise BadInput(f"network mode must be 'walk' or 'drive', got {mode!r}", field="network")
    column = "walkable" if mode == "walk" else "drivable"
    if column in roads.columns:
        keep = roads[column].astype("boolean").fillna(mode == "walk").to_numpy(dtype=bool)
        roads = roads.loc[keep]
    geoms = roads.geometry
    ok = ~(geoms.isna() | geoms.is_empty) & geoms.geom_type.isin(["LineString", "MultiLineString"])
    return roads.loc[ok.to_numpy()]


def example_streets() -> gpd.GeoDataFrame:
    """Two crossing streets in Helsinki, to try the patrol planners on.

    Road 1, ``A``, runs about 555 m west to east; road 2, ``B``, about 1.1 km
    south to north, crossing ``A`` halfway along.

    Examples
    --------
    >>> example_streets()[["id", "name"]].values.tolist()
    [[1, 'A'], [2, 'B']]
    """
    return gpd.GeoDataFrame(
        {"name": ["A", "B"], "id": [1, 2]},
        geometry=[
            shapely.LineString([(24.94, 60.17), (24.95, 60.17)]),
            shapely.LineString([(24.945, 60.165), (24.945, 60.175)]),
        ],
        crs=4326,
    )


def street_network(
    roads: gpd.GeoDataFrame,
    *,
    mode: NetworkMode = "walk",
    area: shapely.Geometry | None = None,
    required_area: shapely.Geometry | None = None,
    margin_m: float = 300.0,
    tolerance_m: float = 10.0,
    repair: bool = True,
    crs: pyproj.CRS | None = None,
) -> StreetNetwork:
    """Build the street network of an area from stored roads.

    Parameters
    ----------
    roads : GeoDataFrame
        Roads in WGS84 with optional ``name``, ``walkable``, ``drivable``, ``id``.
    mode : {"walk", "drive"}
        Which roads may be used.
    area : shapely geometry, optional
        WGS84 polygon of the grid or community; roads are clipped to it buffered
        by *margin_m* (so a route may leave the grid briefly to connect).
    required_area : shapely geometry, optional
        WGS84 polygon whose streets are required (default: *area*; every edge
        when both are None). An edge is required when its midpoint lies within
        *tolerance_m* of it, so boundary streets count.
    margin_m, tolerance_m : float
        Clip margin and boundary tolerance in metres.
    repair : bool
        Join disconnected components with straight connectors over the
        shortest gap (reported in ``connectors``); when False they stay apart.
    crs : pyproj.CRS, optional
        Metric CRS to use (default: the UTM zone of the roads).

    Returns
    -------
    StreetNetwork

    Raises
    ------
    gridmap.common.errors.BadInput
        For an unknown mode or when no usable road is left.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> roads = gpd.GeoDataFrame(
    ...     {"name": ["A", "B"], "walkable": [True, True]},
    ...     geometry=[shapely.LineString([(24.94, 60.17), (24.945, 60.17), (24.95, 60.17)]),
    ...               shapely.LineString([(24.945, 60.17), (24.945, 60.175)])], crs=4326)
    >>> net = street_network(roads)
    >>> net.graph.number_of_nodes(), net.graph.number_of_edges()
    (4, 3)
    """
    roads = _select(roads, mode)
    if roads.crs is None:
        roads = roads.set_crs(4326)
    if area is not None and not shapely.is_empty(area):
        metric_crs = crs or local_crs(gpd.GeoSeries([area], crs=4326))
    elif len(roads):
        metric_crs = crs or local_crs(roads)
    else:
        raise BadInput(f"no {mode} roads to build a network from", field="roads")
    to_m = pyproj.Transformer.from_crs(4326, metric_crs, always_xy=True)
    metric = roads.to_crs(metric_crs)
    area_m = _to(area, to_m) if area is not None else None
    req = required_area if required_area is not None else area
    req_m = shapely.buffer(_to(req, to_m), tolerance_m) if req is not None else None
    geoms = metric.geometry.values
    if area_m is not None:
        clip = shapely.buffer(area_m, margin_m)
        hit = shapely.intersects(geoms, clip)
        metric = metric.loc[hit]
        geoms = shapely.intersection(metric.geometry.values, clip)
    names = metric["name"].to_numpy(dtype=object) if "name" in metric else [None] * len(metric)
    ids = metric["id"].to_numpy() if "id" in metric else np.arange(len(metric))
    parts, part_index = shapely.get_parts(np.asarray(geoms), return_index=True)
    lines = parts[shapely.get_type_id(parts) == 1]
    line_src = part_index[shapely.get_type_id(parts) == 1]
    if len(lines) == 0:
        raise BadInput(f"no {mode} roads in the area", field="roads")
    graph = _graph(lines, line_src, names, ids)
    if req_m is not None:
        shapely.prepare(req_m)
        for _, _, d in graph.edges(data=True):
            mid = shapely.line_interpolate_point(shapely.LineString(d["coords"]), 0.5, True)
            d["required"] = bool(shapely.contains(req_m, mid))
    components = nx.number_connected_components(graph) if graph.number_of_nodes() else 0
    net = StreetNetwork(graph=graph, crs=metric_crs, components=components)
    if repair and components > 1:
        net.connectors = _repair(graph)
    net.matrix()
    return net


def _graph(
    lines: npt.NDArray[Any], src: npt.NDArray[np.int64], names: Any, ids: Any
) -> nx.MultiGraph:
    """Split lines at shared vertices and build the multigraph."""
    coords, which = shapely.get_coordinates(lines, return_index=True)
    keys = np.round(coords, 3)
    uniq, node_of = np.unique(keys, axis=0, return_inverse=True)
    node_of = node_of.ravel()
    # How many distinct lines touch each node (OSM ways share crossing vertices).
    pairs = np.unique(np.column_stack([node_of, which]), axis=0)
    touching = np.bincount(pairs[:, 0], minlength=len(uniq))
    starts = np.r_[0, np.flatnonzero(np.diff(which)) + 1]
    ends = np.r_[starts[1:], len(which)] - 1
    is_end = np.zeros(len(which), dtype=bool)
    is_end[starts] = True
    is_end[ends] = True
    split = is_end | (touching[node_of] > 1)
    graph = nx.MultiGraph()
    for line_no, (s, e) in enumerate(zip(starts, ends, strict=True)):
        cut = np.flatnonzero(split[s : e + 1]) + s
        road = int(src[line_no])
        for a, b in itertools.pairwise(cut):
            seg = coords[a : b + 1]
            length = float(np.hypot(*np.diff(seg, axis=0).T).sum())
            if length <= 1e-6:
                continue
            u, v = int(node_of[a]), int(node_of[b])
            for n, pt in ((u, seg[0]), (v, seg[-1])):
                if n not in graph:
                    graph.add_node(n, x=float(pt[0]), y=float(pt[1]))
            name = names[road]
            graph.add_edge(
                u,
                v,
                length=length,
                name=None if name is None or name is pd.NA or name != name else str(name),
                road_id=int(ids[road]),
                coords=seg.copy(),
                start=u,
                required=True,
                connector=False,
            )
    return graph


def _repair(graph: nx.MultiGraph) -> list[Connector]:
    """Join every component to the growing main one over its shortest gap."""
    comps = sorted(nx.connected_components(graph), key=len, reverse=True)
    main = list(comps[0])
    added: list[Connector] = []
    rest = [list(c) for c in comps[1:]]
    while rest:
        tree = _spatial.cKDTree(
            np.array([[graph.nodes[n]["x"], graph.nodes[n]["y"]] for n in main])
        )
        best: tuple[float, int, int, int] | None = None
        for ci, comp in enumerate(rest):
            xy = np.array([[graph.nodes[n]["x"], graph.nodes[n]["y"]] for n in comp])
            dist, idx = tree.query(xy)
            j = int(np.argmin(dist))
            if best is None or dist[j] < best[0]:
                best = (float(dist[j]), ci, comp[j], main[int(idx[j])])
        assert best is not None
        gap, ci, a, b = best
        pa = [graph.nodes[a]["x"], graph.nodes[a]["y"]]
        pb = [graph.nodes[b]["x"], graph.nodes[b]["y"]]
        graph.add_edge(
            a,
            b,
            length=max(gap, 1e-6),
            name=None,
            road_id=-1,
            coords=np.array([pa, pb], dtype=float),
            start=a,
            required=False,
            connector=True,
        )
        added.append(Connector(a, b, gap))
        main.extend(rest.pop(ci))
    return added
