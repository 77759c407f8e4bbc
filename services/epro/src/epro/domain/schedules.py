"""Protocol schedules -> occurrences, in the participant's own timezone. Pure.

A schedule names a wall-clock time ("20:00") in the participant's zone; each local
day is converted to UTC on its own, so the UTC instant moves by an hour across a
DST switch while the participant still sees 20:00. A local time that does not exist
(spring-forward gap) falls forward by the gap's length (02:30 -> 03:30); a local
time that happens twice (fall-back) is the first of the two. Windows are elapsed
durations after the due time.

Occurrence ids are derived from (participant, schedule, due instant), so computing
the same range twice, on any replica, after any restart, gives the same ids.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

OCCURRENCES = uuid.UUID("5b0e7a4e-4a55-4c1d-9d43-3f7c0e2f1a10")


class _Rule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    at: time = Field(default=time(20, 0), description="Local wall-clock time")
    window_minutes: int = Field(default=120, ge=1, le=7 * 24 * 60)


class Daily(_Rule):
    kind: Literal["daily"] = "daily"


class Weekly(_Rule):
    kind: Literal["weekly"] = "weekly"
    weekday: int = Field(ge=0, le=6, description="0 = Monday")


class AfterEnrollment(_Rule):
    kind: Literal["after_enrollment"] = "after_enrollment"
    days: tuple[int, ...] = Field(min_length=1, description="Days after the enrolment day")


class AfterVisit(_Rule):
    kind: Literal["after_visit"] = "after_visit"
    days: tuple[int, ...] = Field(min_length=1, description="Days after each completed visit")


class Random(BaseModel):
    """Experience sampling: `per_day` prompts at random times within waking hours."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["random"] = "random"
    per_day: int = Field(ge=1, le=20)
    wake: time = time(9, 0)
    sleep: time = time(21, 0)
    min_gap_minutes: int = Field(default=60, ge=0)
    window_minutes: int = Field(default=30, ge=1, le=24 * 60)


Rule = Annotated[
    Daily | Weekly | AfterEnrollment | AfterVisit | Random, Field(discriminator="kind")
]


class Schedule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    schedule_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    questionnaire_id: str
    questionnaire_version: int = Field(ge=1)
    rule: Rule


@dataclass(frozen=True)
class Occurrence:
    occurrence_id: uuid.UUID
    schedule_id: str
    questionnaire_id: str
    questionnaire_version: int
    due_at: datetime  # UTC
    expires_at: datetime  # UTC


def local_instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    """`day` at wall-clock `at` in `zone`, as a UTC instant (see the module docstring)."""
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)  # fold=0


def _days(start: datetime, end: datetime, zone: ZoneInfo) -> Iterator[date]:
    day = start.astimezone(zone).date() - timedelta(days=1)
    last = end.astimezone(zone).date() + timedelta(days=1)
    while day <= last:
        yield day
        day += timedelta(days=1)


def _random_times(rule: Random, seed: str) -> list[time]:
    """The same `seed` (participant, schedule, day) always draws the same times."""
    rng = random.Random(hashlib.sha256(seed.encode()).digest())
    wake = rule.wake.hour * 60 + rule.wake.minute
    span = max(rule.sleep.hour * 60 + rule.sleep.minute - wake - rule.window_minutes, 1)
    picks: list[int] = []
    for _ in range(200):
        if len(picks) == rule.per_day:
            break
        m = rng.randrange(span)
        if all(abs(m - p) >= rule.min_gap_minutes for p in picks):
            picks.append(m)
    return [time((wake + m) // 60, (wake + m) % 60) for m in sorted(picks)]


def _local_times(
    rule: Rule, day: date, enrolled_day: date, visit_days: Sequence[date], seed: str
) -> list[time]:
    if isinstance(rule, Random):
        return _random_times(rule, f"{seed}|{day.isoformat()}")
    if isinstance(rule, Daily):
        return [rule.at]
    if isinstance(rule, Weekly):
        return [rule.at] if day.weekday() == rule.weekday else []
    if isinstance(rule, AfterEnrollment):
        return [rule.at] if (day - enrolled_day).days in rule.days else []
    hits = sum(1 for v in visit_days if (day - v).days in rule.days)
    return [rule.at] if hits else []


def occurrences(
    schedule: Schedule,
    participant_id: str,
    zone: ZoneInfo,
    *,
    after: datetime,
    until: datetime,
    enrolled_at: datetime,
    visits: Sequence[datetime] = (),
) -> list[Occurrence]:
    """Occurrences with `after < due_at <= until` and due no earlier than enrolment."""
    enrolled_day = enrolled_at.astimezone(zone).date()
    visit_days = [v.astimezone(zone).date() for v in visits]
    window = timedelta(minutes=schedule.rule.window_minutes)
    seed = f"{participant_id}|{schedule.schedule_id}"
    found = []
    for day in _days(after, until, zone):
        for at in _local_times(schedule.rule, day, enrolled_day, visit_days, seed):
            due = local_instant(day, at, zone)
            if after < due <= until and due >= enrolled_at:
                found.append(
                    Occurrence(
                        occurrence_id=uuid.uuid5(OCCURRENCES, f"{seed}|{due.isoformat()}"),
                        schedule_id=schedule.schedule_id,
                        questionnaire_id=schedule.questionnaire_id,
                        questionnaire_version=schedule.questionnaire_version,
                        due_at=due,
                        expires_at=due + window,
                    )
                )
    return sorted(found, key=lambda o: o.due_at)


class Protocol(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    schedules: tuple[Schedule, ...]
