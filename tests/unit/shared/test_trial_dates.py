"""Dates and times that enter over HTTP lie in the span a trial can run in."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from pydantic import BaseModel, ValidationError
from trialstream.events.base import EARLIEST, LATEST, TrialDate, TrialDatetime


class Body(BaseModel):
    day: TrialDate | None = None
    at: TrialDatetime | None = None


@pytest.mark.parametrize("day", [EARLIEST, date(2030, 1, 9), LATEST])
def test_a_date_in_the_span_passes(day: date) -> None:
    assert Body(day=day).day == day


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01", "1999-12-31", "2100-01-01"])
def test_a_date_outside_it_is_refused_on_the_field_with_its_own_code(day: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Body.model_validate({"day": day})
    (error,) = caught.value.errors()
    assert (error["loc"], error["type"]) == (("day",), "date_out_of_range")
    assert "2000-01-01" in error["msg"]
    assert "2099-12-31" in error["msg"]


def test_a_datetime_is_checked_by_its_day_and_must_carry_an_offset() -> None:
    inside = datetime(2099, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert Body(at=inside).at == inside
    with pytest.raises(ValidationError) as caught:
        Body.model_validate({"at": "9999-12-31T23:59:59+00:00"})
    assert caught.value.errors()[0]["type"] == "date_out_of_range"
    with pytest.raises(ValidationError):
        Body.model_validate({"at": "2030-01-01T00:00:00"})  # no offset
    assert Body(at=datetime(2030, 1, 1, tzinfo=UTC)).at is not None
