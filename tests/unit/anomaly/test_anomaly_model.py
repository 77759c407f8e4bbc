"""The multivariate model on crafted streams: windows, personal baselines of four vitals, the
shipped IsolationForest, and the model rule's episodes. A participant rests for a day (the
baselines learn), then on day two something happens (or not).

Scored with the classic profile, chosen explicitly (the platform's default is device-mix,
decision 0089): its resting-shift rule wants +20 beats/min, so the +15 drift here is left
to the model. The device-mix profile's shift rule (+13) alerts on it by itself (last test)."""

from __future__ import annotations

import itertools
import json
import random
import uuid
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from anomaly.config import ScoringConfig
from anomaly.domain import Scored
from anomaly.domain import Scorer as Scorer_
from anomaly.forest import Forest, fit, shipped
from anomaly.model import RULE
from anomaly.windows import FEATURES, Judged
from anomaly_streams import T0
from trialstream.events.alerts import AlertKind, AlertRaised
from trialstream.events.readings import UNITS, Metric, ReadingReceived

DAY = 24 * 60
CLASSIC = ScoringConfig.classic()


def Scorer(
    config: ScoringConfig = CLASSIC,
    *,
    on_windows: Callable[[Judged, list[str]], None] | None = None,
) -> Scorer_:
    return Scorer_(config, on_windows=on_windows)


DRIFT = (DAY + 360, DAY + 600)  # minutes: day two, 16:00-20:00 UTC
HR, SPO2, TEMP, RR, STEPS = (
    Metric.HEART_RATE,
    Metric.OXYGEN_SATURATION,
    Metric.BODY_TEMPERATURE,
    Metric.RESPIRATORY_RATE,
    Metric.STEP_COUNT,
)


def reading(pid: str, metric: Metric, minute: float, value: float) -> ReadingReceived:
    return ReadingReceived(
        event_id=uuid.uuid5(uuid.NAMESPACE_URL, f"{pid}/{metric}/{minute}"),
        participant_id=pid,
        device_id="wear-1",
        metric=metric,
        value=value,
        unit=UNITS[metric],
        measured_at=T0 + timedelta(minutes=minute),
    )


def day_and_a_half(
    *,
    drift: tuple[int, int] | None = None,
    exercise: Sequence[tuple[int, int]] = (),
    artefacts: bool = False,
    pid: str = "P-0001",
    seed: int = 3,
) -> list[ReadingReceived]:
    """A resting participant from T0 for 1 day + 12 h: heart rate and steps every minute,
    the other vitals every 5 min; `drift` adds heart rate +15, SpO2 -2.5, temperature
    +0.6 and breathing +4 (each alone under its clinical limit) in [start, end) minutes."""
    rng = np.random.default_rng(seed)
    out: list[ReadingReceived] = []
    for minute in range(DAY + DAY // 2):
        off = drift is not None and drift[0] <= minute < drift[1]
        moving = any(a <= minute < b for a, b in exercise)
        hr = 64 + rng.normal(0, 1.5) + (15 if off else 0) + (55 if moving else 0)
        out.append(reading(pid, STEPS, minute, 130 if moving else 0))
        out.append(reading(pid, HR, minute + 0.5, round(float(hr))))
        if minute % 5 == 0:
            spo2 = 97.5 + rng.normal(0, 0.4) - (2.5 if off else 0)
            temp = 36.7 + rng.normal(0, 0.05) + (0.6 if off else 0) + (0.3 if moving else 0)
            rr = 14 + rng.normal(0, 0.5) + (4 if off else 0) + (9 if moving else 0)
            out.append(reading(pid, SPO2, minute + 0.6, round(float(spo2))))
            out.append(reading(pid, TEMP, minute + 0.7, round(float(temp), 2)))
            out.append(reading(pid, RR, minute + 0.8, round(float(rr), 1)))
    if artefacts:  # one burst of motion: heart rate, SpO2 and breathing way off, once
        at = T0 + timedelta(minutes=DAY + 400)
        wrong = {(HR, 0.5): 185.0, (HR, 1.5): 180.0, (SPO2, 0.6): 84.0, (RR, 0.8): 30.0}
        for i, r in enumerate(out):
            for (metric, offset), value in wrong.items():
                if r.metric is metric and r.measured_at == at + timedelta(minutes=offset):
                    out[i] = r.model_copy(update={"value": value})
    return out


def model_alerts(alerts: Sequence[AlertRaised]) -> list[AlertRaised]:
    return [a for a in alerts if a.rule == RULE]


@pytest.fixture(scope="module")
def drifting() -> list[ReadingReceived]:
    return day_and_a_half(drift=DRIFT)


@pytest.fixture(scope="module")
def whole(drifting: list[ReadingReceived]) -> Scored:
    return Scorer().score_all(drifting)


def test_mild_drift_of_several_vitals_raises_one_model_alert(whole: Scored) -> None:
    (alert,) = model_alerts(whole.alerts)
    assert [a.rule for a in whole.alerts] == [RULE]  # no vital crossed a limit on its own
    assert alert.kind is AlertKind.CLINICAL
    assert alert.metric is None
    assert alert.model_version == "iforest-1.0+classic/rules-2.0"
    start = T0 + timedelta(minutes=DRIFT[0])
    assert start <= alert.detected_at <= start + timedelta(minutes=90)
    assert alert.threshold == shipped().threshold
    assert len(alert.observed) == 2
    assert min(alert.observed) >= shipped().threshold


def test_model_alert_explains_its_score_and_the_deviations_behind_it(whole: Scored) -> None:
    (alert,) = model_alerts(whole.alerts)
    text = alert.explanation
    assert "iforest-1.0" in text
    assert f"anomaly score {alert.observed[-1]:.3f}" in text
    for vital in ("heart rate", "oxygen saturation", "body temperature", "respiratory rate"):
        assert f"{vital} " in text
    assert "vs own 64" in text  # the heart rate's own baseline at this time of day
    assert "No clinical limit needs to be crossed" in text


def test_model_episode_ends_when_the_vitals_are_back(whole: Scored) -> None:
    (ended,) = [e for e in whole.ended if e.rule == RULE]
    assert ended.ended_at > T0 + timedelta(minutes=DRIFT[1])
    assert "3 windows in a row" in ended.explanation


def test_without_the_model_the_drift_goes_unnoticed(drifting: list[ReadingReceived]) -> None:
    assert Scorer(ScoringConfig(multivariate=False)).score(drifting) == []


def test_exercise_is_not_flagged_by_the_model() -> None:
    bouts = [(DAY + 360 + k * 60, DAY + 400 + k * 60) for k in range(5)]
    readings = day_and_a_half(exercise=bouts)
    assert model_alerts(Scorer().score(readings)) == []


def test_lone_artefacts_are_ignored_by_the_model() -> None:
    assert model_alerts(Scorer().score(day_and_a_half(artefacts=True))) == []


def test_features_are_deviations_from_the_own_baseline_in_spreads(
    drifting: list[ReadingReceived],
) -> None:
    seen: list[tuple[int, np.ndarray[Any, Any]]] = []

    def collect(judged: Judged, _: list[str]) -> None:
        seen.extend(
            zip(judged.closed.start_us[judged.ok].tolist(), judged.x[judged.ok], strict=True)
        )

    Scorer(on_windows=collect).score(drifting)
    us = 60_000_000
    t0 = int(T0.timestamp()) * 1_000_000
    before = [x for t, x in seen if t < t0 + DRIFT[0] * us]
    during = [x for t, x in seen if t0 + (DRIFT[0] + 30) * us <= t < t0 + (DRIFT[1] - 30) * us]
    assert before
    assert during
    assert min(float(t - t0) / us for t, _ in seen) >= DAY - 60  # a day of history first
    assert max(float(x.max()) for x in before) < 3
    # Heart rate +15 over a spread floored at 2: 7.5 spreads, and every vital far out.
    assert all(x[0] == pytest.approx(7.5, abs=1.5) for x in during)
    assert all((x > 3).all() for x in during)


@pytest.mark.parametrize("seed", range(3))
def test_model_alerts_do_not_depend_on_batch_cuts_or_checkpoints(
    drifting: list[ReadingReceived], whole: Scored, seed: int
) -> None:
    other = day_and_a_half(drift=(DAY + 200, DAY + 420), pid="P-0002", seed=9)
    readings = sorted(drifting + other, key=lambda r: r.measured_at)
    expected = Scorer().score_all(readings)
    assert len(model_alerts(expected.alerts)) == 2
    rng = random.Random(seed)
    bounds = [0, *sorted(rng.sample(range(1, len(readings)), k=60)), len(readings)]
    stored: dict[str, dict[str, Any]] = {}
    alerts: list[AlertRaised] = []
    ended = []
    for lo, hi in itertools.pairwise(bounds):
        batch = readings[lo:hi]
        ids = list(dict.fromkeys(r.participant_id for r in batch))
        scorer = Scorer()  # as the service does: fresh, from the checkpoint of this batch
        scorer.restore({p: stored[p] for p in ids if p in stored})
        found = scorer.score_all(batch)
        alerts += found.alerts
        ended += found.ended
        stored |= json.loads(json.dumps(scorer.snapshot(ids)))
    key = lambda a: (a.detected_at, a.participant_id, a.rule)  # noqa: E731
    assert sorted(alerts, key=key) == sorted(expected.alerts, key=key)
    assert sorted(ended, key=lambda e: e.event_id) == sorted(
        expected.ended, key=lambda e: e.event_id
    )


def test_window_state_survives_a_checkpoint_round_trip(drifting: list[ReadingReceived]) -> None:
    scorer = Scorer()
    scorer.score(drifting[: len(drifting) // 2])
    snap = json.loads(json.dumps(scorer.snapshot(["P-0001"])))
    assert snap["P-0001"]["windows"]["hours"]  # hourly means of the four vitals
    again = Scorer()
    again.restore(snap)
    assert json.loads(json.dumps(again.snapshot(["P-0001"]))) == snap
    rest = drifting[len(drifting) // 2 :]
    assert again.score(rest) == scorer.score(rest)


def test_a_checkpoint_from_before_the_model_still_loads(drifting: list[ReadingReceived]) -> None:
    scorer = Scorer()
    scorer.score(drifting[:500])
    old = scorer.snapshot(["P-0001"])
    del old["P-0001"]["windows"]  # what the service wrote before this version
    restored = Scorer()
    restored.restore(old)
    assert restored.score(drifting[500:1000]) == []  # and it carries on learning
    assert restored.snapshot(["P-0001"])["P-0001"]["windows"]["window"] >= 0


def test_the_numpy_forest_scores_exactly_like_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    x = np.abs(rng.normal(size=(2000, 4)))
    model = fit(x, seed=1, trees=20, max_samples=128)
    forest = Forest.load(Forest.of(model, FEATURES, 0.7, version="test-1").save())
    probe = np.abs(rng.normal(size=(500, 4))) * 3
    assert forest.score(probe) == pytest.approx(-model.score_samples(probe), abs=1e-12)
    assert forest.version == "test-1"
    assert forest.features == FEATURES


def test_the_shipped_model_is_versioned_and_trained_on_the_tuning_seed() -> None:
    forest = shipped()
    assert forest.version == "iforest-1.0"
    assert forest.features == FEATURES
    assert "seed 7" in forest.meta["trained_on"]
    assert "synthetic" in forest.meta["trained_on"]
    calm, ill = np.zeros((1, 4)), np.array([[7.5, 5.0, 6.0, 8.0]])
    assert forest.score(calm)[0] < forest.threshold <= forest.score(ill)[0]


def test_the_default_device_mix_profile_finds_the_same_drift_by_its_resting_shift(
    drifting: list[ReadingReceived],
) -> None:
    alerts = Scorer_(ScoringConfig.default()).score(drifting)
    assert "personal-baseline/heart-rate-resting-high" in {a.rule for a in alerts}
    start = T0 + timedelta(minutes=DRIFT[0])
    assert all(a.detected_at >= start for a in alerts)
