"""Retention: nudges sent to participants and tasks handed to site coordinators.

Neither event carries the message text's recipient address: a channel address (if
any) stays in the retention service's database. The text is a rendered template
with no personal data in it."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import AwareDatetime

from trialstream.events.base import DEFAULT_STUDY, Event, ParticipantId, SiteId, StudyId


class NudgeSent(Event):
    """A nudge left through a channel. `nudge_id` is deterministic (derived from the
    triggering event and the trigger kind), so a consumer can dedupe on it too."""

    schema_version: Literal[1] = 1
    participant_id: ParticipantId
    study_id: StudyId = DEFAULT_STUDY  # the participant's study (added within version 1)
    nudge_id: UUID
    kind: str  # e.g. "epro-due", "visit-reminder-1h", "device-silent", "milestone"
    channel: Literal["push", "sms", "email"]
    language: str
    trigger_event_id: UUID
    sent_at: AwareDatetime


class CoordinatorTaskCreated(Event):
    """Repeated misses (or a device silent for too long) became a task for the site
    coordinator instead of more nudges to the participant."""

    schema_version: Literal[1] = 1
    participant_id: ParticipantId
    study_id: StudyId = DEFAULT_STUDY  # the participant's study (added within version 1)
    site_id: SiteId | None = None  # None when the enrolment has not reached retention yet
    task_id: UUID
    kind: str  # the trigger that escalated, e.g. "epro-missed", "device-silent"
    reason: str  # a sentence for the coordinator, without personal data
    trigger_event_id: UUID
