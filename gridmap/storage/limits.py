"""Bounded work: how long one database statement may run, and what happens when it runs out.

The API limits every statement it sends (``GRIDMAP_STATEMENT_TIMEOUT_MS``,
15 s by default): on PostGIS through PostgreSQL's ``statement_timeout`` on each
pooled connection, so the server itself cancels a runaway query even when the
client that asked for it has gone; on the embedded store a :class:`Watchdog`
interrupts the DuckDB cursors of a store call that runs past the limit
(``DuckDBPyConnection.interrupt``). A cancelled statement is a
:class:`StatementTimeout`, which the API answers 503 with the reason, never 500.
Imports, migrations and other jobs of the CLI run without a limit.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable

from gridmap.storage.base import StoreUnavailable

__all__ = ["DEFAULT_STATEMENT_TIMEOUT_MS", "StatementTimeout", "Watchdog"]

#: How long one statement of the API may run by default (milliseconds).
DEFAULT_STATEMENT_TIMEOUT_MS = 15_000


class StatementTimeout(StoreUnavailable):
    """The database cancelled a statement that ran longer than the time limit.

    Nothing was changed (the statement's transaction is rolled back); the
    same request may succeed when the database is less busy, or asked for
    less (a smaller area, a shorter period, a simpler filter).
    """

    code = "statement_timeout"


class Watchdog:
    """Call a function when a deadline passes, unless the deadline was cancelled first.

    One daemon thread serves every deadline of the watchdog (started at the
    first one), so arming and cancelling cost a heap push and a dictionary
    update, not a thread per statement.

    Examples
    --------
    >>> fired = []
    >>> dog = Watchdog()
    >>> late = dog.arm(0.01, lambda: fired.append("late"))
    >>> early = dog.arm(60, lambda: fired.append("early"))
    >>> dog.cancel(early)
    True
    >>> time.sleep(0.2)
    >>> fired, dog.cancel(late)
    (['late'], False)
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int]] = []
        self._calls: dict[int, Callable[[], None]] = {}
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, seconds: float, call: Callable[[], None]) -> int:
        """Call *call* (on the watchdog's thread) in *seconds*; returns a handle to cancel."""
        handle = next(self._ids)
        with self._cond:
            self._calls[handle] = call
            heapq.heappush(self._heap, (time.monotonic() + seconds, handle))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="gridmap-statement-watchdog", daemon=True
                )
                self._thread.start()
            self._cond.notify()
        return handle

    def cancel(self, handle: int) -> bool:
        """Cancel the deadline *handle*; ``False`` when it has fired already."""
        with self._cond:
            return self._calls.pop(handle, None) is not None

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._heap and self._heap[0][1] not in self._calls:
                    heapq.heappop(self._heap)  # cancelled
                if not self._heap:
                    self._cond.wait()
                    continue
                due, handle = self._heap[0]
                wait = due - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)
                call = self._calls.pop(handle)
            try:
                call()
            except Exception:  # noqa: BLE001 - a failing call must not stop the watchdog
                pass
