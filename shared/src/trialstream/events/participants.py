"""Enrolment facts other services need (which site a participant belongs to)."""

from __future__ import annotations

from typing import Literal

from trialstream.events.base import Event, ParticipantId, SiteId


class ParticipantEnrolled(Event):
    schema_version: Literal[1] = 1
    participant_id: ParticipantId
    site_id: SiteId
    timezone: str = "UTC"
