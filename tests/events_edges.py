"""Points just outside a demo grid, found from the real grid polygons (for edge-tolerance tests).

Grids of the Helsinki demo share their edges vertex for vertex; a point offset
perpendicular from one of a grid's edges, outwards, lies in its neighbour.
Distances are measured in metres in the local UTM zone (gridmap.geo.projection),
independently of the code under test.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import shapely

from gridmap.geo.projection import to_metric, to_wgs84
from tests.events_world import World


@dataclass(frozen=True)
class Beyond:
    """A point *metres* outside grid *own*, inside grid *other* (indexes into the world)."""

    own: int
    other: int
    lon: float
    lat: float
    metres: float

    def location(self) -> dict[str, object]:
        return {"lon": self.lon, "lat": self.lat, "crs": "wgs84"}


def beyond(world: World, own: int, metres: float) -> Beyond:
    """A point *metres* (± 0.5 m) outside grid *own*, well inside exactly one other grid.

    The edges of *own* are tried longest first; from the middle of each, the
    point goes *metres* along the outward normal.
    """
    metric, crs = to_metric(world.grids.geometry)
    mine = metric.iloc[own]
    others = [(k, g) for k, g in enumerate(metric) if k != own]
    ring = shapely.get_coordinates(shapely.get_exterior_ring(_largest_part(mine)))
    a, b = ring[:-1], ring[1:]
    order = np.argsort(-np.hypot(*(b - a).T))
    for s in order:
        (ax, ay), (bx, by) = a[s], b[s]
        length = float(np.hypot(bx - ax, by - ay))
        if length < 5:
            break
        mid = np.array([(ax + bx) / 2, (ay + by) / 2])
        normal = np.array([-(by - ay), bx - ax]) / length
        if mine.covers(shapely.Point(*(mid + normal * 0.5))):
            normal = -normal
        p = shapely.Point(*(mid + normal * metres))
        if abs(mine.distance(p) - metres) > 0.5:
            continue
        hits = [k for k, g in others if g.covers(p)]
        if len(hits) != 1 or metric.iloc[hits[0]].boundary.distance(p) < 2.0:
            continue
        back = to_wgs84(gpd.GeoSeries([p], crs=crs)).iloc[0]
        return Beyond(own, hits[0], float(back.x), float(back.y), float(mine.distance(p)))
    raise AssertionError(f"no point {metres} m outside grid {world.code(own)} lies in a grid")


def _largest_part(geom: shapely.Geometry) -> shapely.Geometry:
    parts: list[shapely.Geometry] = list(shapely.get_parts(geom))
    return max(parts, key=lambda g: float(shapely.area(g)))
