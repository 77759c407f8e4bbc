"""The rules-3.0 device-mix profile (issue 21): persistence in time, the irregular-rhythm
rule, limits a study may move within safe bounds."""

from __future__ import annotations

import random

import pytest
from anomaly.config import ScoringConfig, UnsafeLimitError
from anomaly.domain import Scorer
from anomaly_streams import stream
from trialstream.events.alerts import AlertKind, Severity
from trialstream.events.readings import Metric

HR, SPO2 = Metric.HEART_RATE, Metric.OXYGEN_SATURATION
MIX = ScoringConfig.device_mix(device_quality=False, personal_baselines=False, multivariate=False)


def rules(readings: list) -> list[str]:  # type: ignore[type-arg]
    return [a.rule for a in Scorer(MIX).score(readings)]


def irregular(n: int, mean: float, spread: float, seed: int = 1) -> list[float]:
    rng = random.Random(seed)
    return [round(mean + rng.gauss(0, spread)) for _ in range(n)]


def test_a_spot_check_device_alerts_on_two_readings_fifteen_minutes_apart() -> None:
    assert rules(stream(HR, [100, 128, 130], every_min=15)) == ["clinical-limit/heart-rate-high"]
    # a jump of 40 or more is evidence once the next reading agrees: one reading later
    assert rules(stream(HR, [70, 128, 130], every_min=15)) == []
    assert rules(stream(HR, [70, 128, 130, 129], every_min=15)) == [
        "clinical-limit/heart-rate-high"
    ]


def test_single_sample_spikes_while_moving_are_not_evidence() -> None:
    # a workout on a spot-check device: one motion spike, then exercise at 126
    assert rules(stream(HR, [80, 196, 126, 124, 90], every_min=10)) == []
    # spikes among resting readings make neither an irregular rhythm nor a noisy sensor
    spiky = [62, 61, 63, 190, 62, 61, 201, 63, 62, 186, 61, 62] * 2
    assert rules(stream(HR, spiky, every_min=5)) == []


def test_a_chest_strap_needs_the_breach_held_for_four_minutes_not_five_readings() -> None:
    short = stream(HR, [70] + [140] * 24, every_min=1 / 12)  # 2 min of 5-s readings
    assert rules(short) == []
    held = stream(HR, [70] + [140] * 60, every_min=1 / 12)  # 5 min
    assert rules(held) == ["clinical-limit/heart-rate-high"]


def test_brief_apnea_like_dips_do_not_alert_but_sustained_desaturation_does() -> None:
    dips = [97, 97, 90, 89, 97, 97, 97, 89, 90, 90, 97, 97] * 3  # 2-3 min each, every minute
    assert rules(stream(SPO2, dips)) == []
    assert rules(stream(SPO2, [97] + [89] * 8)) == ["clinical-limit/oxygen-saturation-low"]


def test_the_trial_definitions_set_the_limits() -> None:
    assert rules(stream(HR, [115] * 10)) == []  # NEWS2 band 2, under the 120 definition
    assert rules(stream(Metric.BODY_TEMPERATURE, [38.0, 38.0], every_min=30)) == [
        "clinical-limit/body-temperature-high"
    ]


def test_an_irregular_fast_rhythm_at_rest_is_its_own_alert() -> None:
    alerts = Scorer(MIX).score(stream(HR, irregular(30, 112, 16)))
    found = [a for a in alerts if a.rule == "irregular-rhythm/heart-rate"]
    assert len(found) == 1
    assert (found[0].kind, found[0].severity) == (AlertKind.CLINICAL, Severity.MEDIUM)
    assert "Irregular heart rhythm" in found[0].explanation
    assert "one about every 1 min" in found[0].explanation


def test_a_regular_fast_rate_and_lone_artefacts_are_not_an_irregular_rhythm() -> None:
    steady = irregular(40, 112, 1.5)
    steady[10], steady[14] = 190, 185  # two motion artefacts close together
    assert "irregular-rhythm/heart-rate" not in rules(stream(HR, steady))


def test_a_sparse_window_straddling_a_workout_is_not_an_irregular_rhythm() -> None:
    """A spot-check device (one heart rate every 13 min): resting readings and a workout's
    fast ones in the same 8 make large changes and a fast mean, but an AF-like rhythm is
    fast throughout (`rhythm_min_low`: the lower third of the readings >= 85)."""
    workout = [66, 64, 67, 65, 84, 112, 138, 121, 95, 72, 66, 65, 67]
    unset = ScoringConfig.device_mix(
        device_quality=False, personal_baselines=False, multivariate=False, rhythm_min_low=None
    )
    rule = "irregular-rhythm/heart-rate"
    assert rule in [a.rule for a in Scorer(unset).score(stream(HR, workout, every_min=13))]
    assert rule not in rules(stream(HR, workout, every_min=13))
    assert rule in rules(stream(HR, irregular(30, 100, 14), every_min=13))  # AF, sparse


def test_the_irregular_rhythm_rule_does_not_depend_on_batch_cuts() -> None:
    readings = stream(HR, irregular(60, 120, 18, seed=4))
    whole = Scorer(MIX).score(readings)
    scorer = Scorer(MIX)
    cut = [a for i in range(0, 60, 7) for a in scorer.score(readings[i : i + 7])]
    assert [a.event_id for a in cut] == [a.event_id for a in whole]


def test_a_study_may_move_a_limit_only_within_safe_bounds() -> None:
    study = MIX.for_study({"clinical-limit/heart-rate-high": 110})
    assert rules(stream(HR, [115] * 10)) == []
    assert [a.threshold for a in Scorer(study).score(stream(HR, [115] * 10))] == [110]
    with pytest.raises(UnsafeLimitError):
        MIX.for_study({"clinical-limit/oxygen-saturation-low": 80})
