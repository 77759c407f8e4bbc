"""Device-mix profile (issue 21): exertion inferred from breathing when no steps are sent,
SpO2 readings taken while walking, brief dips on dense oximeters, and their daily count."""

from __future__ import annotations

from anomaly.config import ScoringConfig
from anomaly.domain import Scorer
from anomaly.state import ParticipantState
from anomaly_streams import interleave, stream
from trialstream.events.readings import Metric

HR, SPO2, RR, STEPS = (
    Metric.HEART_RATE,
    Metric.OXYGEN_SATURATION,
    Metric.RESPIRATORY_RATE,
    Metric.STEP_COUNT,
)
MIX = ScoringConfig.device_mix(device_quality=False, personal_baselines=False, multivariate=False)


def workout(breath_during: float) -> list:  # type: ignore[type-arg]
    """A watch without steps: 3 h at rest (heart rate 70, breathing 14), then 20 min of
    heart rate 128 with breathing at `breath_during`."""
    rest_min = 180
    hr = stream(HR, [70] * rest_min + [128] * 20)
    rr = stream(RR, [14] * (rest_min // 5) + [breath_during] * 4, every_min=5)
    return interleave(hr, rr)


def test_breathing_that_rises_with_the_heart_rate_is_exercise_not_tachycardia() -> None:
    assert [a.rule for a in Scorer(MIX).score(workout(21))] == []


def test_a_fast_heart_at_rest_without_steps_alerts_and_says_exertion_was_inferred() -> None:
    [alert] = Scorer(MIX).score(workout(15))
    assert alert.rule == "clinical-limit/heart-rate-high"
    assert "no step data" in alert.explanation
    assert "inferred, not measured" in alert.explanation
    assert "breathing +1 breaths/min" in alert.explanation


def test_inferred_exertion_does_not_depend_on_batch_cuts() -> None:
    readings = workout(21) + stream(HR, [130] * 30, start_min=400)
    whole = Scorer(MIX).score(readings)
    scorer = Scorer(MIX)
    cut = [a for i in range(0, len(readings), 13) for a in scorer.score(readings[i : i + 13])]
    assert [a.event_id for a in cut] == [a.event_id for a in whole]
    assert [a.rule for a in whole] == ["clinical-limit/heart-rate-high"]  # the one at rest


def test_breathing_does_not_explain_away_its_own_limit() -> None:
    rr = stream(RR, [14] * 36 + [28] * 6, every_min=5)
    assert [a.rule for a in Scorer(MIX).score(rr)] == ["clinical-limit/respiratory-rate-high"]


def test_spo2_readings_taken_while_walking_are_not_evidence() -> None:
    walking = interleave(stream(STEPS, [100] * 20), stream(SPO2, [86, 85, 87, 86], every_min=5))
    assert Scorer(MIX).score(walking) == []
    resting = interleave(stream(STEPS, [0] * 20), stream(SPO2, [86, 85, 87, 86], every_min=5))
    [alert] = Scorer(MIX).score(resting)
    assert alert.rule == "clinical-limit/oxygen-saturation-low"
    assert "at rest (0 steps" in alert.explanation


def test_a_dense_oximeter_run_must_outlast_a_brief_dip_a_sparse_one_need_not() -> None:
    assert Scorer(MIX).score(stream(SPO2, [97] + [89] * 6)) == []  # 5 min of minutely dips
    assert [a.rule for a in Scorer(MIX).score(stream(SPO2, [97] + [89] * 9))] == [
        "clinical-limit/oxygen-saturation-low"
    ]
    sparse = stream(SPO2, [97, 89, 89], every_min=5)
    assert [a.rule for a in Scorer(MIX).score(sparse)] == ["clinical-limit/oxygen-saturation-low"]


def test_brief_dips_are_counted_per_day_whatever_the_batch_cuts() -> None:
    dips = [97, 97, 90, 89, 97, 97, 97, 89, 90, 90, 97, 97] * 3  # three a 12 min, each 2-3 min
    readings = stream(SPO2, dips)
    whole = Scorer(MIX)
    assert whole.score(readings) == []
    scorer = Scorer(MIX)
    for i in range(0, len(readings), 5):
        scorer.score(readings[i : i + 5])
    [(pid, state)] = scorer.snapshot(["P-0001"]).items()
    assert state == whole.snapshot(["P-0001"])[pid]
    assert sum(n for _, n in state["dips"]) == 6
    assert ParticipantState.from_json(state).dips == {d: n for d, n in state["dips"]}


def test_state_with_breathing_dips_and_study_round_trips() -> None:
    scorer = Scorer(MIX)
    scorer.score(workout(21) + stream(SPO2, [97, 89, 97], start_min=300))
    scorer.place(["P-0001"], "STUDY-A")
    data = scorer.snapshot(["P-0001"])["P-0001"]
    assert data["study_id"] == "STUDY-A"
    assert data["breathing"]["t_us"]
    assert data["dips"]
    assert ParticipantState.from_json(data).to_json() == data


def test_the_news2_profile_keeps_its_behaviour() -> None:
    config = ScoringConfig(device_quality=False, personal_baselines=False, multivariate=False)
    data = Scorer(config)
    data.score(stream(SPO2, [97, 90, 97, 90, 97]))
    assert "dips" not in data.snapshot(["P-0001"])["P-0001"]
    assert config.exertion_breath_rise is None
    assert config.brief_dip_minutes is None


def test_a_rarely_measured_reading_counts_alone_and_says_so() -> None:
    temperature = stream(Metric.BODY_TEMPERATURE, [36.8, 36.9, 38.3], every_min=30)
    [alert] = Scorer(MIX).score(temperature)
    assert alert.rule == "clinical-limit/body-temperature-high"
    assert "in a single reading" in alert.explanation
    assert "the reading before was 30 min earlier" in alert.explanation
    # a strap's breathing comes every minute: one reading is not enough there...
    assert Scorer(MIX).score(stream(RR, [14] * 10 + [27, 14, 14])) == []
    # ...and a participant's very first reading never counts alone
    assert Scorer(MIX).score(stream(Metric.BODY_TEMPERATURE, [38.3])) == []
