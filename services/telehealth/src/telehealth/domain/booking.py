"""A booking as telehealth reads it: the booking with its visit and participant. Pure."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID


class Row(Protocol):
    """A database row (asyncpg.Record or a dict) read by column name."""

    def __getitem__(self, key: str, /) -> Any: ...


@dataclass(frozen=True, slots=True)
class Booking:
    booking_id: UUID
    visit_id: UUID
    staff_id: str
    starts_at: datetime
    ends_at: datetime
    status: str  # proposed, booked, completed, no-show, cancelled, dismissed
    room_token: str | None  # shown only inside the room URL
    deviation_reason: str | None
    reason: str | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    revision: int  # grows with every change (the iCalendar SEQUENCE)
    participant_id: str
    site_id: str
    timezone: str
    visit_name: str
    visit_type: str
    sequence: int  # 0: an urgent visit
    window_start: datetime
    window_end: datetime
    visit_status: str
    withdrawn_at: datetime | None
    study_id: str  # the participant's

    @classmethod
    def of(cls, row: Row) -> Booking:
        """From a database row with (at least) these columns."""
        return cls(**{f: row[f] for f in FIELDS})

    def audited(self) -> dict[str, Any]:
        """What a booking change is about in the audit trail: who, when, both statuses."""
        return {
            "visit_id": self.visit_id,
            "staff_id": self.staff_id,
            "starts_at": self.starts_at,
            "ends_at": self.ends_at,
            "status": self.status,
            "visit_status": self.visit_status,
        }

    def shown(self) -> dict[str, Any]:
        """Every field but the room token, for the API (which adds the room URL)."""
        out = asdict(self)
        del out["room_token"]
        return out


FIELDS = tuple(f.name for f in fields(Booking))
