"""Telehealth's SQL: sites, participants, visits, staff and their hours, calendar feeds.
Bookings, reminders and urgent proposals are in repository.py."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg
from trialstream.db import DbConnection

from telehealth.domain.availability import Hours, WeeklyHours
from telehealth.domain.study import Plan
from telehealth.domain.windows import PlannedVisit

Conn = DbConnection | asyncpg.Pool

_UPSERT_SITE = """
INSERT INTO sites (site_id, timezone) VALUES ($1, $2)
ON CONFLICT (site_id) DO UPDATE SET timezone = EXCLUDED.timezone
"""
_SITE_TZ = "SELECT timezone FROM sites WHERE site_id = $1"
# The protocol is written once, at enrolment (the schedule is fixed then); a later record
# of the participant never changes it.
# The caller passes the withdrawal time it computed under the row lock; LEAST (which ignores
# NULL) keeps the earliest one even so, and never lets an `enrolled` record clear it.
_UPSERT_PARTICIPANT = """
INSERT INTO participants
    (participant_id, site_id, timezone, baseline_date, withdrawn_at, study_id, protocol)
VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)
ON CONFLICT (participant_id) DO UPDATE
SET site_id = EXCLUDED.site_id, timezone = EXCLUDED.timezone, study_id = EXCLUDED.study_id,
    withdrawn_at = LEAST(participants.withdrawn_at, EXCLUDED.withdrawn_at), updated_at = now()
RETURNING baseline_date, (xmax = 0) AS created
"""
_PARTICIPANT = """
SELECT participant_id, site_id, timezone, baseline_date, withdrawn_at, study_id,
    protocol::text AS protocol
FROM participants WHERE participant_id = $1
"""
_LOCK_PARTICIPANT = _PARTICIPANT + " FOR UPDATE"
# Bookings and proposals share-lock the participant first (before the visit), the order
# the withdrawal takes too: one waits for the other, neither deadlocks.
_SHARE_PARTICIPANT = _PARTICIPANT + " FOR SHARE"
_VISIT_PARTICIPANT = "SELECT participant_id FROM visits WHERE visit_id = $1"
_SET_BASELINE = (
    "UPDATE participants SET baseline_date = $2, updated_at = now() WHERE participant_id = $1"
)
_INSERT_VISITS = """
INSERT INTO visits (visit_id, participant_id, name, visit_type, sequence, window_start, window_end)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::int[], $6::timestamptz[], $7::timestamptz[])
ON CONFLICT (participant_id, name) DO NOTHING
"""
_REPLAN_VISIT = """
UPDATE visits SET window_start = $3, window_end = $4, visit_type = $5, updated_at = now()
WHERE participant_id = $1 AND name = $2 AND status = 'open'
"""
_VISIT_COLUMNS = """
v.visit_id, v.participant_id, p.site_id, p.timezone, v.name, v.visit_type, v.sequence,
v.window_start, v.window_end, v.status, v.cancel_reason, p.study_id
"""
_VISITS_OF = f"""
SELECT {_VISIT_COLUMNS} FROM visits v JOIN participants p USING (participant_id)
WHERE v.participant_id = $1 ORDER BY v.window_start, v.sequence
"""  # noqa: S608 - constant column list
_LOCK_VISIT = f"""
SELECT {_VISIT_COLUMNS} FROM visits v JOIN participants p USING (participant_id)
WHERE v.visit_id = $1 FOR UPDATE OF v
"""  # noqa: S608 - constant column list
_SET_VISIT_STATUS = "UPDATE visits SET status = $2, updated_at = now() WHERE visit_id = $1"
# Only a visit still to happen: one the scheduler marked missed meanwhile (its event is
# out) stays missed, so telehealth and the topic agree.
_CANCEL_VISITS = """
UPDATE visits SET status = 'cancelled', cancel_reason = $2, updated_at = now()
WHERE visit_id = ANY($1::uuid[]) AND status IN ('open', 'proposed', 'booked')
RETURNING visit_id
"""
_INSERT_VISIT = """
INSERT INTO visits (visit_id, participant_id, name, visit_type, sequence, window_start, window_end, status)
VALUES ($1, $2, $3, $4, 0, $5, $6, $7)
"""
_INSERT_STAFF = """
INSERT INTO staff (staff_id, site_id) VALUES ($1, $2)
ON CONFLICT (staff_id) DO NOTHING RETURNING staff_key
"""
_STAFF = "SELECT staff_id, site_id, staff_key FROM staff WHERE staff_id = $1"
_DELETE_WEEKLY = "DELETE FROM weekly_hours WHERE staff_id = $1"
_INSERT_WEEKLY = """
INSERT INTO weekly_hours (staff_id, weekday, start_time, end_time)
SELECT $1, * FROM unnest($2::smallint[], $3::time[], $4::time[])
"""
_DELETE_EXCEPTION = "DELETE FROM hour_exceptions WHERE staff_id = $1 AND on_date = $2"
_INSERT_EXCEPTION = """
INSERT INTO hour_exceptions (staff_id, on_date, start_time, end_time)
SELECT $1, $2, * FROM unnest($3::time[], $4::time[])
"""
_SITE_STAFF = "SELECT staff_id, staff_key FROM staff WHERE site_id = $1 ORDER BY staff_id"
_WEEKLY_OF = "SELECT staff_id, weekday, start_time, end_time FROM weekly_hours WHERE staff_id = ANY($1::text[])"
_EXCEPTIONS_OF = """
SELECT staff_id, on_date, start_time, end_time FROM hour_exceptions
WHERE staff_id = ANY($1::text[]) AND on_date BETWEEN $2 AND $3
"""
_INSERT_FEED = "INSERT INTO calendar_feeds (token_hash, owner_kind, owner_id, created_by) VALUES ($1, $2, $3, $4)"
_FEED = "SELECT owner_kind, owner_id FROM calendar_feeds WHERE token_hash = $1"


async def upsert_site(conn: Conn, site_id: str, timezone: str) -> None:
    await conn.execute(_UPSERT_SITE, site_id, timezone)


async def site_timezone(conn: Conn, site_id: str) -> str:
    return str(await conn.fetchval(_SITE_TZ, site_id) or "UTC")


async def upsert_participant(
    conn: DbConnection,
    participant_id: str,
    site_id: str,
    timezone: str,
    enrolled_on: date,
    withdrawn_at: datetime | None,
    plan: Plan,
) -> tuple[date, bool]:
    """Returns (baseline date, whether the participant is new). `plan` is stored only for
    a new participant: their schedule is fixed at enrolment."""
    row = await conn.fetchrow(
        _UPSERT_PARTICIPANT,
        participant_id,
        site_id,
        timezone,
        enrolled_on,
        withdrawn_at,
        plan.study_id,
        plan.stored(),
    )
    assert row is not None
    return row["baseline_date"], row["created"]


async def participant(
    conn: Conn, participant_id: str, *, lock: bool = False
) -> dict[str, Any] | None:
    row = await conn.fetchrow(_LOCK_PARTICIPANT if lock else _PARTICIPANT, participant_id)
    return dict(row) if row else None


async def share_participant(conn: DbConnection, participant_id: str) -> dict[str, Any] | None:
    """The participant, share-locked until the transaction ends: a withdrawal being
    recorded waits for this transaction, or this one sees it."""
    row = await conn.fetchrow(_SHARE_PARTICIPANT, participant_id)
    return dict(row) if row else None


async def participant_of_visit(conn: DbConnection, visit_id: UUID) -> str | None:
    found = await conn.fetchval(_VISIT_PARTICIPANT, visit_id)
    return None if found is None else str(found)


async def set_baseline(conn: DbConnection, participant_id: str, baseline: date) -> None:
    await conn.execute(_SET_BASELINE, participant_id, baseline)


async def insert_visits(
    conn: DbConnection, participant_id: str, planned: Sequence[PlannedVisit]
) -> None:
    await conn.execute(
        _INSERT_VISITS,
        [uuid4() for _ in planned],
        [participant_id] * len(planned),
        [p.name for p in planned],
        [str(p.type) for p in planned],
        [p.sequence for p in planned],
        [p.window_start for p in planned],
        [p.window_end for p in planned],
    )


async def replan_open_visits(
    conn: DbConnection, participant_id: str, planned: Sequence[PlannedVisit]
) -> None:
    for p in planned:
        await conn.execute(
            _REPLAN_VISIT, participant_id, p.name, p.window_start, p.window_end, str(p.type)
        )


async def visits_of(conn: Conn, participant_id: str) -> list[dict[str, Any]]:
    return [dict(r) for r in await conn.fetch(_VISITS_OF, participant_id)]


async def lock_visit(conn: DbConnection, visit_id: UUID) -> dict[str, Any] | None:
    row = await conn.fetchrow(_LOCK_VISIT, visit_id)
    return dict(row) if row else None


async def set_visit_status(conn: DbConnection, visit_id: UUID, status: str) -> None:
    await conn.execute(_SET_VISIT_STATUS, visit_id, status)


async def cancel_visits(conn: DbConnection, visit_ids: Sequence[UUID], reason: str) -> set[UUID]:
    """Cancel those of `visit_ids` still to happen; returns the ids cancelled."""
    return {r["visit_id"] for r in await conn.fetch(_CANCEL_VISITS, list(visit_ids), reason)}


async def insert_visit(
    conn: DbConnection,
    visit_id: UUID,
    participant_id: str,
    name: str,
    visit_type: str,
    window: tuple[datetime, datetime],
    status: str,
) -> None:
    await conn.execute(_INSERT_VISIT, visit_id, participant_id, name, visit_type, *window, status)


async def insert_staff(conn: Conn, staff_id: str, site_id: str) -> bool:
    return await conn.fetchval(_INSERT_STAFF, staff_id, site_id) is not None


async def staff(conn: Conn, staff_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(_STAFF, staff_id)
    return dict(row) if row else None


async def site_staff(conn: Conn, site_id: str) -> list[dict[str, Any]]:
    return [dict(r) for r in await conn.fetch(_SITE_STAFF, site_id)]


async def replace_weekly_hours(
    conn: DbConnection, staff_id: str, hours: Sequence[WeeklyHours]
) -> None:
    await conn.execute(_DELETE_WEEKLY, staff_id)
    await conn.execute(
        _INSERT_WEEKLY,
        staff_id,
        [h.weekday for h in hours],
        [h.hours.start for h in hours],
        [h.hours.end for h in hours],
    )


async def replace_exception(
    conn: DbConnection, staff_id: str, on: date, hours: Sequence[Hours]
) -> None:
    """Hours for one date; an empty list stores a single NULL row: the day off."""
    await conn.execute(_DELETE_EXCEPTION, staff_id, on)
    starts: list[Any] = [h.start for h in hours] or [None]
    ends: list[Any] = [h.end for h in hours] or [None]
    await conn.execute(_INSERT_EXCEPTION, staff_id, on, starts, ends)


async def delete_exception(conn: Conn, staff_id: str, on: date) -> None:
    await conn.execute(_DELETE_EXCEPTION, staff_id, on)


async def hours_of(
    conn: Conn, staff_ids: Sequence[str], first: date, last: date
) -> tuple[dict[str, list[WeeklyHours]], dict[str, dict[date, list[Hours]]]]:
    weekly: dict[str, list[WeeklyHours]] = {s: [] for s in staff_ids}
    for r in await conn.fetch(_WEEKLY_OF, list(staff_ids)):
        weekly[r["staff_id"]].append(
            WeeklyHours(r["weekday"], Hours(r["start_time"], r["end_time"]))
        )
    exceptions: dict[str, dict[date, list[Hours]]] = {s: {} for s in staff_ids}
    for r in await conn.fetch(_EXCEPTIONS_OF, list(staff_ids), first, last):
        day = exceptions[r["staff_id"]].setdefault(r["on_date"], [])
        if r["start_time"] is not None:
            day.append(Hours(r["start_time"], r["end_time"]))
    return weekly, exceptions


async def insert_feed(
    conn: Conn, token_hash: str, owner_kind: str, owner_id: str, created_by: str
) -> None:
    await conn.execute(_INSERT_FEED, token_hash, owner_kind, owner_id, created_by)


async def feed(conn: Conn, token_hash: str) -> tuple[str, str] | None:
    row = await conn.fetchrow(_FEED, token_hash)
    return (row["owner_kind"], row["owner_id"]) if row else None
