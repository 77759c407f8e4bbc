"""Windowed features for the multivariate model: personal deviations of four vitals at rest.

Each participant's stream is cut into 30-min windows of stream time (aligned to UTC). A
window is in progress until the participant's first reading (any metric, in arrival
order) from a later window arrives: that reading closes it. A reading from a window older
than the one in progress is late and left out. Within a window the resting readings
(few steps in the activity window, as for the resting heart-rate baseline) of heart
rate, SpO2, temperature and respiratory rate are summed per vital.

Personal baselines: the resting mean of each completed UTC hour per vital is kept for
three days; a vital's baseline at an hour is the median of those hourly means at the same
time of day (+/- 1 h) at least 22 h earlier, its spread their median absolute deviation
(with a floor per vital), as for the resting heart-rate baseline (baseline.py), so sleep
and waking rest are separate contexts, a fever in progress never becomes its own normal,
and only final hours are used: nothing depends on where the stream is cut into batches.

Features of a closed window: how many spreads each vital's resting mean lies from its
baseline in the direction of deterioration (heart rate, temperature, breathing up; SpO2
down), 0 when on the healthy side. A window is judged only with enough resting readings
of every vital and a baseline for each.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from trialstream.events.readings import Metric

from anomaly.arrays import (
    US_PER_HOUR,
    BoolArray,
    IntArray,
    cached_by_hour,
    median_and_spread,
    segmented_cummax,
    shift,
)
from anomaly.config import METRIC_CODE, ScoringConfig
from anomaly.state import VITALS, WindowState

FloatArray = npt.NDArray[np.float64]
VITAL_METRICS = (
    Metric.HEART_RATE,
    Metric.OXYGEN_SATURATION,
    Metric.BODY_TEMPERATURE,
    Metric.RESPIRATORY_RATE,
)
FEATURES = tuple(f"{m}-deviation" for m in VITAL_METRICS)
WORSE = np.array([1.0, -1.0, 1.0, 1.0])  # the direction of deterioration per vital
MIN_SPREAD = np.array([2.0, 0.5, 0.1, 0.5])  # hourly means of a calm participant agree closely
_CODE_TO_VITAL = np.full(max(METRIC_CODE.values()) + 1, -1, dtype=np.int64)
_CODE_TO_VITAL[[METRIC_CODE[m] for m in VITAL_METRICS]] = np.arange(VITALS)
if len(VITAL_METRICS) != VITALS:  # state.py sizes the checkpointed sums
    raise RuntimeError("anomaly.state.VITALS must match windows.VITAL_METRICS")


@dataclass(frozen=True)
class Closed:
    """Windows closed by a batch, ordered by participant then time: the closing reading's
    time and arrival index, the window's start, resting sums (thousandths of the unit)
    and counts per vital."""

    p: IntArray
    t: IntArray
    arrival: IntArray
    start_us: IntArray
    sums: FloatArray  # windows x vitals
    counts: FloatArray

    def __len__(self) -> int:
        return len(self.p)


def close_windows(
    p: IntArray,
    t: IntArray,
    m: IntArray,
    v: FloatArray,
    arrival: IntArray,
    rest: BoolArray,
    held: list[WindowState],
    window_us: int,
) -> Closed:
    """Advance every participant's window in progress over a batch's rows (late and
    non-finite ones already dropped); `held[p]` is participant p's state, updated here."""
    order = np.lexsort((arrival, p))  # each participant's rows in arrival order
    p, t, m, v, arrival, rest = p[order], t[order], m[order], v[order], arrival[order], rest[order]
    starts = np.ones(len(p), dtype=np.bool_)
    starts[1:] = p[1:] != p[:-1]
    open0 = np.array([h.window for h in held], dtype=np.int64)
    w = t // window_us
    current = np.maximum(segmented_cummax(w, np.cumsum(starts) - 1), open0[p])
    before = shift(current, 0)
    before[starts] = open0[p[starts]]
    closing = np.flatnonzero((current > before) & (before >= 0))
    # Sums per touched window: within a participant `current` never decreases.
    new = starts | (current != before)
    slot = np.cumsum(new) - 1
    vital = _CODE_TO_VITAL[m]
    use = rest & (vital >= 0) & (w == current)
    nslots = int(slot[-1]) + 1 if len(slot) else 0
    flat = slot[use] * VITALS + vital[use]
    # Sums in integer thousandths (exact in float64), so a window's mean does not depend on
    # how the batches cut it (float sums would, in the last digit).
    milli = np.rint(v[use] * 1000)
    size = nslots * VITALS
    sums = np.bincount(flat, milli, size).astype(np.float64).reshape(-1, VITALS)
    counts = np.bincount(flat, None, size).astype(np.float64).reshape(-1, VITALS)
    slot_window, slot_p = current[new], p[new]
    # A closed window's sums: this batch's part (the slot of the row before the closing
    # one, unless the closing row is the participant's first here) plus the carried part.
    closed_w, closed_p = before[closing], p[closing]
    out_sums, out_counts = np.zeros((len(closing), VITALS)), np.zeros((len(closing), VITALS))
    here = ~starts[closing]
    out_sums[here], out_counts[here] = (
        sums[slot[closing[here]] - 1],
        counts[slot[closing[here]] - 1],
    )
    for i in np.flatnonzero(closed_w == open0[closed_p]).tolist():
        state = held[int(closed_p[i])]
        out_sums[i] += state.sums
        out_counts[i] += state.counts
    _keep_open(held, slot_p, slot_window, sums, counts)
    return Closed(
        closed_p, t[closing], arrival[closing], closed_w * window_us, out_sums, out_counts
    )


def _keep_open(
    held: list[WindowState],
    slot_p: IntArray,
    slot_window: IntArray,
    sums: FloatArray,
    counts: FloatArray,
) -> None:
    """Each participant's last touched window stays in progress."""
    if not len(slot_p):
        return
    last = np.flatnonzero(np.append(slot_p[1:] != slot_p[:-1], True))
    for s in last.tolist():
        state, win = held[int(slot_p[s])], int(slot_window[s])
        if win == state.window:
            state.sums = (np.asarray(state.sums) + sums[s]).tolist()
            state.counts = (np.asarray(state.counts) + counts[s]).tolist()
        else:
            state.window, state.sums, state.counts = win, sums[s].tolist(), counts[s].tolist()


@dataclass(frozen=True)
class Judged:
    """Per closed window: resting means, baselines and spreads per vital, the features,
    and whether the window can be judged at all."""

    closed: Closed
    means: FloatArray
    baseline: FloatArray
    spread: FloatArray
    x: FloatArray
    ok: BoolArray


def judge(closed: Closed, held: list[WindowState], config: ScoringConfig) -> Judged:
    """Fold closed windows into their participant's hourly means (in time order) and
    compare each with the baseline at its hour."""
    n = len(closed)
    baseline, spread = np.full((n, VITALS), np.nan), np.full((n, VITALS), np.nan)
    hours = (closed.start_us // US_PER_HOUR).tolist()
    sums, counts, keep = closed.sums.tolist(), closed.counts.tolist(), config.model_history_hours
    for i, (pi, hour) in enumerate(zip(closed.p.tolist(), hours, strict=True)):
        state = held[pi]
        _fold(state, hour, sums[i], counts[i], keep)
        baseline[i], spread[i] = _baseline_cached(state, hour, config)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = closed.sums / closed.counts / 1000
        x = np.maximum(WORSE * (means - baseline) / spread, 0.0)
    need = np.array([config.model_min_heart_rate, *[config.model_min_readings] * (VITALS - 1)])
    ok = (closed.counts >= need).all(axis=1) & np.isfinite(x).all(axis=1)
    if config.model_below_limits:
        ok &= ~_beyond_limits(means, config)
    return Judged(closed, means, baseline, spread, np.where(np.isfinite(x), x, 0.0), ok)


def _beyond_limits(means: FloatArray, config: ScoringConfig) -> BoolArray:
    """Windows whose resting mean of some vital is itself beyond that vital's clinical limit:
    the limit rules speak for those, so the model does not judge them."""
    beyond = np.zeros(len(means), dtype=np.bool_)
    for limit in config.limits:
        if limit.metric in VITAL_METRICS:
            column = means[:, VITAL_METRICS.index(limit.metric)]
            with np.errstate(invalid="ignore"):
                beyond |= limit.band_of(column) > 0
    return beyond


def _fold(state: WindowState, hour: int, sums: list[float], counts: list[float], keep: int) -> None:
    if hour != state.hour:
        if state.hour >= 0:
            # In hundredths of the unit: plenty for a baseline, and whole numbers.
            means = [
                round(s / c / 10) if c else None
                for s, c in zip(state.hour_sums, state.hour_counts, strict=True)
            ]
            state.hours.append([state.hour, *means])
        state.hour, state.hour_sums, state.hour_counts = hour, [0.0] * VITALS, [0.0] * VITALS
        oldest = hour - keep - 1
        if state.hours and (state.hours[0][0] or 0) < oldest:
            state.hours = [row for row in state.hours if (row[0] or 0) >= oldest]
    state.hour_sums = [a + b for a, b in zip(state.hour_sums, sums, strict=True)]
    state.hour_counts = [a + b for a, b in zip(state.hour_counts, counts, strict=True)]


def _baseline_cached(
    state: WindowState, hour: int, config: ScoringConfig
) -> tuple[FloatArray, FloatArray]:
    return cached_by_hour(state.known, hour, lambda: _baseline_at(state.hours, hour, config))


def _baseline_at(
    hours: list[list[int | None]], hour: int, config: ScoringConfig
) -> tuple[FloatArray, FloatArray]:
    """Per vital (median, spread) of the hourly means at this time of day at least 22 h
    earlier; NaN for a vital with fewer than `baseline_min_hours` of them."""
    keep, need = config.model_history_hours, config.baseline_min_hours
    median, spread = np.full(VITALS, np.nan), np.full(VITALS, np.nan)
    # The same time of day (+/- 1 h) on each earlier day in reach, hours >= 22 h old.
    back = {hour - (d * 24 + k) for d in range(1, keep // 24 + 2) for k in (-1, 0, 1)}
    picked = [row for row in hours if row[0] in back and 22 <= hour - (row[0] or 0) <= keep + 1]
    if len(picked) < need:
        return median, spread
    for j in range(1, VITALS + 1):  # a handful of values: plain Python beats numpy here
        column = [x / 100 for row in picked if (x := row[j]) is not None]
        if len(column) >= need:
            median[j - 1], spread[j - 1] = median_and_spread(column, float(MIN_SPREAD[j - 1]))
    return median, spread
