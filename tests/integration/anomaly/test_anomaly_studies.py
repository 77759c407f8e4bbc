"""A study's scoring profile and alert limits (its study file's scoring_profile and
alert_limits) score its participants' readings; other studies and the default study keep
the platform's profile (device-mix) and limits; a study that does not use anomaly scoring
is not scored at all."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from anomaly.main import create_app
from anomaly.settings import AnomalySettings
from helpers import announce_study, eventually, fetchval, publish_to, read_topic, serving, unique_id
from trialstream.events.readings import Metric, ReadingReceived
from trialstream.events.topics import Topic

pytestmark = pytest.mark.integration
START = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=2)


def raised_heart_rate(
    participant: str, study_id: str, value: float = 108.0
) -> list[tuple[str, ReadingReceived]]:
    """108 beats/min for 12 minutes: above a limit of 105, below the platform's 120."""
    return [
        (
            participant,
            ReadingReceived(
                event_id=uuid.uuid4(),
                participant_id=participant,
                study_id=study_id,
                device_id="wear-1",
                metric=Metric.HEART_RATE,
                value=value,
                unit="beats/min",
                measured_at=START + timedelta(minutes=i),
            ),
        )
        for i in range(12)
    ]


async def checkpointed(database_url: str, participant: str) -> bool:
    sql = "SELECT count(*) FROM anomaly.participant_state WHERE participant_id = $1"
    return bool(await fetchval(database_url, sql, participant))


async def test_each_study_is_scored_with_its_own_alert_limits(
    kafka: str, database_url: str
) -> None:
    strict, unscored = unique_id("HF"), unique_id("NOSCORE")
    limit = [{"rule": "heart-rate-high", "value": 105}]
    await announce_study(kafka, strict, ["ingest", "anomaly"], ["site-a"], alert_limits=limit)
    await announce_study(kafka, unscored, ["ingest", "epro"], ["site-a"], alert_limits=limit)
    in_strict, in_default, in_unscored = unique_id("P"), unique_id("P"), unique_id("P")
    settings = AnomalySettings(
        kafka_bootstrap_servers=kafka, database_url=database_url, kafka_session_timeout_ms=2000
    )
    async with serving(create_app(settings)):
        await publish_to(
            kafka,
            Topic.READINGS,
            raised_heart_rate(in_unscored, unscored)
            + raised_heart_rate(in_default, "default")
            + raised_heart_rate(in_strict, strict),
        )
        alerts = await eventually(
            lambda: read_topic(
                kafka, Topic.ALERTS, match=lambda v: v.get("participant_id") == in_strict
            )
        )
        await eventually(lambda: checkpointed(database_url, in_default))
    [alert] = alerts
    assert alert["study_id"] == strict
    assert alert["rule"] == "clinical-limit/heart-rate-high"
    assert alert["threshold"] == 105
    assert alert["model_version"] == f"device-mix/rules-3.4+{strict}"
    assert "limit of 105" in str(alert["explanation"])
    # the same readings are normal under the platform's limits (120)...
    sql = "SELECT count(*) FROM anomaly.alerts WHERE participant_id = $1"
    assert await fetchval(database_url, sql, in_default) == 0
    # ...and a study without the anomaly module is not scored (no state, no alert)
    assert not await checkpointed(database_url, in_unscored)
    assert await fetchval(database_url, sql, in_unscored) == 0


async def test_a_study_that_chooses_the_classic_profile_is_scored_with_it(
    kafka: str, database_url: str
) -> None:
    """115 beats/min at rest for 12 min: over the classic profile's NEWS2 limit (111), under
    the trial definition the default device-mix profile alerts on (120)."""
    classic = unique_id("CLASSIC")
    await announce_study(
        kafka, classic, ["ingest", "anomaly"], ["site-a"], scoring_profile="classic"
    )
    in_classic, in_default = unique_id("P"), unique_id("P")
    settings = AnomalySettings(
        kafka_bootstrap_servers=kafka, database_url=database_url, kafka_session_timeout_ms=2000
    )
    async with serving(create_app(settings)):
        await publish_to(
            kafka,
            Topic.READINGS,
            raised_heart_rate(in_default, "default", 115.0)
            + raised_heart_rate(in_classic, classic, 115.0),
        )
        alerts = await eventually(
            lambda: read_topic(
                kafka, Topic.ALERTS, match=lambda v: v.get("participant_id") == in_classic
            )
        )
        await eventually(lambda: checkpointed(database_url, in_default))
    [alert] = alerts
    assert (alert["study_id"], alert["rule"]) == (classic, "clinical-limit/heart-rate-high")
    assert (alert["threshold"], alert["model_version"]) == (111, "classic/rules-2.0")
    sql = "SELECT count(*) FROM anomaly.alerts WHERE participant_id = $1"
    assert await fetchval(database_url, sql, in_default) == 0
