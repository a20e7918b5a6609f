"""The intake's worker threads (api.threads): bounded, context carried, never abandoned."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time

import pytest

from api.threads import WorkerThreads

WHO = contextvars.ContextVar("who", default="nobody")


def test_no_more_than_size_calls_run_at_once() -> None:
    threads = WorkerThreads(3, "t-bound")
    running = 0
    most = 0
    lock = threading.Lock()

    def work() -> str:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.02)
        with lock:
            running -= 1
        return threading.current_thread().name

    async def main() -> list[str]:
        return await asyncio.gather(*(threads.run(work) for _ in range(12)))

    try:
        names = asyncio.run(main())
    finally:
        threads.close()
    assert most == 3
    assert len(names) == 12
    assert all(n.startswith("t-bound") for n in names)


def test_context_variables_reach_the_thread_and_errors_come_back() -> None:
    threads = WorkerThreads(2, "t-ctx")

    def fail() -> None:
        raise ValueError(WHO.get())

    async def main() -> tuple[str, str]:
        WHO.set("wang")
        seen = await threads.run(WHO.get)
        with pytest.raises(ValueError) as caught:
            await threads.run(fail)
        return seen, str(caught.value)

    try:
        assert asyncio.run(main()) == ("wang", "wang")
    finally:
        threads.close()


def test_a_cancelled_caller_waits_for_its_thread_to_finish() -> None:
    """Work half done in a thread (a report being stored) is never abandoned."""
    threads = WorkerThreads(1, "t-cancel")
    started = threading.Event()
    finished: list[float] = []

    def slow() -> str:
        started.set()
        time.sleep(0.3)
        finished.append(time.monotonic())
        return "stored"

    async def main() -> float:
        task = asyncio.create_task(threads.run(slow))
        while not started.is_set():
            await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic()

    try:
        cancelled_at = asyncio.run(main())
    finally:
        threads.close()
    assert finished, "the thread's work was abandoned"
    assert cancelled_at >= finished[0]  # the cancellation came after the work ended
