"""Context streams for activity: step counts (measured exertion) and breathing (exertion
inferred when no steps are sent; device-mix profile, issue 21).

Both answer the same question for a vital-sign row: what did the participant's other
readings say about the time just before it, using only readings that had arrived when it
did (so the answer does not depend on where the stream is cut into batches)?

Inferred exertion: a participant whose device sends no steps still works out (heart rate
+25-65, breathing +4-8). Breathing rising with the heart rate is what tells a workout from
a tachycardia at rest (breathing +1-2): the mean respiratory rate over the last
`exertion_window_minutes` against the participant's own mean over the hours before
(`exertion_baseline_minutes`, ending `exertion_baseline_gap_minutes` before the row, so a
workout in progress does not become its own baseline). A rise of `exertion_breath_rise`
or more is exertion, inferred, not measured: the alert's explanation says so when it is
what made the difference, and a breach is then treated like one while walking.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from trialstream.events.readings import Metric

from anomaly.arrays import US_PER_MINUTE, grouped_count_le, shift
from anomaly.config import METRIC_CODE, ScoringConfig
from anomaly.state import ParticipantState

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
NEVER = np.iinfo(np.int64).min


@dataclass(frozen=True)
class Stream:
    """One context metric's readings: participant, time, value, arrival (-1 for history),
    sorted by participant then arrival; within a participant, times grow with arrival
    (late readings are gone), so every bound below is a searchsorted."""

    p: IntArray
    t: IntArray
    v: FloatArray
    a: IntArray

    @classmethod
    def of(
        cls,
        held: list[tuple[int, IntArray, FloatArray]],
        new_p: IntArray,
        new_t: IntArray,
        new_v: FloatArray,
        new_a: IntArray,
    ) -> Stream:
        """`held`: (participant, times, values) kept from earlier batches; then this
        batch's readings of the metric."""
        sizes = [len(t) for _, t, _ in held]
        held_p = np.array([p for p, _, _ in held], dtype=np.int64)
        sp = np.concatenate([np.repeat(held_p, sizes), new_p])
        st = np.concatenate([t for _, t, _ in held] + [new_t]).astype(np.int64)
        sv = np.concatenate([v for _, _, v in held] + [new_v]).astype(np.float64)
        sa = np.concatenate([np.full(sum(sizes), -1, dtype=np.int64), new_a])
        order = np.lexsort((sa, sp))  # per participant: history, then new readings as they came
        return cls(sp[order], st[order], sv[order], sa[order])

    def known_at(
        self, qp: IntArray, qt: IntArray, qa: IntArray, window: int, horizon: int
    ) -> tuple[FloatArray, IntArray]:
        """Sum and count of the readings each query (participant qp, time qt, arrival qa)
        may see: same participant, arrived before it, measured in (qt - window, qt], and
        newer than the newest of them minus `horizon` (what the checkpointed history
        still holds)."""
        sp, st, sv, sa = self.p, self.t, self.v, self.a
        width = int(max(sa.max(initial=0), qa.max(initial=0))) + 2
        arrived = np.searchsorted(sp * width + sa + 1, qp * width + qa + 1)  # one past the last
        block = np.searchsorted(sp, qp)  # the participant's first reading
        newest = st[np.maximum(arrived - 1, 0)] if len(st) else np.zeros(len(qp), np.int64)
        hi = np.minimum(arrived, grouped_count_le(sp, st, qp, qt))
        lo = np.maximum(
            grouped_count_le(sp, st, qp, qt - window),
            np.where(arrived > block, grouped_count_le(sp, st, qp, newest - horizon), block),
        )
        count = np.maximum(hi - lo, 0)
        csum = np.concatenate([[0.0], np.cumsum(sv)])
        return np.where(count > 0, csum[hi] - csum[np.minimum(lo, hi)], 0.0), count

    def kept(self, people: IntArray, horizon: int) -> list[tuple[int, IntArray, FloatArray]]:
        """Each given participant's readings newer than their newest minus the horizon."""
        ends = np.searchsorted(self.p, people, side="right")
        cuts = grouped_count_le(self.p, self.t, people, self.t[ends - 1] - horizon)
        return [
            (p, self.t[cut:end].copy(), self.v[cut:end].copy())
            for p, cut, end in zip(people.tolist(), cuts.tolist(), ends.tolist(), strict=True)
        ]


@dataclass(frozen=True)
class Breathing:
    """Per query row: mean respiratory rate in the recent window and in the participant's
    own baseline window before it (NaN where no reading is known)."""

    recent: FloatArray
    baseline: FloatArray

    @property
    def rise(self) -> FloatArray:
        return self.recent - self.baseline


def breathing(
    stream: Stream,
    qp: IntArray,
    qt: IntArray,
    qa: IntArray,
    *,
    window_minutes: float,
    sparse_window_minutes: float,
    baseline_minutes: float,
    gap_minutes: float,
    horizon: int,
) -> Breathing:
    window = round(window_minutes * US_PER_MINUTE)
    gap = round(gap_minutes * US_PER_MINUTE)
    base = round(baseline_minutes * US_PER_MINUTE)
    s, n = stream.known_at(qp, qt, qa, window, horizon)
    # scaled to cadence: a device that sends breathing every 15-60 min has none in the
    # last few minutes; then its readings of the longer window count
    far_s, far_n = stream.known_at(
        qp, qt, qa, round(sparse_window_minutes * US_PER_MINUTE), horizon
    )
    s, n = np.where(n > 0, s, far_s), np.where(n > 0, n, far_n)
    bs, bn = stream.known_at(qp, qt - gap, qa, base, horizon)
    with np.errstate(invalid="ignore", divide="ignore"):
        recent = np.where(n > 0, s / np.maximum(n, 1), np.nan)
        baseline = np.where(bn > 0, bs / np.maximum(bn, 1), np.nan)
    return Breathing(recent, baseline)


def exerting(breath: FloatArray, step_readings: IntArray, rise: float | None) -> BoolArray:
    """Rows of participants with no step data in the window whose breathing rose by
    `rise` or more: exertion inferred (None: never)."""
    if rise is None:
        return np.zeros(len(breath), dtype=np.bool_)
    with np.errstate(invalid="ignore"):
        out: BoolArray = (step_readings == 0) & (breath >= rise)
    return out


def append(
    p: IntArray, t: IntArray, v: FloatArray, states: list[ParticipantState], horizon: int
) -> None:
    """Add new respiratory-rate readings (sorted by participant, then arrival: times grow)
    to each participant's history, keeping those newer than the newest minus `horizon`."""
    if not len(p):
        return
    starts = np.flatnonzero(np.concatenate([[True], p[1:] != p[:-1]]))
    ends = np.append(starts[1:], len(p))
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        state = states[int(p[a])]
        times = np.concatenate([state.breath_us, t[a:b]])
        values = np.concatenate([state.breath, v[a:b]])
        cut = int(np.searchsorted(times, times[-1] - horizon, side="right"))
        state.breath_us, state.breath = times[cut:], values[cut:]


def falls(
    t: IntArray,
    v: FloatArray,
    first: IntArray,
    group: IntArray,
    before: tuple[IntArray, FloatArray],
    *,
    fall_bpm: float,
    max_gap_us: int,
) -> BoolArray:
    """Per heart-rate row (grouped by participant, arrival order; `before` per group the
    time and value of the newest reading before this batch): heart rate fell by `fall_bpm`
    or more from the reading before it, at most `max_gap_us` earlier. At rest a heart does
    not fall that far that fast: it is a motion artefact coming back, or a heart
    recovering from exertion, so the participant was moving either way."""
    prev_t, prev_v = shift(t, 0), np.empty_like(v)
    prev_v[1:] = v[:-1]
    prev_t[first], prev_v[first] = before[0], before[1]
    with np.errstate(invalid="ignore"):  # NaN: nothing before
        out: BoolArray = (prev_v - v >= fall_bpm) & (t - prev_t <= max_gap_us)
    return out


def moved(
    fall_p: IntArray,
    fall_t: IntArray,
    fall_a: IntArray,
    held: IntArray,
    q: tuple[IntArray, IntArray, IntArray],
    window_us: int,
) -> BoolArray:
    """Per query (participant, time, arrival): a heart-rate fall (`fall_*`, sorted by
    participant then arrival; `held` per participant the newest fall before this batch,
    int64 min if none) arrived no later than the query and measured within the window
    before it."""
    qp, qt, qa = q
    width = int(max(fall_a.max(initial=0), qa.max(initial=0))) + 2
    at = np.searchsorted(fall_p * width + fall_a, qp * width + qa, side="right") - 1
    own = (at >= 0) & (fall_p[np.maximum(at, 0)] == qp) if len(fall_p) else np.zeros(len(qp), bool)
    when = np.where(own, fall_t[np.maximum(at, 0)] if len(fall_t) else 0, held[qp])
    known = when != NEVER
    out: BoolArray = known & (when <= qt) & (qt - np.where(known, when, qt) <= window_us)
    return out


@dataclass(frozen=True)
class BatchRows:
    """A batch's rows as the scorer holds them: sorted by participant and metric, within
    that in arrival order; `group` numbers each (participant, metric)."""

    p: IntArray
    m: IntArray
    t: IntArray
    v: FloatArray
    arrival: IntArray
    group: IntArray


def movement(
    b: BatchRows,
    before: tuple[IntArray, FloatArray],
    step_readings: IntArray,
    states: list[ParticipantState],
    config: ScoringConfig,
    hr_high: float,
) -> BoolArray:
    """Per row: whether the breach of a limit activity may explain, by a participant
    without steps, came within `motion_window_minutes` of a heart-rate fall (`falls`;
    `before` per group the time and value of its newest reading before the batch); for a
    fast heart, a fall that left it at or above `hr_high` (fast while moving, not a spike
    before a tachycardia at rest). Keeps each participant's newest falls."""
    fall_bpm = config.motion_fall_bpm
    if fall_bpm is None:
        return np.zeros(len(b.t), dtype=np.bool_)
    hr_code = METRIC_CODE[Metric.HEART_RATE]
    hr = np.flatnonzero(b.m == hr_code)
    g = b.group[hr]
    starts = np.flatnonzero(np.concatenate([[True], g[1:] != g[:-1]])) if len(g) else hr
    fell = falls(
        b.t[hr],
        b.v[hr],
        starts,
        g,
        (before[0][g[starts]], before[1][g[starts]]),
        fall_bpm=fall_bpm,
        max_gap_us=round(config.motion_max_gap_minutes * US_PER_MINUTE),
    )
    query = np.zeros(len(b.t), dtype=np.bool_)
    for lim in config.limits:
        if lim.suppressed_by_activity:
            own = b.m == METRIC_CODE[lim.metric]
            query[own] |= lim.band_of(b.v[own]) > 0
    query &= step_readings == 0
    out = np.zeros(len(b.t), dtype=np.bool_)
    window = round(config.motion_window_minutes * US_PER_MINUTE)
    for name, found, rows in (
        ("fall_us", fell, query & (b.m != hr_code)),
        ("fast_fall_us", fell & (b.v[hr] >= hr_high), query & (b.m == hr_code)),
    ):
        at = hr[found]
        if rows.any():
            held = np.array(
                [NEVER if getattr(s, name) is None else getattr(s, name) for s in states],
                dtype=np.int64,
            )
            q = (b.p[rows], b.t[rows], b.arrival[rows])
            out[rows] = moved(b.p[at], b.t[at], b.arrival[at], held, q, window)
        for p, t in zip(b.p[at].tolist(), b.t[at].tolist(), strict=True):
            setattr(states[p], name, t)  # sorted: the newest last
    return out
