"""The start-up and shut-down every service process repeats, in one place.

Order matters: topics and migrations first (idempotent, safe for replicas that
start together), then the pool, then the broker (its subscribers may use the
pool at once; its consumer groups join together), then the bulk producer and the outbox
relay that uses it; the service then starts its periodic loops (`runtime.loops`).
Shutdown: the loops finish their pass, the broker stops consuming and finishes its
in-flight batch, then the relay makes a last pass over the outbox, then the producer and
the pool close.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

import asyncpg
import structlog
from fastapi import Depends, Request
from faststream.kafka import KafkaBroker
from pydantic import BaseModel, TypeAdapter

from trialstream.audit_heads import HeadPublisher
from trialstream.consumer import (
    BatchConsumer,
    Handle,
    dead_letter_sender,
    keep_lag_current,
    subscribe_batches,
)
from trialstream.db import create_pool, migrate
from trialstream.events.studies import StudyDefined
from trialstream.events.topics import Topic
from trialstream.following import TopicFollower
from trialstream.http import NotReady, ReadyCheck
from trialstream.kafka import ensure_topics, start_broker
from trialstream.loops import Loops
from trialstream.outbox import OutboxRelay
from trialstream.producer import BatchProducer
from trialstream.services import ServiceInfo
from trialstream.settings import ServiceSettings
from trialstream.staff import StaffAccess
from trialstream.studies import StudyRegistry

log = structlog.get_logger(__name__)
E = TypeVar("E", bound=BaseModel)
GC_THRESHOLDS = (50_000, 20, 20)
_STUDY: TypeAdapter[StudyDefined] = TypeAdapter(StudyDefined)


@dataclass
class Runtime:
    """What handlers need at run time; filled in by `running` before any message arrives."""

    settings: ServiceSettings
    broker: KafkaBroker
    # Periodic background work, started by the service inside `running` and stopped by it
    # first; `/readyz` reports a loop that ended (see loops.py).
    loops: Loops = field(default_factory=Loops, repr=False)
    # consumer group -> its topics, as subscribed; checked against ServiceInfo.groups
    subscriptions: dict[str, tuple[Topic, ...]] = field(default_factory=dict, repr=False)
    _pool: asyncpg.Pool | None = field(default=None, repr=False)
    _producer: BatchProducer | None = field(default=None, repr=False)
    # Staff access tokens: the issuer's keys and the revocations, kept current by `running`.
    staff: StaffAccess = field(init=False, repr=False)
    # The studies' definitions, as the studies topic announces them (kept by `running`).
    studies: StudyRegistry = field(default_factory=StudyRegistry, repr=False)

    def __post_init__(self) -> None:
        self.staff = StaffAccess(self.settings)
        self._studies = TopicFollower(
            self.settings.kafka_bootstrap_servers,
            Topic.STUDIES,
            _STUDY,
            self._study_defined,
            fetch_max_wait_ms=self.settings.kafka_quiet_fetch_wait_ms,
        )

    def _study_defined(self, event: StudyDefined) -> None:
        self.studies.apply(event.version, event.definition)

    async def _follow_studies(self) -> None:
        await self._studies.poll()
        self.studies.caught_up = self._studies.caught_up

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("the database pool is not open yet (service not started)")
        return self._pool

    @property
    def producer(self) -> BatchProducer:
        """Bulk keyed publishing (acks=all) for the hot paths; see producer.py."""
        if self._producer is None:
            raise RuntimeError("the producer is not started yet (service not started)")
        return self._producer

    async def check_database(self) -> None:
        async with self.pool.acquire(timeout=2) as conn:
            await conn.fetchval("SELECT 1")

    async def check_broker(self) -> None:
        if not await self.broker.ping(timeout=2):
            raise ConnectionError("Kafka broker did not answer")

    def subscribe(
        self,
        topic: Topic | Sequence[Topic] | Mapping[Topic, type[E]],
        model: type[E],
        group: str,
        handle: Handle[E],
        *,
        max_records: int = 5000,
        consumer: type[BatchConsumer[Any]] = BatchConsumer,
        latency_critical: bool = False,
    ) -> None:
        """Consume `topic` in consumer group `group` in batches, each event decoded into
        `model` and the batch given to `handle`: the delivery policy of consumer.py
        (dead letters, retries, commits after processing, lag) with the service's session
        timeout. Where one group reads several topics with a contract each, `topic` maps
        each topic to its contract (`model` is then their common base, for `handle`).
        The group must be one the service declares in its ServiceInfo.

        Most groups are quiet (a record now and then, or one per upload) and poll at the
        settings' quiet pace; `latency_critical` (the readings on their way to an alert)
        polls every 50 ms (decision 0095)."""
        contracts = dict(topic) if isinstance(topic, Mapping) else {}
        topics = (
            tuple(contracts) if contracts else (topic,) if isinstance(topic, str) else tuple(topic)
        )
        if group in self.subscriptions:
            raise ValueError(f"consumer group {group!r} is subscribed twice")
        self.subscriptions[group] = topics
        batches = consumer(
            model=model,
            group=group,
            handle=handle,
            send_dead_letters=dead_letter_sender(self.broker),
            contracts=contracts,
        )
        subscribe_batches(
            self.broker,
            list(topics),
            batches,
            session_timeout_ms=self.settings.kafka_session_timeout_ms,
            max_records=max_records,
            **(
                {}  # subscribe_batches' own pace: 50 ms polls, 500 ms broker holds
                if latency_critical
                else {
                    "batch_timeout_ms": self.settings.kafka_quiet_poll_ms,
                    "fetch_max_wait_ms": self.settings.kafka_quiet_fetch_wait_ms,
                }
            ),
        )

    @property
    def ready_checks(self) -> list[ReadyCheck]:
        """What `/readyz` asks: the database, the broker, that no loop has stopped, and
        that the studies topic has been read (until then a study's participants would be
        refused or judged by the platform's settings instead of their study's)."""
        return [self.check_database, self.check_broker, self.loops.check, self.check_studies]

    async def check_studies(self) -> None:
        if not self.studies.caught_up:
            raise NotReady("the studies topic has not been read yet")


def current_runtime(request: Request) -> Runtime:
    """FastAPI dependency: the service's Runtime (the composition root puts it on
    `app.state.runtime`), so routers can be module-level."""
    runtime: Runtime = request.app.state.runtime
    return runtime


CurrentRuntime = Annotated[Runtime, Depends(current_runtime)]


def check_groups(info: ServiceInfo, subscribed: Mapping[str, Sequence[Topic]]) -> None:
    """The consumer groups a service joins are the ones its ServiceInfo declares (the
    catalogue and the operators' lag dashboards go by the declaration)."""
    declared = {g.name: set(g.topics) for g in info.groups}
    actual = {name: set(topics) for name, topics in subscribed.items()}
    if declared != actual:
        raise RuntimeError(
            f"{info.name}: consumer groups subscribed {sorted(actual.items())} differ from"
            f" those declared in its ServiceInfo {sorted(declared.items())}"
        )


@asynccontextmanager
async def running(
    info: ServiceInfo, runtime: Runtime, *, relay_outbox: bool
) -> AsyncIterator[Runtime]:
    check_groups(info, runtime.subscriptions)
    settings = runtime.settings
    await ensure_topics(settings.kafka_bootstrap_servers, partitions=settings.topic_partitions)
    await migrate(
        settings.database_owner_url or settings.database_url,
        schema=info.schema,
        directories=[info.migrations],
    )
    runtime._pool = await create_pool(
        settings.database_url,
        schema=info.schema,
        max_size=settings.db_pool_max,
        as_service_role=True,
    )
    stop = asyncio.Event()
    relay_task: asyncio.Task[None] | None = None
    lag_task: asyncio.Task[None] | None = None
    try:
        await start_broker(runtime.broker)
        lag_task = asyncio.create_task(
            keep_lag_current(runtime.broker, settings.lag_refresh_seconds),
            name=f"{info.name}-consumer-lag",
        )
        producer = BatchProducer(settings.kafka_bootstrap_servers, client_id=info.name)
        await producer.start()
        runtime._producer = producer
        heads = HeadPublisher(info.name, lambda: runtime.pool, producer.send)
        runtime.loops.every(f"{info.name}-audit-head", settings.audit_head_seconds, heads.publish)
        staff = runtime.staff
        # Followers and the key refresh only read into memory: cancelled at stop.
        # (The keys are fetched only when due: see refresh_keys.)
        runtime.loops.every("staff-keys", 1.0, staff.refresh_keys, interruptible=True)
        runtime.loops.every("staff-revocations", 0.5, staff.follow_revocations, interruptible=True)
        runtime.loops.every("studies", 1.0, runtime._follow_studies, interruptible=True)
        if relay_outbox:
            relay = OutboxRelay(
                runtime.pool,
                producer.send,
                keep_sent_seconds=settings.keep_sent_outbox_hours * 3600,
                keep_inbox_seconds=settings.keep_inbox_days * 86_400,
            )
            relay_task = asyncio.create_task(relay.run(stop), name=f"{info.name}-outbox-relay")
        # Everything built so far (modules, app, clients) lives as long as the process:
        # frozen, the cyclic collector stops rescanning it on every full collection,
        # which batch consumers (thousands of short-lived events a batch) trigger often.
        # And a young-generation collection every 50,000 allocations instead of 700: a
        # 5,000-record batch allocates hundreds of thousands of objects, nearly all freed
        # by reference counting, and decoding went 1.5x faster (make bench, README).
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
        log.info("service started", service=info.name, replica=settings.replica, port=settings.port)
        yield runtime
    finally:
        # Loops first: they write to the database (and the outbox) while consumers still run.
        await runtime.loops.stop()
        await runtime.staff.stop()
        await runtime._studies.stop()
        if lag_task is not None:
            lag_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await lag_task
        # Consumers first: they finish their in-flight batch and commit, and what those
        # batches wrote to the outbox is still relayed before the relay's last pass.
        await runtime.broker.stop()
        stop.set()
        if relay_task is not None:
            await relay_task
        if runtime._producer is not None:
            await runtime._producer.stop()
            runtime._producer = None
        await runtime.pool.close()
        runtime._pool = None
        log.info("service stopped", service=info.name, replica=settings.replica)
