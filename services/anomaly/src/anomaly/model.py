"""The multivariate model as a rule: closed windows (windows.py) scored by the shipped
IsolationForest (forest.py), judged by the same run/episode machine as every other rule
(persistence over windows, one alert per episode, auto-resolve), each alert naming the
model version, its score and the personal deviations behind it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from trialstream.events.alerts import AlertKind, AlertRaised, Severity
from trialstream.events.readings import UNITS, Metric

from anomaly.arrays import US_PER_MINUTE
from anomaly.config import Persistence, ScoringConfig
from anomaly.episodes import Hit, Rows
from anomaly.explain import NAMES, number, span, to_datetime
from anomaly.forest import Forest
from anomaly.state import SeriesState, WindowState
from anomaly.windows import VITAL_METRICS, Judged

FloatArray = npt.NDArray[np.float64]
RULE = "model/multivariate-deterioration"


def model_version(forest: Forest, rules_version: str) -> str:
    """What alerts of the model carry: the model's version and the rules' beside it (the
    windows and baselines it sees are the rules' code)."""
    return f"{forest.version}+{rules_version}"


def window_rows(judged: Judged, scores: FloatArray, held: list[WindowState]) -> Rows:
    """The judged windows (those with `judged.ok`) as rows of one series per participant:
    time = the closing reading's measured_at, value = the model's score."""
    c, ok = judged.closed, np.flatnonzero(judged.ok)
    p, t = c.p[ok], c.t[ok]
    starts = np.ones(len(p), dtype=np.bool_)
    starts[1:] = p[1:] != p[:-1]
    first = np.flatnonzero(starts)
    series: list[SeriesState] = [held[pi].series for pi in p[first].tolist()]
    return Rows(
        t=t,
        v=scores,
        p=p,
        arrival=c.arrival[ok],
        group=np.cumsum(starts) - 1,
        first=first,
        last=np.append(first[1:], len(p)) - 1,
        series=series,
        last_in=np.array([s.last_us for s in series], dtype=np.int64),
        steps=np.zeros(len(p)),
        step_readings=np.zeros(len(p), dtype=np.int64),
        v_before=np.full(len(first), np.nan),
    )


def mark_scored(rows: Rows) -> None:
    """Each series remembers its newest window, so the next batch knows a gap."""
    for g, series in enumerate(rows.series):
        series.last_us = int(rows.t[rows.last[g]])


@dataclass(frozen=True)
class ModelRule:
    """Early deterioration seen by the model: several vitals off together at rest, none
    necessarily beyond its own limit. Arrays are per row of `window_rows`."""

    forest: Forest
    threshold: float
    window_minutes: float
    means: FloatArray
    baseline: FloatArray
    spread: FloatArray
    x: FloatArray

    rule = RULE
    levels = (2,)
    kind = AlertKind.CLINICAL
    metric: Metric | None = None  # no one metric: the alert is about their combination

    @classmethod
    def of(cls, forest: Forest, judged: Judged, config: ScoringConfig) -> ModelRule:
        ok = judged.ok
        threshold = forest.threshold if config.model_threshold is None else config.model_threshold
        return cls(
            forest,
            threshold,
            config.window_minutes,
            judged.means[ok],
            judged.baseline[ok],
            judged.spread[ok],
            judged.x[ok],
        )

    def bands(self, scores: FloatArray) -> npt.NDArray[np.int8]:
        band: npt.NDArray[np.int8] = np.where(scores >= self.threshold, 2, 0).astype(np.int8)
        return band

    def persistence(self, config: ScoringConfig) -> Persistence:
        return config.model_persistence

    def build(self, hit: Hit) -> AlertRaised:
        i, run = hit.i, hit.run
        # The run's first row is the first window's closing reading, normally early in the
        # next window: its window is the one before (after a silence, an earlier one).
        width = round(self.window_minutes * US_PER_MINUTE)
        start_us = (run.start_us // width - 1) * width
        start, end = to_datetime(start_us), to_datetime(hit.detected_us)
        score = float(hit.rows.v[i])
        explanation = (
            f"Multivariate model {self.forest.version} (IsolationForest over personal "
            f"deviations of heart rate, SpO2, temperature and breathing at rest, "
            f"{number(self.window_minutes)}-min windows): anomaly score {score:.3f}, at or "
            f"above {self.threshold:.3f} in {run.n} windows in a row ({span(start, end)}). Most unusual for this participant at this "
            f"time of day: {self._deviations(i)}. No clinical limit needs to be crossed for "
            "this alert: together these suggest early deterioration. Review the participant."
        )
        return hit.alert(
            self, Severity.MEDIUM, explanation, threshold=self.threshold, window_start_us=start_us
        )

    def _deviations(self, i: int) -> str:
        """The features behind the score, largest first: each vital's resting mean against
        the participant's own baseline, in spreads."""
        order = np.argsort(-self.x[i], kind="stable")
        parts = []
        for j in order.tolist():
            if self.x[i, j] <= 0:
                break
            metric = VITAL_METRICS[j]
            signed = (self.means[i, j] - self.baseline[i, j]) / self.spread[i, j]
            parts.append(
                f"{NAMES[metric].lower()} {number(self.means[i, j])} {UNITS[metric]} vs own "
                f"{number(self.baseline[i, j])} ({signed:+.1f} spreads)"
            )
        return "; ".join(parts) or "no single vital stands out"
