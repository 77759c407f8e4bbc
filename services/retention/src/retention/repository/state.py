"""Retention's SQL: participants, preferences, engagement, nudges and their journey."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import astuple, dataclass, fields
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
from trialstream.db import DbConnection
from trialstream.events.participants import ParticipantState

from retention.domain import ChannelKind, Decision, Trigger
from retention.study_rules import Chosen
from retention.triggers import Engagement

# Withdrawal is final (decision 0034): the earliest withdrawal time stays, whatever comes
# later for the participant (a re-delivered withdrawal, an `enrolled` record). LEAST
# ignores NULL, so an `enrolled` record never clears it.
_UPSERT_PARTICIPANTS = """
INSERT INTO participants AS pa (participant_id, site_id, timezone, withdrawn_at, study_id,
                               updated_at)
SELECT p, s, tz, w, st, now()
FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[])
    AS t(p, s, tz, w, st)
ON CONFLICT (participant_id) DO UPDATE
SET site_id = EXCLUDED.site_id, timezone = EXCLUDED.timezone, study_id = EXCLUDED.study_id,
    withdrawn_at = LEAST(pa.withdrawn_at, EXCLUDED.withdrawn_at), updated_at = now()
"""
_WITHDRAWN_AT = "SELECT withdrawn_at FROM participants WHERE participant_id = $1"
_ELSEWHERE = """
INSERT INTO participants_elsewhere AS pe (participant_id, study_id)
SELECT p, st FROM unnest($1::text[], $2::text[]) AS t(p, st)
ON CONFLICT (participant_id) DO UPDATE SET study_id = EXCLUDED.study_id, updated_at = now()
"""
_NOT_ELSEWHERE = "DELETE FROM participants_elsewhere WHERE participant_id = ANY($1::text[])"
_WHICH_ELSEWHERE = """
SELECT participant_id FROM participants_elsewhere WHERE participant_id = ANY($1::text[])
"""
_CANCEL_QUEUED = """
WITH cancelled AS (
    UPDATE nudges SET status = 'cancelled', suppress_reason = $2
    WHERE participant_id = ANY($1::text[]) AND status = 'queued'
    RETURNING nudge_id, participant_id
), journey AS (
    INSERT INTO nudge_journey (nudge_id, step, at, detail)
    SELECT nudge_id, 'cancelled', $3::timestamptz, $4 FROM cancelled
)
SELECT nudge_id, participant_id FROM cancelled ORDER BY participant_id, nudge_id
"""
_LOCK_PREFERENCES = """
SELECT language, timezone, channel, opted_out, quiet_start, quiet_end, max_per_day,
       address IS NOT NULL AS address_set, address
FROM preferences WHERE participant_id = $1 FOR UPDATE
"""
_PUT_PREFERENCES = """
INSERT INTO preferences (participant_id, language, timezone, channel, opted_out, quiet_start,
                         quiet_end, max_per_day, address, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now())
ON CONFLICT (participant_id) DO UPDATE SET language = $2, timezone = $3, channel = $4,
    opted_out = $5, quiet_start = $6, quiet_end = $7, max_per_day = $8, address = $9, updated_at = now()
"""
_PROFILE = """
SELECT pr.language, COALESCE(pr.timezone, pa.timezone, 'UTC') AS timezone, pr.channel,
       pr.opted_out, pr.quiet_start, pr.quiet_end, pr.max_per_day, pa.site_id,
       COALESCE(pa.study_id, 'default') AS study_id
FROM (SELECT $1::text AS participant_id) AS me
LEFT JOIN preferences pr USING (participant_id)
LEFT JOIN participants pa USING (participant_id)
"""
_ENGAGEMENT_COLUMNS = ", ".join(f.name for f in fields(Engagement))
_ENSURE_ENGAGEMENT = "INSERT INTO engagement (participant_id) VALUES ($1) ON CONFLICT DO NOTHING"
_LOCK_ENGAGEMENT = (
    f"SELECT {_ENGAGEMENT_COLUMNS} FROM engagement WHERE participant_id = $1 FOR UPDATE"  # noqa: S608
)
_SAVE_ENGAGEMENT = f"""
UPDATE engagement SET ({_ENGAGEMENT_COLUMNS}, updated_at) =
    ({", ".join(f"${i + 2}" for i in range(len(fields(Engagement))))}, now())
WHERE participant_id = $1
"""  # noqa: S608 - constant column list
_OPEN_OCCURRENCE = """
INSERT INTO open_occurrences (occurrence_id, participant_id, due_at) VALUES ($1, $2, $3)
ON CONFLICT DO NOTHING
"""
_CLOSE_OCCURRENCE = "DELETE FROM open_occurrences WHERE occurrence_id = $1 RETURNING due_at"
_SCHEDULED = """
SELECT send_at FROM nudges
WHERE participant_id = $1 AND status IN ('queued', 'sent') AND send_at >= $2
"""
_INSERT_NUDGE = """
INSERT INTO nudges (nudge_id, participant_id, kind, trigger_event_id, target, status,
                    suppress_reason, channel, language, tone, body, send_at, next_attempt_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)
ON CONFLICT (nudge_id) DO NOTHING RETURNING nudge_id
"""
_JOURNEY = "INSERT INTO nudge_journey (nudge_id, step, at, detail) VALUES ($1, $2, $3, $4)"
_INSERT_TASK = """
INSERT INTO coordinator_tasks (task_id, participant_id, kind, reason) VALUES ($1, $2, $3, $4)
"""
_ACTED_ON = """
WITH done AS (
    UPDATE nudges SET acted_on_at = $2::timestamptz
    WHERE target = ANY($1::text[]) AND acted_on_at IS NULL AND status = 'sent'
    RETURNING nudge_id
), cancelled AS (
    UPDATE nudges SET status = 'suppressed', suppress_reason = 'done-before-send'
    WHERE target = ANY($1::text[]) AND status = 'queued'
    RETURNING nudge_id
)
INSERT INTO nudge_journey (nudge_id, step, at, detail)
SELECT nudge_id, 'acted-on', $2::timestamptz, '' FROM done
UNION ALL
SELECT nudge_id, 'suppressed', $2::timestamptz, 'done-before-send: the task was completed first' FROM cancelled
"""
_TOUCH_ACTIVITY = """
INSERT INTO device_activity (participant_id, last_reading_at, updated_at)
SELECT p, t, now() FROM unnest($1::text[], $2::timestamptz[]) AS a(p, t)
ON CONFLICT (participant_id) DO UPDATE
SET last_reading_at = GREATEST(device_activity.last_reading_at, EXCLUDED.last_reading_at),
    updated_at = now()
"""
_ACTIVE_HOURS = """
INSERT INTO active_hours (participant_id, hour)
SELECT * FROM unnest($1::text[], $2::timestamptz[]) ON CONFLICT DO NOTHING
"""
_SILENT = """
SELECT d.participant_id, d.last_reading_at
FROM device_activity d LEFT JOIN participants pa USING (participant_id)
WHERE d.last_reading_at < $1 AND pa.withdrawn_at IS NULL ORDER BY d.participant_id
"""


async def upsert_participants(
    conn: DbConnection, participants: Sequence[tuple[ParticipantState, datetime | None]]
) -> None:
    """One row per participant: their latest record and when they withdrew (None: not
    in these records; an earlier withdrawal stays)."""
    await conn.execute(
        _UPSERT_PARTICIPANTS,
        [e.participant_id for e, _ in participants],
        [e.site_id for e, _ in participants],
        [e.timezone for e, _ in participants],
        [at for _, at in participants],
        [e.study_id for e, _ in participants],
    )


async def record_elsewhere(conn: DbConnection, participants: Sequence[ParticipantState]) -> None:
    """Participants of studies that do not use retention (their triggers are skipped)."""
    await conn.execute(
        _ELSEWHERE, [e.participant_id for e in participants], [e.study_id for e in participants]
    )


async def not_elsewhere(conn: DbConnection, participant_ids: Sequence[str]) -> None:
    """These participants' studies use retention (a study may switch it on later)."""
    await conn.execute(_NOT_ELSEWHERE, list(participant_ids))


async def elsewhere(conn: DbConnection, participant_ids: Sequence[str]) -> set[str]:
    """Which of these participants belong to studies that do not use retention."""
    rows = await conn.fetch(_WHICH_ELSEWHERE, list(participant_ids))
    return {row["participant_id"] for row in rows}


async def withdrawn_at(conn: DbConnection | asyncpg.Pool, participant_id: str) -> datetime | None:
    """When the participant withdrew; None if enrolled or unknown here."""
    at: datetime | None = await conn.fetchval(_WITHDRAWN_AT, participant_id)
    return at


async def cancel_queued(
    conn: DbConnection, participant_ids: Sequence[str], reason: str, at: datetime, detail: str
) -> list[tuple[UUID, str]]:
    """Queued nudges of these participants -> cancelled, each with a journey step;
    returns (nudge id, participant id) of the ones cancelled now."""
    if not participant_ids:
        return []
    rows = await conn.fetch(_CANCEL_QUEUED, list(participant_ids), reason, at, detail)
    return [(r["nudge_id"], r["participant_id"]) for r in rows]


_ERASE_ADDRESSES = """
UPDATE preferences SET address = NULL, updated_at = now()
WHERE participant_id = ANY($1::text[]) AND address IS NOT NULL
RETURNING participant_id
"""


async def erase_addresses(conn: DbConnection, participant_ids: Sequence[str]) -> list[str]:
    """Forget the contact addresses of these participants; returns whose were erased."""
    if not participant_ids:
        return []
    rows = await conn.fetch(_ERASE_ADDRESSES, list(participant_ids))
    return sorted(r["participant_id"] for r in rows)


async def lock_preferences(
    conn: DbConnection, participant_id: str
) -> tuple[dict[str, Any] | None, str | None]:
    """The stored preferences as the audit trail shows them (the address only as a flag),
    and the address itself, to tell whether it changes."""
    row = await conn.fetchrow(_LOCK_PREFERENCES, participant_id)
    if row is None:
        return None, None
    shown = {k: v for k, v in row.items() if k != "address"}
    return {**shown, "opted_out": sorted(row["opted_out"])}, row["address"]


async def put_preferences(
    pool: DbConnection | asyncpg.Pool, participant_id: str, chosen: Chosen, address: str | None
) -> None:
    """None in `chosen`: not chosen (the enrolment's timezone, the study's or the service's
    language, quiet hours and cap)."""
    await pool.execute(
        _PUT_PREFERENCES,
        participant_id,
        chosen.language,
        chosen.timezone,
        str(chosen.channel),
        sorted(str(c) for c in chosen.opted_out),
        chosen.quiet_start,
        chosen.quiet_end,
        chosen.max_per_day,
        address,
    )


@dataclass(frozen=True)
class Profile:
    chosen: Chosen
    site_id: str | None  # None: the enrolment has not reached retention
    study_id: str


async def profile(conn: DbConnection | asyncpg.Pool, participant_id: str) -> Profile:
    """What is stored for the participant (timezone: theirs, else the enrolment's), their
    site and study; the rules that follow from it are `study_rules.effective_rules`."""
    row = await conn.fetchrow(_PROFILE, participant_id)
    assert row is not None
    chosen = Chosen(
        timezone=row["timezone"],
        channel=ChannelKind(row["channel"] or "push"),
        opted_out=frozenset(ChannelKind(c) for c in row["opted_out"] or ()),
        language=row["language"],
        quiet_start=row["quiet_start"],
        quiet_end=row["quiet_end"],
        max_per_day=row["max_per_day"],
    )
    return Profile(chosen, row["site_id"], row["study_id"])


async def lock_engagement(conn: DbConnection, participant_id: str) -> Engagement:
    """Serialises all decisions for one participant (consumers and the sweep)."""
    await conn.execute(_ENSURE_ENGAGEMENT, participant_id)
    row = await conn.fetchrow(_LOCK_ENGAGEMENT, participant_id)
    assert row is not None
    return Engagement(**dict(row))


async def save_engagement(conn: DbConnection, participant_id: str, state: Engagement) -> None:
    await conn.execute(_SAVE_ENGAGEMENT, participant_id, *astuple(state))


async def open_occurrence(conn: DbConnection, occurrence: UUID, pid: str, due: datetime) -> None:
    await conn.execute(_OPEN_OCCURRENCE, occurrence, pid, due)


async def close_occurrence(conn: DbConnection, occurrence: UUID | None) -> datetime | None:
    if occurrence is None:
        return None
    due: datetime | None = await conn.fetchval(_CLOSE_OCCURRENCE, occurrence)
    return due


async def scheduled_times(
    conn: DbConnection, participant_id: str, since: datetime
) -> list[datetime]:
    return [r["send_at"] for r in await conn.fetch(_SCHEDULED, participant_id, since)]


async def insert_nudge(
    conn: DbConnection, trigger: Trigger, decision: Decision, status: str
) -> bool:
    """False if this nudge id exists already (the trigger was seen before)."""
    row = await conn.fetchrow(
        _INSERT_NUDGE,
        trigger.nudge_id,
        trigger.participant_id,
        str(trigger.kind),
        trigger.source_event_id,
        trigger.target,
        status,
        None if decision.reason is None else str(decision.reason),
        None if decision.channel is None else str(decision.channel),
        decision.language,
        decision.tone,
        decision.text,
        decision.send_at,
    )
    return row is not None


async def journey(
    conn: DbConnection, nudge_id: UUID, step: str, at: datetime, detail: str = ""
) -> None:
    await conn.execute(_JOURNEY, nudge_id, step, at, detail)


async def insert_task(conn: DbConnection, trigger: Trigger) -> None:
    await conn.execute(
        _INSERT_TASK, trigger.nudge_id, trigger.participant_id, str(trigger.kind), trigger.reason
    )


async def acted_on(conn: DbConnection | asyncpg.Pool, targets: Sequence[str], at: datetime) -> None:
    if targets:
        await conn.execute(_ACTED_ON, list(targets), at)


async def record_activity(
    conn: DbConnection, last_seen: dict[str, datetime], hours: set[tuple[str, datetime]]
) -> None:
    await conn.execute(_TOUCH_ACTIVITY, list(last_seen), list(last_seen.values()))
    await conn.execute(_ACTIVE_HOURS, [p for p, _ in hours], [h for _, h in hours])


async def silent_since(pool: asyncpg.Pool, before: datetime) -> list[tuple[str, datetime]]:
    return [(r[0], r[1]) for r in await pool.fetch(_SILENT, before)]


def row_dict(row: asyncpg.Record) -> dict[str, Any]:
    return dict(row)
