"""An irregular rhythm (atrial-fibrillation-like) as its own rule.

A regular heart at rest changes by 1-3 beats/min from one reading to the next; in atrial
fibrillation successive readings jump about at random by 10-30. The detector looks at the
lower third of the absolute differences between successive heart-rate readings over the
last `rhythm_readings` (its 1/3 quantile: two motion artefacts make four large jumps and
still do not count; in AF nearly every jump is large) and at their mean: irregular and
fast (>= `rhythm_min_mean`) at rest (no steps known, or few) is the band. It needs no steps and works
on any cadence: a strap fills the readings in under a minute, a spot-check device in an
hour or two (`rhythm_window_minutes` bounds how old they may be).

The last readings are carried in the participant's state, so the result does not depend
on where the stream is cut into batches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view
from trialstream.events.alerts import AlertKind, AlertRaised, Severity
from trialstream.events.readings import Metric

from anomaly.arrays import US_PER_MINUTE
from anomaly.config import Persistence, ScoringConfig
from anomaly.episodes import Hit, Rows
from anomaly.explain import number, span, to_datetime
from anomaly.state import ParticipantState

FloatArray = npt.NDArray[np.float64]
RULE = "irregular-rhythm/heart-rate"


@dataclass(frozen=True)
class Rhythm:
    """Per heart-rate row: typical (1/3 quantile) successive jump, mean and time span of the last readings
    (NaN where fewer are known)."""

    jump: FloatArray
    mean: FloatArray
    minutes: FloatArray
    resting: npt.NDArray[np.bool_]
    low: FloatArray | None = None  # the readings' own 1/3 quantile (rhythm_min_low set)

    def irregular(self, config: ScoringConfig) -> npt.NDArray[np.bool_]:
        with np.errstate(invalid="ignore"):
            result: npt.NDArray[np.bool_] = (
                (self.jump >= config.rhythm_median_jump)
                & (self.mean >= config.rhythm_min_mean)
                & (self.minutes <= config.rhythm_window_minutes)
                & self.resting
            )
            if self.low is not None and config.rhythm_min_low is not None:
                result &= self.low >= config.rhythm_min_low
        return result

    def bands(self, config: ScoringConfig) -> npt.NDArray[np.int8]:
        band: npt.NDArray[np.int8] = np.where(self.irregular(config), 2, 0).astype(np.int8)
        return band


def rhythm(rows: Rows, held: list[ParticipantState], config: ScoringConfig) -> Rhythm:
    """Judge heart-rate rows (one group per participant, `held` their states) and keep each
    participant's last readings for the next batch."""
    k = config.rhythm_readings
    n = len(rows.t)
    carried = [len(s.rhythm_us) for s in held]
    sizes = np.diff(np.append(rows.first, n)) + np.array(carried, dtype=np.int64)
    v = np.concatenate(
        [
            np.concatenate([s.rhythm_v, rows.v[a : b + 1]])
            for s, a, b in zip(held, rows.first.tolist(), rows.last.tolist(), strict=True)
        ]
    )
    t = np.concatenate(
        [
            np.concatenate([np.asarray(s.rhythm_us, np.int64), rows.t[a : b + 1]])
            for s, a, b in zip(held, rows.first.tolist(), rows.last.tolist(), strict=True)
        ]
    )
    starts = np.cumsum(sizes) - sizes
    pos = np.arange(len(v)) - np.repeat(starts, sizes)  # index within the participant's run
    jump = np.full(len(v), np.nan)
    mean = np.full(len(v), np.nan)
    minutes = np.full(len(v), np.nan)
    low = None if config.rhythm_min_low is None else np.full(len(v), np.nan)
    if len(v) >= k:
        diffs = np.abs(np.diff(v, prepend=v[0]))
        full = np.flatnonzero(pos >= k - 1)
        windows = sliding_window_view(diffs, k - 1)  # window j covers diffs j..j+k-2
        jump[full] = np.quantile(windows[full - k + 2], 1 / 3, axis=1)
        csum = np.concatenate([[0.0], np.cumsum(v)])
        mean[full] = (csum[full + 1] - csum[full + 1 - k]) / k
        minutes[full] = (t[full] - t[full - k + 1]) / US_PER_MINUTE
        if low is not None:  # fast throughout, not a workout's fast readings among resting ones
            low[full] = np.quantile(sliding_window_view(v, k)[full - k + 1], 1 / 3, axis=1)
    own = pos >= np.repeat(np.array(carried, dtype=np.int64), sizes)  # this batch's rows
    ends = np.cumsum(sizes)
    for s, lo, hi in zip(
        held, np.maximum(ends - (k - 1), starts).tolist(), ends.tolist(), strict=True
    ):
        s.rhythm_v, s.rhythm_us = v[lo:hi].tolist(), t[lo:hi].tolist()
    resting = (rows.step_readings == 0) | (rows.steps <= config.rest_steps)
    return Rhythm(jump[own], mean[own], minutes[own], resting, None if low is None else low[own])


def judged_on_every_row(
    rows: Rows,
    confirmed: npt.NDArray[np.bool_],
    judged: npt.NDArray[np.bool_],
    held: list[ParticipantState],
) -> npt.NDArray[np.bool_]:
    """Per heart-rate row (all of them, `confirmed` marks those the rhythm was judged on,
    `judged` their verdicts): the rhythm as last judged at or before it. A jump of 40 or
    more inside an irregular rhythm is unconfirmed (the next reading jumps again) but
    still the heart's, not a loose sensor's. The last verdict is carried in the state,
    so the answer does not depend on batch cuts."""
    n = len(rows.t)
    verdict = np.zeros(n, dtype=np.bool_)
    verdict[confirmed] = judged
    latest = np.maximum.accumulate(np.where(confirmed, np.arange(n), -1))
    own = latest >= rows.first[rows.group]  # a verdict of this participant in this batch
    before = np.array([s.rhythm_irregular for s in held], dtype=np.bool_)
    out: npt.NDArray[np.bool_] = np.where(own, verdict[np.maximum(latest, 0)], before[rows.group])
    for g, state in enumerate(held):
        state.rhythm_irregular = bool(out[rows.last[g]])
    return out


@dataclass(frozen=True)
class IrregularRhythmRule:
    """Heart rate irregular from reading to reading and fast, at any cadence."""

    rhythm: Rhythm

    rule = RULE
    levels = (2,)
    kind = AlertKind.CLINICAL
    metric = Metric.HEART_RATE

    def persistence(self, config: ScoringConfig) -> Persistence:
        return config.rhythm

    def build(self, hit: Hit) -> AlertRaised:
        i, cfg, r = hit.i, hit.config, self.rhythm
        start, end = to_datetime(hit.run.start_us), to_datetime(hit.detected_us)
        window = float(r.minutes[i])
        cadence = window / max(cfg.rhythm_readings - 1, 1)
        explanation = (
            f"Irregular heart rhythm: over the last {cfg.rhythm_readings} heart-rate readings "
            f"({number(window)} min, one about every {_cadence(cadence)}) the rate averaged "
            f"{number(float(r.mean[i]))} beats/min and two thirds of the changes from one "
            f"reading to the next were {number(float(r.jump[i]))} beats/min or more (a "
            f"regular heart at rest: 1-3); irregular since {span(start, end)}. This pattern suggests "
            "atrial fibrillation or another arrhythmia, not a clinical limit: please arrange "
            "an ECG."
        )
        return hit.alert(self, Severity.MEDIUM, explanation, threshold=cfg.rhythm_median_jump)


def _cadence(minutes: float) -> str:
    if minutes < 1:
        return f"{number(round(minutes * 60))} s"
    return f"{number(round(minutes, 1))} min"
