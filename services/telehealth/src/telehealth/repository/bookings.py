"""Bookings SQL: live bookings (the exclusion constraint lives on this table), the
scheduler's reminder and missed-visit queries, urgent alerts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from trialstream.db import DbConnection

from telehealth.domain.booking import Booking
from telehealth.repository.state import Conn

LIVE = ("proposed", "booked", "completed", "no-show")  # statuses that hold a staff member's time

_BOOKING_COLUMNS = """
b.booking_id, b.visit_id, b.staff_id, b.starts_at, b.ends_at, b.status, b.room_token,
b.deviation_reason, b.reason, b.created_by, b.created_at, b.updated_at, b.revision,
v.participant_id, p.site_id, p.timezone, v.name AS visit_name, v.visit_type, v.sequence,
v.window_start, v.window_end, v.status AS visit_status, p.withdrawn_at, p.study_id
"""
_FROM = "FROM bookings b JOIN visits v USING (visit_id) JOIN participants p ON p.participant_id = v.participant_id"
_INSERT = """
INSERT INTO bookings (booking_id, visit_id, staff_id, staff_key, starts_at, ends_at, status,
                      room_token, deviation_reason, created_by, scheduled_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
"""
_LOCK = f"SELECT {_BOOKING_COLUMNS} {_FROM} WHERE b.booking_id = $1 FOR UPDATE OF b, v"
_GET = f"SELECT {_BOOKING_COLUMNS} {_FROM} WHERE b.booking_id = $1"
_LOCK_PENDING_OF = f"""
SELECT {_BOOKING_COLUMNS} {_FROM}
WHERE v.participant_id = $1 AND b.status IN ('proposed', 'booked')
ORDER BY b.starts_at FOR UPDATE OF b, v
"""
_CONFIRM = """
UPDATE bookings SET status = 'booked', scheduled_at = $2, revision = revision + 1, updated_at = now()
WHERE booking_id = $1
"""
_SET_STATUS = """
UPDATE bookings SET status = $2, reason = coalesce($3, reason), revision = revision + 1, updated_at = now()
WHERE booking_id = $1
"""
_MOVE = """
UPDATE bookings SET starts_at = $2, ends_at = $3, staff_id = $4, staff_key = $5, reason = $6,
                    deviation_reason = $7, scheduled_at = $8, revision = revision + 1, updated_at = now()
WHERE booking_id = $1
"""
_BUSY = """
SELECT staff_id, starts_at, ends_at FROM bookings
WHERE staff_id = ANY($1::text[]) AND status = ANY($4::text[]) AND starts_at < $3 AND ends_at > $2
"""
_IN_RANGE = f"""
SELECT {_BOOKING_COLUMNS} {_FROM}
WHERE b.status = ANY($4::text[]) AND b.starts_at < $3 AND b.ends_at > $2
  AND ($1::text IS NULL OR p.site_id = $1)
  AND ($5::text IS NULL OR b.staff_id = $5) AND ($6::text IS NULL OR v.participant_id = $6)
  AND ($7::text IS NULL OR p.study_id = $7)
ORDER BY b.starts_at, b.staff_id
"""
# A withdrawn participant is never reminded. The participant row is share-locked and
# skipped while a withdrawal is being written: that tick leaves them to the next one, which
# sees the withdrawal (and the cancelled booking); the scheduler never waits on it.
_DUE_REMINDERS = f"""
WITH due AS (
    SELECT b.booking_id, l.lead, b.starts_at FROM bookings b
    JOIN visits v USING (visit_id) JOIN participants p ON p.participant_id = v.participant_id
    CROSS JOIN (VALUES ('24h', interval '24 hours'), ('1h', interval '1 hour')) AS l(lead, ahead)
    WHERE b.status = 'booked' AND b.starts_at > $1 AND b.starts_at - l.ahead <= $1
      AND b.scheduled_at <= b.starts_at - l.ahead  -- booked 3 h ahead: no 24 h reminder
      AND p.withdrawn_at IS NULL
    FOR SHARE OF p SKIP LOCKED
), fresh AS (
    INSERT INTO reminders_sent (booking_id, lead, starts_at) SELECT * FROM due
    ON CONFLICT DO NOTHING RETURNING booking_id, lead
)
SELECT fresh.lead, {_BOOKING_COLUMNS} FROM fresh JOIN bookings b USING (booking_id)
JOIN visits v USING (visit_id) JOIN participants p ON p.participant_id = v.participant_id
"""  # noqa: S608 - constant column list
# Visits locked by a booking change or a withdrawal are skipped until the next tick, so the
# scheduler (which holds participant share locks from the reminders) cannot deadlock with a
# withdrawal. An open visit a withdrawal cut short is cancelled by it, never missed.
_MISS = """
WITH closing AS (
    SELECT v.visit_id FROM visits v JOIN participants p USING (participant_id)
    WHERE v.status IN ('open', 'booked') AND v.window_end <= $1
      AND (p.withdrawn_at IS NULL OR v.status = 'booked' OR v.window_end <= p.withdrawn_at)
      AND NOT EXISTS (SELECT 1 FROM bookings b WHERE b.visit_id = v.visit_id
                      AND b.status = 'booked' AND b.ends_at > $1)
    FOR UPDATE OF v SKIP LOCKED
)
UPDATE visits v SET status = 'missed', updated_at = now()
FROM closing, participants p
WHERE v.visit_id = closing.visit_id AND p.participant_id = v.participant_id
RETURNING v.visit_id, v.participant_id, p.site_id, p.study_id, v.name, v.visit_type,
          v.window_start, v.window_end
"""
_CLAIM_ALERT = """
INSERT INTO urgent_alerts (alert_id, participant_id, outcome, received_at) VALUES ($1, $2, 'no_free_slot', $3)
ON CONFLICT (alert_id) DO NOTHING RETURNING alert_id
"""
_WAITING_ALERTS = """
SELECT alert_id FROM urgent_alerts
WHERE participant_id = $1 AND outcome = 'unknown_participant' AND received_at > $2
ORDER BY received_at FOR UPDATE
"""
# The participant's urgent visit still ahead (proposed, or booked and not yet started).
_URGENT_AHEAD = """
SELECT b.booking_id FROM bookings b JOIN visits v USING (visit_id)
WHERE v.participant_id = $1 AND v.sequence = 0 AND b.status IN ('proposed', 'booked')
  AND b.ends_at > $2
ORDER BY b.starts_at LIMIT 1
"""
_ALERT_OUTCOME = "UPDATE urgent_alerts SET outcome = $2, booking_id = $3 WHERE alert_id = $1"
_PROPOSALS = f"""
SELECT {_BOOKING_COLUMNS}, u.alert_id {_FROM}
JOIN urgent_alerts u ON u.booking_id = b.booking_id AND u.outcome = 'proposed'
WHERE ($1::text IS NULL OR p.site_id = $1) AND ($2::text IS NULL OR b.status = $2)
  AND p.study_id = $3
ORDER BY b.created_at DESC
"""


async def insert_booking(
    conn: DbConnection,
    *,
    booking_id: UUID,
    visit_id: UUID,
    staff: dict[str, Any],
    starts_at: datetime,
    ends_at: datetime,
    status: str,
    room_token: str | None,
    deviation_reason: str | None,
    created_by: str,
    now: datetime,
) -> None:
    await conn.execute(
        _INSERT,
        booking_id,
        visit_id,
        staff["staff_id"],
        staff["staff_key"],
        starts_at,
        ends_at,
        status,
        room_token,
        deviation_reason,
        created_by,
        now,
    )


async def lock_booking(conn: DbConnection, booking_id: UUID) -> Booking | None:
    row = await conn.fetchrow(_LOCK, booking_id)
    return Booking.of(row) if row else None


async def lock_pending_of(conn: DbConnection, participant_id: str) -> list[Booking]:
    """The participant's proposed and booked slots, locked with their visits."""
    return [Booking.of(r) for r in await conn.fetch(_LOCK_PENDING_OF, participant_id)]


async def get_booking(conn: Conn, booking_id: UUID) -> Booking | None:
    row = await conn.fetchrow(_GET, booking_id)
    return Booking.of(row) if row else None


async def set_status(
    conn: DbConnection, booking_id: UUID, status: str, reason: str | None = None
) -> None:
    await conn.execute(_SET_STATUS, booking_id, status, reason)


async def move(
    conn: DbConnection,
    booking_id: UUID,
    starts_at: datetime,
    ends_at: datetime,
    staff: dict[str, Any],
    reason: str,
    deviation_reason: str | None,
    now: datetime,
) -> None:
    await conn.execute(
        _MOVE,
        booking_id,
        starts_at,
        ends_at,
        staff["staff_id"],
        staff["staff_key"],
        reason,
        deviation_reason,
        now,
    )


async def confirm(conn: DbConnection, booking_id: UUID, now: datetime) -> None:
    await conn.execute(_CONFIRM, booking_id, now)


async def busy(
    conn: Conn, staff_ids: Sequence[str], start: datetime, end: datetime
) -> dict[str, list[tuple[datetime, datetime]]]:
    ranges: dict[str, list[tuple[datetime, datetime]]] = {}
    for r in await conn.fetch(_BUSY, list(staff_ids), start, end, list(LIVE)):
        ranges.setdefault(r["staff_id"], []).append((r["starts_at"], r["ends_at"]))
    return ranges


async def in_range(
    conn: Conn,
    start: datetime,
    end: datetime,
    *,
    site_id: str | None = None,
    staff_id: str | None = None,
    participant_id: str | None = None,
    statuses: Sequence[str] = LIVE,
    study_id: str | None = None,
) -> list[Booking]:
    rows = await conn.fetch(
        _IN_RANGE, site_id, start, end, list(statuses), staff_id, participant_id, study_id
    )
    return [Booking.of(r) for r in rows]


async def claim_due_reminders(conn: DbConnection, now: datetime) -> list[tuple[str, Booking]]:
    """Claim the reminders due at `now`, each once: (lead, the booking) per reminder."""
    return [(r["lead"], Booking.of(r)) for r in await conn.fetch(_DUE_REMINDERS, now)]


async def mark_missed(conn: DbConnection, now: datetime) -> list[dict[str, Any]]:
    return [dict(r) for r in await conn.fetch(_MISS, now)]


async def claim_alert(
    conn: DbConnection, alert_id: UUID, participant_id: str, now: datetime
) -> bool:
    return await conn.fetchval(_CLAIM_ALERT, alert_id, participant_id, now) is not None


async def waiting_alerts(conn: DbConnection, participant_id: str, since: datetime) -> list[UUID]:
    return [r["alert_id"] for r in await conn.fetch(_WAITING_ALERTS, participant_id, since)]


async def urgent_visit_ahead(conn: DbConnection, participant_id: str, now: datetime) -> UUID | None:
    found: UUID | None = await conn.fetchval(_URGENT_AHEAD, participant_id, now)
    return found


async def set_alert_outcome(
    conn: DbConnection, alert_id: UUID, outcome: str, booking_id: UUID | None
) -> None:
    await conn.execute(_ALERT_OUTCOME, alert_id, outcome, booking_id)


async def proposals(
    conn: Conn, site_id: str | None, status: str | None, study_id: str
) -> list[tuple[Booking, UUID]]:
    """A site's (None: every site's) urgent proposals, newest first, each with the alert it
    answers."""
    rows = await conn.fetch(_PROPOSALS, site_id, status, study_id)
    return [(Booking.of(r), r["alert_id"]) for r in rows]
