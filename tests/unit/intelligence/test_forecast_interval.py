"""How a forecast's interval is shown: dates within the horizon, `null` beyond it. A site
with almost no enrolments yields bounds of tens of thousands of years (or infinity),
which once made the forecast route answer 500."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from types import SimpleNamespace

from intelligence.service import HORIZON_DAYS, forecast_interval

NOW = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)


def test_bounds_within_the_horizon_are_dates() -> None:
    shown = forecast_interval(NOW, SimpleNamespace(median=30.0, lower=10.0, upper=95.5))
    assert shown is not None
    assert shown["expected"] == "2027-01-03"
    assert shown["lower"] == "2026-12-14"
    assert shown["days"] == {"median": 30.0, "lower": 10.0, "upper": 95.5}
    assert shown["beyond_horizon"] is False


def test_bounds_past_the_horizon_or_infinite_are_null_not_an_error() -> None:
    shown = forecast_interval(NOW, SimpleNamespace(median=200.0, lower=50.0, upper=5_000_000_000.0))
    assert shown is not None
    assert shown["upper"] is None
    assert shown["days"]["upper"] is None
    assert shown["expected"] == "2027-06-22"
    assert shown["beyond_horizon"] is True
    endless = forecast_interval(
        NOW, SimpleNamespace(median=math.inf, lower=HORIZON_DAYS + 1, upper=math.inf)
    )
    assert endless is not None
    assert endless["expected"] is None
    assert endless["lower"] is None
    assert endless["beyond_horizon"] is True


def test_a_reached_target_has_no_interval() -> None:
    assert forecast_interval(NOW, None) is None
