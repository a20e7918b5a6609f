"""Event states: the one place that says which events count as open or closed.

Every module that filters or counts events by state takes the sets from here
(:mod:`gridmap.events.workflow` re-exports them). This module imports nothing
of the workflow, so modules the workflow imports (webhooks) can import it at
the top.

>>> sorted(CLOSED_STATES)
['closed', 'merged', 'rejected']
>>> OPEN_STATES | CLOSED_STATES == set(STATES)
True
>>> is_open("merged"), is_open("handling")
(False, True)
"""

from __future__ import annotations

from gridmap.common.model import EVENT_STATUSES

__all__ = ["CLOSED_STATES", "OPEN_STATES", "STATES", "is_open"]

#: Workflow states: the model's statuses plus ``merged`` (a duplicate folded into another).
STATES: dict[str, tuple[str, str]] = {**EVENT_STATUSES, "merged": ("已合并", "Merged")}
#: States in which an event still waits for someone.
OPEN_STATES: frozenset[str] = frozenset(
    {
        "reported",
        "accepted",
        "verified",
        "registered",
        "dispatched",
        "handling",
        "inspecting",
        "escalated",
    }
)
#: Final states: 结案 closed, 退回 rejected, 已合并 merged.
CLOSED_STATES: frozenset[str] = frozenset({"closed", "rejected", "merged"})


def is_open(status: str) -> bool:
    """Whether an event in ``status`` still waits for someone.

    Parameters
    ----------
    status : str
        A workflow state code.

    Returns
    -------
    bool
        True for the states of :data:`OPEN_STATES`.
    """
    return status in OPEN_STATES
