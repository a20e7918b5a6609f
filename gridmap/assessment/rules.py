"""Assessment rules (考核细则) as configuration: indicators, weights and bands.

A rule set is plain data (a pydantic model, loaded from a TOML or JSON file
by :func:`load_rules`; the default ships as ``gridmap/data/rules.toml``): each
indicator has a weight (points out of 100) and bands — the lowest value, in
percent, that earns a share of the weight. The defaults follow common 考核
practice, e.g. patrol coverage ≥95% full marks, 90–94% 80%, 85–89% 60%, below
85% nothing.

Scoring is pure: :func:`score_value` turns one measured value into a band and
points; :func:`score_table` scores a table of measured values (one row per
worker, grid, community or town) and ranks it. An indicator without data
(``NaN``: no events to close, no household to visit) is *not assessed*: its
weight is left out and the total is rescaled to 100 over the indicators that
were assessed.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from gridmap.common.configfiles import explain, read_config, shipped

__all__ = [
    "INDICATORS",
    "AssessmentRules",
    "Band",
    "Indicator",
    "default_rules",
    "load_rules",
    "score_table",
    "score_value",
]

#: Indicator codes with zh-CN and English names, in report order.
INDICATORS: dict[str, tuple[str, str]] = {
    "patrol_coverage": ("巡查覆盖率", "Patrol coverage"),
    "report_timeliness": ("上报及时率", "Report timeliness"),
    "closure_rate": ("结案率", "Closure rate"),
    "on_time_rate": ("按期结案率", "On-time closure rate"),
    "doorknock_progress": ("敲门行动进度", "Door-knocking progress"),
    "data_accuracy": ("数据准确率", "Data accuracy"),
    "satisfaction": ("群众满意度", "Satisfaction"),
}

#: Values closer than this (in percentage points) to a band's lower bound count as reaching it.
_EPS = 1e-9


class Band(BaseModel):
    """A band of an indicator: from *min_percent* up, *share* of the indicator's weight.

    Examples
    --------
    >>> Band(min_percent=95, share=1.0, code="full").code
    'full'
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_percent: float = Field(ge=0, le=100)
    share: float = Field(ge=0, le=1)
    code: str = Field(min_length=1, max_length=40)
    label_zh: str = ""
    label_en: str = ""


class Indicator(BaseModel):
    """One assessed indicator.

    Parameters
    ----------
    code : str
        One of :data:`INDICATORS`.
    weight : float
        Points the indicator is worth (the weights of a rule set sum to 100).
    bands : list of Band
        Best first; a value below the last band scores nothing (band ``none``).

    Examples
    --------
    >>> i = Indicator(code="closure_rate", weight=20,
    ...               bands=[Band(min_percent=90, share=1, code="a")])
    >>> i.name_en
    'Closure rate'
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str
    weight: float = Field(ge=0, le=100)
    bands: tuple[Band, ...] = Field(min_length=1)

    @field_validator("code")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in INDICATORS:
            raise ValueError(f"unknown indicator {value!r}; one of {', '.join(INDICATORS)}")
        return value

    @field_validator("bands")
    @classmethod
    def _ordered(cls, value: tuple[Band, ...]) -> tuple[Band, ...]:
        lows = [b.min_percent for b in value]
        if lows != sorted(lows, reverse=True) or len(set(lows)) != len(lows):
            raise ValueError("bands must be listed best first with distinct min_percent")
        return value

    @property
    def name_zh(self) -> str:
        """Chinese name."""
        return INDICATORS[self.code][0]

    @property
    def name_en(self) -> str:
        """English name."""
        return INDICATORS[self.code][1]


class AssessmentRules(BaseModel):
    """A rule set: the indicators assessed and how.

    Parameters
    ----------
    indicators : list of Indicator
        Each indicator at most once; weights sum to 100.
    patrol_days : {"all", "weekdays"}
        Days a grid must be patrolled: every calendar day of the period, or
        Monday to Friday. Patrol coverage of a period is the street length
        covered on those days over the required length times their number.

    Examples
    --------
    >>> rules = default_rules()
    >>> sum(i.weight for i in rules.indicators)
    100.0
    >>> rules.indicator("patrol_coverage").bands[0].min_percent
    95.0
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    indicators: tuple[Indicator, ...] = Field(min_length=1)
    patrol_days: str = Field(default="all", pattern="^(all|weekdays)$")

    @model_validator(mode="after")
    def _weights(self) -> AssessmentRules:
        codes = [i.code for i in self.indicators]
        if len(set(codes)) != len(codes):
            raise ValueError("each indicator may appear only once")
        total = sum(i.weight for i in self.indicators)
        if not math.isclose(total, 100.0, abs_tol=1e-6):
            raise ValueError(f"indicator weights must sum to 100, not {total:g}")
        return self

    def indicator(self, code: str) -> Indicator:
        """The indicator called *code* (``KeyError`` if not in this rule set)."""
        for ind in self.indicators:
            if ind.code == code:
                return ind
        raise KeyError(code)


def load_rules(path: str | Path | None = None) -> AssessmentRules:
    """Read and check an assessment rules file (TOML or JSON); ``None``: the shipped default.

    The file has ``patrol_days`` and one ``[[indicators]]`` table per indicator
    (``code``, ``weight``) with its ``[[indicators.bands]]`` (``min_percent``,
    ``share``, ``code``, ``label_zh``, ``label_en``), best band first; the
    weights sum to 100. See ``gridmap/data/rules.toml``.

    Raises
    ------
    gridmap.common.configfiles.ConfigError
        The file is missing, not TOML/JSON, or breaks a rule (unknown
        indicator, weights not summing to 100, bands out of order …); the
        message names the file and each problem.

    Examples
    --------
    >>> load_rules().indicator("closure_rate").weight
    15.0
    """
    if path is None:
        return default_rules()
    return _rules_from(read_config(path, what="rules"), path)


def _rules_from(data: dict[str, object], path: str | Path) -> AssessmentRules:
    try:
        return AssessmentRules.model_validate(data)
    except ValidationError as exc:
        raise explain(exc, path=path, what="rules") from None


@functools.cache
def _shipped() -> AssessmentRules:
    path = shipped("rules.toml")
    return _rules_from(read_config(path, what="rules"), path)


def default_rules() -> AssessmentRules:
    """The default monthly rule set (weights sum to 100; every indicator banded 95/90/85).

    Read from the file shipped in the package (``gridmap/data/rules.toml``).

    Examples
    --------
    >>> [(i.code, i.weight) for i in default_rules().indicators][:2]
    [('patrol_coverage', 25.0), ('report_timeliness', 15.0)]
    """
    return _shipped()


def score_value(indicator: Indicator, value: float | None) -> tuple[str, float | None]:
    """Band code and points of a measured *value* (a share 0–1) on *indicator*.

    A value reaches a band when ``100 * value >= min_percent`` (so 95.0% is
    full marks and 94.99% is not). ``None``/NaN is ``("not_assessed", None)``.

    Examples
    --------
    >>> ind = default_rules().indicator("patrol_coverage")
    >>> [score_value(ind, v) for v in (0.95, 0.9499, 0.90, 0.85, 0.8499)]
    [('full', 25.0), ('90_94', 20.0), ('90_94', 20.0), ('85_89', 15.0), ('none', 0.0)]
    >>> score_value(ind, float("nan"))
    ('not_assessed', None)
    """
    if value is None or not math.isfinite(value):
        return "not_assessed", None
    percent = 100.0 * float(value)
    for band in indicator.bands:
        if percent >= band.min_percent - _EPS:
            return band.code, indicator.weight * band.share
    return "none", 0.0


def score_table(
    values: pd.DataFrame, rules: AssessmentRules, *, by: str | None = None
) -> pd.DataFrame:
    """Score and rank a table of measured values (one row per assessed unit).

    Parameters
    ----------
    values : DataFrame
        One column per indicator code (shares 0–1, NaN when not assessed);
        other columns are ignored. The index names the units.
    rules : AssessmentRules
        The rule set.
    by : str, optional
        Name for the output index (defaults to the input's).

    Returns
    -------
    DataFrame
        Per indicator ``<code>_band`` and ``<code>_points``; then ``points``
        (sum over assessed indicators), ``possible`` (their weights), ``score``
        (points rescaled to 100; NaN when nothing was assessed) and ``rank``
        (1 = best, ties share the best rank; NaN scores are unranked),
        sorted by rank then index.

    Examples
    --------
    >>> v = pd.DataFrame({"closure_rate": [0.96, 0.5], "on_time_rate": [float("nan"), 1.0]},
    ...                  index=pd.Index(["g1", "g2"], name="grid"))
    >>> rules = AssessmentRules(indicators=[
    ...     Indicator(code="closure_rate", weight=50, bands=[Band(min_percent=95, share=1,
    ...                                                           code="full")]),
    ...     Indicator(code="on_time_rate", weight=50, bands=[Band(min_percent=95, share=1,
    ...                                                           code="full")])])
    >>> t = score_table(v, rules)
    >>> t[["score", "rank"]].to_dict("index")
    {'g1': {'score': 100.0, 'rank': 1}, 'g2': {'score': 50.0, 'rank': 2}}
    """
    out = pd.DataFrame(index=values.index.rename(by or values.index.name))
    points = np.zeros(len(values))
    possible = np.zeros(len(values))
    for ind in rules.indicators:
        col = (
            pd.to_numeric(values[ind.code], errors="coerce")
            if ind.code in values
            else pd.Series(np.nan, index=values.index)
        )
        scored = [score_value(ind, None if pd.isna(v) else float(v)) for v in col]
        out[f"{ind.code}_value"] = col.to_numpy(dtype=float)
        out[f"{ind.code}_band"] = [b for b, _ in scored]
        pts = np.array([np.nan if p is None else p for _, p in scored], dtype=float)
        out[f"{ind.code}_points"] = pts
        assessed = ~np.isnan(pts)
        points += np.where(assessed, pts, 0.0)
        possible += np.where(assessed, ind.weight, 0.0)
    out["points"] = points
    out["possible"] = possible
    with np.errstate(divide="ignore", invalid="ignore"):
        out["score"] = np.where(possible > 0, np.round(100.0 * points / possible, 6), np.nan)
    out["rank"] = out["score"].rank(method="min", ascending=False).astype("Int64")
    order = out.sort_index().assign(_r=out["rank"].astype("Float64").fillna(np.inf))
    return order.sort_values("_r", kind="stable").drop(columns="_r")
