"""Which readings count as evidence for the clinical rules (device-mix profile, issue 21).

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

from anomaly.config import METRIC_CODE

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
