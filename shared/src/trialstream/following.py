"""Following a compacted topic whole, in every process: no consumer group (a group would
hand each replica only some partitions), every partition from the beginning, applied in
memory. For small, platform-wide state every process needs all of: ended staff sessions
and revoked people (`staff-access`), study definitions (`studies`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import TypeAdapter, ValidationError

from trialstream.events.topics import Topic
from trialstream.kafka_security import KafkaSecurity

log = structlog.get_logger(__name__)
T = TypeVar("T")


class TopicFollower(Generic[T]):
    """`poll()` (from a periodic loop) applies every record that arrived since the last
    poll; a record that does not decode is logged and skipped. `caught_up` turns true once
    every record that was on the topic when the follower started has been applied: until
    then, "not announced" may only mean "not read yet"."""

    def __init__(
        self,
        bootstrap_servers: str,
        topic: Topic,
        contract: TypeAdapter[T],
        apply: Callable[[T], None],
        *,
        fetch_max_wait_ms: int,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.topic = topic
        self.contract = contract
        self.apply = apply
        self._consumer: AIOKafkaConsumer | None = None
        self._ends: dict[TopicPartition, int] = {}
        self.caught_up = False

    async def poll(self) -> int:
        if self._consumer is None:
            self._consumer = await self._start()
        batches = await self._consumer.getmany(timeout_ms=200, max_records=10_000)
        applied = 0
        for records in batches.values():
            for record in records:
                try:
                    self.apply(self.contract.validate_json(record.value or b""))
                    applied += 1
                except ValidationError:
                    log.warning(
                        "unreadable record skipped", topic=str(self.topic), offset=record.offset
                    )
        if not self.caught_up:
            consumer = self._consumer
            self.caught_up = all(
                [await consumer.position(tp) >= end for tp, end in self._ends.items()]
            )
        return applied

    async def _start(self) -> AIOKafkaConsumer:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # a quiet topic: the broker may hold an empty fetch this long (decision 0095)
            fetch_max_wait_ms=self.fetch_max_wait_ms,
            **KafkaSecurity().client_options(),
        )
        await consumer.start()
        try:
            await consumer.topics()
            partitions = sorted(consumer.partitions_for_topic(str(self.topic)) or ())
            if not partitions:
                raise ConnectionError(f"topic {self.topic} has no partitions yet")
            assigned = [TopicPartition(str(self.topic), p) for p in partitions]
            consumer.assign(assigned)
            await consumer.seek_to_beginning(*assigned)
            self._ends = await consumer.end_offsets(assigned)
        except BaseException:
            await consumer.stop()
            raise
        return consumer

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
