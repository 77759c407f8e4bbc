"""Alerts raised by scoring, and what staff did with them."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal
from uuid import UUID

from pydantic import AwareDatetime, Field

from trialstream.events.base import DEFAULT_STUDY, Event, ParticipantId, StudyId
from trialstream.events.readings import Metric


class Severity(StrEnum):
    """NEWS2-style bands: low wants review, medium a prompt call, high urgent action."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class AlertKind(StrEnum):
    CLINICAL = "clinical"
    DEVICE_QUALITY = "device-quality"
    EPRO_SAFETY = "epro-safety"  # e.g. PHQ-9 item 9 (self-harm) answered above 0


class AlertRaised(Event):
    """An explainable alert. The event_id is derived from the episode, so a re-scored
    batch produces the same id and consumers dedupe it."""

    schema_version: Literal[1] = 1
    participant_id: ParticipantId
    # The participant's study (added within version 1; older records: the default study).
    study_id: StudyId = DEFAULT_STUDY
    kind: AlertKind = AlertKind.CLINICAL
    metric: Metric | None = Field(default=None, description="Absent for non-wearable alerts")
    severity: Severity
    rule: str = Field(description="Rule or model that fired, e.g. 'clinical-limit/heart-rate-high'")
    detected_at: AwareDatetime = Field(description="measured_at of the reading that triggered it")
    window_start: AwareDatetime
    window_end: AwareDatetime
    observed: list[float] = Field(description="The values in the window that fired")
    threshold: float | None = None
    baseline: float | None = None
    model_version: str
    explanation: str


class AlertAcknowledged(Event):
    schema_version: Literal[1] = 1
    alert_id: UUID
    participant_id: ParticipantId
    study_id: StudyId = DEFAULT_STUDY  # the participant's study (added within version 1)
    site_id: str
    staff_id: str
    note: str | None = Field(
        default=None,
        description="No longer published (always null): free text can name people, so it "
        "stays in monitoring's database and audit trail",
    )
    has_note: bool = Field(default=False, description="Whether staff wrote a note")


class AlertResolved(Event):
    """Staff closed an alert with a reason (from open or acknowledged). The reason itself
    stays in monitoring (the alert and its audit trail): free text is not put on topics."""

    schema_version: Literal[1] = 1
    alert_id: UUID
    participant_id: ParticipantId
    study_id: StudyId = DEFAULT_STUDY  # the participant's study (added within version 1)
    site_id: str
    staff_id: str
    previous_status: Literal["open", "acknowledged"]
    reason: str | None = Field(
        default=None, description="No longer published (always null); see the alert's audit"
    )


class AlertEscalated(Event):
    """Nobody acknowledged an alert within its severity's deadline. Published once per
    alert (its event_id derives from the alert id), so a re-sent copy dedupes."""

    schema_version: Literal[1] = 1
    alert_id: UUID
    participant_id: ParticipantId
    study_id: StudyId = DEFAULT_STUDY  # the participant's study (added within version 1)
    site_id: str | None = Field(
        default=None, description="None while the participant's site is unknown"
    )
    kind: AlertKind
    severity: Severity
    rule: str
    received_at: AwareDatetime = Field(description="When the alert reached the staff inbox")
    ack_due_at: AwareDatetime = Field(description="received_at + the severity's deadline")
    escalated_at: AwareDatetime


class AlertEpisodeEnded(Event):
    """The readings behind an alert are back to normal (the rule's recovery condition held),
    so the episode is over: monitoring marks its alerts auto-resolved. Staff still review
    them; a silence is not a recovery and ends no episode."""

    schema_version: Literal[1] = 1
    participant_id: ParticipantId
    study_id: StudyId = DEFAULT_STUDY  # added within version 1, as on AlertRaised
    kind: AlertKind
    metric: Metric | None = None
    rule: str
    ended_at: AwareDatetime = Field(description="measured_at of the reading that closed it")
    explanation: str
