"""The progress callback shared by the importers (private)."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Progress", "notify"]

#: ``progress(step, done, total)``: called as a long job moves on, e.g. to draw a bar.
Progress = Callable[[str, int, int], None]


def notify(progress: Progress | None, step: str, done: int, total: int) -> None:
    """Call *progress* when there is one."""
    if progress is not None:
        progress(step, done, total)
