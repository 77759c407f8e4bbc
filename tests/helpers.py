"""Helpers shared by tests (importable because pytest's pythonpath includes tests/)."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from fastapi import FastAPI
from trialstream.db import migrate
from trialstream.events.base import Event
from trialstream.events.readings import ReadingReceived, ReadingsSummarised
from trialstream.events.topics import Topic
from trialstream.kafka import make_broker
from trialstream.publishing import publish_events
from trialstream.reading_summaries import summarise

T = TypeVar("T")


@contextmanager
def exclusive(name: str) -> Iterator[None]:
    """Hold a lock every test process on this machine shares (pytest-xdist workers, a
    second test run): for what cannot be shared at once, such as fixed ports."""
    path = os.path.join(tempfile.gettempdir(), f"trialstream-tests-{name}-{os.getuid()}.lock")
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def heart_rate_minutes(
    participant: str, device: str, start: datetime, values: Sequence[float]
) -> list[dict[str, Any]]:
    """Upload records (JSON) of one heart-rate reading a minute from `start`, fresh ids."""
    return [
        {
            "event_id": str(uuid.uuid4()),
            "participant_id": participant,
            "device_id": device,
            "metric": "heart-rate",
            "value": value,
            "unit": "beats/min",
            "measured_at": (start + timedelta(minutes=i)).isoformat(),
        }
        for i, value in enumerate(values)
    ]


def unique_id(prefix: str = "P") -> str:
    """A fresh pseudonymous id, so tests sharing a broker never collide."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan (broker, pool, consumers) and give an HTTP client for it."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


async def eventually(check: Callable[[], Awaitable[T | None]], *, timeout: float = 20.0) -> T:
    """Poll `check` until it returns a truthy value; fail with the last value otherwise."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"condition not met within {timeout} s; last value: {last!r}")


async def migrate_as_released_before(
    database_url: str, schema: str, migrations: Path, first_new: str, workdir: Path
) -> None:
    """Migrate `schema` as the release before `first_new` left it: only the migrations of
    `migrations` named before that one. An upgrade test then fills it and migrates on."""
    released = workdir / schema
    released.mkdir()
    for sql in migrations.glob("*.sql"):
        if sql.name < first_new:
            (released / sql.name).write_text(sql.read_text(encoding="utf-8"), encoding="utf-8")
    await migrate(database_url, schema=schema, directories=[released])


async def fetchval(database_url: str, sql: str, *args: object) -> Any:
    """One value from the real database, on a connection of its own."""
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def publish_to(kafka: str, topic: Topic, events: Sequence[tuple[str | None, Event]]) -> None:
    """Publish keyed events on the real broker from a short-lived producer, as another
    service would."""
    broker = make_broker(kafka, client_id="test")
    await broker.start()
    try:
        await publish_events(broker, topic, list(events))
    finally:
        await broker.stop()


def as_uploads(readings: Sequence[ReadingReceived]) -> list[ReadingsSummarised]:
    """The summaries ingest would send with `readings`: readings received at the same time
    (`occurred_at`) are one upload, summarised per participant (decision 0093)."""
    uploads: dict[tuple[str, datetime], list[ReadingReceived]] = {}
    for r in readings:
        uploads.setdefault((r.study_id, r.occurred_at), []).append(r)
    return [s for (study, at), rs in uploads.items() for s in summarise(rs, study, at)]


def reading(
    participant_id: str,
    device_id: str,
    metric: str = "heart-rate",
    value: float = 72.0,
    unit: str = "beats/min",
    measured_at: datetime | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    return {
        "event_id": event_id or str(uuid.uuid4()),
        "participant_id": participant_id,
        "device_id": device_id,
        "metric": metric,
        "value": value,
        "unit": unit,
        "measured_at": (measured_at or datetime.now(UTC) - timedelta(seconds=5)).isoformat(),
    }


async def read_topic(
    bootstrap: str, topic: str, *, match: Callable[[dict[str, Any]], bool], timeout: float = 15.0
) -> list[dict[str, Any]]:
    """Every JSON record on `topic` (from the start) for which `match` is true."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    found: list[dict[str, Any]] = []
    try:
        deadline = time.monotonic() + timeout
        idle_rounds = 0
        while time.monotonic() < deadline and idle_rounds < 3:
            batch = await consumer.getmany(timeout_ms=500)
            idle_rounds = 0 if batch else idle_rounds + 1
            for records in batch.values():
                for record in records:
                    try:
                        value = json.loads(record.value)
                    except (ValueError, TypeError):
                        continue
                    if isinstance(value, dict) and match(value):
                        found.append(value)
    finally:
        await consumer.stop()
    return found


async def topics_holding(kafka: str, needle: str) -> dict[str, int]:
    """Every topic on the broker (all partitions, from the start to the end offsets when
    called, so absence is proven without waiting for idle polls): how many records hold
    `needle` in their key, value or headers; and how many records were read in all."""
    raw = needle.encode()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    found: dict[str, int] = {}
    try:
        topics = sorted(await consumer.topics())
        assert any(".erasures." in t for t in topics), topics
        partitions = [
            TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        read = 0

        async def behind() -> bool:
            return any([await consumer.position(tp) < end for tp, end in ends.items()])

        while await behind():
            batch = await consumer.getmany(timeout_ms=1000)
            for tp, records in batch.items():
                for rec in records:
                    read += 1
                    blob = b"".join(
                        [rec.key or b"", rec.value or b""]
                        + [k.encode() + (v or b"") for k, v in rec.headers]
                    )
                    if raw in blob:
                        found[tp.topic] = found.get(tp.topic, 0) + 1
        found["(records read)"] = read
        return found
    finally:
        await consumer.stop()


async def announce_study(
    kafka: str,
    study_id: str,
    modules: list[str],
    sites: list[str],
    *,
    version: int = 1,
    timezone: str = "UTC",
    **declared: Any,
) -> None:
    """Put a study definition on the studies topic, as the identity service would after
    `trialstream study apply`: services then act for (or skip) its participants.
    `declared` adds any other part of the study file (visits=[...], alert_limits=[...],
    retention={...}); a later call with a higher `version` replaces the definition."""
    from trialstream.events.studies import StudyDefined
    from trialstream.events.topics import Topic
    from trialstream.studies import StudyDefinition

    definition = StudyDefinition.model_validate(
        {
            "study_id": study_id,
            "title": f"Study {study_id}",
            "sponsor": "Test sponsor",
            "sites": [{"id": s, "timezone": timezone} for s in sites],
            "modules": modules,
            **declared,
        }
    )
    event = StudyDefined(version=version, digest=definition.digest(), definition=definition)
    await publish_to(kafka, Topic.STUDIES, [(study_id, event)])
