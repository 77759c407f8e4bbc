"""ePRO: questionnaire occurrences falling due or missed, and responses submitted.

Answers themselves stay in the ePRO service's database (free text could identify a
participant); the topic carries the scores and flags other services act on."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import AwareDatetime, Field

from trialstream.events.base import DEFAULT_STUDY, Event, ParticipantId, StudyId


class _Occurrence(Event):
    """One scheduled occurrence of a questionnaire. `occurrence_id` is stable (derived from
    the schedule and the due time), so a re-emitted event dedupes on it."""

    schema_version: Literal[1] = 1
    participant_id: ParticipantId
    study_id: StudyId = DEFAULT_STUDY  # the participant's study (added within version 1)
    occurrence_id: UUID
    questionnaire_id: str
    questionnaire_version: int
    due_at: AwareDatetime
    expires_at: AwareDatetime


class QuestionnaireDue(_Occurrence):
    """The occurrence's window opened."""


class QuestionnaireMissed(_Occurrence):
    """The occurrence's window closed without a response."""


class ResponseSubmitted(Event):
    """A stored response (or a correction of one: `version` > 1)."""

    schema_version: Literal[1] = 1
    participant_id: ParticipantId
    study_id: StudyId = DEFAULT_STUDY  # the participant's study (added within version 1)
    response_id: UUID
    version: int = 1
    questionnaire_id: str
    questionnaire_version: int
    occurrence_id: UUID | None = None
    submitted_at: AwareDatetime
    on_time: bool
    flags: list[str] = Field(default_factory=list, description="e.g. 'late', 'out_of_window'")
    scores: dict[str, float] = Field(default_factory=dict, description="e.g. {'phq9_total': 12}")
