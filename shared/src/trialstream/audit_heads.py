"""Audit chain heads published outside the database (docs/audit.md, decision 0070).

Each service process sends its chain's head to the compacted `audit-heads` topic on a
schedule, when it has moved. The database's administrators can rewrite a chain's tail or
delete rows from its end and leave a consistent chain; the head kept by the broker shows
it (`trialstream audit verify --published`). Replicas each publish: a head only grows, so
whichever of theirs the topic keeps last is a true head of the chain.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import asyncpg
import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from trialstream.audit_verify import Head
from trialstream.events.audit import AuditHeadPublished
from trialstream.events.topics import Topic
from trialstream.kafka_security import KafkaSecurity
from trialstream.producer import KeyedRecord

log = structlog.get_logger(__name__)

_HEAD = "SELECT seq, hash FROM audit_trail ORDER BY seq DESC LIMIT 1"


@dataclass
class HeadPublisher:
    service: str
    pool: Callable[[], asyncpg.Pool]
    send: Callable[[Sequence[KeyedRecord]], Awaitable[None]]
    last: Head | None = None

    async def publish(self) -> Head | None:
        """Send the current head if it moved since this process last sent one."""
        row = await self.pool().fetchrow(_HEAD)
        if row is None:
            return None
        head = Head(row["seq"], row["hash"])
        if head != self.last:
            event = AuditHeadPublished(service=self.service, seq=head.seq, hash=head.hash)
            payload = event.model_dump_json().encode()
            await self.send([KeyedRecord(str(Topic.AUDIT_HEADS), self.service, payload)])
            self.last = head
        return head


async def published_heads(bootstrap_servers: str, *, timeout_s: float = 30.0) -> dict[str, Head]:
    """The latest head per service on the topic: read from the start to the end offsets
    seen when reading began (no consumer group, nothing committed)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **KafkaSecurity().client_options(),
    )
    heads: dict[str, Head] = {}
    try:
        await consumer.start()
        await consumer.topics()  # metadata for every topic, so its partitions are known
        partitions = consumer.partitions_for_topic(str(Topic.AUDIT_HEADS)) or set()
        assigned = [TopicPartition(str(Topic.AUDIT_HEADS), p) for p in sorted(partitions)]
        if not assigned:
            return heads
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        ends = await consumer.end_offsets(assigned)
        async with asyncio.timeout(timeout_s):
            for tp in assigned:
                while await consumer.position(tp) < ends[tp]:
                    batch = await consumer.getmany(tp, timeout_ms=1000)
                    for record in batch.get(tp, []):
                        _keep(heads, record.value)
    finally:
        await consumer.stop()
    return heads


def _keep(heads: dict[str, Head], value: bytes | None) -> None:
    if value is None:
        return
    try:
        event = AuditHeadPublished.model_validate_json(value)
    except ValidationError as exc:
        log.warning("unreadable audit head skipped", errors=exc.error_count())
        return
    known = heads.get(event.service)
    if known is None or event.seq >= known.seq:  # replicas may send a moment out of order
        heads[event.service] = Head(event.seq, event.hash)
