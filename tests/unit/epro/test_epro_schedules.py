"""Schedules in the participant's own timezone, across DST switches, with stable ids."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from epro.domain.schedules import (
    AfterEnrollment,
    AfterVisit,
    Daily,
    Random,
    Schedule,
    Weekly,
    local_instant,
    occurrences,
)

NEW_YORK, BERLIN = ZoneInfo("America/New_York"), ZoneInfo("Europe/Berlin")
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


def diary(rule: object = None) -> Schedule:
    return Schedule(
        schedule_id="diary",
        questionnaire_id="daily-diary",
        questionnaire_version=1,
        rule=rule or Daily(at=time(20, 0), window_minutes=240),
    )


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def due_times(
    schedule: Schedule, zone: ZoneInfo, after: datetime, until: datetime
) -> list[datetime]:
    found = occurrences(schedule, "P-1", zone, after=after, until=until, enrolled_at=LONG_AGO)
    return [o.due_at for o in found]


@pytest.mark.parametrize(
    ("zone", "after", "until", "expected"),
    [
        # New York springs forward on Sun 8 March 2026: EST (-5) -> EDT (-4)
        (NEW_YORK, utc(2026, 3, 6, 12), utc(2026, 3, 10, 12),
         [utc(2026, 3, 7, 1), utc(2026, 3, 8, 1), utc(2026, 3, 9, 0), utc(2026, 3, 10, 0)]),
        # ... and falls back on Sun 1 November 2026: EDT -> EST
        (NEW_YORK, utc(2026, 10, 30, 12), utc(2026, 11, 3, 12),
         [utc(2026, 10, 31, 0), utc(2026, 11, 1, 0), utc(2026, 11, 2, 1), utc(2026, 11, 3, 1)]),
        # Berlin springs forward on Sun 29 March 2026: CET (+1) -> CEST (+2)
        (BERLIN, utc(2026, 3, 27, 12), utc(2026, 3, 31, 12),
         [utc(2026, 3, 27, 19), utc(2026, 3, 28, 19), utc(2026, 3, 29, 18), utc(2026, 3, 30, 18)]),
        # ... and falls back on Sun 25 October 2026 (the EU switch is in October, not November)
        (BERLIN, utc(2026, 10, 23, 12), utc(2026, 10, 27, 12),
         [utc(2026, 10, 23, 18), utc(2026, 10, 24, 18), utc(2026, 10, 25, 19), utc(2026, 10, 26, 19)]),
        # Berlin in November: the week the US switches, Berlin is already on CET
        (BERLIN, utc(2026, 10, 31, 12), utc(2026, 11, 2, 12),
         [utc(2026, 10, 31, 19), utc(2026, 11, 1, 19)]),
    ],
)  # fmt: skip
def test_daily_20h_diary_stays_at_20h_local_across_dst_switches(
    zone: ZoneInfo, after: datetime, until: datetime, expected: list[datetime]
) -> None:
    dues = due_times(diary(), zone, after, until)
    assert dues == expected
    assert {d.astimezone(zone).time() for d in dues} == {time(20, 0)}


def test_spring_day_has_23_hours_and_autumn_day_25_between_diaries() -> None:
    spring = due_times(diary(), NEW_YORK, utc(2026, 3, 7, 12), utc(2026, 3, 9, 12))
    autumn = due_times(diary(), NEW_YORK, utc(2026, 10, 31, 12), utc(2026, 11, 2, 12))
    assert spring[1] - spring[0] == timedelta(hours=23)
    assert autumn[1] - autumn[0] == timedelta(hours=25)


def test_window_is_elapsed_time_even_across_the_switch() -> None:
    night = diary(Daily(at=time(23, 30), window_minutes=240))
    [o] = occurrences(
        night,
        "P-1",
        NEW_YORK,
        after=utc(2026, 3, 8, 0),
        until=utc(2026, 3, 8, 12),
        enrolled_at=LONG_AGO,
    )
    assert o.expires_at - o.due_at == timedelta(hours=4)
    assert o.expires_at.astimezone(NEW_YORK).time() == time(4, 30)  # 23:30 EST + 4 h = 04:30 EDT


def test_local_time_in_the_spring_gap_moves_forward_by_the_gap() -> None:
    # 02:30 does not exist in New York on 8 March 2026
    at = local_instant(date(2026, 3, 8), time(2, 30), NEW_YORK)
    assert at == utc(2026, 3, 8, 7, 30)
    assert at.astimezone(NEW_YORK).time() == time(3, 30)


def test_local_time_repeated_in_autumn_is_the_first_of_the_two() -> None:
    # 01:30 happens twice in New York on 1 November 2026; the first is EDT (-4)
    assert local_instant(date(2026, 11, 1), time(1, 30), NEW_YORK) == utc(2026, 11, 1, 5, 30)


def test_a_gap_time_schedule_still_fires_exactly_once_that_day() -> None:
    early = diary(Daily(at=time(2, 30), window_minutes=60))
    dues = due_times(early, NEW_YORK, utc(2026, 3, 7, 12), utc(2026, 3, 9, 12))
    assert dues == [utc(2026, 3, 8, 7, 30), utc(2026, 3, 9, 6, 30)]


def test_computing_the_same_range_twice_or_in_pieces_gives_the_same_ids() -> None:
    s, start, mid, end = diary(), utc(2026, 3, 1), utc(2026, 3, 12, 3, 17), utc(2026, 3, 20)
    whole = occurrences(s, "P-1", NEW_YORK, after=start, until=end, enrolled_at=LONG_AGO)
    pieces = occurrences(
        s, "P-1", NEW_YORK, after=start, until=mid, enrolled_at=LONG_AGO
    ) + occurrences(s, "P-1", NEW_YORK, after=mid, until=end, enrolled_at=LONG_AGO)
    assert [o.occurrence_id for o in whole] == [o.occurrence_id for o in pieces]
    assert len({o.occurrence_id for o in whole}) == len(whole) == 20  # 28 Feb .. 19 March, local


def test_weekly_schedule_fires_on_its_weekday_at_local_time() -> None:
    s = diary(Weekly(weekday=0, at=time(10, 0)))
    dues = due_times(s, BERLIN, utc(2026, 3, 20), utc(2026, 4, 10))
    assert [d.astimezone(BERLIN).date() for d in dues] == [
        date(2026, 3, 23),
        date(2026, 3, 30),
        date(2026, 4, 6),
    ]
    assert [d.astimezone(UTC).hour for d in dues] == [9, 8, 8]


def test_enrolment_relative_schedule_counts_days_in_local_time() -> None:
    s = diary(AfterEnrollment(days=(0, 14), at=time(10, 0)))
    enrolled = utc(2026, 3, 2, 4)  # still 1 March in New York
    found = occurrences(
        s, "P-1", NEW_YORK, after=enrolled, until=utc(2026, 4, 1), enrolled_at=enrolled
    )
    assert [o.due_at.astimezone(NEW_YORK).date() for o in found] == [
        date(2026, 3, 15)
    ]  # day 0 was before enrolment


def test_visit_anchored_schedule_fires_three_days_after_each_visit() -> None:
    s = diary(AfterVisit(days=(3,), at=time(18, 0)))
    visits = [utc(2026, 3, 2, 15), utc(2026, 3, 16, 15)]
    found = occurrences(
        s,
        "P-1",
        BERLIN,
        after=utc(2026, 3, 1),
        until=utc(2026, 4, 1),
        enrolled_at=LONG_AGO,
        visits=visits,
    )
    assert [o.due_at.astimezone(BERLIN) for o in found] == [
        datetime(2026, 3, 5, 18, tzinfo=BERLIN), datetime(2026, 3, 19, 18, tzinfo=BERLIN),
    ]  # fmt: skip


def test_random_prompts_fall_within_waking_hours_apart_and_are_reproducible() -> None:
    rule = Random(
        per_day=4, wake=time(9, 0), sleep=time(21, 0), min_gap_minutes=60, window_minutes=30
    )
    s = diary(rule)
    first = occurrences(
        s, "P-1", BERLIN, after=utc(2026, 3, 26), until=utc(2026, 4, 2), enrolled_at=LONG_AGO
    )
    again = occurrences(
        s, "P-1", BERLIN, after=utc(2026, 3, 26), until=utc(2026, 4, 2), enrolled_at=LONG_AGO
    )
    other = occurrences(
        s, "P-2", BERLIN, after=utc(2026, 3, 26), until=utc(2026, 4, 2), enrolled_at=LONG_AGO
    )
    assert first == again
    assert [o.due_at for o in first] != [o.due_at for o in other]
    by_day: dict[date, list[datetime]] = {}
    for o in first:
        local = o.due_at.astimezone(BERLIN)
        assert time(9, 0) <= local.time()
        assert (o.expires_at.astimezone(BERLIN)).time() <= time(21, 0)
        by_day.setdefault(local.date(), []).append(o.due_at)
    assert all(len(v) == 4 for v in by_day.values())
    assert len(by_day) == 7
    for dues in by_day.values():
        assert all(b - a >= timedelta(minutes=60) for a, b in itertools.pairwise(dues))


def test_range_is_half_open_so_consecutive_ticks_never_overlap() -> None:
    due = utc(2026, 3, 10, 0)  # 20:00 EDT on 9 March
    assert due_times(diary(), NEW_YORK, due - timedelta(hours=1), due) == [due]
    assert due_times(diary(), NEW_YORK, due, due + timedelta(hours=1)) == []


def test_an_unknown_timezone_name_schedules_in_utc_instead_of_failing() -> None:
    from epro.due_and_missed import _zone

    assert _zone("Mars/Olympus_Mons") == ZoneInfo("UTC")
    assert _zone("../etc/passwd") == ZoneInfo("UTC")
    assert _zone("Europe/Berlin") == BERLIN
