"""A poison record on the readings topic is dead-lettered; the consumer keeps going."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaProducer
from anomaly.main import create_app
from anomaly.subscribers import GROUP
from helpers import eventually, read_topic, serving, unique_id
from test_anomaly_consumer import alerts_for, heart_rates, settings
from trialstream.events.topics import Topic

pytestmark = pytest.mark.integration


async def test_poison_readings_go_to_dead_letter_and_later_readings_are_scored(
    kafka: str, database_url: str
) -> None:
    participant = unique_id("P")
    marker = f"poison-{uuid.uuid4()}"
    key = participant.encode()
    async with serving(create_app(settings(kafka, database_url))):
        producer = AIOKafkaProducer(bootstrap_servers=kafka, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(Topic.READINGS, key=key, value=marker.encode())
            await producer.send_and_wait(
                Topic.READINGS, key=key, value=b'{"participant_id": "%s"}' % key
            )
            for r in heart_rates(participant, [70] * 3 + [142.0] * 8):
                await producer.send_and_wait(
                    Topic.READINGS, key=key, value=r.model_dump_json().encode()
                )
        finally:
            await producer.stop()
        alerts = await eventually(lambda: alerts_for(kafka, participant))

    assert [a["severity"] for a in alerts] == ["high"]
    letters = await read_topic(
        kafka,
        Topic.DEAD_LETTER,
        match=lambda v: v.get("key") == participant and v.get("consumer_group") == GROUP,
    )
    assert len(letters) == 2
    by_payload = {letter["payload"]: letter for letter in letters}
    assert by_payload[marker]["source_topic"] == Topic.READINGS
    assert by_payload[marker]["error_type"] == "ValidationError"
    assert "Invalid JSON" in by_payload[marker]["reason"]
    missing = next(letter for letter in letters if letter["payload"] != marker)
    assert "device_id: Field required" in missing["reason"]
