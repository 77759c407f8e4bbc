"""The outbox relay never skips a row, even when transactions commit out of id order."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence

import pytest
import structlog.testing
from trialstream.db import create_pool, migrate
from trialstream.events.participants import ParticipantState
from trialstream.events.topics import Topic
from trialstream.outbox import OutboxRelay, enqueue
from trialstream.producer import KeyedRecord

pytestmark = pytest.mark.integration


async def test_concurrent_writers_committing_out_of_order_lose_nothing(database_url: str) -> None:
    await migrate(database_url, schema="outboxtest", directories=[])
    pool = await create_pool(database_url, schema="outboxtest", max_size=30)
    published: list[bytes] = []

    async def publish(messages: Sequence[KeyedRecord]) -> None:
        await asyncio.sleep(random.uniform(0, 0.005))  # a broker round trip
        published.extend(m.payload for m in messages)

    relays = [OutboxRelay(pool, publish, batch_size=7, idle_seconds=0.001) for _ in range(2)]
    stop = asyncio.Event()
    relay_tasks = [asyncio.create_task(r.run(stop)) for r in relays]
    rng = random.Random(3)

    async def writer(n: int) -> list[bytes]:
        written = []
        for i in range(25):
            event = ParticipantState(participant_id=f"P-{n}-{i}", site_id="s1")
            async with pool.acquire() as conn, conn.transaction():
                await enqueue(conn, Topic.PARTICIPANTS, [(event.participant_id, event)])
                # Hold the transaction open: later ids commit before this one.
                await asyncio.sleep(rng.uniform(0, 0.02))
            written.append(event.model_dump_json().encode())
        return written

    try:
        batches = await asyncio.gather(*(writer(n) for n in range(12)))
        expected = {payload for batch in batches for payload in batch}
        for _ in range(200):
            if expected <= set(published):
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.gather(*relay_tasks)
        unsent = await pool.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
        await pool.close()
    assert expected <= set(published), f"{len(expected - set(published))} events never relayed"
    assert unsent == 0
    assert len(published) == len(expected), (
        "row locks must keep two relays from sending a row twice"
    )


async def test_a_failed_publish_leaves_rows_for_the_next_attempt(database_url: str) -> None:
    await migrate(database_url, schema="outboxtest", directories=[])
    pool = await create_pool(database_url, schema="outboxtest")
    calls = 0
    sent: list[bytes] = []

    async def flaky(messages: Sequence[KeyedRecord]) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("broker unreachable")
        sent.extend(m.payload for m in messages)

    event = ParticipantState(participant_id="P-flaky", site_id="s1")
    async with pool.acquire() as conn, conn.transaction():
        await enqueue(conn, Topic.PARTICIPANTS, [(event.participant_id, event)])
    relay = OutboxRelay(pool, flaky)
    try:
        with pytest.raises(OSError, match="unreachable"):
            await relay.relay_once()
        assert await relay.relay_once() == 1
    finally:
        await pool.close()
    assert sent == [event.model_dump_json().encode()]


async def test_each_relayed_batch_is_logged_with_its_event_ids(database_url: str) -> None:
    await migrate(database_url, schema="outboxlog", directories=[])
    pool = await create_pool(database_url, schema="outboxlog", max_size=2)
    events = [ParticipantState(participant_id=f"P-log-{i}", site_id="s1") for i in range(3)]
    try:
        async with pool.acquire() as conn, conn.transaction():
            await enqueue(conn, Topic.PARTICIPANTS, [(e.participant_id, e) for e in events])

        async def publish(_: Sequence[KeyedRecord]) -> None:
            return None

        with structlog.testing.capture_logs() as logs:
            assert await OutboxRelay(pool, publish).relay_once() == 3
    finally:
        await pool.close()
    published = [entry for entry in logs if entry["event"] == "events published"]
    assert published == [
        {
            "event": "events published",
            "log_level": "info",
            "topic": str(Topic.PARTICIPANTS),
            "count": 3,
            "event_ids": [str(e.event_id) for e in events],
        }
    ]


async def test_rows_committed_before_shutdown_are_sent_by_the_last_pass(
    database_url: str,
) -> None:
    await migrate(database_url, schema="outboxtest", directories=[])
    pool = await create_pool(database_url, schema="outboxtest")
    published: list[bytes] = []

    async def publish(messages: Sequence[KeyedRecord]) -> None:
        published.extend(m.payload for m in messages)

    # A relay that would not look again for an hour: only its last pass can send the rows.
    relay = OutboxRelay(pool, publish, batch_size=5, idle_seconds=3600)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        await asyncio.sleep(0.1)  # it found nothing and sleeps
        events = [ParticipantState(participant_id=f"P-{i}", site_id="s1") for i in range(12)]
        async with pool.acquire() as conn, conn.transaction():
            await enqueue(conn, Topic.PARTICIPANTS, [(e.participant_id, e) for e in events])
        stop.set()
        await task
        unsent = await pool.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
    finally:
        await pool.close()
    assert (len(published), unsent) == (12, 0)
