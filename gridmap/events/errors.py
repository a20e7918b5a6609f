"""Domain errors of the event workflow; ``api/errors.py`` maps them to HTTP statuses.

=========================  ======  ==========================================
error                      status  when
=========================  ======  ==========================================
``IllegalTransition``      409     the action is not allowed in the state
``ConcurrentUpdate``       409     another transition won the race
``StaleVersion``           412     ``If-Match`` names an older version
``IdempotencyKeyReused``   422     same ``Idempotency-Key``, another body
``NotPermitted``           403     the role may not take this action
``MediaTooLarge``          413     an uploaded photo exceeds the size limit
=========================  ======  ==========================================
"""

from __future__ import annotations

from gridmap.common.errors import GridmapError

__all__ = [
    "ConcurrentUpdate",
    "IdempotencyKeyReused",
    "IllegalTransition",
    "MediaTooLarge",
    "NotPermitted",
    "StaleVersion",
]


class IllegalTransition(GridmapError):
    """The requested action is not allowed from the event's current state."""

    code = "illegal_transition"


class ConcurrentUpdate(GridmapError):
    """The event changed between reading and writing (another transition won)."""

    code = "conflict"


class StaleVersion(GridmapError):
    """The client's ``If-Match`` version is not the event's current version."""

    code = "precondition_failed"

    def __init__(self, message: str, *, current: int) -> None:
        super().__init__(message)
        self.current = current


class IdempotencyKeyReused(GridmapError):
    """An ``Idempotency-Key`` already used for a request with another body."""

    code = "idempotency_key_reused"


class NotPermitted(GridmapError):
    """The principal's role may not perform this action."""

    code = "forbidden"


class MediaTooLarge(GridmapError):
    """An uploaded file is larger than the configured limit."""

    code = "payload_too_large"
