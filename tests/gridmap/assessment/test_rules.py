"""Assessment rules: bands at their boundaries, validation, scoring and ranking."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from pydantic import ValidationError

from gridmap.assessment.rules import (
    AssessmentRules,
    Band,
    Indicator,
    default_rules,
    score_table,
    score_value,
)

COVERAGE = default_rules().indicator("patrol_coverage")


@pytest.mark.parametrize(
    ("percent", "band", "points"),
    [
        (100.0, "full", 25.0),
        (95.0, "full", 25.0),
        (94.99, "90_94", 20.0),
        (90.0, "90_94", 20.0),
        (89.99, "85_89", 15.0),
        (85.0, "85_89", 15.0),
        (84.99, "none", 0.0),
        (0.0, "none", 0.0),
    ],
)
def test_bands_at_boundaries(percent: float, band: str, points: float) -> None:
    assert score_value(COVERAGE, percent / 100) == (band, points)


def test_not_assessed() -> None:
    assert score_value(COVERAGE, None) == ("not_assessed", None)
    assert score_value(COVERAGE, math.nan) == ("not_assessed", None)


def test_rules_validate() -> None:
    band = Band(min_percent=90, share=1, code="a")
    with pytest.raises(ValidationError):
        AssessmentRules(indicators=(Indicator(code="closure_rate", weight=60, bands=(band,)),))
    with pytest.raises(ValidationError):
        Indicator(code="unknown", weight=10, bands=(band,))
    with pytest.raises(ValidationError):  # bands out of order
        Indicator(
            code="closure_rate",
            weight=10,
            bands=(band, Band(min_percent=95, share=1, code="b")),
        )
    rules = AssessmentRules.model_validate_json(default_rules().model_dump_json())
    assert rules == default_rules()


def test_score_table_rescales_and_ranks() -> None:
    values = pd.DataFrame(
        {"patrol_coverage": [0.95, 0.9499, math.nan], "closure_rate": [0.5, 1.0, math.nan]},
        index=pd.Index(["a", "b", "c"], name="grid"),
    )
    t = score_table(values, default_rules())
    assert t.loc["a", "points"] == 25 and t.loc["a", "possible"] == 40
    assert t.loc["b", "points"] == 35
    assert math.isclose(t.loc["b", "score"], 100 * 35 / 40)
    assert list(t.index) == ["b", "a", "c"] and pd.isna(t.loc["c", "rank"])
