"""Export jobs' SQL. The archive is read only through the parent `readings` table and
its columns, joined to `participants` for the study (the archive's layout underneath,
partitions or not, is its own)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, date, datetime, time
from typing import Any
from uuid import UUID

import asyncpg
from trialstream.db import DbConnection

from ingest.exports import (
    ExportFormat,
    ExportJob,
    ExportStatus,
    PartView,
    plan_days,
    plan_parts,
)
from ingest.tiering_repository import tiered_span

_INSERT = """
INSERT INTO exports (export_id, study_id, participant_id, site_ids, format, requested_by)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING *
"""
_JOB = "SELECT * FROM exports WHERE export_id = $1"
# A study's jobs, newest first; the caller's scope is applied by the route (within_scope).
_STUDY_JOBS = """
SELECT * FROM exports
WHERE study_id = $1 AND ($2::text IS NULL OR requested_by = $2)
ORDER BY requested_at DESC, export_id
LIMIT $3
"""
_PARTS_OF = """
SELECT export_id, part, day, last_day, file_name, rows_written, bytes, sha256
FROM export_parts
WHERE export_id = ANY($1::uuid[]) ORDER BY export_id, part
"""
# Finished jobs past their keep time, a few at a time; SKIP LOCKED: replicas expire
# different ones. Marked in the same transaction that audits it, after the files went.
_TO_EXPIRE = """
SELECT * FROM exports
WHERE expired_at IS NULL AND status IN ('done', 'failed')
  AND finished_at < now() - make_interval(secs => $1)
ORDER BY finished_at
LIMIT $2
FOR UPDATE SKIP LOCKED
"""
_EXPIRED = "UPDATE exports SET expired_at = now() WHERE export_id = $1 RETURNING expired_at"
_PARTS = """
SELECT part, day, last_day, file_name, rows_written, bytes, sha256 FROM export_parts
WHERE export_id = $1 ORDER BY part
"""
# The oldest job waiting, or one whose replica stopped renewing its lease (it crashed or
# was stopped): SKIP LOCKED lets replicas claim different jobs at the same moment.
_CLAIM = """
UPDATE exports e
SET status = 'running', worker = $1, lease_until = now() + make_interval(secs => $2),
    started_at = coalesce(e.started_at, now()), attempts = e.attempts + 1
WHERE e.export_id = (
    SELECT export_id FROM exports
    WHERE status = 'queued' OR (status = 'running' AND lease_until < now())
    ORDER BY requested_at
    LIMIT 1
    FOR UPDATE SKIP LOCKED
)
RETURNING e.*
"""
_RENEW = """
UPDATE exports SET lease_until = now() + make_interval(secs => $3)
WHERE export_id = $1 AND worker = $2 AND status = 'running'
RETURNING export_id
"""
# First and last measured_at of the job's participants: two index look-ups a participant.
_SPAN = """
SELECT min(x.first) AS first, max(x.last) AS last
FROM participants p,
     LATERAL (SELECT min(r.measured_at) AS first, max(r.measured_at) AS last
              FROM readings r WHERE r.participant_id = p.participant_id) AS x
WHERE p.study_id = $1
  AND ($2::text IS NULL OR p.participant_id = $2)
  AND ($3::text[] IS NULL OR p.site_id = ANY($3))
"""
_PARTICIPANT_IDS = """
SELECT participant_id FROM participants
WHERE study_id = $1 AND ($2::text IS NULL OR participant_id = $2)
  AND ($3::text[] IS NULL OR site_id = ANY($3))
"""
_INSERT_PARTS = """
INSERT INTO export_parts (export_id, part, day, last_day, file_name)
SELECT $1, n, d, l, f FROM unnest($2::int[], $3::date[], $4::date[], $5::text[]) AS t(n, d, l, f)
ON CONFLICT DO NOTHING
"""
_PLANNED = """
UPDATE exports SET parts_total = $3 WHERE export_id = $1 AND worker = $2 AND parts_total IS NULL
"""
_PARTS_TO_DO = """
SELECT part, day, last_day, file_name FROM export_parts
WHERE export_id = $1 AND done_at IS NULL ORDER BY part
"""
# Done only while this replica still holds the job: one that lost its lease (it was slow,
# another took over) must not count a part twice.
_PART_DONE = """
UPDATE export_parts pt SET rows_written = $4, bytes = $5, sha256 = $6, done_at = now()
FROM exports e
WHERE pt.export_id = $1 AND pt.part = $3 AND pt.done_at IS NULL
  AND e.export_id = pt.export_id AND e.worker = $2 AND e.status = 'running'
RETURNING pt.part
"""
_FINISH = """
UPDATE exports SET status = $3, finished_at = now(), lease_until = NULL, error = $4
WHERE export_id = $1 AND worker = $2 AND status = 'running'
"""
# Handed back in good order (shutting down, a transient failure): not a failed attempt.
_RELEASE = """
UPDATE exports SET status = 'queued', lease_until = NULL, attempts = attempts - 1
WHERE export_id = $1 AND worker = $2 AND status = 'running'
"""
# The readings of one part: its day (one archive partition, decision 0074), the job's
# participants, received before the request.
# The participants are one array (an init plan) so that the archive's index on
# (participant_id, measured_at) answers each one's day, whatever the planner guesses.
# FHIR lines show neither received_at nor the archived unit (the UCUM unit of the metric
# stands in): PostgreSQL need not format them (received_at is a tenth of its work).
_PART_READINGS = """
SELECT r.event_id, r.participant_id, r.device_id, r.metric, r.value, {unit},
       r.measured_at, {received_at}
FROM readings r
WHERE r.participant_id = ANY(ARRAY(
        SELECT p.participant_id FROM participants p
        WHERE p.study_id = $1
          AND ($2::text IS NULL OR p.participant_id = $2)
          AND ($3::text[] IS NULL OR p.site_id = ANY($3))))
  AND r.measured_at >= $4::timestamptz AND r.measured_at < $5::timestamptz
  AND r.measured_on = ($4::timestamptz AT TIME ZONE 'UTC')::date  -- the day's partition only
  AND r.received_at < $6::timestamptz
"""
PART_READINGS = _PART_READINGS.format(unit="r.unit", received_at="r.received_at")
PART_READINGS_FHIR = _PART_READINGS.format(unit="NULL", received_at="NULL")


def _job(row: asyncpg.Record) -> ExportJob:
    return ExportJob(
        export_id=row["export_id"],
        study_id=row["study_id"],
        participant_id=row["participant_id"],
        format=ExportFormat(row["format"]),
        status=ExportStatus(row["status"]),
        requested_by=row["requested_by"],
        requested_at=row["requested_at"],
        as_of=row["as_of"],
        site_ids=tuple(row["site_ids"]) if row["site_ids"] is not None else None,
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        parts_total=row["parts_total"],
        error=row["error"],
        attempts=row["attempts"],
        expired_at=row["expired_at"],
        expired_reason=row.get("expired_reason"),
    )


def _part(r: asyncpg.Record) -> PartView:
    return PartView(
        r["part"],
        r["day"],
        r["file_name"],
        r["rows_written"],
        r["bytes"],
        r["sha256"],
        r["last_day"],
    )


async def insert(
    conn: DbConnection,
    export_id: UUID,
    study_id: str,
    participant_id: str | None,
    site_ids: Sequence[str] | None,
    fmt: ExportFormat,
    requested_by: str,
) -> ExportJob:
    row = await conn.fetchrow(
        _INSERT,
        export_id,
        study_id,
        participant_id,
        list(site_ids) if site_ids is not None else None,
        str(fmt),
        requested_by,
    )
    assert row is not None
    return _job(row)


async def get(conn: DbConnection | asyncpg.Pool, export_id: UUID) -> ExportJob | None:
    row = await conn.fetchrow(_JOB, export_id)
    return _job(row) if row else None


async def parts(conn: DbConnection | asyncpg.Pool, export_id: UUID) -> list[PartView]:
    return [_part(r) for r in await conn.fetch(_PARTS, export_id)]


async def of_study(
    pool: asyncpg.Pool, study_id: str, requested_by: str | None, limit: int
) -> list[tuple[ExportJob, list[PartView]]]:
    """A study's jobs (only those `requested_by` asked for, when named) with their parts."""
    jobs = [_job(r) for r in await pool.fetch(_STUDY_JOBS, study_id, requested_by, limit)]
    by_job: dict[UUID, list[PartView]] = {j.export_id: [] for j in jobs}
    for r in await pool.fetch(_PARTS_OF, list(by_job)):
        by_job[r["export_id"]].append(_part(r))
    return [(j, by_job[j.export_id]) for j in jobs]


async def to_expire(conn: DbConnection, keep_seconds: float, limit: int) -> list[ExportJob]:
    """Finished jobs older than the keep time, locked until the caller's transaction ends."""
    return [_job(r) for r in await conn.fetch(_TO_EXPIRE, keep_seconds, limit)]


async def mark_expired(conn: DbConnection, export_id: UUID) -> datetime:
    expired_at: datetime = await conn.fetchval(_EXPIRED, export_id)
    return expired_at


async def claim(pool: asyncpg.Pool, worker: str, lease_seconds: float) -> ExportJob | None:
    row = await pool.fetchrow(_CLAIM, worker, lease_seconds)
    return _job(row) if row else None


async def renew(pool: asyncpg.Pool, export_id: UUID, worker: str, lease_seconds: float) -> bool:
    return await pool.fetchval(_RENEW, export_id, worker, lease_seconds) is not None


async def plan(pool: asyncpg.Pool, job: ExportJob, worker: str) -> None:
    """Cut a job not yet planned into its days (idempotent: a second plan adds nothing)."""
    async with pool.acquire() as conn, conn.transaction():
        span = await conn.fetchrow(
            _SPAN,
            job.study_id,
            job.participant_id,
            list(job.site_ids) if job.site_ids is not None else None,
        )
        assert span is not None
        first, last = span["first"], span["last"]
        # tiered days are no longer in the archive's tables (decision 0077)
        tier_first, tier_last = await tiered_span(conn, job.study_id)
        if tier_first is not None and tier_last is not None:
            first = min(first or _start(tier_first), _start(tier_first))
            last = max(last or _start(tier_last), _start(tier_last))
        planned = plan_parts(
            plan_days(first, last), job.format, one_file=job.participant_id is not None
        )
        await conn.execute(
            _INSERT_PARTS,
            job.export_id,
            list(range(1, len(planned) + 1)),
            [p.day for p in planned],
            [p.last_day for p in planned],
            [p.file_name for p in planned],
        )
        await conn.execute(_PLANNED, job.export_id, worker, len(planned))


def _start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


async def participant_ids(pool: asyncpg.Pool, job: ExportJob) -> list[str] | None:
    """The job's participants, to pick from a tiered day's files; None for a whole study
    without a site limit (every row of the study's files)."""
    if job.participant_id is None and job.site_ids is None:
        return None
    rows = await pool.fetch(
        _PARTICIPANT_IDS,
        job.study_id,
        job.participant_id,
        list(job.site_ids) if job.site_ids is not None else None,
    )
    return [r["participant_id"] for r in rows]


async def parts_to_do(pool: asyncpg.Pool, export_id: UUID) -> list[asyncpg.Record]:
    return list(await pool.fetch(_PARTS_TO_DO, export_id))


async def part_done(
    pool: asyncpg.Pool,
    export_id: UUID,
    worker: str,
    part: int,
    rows: int,
    size: int,
    sha256: str,
) -> bool:
    """False when this replica no longer holds the job (nothing is recorded)."""
    return await pool.fetchval(_PART_DONE, export_id, worker, part, rows, size, sha256) is not None


async def finish(
    pool: asyncpg.Pool, export_id: UUID, worker: str, error: str | None = None
) -> None:
    status = "failed" if error else "done"
    await pool.execute(_FINISH, export_id, worker, status, error)


async def withdrawn(pool: asyncpg.Pool, export_id: UUID) -> bool:
    """Whether the export was withdrawn or expired (its files are not to be kept)."""
    found = await pool.fetchval(
        "SELECT expired_at IS NOT NULL FROM exports WHERE export_id = $1", export_id
    )
    return bool(found)


async def release(pool: asyncpg.Pool, export_id: UUID, worker: str) -> None:
    await pool.execute(_RELEASE, export_id, worker)


async def copy_part(
    conn: DbConnection,
    job: ExportJob,
    start: datetime,
    end: datetime,
    sink: Callable[[bytes], Coroutine[Any, Any, None]],
) -> None:
    """Stream one part's readings as PostgreSQL CSV (UTC, ISO timestamps) into `sink`."""
    async with conn.transaction(readonly=True):
        await conn.execute("SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD'")
        await conn.copy_from_query(
            PART_READINGS_FHIR if job.format is ExportFormat.FHIR_NDJSON else PART_READINGS,
            job.study_id,
            job.participant_id,
            list(job.site_ids) if job.site_ids is not None else None,
            start,
            end,
            job.as_of,
            output=sink,
            format="csv",
        )
