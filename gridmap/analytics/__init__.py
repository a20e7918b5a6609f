"""Analytics of events (事件分析): heat maps and hot spots.

* :mod:`~gridmap.analytics.queries` — event filters and scope, reading from the store,
  events per H3 cell counted in SQL;
* :mod:`~gridmap.analytics.binning` — H3 binning, counts per cell, rates per 1,000;
* :mod:`~gridmap.analytics.smallcounts` — the small-count rule (``DEFAULT_MIN_COUNT``)
  every heat map obeys;
* :mod:`~gridmap.analytics.kde` — kernel density;
* :mod:`~gridmap.analytics.gridcounts` — counts and rates per grid and period;
* :mod:`~gridmap.analytics.heat` — the heat map a principal may see, per cell and per tile;
* :mod:`~gridmap.analytics.hotspots` — Getis-Ord Gi*, emerging hot spots, key areas.

The map layers that draw them live in ``layers/heat.py``.
"""
