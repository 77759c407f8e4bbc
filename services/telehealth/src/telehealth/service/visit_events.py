"""VisitChanged events built from a booking or visit row, queued on the outbox; each
names its participant's study (the booking and visit rows carry it)."""

from __future__ import annotations

from typing import Any

from trialstream.db import DbConnection
from trialstream.events.topics import Topic
from trialstream.events.visits import VisitChanged, VisitStatus, VisitType
from trialstream.outbox import enqueue

from telehealth.domain.booking import Booking


def from_booking(b: Booking, status: VisitStatus, reason: str | None = None) -> VisitChanged:
    """`reason`: only the platform's own fixed text (a withdrawal, an urgent visit). What
    staff write stays in telehealth's database and audit trail, not on the topic."""
    return VisitChanged(
        participant_id=b.participant_id,
        study_id=b.study_id,
        site_id=b.site_id,
        visit_id=b.visit_id,
        visit_name=b.visit_name,
        visit_type=VisitType(b.visit_type),
        status=status,
        window_start=b.window_start,
        window_end=b.window_end,
        booking_id=b.booking_id,
        starts_at=b.starts_at,
        ends_at=b.ends_at,
        reason=reason,
    )


def missed(row: dict[str, Any]) -> VisitChanged:
    return VisitChanged(
        participant_id=row["participant_id"],
        study_id=row["study_id"],
        site_id=row["site_id"],
        visit_id=row["visit_id"],
        visit_name=row["name"],
        visit_type=VisitType(row["visit_type"]),
        status=VisitStatus.MISSED,
        window_start=row["window_start"],
        window_end=row["window_end"],
        reason="the visit window closed without a completed visit",
    )


async def emit(conn: DbConnection, events: list[VisitChanged]) -> None:
    await enqueue(conn, Topic.VISITS, [(e.participant_id, e) for e in events])
