"""Ingest's SQL, behind small functions taking a connection or pool."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID

import asyncpg
from trialstream.db import DbConnection
from trialstream.identity import DEFAULT_STUDY

_DEVICE_BY_CREDENTIAL_HASH = """
SELECT d.device_id, d.participant_id, p.site_id, p.withdrawn_at, p.study_id
FROM devices d JOIN participants p USING (participant_id)
WHERE d.token_hash = $1 AND d.revoked_at IS NULL
"""
_INSERT_PARTICIPANT = """
INSERT INTO participants (participant_id, site_id, timezone, study_id) VALUES ($1, $2, $3, $4)
ON CONFLICT (participant_id) DO NOTHING
RETURNING participant_id
"""
_PARTICIPANT = """
SELECT participant_id, site_id, timezone, withdrawn_at, study_id FROM participants
WHERE participant_id = $1
"""
_WITHDRAW = """
UPDATE participants SET status = 'withdrawn', withdrawn_at = $2, withdrawal_reason = $3
WHERE participant_id = $1 AND status = 'enrolled'
RETURNING participant_id, site_id, timezone, withdrawn_at, study_id
"""
_INSERT_DEVICE = """
INSERT INTO devices (device_id, participant_id, token_hash) VALUES ($1, $2, $3)
ON CONFLICT (device_id) DO NOTHING
RETURNING device_id
"""
_REVOKE_DEVICE = """
UPDATE devices SET revoked_at = now() WHERE device_id = $1 AND revoked_at IS NULL
RETURNING participant_id
"""
# The archive doubles as the dedupe ledger (decision 0062), partitioned by the UTC day a
# reading was measured (decision 0074): an id comes back only if an earlier upload stored
# it for the same day (a duplicate; normally none). The rows come as the readings' event
# JSON (one array, parsed by PostgreSQL): the bytes ingest publishes anyway, instead of
# eight columns of 2,000 values encoded one by one, which cost more client CPU than
# validating the request. `occurred_at` is when ingest received the reading. The lookup of
# what was archived before is LATERAL so that it stays one primary-key probe in one
# partition per id that came back, whatever the planner thinks of json_to_recordset.
_ARCHIVE_NEW = """
WITH incoming AS (
    SELECT r.*, (r.measured_at AT TIME ZONE 'UTC')::date AS measured_on
    FROM json_to_recordset($1::json) AS r(
        event_id uuid, participant_id text, device_id text, metric text, value float8,
        unit text, measured_at timestamptz, occurred_at timestamptz
    )
), archived AS (
    INSERT INTO readings (
        event_id, participant_id, device_id, metric, value, unit, measured_at, received_at,
        measured_on
    )
    SELECT event_id, participant_id, device_id, metric, value, unit, measured_at, occurred_at,
           measured_on
    FROM incoming
    ON CONFLICT (event_id, measured_on) DO NOTHING
    RETURNING event_id
)
SELECT i.event_id,
       r.event_id IS NULL  -- archived by a concurrent upload this statement cannot see
       OR (r.participant_id, r.device_id, r.metric, r.value, r.unit, r.measured_at)
          = (i.participant_id, i.device_id, i.metric, i.value, i.unit, i.measured_at) AS same
FROM incoming i
LEFT JOIN LATERAL (
    SELECT * FROM readings r WHERE r.event_id = i.event_id AND r.measured_on = i.measured_on
) r ON true
WHERE NOT EXISTS (SELECT 1 FROM archived a WHERE a.event_id = i.event_id)
"""
# measured_on bounds the days read to the partitions that can hold the range.
_READINGS_FOR = """
SELECT event_id, participant_id, device_id, metric, value, unit, measured_at, received_at
FROM readings
WHERE participant_id = $1 AND measured_at >= $2 AND measured_at < $3
  AND measured_on BETWEEN ($2 AT TIME ZONE 'UTC')::date AND ($3 AT TIME ZONE 'UTC')::date
  AND ($4::text IS NULL OR metric = $4)
ORDER BY measured_at, event_id
LIMIT $5
"""
_PARTITIONS_FOR = "SELECT readings_partitions_for($1::date[])"
_DETACH_BEFORE = "SELECT detach_readings_before($1::date)"


class ArchiveDays:
    """The days whose archive partition this process has seen exist, so that an upload
    asks PostgreSQL only for a day it has not seen yet (normally none: the maintenance
    loop creates the coming days ahead). A day detached since is found by the insert
    failing; `forget` then makes the next `ensure` ask again."""

    def __init__(self) -> None:
        self._known: set[date] = set()

    async def ensure(self, conn: DbConnection | asyncpg.Pool, days: Iterable[date]) -> int:
        """Create the partitions of `days` that do not exist; returns how many were created.
        Its own statement, outside any upload transaction: creating a partition locks the
        whole archive until commit."""
        missing = sorted(set(days) - self._known)
        if not missing:
            return 0
        created = int(await conn.fetchval(_PARTITIONS_FOR, missing))
        self._known.update(missing)
        return created

    def forget(self) -> None:
        self._known.clear()


async def detach_readings_before(conn: DbConnection | asyncpg.Pool, cutoff: date) -> list[str]:
    """Detach the partitions of days before `cutoff` from the archive; their tables stay,
    renamed `readings_YYYYMMDD_detached_<when>`, and are returned (decision 0074)."""
    return list(await conn.fetchval(_DETACH_BEFORE, cutoff))


@dataclass(frozen=True)
class Device:
    device_id: str
    participant_id: str
    site_id: str
    withdrawn_at: datetime | None = None
    study_id: str = DEFAULT_STUDY


@dataclass(frozen=True)
class Participant:
    participant_id: str
    site_id: str
    timezone: str
    withdrawn_at: datetime | None = None
    study_id: str = DEFAULT_STUDY


async def device_for_token(pool: asyncpg.Pool, token_hash: str) -> Device | None:
    row = await pool.fetchrow(_DEVICE_BY_CREDENTIAL_HASH, token_hash)
    if row is None:
        return None
    return Device(
        row["device_id"],
        row["participant_id"],
        row["site_id"],
        row["withdrawn_at"],
        row["study_id"],
    )


async def insert_participant(conn: DbConnection, participant: Participant) -> bool:
    row = await conn.fetchrow(
        _INSERT_PARTICIPANT,
        participant.participant_id,
        participant.site_id,
        participant.timezone,
        participant.study_id,
    )
    return row is not None


_DEVICE_SITE = """
SELECT p.study_id, p.site_id FROM devices d JOIN participants p USING (participant_id)
WHERE d.device_id = $1 AND d.revoked_at IS NULL
"""


async def get_participant(
    conn: DbConnection | asyncpg.Pool, participant_id: str
) -> Participant | None:
    row = await conn.fetchrow(_PARTICIPANT, participant_id)
    return _participant(row) if row else None


async def withdraw(
    conn: DbConnection, participant_id: str, withdrawn_at: datetime, reason: str
) -> Participant | None:
    """enrolled -> withdrawn; None if the participant is unknown or already withdrawn."""
    row = await conn.fetchrow(_WITHDRAW, participant_id, withdrawn_at, reason)
    return _participant(row) if row else None


def _participant(row: asyncpg.Record) -> Participant:
    return Participant(
        row["participant_id"], row["site_id"], row["timezone"], row["withdrawn_at"], row["study_id"]
    )


async def insert_device(
    conn: DbConnection, device_id: str, participant_id: str, token_hash: str
) -> bool:
    return await conn.fetchrow(_INSERT_DEVICE, device_id, participant_id, token_hash) is not None


async def site_of_device(
    conn: DbConnection | asyncpg.Pool, device_id: str
) -> tuple[str, str] | None:
    """(study, site) of an active device's participant, None if no active device has this id."""
    row = await conn.fetchrow(_DEVICE_SITE, device_id)
    return None if row is None else (row["study_id"], row["site_id"])


async def revoke_device(conn: DbConnection, device_id: str) -> str | None:
    """The revoked device's participant, or None if no active device has this id."""
    value = await conn.fetchval(_REVOKE_DEVICE, device_id)
    return None if value is None else str(value)


async def archive_new(conn: DbConnection, events: Sequence[bytes]) -> dict[UUID, bool]:
    """Archive readings given as their `ReadingReceived` JSON (distinct event ids); return
    the ids that were archived before for the same measured day, each with whether the
    archived reading is the same (a duplicate) or another one (an event id reused). Inside a
    transaction, a concurrent upload of the same id waits on the row lock, then sees it as a
    duplicate. Every day's partition must exist (`ArchiveDays.ensure`); PostgreSQL raises
    CheckViolationError otherwise."""
    if not events:
        return {}
    rows = await conn.fetch(_ARCHIVE_NEW, (b"[" + b",".join(events) + b"]").decode())
    return {row["event_id"]: row["same"] for row in rows}


async def readings_for(
    pool: asyncpg.Pool,
    participant_id: str,
    start: datetime,
    end: datetime,
    metric: str | None,
    limit: int,
) -> list[asyncpg.Record]:
    return list(await pool.fetch(_READINGS_FOR, participant_id, start, end, metric, limit))
