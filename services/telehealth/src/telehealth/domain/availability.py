"""Staff availability: weekly hours in the site's timezone, exceptions per date, slots.

Hours are wall-clock times. A slot whose local start does not exist (the hour
skipped when clocks spring forward) is not offered; a local start that happens
twice (clocks fall back) is offered once, at its first occurrence. A slot lasts
`slot_minutes` of real time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Hours:
    start: time
    end: time

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError("hours must end after they start")


@dataclass(frozen=True)
class WeeklyHours:
    weekday: int  # Monday = 0 ... Sunday = 6, as date.weekday()
    hours: Hours


@dataclass(frozen=True, order=True)
class Slot:
    starts_at: datetime  # UTC
    ends_at: datetime
    staff_id: str = ""


def local_exists(wall: datetime, tz: ZoneInfo) -> bool:
    """False for a wall-clock time inside a DST gap (it never shows on a local clock)."""
    aware = wall.replace(tzinfo=tz)
    return aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == wall


def hours_on(
    day: date, weekly: Sequence[WeeklyHours], exceptions: Mapping[date, Sequence[Hours]]
) -> Sequence[Hours]:
    """An exception replaces the whole day's weekly hours (an empty one means: off)."""
    if day in exceptions:
        return exceptions[day]
    return [w.hours for w in weekly if w.weekday == day.weekday()]


def _day_slots(day: date, hours: Hours, tz: ZoneInfo, length: timedelta) -> Iterable[datetime]:
    wall = datetime.combine(day, hours.start)
    end = datetime.combine(day, hours.end)
    while wall + length <= end:
        if local_exists(wall, tz):
            yield wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
        wall += length


def slots_between(
    weekly: Sequence[WeeklyHours],
    exceptions: Mapping[date, Sequence[Hours]],
    tz: ZoneInfo,
    start: datetime,
    end: datetime,
    slot_minutes: int,
    staff_id: str = "",
) -> list[Slot]:
    """Every slot of one staff member that starts at or after `start` and ends by `end`."""
    length = timedelta(minutes=slot_minutes)
    day = start.astimezone(tz).date() - timedelta(days=1)
    last = end.astimezone(tz).date() + timedelta(days=1)
    found: set[Slot] = set()
    while day <= last:
        for hours in hours_on(day, weekly, exceptions):
            for begins in _day_slots(day, hours, tz, length):
                if start <= begins and begins + length <= end:
                    found.add(Slot(begins, begins + length, staff_id))
        day += timedelta(days=1)
    return sorted(found)


def overlaps(a_start: datetime, a_end: datetime, b_start: datetime, b_end: datetime) -> bool:
    return a_start < b_end and b_start < a_end


def free(
    slots: Iterable[Slot], busy: Mapping[str, Sequence[tuple[datetime, datetime]]]
) -> list[Slot]:
    """Slots that overlap none of their staff member's busy ranges."""
    return [
        s
        for s in slots
        if not any(overlaps(s.starts_at, s.ends_at, b0, b1) for b0, b1 in busy.get(s.staff_id, ()))
    ]
