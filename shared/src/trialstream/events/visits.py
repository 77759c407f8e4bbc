"""Telehealth: the lifecycle of protocol visits, reminders, and urgent visit proposals."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal
from uuid import UUID

from pydantic import AwareDatetime, Field

from trialstream.events.base import DEFAULT_STUDY, Event, ParticipantId, SiteId, StudyId


class VisitType(StrEnum):
    VIDEO = "video"
    HOME = "home"
    SITE = "site"


class VisitStatus(StrEnum):
    SCHEDULED = "scheduled"
    RESCHEDULED = "rescheduled"
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    NO_SHOW = "no-show"
    MISSED = "missed"  # the window closed without a completed visit


class VisitChanged(Event):
    """One step in a visit's lifecycle. `visit_id` is the protocol visit (e.g. Day 7 of
    P-0042); `booking_id` the booked slot, absent for a visit missed without a booking."""

    schema_version: Literal[1] = 1
    participant_id: ParticipantId
    study_id: StudyId = DEFAULT_STUDY  # the participant's study (added within version 1)
    site_id: SiteId
    visit_id: UUID
    visit_name: str
    visit_type: VisitType
    status: VisitStatus
    window_start: AwareDatetime
    window_end: AwareDatetime
    booking_id: UUID | None = None
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    reason: str | None = Field(
        default=None,
        description="The platform's own reason (a withdrawal, an urgent visit); what staff write "
        "stays in telehealth",
    )


class VisitReminderDue(Event):
    """A booked visit starts in `lead` (24 h or 1 h): the retention service nudges."""

    schema_version: Literal[1] = 1
    participant_id: ParticipantId
    study_id: StudyId = DEFAULT_STUDY  # the participant's study (added within version 1)
    visit_id: UUID
    booking_id: UUID
    visit_name: str
    visit_type: VisitType
    starts_at: AwareDatetime
    lead: Literal["24h", "1h"]


class UrgentVisitProposed(Event):
    """A high-severity alert made telehealth propose the earliest free video slot."""

    schema_version: Literal[1] = 1
    participant_id: ParticipantId
    study_id: StudyId = DEFAULT_STUDY  # the participant's study (added within version 1)
    site_id: SiteId
    proposal_id: UUID
    alert_id: UUID
    staff_id: str
    starts_at: AwareDatetime
    ends_at: AwareDatetime
