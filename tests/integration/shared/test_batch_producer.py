"""The bulk producer puts each key where a per-record publish would, in order, on the real
broker; it splits large sends into several batches and refuses a record no batch holds."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from trialstream.kafka import make_broker
from trialstream.producer import BatchProducer, KeyedRecord, RecordTooLarge
from trialstream.publishing import publish_raw

pytestmark = pytest.mark.integration


@pytest.fixture
async def topic(kafka: str) -> str:
    name = f"test-batch-producer-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=6, replication_factor=1)])
    finally:
        await admin.close()
    return name


@pytest.fixture
async def producer(kafka: str) -> AsyncIterator[BatchProducer]:
    p = BatchProducer(kafka, client_id="test")
    await p.start()
    try:
        yield p
    finally:
        await p.stop()


async def everything_on(kafka: str, topic: str, expected: int) -> list[tuple[int, bytes, dict]]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=kafka, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    out: list[tuple[int, bytes, dict]] = []
    try:
        for _ in range(60):
            for records in (await consumer.getmany(timeout_ms=500)).values():
                out.extend((r.partition, r.key, dict(r.headers)) for r in records)  # type: ignore[misc]
            if len(out) >= expected:
                break
    finally:
        await consumer.stop()
    return out


def message(topic: str, key: str, n: int, size: int = 0) -> KeyedRecord:
    return KeyedRecord(topic, key, json.dumps({"n": n, "pad": "x" * size}).encode())


async def test_each_key_lands_where_a_per_record_publish_puts_it_and_keeps_its_order(
    kafka: str, topic: str, producer: BatchProducer
) -> None:
    keys = [f"P-{i}" for i in range(12)]
    broker = make_broker(kafka, client_id="test-reference")
    await broker.start()
    try:  # the reference placement: FastStream's per-record publish, one record per key
        await publish_raw(broker, [message(topic, k, -1) for k in keys])
    finally:
        await broker.stop()
    await producer.send([message(topic, k, n) for n in range(50) for k in keys])

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=kafka, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    seen: dict[str, list[tuple[int, int]]] = {k: [] for k in keys}
    try:
        for _ in range(60):
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for r in records:
                    assert r.key is not None
                    assert dict(r.headers)["content-type"] == b"application/json"
                    seen[r.key.decode()].append((r.partition, json.loads(r.value)["n"]))
            if sum(map(len, seen.values())) >= 51 * len(keys):
                break
    finally:
        await consumer.stop()
    for key, found in seen.items():
        partitions = {p for p, _ in found}
        assert len(partitions) == 1, f"{key} was spread over {partitions}"
        assert [n for _, n in found] == list(range(-1, 50)), f"{key} out of order"
    assert len({found[0][0] for found in seen.values()}) > 1, (
        "12 keys should use several partitions"
    )


async def test_a_send_larger_than_one_batch_is_split_and_fully_delivered(
    kafka: str, topic: str, producer: BatchProducer
) -> None:
    # 3,000 records of about 1 kB for one key: about 3 MB, three or more batches.
    await producer.send([message(topic, "P-big", n, 1000) for n in range(3000)])
    assert len(await everything_on(kafka, topic, 3000)) == 3000


async def test_a_record_no_batch_can_hold_is_refused(topic: str, producer: BatchProducer) -> None:
    with pytest.raises(RecordTooLarge, match="exceeds"):
        await producer.send([message(topic, "P-huge", 0, 1_200_000)])
