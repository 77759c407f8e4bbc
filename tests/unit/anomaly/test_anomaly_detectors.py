"""Device data quality (flatline, dropout) and personal resting baselines, on crafted streams.

These pin the classic profile's settings (rules-2.0: a 30-min resting mean 20 beats/min
above the baseline, 6 jumps an hour), chosen explicitly since the platform's default is the
device-mix profile (decision 0089); the device-mix profile's own are in
test_anomaly_device_mix.py and at the end of this file."""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Sequence
from datetime import timedelta

import pytest
from anomaly.config import ScoringConfig
from anomaly.domain import Scorer as Scorer_
from anomaly_streams import T0, interleave, stream
from trialstream.events.alerts import AlertKind, AlertRaised, Severity
from trialstream.events.readings import Metric, ReadingReceived

HR, STEPS = Metric.HEART_RATE, Metric.STEP_COUNT
DAY = 24 * 60
CLASSIC = ScoringConfig.classic()


def Scorer(config: ScoringConfig = CLASSIC, *, stream_clock: bool = True) -> Scorer_:
    return Scorer_(config, stream_clock=stream_clock)


def noisy(level: float, minutes: int, seed: int = 1, spread: float = 2.0) -> list[float]:
    rng = random.Random(seed)
    return [round(rng.gauss(level, spread), 1) for _ in range(minutes)]


def resting_days(
    level: float, days: int, pid: str = "P-0001", seed: int = 1
) -> list[ReadingReceived]:
    minutes = days * DAY
    return interleave(
        stream(HR, noisy(level, minutes, seed), pid=pid),
        stream(STEPS, [0] * minutes, start_min=0.5, pid=pid),
    )


def rules(alerts: Sequence[AlertRaised]) -> list[str]:
    return [a.rule for a in alerts]


def test_heart_rate_stuck_at_one_value_is_a_device_quality_alert() -> None:
    readings = stream(HR, noisy(70, 10) + [72.0] * 40)
    (alert,) = Scorer().score(readings)
    assert (alert.kind, alert.severity) == (AlertKind.DEVICE_QUALITY, Severity.LOW)
    assert alert.rule == "device-quality/flatline-heart-rate"
    # The run of repeats starts at minute 11 and must span 20 min: detected at minute 31.
    assert alert.detected_at == T0 + timedelta(minutes=31)
    assert "stuck at exactly 72 beats/min for 20 min" in alert.explanation
    assert "22 identical readings in a row" in alert.explanation


def test_naturally_varying_heart_rate_is_not_a_flatline() -> None:
    assert Scorer().score(stream(HR, noisy(70, 300, spread=1.5))) == []


def test_participant_falling_silent_gets_one_dropout_alert_on_stream_time() -> None:
    quiet = stream(HR, noisy(70, 30), pid="P-0001")
    busy = stream(HR, noisy(70, 180, seed=2), pid="P-0002")
    scorer = Scorer()
    alerts = [
        a for i in range(0, 210, 30) for a in scorer.score(interleave(quiet, busy)[i : i + 30])
    ]
    (alert,) = alerts
    assert (alert.participant_id, alert.rule) == ("P-0001", "device-quality/dropout")
    assert alert.window_start == T0 + timedelta(minutes=29)  # the last reading
    assert alert.detected_at == T0 + timedelta(minutes=29 + 45)
    assert alert.metric is None
    assert "No readings of any kind for 45 min" in alert.explanation


def test_dropout_is_found_when_the_participant_comes_back() -> None:
    readings = stream(HR, noisy(70, 20)) + stream(HR, noisy(70, 20), start_min=140)
    (alert,) = Scorer().score(readings)
    assert alert.rule == "device-quality/dropout"
    assert alert.detected_at == T0 + timedelta(minutes=19 + 45)


def test_a_short_break_is_not_a_dropout() -> None:
    readings = stream(HR, noisy(70, 20)) + stream(HR, noisy(70, 20), start_min=50)
    assert Scorer().score(readings) == []


def test_resting_heart_rate_far_above_own_baseline_alerts_below_the_clinical_limit() -> None:
    history = resting_days(58, 3)
    raised = interleave(
        stream(HR, noisy(90, 120, seed=9), start_min=3 * DAY),
        stream(STEPS, [0] * 120, start_min=3 * DAY + 0.5),
    )
    alerts = Scorer().score(history + raised)
    (alert,) = alerts
    assert alert.rule == "personal-baseline/heart-rate-resting-high"
    assert (alert.kind, alert.metric, alert.severity) == (AlertKind.CLINICAL, HR, Severity.MEDIUM)
    assert alert.baseline is not None
    assert 56 <= alert.baseline <= 60
    assert max(alert.observed) < 111  # no clinical limit would have fired
    assert alert.detected_at <= T0 + timedelta(minutes=3 * DAY + 60)
    assert "above this participant's own resting baseline of" in alert.explanation


def test_the_same_heart_rate_is_normal_for_one_participant_and_raised_for_another() -> None:
    day4 = 3 * DAY
    calm = resting_days(58, 3, pid="P-0001") + stream(HR, noisy(88, 90), start_min=day4)
    high = resting_days(84, 3, pid="P-0002", seed=3) + stream(
        HR, noisy(88, 90, seed=4), start_min=day4, pid="P-0002"
    )
    steps = [
        s
        for pid in ("P-0001", "P-0002")
        for s in stream(STEPS, [0] * 90, start_min=day4 + 0.5, pid=pid)
    ]
    alerts = Scorer().score(interleave(calm, high, steps))
    assert [(a.participant_id, a.rule) for a in alerts] == [
        ("P-0001", "personal-baseline/heart-rate-resting-high")
    ]


def test_a_raised_heart_rate_while_walking_is_not_a_baseline_deviation() -> None:
    walking = interleave(
        stream(HR, noisy(95, 90), start_min=3 * DAY),
        stream(STEPS, [80] * 90, start_min=3 * DAY + 0.5),
    )
    assert rules(Scorer().score(resting_days(58, 3) + walking)) == []


def test_no_baseline_judgement_before_enough_history() -> None:
    first_day = interleave(
        stream(HR, noisy(58, 600) + noisy(92, 120, seed=5)),
        stream(STEPS, [0] * 720, start_min=0.5),
    )
    assert Scorer().score(first_day) == []


def mixed_stream() -> list[ReadingReceived]:
    """Three days of history, then a baseline shift, a flatline and a dropout with return."""
    day4 = 3 * DAY
    return interleave(
        resting_days(60, 3, pid="P-0001"),
        resting_days(66, 3, pid="P-0002", seed=7),
        stream(HR, noisy(95, 100, seed=8), start_min=day4, pid="P-0001"),
        stream(STEPS, [0] * 100, start_min=day4 + 0.5, pid="P-0001"),
        stream(HR, [81.0] * 40, start_min=day4, pid="P-0002"),
        stream(HR, noisy(66, 30, seed=6), start_min=day4 + 150, pid="P-0002"),
    )


@pytest.fixture(scope="module")
def whole() -> list[AlertRaised]:
    alerts = Scorer().score(mixed_stream())
    assert sorted(set(rules(alerts))) == [
        "device-quality/dropout",
        "device-quality/flatline-heart-rate",
        "personal-baseline/heart-rate-resting-high",
    ]
    return alerts


@pytest.mark.parametrize("seed", range(5))
def test_detectors_do_not_depend_on_batch_cuts_or_checkpoints(
    whole: list[AlertRaised], seed: int
) -> None:
    readings = mixed_stream()
    rng = random.Random(seed)
    bounds = [0, *sorted(rng.sample(range(1, len(readings)), k=40)), len(readings)]
    stored: dict[str, dict[str, object]] = {}
    alerts: list[AlertRaised] = []
    for lo, hi in itertools.pairwise(bounds):
        batch = readings[lo:hi]
        ids = list(dict.fromkeys(r.participant_id for r in batch))
        scorer = Scorer()  # as the service does: fresh, from the checkpoint of this batch
        scorer.restore({p: stored[p] for p in ids if p in stored})
        alerts += scorer.score(batch)
        stored |= json.loads(json.dumps(scorer.snapshot(ids)))
    key = lambda a: (a.detected_at, a.participant_id, a.rule)  # noqa: E731
    assert sorted(alerts, key=key) == sorted(whole, key=key)


def test_an_episode_ends_when_readings_are_back_in_range() -> None:
    readings = stream(HR, noisy(140, 10) + noisy(70, 10))
    scored = Scorer().score_all(readings)
    assert [a.rule for a in scored.alerts] == ["clinical-limit/heart-rate-high"]
    (ended,) = scored.ended
    assert (ended.rule, ended.kind, ended.metric) == (
        "clinical-limit/heart-rate-high",
        AlertKind.CLINICAL,
        HR,
    )
    assert ended.ended_at == T0 + timedelta(minutes=14)  # the 5th reading back in range
    assert ended.explanation.startswith("Back to normal: 5 readings in a row")


def test_a_silence_does_not_end_an_episode() -> None:
    readings = stream(HR, noisy(140, 10)) + stream(HR, noisy(70, 10), start_min=30)
    scored = Scorer().score_all(readings)
    assert "clinical-limit/heart-rate-high" in rules(scored.alerts)
    assert scored.ended == []


def test_ended_episodes_do_not_depend_on_batch_cuts() -> None:
    readings = stream(HR, noisy(140, 10) + noisy(70, 10) + noisy(140, 10) + noisy(70, 10))
    whole = Scorer().score_all(readings).ended
    assert len(whole) == 2
    scorer = Scorer()
    pieces = [
        e for i in range(0, len(readings), 7) for e in scorer.score_all(readings[i : i + 7]).ended
    ]
    assert pieces == whole


def test_live_scoring_does_not_judge_silence_by_other_partitions_clocks() -> None:
    """A consumed batch can hold one partition hours ahead of another while catching up:
    live, only a participant's own readings (and the wall clock) reveal their silence."""
    behind = stream(HR, noisy(70, 30), pid="P-0001")
    ahead = stream(HR, noisy(70, 30, seed=2), start_min=180, pid="P-0002")
    live = Scorer(stream_clock=False)
    assert live.score(ahead + behind[:15]) == []
    assert live.score(behind[15:]) == []
    (found,) = Scorer().score(interleave(ahead, behind))  # replay: one clock, time order
    assert found.participant_id == "P-0001"


def test_live_scoring_finds_a_gap_when_the_participant_resumes() -> None:
    readings = stream(HR, noisy(70, 20)) + stream(HR, noisy(70, 20), start_min=140)
    (alert,) = Scorer(stream_clock=False).score(readings)
    assert alert.rule == "device-quality/dropout"
    assert alert.detected_at == T0 + timedelta(minutes=19 + 45)


def spiky(minutes: int, every: int, seed: int = 1) -> list[float]:
    """A calm heart rate with a lone 150 spike every `every` minutes."""
    values = noisy(70, minutes, seed)
    for i in range(every // 2, minutes, every):
        values[i] = 150.0
    return values


def test_a_sensor_jumping_again_and_again_is_a_device_quality_alert() -> None:
    alerts = Scorer().score(stream(HR, spiky(90, 12)))
    (alert,) = [a for a in alerts if a.rule == "device-quality/implausible-jumps-heart-rate"]
    assert (alert.kind, alert.severity) == (AlertKind.DEVICE_QUALITY, Severity.LOW)
    # Spikes at minutes 6, 18, 30: the third one's way back down is the 6th jump.
    assert alert.detected_at == T0 + timedelta(minutes=31)
    assert "6 times in the 60 min" in alert.explanation


def test_the_odd_motion_artefact_is_not_a_noisy_sensor() -> None:
    alerts = Scorer().score(stream(HR, spiky(240, 45)))
    assert "device-quality/implausible-jumps-heart-rate" not in rules(alerts)


def test_jump_counting_does_not_depend_on_batch_cuts() -> None:
    readings = stream(HR, spiky(200, 12))
    whole = Scorer().score_all(readings)
    stored: dict[str, dict[str, object]] = {}
    alerts, ended = [], []
    for i in range(0, len(readings), 7):
        scorer = Scorer()
        scorer.restore(stored)
        scored = scorer.score_all(readings[i : i + 7])
        alerts += scored.alerts
        ended += scored.ended
        stored = json.loads(json.dumps(scorer.snapshot(["P-0001"])))
    assert (alerts, ended) == (whole.alerts, whole.ended)
    assert "device-quality/implausible-jumps-heart-rate" in rules(alerts)


def test_with_the_device_mix_profile_a_tachycardia_is_the_limit_rules_episode_only() -> None:
    """Readings beyond the heart-rate-high limit are the limit rule's: the resting-shift
    rule does not also alert 90 min into the same episode (issue 21)."""
    tachycardia = interleave(
        stream(HR, noisy(130, 150, seed=9), start_min=3 * DAY),
        stream(STEPS, [0] * 150, start_min=3 * DAY + 0.5),
    )
    readings = resting_days(58, 3) + tachycardia
    profile = ScoringConfig.device_mix(multivariate=False)
    assert sorted(set(rules(Scorer(profile).score(readings)))) == ["clinical-limit/heart-rate-high"]
    both = ScoringConfig.device_mix(multivariate=False, shift_below_limit=False)
    assert "personal-baseline/heart-rate-resting-high" in rules(Scorer(both).score(readings))


@pytest.mark.parametrize(
    ("level", "alerts_with"),
    [
        (37.5, {"device-mix"}),  # 8.5 under a resting 46: bradycardia, not their normal
        (34.0, {"device-mix", "classic"}),  # 12 under: every profile
        (40.0, set()),  # 6 under, at the limit: the participant's own normal asleep
    ],
)
def test_bradycardia_is_judged_against_the_participants_own_resting_rate(
    level: float, alerts_with: set[str]
) -> None:
    """A heart rate at or below 40 within the personal margin of the participant's own
    resting rate at that time of day is their normal: 10 beats/min in the classic profile,
    7 in the device-mix profile (rules-3.4), where a fall from 46 to 37 is a bradycardia."""
    low = interleave(
        stream(HR, noisy(level, 20, seed=9, spread=0.5), start_min=3 * DAY),
        stream(STEPS, [0] * 20, start_min=3 * DAY + 0.5),
    )
    readings = resting_days(46, 3, seed=5) + low
    profiles = {
        "device-mix": ScoringConfig.device_mix(multivariate=False),
        "classic": ScoringConfig.classic(multivariate=False),
    }
    alerting = {
        name
        for name, profile in profiles.items()
        if "clinical-limit/heart-rate-low" in rules(Scorer(profile).score(readings))
    }
    assert alerting == alerts_with
