"""Bounded work: how long one database statement may run, and what happens when it runs out.

The API limits every statement it sends (``GRIDMAP_STATEMENT_TIMEOUT_MS``,
15 s by default): on PostGIS through PostgreSQL's ``statement_timeout`` on each
pooled connection, so the server itself cancels a runaway query even when the
client that asked for it has gone. A cancelled statement is a
:class:`StatementTimeout`, which the API answers 503 with the reason, never 500.
Imports, migrations and other jobs of the CLI run without a limit.
"""

from __future__ import annotations

from gridmap.storage.base import StoreUnavailable

__all__ = ["DEFAULT_STATEMENT_TIMEOUT_MS", "StatementTimeout"]

#: How long one statement of the API may run by default (milliseconds).
DEFAULT_STATEMENT_TIMEOUT_MS = 15_000


class StatementTimeout(StoreUnavailable):
    """The database cancelled a statement that ran longer than the time limit.

    Nothing was changed (the statement's transaction is rolled back); the
    same request may succeed when the database is less busy, or asked for
    less (a smaller area, a shorter period, a simpler filter).
    """

    code = "statement_timeout"
