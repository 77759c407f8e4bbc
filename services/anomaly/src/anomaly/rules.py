"""Clinical limits and persistence settings, in the spirit of NEWS2.

NEWS2 (Royal College of Physicians, 2017) scores each vital sign 0-3. We alert on sustained
readings in these bands (thresholds inclusive; a value between NEWS2's integer bands, such as
130.5 beats/min, falls to the milder side):
  heart-rate         >= 131 -> 3, 111-130 -> 2, <= 40 -> 3
  oxygen-saturation  <= 91 -> 3, 92-93 -> 2                     (SpO2 scale 1)
  body-temperature   >= 39.1 -> 2, 38.1-39.0 -> 1, <= 35.0 -> 3
  respiratory-rate   >= 25 -> 3, 21-24 -> 2, <= 8 -> 3
Band 3 is severity high, 2 medium, 1 low. The NEWS2 band-1 ranges of heart rate, SpO2 and
respiratory rate are left out: a wearable sees them daily in healthy participants.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

import numpy as np
import numpy.typing as npt
from trialstream.events.alerts import Severity
from trialstream.events.readings import Metric

SEVERITY_OF_BAND: Mapping[int, Severity] = MappingProxyType(
    {1: Severity.LOW, 2: Severity.MEDIUM, 3: Severity.HIGH}
)

# Metric order fixes the integer codes used in the vectorised arrays.
METRICS: tuple[Metric, ...] = tuple(Metric)
METRIC_CODE: Mapping[Metric, int] = MappingProxyType({m: i for i, m in enumerate(METRICS)})


class Direction(StrEnum):
    HIGH = "high"
    LOW = "low"


@dataclass(frozen=True)
class Limit:
    """One direction of one metric: `bands` as (threshold, band), most severe first."""

    metric: Metric
    direction: Direction
    bands: tuple[tuple[float, int], ...]
    suppressed_by_activity: bool = False  # a breach while walking is exercise, not an alert
    # With a personal baseline known: a breach within this many units of the participant's
    # own resting value at this time of day is their normal (an athlete asleep at 40).
    personal_margin: float | None = None

    def __post_init__(self) -> None:
        levels = [band for _, band in self.bands]
        if not self.bands or levels != sorted(levels, reverse=True) or levels[-1] < 1:
            raise ValueError(f"{self.rule}: bands must be >= 1 and listed most severe first")

    @property
    def rule(self) -> str:
        return f"clinical-limit/{self.metric}-{self.direction}"

    @property
    def levels(self) -> tuple[int, ...]:
        """The bands this limit can raise, mildest first."""
        return tuple(sorted(band for _, band in self.bands))

    def band_of(self, values: npt.NDArray[np.float64]) -> npt.NDArray[np.int8]:
        """Vectorised: the band of every value (0 = within limits)."""
        out = np.zeros(values.shape, dtype=np.int8)
        for threshold, band in reversed(self.bands):  # mildest first, overwritten by worse
            hit = values >= threshold if self.direction is Direction.HIGH else values <= threshold
            out[hit] = band
        return out

    def threshold_for(self, band: int) -> float:
        return next(t for t, b in self.bands if b == band)


@dataclass(frozen=True)
class Persistence:
    """When a breach counts: `min_readings` consecutive readings beyond the limit spanning
    at least `min_minutes`. A silence longer than `max_gap_minutes` breaks the run and ends
    the episode; `recovery_readings` in-range readings in a row also end the episode."""

    min_readings: int
    min_minutes: float
    max_gap_minutes: float
    recovery_readings: int

    def __post_init__(self) -> None:
        if self.min_readings < 1 or self.recovery_readings < 1 or self.max_gap_minutes <= 0:
            raise ValueError("min_readings and recovery_readings must be >= 1, max_gap > 0")


def _default_persistence() -> Mapping[Metric, Persistence]:
    # Heart rate arrives about every minute, the other vitals about every 5 minutes.
    # Two readings in a row, 5 min apart: a lone motion artefact never has a twin next to it.
    five_minutely = Persistence(2, 5, 15, 3)
    return MappingProxyType(
        {
            Metric.HEART_RATE: Persistence(5, 4, 15, 5),
            Metric.OXYGEN_SATURATION: five_minutely,
            Metric.BODY_TEMPERATURE: five_minutely,
            Metric.RESPIRATORY_RATE: five_minutely,
        }
    )


@dataclass(frozen=True)
class ScoringConfig:
    limits: tuple[Limit, ...] = (
        Limit(Metric.HEART_RATE, Direction.HIGH, ((131, 3), (111, 2)), suppressed_by_activity=True),
        Limit(Metric.HEART_RATE, Direction.LOW, ((40, 3),), personal_margin=10),
        Limit(Metric.OXYGEN_SATURATION, Direction.LOW, ((91, 3), (93, 2))),
        Limit(Metric.BODY_TEMPERATURE, Direction.HIGH, ((39.1, 2), (38.1, 1))),
        Limit(Metric.BODY_TEMPERATURE, Direction.LOW, ((35.0, 3),)),
        Limit(
            Metric.RESPIRATORY_RATE, Direction.HIGH, ((25, 3), (21, 2)), suppressed_by_activity=True
        ),
        Limit(Metric.RESPIRATORY_RATE, Direction.LOW, ((8, 3),)),
    )
    persistence: Mapping[Metric, Persistence] = field(default_factory=_default_persistence)
    activity_window_minutes: float = 10
    activity_steps: float = 300  # steps in the window that make a raised rate exercise
    # Step history kept behind the newest step reading. A vital reading that lags the step
    # stream by more than (this - activity window) sees a truncated window.
    step_history_minutes: float = 30
    # Device data quality. Flatline: this many identical readings in a row spanning this
    # long (a living heart rate varies minute to minute); only for metrics measured finely
    # enough that a constant value is implausible (SpO2 sits at 98 % for hours in health).
    device_quality: bool = True
    flatline_metrics: tuple[Metric, ...] = (Metric.HEART_RATE,)
    flatline: Persistence = Persistence(20, 20, 15, 1)
    dropout_minutes: float = 45  # silence (no metric at all) from a participant who was sending
    # Implausible jumps: a heart rate changing by >= jump_bpm between readings <= 2 min
    # apart. A lone motion artefact makes two (up, down); this many within the window
    # is a noisy or loose sensor, not the odd bump.
    jump_bpm: float = 40
    jump_max_gap_minutes: float = 2
    jumps_window_minutes: float = 60
    jumps_per_window: int = 6
    jumps: Persistence = Persistence(1, 0, 60, 30)
    # Personal resting heart-rate baseline: median of each completed hour's resting readings
    # (at most `rest_steps` steps in the activity window), compared by time of day (+/- 1 h)
    # over the previous week; a trailing mean this far above it is a personal deviation.
    personal_baselines: bool = True
    rest_steps: float = 30
    baseline_min_hours: int = 3  # hours of history at this time of day before judging
    baseline_window_minutes: float = 30
    baseline_min_readings: int = 10  # resting readings in that window
    shift_min_bpm: float = 20
    shift_spread_factor: float = 5  # and at least this many times the usual spread
    shift: Persistence = Persistence(20, 30, 15, 20)
    # Multivariate model (windows.py, model.py): an IsolationForest over personal
    # deviations of four vitals in 30-min resting windows, alerting when its score stays
    # at or above the model's threshold for `model_persistence` windows.
    multivariate: bool = True
    window_minutes: float = 30
    model_history_hours: int = 72  # hourly resting means kept for the model's baselines
    model_min_heart_rate: int = 10  # resting heart-rate readings a window needs
    model_min_readings: int = 2  # resting readings of each 5-minutely vital a window needs
    # Up to 3 unjudged windows (exercise, missing vitals) may lie between two that count.
    model_persistence: Persistence = Persistence(2, 25, 125, 3)
    # Judge only windows whose resting means are all within the clinical limits (beyond
    # them, a limit rule alerts already; a second alert for the same episode is noise).
    model_below_limits: bool = True
    model_threshold: float | None = None  # None: the threshold shipped with the model
    model_version: str = "rules-2.0"  # bump whenever a threshold or rule changes

    def __post_init__(self) -> None:
        for limit in self.limits:
            if limit.metric is Metric.STEP_COUNT or limit.metric not in self.persistence:
                raise ValueError(f"{limit.rule}: no persistence settings for {limit.metric}")
        if len({limit.rule for limit in self.limits}) != len(self.limits):
            raise ValueError("two limits share a rule name")
        if self.step_history_minutes < self.activity_window_minutes:
            raise ValueError("step_history_minutes must cover the activity window")
