"""Personal resting heart-rate baselines and the deviations absolute limits miss.

Each participant's baseline is learned online from their own resting readings (few steps
in the activity window): the median of every completed UTC hour is kept for a week, and
the baseline for a reading is the median of those hourly medians at the same time of day
(+/- 1 hour) on earlier days, with their median absolute deviation as the usual spread.
Comparing by time of day is what makes sleep and waking rest separate contexts without
knowing the participant's timezone or bedtime; an athlete's 45 beats/min is simply their
own normal. Only hours at least 22 h old count, so an episode in progress never becomes
its own baseline, and every hour that counts is complete before any reading that uses
it arrives: the result does not depend on where the stream is cut into batches.

A resting reading is elevated when the mean of the resting readings in the trailing
window is `shift_min_bpm` (and `shift_spread_factor` spreads) above the baseline; the
run/episode machine then asks for it to persist, like any other rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from trialstream.events.alerts import AlertKind, AlertRaised, Severity
from trialstream.events.readings import Metric

from anomaly.arrays import US_PER_HOUR, US_PER_MINUTE, cached_by_hour, median_and_spread
from anomaly.config import Persistence, ScoringConfig
from anomaly.episodes import Hit, Rows
from anomaly.explain import number, span, to_datetime
from anomaly.state import RESTING_SLOTS, RestingBaseline

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
WEEK_HOURS = 7 * 24
MIN_SPREAD = 2.0  # beats/min: hourly medians of a calm participant can agree closely
if RESTING_SLOTS != WEEK_HOURS + 1:  # state.py checkpoints the hours a baseline can use
    raise RuntimeError("anomaly.state.RESTING_SLOTS must be baseline.WEEK_HOURS + 1")


def _fold_hours(state: RestingBaseline, t: IntArray, v: FloatArray) -> None:
    """Add resting readings (time order) to the hour in progress; each hour that completes
    becomes one hourly median."""
    hours = t // US_PER_HOUR
    if hours[-1] == state.pending_hour:  # the common case: still the same hour
        state.pending += v.tolist()
        return
    values = np.concatenate([state.pending, v]) if state.pending else v
    owner = np.concatenate([np.full(len(state.pending), state.pending_hour), hours])
    edges = np.flatnonzero(np.diff(owner)) + 1
    for chunk_hours, chunk in zip(np.split(owner, edges), np.split(values, edges), strict=True):
        state.hours[int(chunk_hours[0])] = float(np.median(chunk))
    last = int(owner[-1])
    del state.hours[last]  # still in progress
    state.pending_hour, state.pending = last, values[owner == last].tolist()
    # Pruned from this call's first hour, so its earliest readings still find their week.
    for old in [h for h in state.hours if h < int(hours[0]) - WEEK_HOURS - 1]:
        del state.hours[old]


def _baseline_at(hours: dict[int, float], hour: int, min_hours: int) -> tuple[float, float]:
    """(median, spread) of the hourly medians at this time of day on earlier days; NaN
    when fewer than `min_hours` of them are known."""
    picked = [
        m
        for h, m in hours.items()
        if hour - WEEK_HOURS - 1 <= h <= hour - 22 and (hour - h) % 24 in (23, 0, 1)
    ]
    if len(picked) < min_hours:
        return float("nan"), float("nan")
    return median_and_spread(picked, MIN_SPREAD)


def _trailing_mean(
    state: RestingBaseline, t: IntArray, v: FloatArray, window_us: int
) -> tuple[FloatArray, IntArray, _Window]:
    """Mean and count of the resting readings in (t - window, t] for each reading, the
    carried ones included, and the window's readings; keeps the window's readings for the
    next batch."""
    all_t = np.concatenate([np.asarray(state.recent_us, dtype=np.int64), t])
    all_v = np.concatenate([np.asarray(state.recent, dtype=np.float64), v])
    # Sums in integer thousandths are exact, so a window's mean does not depend on how
    # much history precedes it in this call (float prefix sums would, in the last digit).
    milli = np.rint(all_v * 1000).astype(np.int64)
    csum = np.concatenate([[0], np.cumsum(milli)])
    hi = np.arange(len(state.recent_us) + 1, len(all_t) + 1)
    lo = np.searchsorted(all_t, t - window_us, side="right")
    count = hi - lo
    keep = all_t > all_t[-1] - window_us
    state.recent_us, state.recent = all_t[keep].tolist(), all_v[keep].tolist()
    return (csum[hi] - csum[lo]) / 1000 / np.maximum(count, 1), count, _Window(all_v, lo, hi)


@dataclass(frozen=True)
class _Window:
    """One participant's resting readings (carried and new) and each new row's window
    [lo, hi) into them."""

    v: FloatArray
    lo: IntArray
    hi: IntArray

    def share_at_least(self, threshold: FloatArray) -> FloatArray:
        """Per row: the share of its window's readings at or above its threshold."""
        out = np.zeros(len(self.lo))
        for value in np.unique(threshold[np.isfinite(threshold)]).tolist():
            rows = threshold == value  # usually one or two thresholds (hours) a batch
            csum = np.concatenate([[0], np.cumsum(self.v >= value)])
            lo, hi = self.lo[rows], self.hi[rows]
            out[rows] = (csum[hi] - csum[lo]) / np.maximum(hi - lo, 1)
        return out


def _baseline_cached(state: RestingBaseline, hour: int, min_hours: int) -> tuple[float, float]:
    return cached_by_hour(state.known, hour, lambda: _baseline_at(state.hours, hour, min_hours))


def baselines(
    rows: Rows, states: list[RestingBaseline], min_hours: int
) -> tuple[FloatArray, FloatArray]:
    """The baseline (median, spread) at each row's hour (NaN where not yet known)."""
    median, spread = np.full(len(rows.t), np.nan), np.full(len(rows.t), np.nan)
    hours = rows.t // US_PER_HOUR
    for g, state in enumerate(states):
        if not state.hours:
            continue
        lo, hi = int(rows.first[g]), int(rows.last[g]) + 1
        if hours[lo] == hours[hi - 1]:  # the common case: one hour
            median[lo:hi], spread[lo:hi] = _baseline_cached(state, int(hours[lo]), min_hours)
            continue
        for hour in np.unique(hours[lo:hi]).tolist():
            at = np.flatnonzero(hours[lo:hi] == hour) + lo
            median[at], spread[at] = _baseline_cached(state, hour, min_hours)
    return median, spread


@dataclass(frozen=True)
class Deviation:
    """Per resting heart-rate row: the baseline, its spread and the trailing mean."""

    baseline: FloatArray
    spread: FloatArray
    mean: FloatArray
    count: IntArray

    # per row: the share of the window's readings at or above baseline + margin (None:
    # not judged, `shift_majority` off)
    share: FloatArray | None = None

    def margin(self, config: ScoringConfig) -> FloatArray:
        margin: FloatArray = np.maximum(
            config.shift_min_bpm, config.shift_spread_factor * self.spread
        )
        return margin

    def high(self, config: ScoringConfig) -> npt.NDArray[np.bool_]:
        """Rows whose window's mean is beyond the margin."""
        with np.errstate(invalid="ignore"):
            high: npt.NDArray[np.bool_] = (self.count >= config.baseline_min_readings) & (
                self.mean - self.baseline >= self.margin(config)
            )
        return high

    def bands(self, config: ScoringConfig) -> npt.NDArray[np.int8]:
        high = self.high(config)
        if (
            self.share is not None and config.shift_majority is not None
        ):  # and most of its readings, not a workout's share
            high &= self.share >= config.shift_majority
        band: npt.NDArray[np.int8] = np.where(high, 2, 0).astype(np.int8)
        return band


def deviations(rows: Rows, states: list[RestingBaseline], config: ScoringConfig) -> Deviation:
    """Learn from and judge resting heart-rate rows (one group per participant; `states`
    are the groups' baselines)."""
    mean, count = np.zeros(len(rows.t)), np.zeros(len(rows.t), dtype=np.int64)
    window = round(config.baseline_window_minutes * US_PER_MINUTE)
    windows = []
    for g, state in enumerate(states):
        lo, hi = int(rows.first[g]), int(rows.last[g]) + 1
        t, v = rows.t[lo:hi], rows.v[lo:hi]
        _fold_hours(state, t, v)
        mean[lo:hi], count[lo:hi], held = _trailing_mean(state, t, v, window)
        windows.append(held)
    baseline, spread = baselines(rows, states, config.baseline_min_hours)
    found = Deviation(baseline, spread, mean, count)
    if config.shift_majority is None:
        return found
    # A mean can be raised by a workout inside the window (steps-less participants count
    # as resting); the median cannot unless the workout fills half of it. Judged only
    # where the mean is beyond the margin (rare), the share at or above it.
    share = np.zeros(len(rows.t))
    high, threshold = found.high(config), baseline + found.margin(config)
    for g, win in enumerate(windows):
        lo, hi = int(rows.first[g]), int(rows.last[g]) + 1
        if high[lo:hi].any():
            share[lo:hi] = win.share_at_least(np.where(high[lo:hi], threshold[lo:hi], np.nan))
    return Deviation(baseline, spread, mean, count, share)


@dataclass(frozen=True)
class BaselineShiftRule:
    """Resting heart rate far above the participant's own baseline, though maybe still
    under any absolute limit (e.g. 95 beats/min for someone who rests at 62)."""

    deviation: Deviation

    rule = "personal-baseline/heart-rate-resting-high"
    levels = (2,)
    kind = AlertKind.CLINICAL
    metric = Metric.HEART_RATE

    def persistence(self, config: ScoringConfig) -> Persistence:
        return config.shift

    def build(self, hit: Hit) -> AlertRaised:
        i, run, dev = hit.i, hit.run, self.deviation
        base, spread, mean = float(dev.baseline[i]), float(dev.spread[i]), float(dev.mean[i])
        start, end = to_datetime(run.start_us), to_datetime(hit.detected_us)
        minutes = round((hit.detected_us - run.start_us) / US_PER_MINUTE)
        margin = max(hit.config.shift_min_bpm, hit.config.shift_spread_factor * spread)
        explanation = (
            f"Resting heart rate averaged {number(mean)} beats/min over the last "
            f"{number(hit.config.baseline_window_minutes)} min ({int(dev.count[i])} readings "
            f"at rest), {number(mean - base)} beats/min above this participant's own resting "
            f"baseline of {number(base)} beats/min at this time of day (usual spread "
            f"{number(spread)}); raised for {minutes} min ({span(start, end)}). Personal "
            f"deviation rule: alert at {number(margin)} beats/min above baseline."
        )
        return hit.alert(self, Severity.MEDIUM, explanation, threshold=base + margin, baseline=base)
