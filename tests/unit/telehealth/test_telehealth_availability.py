"""Weekly availability in a site's timezone becomes UTC slots, across DST switches."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from telehealth.domain.availability import Hours, Slot, WeeklyHours, free, slots_between
from telehealth.domain.windows import zone

BERLIN = zone("Europe/Berlin")
NEW_YORK = zone("America/New_York")
MONDAY, SUNDAY = 0, 6


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def weekly(weekday: int, start: time, end: time) -> list[WeeklyHours]:
    return [WeeklyHours(weekday, Hours(start, end))]


def test_nine_oclock_berlin_moves_in_utc_when_summer_time_starts() -> None:
    hours = weekly(MONDAY, time(9), time(10))
    before = slots_between(hours, {}, BERLIN, utc(2026, 3, 23), utc(2026, 3, 24), 60)
    after = slots_between(hours, {}, BERLIN, utc(2026, 3, 30), utc(2026, 3, 31), 60)
    assert [s.starts_at for s in before] == [utc(2026, 3, 23, 8)]
    assert [s.starts_at for s in after] == [utc(2026, 3, 30, 7)]


def test_slots_in_the_skipped_hour_are_not_offered() -> None:
    # Berlin, Sunday 29 March 2026: 02:00-03:00 local does not exist.
    hours = weekly(SUNDAY, time(1), time(4))
    got = slots_between(hours, {}, BERLIN, utc(2026, 3, 28), utc(2026, 3, 30), 30)
    assert [s.starts_at.astimezone(BERLIN).strftime("%H:%M") for s in got] == [
        "01:00",
        "01:30",
        "03:00",
        "03:30",
    ]
    assert all(s.ends_at - s.starts_at == timedelta(minutes=30) for s in got)


def test_repeated_hour_at_fall_back_is_offered_once() -> None:
    # New York, Sunday 1 November 2026: 01:00-02:00 local happens twice.
    hours = weekly(SUNDAY, time(0, 30), time(2, 30))
    got = slots_between(hours, {}, NEW_YORK, utc(2026, 10, 31), utc(2026, 11, 3), 30)
    assert [s.starts_at for s in got] == [
        utc(2026, 11, 1, 4, 30),  # 00:30 EDT
        utc(2026, 11, 1, 5, 0),  # 01:00 EDT (first occurrence)
        utc(2026, 11, 1, 5, 30),  # 01:30 EDT
        utc(2026, 11, 1, 7, 0),  # 02:00 EST
    ]
    assert len(set(got)) == len(got)


def test_weekly_hours_keep_local_time_across_new_york_switch() -> None:
    hours = [WeeklyHours(d, Hours(time(8), time(9))) for d in range(7)]
    got = slots_between(hours, {}, NEW_YORK, utc(2026, 3, 7), utc(2026, 3, 10), 60)
    assert [s.starts_at.astimezone(NEW_YORK).hour for s in got] == [8, 8, 8]
    assert [s.starts_at.hour for s in got] == [13, 12, 12]


def test_exception_replaces_the_days_weekly_hours() -> None:
    hours = weekly(MONDAY, time(9), time(11))
    off: dict[date, list[Hours]] = {date(2026, 6, 1): []}
    changed = {date(2026, 6, 1): [Hours(time(14), time(15))]}
    window = (utc(2026, 6, 1), utc(2026, 6, 2))
    assert slots_between(hours, off, zone("UTC"), *window, 60) == []
    assert [s.starts_at for s in slots_between(hours, changed, zone("UTC"), *window, 60)] == [
        utc(2026, 6, 1, 14)
    ]


def test_partial_slot_at_end_of_hours_is_not_offered() -> None:
    hours = weekly(MONDAY, time(9), time(10, 45))
    got = slots_between(hours, {}, zone("UTC"), utc(2026, 6, 1), utc(2026, 6, 2), 30)
    assert [s.starts_at.strftime("%H:%M") for s in got] == ["09:00", "09:30", "10:00"]


def test_busy_ranges_remove_only_overlapping_slots_of_that_staff_member() -> None:
    a = [Slot(utc(2026, 6, 1, h), utc(2026, 6, 1, h, 30), "a") for h in (9, 10)]
    b = [Slot(utc(2026, 6, 1, 9), utc(2026, 6, 1, 9, 30), "b")]
    busy = {"a": [(utc(2026, 6, 1, 9, 15), utc(2026, 6, 1, 9, 45))]}
    assert free(a + b, busy) == [a[1], b[0]]
