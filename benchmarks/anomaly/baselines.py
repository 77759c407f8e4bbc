"""Two simple reference scorers, vectorised over a generated Dataset, emitting AlertRaised
(kind clinical) so the same evaluator scores them next to the trialstream scorer.

Both use the NEWS2 band-2 limits: heart-rate >= 111 or <= 40, SpO2 <= 93, temperature
>= 38.1 or <= 35, respiratory-rate >= 21 or <= 8 (bounds inclusive).
- threshold: an alert for any reading beyond a limit, at most one per participant and
  metric per 60 minutes (greedy from the first breach).
- persistence: an alert at the 5th consecutive reading of a participant's metric beyond
  the same limit in the same direction; one per run (a reading back in range ends it).
Neither looks at steps, time of day or the participant's own baseline, and neither raises
device-quality alerts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt
from trialstream.events.alerts import AlertKind, AlertRaised, Severity
from trialstream.events.readings import Metric

from benchmarks.anomaly.generate import METRICS, Dataset

IntArray = npt.NDArray[np.int64]
LIMITS: dict[Metric, tuple[float | None, float | None]] = {  # (high, low)
    Metric.HEART_RATE: (111, 40),
    Metric.OXYGEN_SATURATION: (None, 93),
    Metric.BODY_TEMPERATURE: (38.1, 35.0),
    Metric.RESPIRATORY_RATE: (21, 8),
}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
US_PER_MIN = 60_000_000


# Issue 21's trial definitions (tachycardia >= 120, bradycardia <= 40, SpO2 <= 91, fever
# >= 38.0, respiratory rate >= 25): what the realistic mix's baseline is held to.
DEFINITIONS: dict[Metric, tuple[float | None, float | None]] = {
    Metric.HEART_RATE: (120, 40),
    Metric.OXYGEN_SATURATION: (None, 91),
    Metric.BODY_TEMPERATURE: (38.0, None),
    Metric.RESPIRATORY_RATE: (25, None),
}
Limits = dict[Metric, tuple[float | None, float | None]]


def breach_sign(data: Dataset, limits: Limits = LIMITS) -> npt.NDArray[np.int8]:
    """+1 at or above the high limit, -1 at or below the low one, 0 within (or steps)."""
    sign = np.zeros(len(data.v), dtype=np.int8)
    for metric, (high, low) in limits.items():
        rows = data.m == METRICS.index(metric)
        if high is not None:
            sign[rows & (data.v >= high)] = 1
        if low is not None:
            sign[rows & (data.v <= low)] = -1
    return sign


def _by_series(data: Dataset, rows: IntArray) -> IntArray:
    """`rows` reordered by participant, metric, then time (stable: arrival order kept)."""
    ordered: IntArray = rows[np.lexsort((data.t_us[rows], data.m[rows], data.p[rows]))]
    return ordered


def _alert(
    data: Dataset, row: int, first: int, sign: int, name: str, limits: Limits = LIMITS
) -> AlertRaised:
    metric = METRICS[int(data.m[row])]
    high, low = limits[metric]
    threshold = high if sign > 0 else low
    direction = "high" if sign > 0 else "low"
    at = EPOCH + timedelta(microseconds=int(data.t_us[row]))
    return AlertRaised(
        participant_id=data.participants[int(data.p[row])].participant_id,
        kind=AlertKind.CLINICAL,
        metric=metric,
        severity=Severity.MEDIUM,
        rule=f"baseline-{name}/{metric}-{direction}",
        detected_at=at,
        window_start=EPOCH + timedelta(microseconds=int(data.t_us[first])),
        window_end=at,
        observed=[float(data.v[row])],
        threshold=threshold,
        model_version=f"baseline-{name}",
        explanation=f"{metric} {data.v[row]:g} beyond the NEWS2 band-2 limit {threshold:g}",
        occurred_at=at,
    )


def threshold_alerts(data: Dataset, cooldown_min: float = 60) -> list[AlertRaised]:
    sign = breach_sign(data)
    rows = _by_series(data, np.flatnonzero(sign))
    if not len(rows):
        return []
    span = int(data.t_us.max() - data.t_us.min()) + 2 * round(cooldown_min * US_PER_MIN)
    series = data.p[rows] * len(METRICS) + data.m[rows]
    keys = series * span + (data.t_us[rows] - data.t_us.min())
    cooldown = round(cooldown_min * US_PER_MIN)
    kept, i = [], 0
    while i < len(keys):  # one step per alert: jump past the cooldown
        kept.append(int(rows[i]))
        i = int(np.searchsorted(keys, keys[i] + cooldown, side="left"))
    return [_alert(data, r, r, int(sign[r]), "threshold") for r in kept]


def persistence_alerts(
    data: Dataset, readings: int = 5, limits: Limits = LIMITS
) -> list[AlertRaised]:
    vital = np.isin(data.m, [METRICS.index(m) for m in limits])
    rows = _by_series(data, np.flatnonzero(vital))
    sign = breach_sign(data, limits)[rows]
    series = data.p[rows] * len(METRICS) + data.m[rows]
    starts = np.ones(len(rows), dtype=np.bool_)
    starts[1:] = (series[1:] != series[:-1]) | (sign[1:] != sign[:-1])
    run_first = np.maximum.accumulate(np.where(starts, np.arange(len(rows)), 0))
    fire = np.flatnonzero((sign != 0) & (np.arange(len(rows)) - run_first == readings - 1))
    return [
        _alert(data, int(rows[i]), int(rows[run_first[i]]), int(sign[i]), "persistence", limits)
        for i in fire
    ]
