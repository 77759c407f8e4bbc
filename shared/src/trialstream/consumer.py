"""Our at-least-once batch consumer path: decode per record, retry, dead-letter, then commit.

FastStream gives us batches and manual commits; the policy is ours:
- a record that does not decode into the contract goes to the dead-letter topic
  with the validation errors, and the rest of the batch is processed;
- a transient failure (database or broker unreachable) retries the whole batch
  with backoff, for as long as it takes: nothing is skipped or dead-lettered
  because PostgreSQL restarted;
- any other failure retries a few times, then the batch is split and each event
  retried alone, so only the poison ones are dead-lettered;
- offsets are committed only after the handler's transaction and the dead
  letters were acknowledged. Commits can still fail (and are then re-read), so
  every handler must be idempotent on event_id.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.subscriber.usecase import BatchSubscriber
from prometheus_client import Counter, Gauge, Histogram
from pydantic import BaseModel, ValidationError

from trialstream.events.deadletter import DeadLetter
from trialstream.events.topics import Topic
from trialstream.publishing import publish_events
from trialstream.transient import is_transient

log = structlog.get_logger(__name__)

E = TypeVar("E", bound=BaseModel)

MESSAGES = Counter("trialstream_messages_total", "Records consumed", ["group", "outcome"])
BATCH_SECONDS = Histogram(
    "trialstream_batch_seconds",
    "Time to process one consumed batch, commit included",
    ["group"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
# What an operator scales on: records behind the end of each partition this process owns
# (the broker's high watermark minus our position after the last committed batch).
LAG = Gauge(
    "trialstream_consumer_lag",
    "Records between this consumer's position and the partition end, after its last batch",
    ["group", "topic", "partition"],
)
ASSIGNED = Gauge(
    "trialstream_consumer_assigned_partitions",
    "Partitions of the topic this process owns in its consumer group",
    ["group", "topic"],
)


@dataclass(frozen=True)
class RetryPolicy:
    attempts_before_split: int = 3
    first_backoff_seconds: float = 0.2
    max_backoff_seconds: float = 10.0

    def backoff(self, attempt: int) -> float:
        return float(min(self.first_backoff_seconds * 2 ** (attempt - 1), self.max_backoff_seconds))


def describe_validation_error(exc: ValidationError) -> str:
    """A compact, field-level sentence: 'value: Input should be a valid number; ...'."""
    parts = []
    for err in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in err["loc"]) or "(record)"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def dead_letter_for(record: ConsumerRecord[Any, Any], group: str, exc: BaseException) -> DeadLetter:
    raw: bytes = record.value or b""
    try:
        payload, encoding = raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        payload, encoding = base64.b64encode(raw).decode("ascii"), "base64"
    reason = describe_validation_error(exc) if isinstance(exc, ValidationError) else str(exc)
    return DeadLetter(
        source_topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        consumer_group=group,
        key=record.key.decode("utf-8", "replace") if record.key else None,
        payload=payload,
        payload_encoding=encoding,
        error_type=type(exc).__name__,
        reason=reason or type(exc).__name__,
    )


Handle = Callable[[Sequence[E]], Awaitable[None]]
SendDeadLetters = Callable[[Sequence[DeadLetter]], Awaitable[None]]


class BatchConsumer(Generic[E]):
    """Runs one consumed batch through `handle` with the policy described above."""

    def __init__(
        self,
        *,
        model: type[E],
        group: str,
        handle: Handle[E],
        send_dead_letters: SendDeadLetters,
        retry: RetryPolicy = RetryPolicy(),
        contracts: Mapping[Topic, type[E]] | None = None,
    ) -> None:
        self.model = model
        self._contracts = dict(contracts or {})
        self.group = group
        self._handle = handle
        self._send_dead_letters = send_dead_letters
        self._retry = retry

    def model_for(self, record: ConsumerRecord[Any, Any]) -> type[E]:
        """The contract a record is decoded into: its topic's, where the group reads
        several topics with a contract each, else the consumer's one model."""
        return self._contracts.get(record.topic, self.model)

    def decode(
        self, records: Sequence[ConsumerRecord[Any, Any]]
    ) -> tuple[list[tuple[ConsumerRecord[Any, Any], E]], list[DeadLetter]]:
        good: list[tuple[ConsumerRecord[Any, Any], E]] = []
        dead: list[DeadLetter] = []
        for record in records:
            try:
                if not record.value:
                    raise ValueError("empty record value (no event payload)")
                good.append((record, self.model_for(record).model_validate_json(record.value)))
            except (ValidationError, ValueError) as exc:
                dead.append(dead_letter_for(record, self.group, exc))
        return good, dead

    async def process(self, records: Sequence[ConsumerRecord[Any, Any]]) -> None:
        good, dead = self.decode(records)
        if good:
            dead.extend(await self._handle_with_retry(good))
        if dead:
            await self._send_dead_letters(dead)
            for letter in dead:
                log.warning(
                    "dead-lettered record",
                    group=self.group,
                    topic=letter.source_topic,
                    partition=letter.partition,
                    offset=letter.offset,
                    error_type=letter.error_type,
                    reason=letter.reason[:500],
                )
        MESSAGES.labels(self.group, "processed").inc(len(good))
        MESSAGES.labels(self.group, "dead-lettered").inc(len(dead))

    async def _handle_with_retry(
        self, items: list[tuple[ConsumerRecord[Any, Any], E]]
    ) -> list[DeadLetter]:
        attempt = 0
        while True:
            attempt += 1
            try:
                await self._handle([event for _, event in items])
                return []
            except Exception as exc:
                if is_transient(exc):
                    # Infrastructure is down: wait for it, never dead-letter because of it.
                    log.warning(
                        "transient failure, retrying batch", group=self.group, error=repr(exc)
                    )
                    await asyncio.sleep(self._retry.backoff(min(attempt, 8)))
                    continue
                if attempt < self._retry.attempts_before_split:
                    log.warning("batch failed, retrying", group=self.group, error=repr(exc))
                    await asyncio.sleep(self._retry.backoff(attempt))
                    continue
                if len(items) == 1:
                    return [dead_letter_for(items[0][0], self.group, exc)]
                log.warning(
                    "batch keeps failing, isolating records", group=self.group, error=repr(exc)
                )
                return await self._isolate(items)

    async def _isolate(self, items: list[tuple[ConsumerRecord[Any, Any], E]]) -> list[DeadLetter]:
        dead: list[DeadLetter] = []
        for item in items:
            dead.extend(await self._handle_with_retry([item]))
        return dead


async def _raw_decoder(msg: Any) -> Any:
    # Decoding is per record in BatchConsumer, so one bad record cannot fail the batch.
    return msg.body


def dead_letter_sender(broker: KafkaBroker) -> SendDeadLetters:
    async def send(letters: Sequence[DeadLetter]) -> None:
        await publish_events(
            broker, Topic.DEAD_LETTER, [(letter.key, letter) for letter in letters]
        )

    return send


def subscribe_batches(
    broker: KafkaBroker,
    topic: Topic | Sequence[Topic],
    consumer: BatchConsumer[Any],
    *,
    session_timeout_ms: int,
    max_records: int = 5000,
    batch_timeout_ms: int = 50,
    fetch_max_wait_ms: int = 500,
) -> BatchSubscriber:
    """Register `consumer` on `topic`: earliest offsets for a new group, manual commits
    after processing, and a rewind of every partition in the batch if processing is
    interrupted (shutdown, rebalance), so the batch is read again rather than skipped.

    `batch_timeout_ms` is how long a poll waits for records (an empty poll then sleeps as
    long again) and `fetch_max_wait_ms` how long the broker may hold a fetch with nothing
    to return: an idle consumer costs its process and the broker in proportion to how
    often it asks (decision 0095)."""

    # Several low-volume topics may share one group (one join at start-up instead of one
    # per topic); the consumer then decodes each record by its topic.
    topics = [str(topic)] if isinstance(topic, str) else [str(t) for t in topic]
    subscriber = broker.subscriber(
        *topics,
        group_id=consumer.group,
        batch=True,
        max_records=max_records,
        batch_timeout_ms=batch_timeout_ms,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.MANUAL,
        listener=AssignmentMetrics(consumer.group, topics),
        decoder=_raw_decoder,
        max_poll_interval_ms=600_000,
        fetch_max_wait_ms=fetch_max_wait_ms,
        session_timeout_ms=session_timeout_ms,
        # a third of the session, as Kafka's own defaults: each heartbeat is a request the
        # broker serves for every consumer of every group
        heartbeat_interval_ms=max(100, session_timeout_ms // 3),
    )

    async def on_batch(body: Any, message: KafkaMessage) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            await consumer.process(message.raw_message)
        except BaseException:
            await message.nack()
            raise
        await message.ack()
        BATCH_SECONDS.labels(consumer.group).observe(loop.time() - started)
        await record_lag(message.consumer, consumer.group)

    subscriber(on_batch)
    return subscriber


class AssignmentMetrics(ConsumerRebalanceListener):  # type: ignore[misc]
    """Keeps the assigned-partitions gauge current and drops the lag of partitions that
    moved to another replica, so a scaled-out group's metrics add up."""

    def __init__(self, group: str, topics: Sequence[str]) -> None:
        self._group, self._topics = group, frozenset(topics)

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        for tp in revoked:
            if tp.topic in self._topics:
                _forget_lag(self._group, tp.topic, tp.partition)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        for topic in sorted(self._topics):
            mine = sorted(tp.partition for tp in assigned if tp.topic == topic)
            ASSIGNED.labels(self._group, topic).set(len(mine))
            log.info("partitions assigned", group=self._group, topic=topic, partitions=mine)


async def refresh_lag(broker: KafkaBroker) -> None:
    """Record the lag of every partition each consumer group of `broker` owns now, whether
    or not a batch came from it: after a rebalance that moved partitions in once the
    stream was quiet, and while a handler is stuck on a slow batch, the gauge still says
    how far behind this process is."""
    for subscriber in broker.subscribers:
        group = getattr(subscriber, "group_id", None)
        if group:
            await record_lag(getattr(subscriber, "consumer", None), group, ask_broker=True)


async def keep_lag_current(broker: KafkaBroker, every_seconds: float) -> None:
    """`refresh_lag` every `every_seconds`, until cancelled (the service stopping). A
    metric must never stop the service or itself: a slow or failed read is logged and the
    next one tried."""
    while True:
        try:
            async with asyncio.timeout(max(every_seconds, 5.0)):
                await refresh_lag(broker)
        except Exception as exc:  # metrics only: consuming goes on regardless
            log.warning("consumer lag refresh failed", error=repr(exc))
        await asyncio.sleep(every_seconds)


# (group -> (topic, partition)) of the lag series this process has set: each read drops
# those of partitions it no longer owns, whichever way they left (a revocation the
# listener did not see, or one that raced a read), so replicas' series add up.
_LAG_SERIES: dict[str, set[tuple[str, int]]] = {}


def _forget_lag(group: str, topic: str, partition: int) -> None:
    _LAG_SERIES.get(group, set()).discard((topic, partition))
    with contextlib.suppress(KeyError):  # never set: no batch came from it
        LAG.remove(group, topic, str(partition))


def _drop_lag_of_moved(group: str, owned: set[TopicPartition]) -> None:
    held = {(tp.topic, tp.partition) for tp in owned}
    for topic, partition in list(_LAG_SERIES.get(group, set()) - held):
        _forget_lag(group, topic, partition)


async def record_lag(kafka: object, group: str, *, ask_broker: bool = False) -> None:
    """After a batch, the partition ends the last fetch brought (free, but stale for a
    partition whose records wait unconsumed: the fetcher does not fetch it again, so a
    stuck handler would look caught up). `ask_broker` asks the broker for the ends (one
    request): what the periodic refresh does."""
    if not isinstance(kafka, AIOKafkaConsumer):
        return  # FastStream's in-memory test broker has no partitions
    try:
        owned = list(kafka.assignment())
        if ask_broker:
            ends: dict[TopicPartition, int | None] = dict(await kafka.end_offsets(owned))
        else:
            ends = {tp: kafka.highwater(tp) for tp in owned}
        for tp in owned:
            end = ends.get(tp)
            if end is None:
                continue  # nothing fetched from this partition yet
            position = await kafka.position(tp)
            # A rebalance during the awaits may have moved the partition away (and the
            # listener dropped its series): a series set now would never be dropped.
            if tp in kafka.assignment():
                LAG.labels(group, tp.topic, str(tp.partition)).set(max(0, end - position))
                _LAG_SERIES.setdefault(group, set()).add((tp.topic, tp.partition))
        _drop_lag_of_moved(group, kafka.assignment())
    except (KafkaError, AssertionError) as exc:
        # A rebalance between the batch and this read: the next batch sets it again.
        log.debug("consumer lag not recorded", group=group, error=repr(exc))
