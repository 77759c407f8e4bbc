"""Readings in, explainable alerts out: pure, vectorised per batch, resumable from JSON state.

The behaviour, in one place:
1. Order. A participant's readings are scored in arrival order. A reading that is not newer
   than the newest already scored for its participant and metric (a re-delivery, a late or
   out-of-order reading) is ignored, as is a non-finite value: a late reading cannot
   rewrite a run that may already have alerted, and ignoring it keeps the result
   independent of where the stream is cut into batches.
2. Bands. Each vital-sign reading gets a NEWS2-style band per limit (see config.py). A high
   heart or respiratory rate while the participant walked >= `activity_steps` steps in the
   trailing window is exercise and counts as in range. Only step readings that arrived
   before the reading count (batch cuts again must not matter).
3. Persistence. Band >= b is sustained at a reading that ends a run of >= `min_readings`
   consecutive readings at band >= b spanning >= `min_minutes`. A silence longer than
   `max_gap_minutes` breaks the run and closes any episode.
4. Episodes. The first sustained band raises an alert; a higher band sustained later in the
   same episode raises one escalation alert; `recovery_readings` in-range readings in a row
   close the episode.
5. Identity. event_id = uuid5(participant|rule|severity|event_id of the run's first reading)
   and occurred_at = detected_at, so re-scoring the same readings yields the same JSON.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from trialstream.events.alerts import AlertEpisodeEnded, AlertRaised
from trialstream.events.readings import Metric

from anomaly import dips, evidence, exertion
from anomaly.arrays import (
    US_PER_MINUTE,
    BoolArray,
    IntArray,
    segmented_cummax,
    shift,
)
from anomaly.baseline import BaselineShiftRule, baselines, deviations
from anomaly.columns import ColumnReadings, Columns
from anomaly.config import METRIC_CODE, METRICS, Direction, ScoringConfig
from anomaly.episodes import LimitRule, Rows, limit_bands, score_rule
from anomaly.forest import Forest, shipped
from anomaly.model import ModelRule, mark_scored, model_version, window_rows
from anomaly.quality import (
    FlatlineRule,
    JumpsRule,
    dropout_alert,
    flatline_bands,
    gaps,
    jump_bands,
)
from anomaly.reading import Reading
from anomaly.rhythm import IrregularRhythmRule, judged_on_every_row, rhythm
from anomaly.state import ParticipantState, SeriesState
from anomaly.windows import VITAL_METRICS, Judged, close_windows, judge

__all__ = ["Scorer", "ScoringConfig"]

FloatArray = npt.NDArray[np.float64]
NEVER = np.iinfo(np.int64).min
STEP = METRIC_CODE[Metric.STEP_COUNT]
HEART_RATE = METRIC_CODE[Metric.HEART_RATE]
BREATH = METRIC_CODE[Metric.RESPIRATORY_RATE]


@dataclass(frozen=True)
class _Batch:
    """A batch as arrays, one row per reading, sorted by (participant, metric) and within
    that in arrival order. `arrival` indexes `readings`; times are int64 microseconds."""

    readings: Sequence[Reading]
    participants: list[str]
    arrival: IntArray
    p: IntArray
    m: IntArray
    v: FloatArray
    t: IntArray

    @classmethod
    def of(cls, readings: Sequence[Reading] | Columns) -> _Batch:
        if isinstance(readings, Columns):
            c, readings = readings, ColumnReadings(readings)
        else:
            c = Columns.of(readings)
        rows = np.flatnonzero(np.isfinite(c.v))
        rows = rows[np.argsort(c.p[rows] * len(METRICS) + c.m[rows], kind="stable")]
        return cls(readings, c.participants, rows, c.p[rows], c.m[rows], c.v[rows], c.t[rows])

    def select(self, mask: npt.NDArray[np.bool_]) -> _Batch:
        return _Batch(
            self.readings,
            self.participants,
            self.arrival[mask],
            self.p[mask],
            self.m[mask],
            self.v[mask],
            self.t[mask],
        )

    def groups(self) -> tuple[IntArray, IntArray]:
        """Group number of each row and first row of each group (one participant's metric)."""
        key = self.p * len(METRICS) + self.m
        start = np.ones(len(key), dtype=np.bool_)
        start[1:] = key[1:] != key[:-1]
        return np.cumsum(start) - 1, np.flatnonzero(start)

    def group_keys(self, first: IntArray) -> Iterator[tuple[int, int]]:
        """(participant index, metric code) of each group, given its first rows."""
        return zip(self.p[first].tolist(), self.m[first].tolist(), strict=True)


@dataclass(frozen=True)
class Scored:
    alerts: list[AlertRaised]
    ended: list[AlertEpisodeEnded]


@dataclass(frozen=True)
class _RowsOf:
    """What every rule's view of a batch is cut from."""

    batch: _Batch
    group: IntArray
    series: list[SeriesState]
    last_in: IntArray
    steps: FloatArray
    step_readings: IntArray
    v_before: FloatArray
    breath: FloatArray | None
    moved: BoolArray | None = None

    def view(self, mask: BoolArray) -> Rows:
        rows = np.flatnonzero(mask)
        b = self.batch
        return Rows.of(
            rows,
            self.group[rows],
            t=b.t,
            v=b.v,
            p=b.p,
            arrival=b.arrival,
            series=self.series,
            last_in=self.last_in,
            steps=self.steps,
            step_readings=self.step_readings,
            v_before=self.v_before,
            breath=self.breath,
            moved=self.moved,
        )


def _unseen(t: IntArray, group: IntArray, first: IntArray, last_in: IntArray) -> BoolArray:
    """Rows newer than every earlier reading of their participant and metric."""
    prior = shift(segmented_cummax(t, group), 0)
    prior[first] = NEVER
    result: BoolArray = t > np.maximum(prior, last_in[group])
    return result


class Scorer:
    """Scores batches of readings one after another, carrying per-participant state.

    `snapshot`/`restore` move that state through JSON: a scorer restored from a snapshot
    continues exactly as the one that took it would have.

    Silences: a participant's own next reading reveals a gap. With `stream_clock` (replay:
    a file in time order), at the end of each batch the newest measured_at of anyone also
    reveals silences still going on. Live, a consumed batch mixes partitions that may be
    at different stream times while catching up, so ongoing silences are left to the
    wall clock (silences_until)."""

    def __init__(
        self,
        config: ScoringConfig | None = None,
        *,
        stream_clock: bool = True,
        forest: Forest | None = None,
        on_windows: Callable[[Judged, list[str]], None] | None = None,
    ) -> None:
        """`forest`: the multivariate model (default: the one shipped in the package);
        `on_windows` sees every batch's judged windows (training collects them there; with
        it and no `forest`, windows are judged but not scored)."""
        self.stream_clock = stream_clock
        self.config = config or ScoringConfig.default()
        self.model_version = self.config.model_version
        if forest is None and self.config.multivariate and on_windows is None:
            forest = shipped()
        self.forest = forest
        self.on_windows = on_windows
        self._states: dict[str, ParticipantState] = {}
        self._clock = NEVER  # stream time: the newest measured_at scored so far
        suppressible = {lim.metric for lim in self.config.limits if lim.suppressed_by_activity}
        if self.config.personal_baselines:
            suppressible.add(Metric.HEART_RATE)  # rest is judged from steps
        if self.config.multivariate:
            suppressible.update(VITAL_METRICS)  # the model's windows use resting readings
        self._activity_codes = np.array([METRIC_CODE[m] for m in suppressible], dtype=np.int64)
        self._hr_high = min(
            (
                lim.threshold_for(min(lim.levels))
                for lim in self.config.limits
                if lim.metric is Metric.HEART_RATE and lim.direction is Direction.HIGH
            ),
            default=np.inf,
        )

    def score(self, readings: Sequence[Reading] | Columns) -> list[AlertRaised]:
        """Alerts raised by this batch, ordered by detection time, participant and rule."""
        return self.score_all(readings).alerts

    def score_all(self, readings: Sequence[Reading] | Columns) -> Scored:
        """Alerts raised and alert episodes ended by this batch."""
        batch = _Batch.of(readings)
        states = [self._states.setdefault(pid, ParticipantState()) for pid in batch.participants]
        group, first = batch.groups()
        known = [states[p].series.get(METRICS[m]) for p, m in batch.group_keys(first)]
        last_in = np.array([NEVER if s is None else s.last_us for s in known], dtype=np.int64)
        keep = _unseen(batch.t, group, first, last_in)
        batch = batch.select(keep)
        alerts: list[AlertRaised] = []
        ended: list[AlertEpisodeEnded] = []
        if len(batch.t):
            kept = group[keep]  # groups that still have rows, renumbered below
            group, first = batch.groups()
            series, v_before = self._advance_series(
                batch, states, first, [known[g] for g in kept[first]]
            )
            steps, step_readings, breath = self._activity(batch, states)
            moved = None
            if self.config.motion_fall_bpm is not None:  # movement seen in heart rate
                b = exertion.BatchRows(batch.p, batch.m, batch.t, batch.v, batch.arrival, group)
                before = (last_in[kept[first]], v_before)
                moved = exertion.movement(
                    b, before, step_readings, states, self.config, self._hr_high
                )
            rows = _RowsOf(batch, group, series, last_in[kept[first]], steps, step_readings,
                           v_before, breath, moved)  # fmt: skip
            confirmed = evidence.confirmed(
                batch.m, batch.v, first, v_before, self.config.confirm_jumps
            )
            found, ended = self._rules(rows, batch, states, confirmed)
            alerts += found
            if self.config.device_quality:
                alerts += self._silences_in(batch, states)
        if self.config.device_quality and self.stream_clock:
            alerts += self._silences_at_end()
        alerts.sort(key=lambda a: (a.detected_at, a.participant_id, a.rule))
        ended.sort(key=lambda e: (e.ended_at, e.participant_id, e.rule))
        return Scored(alerts, ended)

    def _rules(
        self, rows: _RowsOf, batch: _Batch, states: list[ParticipantState], confirmed: BoolArray
    ) -> tuple[list[AlertRaised], list[AlertEpisodeEnded]]:
        cfg = self.config
        out: list[tuple[list[AlertRaised], list[AlertEpisodeEnded]]] = []
        score = functools.partial(
            score_rule,
            config=cfg,
            readings=batch.readings,
            participants=batch.participants,
            model_version=self.model_version,
        )
        if cfg.personal_baselines:  # first: learning folds this batch's completed hours
            known = rows.step_readings > 0
            if cfg.steps_less_rest:  # no steps known: at rest unless the readings say not
                known = np.ones(len(known), dtype=np.bool_)
            resting = (batch.m == HEART_RATE) & known & (rows.steps <= cfg.rest_steps) & confirmed
            if cfg.shift_below_limit:  # beyond the limit is the limit rule's episode
                resting &= batch.v < self._hr_high
            if len(view := rows.view(resting)):
                learned = [states[p].resting for p in view.p[view.first].tolist()]
                deviation = deviations(view, learned, cfg)
                out.append(score(BaselineShiftRule(deviation), deviation.bands(cfg), view))
        for limit in cfg.limits:
            if not len(view := rows.view((batch.m == METRIC_CODE[limit.metric]) & confirmed)):
                continue
            own = None
            if cfg.personal_baselines and limit.personal_margin is not None:
                held = [states[p].resting for p in view.p[view.first].tolist()]
                own, _ = baselines(view, held, cfg.baseline_min_hours)
            band = limit_bands(limit, view, cfg, own)
            out.append(score(LimitRule(limit, own), band, view))
            if cfg.brief_dip_minutes is not None and limit.metric is Metric.OXYGEN_SATURATION:
                dips.count(limit, view, band, [states[p] for p in view.p[view.first].tolist()])
        irregular = None
        if cfg.irregular_rhythm and len(view := rows.view((batch.m == HEART_RATE) & confirmed)):
            found = rhythm(view, [states[p] for p in view.p[view.first].tolist()], cfg)
            out.append(score(IrregularRhythmRule(found), found.bands(cfg), view))
            with np.errstate(invalid="ignore"):
                judged = found.jump >= cfg.rhythm_median_jump
            every = rows.view(batch.m == HEART_RATE)  # the jumps rule's view
            held = [states[p] for p in every.p[every.first].tolist()]
            irregular = judged_on_every_row(every, confirmed[batch.m == HEART_RATE], judged, held)
        if cfg.device_quality:
            for metric in cfg.flatline_metrics:
                if len(view := rows.view(batch.m == METRIC_CODE[metric])):
                    out.append(score(FlatlineRule(metric), flatline_bands(view), view))
            if len(view := rows.view(batch.m == HEART_RATE)):
                held = [states[p] for p in view.p[view.first].tolist()]
                band, count = jump_bands(view, held, cfg, irregular)
                out.append(score(JumpsRule(Metric.HEART_RATE, count), band, view))
        if cfg.multivariate:
            out.append(self._model(rows, batch, states))
        return [a for found in out for a in found[0]], [e for found in out for e in found[1]]

    def _model(
        self, rows: _RowsOf, batch: _Batch, states: list[ParticipantState]
    ) -> tuple[list[AlertRaised], list[AlertEpisodeEnded]]:
        """Close the windows this batch completes, judge them, score them all with one call
        of the model, and run the model rule over them."""
        cfg = self.config
        held = [s.windows for s in states]
        rest = (rows.step_readings > 0) & (rows.steps <= cfg.rest_steps)
        window = round(cfg.window_minutes * US_PER_MINUTE)
        closed = close_windows(
            batch.p, batch.t, batch.m, batch.v, batch.arrival, rest, held, window
        )
        if not len(closed):
            return [], []
        judged = judge(closed, held, cfg)
        if self.on_windows is not None:
            self.on_windows(judged, batch.participants)
        if self.forest is None or not judged.ok.any():
            return [], []
        scores = self.forest.score(judged.x[judged.ok])
        view = window_rows(judged, scores, held)
        rule = ModelRule.of(self.forest, judged, cfg)
        found = score_rule(
            rule,
            rule.bands(scores),
            view,
            config=cfg,
            readings=batch.readings,
            participants=batch.participants,
            model_version=model_version(self.forest, self.model_version),
        )
        mark_scored(view)
        return found

    def _silences_in(self, batch: _Batch, states: list[ParticipantState]) -> list[AlertRaised]:
        """Dropouts revealed inside the batch; advances each participant's newest time and
        the stream clock."""
        order = np.argsort(batch.arrival, kind="stable")
        p, t = batch.p[order], batch.t[order]
        seen = np.array([NEVER if s.seen_us is None else s.seen_us for s in states], dtype=np.int64)
        limit_us = round(self.config.dropout_minutes * US_PER_MINUTE)
        found = gaps(p, t, seen, limit_us)
        out = []
        for pi, start in zip(*(a.tolist() for a in found), strict=True):
            state = states[pi]
            if state.dropout_alerted_us != start:
                state.dropout_alerted_us = start
                out.append(self._dropout(batch.participants[pi], start))
        newest = np.full(len(states), NEVER, dtype=np.int64)
        np.maximum.at(newest, p, t)
        for state, n in zip(states, newest.tolist(), strict=True):
            if n != NEVER:
                state.seen_us = n if state.seen_us is None else max(state.seen_us, n)
        self._clock = max(self._clock, int(t.max()))
        return out

    def silences_until(self, clock_us: int) -> list[AlertRaised]:
        """Dropouts that a clock at `clock_us` (the wall clock, live) reveals among the
        participants held; they are then remembered as reported."""
        self._clock = max(self._clock, clock_us)
        return self._silences_at_end() if self.config.device_quality else []

    def _silences_at_end(self) -> list[AlertRaised]:
        """Participants whose silence the stream clock has now run past."""
        limit_us = round(self.config.dropout_minutes * US_PER_MINUTE)
        out = []
        for pid, state in self._states.items():
            seen = state.seen_us
            silent = seen is not None and self._clock - seen >= limit_us
            if silent and seen is not None and state.dropout_alerted_us != seen:
                state.dropout_alerted_us = seen
                out.append(self._dropout(pid, seen))
        return out

    def _dropout(self, participant_id: str, last_us: int) -> AlertRaised:
        return dropout_alert(participant_id, last_us, self.config, self.model_version)

    def place(self, participant_ids: Iterable[str], study_id: str) -> None:
        """Remember the study these participants' readings came from."""
        for pid in participant_ids:
            self._states.setdefault(pid, ParticipantState()).study_id = study_id

    def snapshot(self, participant_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """JSON-ready state of each given participant the scorer knows (others are left out)."""
        return {pid: self._states[pid].to_json() for pid in participant_ids if pid in self._states}

    def restore(self, states: Mapping[str, Mapping[str, Any]]) -> None:
        """Take over checkpointed states (from `snapshot`), replacing what is held for them.
        Raises anomaly.state.StateError for a state this version cannot read."""
        for pid, data in states.items():
            self._states[pid] = ParticipantState.from_json(data)

    @staticmethod
    def _advance_series(
        batch: _Batch,
        states: list[ParticipantState],
        first: IntArray,
        known: list[SeriesState | None],
    ) -> tuple[list[SeriesState], FloatArray]:
        """Each group's series state (created if new), moved on to its newest reading, and
        each group's newest value before this batch (NaN if none)."""
        last_row = np.append(first[1:], len(batch.t)) - 1  # kept rows only grow in time
        newest, newest_v = batch.t[last_row].tolist(), batch.v[last_row].tolist()
        series: list[SeriesState] = []
        before = np.full(len(first), np.nan)
        keys = batch.group_keys(first)
        for g, ((p, m), t, state) in enumerate(zip(keys, newest, known, strict=True)):
            if state is None:
                state = states[p].series[METRICS[m]] = SeriesState(t)
            elif state.last_v is not None:
                before[g] = state.last_v
            state.last_us, state.last_v = t, newest_v[g]
            series.append(state)
        return series, before

    def _activity(
        self, batch: _Batch, states: list[ParticipantState]
    ) -> tuple[FloatArray, IntArray, FloatArray | None]:
        """Steps (and step readings) in the trailing window known when each row arrived, for
        rows of metrics that activity can explain (0 elsewhere), and with inferred exertion
        on, breathing's rise over the participant's own baseline (NaN: unknown); advances
        the step and breathing histories."""
        cfg = self.config
        query = np.isin(batch.m, self._activity_codes)
        steps, readings = np.zeros(len(batch.t)), np.zeros(len(batch.t), dtype=np.int64)
        horizon = round(cfg.step_history_minutes * US_PER_MINUTE)
        stream = self._stream(batch, states, STEP, query, "step")
        if stream is not None:
            if query.any() and len(stream.t):
                window = round(cfg.activity_window_minutes * US_PER_MINUTE)
                q = (batch.p[query], batch.t[query], batch.arrival[query])
                steps[query], readings[query] = stream.known_at(*q, window, horizon)
            for p, t, v in stream.kept(np.unique(batch.p[batch.m == STEP]), horizon):
                states[p].keep_context("step", t, v)  # newer than the newest - horizon
        if cfg.exertion_breath_rise is None:
            return steps, readings, None
        rise = np.full(len(batch.t), np.nan)
        horizon = round(cfg.breath_history_minutes * US_PER_MINUTE)
        query = np.zeros(len(batch.t), dtype=np.bool_)  # only breaches exertion may explain
        for lim in cfg.limits:
            if lim.suppressed_by_activity and lim.metric is not Metric.RESPIRATORY_RATE:
                own = batch.m == METRIC_CODE[lim.metric]
                query[own] |= lim.band_of(batch.v[own]) > 0
        query &= readings == 0
        if query.any():  # rare: the breaches of participants without steps
            stream = self._stream(batch, states, BREATH, query, "breath", only_queried=True)
            if stream is not None and len(stream.t):
                found = exertion.breathing(
                    stream,
                    batch.p[query],
                    batch.t[query],
                    batch.arrival[query],
                    window_minutes=cfg.exertion_window_minutes,
                    sparse_window_minutes=cfg.exertion_sparse_window_minutes,
                    baseline_minutes=cfg.exertion_baseline_minutes,
                    gap_minutes=cfg.exertion_baseline_gap_minutes,
                    horizon=horizon,
                )
                rise[query] = found.rise
        new = np.flatnonzero(batch.m == BREATH)  # by participant, then arrival
        exertion.append(batch.p[new], batch.t[new], batch.v[new], states, horizon)
        return steps, readings, rise

    @staticmethod
    def _stream(
        batch: _Batch,
        states: list[ParticipantState],
        code: int,
        query: BoolArray,
        name: str,
        only_queried: bool = False,
    ) -> exertion.Stream | None:
        """The context metric's readings held and new, for the participants concerned
        (`only_queried`: only those of the queries, the history kept apart)."""
        new = batch.m == code
        if only_queried:
            new &= np.isin(batch.p, batch.p[query])
        if not new.any() and not query.any():
            return None
        people = np.unique(batch.p[query | new]).tolist()
        held = [(p, *states[p].context(name)) for p in people]
        return exertion.Stream.of(
            [h for h in held if len(h[1])],
            batch.p[new],
            batch.t[new],
            batch.v[new],
            batch.arrival[new],
        )
