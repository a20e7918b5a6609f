"""A bounded set of threads for the blocking store work of report intake.

Written here rather than taken from ``anyio.to_thread.run_sync``: anyio hands
each call to its worker through a ``queue.Queue``, whose pure-Python condition
variable (``Condition.notify``) took about 8 % of an API worker's GIL time
under city load (``benchmarks/load_reporters.py``, py-spy). The standard
``ThreadPoolExecutor`` hands work over through the C ``SimpleQueue``; what
anyio adds on top (the caller's context variables reach the thread, and a
cancelled caller waits for the thread to finish its work) is kept below.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from typing import TypeVar

__all__ = ["WorkerThreads"]

_T = TypeVar("_T")


class WorkerThreads:
    """At most *size* blocking calls at once, each in a worker thread; more wait their turn.

    Parameters
    ----------
    size : int
        How many threads (below the store's pool size, so a burst waits here,
        cheaply, instead of in the connection pool).
    name : str
        Prefix of the threads' names (seen in py-spy and thread dumps).

    Examples
    --------
    >>> import asyncio, contextvars
    >>> who = contextvars.ContextVar("who", default="nobody")
    >>> threads = WorkerThreads(2, "demo")
    >>> async def main():
    ...     who.set("wang")
    ...     return await threads.run(who.get)
    >>> asyncio.run(main())
    'wang'
    >>> threads.close()
    """

    def __init__(self, size: int, name: str) -> None:
        self._pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix=name)

    async def run(self, fn: Callable[[], _T]) -> _T:
        """The result of ``fn()`` run in a worker thread, with the caller's context variables.

        If the caller is cancelled while *fn* runs (its client went away, the
        server stops), it first waits for *fn* to end: work half done in a
        thread is never abandoned, as with anyio's default. The cancellation
        is raised after that.
        """
        loop = asyncio.get_running_loop()
        done = loop.run_in_executor(self._pool, contextvars.copy_context().run, fn)
        try:
            return await asyncio.shield(done)
        except asyncio.CancelledError:
            with suppress(BaseException):  # the thread's own outcome: the caller is gone
                await done
            raise

    def close(self) -> None:
        """Let the threads end once the calls already given to them are done."""
        self._pool.shutdown(wait=False)
