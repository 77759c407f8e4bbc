"""The scoring rules stated one reading at a time, as plainly as possible.

The vectorised Scorer must agree with this on any stream, however it is cut into batches
and checkpointed; the equivalence tests check that on random streams.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
from anomaly.config import SEVERITY_OF_BAND, Limit, ScoringConfig
from anomaly.explain import ALERT_NAMESPACE, Activity, explain
from trialstream.events.alerts import AlertRaised
from trialstream.events.readings import Metric, ReadingReceived


@dataclass
class _Run:
    n: int
    start: datetime
    first: str
    values: list[float] = field(default_factory=list)


@dataclass
class _Rule:
    alerted: int = 0
    recovery: int = 0
    runs: dict[int, _Run] = field(default_factory=dict)


class ReferenceScorer:
    def __init__(self, config: ScoringConfig | None = None) -> None:
        self.config = config or ScoringConfig()
        self.last: dict[tuple[str, Metric], datetime] = {}
        self.steps: dict[str, list[tuple[datetime, float]]] = {}
        self.rules: dict[tuple[str, str], _Rule] = {}

    def score(self, readings: Sequence[ReadingReceived]) -> list[AlertRaised]:
        return [alert for r in readings for alert in self._one(r)]

    def _one(self, r: ReadingReceived) -> list[AlertRaised]:
        cfg, pid, t = self.config, r.participant_id, r.measured_at.astimezone(UTC)
        previous = self.last.get((pid, r.metric))
        if not math.isfinite(r.value) or (previous is not None and t <= previous):
            return []  # not newer than what was scored: ignored
        self.last[pid, r.metric] = t
        if r.metric is Metric.STEP_COUNT:
            self.steps.setdefault(pid, []).append((t, r.value))
            return []
        window = timedelta(minutes=cfg.activity_window_minutes)
        newest = self.last.get((pid, Metric.STEP_COUNT), t)
        known = [
            v
            for ts, v in self.steps.get(pid, [])
            if t - window < ts <= t and ts > newest - timedelta(minutes=cfg.step_history_minutes)
        ]
        activity = Activity(sum(known), len(known), cfg.activity_window_minutes)
        out = []
        for limit in cfg.limits:
            if limit.metric is r.metric:
                alert = self._limit(limit, r, t, previous, activity)
                out += [alert] if alert else []
        return out

    def _limit(
        self,
        limit: Limit,
        r: ReadingReceived,
        t: datetime,
        previous: datetime | None,
        activity: Activity,
    ) -> AlertRaised | None:
        cfg, per = self.config, self.config.persistence[limit.metric]
        band = int(limit.band_of(np.array([r.value]))[0])
        if limit.suppressed_by_activity and activity.steps >= cfg.activity_steps:
            band = 0
        key = (r.participant_id, limit.rule)
        if previous is None or t - previous > timedelta(minutes=per.max_gap_minutes):
            self.rules[key] = _Rule()  # a long silence: start afresh
        state = self.rules.setdefault(key, _Rule())
        for level in limit.levels:
            if band >= level:
                run = state.runs.setdefault(level, _Run(0, t, str(r.event_id)))
                run.n += 1
                run.values.append(r.value)
            else:
                state.runs.pop(level, None)
        held = timedelta(minutes=per.min_minutes)
        sustained = max(
            (
                b
                for b, run in state.runs.items()
                if run.n >= per.min_readings and t - run.start >= held
            ),
            default=0,
        )
        state.recovery = state.recovery + 1 if band == 0 else 0
        if state.recovery >= per.recovery_readings:
            state.alerted = 0
        if sustained <= state.alerted:
            return None
        escalated_from, state.alerted = state.alerted, sustained
        run = state.runs[sustained]
        severity = SEVERITY_OF_BAND[sustained]
        return AlertRaised(
            event_id=uuid.uuid5(
                ALERT_NAMESPACE, f"{r.participant_id}|{limit.rule}|{severity}|{run.first}"
            ),
            occurred_at=t,
            participant_id=r.participant_id,
            metric=limit.metric,
            severity=severity,
            rule=limit.rule,
            detected_at=t,
            window_start=run.start,
            window_end=t,
            observed=list(run.values),
            threshold=limit.threshold_for(sustained),
            model_version=cfg.model_version,
            explanation=explain(
                limit, sustained, run.values, run.start, t, activity, escalated_from
            ),
        )
