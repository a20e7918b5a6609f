"""Prometheus metrics of the service (``/metrics``, text exposition format).

Each application gets its own :class:`Metrics` (its own registry), so several
applications in one process (tests) count apart. Recorded by
:class:`api.middleware.Observe` for every HTTP request:

- ``gridmap_http_requests_total{method,route,status}``: answers, by route *template*
  (``/collections/{layer}/items``, never the raw path: bounded label values;
  ``<unmatched>`` for a path no route takes);
- ``gridmap_http_request_duration_seconds{method,route}``: latency histogram;
- ``gridmap_http_requests_in_progress``: requests being answered;
- ``gridmap_intake_total{channel}``: event reports stored (``api`` for
  ``POST /events``, ``open311`` for GeoReport requests);
- ``gridmap_db_pool_*``: the PostGIS connection pool (size, available, waiting,
  bounds), read from the pool when scraped; absent for the embedded store.

With ``gridmap serve --workers N`` each worker process counts its own requests
(a scrape reaches one of them); run one worker per container and let Prometheus
sum over the instances.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE", "Metrics", "intake_channel"]

#: Media type of the text exposition format.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

#: psycopg_pool statistics exported, with their help text.
_POOL_STATS = {
    "pool_min": "Smallest number of connections the pool keeps.",
    "pool_max": "Largest number of connections the pool opens.",
    "pool_size": "Connections open now (in use, available or being prepared).",
    "pool_available": "Connections idle in the pool.",
    "requests_waiting": "Requests waiting for a connection.",
}


class _PoolCollector(Collector):
    """Reads the pool statistics of the store when scraped (PostGIS only)."""

    def __init__(self, stats: Callable[[], dict[str, int] | None]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[GaugeMetricFamily]:
        stats = self._stats()
        if not stats:
            return
        for key, text in _POOL_STATS.items():
            if key in stats:
                yield GaugeMetricFamily(f"gridmap_db_{key}", text, value=float(stats[key]))


def _pool_stats(state: Any) -> dict[str, int] | None:
    store = getattr(state, "store", None)
    pool = getattr(store, "_pool", None)
    get_stats = getattr(pool, "get_stats", None)
    if not callable(get_stats):
        return None
    stats = get_stats()
    return {k: int(v) for k, v in stats.items() if isinstance(v, int)}


def intake_channel(method: str, route: str, status: int) -> str | None:
    """The intake channel of a stored event report, or ``None`` for other requests.

    Examples
    --------
    >>> intake_channel("POST", "/events", 201)
    'api'
    >>> intake_channel("POST", "/open311/v2/requests.json", 201)
    'open311'
    >>> intake_channel("POST", "/events", 400) is None
    True
    """
    if method != "POST" or status not in (200, 201):
        return None
    if route == "/events":
        return "api"
    if route.startswith("/open311/") and "/requests." in route:
        return "open311"
    return None


class Metrics:
    """The metrics of one application.

    Parameters
    ----------
    state : object, optional
        The application's ``state`` (its ``store`` is asked for pool statistics).
    """

    def __init__(self, state: Any = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "gridmap_http_requests",
            "HTTP answers by method, route template and status.",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "gridmap_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template.",
            ("method", "route"),
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.in_progress = Gauge(
            "gridmap_http_requests_in_progress",
            "HTTP requests being answered.",
            registry=self.registry,
        )
        self.intake = Counter(
            "gridmap_intake",
            "Event reports stored, by intake channel (api, open311).",
            ("channel",),
            registry=self.registry,
        )
        if state is not None:
            self.registry.register(_PoolCollector(lambda: _pool_stats(state)))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Record one answered request."""
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)
        channel = intake_channel(method, route, status)
        if channel is not None:
            self.intake.labels(channel).inc()

    def render(self) -> bytes:
        """The metrics in the Prometheus text exposition format."""
        return generate_latest(self.registry)
