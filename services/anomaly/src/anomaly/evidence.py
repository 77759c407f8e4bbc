"""Which readings count as evidence for the clinical rules, and how much of it a limit
needs (device-mix profile, issue 21).

A reading of a metric in `ScoringConfig.confirm_jumps` that far or further from the
reading before it is not evidence until the next reading agrees: a single-sample spike
while moving never makes a limit run, an irregularity or a raised resting mean, and a
real jump is confirmed by its next reading. No look-ahead: the next reading is judged
against this one, so the result does not depend on where a stream is cut into batches."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt
from trialstream.events.readings import Metric

from anomaly.arrays import US_PER_MINUTE, shift
from anomaly.config import METRIC_CODE, Direction, Limit, ScoringConfig

BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def confirmed(
    m: IntArray,
    v: FloatArray,
    first: IntArray,
    v_before: FloatArray,
    jumps: Mapping[Metric, float],
) -> BoolArray:
    """Per row (sorted by participant and metric, `first` the first row of each group,
    `v_before` each group's value before this batch, NaN if none): counts as evidence."""
    out: BoolArray = np.ones(len(v), dtype=np.bool_)
    if not jumps or not len(v):
        return out
    prev = np.empty_like(v)
    prev[1:] = v[:-1]
    prev[first] = v_before
    size = np.zeros(len(v))
    for metric, jump in jumps.items():
        size[m == METRIC_CODE[metric]] = jump
    with np.errstate(invalid="ignore"):
        out &= ~((size > 0) & (np.abs(v - prev) >= size))
    return out


def alone(
    limit: Limit | None,
    t: IntArray,
    first: IntArray,
    group: IntArray,
    last_in: IntArray,
    config: ScoringConfig,
) -> BoolArray | None:
    """Rows (one metric's, grouped by participant; `last_in` per group the newest time
    scored before) that count on their own (`single_reading_minutes`): a reading of a
    metric the device measures this rarely (the one before it at least that long ago) is
    all the device can show for a while; a second would only add its interval to the
    latency. A participant's very first reading never does. None: persistence alone."""
    if limit is None or limit.metric not in config.single_reading_minutes:
        return None
    every = round(config.single_reading_minutes[limit.metric] * US_PER_MINUTE)
    before = shift(t, 0)
    before[first] = last_in
    is_first = np.zeros(len(t), dtype=np.bool_)
    is_first[first] = True
    never = is_first & (last_in[group] == np.iinfo(np.int64).min)
    result: BoolArray = ~never & (t - before >= every)
    return result


def minutes_since_previous(
    t: IntArray, first: IntArray, group: IntArray, last_in: IntArray, i: int
) -> float | None:
    """Minutes from the reading before row i (of its participant and metric) to it."""
    g = int(group[i])
    before = int(t[i - 1]) if i > first[g] else int(last_in[g])
    if before == np.iinfo(np.int64).min:
        return None
    return (int(t[i]) - before) / US_PER_MINUTE


def brief_dips(limit: Limit | None, config: ScoringConfig) -> tuple[int, int] | None:
    """For low SpO2 (`brief_dip_minutes`): (cadence, minutes) in microseconds. A run whose
    readings come on average closer than the cadence (an oximeter reading every minute,
    at night) must span the minutes: sleep-apnea-like dips of 1-3 min, many a night, are
    not events, and a run of them chained together rarely lasts that long; a
    desaturation that holds does. Sparser runs keep the limit's own persistence."""
    if config.brief_dip_minutes is None or limit is None:
        return None
    if limit.metric is not Metric.OXYGEN_SATURATION or limit.direction is not Direction.LOW:
        return None
    return (
        round(config.brief_dip_cadence_minutes * US_PER_MINUTE),
        round(config.brief_dip_minutes * US_PER_MINUTE),
    )
