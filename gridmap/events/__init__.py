"""Events (事件): taxonomy, report intake, the handling workflow and KPIs.

Modules by topic: :mod:`~gridmap.events.taxonomy` (categories, responsible
parties, time limits), :mod:`~gridmap.events.intake` (validate, locate,
route, duplicates, idempotency), :mod:`~gridmap.events.workflow` (states,
actions, transitions, overdue, supervision), :mod:`~gridmap.events.kpis`
(assessment figures) and :mod:`~gridmap.events.media` (photos).
"""

from __future__ import annotations

from gridmap.events import errors
from gridmap.events.errors import *  # noqa: F403 (the workflow's errors, listed in errors.__all__)
from gridmap.events.taxonomy import Taxonomy, default_taxonomy

__all__ = ["Taxonomy", "default_taxonomy"]
__all__ += errors.__all__
