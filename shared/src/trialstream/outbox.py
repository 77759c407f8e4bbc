"""Transactional outbox: write events with the state change, relay them to Kafka after commit.

The relay claims unsent rows with FOR UPDATE SKIP LOCKED inside a transaction,
publishes them, waits for the broker's acks, then marks them sent. Polling on
"id > last id seen" would skip rows from transactions that commit out of order;
row locks do not. Several relays (replicas) share the work; a crash between the
broker ack and the commit re-sends those rows, which consumers dedupe by event_id.

Bounded tables (decision 0075): every `prune_every_seconds` the relay deletes sent rows
older than `keep_sent_seconds` and the service's inbox rows older than `keep_inbox_seconds`
(the redelivery horizon, trialstream.inbox), in slices; unsent rows are never deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Sequence

import asyncpg
import structlog

from trialstream.db import DbConnection
from trialstream.events.base import Event
from trialstream.events.topics import Topic
from trialstream.inbox import KEEP_SECONDS, forget_older_than
from trialstream.producer import KeyedRecord

log = structlog.get_logger(__name__)

_INSERT = "INSERT INTO outbox (topic, key, payload) SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[])"
_CLAIM = """
SELECT id, topic, key, payload FROM outbox
WHERE sent_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED
"""
_MARK_SENT = "UPDATE outbox SET sent_at = now() WHERE id = ANY($1::bigint[])"
_PURGE = """
DELETE FROM outbox WHERE id = ANY(ARRAY(
    SELECT id FROM outbox WHERE sent_at < now() - make_interval(secs => $1) LIMIT $2
))
"""
PURGE_SLICE = 10_000


# Publishes every message and returns once the broker acknowledged all of them.
PublishMany = Callable[[Sequence[KeyedRecord]], Awaitable[None]]


async def enqueue(
    conn: DbConnection, topic: Topic, events: Sequence[tuple[str | None, Event]]
) -> None:
    """Add (key, event) pairs to the outbox on `conn`, inside the caller's transaction."""
    if not events:
        return
    await conn.execute(
        _INSERT,
        [str(topic)] * len(events),
        [key for key, _ in events],
        [event.model_dump_json().encode() for _, event in events],
    )


class OutboxRelay:
    def __init__(
        self,
        pool: asyncpg.Pool,
        publish: PublishMany,
        *,
        batch_size: int = 500,
        idle_seconds: float = 0.05,
        max_idle_seconds: float = 0.5,
        keep_sent_seconds: float = 86_400,
        keep_inbox_seconds: float = KEEP_SECONDS,
        prune_every_seconds: float = 3_600,
    ) -> None:
        self._pool = pool
        self._publish = publish
        self._batch_size = batch_size
        self._idle = idle_seconds
        self._max_idle = max(idle_seconds, max_idle_seconds)
        self._keep_sent = keep_sent_seconds
        self._keep_inbox = keep_inbox_seconds
        self._prune_every = prune_every_seconds
        self._pruned_at = time.monotonic()  # the first pass an interval after the start

    async def relay_once(self) -> int:
        """Relay up to one batch; returns how many rows were sent."""
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(_CLAIM, self._batch_size)
            if not rows:
                return 0
            messages = [KeyedRecord(r["topic"], r["key"], bytes(r["payload"])) for r in rows]
            await self._publish(messages)
            await conn.execute(_MARK_SENT, [r["id"] for r in rows])
        _log_relayed(messages)
        return len(rows)

    async def purge_sent(self) -> int:
        """Delete sent rows older than `keep_sent_seconds`; returns how many went."""
        removed = 0
        async with self._pool.acquire() as conn:
            while True:
                status = await conn.execute(_PURGE, self._keep_sent, PURGE_SLICE)
                count = int(str(status).rsplit(" ", 1)[-1])
                removed += count
                if count < PURGE_SLICE:
                    return removed

    async def prune(self) -> tuple[int, int]:
        """Old sent outbox rows and old inbox rows; returns (outbox, inbox) rows deleted."""
        sent = await self.purge_sent()
        async with self._pool.acquire() as conn:
            seen = await forget_older_than(conn, self._keep_inbox)
        if sent or seen:
            log.info("delivery tables pruned", outbox_rows=sent, inbox_rows=seen)
        return sent, seen

    async def _prune_when_due(self) -> None:
        if time.monotonic() - self._pruned_at >= self._prune_every:
            self._pruned_at = time.monotonic()  # a failed pass waits an interval too
            await self.prune()

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until `stop` is set; a failure is logged and retried, never dropped. After
        a pass that found nothing the next waits twice as long, up to `max_idle_seconds`;
        one that sent something resets the wait to `idle_seconds`. An idle service then
        asks its database a few times a second, not twenty (decision 0095)."""
        failures = 0
        idle = self._idle
        while not stop.is_set():
            try:
                sent = await self.relay_once()
                failures = 0
                await self._prune_when_due()
            except (TimeoutError, OSError, asyncpg.PostgresError, RuntimeError) as exc:
                failures += 1
                log.warning("outbox relay failed, will retry", error=repr(exc), attempt=failures)
                sent = 0
                await _sleep_or_stop(stop, min(0.1 * 2**failures, 5.0))
                continue
            if sent:
                idle = self._idle
            if sent < self._batch_size:
                await _sleep_or_stop(stop, idle)
                if not sent:
                    idle = min(idle * 2, self._max_idle)
        await self.drain()

    async def drain(self, timeout_seconds: float = 5.0) -> None:
        """On shutdown: send what is already committed now rather than at the next start
        (best effort: a row left over is sent by another replica or the next start)."""
        try:
            async with asyncio.timeout(timeout_seconds):
                while await self.relay_once() == self._batch_size:
                    pass
        except (TimeoutError, OSError, asyncpg.PostgresError, RuntimeError) as exc:
            log.warning("outbox not drained at shutdown; the rest goes later", error=repr(exc))


def _log_relayed(messages: Sequence[KeyedRecord], shown: int = 50) -> None:
    """One line per relayed batch naming its events, so an event can be traced from the
    service that decided it to every consumer (whose dead letters name it too)."""
    by_topic: dict[str, list[str]] = {}
    for m in messages:
        try:
            event_id = str(json.loads(m.payload).get("event_id"))
        except (ValueError, AttributeError):
            event_id = "?"
        by_topic.setdefault(m.topic, []).append(event_id)
    for topic, ids in by_topic.items():
        log.info("events published", topic=topic, count=len(ids), event_ids=ids[:shown])


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
