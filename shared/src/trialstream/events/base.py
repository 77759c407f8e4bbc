"""The base every event shares: identity, time, version, and a pseudonymous subject."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID, uuid4

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

# A study id such as "P-0042" or "site01-p7": starts with a letter, so a phone number
# cannot pass, and has no "@", space or "+", so an email or a name with a space cannot
# either. Enrolment documents that it must be a pseudonym.
ParticipantId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_.-]{1,63}$")]
DeviceId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")]
SiteId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Event(BaseModel):
    """Frozen on the producer side, tolerant on the consumer side (unknown fields ignored)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_id: UUID = Field(default_factory=uuid4)
    occurred_at: AwareDatetime = Field(default_factory=utcnow)
    schema_version: int
