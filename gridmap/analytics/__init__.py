"""Analytics of events (事件分析): heat maps and hot spots.

* :mod:`~gridmap.analytics.heat` — H3 binning, kernel density, per-grid counts and rates,
  and the small-count rule (``MIN_COUNT``) every heat map obeys;
* :mod:`~gridmap.analytics.hotspots` — Getis-Ord Gi*, emerging hot spots, key areas.

The map layers that draw them live in ``layers/heat.py`` and ``layers/maps.py``.
"""
