"""Every service's outbox and inbox stay bounded: the relay deletes sent outbox rows and
inbox rows past their retention, and keeps unsent rows and recent ones (decision 0075)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import pytest
from trialstream.db import create_pool, migrate
from trialstream.events.participants import ParticipantState
from trialstream.events.topics import Topic
from trialstream.inbox import claim_new, forget_older_than
from trialstream.outbox import OutboxRelay, enqueue
from trialstream.producer import KeyedRecord

pytestmark = pytest.mark.integration

DAY = 86_400


async def nothing(messages: Sequence[KeyedRecord]) -> None:
    return None


async def test_prune_deletes_old_sent_and_old_inbox_rows_and_keeps_the_rest(
    database_url: str,
) -> None:
    await migrate(database_url, schema="pruningtest", directories=[])
    pool = await create_pool(database_url, schema="pruningtest", max_size=4)
    try:
        async with pool.acquire() as conn, conn.transaction():
            events = [ParticipantState(participant_id=f"P-{i}", site_id="s1") for i in range(4)]
            await enqueue(conn, Topic.PARTICIPANTS, [(e.participant_id, e) for e in events])
            old, recent = [uuid.uuid4() for _ in range(3)], [uuid.uuid4() for _ in range(2)]
            await claim_new(conn, "c1", old + recent)
            await conn.execute(
                "UPDATE inbox SET processed_at = now() - interval '9 days' WHERE event_id = ANY($1)",
                old,
            )
        ids = [r["id"] for r in await pool.fetch("SELECT id FROM outbox ORDER BY id")]
        # Sent two days ago, sent an hour ago, and two never sent (one of them old).
        await pool.execute(
            "UPDATE outbox SET sent_at = now() - interval '2 days' WHERE id = $1", ids[0]
        )
        await pool.execute(
            "UPDATE outbox SET sent_at = now() - interval '1 hour' WHERE id = $1", ids[1]
        )
        await pool.execute(
            "UPDATE outbox SET created_at = now() - interval '30 days' WHERE id = $1", ids[2]
        )
        relay = OutboxRelay(pool, nothing, keep_sent_seconds=DAY, keep_inbox_seconds=8 * DAY)
        assert await relay.prune() == (1, 3)
        left = [r["id"] for r in await pool.fetch("SELECT id FROM outbox ORDER BY id")]
        assert left == ids[1:]
        seen = {r["event_id"] for r in await pool.fetch("SELECT event_id FROM inbox")}
        assert seen == set(recent)
        async with pool.acquire() as conn, conn.transaction():
            # A recent event redelivered is still dropped; the forgotten ones are not known.
            assert await claim_new(conn, "c1", recent) == set()
        assert await relay.prune() == (0, 0)
    finally:
        await pool.close()


async def test_forgetting_in_slices_removes_a_backlog_larger_than_a_slice(
    database_url: str,
) -> None:
    await migrate(database_url, schema="pruningslices", directories=[])
    pool = await create_pool(database_url, schema="pruningslices", max_size=2)
    try:
        async with pool.acquire() as conn, conn.transaction():
            await claim_new(conn, "c1", [uuid.uuid4() for _ in range(25)])
            await conn.execute("UPDATE inbox SET processed_at = now() - interval '10 days'")
            await claim_new(conn, "c1", [uuid.uuid4()])
        async with pool.acquire() as conn:
            assert await forget_older_than(conn, 8 * DAY, slice_rows=10) == 25
        assert await pool.fetchval("SELECT count(*) FROM inbox") == 1
    finally:
        await pool.close()


async def test_the_running_relay_prunes_when_due(database_url: str) -> None:
    await migrate(database_url, schema="pruningloop", directories=[])
    pool = await create_pool(database_url, schema="pruningloop", max_size=4)
    relay = OutboxRelay(
        pool, nothing, idle_seconds=0.01, keep_sent_seconds=DAY, prune_every_seconds=0.05
    )
    stop = asyncio.Event()
    try:
        async with pool.acquire() as conn, conn.transaction():
            event = ParticipantState(participant_id="P-1", site_id="s1")
            await enqueue(conn, Topic.PARTICIPANTS, [(event.participant_id, event)])
        task = asyncio.create_task(relay.run(stop))
        for _ in range(100):  # relayed now, then pruned once it counts as old
            if await pool.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NOT NULL"):
                break
            await asyncio.sleep(0.02)
        await pool.execute("UPDATE outbox SET sent_at = now() - interval '2 days'")
        for _ in range(100):
            if not await pool.fetchval("SELECT count(*) FROM outbox"):
                break
            await asyncio.sleep(0.02)
        stop.set()
        await task
        assert await pool.fetchval("SELECT count(*) FROM outbox") == 0
    finally:
        stop.set()
        await pool.close()
