"""Readings on the real broker -> anomaly consumer -> alerts topic, with state in PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from anomaly.main import create_app
from anomaly.settings import AnomalySettings
from helpers import eventually, fetchval, publish_to, read_topic, serving, unique_id
from trialstream.events.readings import Metric, ReadingReceived
from trialstream.events.topics import Topic

pytestmark = pytest.mark.integration
START = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=2)


def heart_rates(
    participant: str, values: Sequence[float], first_minute: int = 0
) -> list[ReadingReceived]:
    return [
        ReadingReceived(
            event_id=uuid.uuid4(),
            participant_id=participant,
            device_id="wear-1",
            metric=Metric.HEART_RATE,
            value=v,
            unit="beats/min",
            measured_at=START + timedelta(minutes=first_minute + i),
        )
        for i, v in enumerate(values)
    ]


async def publish(kafka: str, readings: Sequence[ReadingReceived]) -> None:
    await publish_to(kafka, Topic.READINGS, [(r.participant_id, r) for r in readings])


def settings(kafka: str, database_url: str) -> AnomalySettings:
    return AnomalySettings(
        kafka_bootstrap_servers=kafka, database_url=database_url, kafka_session_timeout_ms=2000
    )


async def alerts_for(kafka: str, participant: str) -> list[dict[str, object]]:
    return await read_topic(
        kafka, Topic.ALERTS, match=lambda v: v.get("participant_id") == participant
    )


async def emitted(database_url: str, participant: str) -> int:
    sql = "SELECT count(*) FROM anomaly.alerts WHERE participant_id = $1"
    return int(await fetchval(database_url, sql, participant))


async def test_sustained_tachycardia_becomes_one_explained_alert(
    kafka: str, database_url: str
) -> None:
    participant = unique_id("P")
    readings = heart_rates(participant, [72, 74, 185, 73] + [142.0] * 8 + [75] * 5)
    async with serving(create_app(settings(kafka, database_url))):
        await publish(kafka, readings)
        await eventually(lambda: emitted(database_url, participant))
        # Re-delivery of the same readings (at-least-once) must not add an alert.
        await publish(kafka, readings)
        found = await eventually(lambda: alerts_for(kafka, participant))
    assert len(found) == 1
    alert = found[0]
    assert alert["metric"] == "heart-rate"
    assert alert["severity"] == "high"
    assert "142" in str(alert["explanation"])
    assert await emitted(database_url, participant) == 1


async def test_live_consumer_publishes_the_end_of_an_episode_once(
    kafka: str, database_url: str
) -> None:
    participant = unique_id("P")
    readings = heart_rates(participant, [70] * 5 + [142.0] * 8 + [71] * 6)
    async with serving(create_app(settings(kafka, database_url))):
        await publish(kafka, readings)
        ends = await eventually(
            lambda: read_topic(
                kafka,
                Topic.ALERT_EPISODES_ENDED,
                match=lambda v: v.get("participant_id") == participant,
            )
        )
        await publish(kafka, readings[-6:])  # a re-delivery of the closing readings
        again = await read_topic(
            kafka,
            Topic.ALERT_EPISODES_ENDED,
            match=lambda v: v.get("participant_id") == participant,
        )
    assert len(ends) == len(again) == 1
    assert ends[0]["rule"] == (await alerts_for(kafka, participant))[0]["rule"]


async def test_restarted_consumer_continues_from_checkpointed_state(
    kafka: str, database_url: str
) -> None:
    participant = unique_id("P")
    run = [142.0] * 8
    async with serving(create_app(settings(kafka, database_url))):
        await publish(kafka, heart_rates(participant, run[:2]))

        async def checkpointed() -> bool:
            sql = "SELECT count(*) FROM anomaly.participant_state WHERE participant_id = $1"
            return bool(await fetchval(database_url, sql, participant))

        await eventually(checkpointed)
    assert await emitted(database_url, participant) == 0
    # A new process gets only the reading that completes persistence (the default
    # device-mix profile: held 2 min): alone it proves nothing, so an alert means the first
    # two came from the checkpoint.
    async with serving(create_app(settings(kafka, database_url))):
        await publish(kafka, heart_rates(participant, run[2:3], first_minute=2))
        assert await eventually(lambda: emitted(database_url, participant)) == 1
