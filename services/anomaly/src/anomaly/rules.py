"""Clinical limits and persistence settings, in the spirit of NEWS2.

NEWS2 scores each vital sign 0-3. We alert on sustained readings in the bands that
score 2 or 3 (1 for temperature, where NEWS2 has no 2 on the high side below 39.1):
  heart-rate        >= 131 -> 3, 111-130 -> 2, <= 40 -> 3
  oxygen-saturation <= 91 -> 3, 92-93 -> 2             (NEWS2 SpO2 scale 1)
  body-temperature  >= 39.1 -> 2, 38.1-39.0 -> 1, <= 35.0 -> 3
  respiratory-rate  >= 25 -> 3, 21-24 -> 2, <= 8 -> 3
Band 3 is severity high, 2 medium, 1 low.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from trialstream.events.alerts import Severity
from trialstream.events.readings import Metric

SEVERITY_OF_BAND: dict[int, Severity] = {1: Severity.LOW, 2: Severity.MEDIUM, 3: Severity.HIGH}

# Metric order fixes the integer codes used in the vectorised arrays.
METRICS: tuple[Metric, ...] = tuple(Metric)
METRIC_CODE: dict[Metric, int] = {m: i for i, m in enumerate(METRICS)}


@dataclass(frozen=True)
class Limit:
    """One direction of one metric: bands as (threshold, band), most severe first."""

    metric: Metric
    direction: str  # "high" or "low"
    bands: tuple[tuple[float, int], ...]
    suppressed_by_activity: bool = False

    @property
    def rule(self) -> str:
        return f"clinical-limit/{self.metric}-{self.direction}"

    def band_of(self, values: npt.NDArray[np.float64]) -> npt.NDArray[np.int8]:
        """Vectorised: the NEWS2-style band of every value (0 = within limits)."""
        out = np.zeros(values.shape, dtype=np.int8)
        for threshold, band in reversed(self.bands):  # least severe first, overwritten by worse
            hit = values >= threshold if self.direction == "high" else values <= threshold
            out[hit] = band
        return out

    def threshold_for(self, band: int) -> float:
        return next(t for t, b in self.bands if b == band)


@dataclass(frozen=True)
class Persistence:
    min_readings: int  # consecutive breaching readings
    min_minutes: float  # and spanning at least this long
    max_gap_minutes: float  # a longer silence breaks the run
    recovery_readings: int  # in-range readings in a row that end an episode


@dataclass(frozen=True)
class ScoringConfig:
    limits: tuple[Limit, ...] = (
        Limit(Metric.HEART_RATE, "high", ((131, 3), (111, 2)), suppressed_by_activity=True),
        Limit(Metric.HEART_RATE, "low", ((40, 3),)),
        Limit(Metric.OXYGEN_SATURATION, "low", ((91, 3), (93, 2))),
        Limit(Metric.BODY_TEMPERATURE, "high", ((39.1, 2), (38.1, 1))),
        Limit(Metric.BODY_TEMPERATURE, "low", ((35.0, 3),)),
        Limit(Metric.RESPIRATORY_RATE, "high", ((25, 3), (21, 2)), suppressed_by_activity=True),
        Limit(Metric.RESPIRATORY_RATE, "low", ((8, 3),)),
    )
    # Heart rate comes about every minute, the other vitals about every 5 minutes.
    persistence: dict[Metric, Persistence] = field(
        default_factory=lambda: {
            Metric.HEART_RATE: Persistence(5, 4, 15, 5),
            Metric.OXYGEN_SATURATION: Persistence(3, 10, 20, 2),
            Metric.BODY_TEMPERATURE: Persistence(3, 10, 20, 2),
            Metric.RESPIRATORY_RATE: Persistence(3, 10, 20, 2),
        }
    )
    activity_window_minutes: float = 10
    activity_steps: float = 300  # steps in the window that make a raised heart rate exercise
    model_version: str = "rules-1.0"

    def limits_for(self, metric: Metric) -> tuple[Limit, ...]:
        return tuple(limit for limit in self.limits if limit.metric is metric)
