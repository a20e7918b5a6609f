"""Patrol planning and measured coverage (巡查走访, 治安巡逻).

Modules by topic: :mod:`~gridmap.patrol.network` (street graphs in metres),
:mod:`~gridmap.patrol.postman` (street-coverage routes),
:mod:`~gridmap.patrol.visits` (key points with dwell times, mixed routes),
:mod:`~gridmap.patrol.vrp` (several workers), :mod:`~gridmap.patrol.events`
(major-event schedules), :mod:`~gridmap.patrol.tracks` (GPS tracks, spoofing
flags, visibility), :mod:`~gridmap.patrol.coverage` (巡查覆盖率 and bands) and
:mod:`~gridmap.patrol.service` (the same over a store).
"""

from gridmap.patrol.coverage import assessment_band, measure_coverage
from gridmap.patrol.events import Dosage, event_schedule
from gridmap.patrol.network import StreetNetwork, street_network
from gridmap.patrol.postman import PostmanRoute, postman_route
from gridmap.patrol.tracks import Track, can_see_track, parse_track
from gridmap.patrol.visits import VisitPlan, key_point_route, mixed_route
from gridmap.patrol.vrp import TeamPlan, team_routes

__all__ = [
    "Dosage",
    "PostmanRoute",
    "StreetNetwork",
    "TeamPlan",
    "Track",
    "VisitPlan",
    "assessment_band",
    "can_see_track",
    "event_schedule",
    "key_point_route",
    "measure_coverage",
    "mixed_route",
    "parse_track",
    "postman_route",
    "street_network",
    "team_routes",
]
