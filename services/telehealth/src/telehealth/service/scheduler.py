"""Time-driven events: reminders 24 h and 1 h before a booked visit, missed visits.

Restart-safe and said once: each tick claims what is due with a unique key
(reminders_sent's primary key; the visit's status moving to `missed`) and queues the
events on the outbox in the same transaction. A crash before commit loses nothing
(the next tick claims it again); replicas ticking together cannot both claim a row.
A scheduler that was down catches up on its next tick.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import asyncpg
import structlog
from trialstream.events.topics import Topic
from trialstream.events.visits import VisitReminderDue, VisitType
from trialstream.outbox import enqueue

from telehealth import repository
from telehealth.service import visit_events

log = structlog.get_logger(__name__)


async def tick(pool: asyncpg.Pool, now: datetime) -> tuple[int, int]:
    """Emit what is due at `now`; returns (reminders, missed visits)."""
    async with pool.acquire() as conn, conn.transaction():
        due = await repository.claim_due_reminders(conn, now)
        reminders = [
            VisitReminderDue(
                participant_id=b.participant_id,
                study_id=b.study_id,
                visit_id=b.visit_id,
                booking_id=b.booking_id,
                visit_name=b.visit_name,
                visit_type=VisitType(b.visit_type),
                starts_at=b.starts_at,
                lead=lead,
            )
            for lead, b in due
        ]
        await enqueue(conn, Topic.VISIT_REMINDERS, [(r.participant_id, r) for r in reminders])
        missed = await repository.mark_missed(conn, now)
        await visit_events.emit(conn, [visit_events.missed(m) for m in missed])
    return len(reminders), len(missed)


async def run_once(pool: asyncpg.Pool, clock: Callable[[], datetime]) -> None:
    """One pass of the periodic loop (`Runtime.loops`): a failure is the loop's to log."""
    reminders, missed = await tick(pool, clock())
    if reminders or missed:
        log.info("scheduler tick", reminders=reminders, missed=missed)
