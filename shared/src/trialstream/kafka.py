"""Broker construction in one place, so client options (acks, offsets) are never forgotten."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import structlog
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from faststream.kafka import KafkaBroker

from trialstream.events.topics import COMPACTED, Topic
from trialstream.kafka_security import KafkaSecurity

log = structlog.get_logger(__name__)

_TOPIC_EXISTS = 36


def make_broker(
    bootstrap_servers: str, *, client_id: str, security: KafkaSecurity | None = None
) -> KafkaBroker:
    """acks=all: a publish returns only once every in-sync replica has the record.
    No idempotent producer: the embedded broker lacks it, and consumers dedupe anyway.
    TLS and SASL from TRIALSTREAM_KAFKA_* unless `security` is given."""
    return KafkaBroker(
        bootstrap_servers,
        client_id=client_id,
        security=(security or KafkaSecurity()).faststream(),
        acks="all",
        enable_idempotence=False,
        linger_ms=2,
        max_request_size=8 * 1024 * 1024,
        logger=None,
    )


async def start_broker(broker: KafkaBroker) -> None:
    """Start `broker` with its consumer groups joining at the same time.

    FastStream's `broker.start()` starts subscribers one after another, and each Kafka
    consumer's start waits for its group join: about a second on the embedded broker and up
    to the group's initial rebalance delay on Apache Kafka. A service with eight groups
    (monitoring) took eight seconds to start that way, on every restart and every replica
    added; joined together, it is one join.
    """
    await broker.connect()
    joins = [asyncio.create_task(subscriber.start()) for subscriber in broker.subscribers]
    try:
        await asyncio.gather(*joins)
    except BaseException:
        # The first failure is raised as it is (as broker.start() would); the other joins
        # are cancelled, and the caller's broker.stop() closes what did start.
        for join in joins:
            join.cancel()
        await asyncio.gather(*joins, return_exceptions=True)
        raise
    for publisher in broker.publishers:
        await publisher.start()
    broker.running = True


async def ensure_topics(
    bootstrap_servers: str, *, partitions: int, topics: Iterable[Topic] = tuple(Topic)
) -> list[str]:
    """Create missing topics (keyed topics need their partitions before the first
    publish, or a broker may auto-create them with one). Returns the names created."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers,
        client_id="trialstream-admin",
        **KafkaSecurity().client_options(),
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(
                name=str(t),
                num_partitions=partitions,
                replication_factor=1,
                topic_configs={"cleanup.policy": "compact"} if t in COMPACTED else {},
            )
            for t in topics
            if str(t) not in existing
        ]
        if not wanted:
            return []
        response = await admin.create_topics(wanted)
        created = []
        for name, code, message in response.topic_errors:
            if code == 0:
                created.append(name)
            elif code != _TOPIC_EXISTS:
                raise RuntimeError(f"could not create topic {name}: {message} (error {code})")
        log.info("topics created", topics=created)
        return created
    finally:
        await admin.close()
