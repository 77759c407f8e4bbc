"""Enrolment facts other services need (which study and site a participant belongs to,
and whether they are still in the study).

The participants topic is compacted: the latest event per participant is their state,
hence the name `ParticipantState`. A withdrawal is the same event with
`status="withdrawn"` (added fields, defaults keep every older record and consumer valid).
`ParticipantEnrolled` is its former name, kept for code written against it."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, Field

from trialstream.events.base import (
    DEFAULT_STUDY,
    Event,
    ParticipantId,
    SiteId,
    StudyId,
    Timezone,
)


class ParticipantState(Event):
    schema_version: Literal[1] = 1
    participant_id: ParticipantId
    # Added with studies (issue 15): a record without it is of the implicit default study.
    study_id: StudyId = DEFAULT_STUDY
    site_id: SiteId
    timezone: Timezone = "UTC"
    status: Literal["enrolled", "withdrawn"] = "enrolled"
    withdrawn_at: AwareDatetime | None = Field(
        default=None, description="When the participant withdrew; set when status is withdrawn"
    )

    def withdrawal_time(self) -> datetime | None:
        """When this record says the participant withdrew: `withdrawn_at`, or when it was
        published if a producer left that out (it must still stop everything); None for an
        `enrolled` record."""
        if self.status != "withdrawn":
            return None
        return self.withdrawn_at or self.occurred_at

    def earliest_withdrawal(self, before: datetime | None) -> datetime | None:
        """The participant's withdrawal time after this record, `before` being the one
        known so far. Withdrawal is final per participant id (decision 0045): the earliest
        time holds, a re-delivered withdrawal changes nothing, `enrolled` never clears it."""
        at = self.withdrawal_time()
        if at is None or (before is not None and before <= at):
            return before
        return at


# The former name (it also carried withdrawals, which it did not say): same class.
ParticipantEnrolled = ParticipantState
