"""Enrolment facts other services need (which site a participant belongs to, and whether
they are still in the study).

The participants topic is compacted: the latest event per participant is their state.
A withdrawal is the same event with `status="withdrawn"` (added fields, defaults keep
every older record and consumer valid)."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field

from trialstream.events.base import Event, ParticipantId, SiteId


class ParticipantEnrolled(Event):
    schema_version: Literal[1] = 1
    participant_id: ParticipantId
    site_id: SiteId
    timezone: str = "UTC"
    status: Literal["enrolled", "withdrawn"] = "enrolled"
    withdrawn_at: AwareDatetime | None = Field(
        default=None, description="When the participant withdrew; set when status is withdrawn"
    )
