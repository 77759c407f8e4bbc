"""Each rule on small crafted streams: what must alert, and what must not."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from anomaly.domain import Scorer
from trialstream.events.alerts import AlertRaised, Severity
from trialstream.events.readings import UNITS, Metric, ReadingReceived

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


def stream(
    metric: Metric,
    values: Sequence[float],
    *,
    every_min: float = 1,
    start_min: float = 0,
    pid: str = "P-0001",
) -> list[ReadingReceived]:
    return [
        ReadingReceived(
            event_id=uuid.uuid5(uuid.NAMESPACE_URL, f"{pid}/{metric}/{start_min + i * every_min}"),
            participant_id=pid,
            device_id="wear-1",
            metric=metric,
            value=v,
            unit=UNITS[metric],
            measured_at=T0 + timedelta(minutes=start_min + i * every_min),
        )
        for i, v in enumerate(values)
    ]


def interleave(*streams: list[ReadingReceived]) -> list[ReadingReceived]:
    return sorted((r for s in streams for r in s), key=lambda r: r.measured_at)


def score(readings: Sequence[ReadingReceived]) -> list[AlertRaised]:
    return Scorer().score(readings)


def test_single_sample_spike_does_not_alert() -> None:
    assert score(stream(Metric.HEART_RATE, [70, 71, 185, 72, 70, 190, 71])) == []


def test_sustained_tachycardia_at_rest_alerts_once() -> None:
    alerts = score(stream(Metric.HEART_RATE, [72] * 3 + [140] * 20))
    assert len(alerts) == 1
    alert = alerts[0]
    assert (alert.severity, alert.rule) == (Severity.HIGH, "clinical-limit/heart-rate-high")
    assert alert.detected_at == T0 + timedelta(minutes=7)  # the 5th reading of the run
    assert alert.window_start == T0 + timedelta(minutes=3)
    assert alert.observed == [140.0] * 5


def test_short_run_below_persistence_does_not_alert() -> None:
    assert score(stream(Metric.HEART_RATE, [72, 140, 140, 140, 140, 72, 72])) == []


def test_high_heart_rate_while_walking_is_exercise_not_alert() -> None:
    walking = stream(Metric.STEP_COUNT, [120] * 30)
    heart = stream(Metric.HEART_RATE, [145] * 30, start_min=0.5)
    assert score(interleave(walking, heart)) == []


def test_raised_heart_rate_after_exercise_ends_alerts() -> None:
    steps = stream(Metric.STEP_COUNT, [120] * 10 + [0] * 30)
    heart = stream(Metric.HEART_RATE, [145] * 40, start_min=0.5)
    alerts = score(interleave(steps, heart))
    assert len(alerts) == 1
    assert alerts[0].detected_at >= T0 + timedelta(minutes=20)  # once the 10-min window is quiet


def test_desaturation_alerts_with_severity() -> None:
    medium = score(stream(Metric.OXYGEN_SATURATION, [97, 93, 92, 93, 93], every_min=5))
    high = score(stream(Metric.OXYGEN_SATURATION, [97, 90, 89, 90], every_min=5, pid="P-0002"))
    assert [a.severity for a in medium] == [Severity.MEDIUM]
    assert [a.severity for a in high] == [Severity.HIGH]


def test_fever_and_bradypnoea_alert() -> None:
    fever = score(stream(Metric.BODY_TEMPERATURE, [36.8, 39.4, 39.5, 39.6], every_min=5))
    slow = score(stream(Metric.RESPIRATORY_RATE, [7, 7, 6, 7], every_min=5, pid="P-0002"))
    assert [(a.rule, a.severity) for a in fever] == [
        ("clinical-limit/body-temperature-high", Severity.MEDIUM)
    ]
    assert [(a.rule, a.severity) for a in slow] == [
        ("clinical-limit/respiratory-rate-low", Severity.HIGH)
    ]


def test_escalation_when_severity_rises() -> None:
    alerts = score(stream(Metric.HEART_RATE, [115] * 6 + [135] * 6))
    assert [a.severity for a in alerts] == [Severity.MEDIUM, Severity.HIGH]
    assert alerts[1].explanation.startswith("Escalated from medium")


def test_new_alert_after_episode_ends() -> None:
    alerts = score(stream(Metric.HEART_RATE, [140] * 6 + [70] * 6 + [140] * 6))
    assert len(alerts) == 2


def test_brief_normal_reading_inside_an_episode_does_not_realert() -> None:
    alerts = score(stream(Metric.HEART_RATE, [140] * 6 + [70] + [140] * 6))
    assert len(alerts) == 1


def test_gap_breaks_persistence() -> None:
    before = stream(Metric.HEART_RATE, [140] * 3)
    after = stream(Metric.HEART_RATE, [140] * 2, start_min=60)
    assert score(before + after) == []


def test_late_and_redelivered_readings_change_nothing() -> None:
    readings = stream(Metric.HEART_RATE, [140] * 8)
    scorer = Scorer()
    first = scorer.score(readings)
    assert len(first) == 1
    assert scorer.score(readings) == []


def test_restored_scorer_matches_uninterrupted() -> None:
    readings = interleave(
        stream(Metric.HEART_RATE, [70] * 5 + [140] * 10 + [70] * 10 + [118] * 10),
        stream(Metric.STEP_COUNT, [0] * 35),
        stream(Metric.OXYGEN_SATURATION, [96, 91, 90, 90, 96, 96, 96], every_min=5),
    )
    uninterrupted = Scorer().score(readings)
    first, second = Scorer(), Scorer()
    cut = len(readings) // 2
    alerts = first.score(readings[:cut])
    checkpoint = json.loads(json.dumps(first.snapshot(["P-0001"])))
    second.restore(checkpoint)
    alerts += second.score(readings[cut:])
    assert alerts == uninterrupted
    assert len(uninterrupted) == 3


def test_batch_boundaries_do_not_change_alerts() -> None:
    readings = interleave(
        stream(Metric.HEART_RATE, [70] * 5 + [140] * 10 + [70] * 10),
        stream(Metric.STEP_COUNT, [0] * 5 + [130] * 3 + [0] * 17),
        stream(Metric.BODY_TEMPERATURE, [36.9, 38.5, 38.6, 38.7, 38.4], every_min=5),
    )
    whole = Scorer().score(readings)
    scorer = Scorer()
    pieces = [a for i in range(0, len(readings), 3) for a in scorer.score(readings[i : i + 3])]
    assert pieces == whole
    assert whole


def test_alert_ids_are_deterministic() -> None:
    readings = stream(Metric.HEART_RATE, [140] * 8)
    assert [a.event_id for a in score(readings)] == [a.event_id for a in score(readings)]


def test_participants_in_one_batch_are_scored_independently() -> None:
    sick = stream(Metric.HEART_RATE, [140] * 8, pid="P-0001")
    well = stream(Metric.HEART_RATE, [70] * 8, pid="P-0002")
    alerts = score(interleave(sick, well))
    assert [a.participant_id for a in alerts] == ["P-0001"]


def test_explanation_has_the_numbers() -> None:
    (alert,) = score(stream(Metric.HEART_RATE, [70, 70, 128, 135, 139, 142, 133]))
    text = alert.explanation
    assert "128-142 beats/min" in text
    assert "limit of 111 beats/min" in text
    assert "NEWS2 band 2" in text
    assert "0 steps in the previous 10 min" in text
    assert "10:02-10:06 UTC" in text
