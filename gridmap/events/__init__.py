"""Events (事件): taxonomy, report intake, the handling workflow and KPIs.

Modules by topic: :mod:`~gridmap.events.taxonomy` (categories, responsible
parties, time limits), :mod:`~gridmap.events.intake` (validate, locate,
route, duplicates, idempotency), :mod:`~gridmap.events.workflow` (states,
actions, transitions, overdue, supervision), :mod:`~gridmap.events.kpis`
(assessment figures) and :mod:`~gridmap.events.media` (photos).
"""

from __future__ import annotations

from gridmap.events.errors import (
    ConcurrentUpdate,
    IdempotencyKeyReused,
    IllegalTransition,
    MediaTooLarge,
    NotPermitted,
    StaleVersion,
)
from gridmap.events.taxonomy import Taxonomy, default_taxonomy

__all__ = [
    "ConcurrentUpdate",
    "IdempotencyKeyReused",
    "IllegalTransition",
    "MediaTooLarge",
    "NotPermitted",
    "StaleVersion",
    "Taxonomy",
    "default_taxonomy",
]
