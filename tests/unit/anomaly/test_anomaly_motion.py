"""Device-mix rules-3.3 (issue 21, decision 0094): movement seen in heart rate for
participants without steps, a resting shift held by most of its window's readings, and
implausible jumps counted at rest only."""

from __future__ import annotations

import random

import numpy as np
from anomaly.baseline import Deviation
from anomaly.config import ScoringConfig
from anomaly.domain import Scorer
from anomaly.state import ParticipantState
from anomaly_streams import interleave, stream
from trialstream.events.readings import Metric

HR, SPO2, STEPS = Metric.HEART_RATE, Metric.OXYGEN_SATURATION, Metric.STEP_COUNT
DAY = 24 * 60
MIX = ScoringConfig.device_mix(personal_baselines=False, multivariate=False)


def spot_check(heart: list[float]) -> list:  # type: ignore[type-arg]
    """A spot-check device without steps: heart rate every 10 min, then two SpO2 readings
    of 85-86 % 20 min apart."""
    return interleave(
        stream(HR, heart, every_min=10),
        stream(SPO2, [97, 97, 86, 85], every_min=20, start_min=21),
    )


def test_low_spo2_soon_after_heart_rate_fell_40_is_movement_not_desaturation() -> None:
    # 175 is a motion spike coming back to 105 (or a heart recovering): the participant moved
    moving = spot_check([70, 72, 105, 175, 105, 104, 106, 105])
    assert Scorer(MIX).score(moving) == []


def test_low_spo2_at_rest_without_steps_alerts_and_says_context_was_inferred() -> None:
    [alert] = Scorer(MIX).score(spot_check([70, 72, 71, 73, 72, 70, 71, 72]))
    assert alert.rule == "clinical-limit/oxygen-saturation-low"
    assert "no sign of movement" in alert.explanation
    assert "inferred, not measured" in alert.explanation


def test_without_motion_inference_the_same_breach_alerts() -> None:
    plain = ScoringConfig.device_mix(
        personal_baselines=False, multivariate=False, motion_fall_bpm=None
    )
    moving = spot_check([70, 72, 105, 175, 105, 104, 106, 105])
    assert [a.rule for a in Scorer(plain).score(moving)] == ["clinical-limit/oxygen-saturation-low"]


def test_movement_seen_in_heart_rate_does_not_depend_on_batch_cuts_or_checkpoints() -> None:
    later = interleave(  # an hour after the fall: at rest again
        stream(HR, [70, 71, 72, 70, 71, 72, 70, 71], every_min=10, start_min=80),
        stream(SPO2, [97, 86, 85], every_min=20, start_min=101),
    )
    readings = spot_check([70, 72, 105, 175, 105, 104, 106, 105]) + later
    whole = Scorer(MIX).score(readings)
    assert [a.rule for a in whole] == ["clinical-limit/oxygen-saturation-low"]  # the later one
    for size in (1, 2, 3, 5):
        scorer = Scorer(MIX)
        cut = []
        for i in range(0, len(readings), size):
            fresh = Scorer(MIX)
            fresh.restore(scorer.snapshot(["P-0001"]))
            cut += fresh.score(readings[i : i + size])
            scorer = fresh
        assert [a.event_id for a in cut] == [a.event_id for a in whole]


def test_the_newest_heart_rate_fall_is_checkpointed() -> None:
    state = ParticipantState(fall_us=1_000_000)
    assert ParticipantState.from_json(state.to_json()).fall_us == 1_000_000
    assert "fall_us" not in ParticipantState().to_json()  # older checkpoints still load


def noisy(level: float, n: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [round(rng.gauss(level, 2)) for _ in range(n)]


def test_a_raised_mean_is_a_resting_shift_only_when_most_readings_are_raised() -> None:
    cfg = ScoringConfig.device_mix()
    one = np.array([60.0])
    raised = Deviation(one, np.array([2.0]), np.array([80.0]), np.array([18]))
    assert raised.bands(cfg).tolist() == [2]  # the mean alone (share not judged)
    workout = Deviation(raised.baseline, raised.spread, raised.mean, raised.count, np.array([0.3]))
    assert workout.bands(cfg).tolist() == [0]  # a third of the window: a workout's share
    held = Deviation(raised.baseline, raised.spread, raised.mean, raised.count, np.array([0.6]))
    assert held.bands(cfg).tolist() == [2]


def test_a_held_rise_without_steps_is_a_resting_shift_a_workout_is_not() -> None:
    cfg = ScoringConfig.device_mix(multivariate=False, device_quality=False)
    # three days every 5 min without steps: counted as resting
    history = stream(HR, noisy(60, 3 * DAY // 5, 1), every_min=5)
    start = 3 * DAY
    workout = stream(
        HR, noisy(62, 12, 2) + noisy(116, 9, 3) + noisy(61, 30, 4), every_min=5, start_min=start
    )
    assert Scorer(cfg).score(history + workout) == []
    held = stream(HR, noisy(80, 40, 5), every_min=5, start_min=start)
    assert [a.rule for a in Scorer(cfg).score(history + held)] == [
        "personal-baseline/heart-rate-resting-high"
    ]


def test_jumps_while_walking_are_not_a_loose_sensor_the_same_at_rest_are() -> None:
    cfg = ScoringConfig.device_mix(personal_baselines=False, multivariate=False)
    spikes = [75, 180] * 10 + [75] * 5  # 20 jumps in 25 min
    walking = interleave(stream(HR, spikes), stream(STEPS, [100] * 25, start_min=0.5))
    assert "device-quality/implausible-jumps-heart-rate" not in {
        a.rule for a in Scorer(cfg).score(walking)
    }
    resting = interleave(stream(HR, spikes), stream(STEPS, [0] * 25, start_min=0.5))
    assert "device-quality/implausible-jumps-heart-rate" in {
        a.rule for a in Scorer(cfg).score(resting)
    }


def test_a_spike_back_to_rest_then_a_fast_heart_at_rest_still_alerts() -> None:
    # the fall 185 -> 73 lands at rest: not "fast while moving", so the 142s that follow
    # are a tachycardia, not exercise; a fall landing at 130 is
    at_rest = stream(HR, [72, 74, 185, 73] + [142] * 8)
    assert [a.rule for a in Scorer(MIX).score(at_rest)] == ["clinical-limit/heart-rate-high"]
    moving = stream(HR, [72, 74, 185, 130] + [142] * 8)
    assert Scorer(MIX).score(moving) == []
