"""CQL2 TIMESTAMP and DATE literals go through the one time parser (gridmap.common.timeparse)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from gridmap.common.errors import BadInput
from gridmap.common.model import layer_schema
from gridmap.storage.cql import filter_sql, parse_filter

EVENTS = layer_schema("events")
PROPS = {c.name: c.type for c in EVENTS.columns}
UTC = dt.UTC


def _params(text: str, lang: str | None = None) -> list[object]:
    return filter_sql(parse_filter(text, lang, properties=PROPS), EVENTS, dialect="duckdb")[1]


def test_a_timestamp_is_read_in_utc_and_a_date_as_a_day() -> None:
    assert _params("reported_at > TIMESTAMP('2026-11-01T08:00:00+08:00')") == [
        dt.datetime(2026, 11, 1, 0, 0, tzinfo=UTC)
    ]
    assert _params("T_BEFORE(reported_at, DATE('2026-11-01'))") == [dt.date(2026, 11, 1)]
    interval = (
        "T_DURING(reported_at, INTERVAL('2026-11-01T00:00:00Z', '2026-11-02T06:00:00+08:00'))"
    )
    assert _params(interval) == [
        dt.datetime(2026, 11, 1, tzinfo=UTC),
        dt.datetime(2026, 11, 1, 22, tzinfo=UTC),
    ]


@pytest.mark.parametrize(
    "literal",
    [
        "TIMESTAMP('0000-01-01T00:00:00Z')",  # year 0: pandas reads it, Python cannot
        "TIMESTAMP('9999-12-31T23:00:00-08:00')",  # year 10000 in UTC
        "DATE('0000-01-01')",
        "DATE('2026-13-01')",
    ],
)
def test_years_outside_1_to_9999_and_bad_dates_are_refused_naming_the_filter(literal: str) -> None:
    with pytest.raises(BadInput) as err:
        _params(f"reported_at > {literal}")
    assert err.value.field == "filter"
    assert "0001 to 9999" in err.value.message


def test_a_timestamp_without_a_time_and_zone_is_refused() -> None:
    # cql2 itself gives a date-time without a zone a Z; a bare date it leaves as it is
    tree = {"op": ">", "args": [{"property": "reported_at"}, {"timestamp": "2026-11-01"}]}
    with pytest.raises(BadInput) as err:
        _params(json.dumps(tree), "cql2-json")
    assert err.value.field == "filter"
    assert "needs a time zone" in err.value.message
    bad = {"op": ">", "args": [{"property": "reported_at"}, {"timestamp": "yesterday"}]}
    with pytest.raises(BadInput, match="invalid timestamp 'yesterday'"):
        _params(json.dumps(bad), "cql2-json")
