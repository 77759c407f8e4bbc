"""What the anomaly service learns survives a restart, and silences are found on the wall
clock: real broker, real PostgreSQL. The restart tests choose the classic profile (its
30-min resting shift and the model's windows fit a short stream); the dropout test runs
the platform's default."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from anomaly.config import ScoringConfig
from anomaly.main import create_app
from anomaly.service import check_silences
from helpers import eventually, fetchval, serving, unique_id
from test_anomaly_consumer import alerts_for, emitted, publish, settings
from trialstream.events.readings import UNITS, Metric, ReadingReceived

pytestmark = pytest.mark.integration
DAY = 24 * 60
CLASSIC = ScoringConfig.classic()


def minutes(
    participant: str, metric: Metric, values: Sequence[float], start: datetime
) -> list[ReadingReceived]:
    return [
        ReadingReceived(
            event_id=uuid.uuid4(),
            participant_id=participant,
            device_id="wear-1",
            metric=metric,
            value=v,
            unit=UNITS[metric],
            measured_at=start + timedelta(minutes=i),
        )
        for i, v in enumerate(values)
    ]


def resting(
    participant: str, heart_rates: Sequence[float], start: datetime
) -> list[ReadingReceived]:
    steps = minutes(participant, Metric.STEP_COUNT, [0] * len(heart_rates), start)
    heart = minutes(participant, Metric.HEART_RATE, heart_rates, start + timedelta(seconds=30))
    return sorted(steps + heart, key=lambda r: r.measured_at)


async def state_seen_us(database_url: str, participant: str) -> int | None:
    sql = (
        "SELECT (state ->> 'seen_us')::bigint FROM anomaly.participant_state"
        " WHERE participant_id = $1"
    )
    value = await fetchval(database_url, sql, participant)
    return None if value is None else int(value)


async def test_restarted_consumer_keeps_the_learned_resting_baseline(
    kafka: str, database_url: str
) -> None:
    participant = unique_id("P")
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(days=4)
    history = resting(participant, [58 + (i % 5) * 0.5 for i in range(3 * DAY)], start)
    last_us = round(history[-1].measured_at.timestamp() * 1e6)

    async def consumed_all() -> bool:
        return await state_seen_us(database_url, participant) == last_us

    async with serving(create_app(settings(kafka, database_url), CLASSIC)):
        await publish(kafka, history)
        await eventually(consumed_all, timeout=60)
    assert await emitted(database_url, participant) == 0
    # A fresh process sees only the raised hours: without the three days it learned before
    # the restart there is no baseline to deviate from (see the unit tests), so an alert
    # proves the baseline came back from the checkpoint.
    raised = resting(participant, [92 + (i % 3) for i in range(90)], start + timedelta(days=3))
    async with serving(create_app(settings(kafka, database_url), CLASSIC)):
        await publish(kafka, raised)
        found = await eventually(lambda: alerts_for(kafka, participant), timeout=60)
    assert [a["rule"] for a in found] == ["personal-baseline/heart-rate-resting-high"]
    assert 58 <= float(str(found[0]["baseline"])) <= 60.5


async def test_a_participant_silent_on_the_wall_clock_gets_one_dropout_alert(
    kafka: str, database_url: str
) -> None:
    participant = unique_id("P")
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    readings = minutes(participant, Metric.HEART_RATE, [70, 72, 71, 73, 70], start)
    app = create_app(settings(kafka, database_url))
    async with serving(app):
        await publish(kafka, readings)
        await eventually(lambda: state_seen_us(database_url, participant))
        pool = app.state.runtime.pool
        config = ScoringConfig.default()
        now = datetime.now(UTC)
        assert await check_silences(pool, config, now) == 0  # 6 min of quiet is no dropout
        later = now + timedelta(hours=1)
        assert await check_silences(pool, config, later) >= 1
        assert await check_silences(pool, config, later + timedelta(hours=1)) == 0  # once
        found = await eventually(lambda: alerts_for(kafka, participant))
    (alert,) = found
    assert alert["rule"] == "device-quality/dropout"
    assert alert["kind"] == "device-quality"
    # Detected when the silence reached 45 min after the last reading, however it was found.
    last = readings[-1].measured_at
    assert datetime.fromisoformat(str(alert["detected_at"])) == last + timedelta(minutes=45)


def vitals(
    participant: str, first: int, last: int, start: datetime, drift: bool = False
) -> list[ReadingReceived]:
    """Minutes [first, last) of a resting participant: heart rate and steps every minute,
    SpO2, temperature and breathing every 5; `drift` makes each mildly worse (none over its
    clinical limit) as in early deterioration."""
    out = []
    for i in range(first, last):
        at = start + timedelta(minutes=i)
        values = {Metric.STEP_COUNT: 0.0, Metric.HEART_RATE: 64 + (i % 5) * 0.5 + 15 * drift}
        if i % 5 == 0:
            values[Metric.OXYGEN_SATURATION] = 97 + (i // 5) % 2 - 2.5 * drift
            values[Metric.BODY_TEMPERATURE] = 36.7 + (i % 3) * 0.02 + 0.6 * drift
            values[Metric.RESPIRATORY_RATE] = 14 + (i % 3) * 0.3 + 4 * drift
        for k, (metric, value) in enumerate(values.items()):
            out.append(
                ReadingReceived(
                    event_id=uuid.uuid4(),
                    participant_id=participant,
                    device_id="wear-1",
                    metric=metric,
                    value=value,
                    unit=UNITS[metric],
                    measured_at=at + timedelta(seconds=10 * k),
                )
            )
    return out


async def test_restarted_consumer_keeps_what_the_model_learned(
    kafka: str, database_url: str
) -> None:
    participant = unique_id("P")
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=2)
    history = vitals(participant, 0, DAY + 60, start)
    last_us = round(history[-1].measured_at.timestamp() * 1e6)

    async def consumed_all() -> bool:
        return await state_seen_us(database_url, participant) == last_us

    async with serving(create_app(settings(kafka, database_url), CLASSIC)):
        await publish(kafka, history)
        await eventually(consumed_all, timeout=60)
    assert await emitted(database_url, participant) == 0
    # Without the day of hourly means checkpointed before the restart the model has no
    # baseline to judge a window against, so its alert proves they came back.
    drifting = vitals(participant, DAY + 60, DAY + 180, start, drift=True)
    async with serving(create_app(settings(kafka, database_url), CLASSIC)):
        await publish(kafka, drifting)

        async def model_alerts() -> list[dict[str, object]]:
            found = await alerts_for(kafka, participant)
            return [a for a in found if a["rule"] == "model/multivariate-deterioration"]

        (alert,) = await eventually(model_alerts, timeout=60)
    assert alert["model_version"] == "iforest-1.0+classic/rules-2.0"
    assert alert["metric"] is None
    assert "heart rate 80 beats/min vs own 65 " in str(alert["explanation"])
