"""Each clinical-limit rule on small crafted streams: what must alert, what must not, and what
an alert says. The streams are deliberately synthetic (constant values, long gaps), so the
device-quality, personal-baseline and model detectors are off here; test_anomaly_detectors.py
covers them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, timedelta, timezone

import pytest
from anomaly.config import Limit, Persistence, ScoringConfig
from anomaly.domain import Scorer as Scorer_
from anomaly.state import StateError
from anomaly_streams import T0, interleave, stream
from trialstream.events.alerts import AlertKind, AlertRaised, Severity
from trialstream.events.readings import Metric, ReadingReceived

HR, STEPS, SPO2 = Metric.HEART_RATE, Metric.STEP_COUNT, Metric.OXYGEN_SATURATION
LIMITS = ScoringConfig(device_quality=False, personal_baselines=False, multivariate=False)


def Scorer() -> Scorer_:
    return Scorer_(LIMITS)


def score(readings: Sequence[ReadingReceived]) -> list[AlertRaised]:
    return Scorer().score(readings)


def in_batches(readings: Sequence[ReadingReceived], size: int) -> list[AlertRaised]:
    scorer = Scorer()
    return [a for i in range(0, len(readings), size) for a in scorer.score(readings[i : i + size])]


def test_single_sample_spike_does_not_alert() -> None:
    assert score(stream(HR, [70, 71, 185, 72, 70, 190, 71, 30, 70])) == []


def test_short_run_below_persistence_does_not_alert() -> None:
    assert score(stream(HR, [72, 140, 140, 140, 140, 72, 72])) == []  # 4 of the 5 needed


def test_sustained_tachycardia_at_rest_alerts_once() -> None:
    readings = interleave(stream(STEPS, [0, 4, 0, 8] * 6), stream(HR, [72] * 3 + [140] * 20))
    alerts = score(readings)
    assert len(alerts) == 1
    alert = alerts[0]
    assert (alert.severity, alert.rule) == (Severity.HIGH, "clinical-limit/heart-rate-high")
    assert alert.detected_at == T0 + timedelta(minutes=7)  # the 5th reading of the run
    assert (alert.window_start, alert.window_end) == (T0 + timedelta(minutes=3), alert.detected_at)
    assert alert.observed == [140.0] * 5
    assert "at rest (" in alert.explanation


def test_alert_fills_every_field_deterministically() -> None:
    (alert,) = score(stream(HR, [140] * 6))
    assert alert.kind is AlertKind.CLINICAL
    assert alert.metric is HR
    assert alert.threshold == 131
    assert alert.baseline is None
    assert alert.model_version == "classic/rules-2.0"
    assert alert.occurred_at == alert.detected_at  # not the wall clock


def test_high_heart_rate_while_walking_is_exercise_not_alert() -> None:
    walking = stream(STEPS, [120] * 30)
    heart = stream(HR, [145] * 30, start_min=0.5)
    assert score(interleave(walking, heart)) == []


def test_raised_heart_rate_after_exercise_ends_alerts() -> None:
    steps = stream(STEPS, [120] * 10 + [0] * 30)
    heart = stream(HR, [145] * 40, start_min=0.5)
    (alert,) = score(interleave(steps, heart))
    # Walking stops at minute 10; from 17.5 the 10-min window holds < 300 steps; 5 readings later:
    assert alert.detected_at == T0 + timedelta(minutes=21.5)


def test_steps_uploaded_after_a_reading_do_not_explain_it() -> None:
    """Activity counts only step readings that arrived before, so batch cuts cannot matter."""
    heart = stream(HR, [145] * 8, start_min=0.5)
    late_steps = stream(STEPS, [200] * 8)
    assert len(score(heart + late_steps)) == 1
    assert score(late_steps + heart) == []


def test_desaturation_alerts_with_severity() -> None:
    medium = score(stream(SPO2, [97, 93, 92, 93, 93], every_min=5))
    high = score(stream(SPO2, [97, 90, 89, 90], every_min=5, pid="P-0002"))
    assert [(a.severity, a.threshold) for a in medium] == [(Severity.MEDIUM, 93)]
    assert [(a.severity, a.threshold) for a in high] == [(Severity.HIGH, 91)]
    assert high[0].detected_at == T0 + timedelta(minutes=10)  # 2 readings spanning 5 min


def test_five_minutely_metrics_need_two_readings_five_minutes_apart() -> None:
    assert score(stream(SPO2, [97, 88, 97, 97, 88, 97], every_min=5)) == []  # lone dips
    assert score(stream(SPO2, [90, 90, 90], every_min=2)) == []  # 3 readings, only 4 min
    (alert,) = score(stream(SPO2, [90] * 4, every_min=2))
    assert alert.detected_at == T0 + timedelta(minutes=6)  # 5 min spanned at the 4th


def test_fever_hypothermia_and_bradypnoea_alert() -> None:
    fever = score(stream(Metric.BODY_TEMPERATURE, [36.8, 38.4, 38.5, 38.6], every_min=5))
    cold = score(stream(Metric.BODY_TEMPERATURE, [35.0, 34.8, 34.9], every_min=5, pid="P-2"))
    slow = score(stream(Metric.RESPIRATORY_RATE, [7, 7, 6, 7], every_min=5, pid="P-3"))
    assert [(a.rule, a.severity) for a in fever + cold + slow] == [
        ("clinical-limit/body-temperature-high", Severity.LOW),
        ("clinical-limit/body-temperature-low", Severity.HIGH),
        ("clinical-limit/respiratory-rate-low", Severity.HIGH),
    ]


def test_escalation_when_severity_rises() -> None:
    alerts = score(stream(HR, [115] * 6 + [135] * 6))
    assert [a.severity for a in alerts] == [Severity.MEDIUM, Severity.HIGH]
    assert alerts[1].explanation.startswith("Escalated from medium to high: ")
    assert alerts[1].observed == [135.0] * 5  # the run at the higher band
    assert alerts[0].event_id != alerts[1].event_id


def test_an_artefact_inside_a_medium_run_does_not_raise_its_severity() -> None:
    alerts = score(stream(HR, [115, 118, 185, 116, 117, 115, 119]))
    assert [a.severity for a in alerts] == [Severity.MEDIUM]


def test_new_alert_after_episode_ends() -> None:
    alerts = score(stream(HR, [140] * 6 + [70] * 6 + [140] * 6))
    assert len(alerts) == 2
    assert alerts[0].event_id != alerts[1].event_id


def test_brief_normal_readings_inside_an_episode_do_not_realert() -> None:
    assert len(score(stream(HR, [140] * 6 + [70] * 4 + [140] * 6))) == 1  # 4 < 5 to recover


def test_gap_breaks_persistence() -> None:
    before = stream(HR, [140] * 3)
    after = stream(HR, [140] * 2, start_min=60)
    assert score(before + after) == []
    assert len(score(stream(HR, [140] * 3) + stream(HR, [140] * 2, start_min=12))) == 1


def test_late_and_redelivered_readings_change_nothing() -> None:
    readings = stream(HR, [140] * 8)
    scorer = Scorer()
    assert len(scorer.score(readings)) == 1
    assert scorer.score(readings) == []  # re-delivery
    assert scorer.score(stream(HR, [140] * 8, start_min=-30, pid="P-0001")) == []  # late


def test_out_of_order_reading_in_a_batch_is_ignored() -> None:
    readings = stream(HR, [140] * 6)
    shuffled = [readings[0], readings[2], readings[1], *readings[3:]]
    (alert,) = score([*shuffled, *stream(HR, [140], start_min=6)])
    assert alert.observed == [140.0] * 5  # minute 1 arrived after minute 2: not counted
    assert alert.detected_at == T0 + timedelta(minutes=5)


def test_participants_in_one_batch_are_scored_independently() -> None:
    sick = stream(HR, [140] * 8, pid="P-0001")
    well = stream(HR, [70] * 8, pid="P-0002")
    assert [a.participant_id for a in score(interleave(sick, well))] == ["P-0001"]


def test_non_finite_values_are_ignored() -> None:
    assert len(score(stream(HR, [140, 140, float("nan"), 140, 140, 140]))) == 1


def test_restored_scorer_matches_uninterrupted() -> None:
    readings = interleave(
        stream(HR, [70] * 5 + [140] * 10 + [70] * 10 + [118] * 10),
        stream(STEPS, [0, 30] * 18),
        stream(SPO2, [96, 91, 90, 90, 96, 96, 96], every_min=5),
        stream(HR, [130] * 30, pid="P-0002"),
    )
    uninterrupted = in_batches(readings, 25)
    scorer, alerts = Scorer(), []
    for i in range(0, len(readings), 25):
        alerts += scorer.score(readings[i : i + 25])
        checkpoint = json.loads(json.dumps(scorer.snapshot(["P-0001", "P-0002", "P-9999"])))
        scorer = Scorer()  # a restarted consumer
        scorer.restore(checkpoint)
    assert alerts == uninterrupted
    assert len(uninterrupted) == 4


def test_snapshot_is_small_when_nothing_is_going_on() -> None:
    scorer = Scorer()
    scorer.score(stream(HR, [70] * 30))
    (state,) = scorer.snapshot(["P-0001", "P-unknown"]).values()
    # format, newest time and value of the one series, the model's window in progress
    assert len(json.dumps(state)) < 130


def test_restore_rejects_a_state_it_cannot_read() -> None:
    with pytest.raises(StateError):
        Scorer().restore({"P-0001": {"format": 99}})


def test_batch_boundaries_do_not_change_alerts() -> None:
    readings = interleave(
        stream(HR, [70] * 5 + [140] * 10 + [70] * 10 + [120] * 8),
        stream(STEPS, [0] * 5 + [130] * 3 + [0] * 17),
        stream(Metric.BODY_TEMPERATURE, [36.9, 38.5, 38.6, 38.7, 38.4], every_min=5),
    )
    whole = score(readings)
    # The 140s are cut short by walking (exercise); the fever and the later 120s alert.
    assert [a.rule for a in whole] == [
        "clinical-limit/body-temperature-high",
        "clinical-limit/heart-rate-high",
    ]
    for size in (1, 2, 3, 7, 50):
        key = lambda a: (a.detected_at, a.rule)  # noqa: E731
        assert sorted(in_batches(readings, size), key=key) == sorted(whole, key=key)


def test_alert_ids_are_deterministic() -> None:
    readings = stream(HR, [140] * 8)
    first, again = score(readings), score(readings)
    assert [a.event_id for a in first] == [a.event_id for a in again]
    assert [a.model_dump_json() for a in first] == [a.model_dump_json() for a in again]
    assert score(stream(HR, [140] * 8, pid="P-0002"))[0].event_id != first[0].event_id


def test_explanation_has_the_numbers() -> None:
    readings = interleave(
        stream(STEPS, [12, 0, 0, 0, 0, 0, 0]), stream(HR, [70, 70, 128, 135, 139, 142, 133])
    )
    (alert,) = score(readings)
    assert alert.explanation == (
        "Heart rate 128-142 beats/min for 4 min (2026-03-01 10:02-10:06 UTC, 5 readings) "
        "at rest (12 steps in the previous 10 min), at or above the limit of 111 beats/min "
        "(NEWS2 band 2)."
    )


def test_explanation_says_when_activity_is_unknown() -> None:
    (alert,) = score(stream(HR, [140] * 5))
    assert "with no step data in the previous 10 min (activity unknown)" in alert.explanation


def test_times_are_reported_in_utc_whatever_the_device_offset() -> None:
    plus_two = timezone(timedelta(hours=2))
    readings = [
        r.model_copy(update={"measured_at": r.measured_at.astimezone(plus_two)})
        for r in stream(HR, [140] * 5)
    ]
    (alert,) = score(readings)
    assert alert.detected_at.utcoffset() == timedelta(0)
    assert alert.detected_at == T0.astimezone(UTC) + timedelta(minutes=4)
    assert "10:00-10:04 UTC" in alert.explanation


def test_config_without_persistence_for_a_limited_metric_is_rejected() -> None:
    with pytest.raises(ValueError, match="persistence"):
        ScoringConfig(persistence={HR: Persistence(5, 4, 15, 5)})
    with pytest.raises(ValueError, match="most severe first"):
        Limit(HR, ScoringConfig().limits[0].direction, ((111, 2), (131, 3)))
