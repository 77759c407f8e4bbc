"""The scheduler: turns assignments into occurrences and announces due and missed, once each.

Restart-safe by construction: each assignment remembers how far it was computed
(`scheduled_through`), occurrences have derived ids with a unique key, an occurrence
goes open -> missed in one UPDATE, and every event is written to the outbox in the
same transaction as the row that caused it. Replicas share the work with
FOR UPDATE SKIP LOCKED; a crash before commit leaves nothing to undo.

A withdrawn participant's assignments are computed only up to `withdrawn_at`, and an
occurrence the withdrawal cut short is closed, never announced (decision 0014).
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg
import structlog
from trialstream.db import DbConnection
from trialstream.events.epro import QuestionnaireDue, QuestionnaireMissed
from trialstream.events.topics import Topic
from trialstream.loops import skip_or_raise
from trialstream.outbox import enqueue

from epro import repository
from epro.domain.schedules import occurrences
from epro.domain.withdrawal import cut_short, schedule_until
from epro.repository import Assignment

log = structlog.get_logger(__name__)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # "Europe" is a folder: OSError
        log.warning("unknown timezone, scheduling in UTC", timezone=name)
        return ZoneInfo("UTC")


async def open_due(pool: asyncpg.Pool, now: datetime, *, batch: int = 200) -> tuple[int, int]:
    """Compute one batch of assignments up to `now`: (assignments done, due events written)."""
    async with pool.acquire() as conn, conn.transaction():
        due_events = []
        claimed = await repository.claim_assignments(conn, now, batch)
        for a in claimed:
            try:
                async with conn.transaction():  # a savepoint: a bad assignment skips alone
                    due_events += await _open_one(conn, a, now)
            except Exception as exc:
                skip_or_raise("epro-scheduler", a.participant_id, exc)
        await enqueue(conn, Topic.EPRO_DUE, due_events)
    return len(claimed), len(due_events)


async def _open_one(
    conn: DbConnection, a: Assignment, now: datetime
) -> list[tuple[str, QuestionnaireDue]]:
    """One assignment's occurrences up to `now`; returns its due events to publish."""
    through = schedule_until(now, a.withdrawn_at)
    found = occurrences(
        a.schedule,
        a.participant_id,
        _zone(a.timezone),
        after=a.scheduled_through,
        until=through,
        enrolled_at=a.enrolled_at,
        visits=a.visits,
    )
    fresh = await repository.insert_occurrences(conn, a.participant_id, found)
    due_events = [
        (
            a.participant_id,
            QuestionnaireDue(
                participant_id=a.participant_id,
                study_id=a.study_id,
                occurrence_id=o.occurrence_id,
                questionnaire_id=o.questionnaire_id,
                questionnaire_version=o.questionnaire_version,
                due_at=o.due_at,
                expires_at=o.expires_at,
            ),
        )
        for o in found
        if o.occurrence_id in fresh
        and o.expires_at > now  # expired ones: only missed
        and not cut_short(o.expires_at, a.withdrawn_at)
    ]
    if a.withdrawn_at is not None:  # the withdrawal was recorded before this tick
        await repository.close_cut_short(conn, [a.participant_id])
    await repository.advance(conn, a, through)
    return due_events


async def close_expired(pool: asyncpg.Pool, now: datetime, *, batch: int = 1000) -> int:
    """Mark open occurrences whose window closed as missed; returns how many."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await repository.expire_open(conn, now, batch)
        await enqueue(
            conn,
            Topic.EPRO_MISSED,
            [
                (
                    r["participant_id"],
                    QuestionnaireMissed(
                        participant_id=r["participant_id"],
                        study_id=r["study_id"],
                        occurrence_id=r["occurrence_id"],
                        questionnaire_id=r["questionnaire_id"],
                        questionnaire_version=r["questionnaire_version"],
                        due_at=r["due_at"],
                        expires_at=r["expires_at"],
                    ),
                )
                for r in rows
            ],
        )
    return len(rows)


async def tick(
    pool: asyncpg.Pool, now: datetime | None = None, *, batch: int = 200
) -> tuple[int, int]:
    """One scheduler pass: (due, missed) events written."""
    now = now or datetime.now(UTC)
    due = missed = 0
    while True:
        claimed, written = await open_due(pool, now, batch=batch)
        due += written
        if claimed < batch:
            break
    while n := await close_expired(pool, now):
        missed += n
    return due, missed
