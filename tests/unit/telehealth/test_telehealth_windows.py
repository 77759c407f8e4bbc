"""Protocol window arithmetic, across DST switches."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from telehealth.domain.windows import (
    DEFAULT_PROTOCOL,
    ProtocolVisit,
    UnknownTimezone,
    plan_schedule,
    visit_window,
    within,
    zone,
)
from trialstream.events.visits import VisitType

BERLIN = zone("Europe/Berlin")
NEW_YORK = zone("America/New_York")


def test_day_one_is_the_baseline_date_in_local_time() -> None:
    start, end = visit_window(date(2026, 1, 10), ProtocolVisit(name="Day 1", day=1), BERLIN)
    assert start == datetime(2026, 1, 9, 23, 0, tzinfo=UTC)
    assert end == datetime(2026, 1, 10, 23, 0, tzinfo=UTC)


def test_day_seven_plus_minus_two_covers_days_five_to_nine() -> None:
    visit = ProtocolVisit(name="Day 7", day=7, minus_days=2, plus_days=2)
    start, end = visit_window(date(2026, 1, 1), visit, zone("UTC"))
    assert (start, end) == (
        datetime(2026, 1, 5, tzinfo=UTC),
        datetime(2026, 1, 10, tzinfo=UTC),
    )


def test_window_spanning_berlin_spring_forward_is_one_hour_short() -> None:
    # Day 28 +/- 3 from 1 March: 25-31 March; clocks go 02:00 -> 03:00 on 29 March 2026.
    visit = ProtocolVisit(name="Day 28", day=28, minus_days=3, plus_days=3)
    start, end = visit_window(date(2026, 3, 1), visit, BERLIN)
    assert start == datetime(2026, 3, 24, 23, 0, tzinfo=UTC)  # 00:00 CET
    assert end == datetime(2026, 3, 31, 22, 0, tzinfo=UTC)  # 00:00 CEST
    assert end - start == timedelta(days=7) - timedelta(hours=1)


def test_window_spanning_new_york_fall_back_is_one_hour_long() -> None:
    # Clocks go 02:00 -> 01:00 on 1 November 2026.
    visit = ProtocolVisit(name="Day 7", day=7, minus_days=2, plus_days=2)
    start, end = visit_window(date(2026, 10, 25), visit, NEW_YORK)
    assert start == datetime(2026, 10, 29, 4, 0, tzinfo=UTC)  # 00:00 EDT
    assert end == datetime(2026, 11, 3, 5, 0, tzinfo=UTC)  # 00:00 EST
    assert end - start == timedelta(days=5, hours=1)


def test_schedule_follows_protocol_order_with_types() -> None:
    planned = plan_schedule(date(2026, 5, 4), list(reversed(DEFAULT_PROTOCOL)), zone("UTC"))
    assert [(p.sequence, p.name, p.type) for p in planned] == [
        (1, "Day 1", VisitType.SITE),
        (2, "Day 7", VisitType.VIDEO),
        (3, "Day 28", VisitType.VIDEO),
    ]
    assert planned[2].window_start == datetime(2026, 5, 28, tzinfo=UTC)
    assert planned[2].window_end == datetime(2026, 6, 4, tzinfo=UTC)


def test_a_visit_must_start_and_end_inside_its_window() -> None:
    w0, w1 = datetime(2026, 1, 5, tzinfo=UTC), datetime(2026, 1, 10, tzinfo=UTC)
    half = timedelta(minutes=30)
    assert within(w0, w0 + half, w0, w1)
    assert within(w1 - half, w1, w0, w1)
    assert not within(w1 - half / 2, w1 + half / 2, w0, w1)
    assert not within(w0 - half, w0, w0, w1)


def test_unknown_timezone_is_refused() -> None:
    with pytest.raises(UnknownTimezone):
        zone("Mars/Olympus_Mons")
