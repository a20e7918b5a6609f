"""Geometry helpers (空间基础): projection, Chinese coordinate systems, cells, tiles, lookup.

* :mod:`~gridmap.geo.projection` — areas, lengths and buffers in metres;
* :mod:`~gridmap.geo.chinacrs` — WGS84 ⇄ GCJ-02 ⇄ BD-09;
* :mod:`~gridmap.geo.h3cells` — H3 cells of points;
* :mod:`~gridmap.geo.tiles` — tile math (WebMercatorQuad bounds and filter boxes);
* :mod:`~gridmap.geo.locate` — which units, grid, workers and key areas cover a point;
* :mod:`~gridmap.geo.addresses` — a place from an address string.
"""
