"""In-memory token-bucket rate limits: login attempts and report intake.

Each limiter keeps one bucket per key (user + client address for logins,
principal + address for reports). A bucket holds up to *burst* tokens and
refills at *rate_per_minute*; a request that finds it empty gets 429 with a
``Retry-After`` header. The buckets live in the process: run one API worker
per limiter, or put a shared limiter (e.g. in the reverse proxy) in front.

Routers use the ready-made dependencies::

    @router.post("/events", dependencies=[ReportRateLimit])
"""

from __future__ import annotations

import math
import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

from fastapi import Depends, HTTPException, Request, status

from api.security import CurrentPrincipal, security_settings

__all__ = [
    "PublicReportRateLimit",
    "ReportRateLimit",
    "TokenBucket",
    "client_address",
    "limiter",
    "login_key",
    "public_report_rate_limit",
    "report_rate_limit",
    "too_many",
]


@dataclass
class TokenBucket:
    """A thread-safe token bucket per key.

    Parameters
    ----------
    rate_per_minute : float
        Tokens added per minute.
    burst : int
        Bucket size: requests allowed at once after a quiet period.
    clock : callable
        Monotonic seconds (tests pass a fake clock).
    max_keys : int
        Buckets kept; when exceeded, the full (idle) ones are forgotten.

    Examples
    --------
    >>> now = [0.0]
    >>> bucket = TokenBucket(60, 2, clock=lambda: now[0])
    >>> bucket.hit("a"), bucket.hit("a"), bucket.hit("a") > 0
    (0.0, 0.0, True)
    >>> now[0] = 1.0
    >>> bucket.hit("a")
    0.0
    """

    rate_per_minute: float
    burst: int
    clock: Callable[[], float] = time.monotonic
    max_keys: int = 100_000
    _state: dict[str, tuple[float, float]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def hit(self, key: str, cost: float = 1.0) -> float:
        """Take *cost* tokens for *key*: ``0.0`` if allowed, else seconds until it would be."""
        rate = self.rate_per_minute / 60.0
        with self._lock:
            now = self.clock()
            tokens, last = self._state.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * rate)
            if tokens >= cost:
                self._state[key] = (tokens - cost, now)
                if len(self._state) > self.max_keys:
                    self._forget_idle(now, rate)
                return 0.0
            self._state[key] = (tokens, now)
            return (cost - tokens) / rate if rate > 0 else math.inf

    def reset(self, key: str) -> None:
        """Forget *key*'s bucket (e.g. after a successful login)."""
        with self._lock:
            self._state.pop(key, None)

    def _forget_idle(self, now: float, rate: float) -> None:
        full = [k for k, (t, last) in self._state.items() if t + (now - last) * rate >= self.burst]
        for k in full:
            del self._state[k]


def login_key(name: str) -> str:
    """The key a login attempt for *name* is counted under.

    The same normalisation authentication uses (NFKC, surrounding spaces
    stripped) plus case folding, so ``"wang "`` or full-width ``ｗａｎｇ`` share
    the bucket of ``wang`` instead of getting fresh guesses.

    Examples
    --------
    >>> login_key("ｗａｎｇ  ") == login_key("Wang")
    True
    """
    return unicodedata.normalize("NFKC", name).strip().casefold()


def client_address(request: Request) -> str:
    """The client's address as the server sees it (put a trusted proxy's header in front)."""
    return request.client.host if request.client else "unknown"


def limiter(request: Request, name: str, rate_per_minute: float, burst: int) -> TokenBucket:
    """The application's limiter called *name*, created on first use."""
    limiters: dict[str, TokenBucket] | None = getattr(request.app.state, "rate_limiters", None)
    if limiters is None:
        limiters = {}
        request.app.state.rate_limiters = limiters
    bucket = limiters.get(name)
    if bucket is None:
        bucket = limiters.setdefault(name, TokenBucket(rate_per_minute, burst))
    return bucket


def too_many(retry_after: float) -> HTTPException:
    """The 429 answer, with ``Retry-After`` in whole seconds."""
    return HTTPException(
        status_code=status.HTTP_429_TOO_MANY_REQUESTS,
        detail="too many requests; slow down",
        headers={"Retry-After": str(max(1, math.ceil(retry_after)))},
    )


def _limit(request: Request, name: str, who: str) -> None:
    cfg = security_settings(request)
    bucket = limiter(request, name, cfg.reports_per_minute, cfg.reports_burst)
    wait = bucket.hit(f"{who}|{client_address(request)}")
    if wait > 0:
        raise too_many(wait)


def report_rate_limit(request: Request, principal: CurrentPrincipal) -> None:
    """Dependency: limit report intake per principal and client address.

    Uses ``reports_per_minute`` / ``reports_burst`` of the security settings.
    """
    _limit(request, "reports", principal.name)


def public_report_rate_limit(request: Request) -> None:
    """Dependency: limit anonymous report intake (public Open311) per client address."""
    _limit(request, "public_reports", "anonymous")


#: ``dependencies=[ReportRateLimit]`` on authenticated report-intake routes.
ReportRateLimit = Depends(report_rate_limit)
#: ``dependencies=[PublicReportRateLimit]`` on anonymous report-intake routes.
PublicReportRateLimit = Depends(public_report_rate_limit)
