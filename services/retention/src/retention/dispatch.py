"""The dispatcher: queued nudges whose time has come go out through the channel.

Rows are claimed with FOR UPDATE SKIP LOCKED, so replicas share the queue and a nudge
is handed to the channel by one of them only. The status, the journey step and the
NudgeSent event commit together after the channel answered."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import asyncpg
import structlog
from trialstream.db import DbConnection
from trialstream.events.nudges import NudgeSent
from trialstream.events.topics import Topic
from trialstream.outbox import enqueue

from retention import repository, withdrawal
from retention.channels import Channel, Delivery, Outgoing
from retention.service import Clock

log = structlog.get_logger(__name__)


class Dispatcher:
    def __init__(
        self,
        pool: asyncpg.Pool,
        channel: Channel,
        clock: Clock,
        *,
        max_dispatches: int = 5,
        retry_after: timedelta = timedelta(seconds=30),
        batch: int = 50,
    ) -> None:
        self._pool = pool
        self._channel = channel
        self._clock = clock
        self._max = max_dispatches
        self._retry_after = retry_after
        self._batch = batch

    async def dispatch_once(self) -> int:
        """Send what is due now; returns how many nudges were handed to the channel."""
        async with self._pool.acquire() as conn, conn.transaction():
            claimed = await repository.claim_due(conn, self._clock(), self._batch)
            if not claimed:
                return 0
            rows = await self._drop_withdrawn(conn, claimed)
            outgoing = [
                Outgoing(
                    r["nudge_id"],
                    r["participant_id"],
                    r["kind"],
                    r["channel"],
                    r["language"],
                    r["body"],
                    r["address"],
                )
                for r in rows
            ]
            results = await asyncio.gather(*(self._channel.deliver(n) for n in outgoing))
            now = self._clock()
            for row, nudge, result in zip(rows, outgoing, results, strict=True):
                await self._record(conn, row, nudge, result, now)
        return len(claimed)

    async def _drop_withdrawn(
        self, conn: DbConnection, claimed: list[asyncpg.Record]
    ) -> list[asyncpg.Record]:
        """The last check before a message leaves: a nudge of a participant who withdrew
        (one a race left queued) is cancelled here instead of sent."""
        now = self._clock()
        for row in claimed:
            if row["withdrawn_at"] is None:
                continue
            nid = row["nudge_id"]
            await repository.cancel(conn, nid, withdrawal.CANCEL_REASON)
            detail = f"{withdrawal.CANCEL_REASON}: found withdrawn at send time"
            await repository.journey(conn, nid, "cancelled", now, detail)
            log.warning(
                "queued nudge of a withdrawn participant cancelled at send time",
                participant_id=row["participant_id"],
                nudge_id=str(nid),
            )
        return [r for r in claimed if r["withdrawn_at"] is None]

    async def _record(
        self,
        conn: DbConnection,
        row: asyncpg.Record,
        nudge: Outgoing,
        result: Delivery,
        now: datetime,
    ) -> None:
        nid = nudge.nudge_id
        if result.ok:
            await repository.mark_sent(conn, nid, now, result.delivered)
            await repository.journey(
                conn, nid, "sent", now, f"{self._channel.name}: {result.detail}"
            )
            if result.delivered:
                await repository.journey(conn, nid, "delivered", now, self._channel.name)
            event = NudgeSent(
                participant_id=nudge.participant_id,
                study_id=row["study_id"],
                nudge_id=nid,
                kind=nudge.kind,
                channel=nudge.channel,
                language=nudge.language,
                trigger_event_id=row["trigger_event_id"],
                sent_at=now,
            )
            await enqueue(conn, Topic.NUDGES, [(nudge.participant_id, event)])
            return
        dispatches = row["dispatches"] + 1
        if result.permanent or dispatches >= self._max:
            await repository.mark_failed(conn, nid, result.detail)
            await repository.journey(
                conn, nid, "failed", now, f"after {dispatches} dispatches: {result.detail}"
            )
            return
        later = now + self._retry_after * 2 ** (dispatches - 1)
        await repository.retry_later(conn, nid, later, result.detail)
        await repository.journey(
            conn, nid, "retry", now, f"{result.detail}; next at {later.isoformat()}"
        )

    async def drain(self) -> int:
        """Dispatch until fewer than a batch were due: one pass of the periodic loop
        (`Runtime.loops`, which logs a failure). Returns how many went out."""
        total = 0
        while True:
            sent = await self.dispatch_once()
            total += sent
            if sent < self._batch:
                return total
