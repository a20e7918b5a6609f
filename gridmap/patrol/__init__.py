"""Patrol planning and measured coverage (巡查走访, 治安巡逻).

Modules by topic: :mod:`~gridmap.patrol.network` (street graphs in metres),
:mod:`~gridmap.patrol.postman` (street-coverage routes),
:mod:`~gridmap.patrol.visits` (key points with dwell times, mixed routes),
:mod:`~gridmap.patrol.vrp` (several workers), :mod:`~gridmap.patrol.events`
(major-event dosage schedules), :mod:`~gridmap.patrol.eventplan` (major-event
security plans: key areas in time, main streets, shifts),
:mod:`~gridmap.patrol.compliance` (tracks against such a plan),
:mod:`~gridmap.patrol.tracks` (GPS tracks, spoofing flags, visibility),
:mod:`~gridmap.patrol.coverage` (巡查覆盖率 and bands),
:mod:`~gridmap.patrol.service` and :mod:`~gridmap.patrol.plans` (the same over
a store).
"""

from gridmap.patrol.compliance import MatchRules, match_plan
from gridmap.patrol.coverage import assessment_band, measure_coverage
from gridmap.patrol.eventplan import EventPlan, EventPlanOptions, EventWorker, plan_event
from gridmap.patrol.events import Dosage, event_schedule
from gridmap.patrol.network import StreetNetwork, street_network
from gridmap.patrol.postman import PostmanRoute, postman_route
from gridmap.patrol.tracks import Track, can_see_track, parse_track
from gridmap.patrol.visits import VisitPlan, key_point_route, mixed_route
from gridmap.patrol.vrp import TeamPlan, team_routes

__all__ = [
    "Dosage",
    "EventPlan",
    "EventPlanOptions",
    "EventWorker",
    "MatchRules",
    "PostmanRoute",
    "StreetNetwork",
    "TeamPlan",
    "Track",
    "VisitPlan",
    "assessment_band",
    "can_see_track",
    "event_schedule",
    "key_point_route",
    "match_plan",
    "measure_coverage",
    "mixed_route",
    "parse_track",
    "plan_event",
    "postman_route",
    "street_network",
    "team_routes",
]
