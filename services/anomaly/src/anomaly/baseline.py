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

from anomaly.arrays import (
    US_PER_HOUR,
    US_PER_MINUTE,
    cached_by_hour,
    grouped_count_le,
    median_and_spread,
    run_starts,
)
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


def _fold_hours(rows: Rows, states: list[RestingBaseline]) -> None:
    """Add each participant's resting readings (time order) to their hour in progress; each
    hour that completes becomes one hourly median. The medians of every participant's
    completed hours are taken at once."""
    hours, values = (rows.t // US_PER_HOUR).tolist(), rows.v.tolist()
    owner: list[int] = []  # per value to fold: its hour
    folded: list[float] = []
    turning: list[tuple[RestingBaseline, int, int]] = []  # state, first new hour, values
    for state, lo, hi in zip(states, rows.first.tolist(), (rows.last + 1).tolist(), strict=True):
        if hours[hi - 1] == state.pending_hour:  # the common case: still the same hour
            state.pending += values[lo:hi]
            continue
        owner += [state.pending_hour] * len(state.pending) + hours[lo:hi]
        folded += state.pending + values[lo:hi]
        turning.append((state, hours[lo], len(state.pending) + hi - lo))
    if not turning:
        return
    who = np.repeat(np.arange(len(turning)), [n for _, _, n in turning])
    hour = np.array(owner, dtype=np.int64)
    v = np.array(folded, dtype=np.float64)
    starts = run_starts(who, hour)
    n = np.diff(starts, append=len(v))
    ordered = v[np.lexsort((v, np.repeat(np.arange(len(starts)), n)))]
    upper = ordered[starts + n // 2]
    medians = np.where(n % 2 == 1, upper, (ordered[starts + (n - 1) // 2] + upper) / 2)
    runs = zip(who[starts].tolist(), hour[starts].tolist(), medians.tolist(), strict=True)
    for (k, h, median), begin, size in zip(runs, starts.tolist(), n.tolist(), strict=True):
        state = turning[k][0]
        state.hours[h] = median
        state.pending_hour, state.pending = h, folded[begin : begin + size]
    for state, first_hour, _ in turning:
        del state.hours[state.pending_hour]  # the last hour is still in progress
        # Pruned from this call's first hour, so its earliest readings still find their week.
        for old in [h for h in state.hours if h < first_hour - WEEK_HOURS - 1]:
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


def _trailing_means(
    rows: Rows, states: list[RestingBaseline], window_us: int
) -> tuple[FloatArray, IntArray, _Window]:
    """Per row: the mean and count of its participant's resting readings in (t - window, t],
    the carried ones included; every participant at once. Keeps each one's window for the
    next batch."""
    ends = (rows.last + 1).tolist()
    parts_t: list[IntArray] = []
    parts_v: list[FloatArray] = []
    for state, lo, hi in zip(states, rows.first.tolist(), ends, strict=True):
        parts_t += (state.recent_us, rows.t[lo:hi])
        parts_v += (state.recent, rows.v[lo:hi])
    all_t, all_v = np.concatenate(parts_t), np.concatenate(parts_v)
    size = np.array([len(x) for x in parts_t], dtype=np.int64).reshape(-1, 2).sum(axis=1)
    start = np.concatenate([[0], np.cumsum(size)[:-1]])  # each participant's first element
    end = start + size
    carried = size - (rows.last - rows.first + 1)
    # Row i sits after its participant's carried readings.
    hi = start[rows.group] + carried[rows.group] + np.arange(len(rows.t)) - rows.first[rows.group]
    hi += 1
    lo = _window_starts(all_t, start, end, rows.group, rows.t - window_us)
    # Sums in integer thousandths are exact, so a window's mean does not depend on how
    # much history precedes it in this call (float prefix sums would, in the last digit).
    csum = np.concatenate([[0], np.cumsum(np.rint(all_v * 1000).astype(np.int64))])
    count = hi - lo
    # What each participant keeps: the readings within a window of its newest.
    keep_from = _window_starts(
        all_t, start, end, np.arange(len(states)), all_t[end - 1] - window_us
    )
    for state, a, b in zip(states, keep_from.tolist(), end.tolist(), strict=True):
        state.recent_us, state.recent = all_t[a:b].copy(), all_v[a:b].copy()
    mean = (csum[hi] - csum[lo]) / 1000 / np.maximum(count, 1)
    return mean, count, _Window(all_v, lo, hi)


def _window_starts(
    t: IntArray, start: IntArray, end: IntArray, group: IntArray, after: IntArray
) -> IntArray:
    """For each query (group, after): the index of the group's first element with
    t > after, where t[start[g]:end[g]] is group g's times in order. One searchsorted for
    all groups: each group's times are shifted onto a line of its own, past the previous
    group's; with times too far apart for int64, the rank-based grouped_count_le."""
    first = t[start]
    span = t[end - 1] - first + 1
    if int(span.astype(object).sum()) >= 1 << 62:
        element_group = np.repeat(np.arange(len(start), dtype=np.int64), end - start)
        return grouped_count_le(element_group, t, group, after)
    offset = np.concatenate([[0], np.cumsum(span)[:-1]]) - first
    line = t + np.repeat(offset, end - start)
    found = np.searchsorted(line, np.maximum(after, first[group] - 1) + offset[group], "right")
    result: IntArray = np.maximum(found, start[group])
    return result


@dataclass(frozen=True)
class _Window:
    """Every participant's resting readings (carried and new, participant after
    participant) and each row's window [lo, hi) into them."""

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
    """The baseline (median, spread) at each row's hour (NaN where not yet known): looked
    up once per run of a participant's rows in one hour."""
    if not len(rows.t):
        return np.full(0, np.nan), np.full(0, np.nan)
    hours = rows.t // US_PER_HOUR
    starts = run_starts(rows.group, hours)
    nan = (float("nan"), float("nan"))
    found = [
        _baseline_cached(state, hour, min_hours) if state.hours else nan
        for state, hour in zip(
            [states[g] for g in rows.group[starts].tolist()], hours[starts].tolist(), strict=True
        )
    ]
    n = np.diff(starts, append=len(rows.t))
    median, spread = np.array(found, dtype=np.float64).reshape(-1, 2).T
    return np.repeat(median, n), np.repeat(spread, n)


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
    window = round(config.baseline_window_minutes * US_PER_MINUTE)
    _fold_hours(rows, states)
    mean, count, held = _trailing_means(rows, states, window)
    baseline, spread = baselines(rows, states, config.baseline_min_hours)
    found = Deviation(baseline, spread, mean, count)
    if config.shift_majority is None:
        return found
    # A mean can be raised by a workout inside the window (steps-less participants count
    # as resting); the median cannot unless the workout fills half of it. Judged only
    # where the mean is beyond the margin (rare), the share at or above it.
    high, threshold = found.high(config), baseline + found.margin(config)
    share = held.share_at_least(np.where(high, threshold, np.nan))
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
