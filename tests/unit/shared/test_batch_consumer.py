"""The consumer policy: decode per record, dead-letter poison, retry transient failures."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from faststream.kafka import KafkaBroker
from prometheus_client import REGISTRY
from trialstream import consumer as consumer_module
from trialstream.consumer import BatchConsumer, RetryPolicy
from trialstream.events.deadletter import DeadLetter
from trialstream.events.readings import Metric, ReadingReceived

FAST = RetryPolicy(attempts_before_split=2, first_backoff_seconds=0.0)


def reading(value: float = 70.0) -> ReadingReceived:
    return ReadingReceived(
        participant_id="P-0001",
        device_id="d1",
        metric=Metric.HEART_RATE,
        value=value,
        unit="beats/min",
        measured_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def record(value: bytes | None, offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic="t",
        partition=0,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=b"P-0001",
        value=value,
        checksum=None,
        serialized_key_size=6,
        serialized_value_size=len(value or b""),
        headers=(),
    )


class Recorder:
    def __init__(
        self, fail: Sequence[BaseException] = (), poison: set[float] | None = None
    ) -> None:
        self.fail = list(fail)
        self.poison = poison or set()
        self.handled: list[list[float]] = []
        self.dead: list[DeadLetter] = []

    async def handle(self, events: Sequence[ReadingReceived]) -> None:
        if self.fail:
            raise self.fail.pop(0)
        if any(e.value in self.poison for e in events):
            raise ValueError("cannot apply this event")
        self.handled.append([e.value for e in events])

    async def send_dead(self, letters: Sequence[DeadLetter]) -> None:
        self.dead.extend(letters)

    def consumer(self) -> BatchConsumer[ReadingReceived]:
        return BatchConsumer(
            model=ReadingReceived,
            group="g",
            handle=self.handle,
            send_dead_letters=self.send_dead,
            retry=FAST,
        )


async def test_undecodable_records_are_dead_lettered_and_the_rest_processed() -> None:
    rec = Recorder()
    good = reading(71).model_dump_json().encode()
    missing_value = reading().model_dump_json().replace('"value":70.0,', "").encode()
    await rec.consumer().process(
        [
            record(b"\xff\xfe not json", 1),
            record(good, 2),
            record(missing_value, 3),
            record(None, 4),
        ]
    )
    assert rec.handled == [[71.0]]
    assert [d.offset for d in rec.dead] == [1, 3, 4]
    assert rec.dead[0].payload_encoding == "base64"
    assert "value: Field required" in rec.dead[1].reason
    assert rec.dead[2].reason.startswith("empty record value")


async def test_transient_failures_are_retried_not_dead_lettered() -> None:
    rec = Recorder(fail=[ConnectionRefusedError(), OSError("db restarting"), TimeoutError()] * 2)
    await rec.consumer().process([record(reading(70).model_dump_json().encode(), 1)])
    assert rec.handled == [[70.0]]
    assert rec.dead == []


async def test_a_poison_event_is_isolated_and_dead_lettered_alone() -> None:
    rec = Recorder(poison={66.0})
    records = [
        record(reading(v).model_dump_json().encode(), i) for i, v in enumerate([65.0, 66.0, 67.0])
    ]
    await rec.consumer().process(records)
    assert rec.handled == [[65.0], [67.0]]
    assert [(d.offset, d.error_type) for d in rec.dead] == [(1, "ValueError")]
    assert rec.dead[0].reason == "cannot apply this event"


async def test_a_bad_timezone_is_dead_lettered_not_retried_forever() -> None:
    # ZoneInfo("Europe") raises IsADirectoryError, an OSError: once taken for a network
    # failure, it kept a consumer retrying the batch forever and stalled the partition.
    class BadZone(Recorder):
        async def handle(self, events: Sequence[ReadingReceived]) -> None:
            if any(e.value == 66.0 for e in events):
                raise IsADirectoryError(21, "Is a directory", "/usr/share/zoneinfo/Europe")
            await super().handle(events)

    rec = BadZone()
    records = [
        record(reading(v).model_dump_json().encode(), i) for i, v in enumerate([65.0, 66.0, 67.0])
    ]
    async with asyncio.timeout(5):
        await rec.consumer().process(records)
    assert rec.handled == [[65.0], [67.0]]
    assert [(d.offset, d.error_type) for d in rec.dead] == [(1, "IsADirectoryError")]


async def test_a_batch_that_fails_once_is_retried_whole() -> None:
    rec = Recorder(fail=[RuntimeError("flaky")])
    records = [record(reading(v).model_dump_json().encode(), i) for i, v in enumerate([65.0, 66.0])]
    await rec.consumer().process(records)
    assert rec.handled == [[65.0, 66.0]]


@pytest.mark.parametrize("attempt", [1, 2, 5, 30])
def test_backoff_grows_and_is_capped(attempt: int) -> None:
    policy = RetryPolicy(first_backoff_seconds=0.2, max_backoff_seconds=10)
    assert 0.2 <= policy.backoff(attempt) <= 10
    assert policy.backoff(attempt + 1) >= policy.backoff(attempt)


def test_dead_letter_keeps_source_coordinates() -> None:
    rec = Recorder()
    _, dead = rec.consumer().decode([record(b"{}", 42)])
    assert (dead[0].source_topic, dead[0].partition, dead[0].offset, dead[0].key) == (
        "t",
        0,
        42,
        "P-0001",
    )
    assert uuid.UUID(str(dead[0].event_id))


async def test_lag_refresh_keeps_going_after_a_failed_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[int] = []

    async def flaky(broker: object) -> None:
        calls.append(len(calls))
        if len(calls) == 1:
            raise RuntimeError("metadata not ready")

    monkeypatch.setattr(consumer_module, "refresh_lag", flaky)
    task = asyncio.create_task(consumer_module.keep_lag_current(KafkaBroker(), 0.01))
    try:
        async with asyncio.timeout(5):
            while len(calls) < 3:
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class _Rebalanced(AIOKafkaConsumer):  # type: ignore[misc]
    """A consumer that loses partition 1 to another replica while its lag is being read."""

    def __init__(self) -> None:  # no client: only what record_lag asks for
        self.owned = {TopicPartition("t", 0), TopicPartition("t", 1)}

    def assignment(self) -> set[TopicPartition]:
        return set(self.owned)

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        self.owned.discard(TopicPartition("t", 1))  # the rebalance, during the request
        return dict.fromkeys(partitions, 10)

    async def position(self, tp: TopicPartition) -> int:
        return 7


async def test_a_partition_moved_away_while_lag_is_read_gets_no_series() -> None:
    group = f"g-{uuid.uuid4().hex[:6]}"
    await consumer_module.record_lag(_Rebalanced(), group, ask_broker=True)

    def lag(partition: int) -> float | None:
        labels = {"group": group, "topic": "t", "partition": str(partition)}
        return REGISTRY.get_sample_value("trialstream_consumer_lag", labels)

    assert lag(0) == 3.0
    assert lag(1) is None, "a series for a partition another replica now owns"


class _Moved(_Rebalanced):
    """Partition 1 left between two reads, and no revocation told the listener."""

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return dict.fromkeys(partitions, 10)


async def test_the_next_read_drops_the_series_of_a_partition_that_left_unannounced() -> None:
    group = f"g-{uuid.uuid4().hex[:6]}"
    kafka = _Moved()

    def lag(partition: int) -> float | None:
        labels = {"group": group, "topic": "t", "partition": str(partition)}
        return REGISTRY.get_sample_value("trialstream_consumer_lag", labels)

    await consumer_module.record_lag(kafka, group, ask_broker=True)
    assert (lag(0), lag(1)) == (3.0, 3.0)
    kafka.owned.discard(TopicPartition("t", 1))
    await consumer_module.record_lag(kafka, group, ask_broker=True)  # the periodic refresh
    assert (lag(0), lag(1)) == (3.0, None)
