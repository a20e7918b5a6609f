"""Capture what named loggers write during a test (e.g. a live server's access log).

pytest's ``caplog`` sees records that reach the root logger; a server run in a
thread logs through loggers whose level and handlers the app may set, so the
tests attach a handler to each logger they watch and put everything back after.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["SERVER_LOGGERS", "captured_logs"]

#: The loggers a served app writes to: the access log, the API's own, uvicorn's errors.
SERVER_LOGGERS = ("gridmap.access", "gridmap.api", "uvicorn.error")


class _Keep(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__()
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def captured_logs(
    names: tuple[str, ...] = SERVER_LOGGERS, *, level: int = logging.INFO
) -> Iterator[list[logging.LogRecord]]:
    """The records the loggers *names* write at *level* or above while the block runs.

    Each logger's level is set to *level* for the block and restored after it,
    with the handler removed, however the block ends.
    """
    records: list[logging.LogRecord] = []
    keep = _Keep(records)
    watched = [logging.getLogger(n) for n in names]
    levels = [logger.level for logger in watched]
    for logger in watched:
        logger.addHandler(keep)
        logger.setLevel(level)
    try:
        yield records
    finally:
        for logger, old in zip(watched, levels, strict=True):
            logger.removeHandler(keep)
            logger.setLevel(old)
