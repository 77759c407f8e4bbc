"""The resting baseline's trailing windows are found for every participant with one search
(anomaly.baseline._window_starts); pinned against a search per participant."""

from __future__ import annotations

import numpy as np
import pytest
from anomaly import baseline
from anomaly.baseline import _window_starts

YEAR_US = 365 * 24 * 3600 * 1_000_000


def _per_group(
    t: np.ndarray, start: np.ndarray, end: np.ndarray, group: np.ndarray, after: np.ndarray
) -> list[int]:
    return [
        int(start[g] + np.searchsorted(t[start[g] : end[g]], a, side="right"))
        for g, a in zip(group.tolist(), after.tolist(), strict=True)
    ]


def _groups(rng: np.random.Generator, spread_us: int) -> tuple[np.ndarray, ...]:
    sizes = rng.integers(1, 40, size=25)
    t = np.concatenate(
        [np.sort(rng.integers(0, spread_us, size=n)) + rng.integers(0, spread_us) for n in sizes]
    ).astype(np.int64)
    end = np.cumsum(sizes).astype(np.int64)
    start = end - sizes
    group = rng.integers(0, len(sizes), size=300).astype(np.int64)
    # Queries before, inside, on and after each group's times.
    picked = t[rng.integers(start[group], end[group])]
    after = picked + rng.choice([-spread_us, -1, 0, 1, 60_000_000], size=len(group))
    return t, start, end, group, np.minimum(after, t[end[group] - 1])


@pytest.mark.parametrize("spread_us", [3_600_000_000, 10 * YEAR_US])
def test_one_search_finds_what_a_search_per_group_finds(spread_us: int) -> None:
    rng = np.random.default_rng(spread_us % 1000)
    for _ in range(20):
        t, start, end, group, after = _groups(rng, spread_us)
        assert _window_starts(t, start, end, group, after).tolist() == _per_group(
            t, start, end, group, after
        )


def test_times_too_far_apart_for_one_line_fall_back_to_ranks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Twenty participants whose readings span year 1 to year 9999 (what a datetime can
    # hold): their shifted lines would not fit in int64.
    first_us, last_us = -62_135_596_800_000_000, 253_402_300_799_000_000
    one = np.array([first_us, 0, 1, last_us], dtype=np.int64)
    t = np.tile(one, 20)
    start = np.arange(0, 80, 4, dtype=np.int64)
    end = start + 4
    group = np.repeat(np.arange(20, dtype=np.int64), 4)
    after = np.tile(np.array([first_us - 1, first_us, 0, last_us - 1]), 20)
    ranked = []
    real = baseline.grouped_count_le
    monkeypatch.setattr(baseline, "grouped_count_le", lambda *a: ranked.append(1) or real(*a))
    found = _window_starts(t, start, end, group, after).tolist()
    assert ranked
    assert found == _per_group(t, start, end, group, after)
