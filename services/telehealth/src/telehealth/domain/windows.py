"""Protocol visit windows: pure date arithmetic in the participant's timezone.

Day 1 is the baseline date. A visit "Day 7 +/- 2" may happen on any calendar day
from Day 5 to Day 9 inclusive, as the participant lives them: its window opens at
local midnight of Day 5 and closes at local midnight after Day 9. Across a DST
switch such a window is an hour shorter or longer than 5 x 24 h, which is right.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field
from trialstream.events.visits import VisitType


class ProtocolVisit(BaseModel):
    """One visit of the protocol definition, e.g. Day 28 +/- 3, video."""

    model_config = ConfigDict(frozen=True)

    name: Annotated[str, Field(min_length=1, max_length=64)]
    day: Annotated[int, Field(ge=1, le=3650, description="Study day; Day 1 is the baseline date")]
    minus_days: Annotated[int, Field(ge=0, le=365)] = 0
    plus_days: Annotated[int, Field(ge=0, le=365)] = 0
    type: VisitType = VisitType.VIDEO


DEFAULT_PROTOCOL: tuple[ProtocolVisit, ...] = (
    ProtocolVisit(name="Day 1", day=1, type=VisitType.SITE),
    ProtocolVisit(name="Day 7", day=7, minus_days=2, plus_days=2, type=VisitType.VIDEO),
    ProtocolVisit(name="Day 28", day=28, minus_days=3, plus_days=3, type=VisitType.VIDEO),
)


@dataclass(frozen=True)
class PlannedVisit:
    name: str
    type: VisitType
    sequence: int
    window_start: datetime  # UTC, inclusive
    window_end: datetime  # UTC, exclusive


class UnknownTimezone(ValueError):
    pass


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UnknownTimezone(f"unknown IANA timezone '{name}'") from None


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The UTC instant the local calendar day starts. If midnight falls in a DST gap,
    fold=0 maps it to the transition instant, i.e. the first moment of that day."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def visit_window(baseline: date, visit: ProtocolVisit, tz: ZoneInfo) -> tuple[datetime, datetime]:
    target = baseline + timedelta(days=visit.day - 1)
    first = target - timedelta(days=visit.minus_days)
    last = target + timedelta(days=visit.plus_days)
    return local_midnight(first, tz), local_midnight(last + timedelta(days=1), tz)


def plan_schedule(
    baseline: date, protocol: tuple[ProtocolVisit, ...] | list[ProtocolVisit], tz: ZoneInfo
) -> list[PlannedVisit]:
    planned = []
    for sequence, visit in enumerate(sorted(protocol, key=lambda v: v.day), start=1):
        start, end = visit_window(baseline, visit, tz)
        planned.append(PlannedVisit(visit.name, visit.type, sequence, start, end))
    return planned


def local_date(instant: datetime, tz: ZoneInfo) -> date:
    return instant.astimezone(tz).date()


def within(start: datetime, end: datetime, window_start: datetime, window_end: datetime) -> bool:
    """A visit is inside its window when it starts and ends within it."""
    return window_start <= start and end <= window_end
