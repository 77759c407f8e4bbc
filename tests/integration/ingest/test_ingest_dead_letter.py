"""A poison record on the readings topic is dead-lettered; the consumer keeps going."""

from __future__ import annotations

import uuid

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from helpers import eventually, read_topic, reading, serving, unique_id
from ingest.handlers import ARCHIVE_GROUP
from ingest.main import create_app
from ingest.settings import IngestSettings
from trialstream.events.topics import Topic

pytestmark = pytest.mark.integration


async def test_poison_reading_goes_to_dead_letter_and_later_readings_are_archived(
    kafka: str, database_url: str
) -> None:
    participant = unique_id("P")
    marker = f"poison-{uuid.uuid4()}"
    good = reading(participant, "wear-1", value=64)
    good["occurred_at"] = good["measured_at"]
    settings = IngestSettings(
        kafka_bootstrap_servers=kafka, database_url=database_url, kafka_session_timeout_ms=2000
    )
    async with serving(create_app(settings)):
        producer = AIOKafkaProducer(bootstrap_servers=kafka, acks="all")
        await producer.start()
        try:
            key = participant.encode()
            await producer.send_and_wait(Topic.READINGS, key=key, value=marker.encode())
            await producer.send_and_wait(
                Topic.READINGS, key=key, value=b'{"participant_id": "%s"}' % key
            )
            import json

            await producer.send_and_wait(Topic.READINGS, key=key, value=json.dumps(good).encode())
        finally:
            await producer.stop()

        async def archived() -> int:
            conn = await asyncpg.connect(database_url)
            try:
                return int(
                    await conn.fetchval(
                        "SELECT count(*) FROM ingest.readings WHERE participant_id = $1",
                        participant,
                    )
                )
            finally:
                await conn.close()

        assert await eventually(archived) == 1

    letters = await read_topic(
        kafka,
        Topic.DEAD_LETTER,
        match=lambda v: v.get("key") == participant and v.get("consumer_group") == ARCHIVE_GROUP,
    )
    assert len(letters) == 2
    by_payload = {letter["payload"]: letter for letter in letters}
    assert by_payload[marker]["source_topic"] == Topic.READINGS
    assert by_payload[marker]["error_type"] == "ValidationError"
    assert "Invalid JSON" in by_payload[marker]["reason"]
    missing = next(letter for letter in letters if letter["payload"] != marker)
    assert "device_id: Field required" in missing["reason"]
