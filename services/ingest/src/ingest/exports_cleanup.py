"""Old exports go (issue 17): a finished job older than INGEST_EXPORT_KEEP_DAYS has its
files deleted and is marked expired, audited, by a background loop in every replica.

The job's row stays (a few hundred bytes): its download links then answer 410
`export_expired` rather than a 404 that reads like a wrong link, and the study's list of
exports still shows who exported what and when. Files go first, then the mark and the
audit entry commit together: a pass cut short between the two deletes nothing twice and
marks the job on the next pass.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import asyncpg
import structlog
from trialstream import audit

from ingest import exports_repository as repo
from ingest.exports_jobs import job_dir

log = structlog.get_logger(__name__)

ACTOR = "system:ingest"
BATCH = 50


async def expire_old(pool: asyncpg.Pool, export_dir: Path, keep_days: float) -> int:
    """One pass: every job past its keep time, `BATCH` per transaction. Returns how many
    expired."""
    expired = 0
    while True:
        async with pool.acquire() as conn, conn.transaction():
            jobs = await repo.to_expire(conn, keep_days * 86_400, BATCH)
            for job in jobs:
                directory = job_dir(export_dir, job.export_id)
                await asyncio.to_thread(shutil.rmtree, directory, ignore_errors=True)
                when = await repo.mark_expired(conn, job.export_id)
                await audit.record(
                    conn,
                    actor=ACTOR,
                    action="export.expired",
                    entity="export",
                    entity_id=str(job.export_id),
                    new={
                        "study_id": job.study_id,
                        "expired_at": when.isoformat(),
                        "keep_days": keep_days,
                    },
                    reason=f"exports are kept {keep_days:g} days (INGEST_EXPORT_KEEP_DAYS)",
                )
        expired += len(jobs)
        if jobs:
            log.info("exports expired", count=len(jobs))
        if len(jobs) < BATCH:
            return expired
