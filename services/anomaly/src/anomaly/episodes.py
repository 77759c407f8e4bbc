"""Runs and episodes of one limit over every participant of a batch at once.

Rows are one metric's readings grouped by participant (in time order, already cleared of
late readings). Each group may continue state from earlier batches ("carry"). Every step
is an array operation over all rows; Python only visits groups whose state changes and
the rows that raise alerts.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Protocol

import numpy as np
import numpy.typing as npt
from trialstream.events.alerts import AlertEpisodeEnded, AlertKind, AlertRaised, Severity
from trialstream.events.readings import UNITS, Metric

from anomaly import evidence
from anomaly.arrays import US_PER_MINUTE, BoolArray, IntArray, consecutive, shift
from anomaly.config import Direction, Limit, Persistence, ScoringConfig
from anomaly.exertion import exerting
from anomaly.explain import (
    ALERT_NAMESPACE,
    Activity,
    build_alert,
    episode_key,
    number,
    raise_alert,
    to_datetime,
)
from anomaly.reading import Reading
from anomaly.state import RuleState, Run, SeriesState

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Rows:
    t: IntArray
    v: FloatArray
    p: IntArray  # participant index
    arrival: IntArray  # index into the batch's readings
    group: IntArray  # 0..groups-1, non-decreasing
    first: IntArray  # first row of each group
    last: IntArray  # last row of each group
    series: list[SeriesState]  # per group
    last_in: IntArray  # per group: newest time scored before this batch (int64 min if none)
    steps: FloatArray  # per row: steps in the activity window
    step_readings: IntArray  # per row: step readings in the activity window
    v_before: FloatArray  # per group: value of the newest reading before this batch (NaN: none)
    # per row: breathing's rise over the participant's own recent baseline (anomaly.exertion;
    # None: not judged)
    breath: FloatArray | None = None
    # per row: a breach by a participant without steps soon after a heart-rate fall
    # (anomaly.exertion.moved; None: not judged)
    moved: BoolArray | None = None

    def __len__(self) -> int:
        return len(self.t)

    @classmethod
    def of(
        cls,
        rows: IntArray,
        batch_group: IntArray,
        *,
        t: IntArray,
        v: FloatArray,
        p: IntArray,
        arrival: IntArray,
        series: list[SeriesState],
        last_in: IntArray,
        steps: FloatArray,
        step_readings: IntArray,
        v_before: FloatArray,
        breath: FloatArray | None = None,
        moved: BoolArray | None = None,
    ) -> Rows:
        starts = np.ones(len(rows), dtype=np.bool_)
        starts[1:] = batch_group[1:] != batch_group[:-1]
        first = np.flatnonzero(starts)
        picked = batch_group[first]  # this metric's groups among the batch's
        return cls(
            t[rows],
            v[rows],
            p[rows],
            arrival[rows],
            np.cumsum(starts) - 1,
            first,
            np.append(first[1:], len(rows)) - 1,
            [series[g] for g in picked.tolist()],
            last_in[picked],
            steps[rows],
            step_readings[rows],
            v_before[picked],
            None if breath is None else breath[rows],
            None if moved is None else moved[rows],
        )


def _segments(rows: Rows, max_gap: int) -> tuple[BoolArray, BoolArray]:
    """Where runs must restart (a group's first row, or after a gap longer than max_gap),
    and which rows continue the state carried from earlier batches (those before the
    group's first gap, when its first row is itself within max_gap of the last scored)."""
    t, g, first = rows.t, rows.group, rows.first
    is_first = np.zeros(len(t), dtype=np.bool_)
    is_first[first] = True
    gap = ~is_first & (t - shift(t, 0) > max_gap)
    seen = rows.last_in > np.iinfo(np.int64).min
    continues = seen & (t[first] - np.where(seen, rows.last_in, 0) <= max_gap)
    gaps = np.cumsum(gap)
    carried = continues[g] & (gaps == gaps[first][g])
    return is_first | gap, carried


@dataclass(frozen=True)
class _Runs:
    """Per row, for one band: in a run at or beyond it, its length and start (counting
    the carried part), index of its first row here, and whether it began in an earlier batch."""

    mask: BoolArray
    n: IntArray
    start_us: IntArray
    first: IntArray
    carried: BoolArray


def _runs(
    mask: BoolArray,
    seg_start: BoolArray,
    carried: BoolArray,
    rows: Rows,
    n0: IntArray,
    s0: IntArray,
) -> _Runs:
    length, first = consecutive(mask, seg_start)
    g = rows.group
    from_carry = mask & carried & (first == rows.first[g]) & (n0[g] > 0)
    n = length + np.where(from_carry, n0[g], 0)
    start = np.where(from_carry, s0[g], rows.t[first])
    return _Runs(mask, n, start, first, from_carry)


@dataclass(frozen=True)
class _Episodes:
    alerted: IntArray  # band alerted in the open episode after each row (0 = none)
    before: IntArray  # the same just before each row
    recovery: IntArray  # in-range readings in a row up to each row
    closing: BoolArray  # rows whose in-range reading ends an alerted episode (not a gap)


def _episodes(
    sustained: IntArray,
    in_range: BoolArray,
    seg_start: BoolArray,
    carried: BoolArray,
    rows: Rows,
    carry: tuple[IntArray, IntArray],
    recovery_readings: int,
) -> _Episodes:
    """Within an episode the alerted band is the running maximum of the sustained band,
    so episodes become segments and the state machine a segmented cumulative maximum."""
    g, first = rows.group, rows.first
    alerted0, recovery0 = carry
    length, run_first = consecutive(in_range, seg_start)
    recovery = length + np.where(in_range & carried & (run_first == first[g]), recovery0[g], 0)
    ended = in_range & (recovery >= recovery_readings)
    epoch_start = seg_start | ended
    epoch = np.cumsum(epoch_start)
    width = int(max(sustained.max(initial=0), alerted0.max(initial=0))) + 1
    alerted = np.maximum.accumulate(epoch * width + sustained) - epoch * width
    in_carried_epoch = carried & (epoch == epoch[first][g]) & ~ended[first][g]
    alerted = np.where(in_carried_epoch, np.maximum(alerted, alerted0[g]), alerted)
    before = np.where(epoch_start, np.where(in_carried_epoch, alerted0[g], 0), shift(alerted, 0))
    # Open just before the row: the previous row's episode, or the carried one at a group's
    # first row; a gap closes an episode without a recovery, so it does not count.
    was_open = shift(alerted, 0)
    was_open[first] = np.where(carried[first], alerted0, 0)
    is_first = np.zeros(len(was_open), dtype=np.bool_)
    is_first[first] = True
    was_open[seg_start & ~is_first] = 0
    return _Episodes(alerted, before, recovery, ended & (was_open > 0))


class BandRule(Protocol):
    """A rule judged by the run/episode machine below: each row gets a band (0 = fine);
    a band held by enough consecutive rows for long enough raises an alert."""

    @property
    def rule(self) -> str: ...

    @property
    def levels(self) -> tuple[int, ...]: ...

    @property
    def kind(self) -> AlertKind: ...

    @property
    def metric(self) -> Metric | None: ...

    def persistence(self, config: ScoringConfig) -> Persistence: ...

    def build(self, hit: Hit) -> AlertRaised: ...


@dataclass(frozen=True)
class Hit:
    """Everything an alert is built from: the band sustained at row `i` of `rows`."""

    band: int
    participant_id: str
    run: Run
    detected_us: int
    rows: Rows
    i: int
    escalated_from: int
    config: ScoringConfig
    model_version: str

    def alert(
        self,
        rule: BandRule,
        severity: Severity,
        explanation: str,
        *,
        threshold: float | None = None,
        baseline: float | None = None,
        window_start_us: int | None = None,
    ) -> AlertRaised:
        """The alert for this hit: its id derives from the episode (participant, rule,
        severity, the run's first reading), so re-scoring yields the same alert."""
        start = to_datetime(self.run.start_us if window_start_us is None else window_start_us)
        return raise_alert(
            key=episode_key(self.participant_id, rule.rule, severity, self.run.first),
            participant_id=self.participant_id,
            kind=rule.kind,
            metric=rule.metric,
            severity=severity,
            rule=rule.rule,
            start=start,
            end=to_datetime(self.detected_us),
            observed=self.run.values[-30:],
            threshold=threshold,
            baseline=baseline,
            model_version=self.model_version,
            explanation=explanation,
        )


def limit_bands(
    limit: Limit, rows: Rows, config: ScoringConfig, baseline: FloatArray | None = None
) -> npt.NDArray[np.int8]:
    band = limit.band_of(rows.v)
    if limit.suppressed_by_activity:
        band[rows.steps >= config.activity_steps] = 0  # exercise, not an alert
        if rows.breath is not None and limit.metric is not Metric.RESPIRATORY_RATE:
            # no steps sent, but breathing rose with it: exertion (inferred)
            band[exerting(rows.breath, rows.step_readings, config.exertion_breath_rise)] = 0
        if rows.moved is not None:  # no steps sent, but heart rate showed movement
            band[rows.moved] = 0
    if limit.personal_margin is not None and baseline is not None:
        sign = 1 if limit.direction is Direction.LOW else -1
        with np.errstate(invalid="ignore"):  # NaN: no baseline yet, the limit stands
            own = sign * (baseline - rows.v) < limit.personal_margin
        band[own] = 0  # within the participant's own normal range
    return band


@dataclass(frozen=True)
class LimitRule:
    """A NEWS2-style clinical limit as a BandRule; `baseline` per row when it was judged
    against the participant's own baseline."""

    limit: Limit
    baseline: FloatArray | None = None

    @property
    def rule(self) -> str:
        return self.limit.rule

    @property
    def levels(self) -> tuple[int, ...]:
        return self.limit.levels

    @property
    def kind(self) -> AlertKind:
        return AlertKind.CLINICAL

    @property
    def metric(self) -> Metric:
        return self.limit.metric

    def persistence(self, config: ScoringConfig) -> Persistence:
        return config.persistence[self.limit.metric]

    def build(self, hit: Hit) -> AlertRaised:
        rows, i, cfg = hit.rows, hit.i, hit.config
        activity = Activity(
            float(rows.steps[i]),
            int(rows.step_readings[i]),
            cfg.activity_window_minutes,
            None
            if rows.breath is None or self.limit.metric is Metric.RESPIRATORY_RATE
            else float(rows.breath[i]),
            None
            if rows.moved is None or cfg.motion_fall_bpm is None
            else (cfg.motion_fall_bpm, cfg.motion_window_minutes),
        )
        own = None if self.baseline is None else float(self.baseline[i])
        return build_alert(
            self.limit,
            hit.band,
            hit.participant_id,
            hit.run,
            hit.detected_us,
            activity,
            escalated_from=hit.escalated_from,
            model_version=hit.model_version,
            baseline=None if own is None or np.isnan(own) else own,
            after_minutes=evidence.minutes_since_previous(
                rows.t, rows.first, rows.group, rows.last_in, i
            ),
        )


def score_rule(
    spec: BandRule,
    band: npt.NDArray[np.int8],
    rows: Rows,
    config: ScoringConfig,
    readings: Sequence[Reading],
    participants: Sequence[str],
    model_version: str,
) -> tuple[list[AlertRaised], list[AlertEpisodeEnded]]:
    """Alerts of one rule given each row's band, and the episodes that ended; updates the
    rule's state in `rows.series`."""
    per = spec.persistence(config)
    rule = spec.rule
    carry = [s.rules.get(rule) for s in rows.series]
    held = [i for i, c in enumerate(carry) if c is not None]
    if not held and not band.any():
        return [], []  # the common case: nothing breaching, nothing open
    seg_start, carried = _segments(rows, round(per.max_gap_minutes * US_PER_MINUTE))
    t = rows.t
    runs: dict[int, _Runs] = {}
    sustained = np.zeros(len(t), dtype=np.int64)
    limit = spec.limit if isinstance(spec, LimitRule) else None
    alone = evidence.alone(limit, rows.t, rows.first, rows.group, rows.last_in, config)
    dip = evidence.brief_dips(limit, config)
    for level in spec.levels:
        n0, s0 = _carried_runs(carry, held, level)
        run = _runs(band >= level, seg_start, carried, rows, n0, s0)
        ok = run.mask & (run.n >= per.min_readings)
        ok &= t - run.start_us >= round(per.min_minutes * US_PER_MINUTE)
        if dip is not None:
            cadence, minutes = dip  # a dense run must outlast a brief dip
            dense = t - run.start_us < (run.n - 1) * cadence
            ok &= ~dense | (t - run.start_us >= minutes)
        if alone is not None:
            ok |= run.mask & alone
        sustained[ok] = level
        runs[level] = run
    alerted0 = _per_group(carry, held, lambda c: c.alerted)
    recovery0 = _per_group(carry, held, lambda c: c.recovery)
    episodes = _episodes(
        sustained, band == 0, seg_start, carried, rows, (alerted0, recovery0), per.recovery_readings
    )
    found = _Found(spec, rows, runs, carry, episodes, sustained)
    alerts = [
        _alert(found, i, config, readings, participants, model_version)
        for i in np.flatnonzero(sustained > episodes.before).tolist()
    ]
    ended = [
        episode_ended(spec, participants[rows.p[i]], readings[rows.arrival[i]], per)
        for i in np.flatnonzero(episodes.closing).tolist()
    ]
    _carry_out(found, band == 0, per.recovery_readings, readings)
    return alerts, ended


def episode_ended(
    spec: BandRule, participant_id: str, closing: Reading, per: Persistence
) -> AlertEpisodeEnded:
    ended_at = closing.measured_at.astimezone(UTC)
    key = f"{participant_id}|{spec.rule}|ended|{closing.event_id}"
    if spec.metric is not None:
        items, last = "readings", f"{number(closing.value)} {UNITS[spec.metric]}"
    else:  # a windowed rule: its rows are windows, each closed by a reading
        items, last = "windows", "when the next window began"
    return AlertEpisodeEnded(
        event_id=uuid.uuid5(ALERT_NAMESPACE, key),
        occurred_at=ended_at,
        participant_id=participant_id,
        kind=spec.kind,
        metric=spec.metric,
        rule=spec.rule,
        ended_at=ended_at,
        explanation=(
            f"Back to normal: {per.recovery_readings} {items} in a row clear of "
            f"{spec.rule} (the last at {ended_at:%Y-%m-%d %H:%M} UTC, {last}). "
            "The episode is over; its alerts still want review."
        ),
    )


def _per_group(
    carry: list[RuleState | None], held: list[int], get: Callable[[RuleState], int]
) -> IntArray:
    out = np.zeros(len(carry), dtype=np.int64)
    out[held] = [get(c) for c in carry if c is not None]
    return out


def _carried_runs(
    carry: list[RuleState | None], held: list[int], level: int
) -> tuple[IntArray, IntArray]:
    runs = [c.runs.get(level) for c in carry if c is not None]
    n0, s0 = np.zeros(len(carry), dtype=np.int64), np.zeros(len(carry), dtype=np.int64)
    n0[held] = [r.n if r else 0 for r in runs]
    s0[held] = [r.start_us if r else 0 for r in runs]
    return n0, s0


@dataclass(frozen=True)
class _Found:
    spec: BandRule
    rows: Rows
    runs: dict[int, _Runs]
    carry: list[RuleState | None]
    episodes: _Episodes
    sustained: IntArray

    def run_at(self, level: int, i: int, readings: Sequence[Reading]) -> Run:
        """The run at or beyond `level` that row i belongs to (carried part included)."""
        run, rows = self.runs[level], self.rows
        first = int(run.first[i])
        values = rows.v[first : i + 1].tolist()
        carried = self.carry[rows.group[i]] if run.carried[i] else None
        if carried is not None:
            earlier = carried.runs[level]
            return Run(int(run.n[i]), earlier.start_us, earlier.first, earlier.values + values)
        event_id = str(readings[rows.arrival[first]].event_id)
        return Run(int(run.n[i]), int(run.start_us[i]), event_id, values)


def _alert(
    found: _Found,
    i: int,
    config: ScoringConfig,
    readings: Sequence[Reading],
    participants: Sequence[str],
    model_version: str,
) -> AlertRaised:
    rows, band = found.rows, int(found.sustained[i])
    hit = Hit(
        band,
        participants[rows.p[i]],
        found.run_at(band, i, readings),
        int(rows.t[i]),
        rows,
        i,
        int(found.episodes.before[i]),
        config,
        model_version,
    )
    return found.spec.build(hit)


def _carry_out(
    found: _Found, in_range: BoolArray, recovery_readings: int, readings: Sequence[Reading]
) -> None:
    """Write each touched group's state as of its last row; drop states that became empty."""
    rows, episodes, rule = found.rows, found.episodes, found.spec.rule
    last = rows.last
    alerted = episodes.alerted[last]
    touched = (alerted > 0) | np.array([c is not None for c in found.carry])
    for run in found.runs.values():
        touched |= run.mask[last]
    for g in np.flatnonzero(touched).tolist():
        end = int(last[g])
        state = RuleState(int(alerted[g]))
        if state.alerted and in_range[end]:
            state.recovery = min(int(episodes.recovery[end]), recovery_readings)
        for level, run in found.runs.items():
            if run.mask[end]:
                kept = found.run_at(level, end, readings)
                if level <= state.alerted:
                    kept.values = []  # cannot alert again in this episode
                state.runs[level] = kept
        if state.alerted or state.runs:
            rows.series[g].rules[rule] = state
        else:
            rows.series[g].rules.pop(rule, None)
