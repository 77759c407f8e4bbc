"""Segmented array primitives the scorer is built from (numpy only, no Python loop per row).

A "segment" is a run of consecutive rows that belong together (one participant's metric,
or a stretch of it without gaps); segments are given either as a start mask or as
non-decreasing segment numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np
import numpy.typing as npt

# Times are int64 microseconds since the epoch throughout the scorer.
US_PER_MINUTE = 60_000_000
US_PER_HOUR = 3_600_000_000

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
T = TypeVar("T")


def median(values: Sequence[float]) -> float:
    """Plain Python: a baseline has a handful of values, where numpy's call costs more."""
    ordered, half = sorted(values), len(values) // 2
    return ordered[half] if len(values) % 2 else (ordered[half - 1] + ordered[half]) / 2


def median_and_spread(values: Sequence[float], floor: float) -> tuple[float, float]:
    """A personal baseline from hourly values at the same time of day: their median, and
    their median absolute deviation (at least `floor`) as the usual spread. The one
    statistic of the resting heart-rate baseline (baseline.py) and the multivariate
    model's per-vital baselines (windows.py)."""
    mid = median(values)
    return mid, max(median([abs(x - mid) for x in values]), floor)


def cached_by_hour(known: dict[int, T], hour: int, compute: Callable[[], T]) -> T:
    """A baseline is the same for every reading of an hour: computed once per hour, the
    cache kept to about two days of hours."""
    found = known.get(hour)
    if found is None:
        found = compute()
        if len(known) > 48:
            known.clear()
        known[hour] = found
    return found


def run_starts(*keys: IntArray) -> IntArray:
    """Indices where a run of rows with equal keys begins (row 0 always), for rows sorted
    so that equal keys are adjacent."""
    changed = np.zeros(len(keys[0]), dtype=np.bool_)
    changed[:1] = True
    for key in keys:
        changed[1:] |= key[1:] != key[:-1]
    result: IntArray = np.flatnonzero(changed)
    return result


def shift(values: IntArray, fill: int) -> IntArray:
    """values[i - 1] at i; `fill` at 0."""
    out = np.empty_like(values)
    if len(values):
        out[0] = fill
        out[1:] = values[:-1]
    return out


def segmented_cummax(values: IntArray, segment: IntArray) -> IntArray:
    """Running maximum of `values` that restarts with each segment (`segment`
    non-decreasing). Works on ranks, so any int64 values are safe from overflow."""
    n = len(values)
    order = np.argsort(values, kind="stable")
    ranks = np.empty(n, dtype=np.int64)
    ranks[order] = np.arange(n, dtype=np.int64)
    offset = segment.astype(np.int64) * n  # later segments outrank every earlier row
    best = np.maximum.accumulate(offset + ranks) - offset
    result: IntArray = values[order[best]]
    return result


def consecutive(mask: BoolArray, segment_start: BoolArray) -> tuple[IntArray, IntArray]:
    """For each row: how many rows in a row up to and including it are True (0 where
    False), and the index of the first of them. Runs never cross a segment start."""
    pos = np.arange(len(mask), dtype=np.int64)
    before = np.empty_like(mask)
    if len(mask):
        before[0] = False
        before[1:] = mask[:-1]
    starts = mask & (segment_start | ~before)
    first = np.maximum.accumulate(np.where(starts, pos, -1))
    length = np.where(mask, pos - first + 1, 0)
    return length, first


def grouped_count_le(
    groups: IntArray, values: IntArray, query_groups: IntArray, query_values: IntArray
) -> IntArray:
    """For rows sorted by (group, value): for each query, the number of rows that sort at
    or before (query_group, query_value), i.e. an index into the rows one past the last
    row of that group with value <= query_value. A searchsorted per group, done at once:
    values are replaced by their rank among all rows so a composite key cannot overflow."""
    universe = np.sort(values)
    width = len(values) + 1
    keys = groups * width + np.searchsorted(universe, values, side="right")
    query_keys = query_groups * width + np.searchsorted(universe, query_values, side="right")
    result: IntArray = np.searchsorted(keys, query_keys, side="right").astype(np.int64)
    return result
