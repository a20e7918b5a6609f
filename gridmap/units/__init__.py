"""The administrative hierarchy (行政区划) and the grid workers of its grids.

* :mod:`~gridmap.units.hierarchy` — codes (区划代码): list, recode, rename, move, close;
* :mod:`~gridmap.units.workers` — grid workers and the grids they work (网格员).
"""
