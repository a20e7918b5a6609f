"""Logging of the service: one line per request, as text or JSON, with the request id.

``GRIDMAP_LOG_FORMAT=json`` makes every log record of gridmap (the ``gridmap``
loggers) and of uvicorn one JSON object per line, for log collectors; ``text``
(the default) keeps readable lines. The request id of the request being answered
(:data:`REQUEST_ID`, set by :class:`api.middleware.Observe`) is part of each record.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal

__all__ = ["ACCESS", "REQUEST_ID", "JsonFormatter", "configure_logging"]

#: The id of the request being answered in this context (``-`` outside a request).
REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
#: The logger of the one line per request.
ACCESS = logging.getLogger("gridmap.access")

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
_MARK = "_gridmap_handler"


class _RequestId(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object: time, level, logger, message, request id, extras.

    Examples
    --------
    >>> rec = logging.LogRecord("gridmap.access", logging.INFO, "", 0, "GET /x 200", None, None)
    >>> rec.request_id, rec.status = "abc", 200
    >>> doc = json.loads(JsonFormatter().format(rec))
    >>> doc["request_id"], doc["status"], doc["message"]
    ('abc', 200, 'GET /x 200')
    """

    def format(self, record: logging.LogRecord) -> str:
        """One JSON line."""
        doc: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                doc[key] = value
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False, default=str)


def _handler(fmt: Literal["text", "json"]) -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_RequestId())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
        )
    setattr(handler, _MARK, True)
    return handler


def configure_logging(fmt: Literal["text", "json"] = "text", level: str = "info") -> None:
    """Send gridmap's log records (and, as JSON, uvicorn's) to stderr in format *fmt*.

    Idempotent: a second call replaces the handler the first one installed. The
    ``gridmap`` loggers still propagate (to handlers an embedding application or
    a test harness installs on the root logger).

    Parameters
    ----------
    fmt : {"text", "json"}
        ``GRIDMAP_LOG_FORMAT``.
    level : str
        Lowest level logged (``trace``, ``debug``, ``info``, ``warning``, ``error``,
        ``critical``).
    """
    number = logging.DEBUG if level.lower() == "trace" else logging.getLevelName(level.upper())
    gridmap = logging.getLogger("gridmap")
    for old in [h for h in gridmap.handlers if getattr(h, _MARK, False)]:
        gridmap.removeHandler(old)
    gridmap.addHandler(_handler(fmt))
    gridmap.setLevel(number)
    if fmt == "json":
        # uvicorn's own lines (start, stop, errors) as JSON too, instead of its text.
        server = logging.getLogger("uvicorn")
        for old in list(server.handlers):
            server.removeHandler(old)
        server.addHandler(_handler(fmt))
        server.propagate = False
