"""Pure, batch-vectorised scoring of wearable readings with per-participant state.

A batch becomes numpy arrays once; limit bands are computed for every reading at
once. The run/episode state machine then visits only (participant, metric) groups
that have a breach or an open run: in the common case (normal readings) a group
costs a few array operations and no per-reading Python.

Readings older than the last one already scored for a participant and metric
(late uploads) are ignored by the state machine: they cannot reorder a run that
has already been judged. The same applies to a re-delivered batch, which is why
re-scoring after a crash adds nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from trialstream.events.alerts import AlertKind, AlertRaised
from trialstream.events.readings import Metric, ReadingReceived

from anomaly.explain import explain
from anomaly.rules import METRIC_CODE, SEVERITY_OF_BAND, Limit, ScoringConfig

ALERT_NAMESPACE = uuid.UUID("5b7f5a2e-9a53-4bd4-8a0c-6f1f2d8a4c11")
MAX_OBSERVED = 30  # values kept per run for the explanation


def _epoch(ts: datetime) -> float:
    return ts.timestamp()


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@dataclass
class Batch:
    """A batch as arrays, in arrival order."""

    participant: npt.NDArray[np.int64]  # index into participant_ids
    metric: npt.NDArray[np.int8]
    value: npt.NDArray[np.float64]
    time: npt.NDArray[np.float64]  # epoch seconds of measured_at
    participant_ids: list[str]
    readings: Sequence[ReadingReceived]

    @classmethod
    def of(cls, readings: Sequence[ReadingReceived]) -> Batch:
        index: dict[str, int] = {}
        participant = np.fromiter(
            (index.setdefault(r.participant_id, len(index)) for r in readings),
            np.int64,
            len(readings),
        )
        return cls(
            participant=participant,
            metric=np.fromiter((METRIC_CODE[r.metric] for r in readings), np.int8, len(readings)),
            value=np.fromiter((r.value for r in readings), np.float64, len(readings)),
            time=np.fromiter((_epoch(r.measured_at) for r in readings), np.float64, len(readings)),
            participant_ids=list(index),
            readings=readings,
        )


class Scorer:
    def __init__(self, config: ScoringConfig | None = None) -> None:
        self.config = config or ScoringConfig()
        self.model_version = self.config.model_version
        # participant -> {"steps": [[t, steps], ...], "last": {metric: t}, "runs": {rule: run}}
        self._states: dict[str, dict[str, Any]] = {}

    # -- checkpointing -------------------------------------------------------------
    def snapshot(self, participant_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        return {p: self._states[p] for p in participant_ids if p in self._states}

    def restore(self, states: Mapping[str, Mapping[str, Any]]) -> None:
        for participant_id, state in states.items():
            self._states[participant_id] = {
                "steps": [list(pair) for pair in state.get("steps", [])],
                "last": dict(state.get("last", {})),
                "runs": {rule: dict(run) for rule, run in state.get("runs", {}).items()},
            }

    # -- scoring -------------------------------------------------------------------
    def score(self, readings: Sequence[ReadingReceived]) -> list[AlertRaised]:
        if not readings:
            return []
        batch = Batch.of(readings)
        bands = {limit.rule: limit.band_of(batch.value) for limit in self.config.limits}
        metric_masks = {m: batch.metric == code for m, code in METRIC_CODE.items()}
        alerts: list[AlertRaised] = []
        for p, participant_id in enumerate(batch.participant_ids):
            state = self._states.setdefault(participant_id, {"steps": [], "last": {}, "runs": {}})
            mine = batch.participant == p
            steps_mask = mine & metric_masks[Metric.STEP_COUNT]
            steps = (np.flatnonzero(steps_mask), batch.time[steps_mask], batch.value[steps_mask])
            for metric in self.config.persistence:
                rows = np.flatnonzero(mine & metric_masks[metric])
                if rows.size == 0:
                    continue
                alerts.extend(
                    self._score_group(state, participant_id, metric, rows, batch, bands, steps)
                )
                latest = float(batch.time[rows].max())
                state["last"][str(metric)] = max(state["last"].get(str(metric), latest), latest)
            self._remember_steps(state, steps[1], steps[2])
        alerts.sort(key=lambda a: (a.detected_at, a.participant_id, a.rule))
        return alerts

    def _score_group(
        self,
        state: dict[str, Any],
        participant_id: str,
        metric: Metric,
        rows: npt.NDArray[np.int64],
        batch: Batch,
        bands: dict[str, npt.NDArray[np.int8]],
        steps: tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64]],
    ) -> list[AlertRaised]:
        last_seen = state["last"].get(str(metric), -np.inf)
        order = rows[np.argsort(batch.time[rows], kind="stable")]
        order = order[batch.time[order] > last_seen]  # late or re-delivered readings
        out: list[AlertRaised] = []
        for limit in self.config.limits_for(metric):
            band = bands[limit.rule][order]
            run = state["runs"].get(limit.rule)
            if not band.any() and run is None:
                continue  # the common case: nothing breaching, nothing open
            out.extend(self._walk(state, participant_id, limit, order, band, batch, steps))
        return out

    def _walk(
        self,
        state: dict[str, Any],
        participant_id: str,
        limit: Limit,
        order: npt.NDArray[np.int64],
        band: npt.NDArray[np.int8],
        batch: Batch,
        steps: tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64]],
    ) -> list[AlertRaised]:
        p = self.config.persistence[limit.metric]
        out: list[AlertRaised] = []
        run: dict[str, Any] | None = state["runs"].get(limit.rule)
        for row, b in zip(order.tolist(), band.tolist(), strict=True):
            t = float(batch.time[row])
            active_steps = None
            if b and limit.suppressed_by_activity:
                active_steps = self._steps_before(state, steps, row, t)
                if active_steps >= self.config.activity_steps:
                    b = 0  # exercise, not an alert
            if run is not None and t - run["last_t"] > p.max_gap_minutes * 60:
                run = self._after_gap(run)
            if not b:
                run = self._in_range(run, p.recovery_readings)
                continue
            if run is None:
                run = {"alerted": 0, "n": 0, "values": [], "bands": [], "recovery": 0}
            if run["n"] == 0:
                run["start_t"], run["start_id"] = t, str(batch.readings[row].event_id)
            run["n"] += 1
            run["recovery"] = 0
            run["last_t"] = t
            run["values"] = (run["values"] + [float(batch.value[row])])[-MAX_OBSERVED:]
            run["bands"] = (run["bands"] + [b])[-p.min_readings :]
            if run["n"] < p.min_readings or t - run["start_t"] < p.min_minutes * 60:
                continue
            sustained = min(run["bands"])  # the band held by the last min_readings readings
            if sustained > run["alerted"]:
                escalated_from = str(SEVERITY_OF_BAND[run["alerted"]]) if run["alerted"] else None
                out.append(
                    self._alert(
                        participant_id, limit, sustained, run, t, active_steps, escalated_from
                    )
                )
                run["alerted"] = sustained
        if run is None:
            state["runs"].pop(limit.rule, None)
        else:
            state["runs"][limit.rule] = run
        return out

    @staticmethod
    def _after_gap(run: dict[str, Any]) -> dict[str, Any] | None:
        """A long silence breaks the run; an alerted episode stays open (no re-alert)
        until enough in-range readings end it."""
        if not run["alerted"]:
            return None
        run["n"], run["values"], run["bands"] = 0, [], []
        return run

    @staticmethod
    def _in_range(run: dict[str, Any] | None, recovery_readings: int) -> dict[str, Any] | None:
        """An in-range reading breaks the run; enough of them in a row end the episode."""
        if run is None or not run["alerted"]:
            return None
        run["n"], run["values"], run["bands"] = 0, [], []
        run["recovery"] += 1
        return None if run["recovery"] >= recovery_readings else run

    def _steps_before(
        self,
        state: dict[str, Any],
        steps: tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64]],
        row: int,
        t: float,
    ) -> float:
        """Steps in the activity window before `t`, counting only step readings that
        arrived before this reading, so batch boundaries never change the answer."""
        since = t - self.config.activity_window_minutes * 60
        total = sum(v for st, v in state["steps"] if since < st <= t)
        positions, times, values = steps
        known = (positions < row) & (times > since) & (times <= t)
        return float(total + values[known].sum())

    def _remember_steps(
        self, state: dict[str, Any], times: npt.NDArray[np.float64], values: npt.NDArray[np.float64]
    ) -> None:
        merged = state["steps"] + [[float(t), float(v)] for t, v in zip(times, values, strict=True)]
        if not merged:
            return
        horizon = max(t for t, _ in merged) - self.config.activity_window_minutes * 60
        state["steps"] = [pair for pair in merged if pair[0] > horizon]

    def _alert(
        self,
        participant_id: str,
        limit: Limit,
        band: int,
        run: dict[str, Any],
        t: float,
        steps: float | None,
        escalated_from: str | None,
    ) -> AlertRaised:
        severity = SEVERITY_OF_BAND[band]
        start, end = _utc(run["start_t"]), _utc(t)
        key = f"{participant_id}|{limit.rule}|{severity}|{run['start_id']}"
        return AlertRaised(
            event_id=uuid.uuid5(ALERT_NAMESPACE, key),
            occurred_at=end,
            participant_id=participant_id,
            kind=AlertKind.CLINICAL,
            metric=limit.metric,
            severity=severity,
            rule=limit.rule,
            detected_at=end,
            window_start=start,
            window_end=end,
            observed=list(run["values"]),
            threshold=limit.threshold_for(band),
            baseline=None,
            model_version=self.model_version,
            explanation=explain(limit, band, run["values"], start, end, steps, escalated_from),
        )
