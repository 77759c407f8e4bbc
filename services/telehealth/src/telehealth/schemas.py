"""Request bodies of the HTTP API (validated field by field; errors come back as 422)."""

from __future__ import annotations

from datetime import time
from typing import Annotated, Self
from uuid import UUID

from pydantic import BaseModel, Field, field_validator, model_validator
from trialstream.events.base import SiteId, TrialDate, TrialDatetime

from telehealth.domain.windows import UnknownTimezone, zone

StaffId = Annotated[
    str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]{1,63}$", description="Pseudonymous, e.g. nurse-a1")
]
Reason = Annotated[str, Field(min_length=3, max_length=2000)]


class NewStaff(BaseModel):
    staff_id: StaffId
    site_id: SiteId


class SiteSettings(BaseModel):
    timezone: Annotated[str, Field(examples=["Europe/Berlin"])]

    @field_validator("timezone")
    @classmethod
    def _known(cls, value: str) -> str:
        try:
            zone(value)
        except UnknownTimezone as exc:
            raise ValueError(str(exc)) from None
        return value


class HoursIn(BaseModel):
    start: time
    end: time

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class WeeklyHoursIn(HoursIn):
    weekday: Annotated[int, Field(ge=0, le=6, description="Monday = 0 ... Sunday = 6")]


class WeeklySchedule(BaseModel):
    hours: Annotated[list[WeeklyHoursIn], Field(max_length=100)]


class DayException(BaseModel):
    hours: Annotated[list[HoursIn], Field(max_length=24, description="Empty: the day off")]


class Baseline(BaseModel):
    baseline_date: TrialDate


class NewBooking(BaseModel):
    visit_id: UUID
    staff_id: StaffId
    starts_at: TrialDatetime
    deviation_reason: Reason | None = Field(
        default=None, description="Required to book outside the protocol window (a deviation)"
    )


class Reschedule(BaseModel):
    starts_at: TrialDatetime
    staff_id: StaffId | None = None
    reason: Reason
    deviation_reason: Reason | None = None


class WithReason(BaseModel):
    reason: Reason


class Note(BaseModel):
    note: Annotated[str | None, Field(max_length=2000)] = None


class NewFeed(BaseModel):
    staff_id: StaffId | None = None
    participant_id: Annotated[str | None, Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]{1,63}$")] = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.staff_id is None) == (self.participant_id is None):
            raise ValueError("give exactly one of staff_id or participant_id")
        return self
