"""Staff sessions and access, as the identity issuer announces them (issue 15, decision
0071). Every service follows the compacted `staff-access` topic from its start and refuses
a token of an ended session or a revoked person within seconds (goal: 60 s)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, Field

from trialstream.events.base import Event

SubjectId = Field(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9_.:|-]+$")


class StaffSessionEnded(Event):
    """A session was logged out (or ended by an administrator): its tokens stop working.
    Keyed by `session:<id>`."""

    schema_version: Literal[1] = 1
    kind: Literal["session_ended"] = "session_ended"
    subject: str = SubjectId
    session_id: str = Field(min_length=1, max_length=128)
    ended_at: AwareDatetime


class StaffAccessRevoked(Event):
    """Every token of this person issued at or before `not_before` stops working (access
    revoked, password changed, roles taken away). Keyed by `subject:<id>`; the latest
    record per person is the one that counts, and `not_before` only ever moves forward."""

    schema_version: Literal[1] = 1
    kind: Literal["access_revoked"] = "access_revoked"
    subject: str = SubjectId
    not_before: datetime
