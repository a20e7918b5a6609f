"""Bounded work: how long one database statement may run, and what happens when it runs out.

The API limits every statement it sends (``GRIDMAP_STATEMENT_TIMEOUT_MS``,
15 s by default): on PostGIS through PostgreSQL's ``statement_timeout`` on each
pooled connection, so the server itself cancels a runaway query even when the
client that asked for it has gone; on the embedded store a :class:`Watchdog`
interrupts the DuckDB cursors of a store call that runs past the limit
(``DuckDBPyConnection.interrupt``). A cancelled statement is a
:class:`StatementTimeout`, which the API answers 503 with the reason, never 500.
Imports, migrations and other jobs of the CLI run without a limit.

A request can also be called off before its limit: the API gives every HTTP
request a :class:`CancelScope` (:func:`cancel_scope`, a context variable, so
it reaches the store call in the threadpool) and cancels it when the client
disconnects before its answer; the embedded store then interrupts exactly that
request's DuckDB cursors, and PostGIS cancels the statement running on that
request's pooled connection (:func:`interrupt_on_cancel` around
``Connection.cancel_safe``); either raises :class:`QueryCancelled`.
"""

from __future__ import annotations

import contextlib
import contextvars
import heapq
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from gridmap.common.errors import GridmapError
from gridmap.storage.base import StoreUnavailable

__all__ = [
    "DEFAULT_STATEMENT_TIMEOUT_MS",
    "CancelScope",
    "QueryCancelled",
    "StatementTimeout",
    "Watchdog",
    "cancel_scope",
    "cancellable",
    "interrupt_on_cancel",
    "raise_if_cancelled",
]

#: How long one statement of the API may run by default (milliseconds).
DEFAULT_STATEMENT_TIMEOUT_MS = 15_000


class StatementTimeout(StoreUnavailable):
    """The database cancelled a statement that ran longer than the time limit.

    Nothing was changed (the statement's transaction is rolled back); the
    same request may succeed when the database is less busy, or asked for
    less (a smaller area, a shorter period, a simpler filter).
    """

    code = "statement_timeout"


class QueryCancelled(GridmapError):
    """The statement was interrupted because whoever asked for it went away.

    Raised by either store when the request's :class:`CancelScope` is
    cancelled (the HTTP client disconnected) while, or before, one of its
    statements runs (DuckDB cursors interrupted, the PostgreSQL statement
    cancelled); its transaction is rolled back. Nobody reads the answer:
    the API logs it as status 499 (client closed request), not as an error.
    """

    code = "client_closed_request"


class CancelScope:
    """A cancel token: :meth:`cancel` calls every registered callback, once.

    The API opens one per HTTP request (:func:`cancellable`); a store call
    running in that request registers a callback that interrupts its own
    database cursors, so cancelling one request stops no other request's work.
    A callback registered after the cancellation is called at once.

    Examples
    --------
    >>> scope = CancelScope()
    >>> calls = []
    >>> handle = scope.on_cancel(lambda: calls.append("a"))
    >>> other = scope.on_cancel(lambda: calls.append("b"))
    >>> scope.remove(other)
    >>> scope.cancel(); scope.cancel()
    >>> calls, scope.cancelled
    (['a'], True)
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[int, Callable[[], None]] = {}
        self._ids = itertools.count()
        self._cancelled = False

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called."""
        return self._cancelled

    def on_cancel(self, call: Callable[[], None]) -> int:
        """Call *call* when the scope is cancelled (now, if it is already); returns a handle."""
        handle = next(self._ids)
        with self._lock:
            if not self._cancelled:
                self._calls[handle] = call
                return handle
        _quietly(call)
        return handle

    def remove(self, handle: int) -> None:
        """Forget the callback *handle* (nothing happens if it was called or removed)."""
        with self._lock:
            self._calls.pop(handle, None)

    def cancel(self) -> None:
        """Cancel the scope: call every registered callback (the first time only)."""
        with self._lock:
            if self._cancelled:
                return
            self._cancelled = True
            calls, self._calls = list(self._calls.values()), {}
        for call in calls:
            _quietly(call)


def _quietly(call: Callable[[], None]) -> None:
    """Run *call*; a failing call must not stop the others (nor the watchdog)."""
    with contextlib.suppress(Exception):
        call()


_SCOPE: contextvars.ContextVar[CancelScope | None] = contextvars.ContextVar(
    "gridmap_cancel_scope", default=None
)


def cancel_scope() -> CancelScope | None:
    """The cancel scope of the work running in this context (``None`` outside one)."""
    return _SCOPE.get()


@contextmanager
def cancellable(scope: CancelScope | None = None) -> Iterator[CancelScope]:
    """Run the block (and the threads it hands work to, which copy the context) in *scope*.

    Examples
    --------
    >>> with cancellable() as scope:
    ...     cancel_scope() is scope
    True
    >>> cancel_scope() is None
    True
    """
    scope = scope if scope is not None else CancelScope()
    token = _SCOPE.set(scope)
    try:
        yield scope
    finally:
        _SCOPE.reset(token)


def raise_if_cancelled() -> None:
    """Raise :class:`QueryCancelled` when this context's cancel scope was cancelled.

    Examples
    --------
    >>> raise_if_cancelled()  # no scope: nothing to do
    >>> with cancellable() as scope:
    ...     scope.cancel()
    ...     raise_if_cancelled()
    Traceback (most recent call last):
    ...
    gridmap.storage.limits.QueryCancelled: the request was cancelled before its statement ran
    """
    scope = _SCOPE.get()
    if scope is not None and scope.cancelled:
        raise QueryCancelled("the request was cancelled before its statement ran")


@contextmanager
def interrupt_on_cancel(interrupt: Callable[[], None]) -> Iterator[CancelScope | None]:
    """Call *interrupt* if this context's cancel scope is cancelled while the block runs.

    For a resource the block holds alone, such as a pooled database connection:
    *interrupt* (e.g. ``psycopg.Connection.cancel_safe``) runs on a short-lived
    thread of its own, so the event loop that noticed the disconnect never
    waits for it, and never after the block has ended: leaving the block waits
    for an interrupt in flight, so a connection handed back to the pool (and
    to another request) is never interrupted on behalf of this one. A scope
    cancelled before the block raises :class:`QueryCancelled` at once.

    Parameters
    ----------
    interrupt : callable
        Stops the work of the block (called at most once).

    Yields
    ------
    CancelScope or None
        The scope watched (``None`` outside one: nothing is watched).

    Examples
    --------
    >>> calls = []
    >>> with cancellable() as scope, interrupt_on_cancel(lambda: calls.append("stop")):
    ...     scope.cancel()
    ...     time.sleep(0.2)
    >>> calls
    ['stop']
    >>> with cancellable() as scope:
    ...     with interrupt_on_cancel(lambda: calls.append("late")):
    ...         pass
    ...     scope.cancel()
    >>> time.sleep(0.1); calls
    ['stop']
    """
    scope = _SCOPE.get()
    if scope is None:
        yield None
        return
    if scope.cancelled:
        raise QueryCancelled("the request was cancelled before its statement ran")
    lock = threading.Lock()
    live = True

    def fire() -> None:
        with lock:
            if live:
                interrupt()

    def on_cancel() -> None:
        threading.Thread(target=_quietly, args=(fire,), name="gridmap-cancel", daemon=True).start()

    handle = scope.on_cancel(on_cancel)
    try:
        yield scope
    finally:
        scope.remove(handle)
        with lock:  # an interrupt in flight finishes first; none starts after this
            live = False


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
            _quietly(call)
