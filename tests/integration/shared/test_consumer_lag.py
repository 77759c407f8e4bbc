"""The lag gauge an operator scales on, on the real broker: it covers every partition the
process owns, including ones no batch has come from, and it shows a consumer falling
behind while its handler is stuck on a batch (not only once the batch is done)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from helpers import eventually
from prometheus_client import REGISTRY
from pydantic import BaseModel
from trialstream.consumer import BatchConsumer, refresh_lag, subscribe_batches
from trialstream.events.deadletter import DeadLetter
from trialstream.events.topics import Topic
from trialstream.kafka import make_broker

pytestmark = pytest.mark.integration
PARTITIONS = 3


class Tick(BaseModel):
    n: int


async def test_lag_covers_every_owned_partition_and_grows_while_a_batch_is_stuck(
    kafka: str,
) -> None:
    topic = Topic.READINGS  # a fresh broker per test: this test owns the topic
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(str(topic), num_partitions=PARTITIONS, replication_factor=1)]
        )
    finally:
        await admin.close()

    group = f"lag-{uuid.uuid4().hex[:8]}"
    release, handled = asyncio.Event(), asyncio.Event()

    async def handle(events: Sequence[Tick]) -> None:
        handled.set()
        await release.wait()  # stuck until the test has looked at the gauge

    async def no_dead_letters(letters: Sequence[DeadLetter]) -> None:
        raise AssertionError(f"nothing here is malformed: {letters}")

    broker = make_broker(kafka, client_id="lag-test")
    subscribe_batches(
        broker,
        topic,
        BatchConsumer(model=Tick, group=group, handle=handle, send_dead_letters=no_dead_letters),
        session_timeout_ms=6000,
        max_records=1,
    )

    def lag(partition: int) -> float | None:
        labels = {"group": group, "topic": str(topic), "partition": str(partition)}
        return REGISTRY.get_sample_value("trialstream_consumer_lag", labels)

    async def lags() -> list[float | None] | None:
        await refresh_lag(broker)
        found = [lag(p) for p in range(PARTITIONS)]
        return found if None not in found else None

    await broker.start()
    producer = AIOKafkaProducer(bootstrap_servers=kafka)
    await producer.start()
    try:
        # No record anywhere yet, so no batch has run: every owned partition still reports.
        assert await eventually(lags) == [0.0] * PARTITIONS

        # One by one, apart: the consumer fetches the first alone, and its fetcher does not
        # fetch that partition again while the record waits, so the ends it last saw are
        # stale. The gauge must still show the four behind (it asks the broker).
        for n in range(5):
            await producer.send_and_wait(
                str(topic), Tick(n=n).model_dump_json().encode(), partition=1
            )
            await asyncio.sleep(0.2)
        await asyncio.wait_for(handled.wait(), 20)

        # One record taken (max_records=1), its handler stuck: the other four are behind.
        async def behind() -> float | None:
            await refresh_lag(broker)
            return lag(1) if lag(1) == 4.0 else None

        assert await eventually(behind) == 4.0
        assert (lag(0), lag(2)) == (0.0, 0.0)

        # Released, the rest is consumed and the gauge comes back to 0.
        release.set()

        async def caught_up() -> bool:
            await refresh_lag(broker)
            return lag(1) == 0.0

        assert await eventually(caught_up)
    finally:
        release.set()
        await producer.stop()
        await broker.stop()
