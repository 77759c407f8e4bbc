"""Tiering's SQL (decision 0077): which days to tier, the claim under a lease, the rows and
checksums of a detached day, the manifest, and the tier state reads consult."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg
from trialstream.db import DbConnection

from ingest.tiering import NO_STUDY
from ingest.tiering_store import WrittenFile

# Days older than the cutoff that still have rows in PostgreSQL (an attached partition or
# tables detached by the 0074 setting), and days whose tiering stopped half way (lease out).
_DAYS_TO_TIER = """
SELECT day FROM (
    SELECT to_date(substr(c.relname, 10, 8), 'YYYYMMDD') AS day
    FROM pg_class c
    WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'
      AND c.relname ~ '^readings_[0-9]{8}($|_detached_)'
) d
WHERE day < $1 AND NOT EXISTS (SELECT 1 FROM archive_tiers t WHERE t.day = d.day)
UNION
SELECT day FROM archive_tiers WHERE status = 'tiering' AND lease_until < now()
ORDER BY 1
"""
_CLAIM_LOCK = "SELECT pg_advisory_xact_lock(hashtext('ingest.archive tiering'))"
_TIER_ROW = "SELECT * FROM archive_tiers WHERE day = $1 FOR UPDATE"
_TAKE_OVER = """
UPDATE archive_tiers SET worker = $2, lease_until = now() + make_interval(secs => $3),
       attempts = attempts + 1
WHERE day = $1 AND status = 'tiering' AND lease_until < now()
RETURNING source_tables, buckets
"""
_DETACH_DAY = "SELECT detach_readings_day($1)"
_INSERT_TIER = """
INSERT INTO archive_tiers (day, status, source_tables, buckets, url, worker, lease_until)
VALUES ($1, 'tiering', $2, $3, $4, $5, now() + make_interval(secs => $6))
"""
_RENEW = """
UPDATE archive_tiers SET lease_until = now() + make_interval(secs => $3)
WHERE day = $1 AND worker = $2 AND status = 'tiering'
RETURNING day
"""
# One row's canonical text (tiering.row_hashes builds the same from the Parquet rows) and
# its hash: the first 8 bytes of its MD5 as a signed bigint; the day's checksum is their
# sum mod 2^64, so row order does not matter.
_ROW_HASH = """
('x' || left(md5(concat_ws('|', r.event_id::text, r.participant_id, r.device_id, r.metric,
    ('x' || encode(float8send(r.value), 'hex'))::bit(64)::bigint,
    r.unit, (extract(epoch FROM r.measured_at) * 1000000)::bigint,
    (extract(epoch FROM r.received_at) * 1000000)::bigint)), 16))::bit(64)::bigint
"""
_STUDY = f"coalesce(p.study_id, '{NO_STUDY}')"
_BUCKET = "(('x' || left(md5(r.participant_id), 8))::bit(32)::bigint % $1)::int"
_CHECKSUMS = """
SELECT {study} AS study_id, {bucket} AS bucket, count(*) AS rows, sum({row_hash}) AS total
FROM ({source}) r LEFT JOIN participants p USING (participant_id)
GROUP BY 1, 2
"""
# The day's rows for the files, grouped by file and sorted by participant and time.
_ROWS = """
SELECT {study} AS study_id, {bucket} AS bucket, r.event_id, r.participant_id, r.device_id,
       r.metric, r.value, r.unit, r.measured_at, r.received_at
FROM ({source}) r LEFT JOIN participants p USING (participant_id)
ORDER BY 1, 2, r.participant_id, r.measured_at, r.event_id
"""
_MARK_TIERED = """
UPDATE archive_tiers SET status = 'tiered', rows = $3, checksum = $4, tiered_at = now(),
       lease_until = NULL
WHERE day = $1 AND worker = $2 AND status = 'tiering'
RETURNING day
"""
_INSERT_FILES = """
INSERT INTO archive_tier_files (day, study_id, bucket, path, rows, bytes, sha256, checksum)
SELECT $1, s, b, p, r, n, h, c
FROM unnest($2::text[], $3::int[], $4::text[], $5::bigint[], $6::bigint[], $7::text[], $8::text[])
    AS f(s, b, p, r, n, h, c)
"""
_DROP = "SELECT drop_tiered_readings($1, $2)"
_STATES = """
SELECT day, status, source_tables, buckets FROM archive_tiers
WHERE day BETWEEN $1 AND $2 ORDER BY day
"""
# The tiered files of a study's days; of one participant's bucket (as bucketed on that
# day) when $3 names one.
_FILES = """
SELECT f.day, f.path FROM archive_tier_files f JOIN archive_tiers t USING (day)
WHERE t.status = 'tiered' AND f.day = ANY($1) AND f.study_id = $2
  AND ($3::text IS NULL OR f.bucket = (('x' || left(md5($3), 8))::bit(32)::bigint % t.buckets)::int)
ORDER BY f.day, f.bucket
"""
_TIERED_DAYS = "SELECT day FROM archive_tiers WHERE day = ANY($1)"
_RELEASE = """
UPDATE archive_tiers SET lease_until = now() WHERE day = $1 AND worker = $2 AND status = 'tiering'
"""
_TIERED_SPAN = """
SELECT min(day) AS first, max(day) AS last FROM archive_tier_files WHERE study_id = $1
"""
_MANIFEST = "SELECT * FROM archive_tiers WHERE day = $1"
_MANIFEST_FILES = "SELECT * FROM archive_tier_files WHERE day = $1 ORDER BY study_id, bucket"


@dataclass(frozen=True)
class Claim:
    day: date
    source_tables: tuple[str, ...]
    buckets: int


@dataclass(frozen=True)
class DayState:
    day: date
    status: str  # 'tiering' or 'tiered'
    source_tables: tuple[str, ...]
    buckets: int


def source(tables: Sequence[str]) -> str:
    """A FROM clause over a day's detached tables (names made by our own functions)."""
    return " UNION ALL ".join(f'SELECT * FROM "{t}"' for t in tables)  # noqa: S608


async def days_to_tier(pool: asyncpg.Pool, cutoff: date) -> list[date]:
    return [row["day"] for row in await pool.fetch(_DAYS_TO_TIER, cutoff)]


async def claim(
    pool: asyncpg.Pool, day: date, worker: str, lease_seconds: float, buckets: int, url: str
) -> Claim | None:
    """Take a day for this replica: detach its partition and record it 'tiering' (one
    transaction), or take over one whose replica's lease ran out. None: another replica
    has it, or there is nothing of that day left to tier."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(_CLAIM_LOCK)
        row = await conn.fetchrow(_TIER_ROW, day)
        if row is not None:
            taken = await conn.fetchrow(_TAKE_OVER, day, worker, lease_seconds)
            if taken is None:
                return None
            return Claim(day, tuple(taken["source_tables"]), taken["buckets"])
        tables = list(await conn.fetchval(_DETACH_DAY, day))
        if not tables:
            return None
        await conn.execute(_INSERT_TIER, day, tables, buckets, url, worker, lease_seconds)
        return Claim(day, tuple(tables), buckets)


async def renew(pool: asyncpg.Pool, day: date, worker: str, lease_seconds: float) -> bool:
    return await pool.fetchval(_RENEW, day, worker, lease_seconds) is not None


async def checksums(pool: asyncpg.Pool, claim: Claim) -> dict[tuple[str, int], tuple[int, int]]:
    """(study, bucket) -> (rows, checksum mod 2^64) of the day's rows, in PostgreSQL."""
    sql = _CHECKSUMS.format(
        study=_STUDY, bucket=_BUCKET, row_hash=_ROW_HASH, source=source(claim.source_tables)
    )
    rows = await pool.fetch(sql, claim.buckets)
    return {
        (r["study_id"], r["bucket"]): (r["rows"], int(r["total"]) & ((1 << 64) - 1)) for r in rows
    }


async def copy_rows(
    conn: DbConnection, claim: Claim, sink: Callable[[bytes], Coroutine[Any, Any, None]]
) -> None:
    """Stream the day's rows as PostgreSQL CSV (UTC, ISO times), grouped by file."""
    sql = _ROWS.format(study=_STUDY, bucket=_BUCKET, source=source(claim.source_tables))
    async with conn.transaction(readonly=True):
        await conn.execute("SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD'")
        await conn.copy_from_query(sql, claim.buckets, output=sink, format="csv")


async def commit(
    conn: DbConnection,
    claim: Claim,
    worker: str,
    files: Sequence[WrittenFile],
    checksums: dict[tuple[str, int], tuple[int, int]],
    rows: int,
    total: str,
) -> bool:
    """Record the files and the day 'tiered', then drop its tables, in the caller's
    transaction; False (nothing done) when this replica no longer holds the day."""
    if await conn.fetchval(_MARK_TIERED, claim.day, worker, rows, total) is None:
        return False
    await conn.execute(
        _INSERT_FILES,
        claim.day,
        [f.study_id for f in files],
        [f.bucket for f in files],
        [f.path for f in files],
        [f.rows for f in files],
        [f.bytes for f in files],
        [f.sha256 for f in files],
        [f"{checksums[(f.study_id, f.bucket)][1]:016x}" for f in files],
    )
    await conn.fetchval(_DROP, claim.day, list(claim.source_tables))
    return True


async def states(conn: DbConnection | asyncpg.Pool, first: date, last: date) -> list[DayState]:
    return [
        DayState(r["day"], r["status"], tuple(r["source_tables"]), r["buckets"])
        for r in await conn.fetch(_STATES, first, last)
    ]


async def tier_files(
    conn: DbConnection | asyncpg.Pool,
    days: Sequence[date],
    study_id: str,
    participant_id: str | None,
) -> list[asyncpg.Record]:
    return list(await conn.fetch(_FILES, list(days), study_id, participant_id))


async def tiered_days(conn: DbConnection | asyncpg.Pool, days: Sequence[date]) -> set[date]:
    """Those of `days` that are tiered or being tiered: no partition is made for them."""
    return {row["day"] for row in await conn.fetch(_TIERED_DAYS, list(days))}


async def release(pool: asyncpg.Pool, day: date, worker: str) -> None:
    """Let the next pass (of any replica) try the day again at once."""
    await pool.execute(_RELEASE, day, worker)


async def tiered_span(
    conn: DbConnection | asyncpg.Pool, study_id: str
) -> tuple[date | None, date | None]:
    row = await conn.fetchrow(_TIERED_SPAN, study_id)
    return (None, None) if row is None else (row["first"], row["last"])


async def manifest(
    conn: DbConnection | asyncpg.Pool, day: date
) -> tuple[asyncpg.Record | None, list[asyncpg.Record]]:
    return await conn.fetchrow(_MANIFEST, day), list(await conn.fetch(_MANIFEST_FILES, day))
