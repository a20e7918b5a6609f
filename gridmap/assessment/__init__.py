"""Assessment (考核) and leadership reports.

Modules by topic: :mod:`~gridmap.assessment.rules` (indicators, weights and
bands as configuration; pure scoring and ranking), :mod:`~gridmap.assessment.doorknock`
(door-knocking campaigns, visits, progress), :mod:`~gridmap.assessment.scores`
(indicators measured from the store, with evidence) and
:mod:`~gridmap.assessment.report` (the period report: figures traceable to
their queries, rendered to HTML).
"""

from gridmap.assessment.rules import AssessmentRules, Band, Indicator, default_rules, score_value

__all__ = ["AssessmentRules", "Band", "Indicator", "default_rules", "score_value"]
