"""Clinical limits and persistence settings, in two profiles a study chooses between
(`scoring_profile` in its study file, decision 0089): the device-mix profile of issue 21
(`ScoringConfig.device_mix()`, rules-3.4), the platform's default, and the classic NEWS2
profile (`ScoringConfig.classic()`, rules-2.0; the dataclass's own field defaults).

rules-2.0 alerts on sustained readings in these NEWS2 bands (thresholds inclusive; band 3
is severity high, 2 medium, 1 low; NEWS2's band-1 ranges of heart rate, SpO2 and breathing
are left out: a wearable sees them daily in healthy participants):
  heart-rate         >= 131 -> 3, 111-130 -> 2, <= 40 -> 3
  oxygen-saturation  <= 91 -> 3, 92-93 -> 2                     (SpO2 scale 1)
  body-temperature   >= 39.1 -> 2, 38.1-39.0 -> 1, <= 35.0 -> 3
  respiratory-rate   >= 25 -> 3, 21-24 -> 2, <= 8 -> 3

rules-3.x alerts on the usual trial definitions (tachycardia at rest >= 120, SpO2 <= 91,
fever >= 38.0, breathing >= 25; NEWS2 still sets the severity), movable per study within
SAFE_BOUNDS (`for_study`), and judges persistence in time, not in reading counts
(decision 0065): at least 2 readings beyond the limit spanning the rule's minutes, no
silence longer than the sparsest device's interval between them. A 5-second strap then
shows about 48 readings in 4 minutes, a watch 5, a 15-minute spot check 2 readings 15
minutes apart; a single-sample artefact never has a twin on any of them.

rules-3.1 (device-mix profile) adds exertion inferred from breathing for participants
without steps, SpO2 read while walking not counted, dense SpO2 runs that must outlast a
brief apnea-like dip (counted per day instead), and one reading enough for temperature and
breathing on devices that measure them every 4.5 min or less often (docs/services/anomaly.md).
rules-3.2: an irregular rhythm must be fast throughout (`rhythm_min_low`), not a sparse
device's window of readings straddling a workout.
rules-3.3: movement seen in heart rate for participants without steps (a fall of 40+
between readings: a motion artefact coming back or recovery from exertion,
`motion_fall_bpm`), a resting shift held by most of the window's readings, not a
workout's share of its mean (`shift_majority`), and implausible jumps counted at rest
only (`jumps_at_rest_only`), heart rate held 2 min, not 3 (decision 0094).
rules-3.4: a heart rate at or below 40 is the participant's own normal only within 7
beats/min of their resting rate at that time of day, not 10: a fall from a sleeping 46 to
37 is a bradycardia (decision 0096).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import MappingProxyType

import numpy as np
import numpy.typing as npt
from trialstream.events.alerts import Severity
from trialstream.events.readings import Metric
from trialstream.studies import SAFE_LIMITS, ScoringProfile

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
    # The NEWS2 profile (rules-2.0): heart rate about every minute, the other vitals about
    # every 5 minutes; 2 readings in a row 5 min apart.
    # The device-mix profile (_time_persistence): heart rate comes every 5 s (strap) to every 15 min (spot check), the other vitals
    # every minute to every hour: the gap allowed inside a run is the sparsest device's
    # interval with its jitter and one lost sample. Sleep-apnea-like dips (1-3 min at
    # 88-91 %) never span SpO2's 5 min; a sustained desaturation does within 5.
    return MappingProxyType(
        {
            Metric.HEART_RATE: Persistence(5, 4, 15, 5),
            Metric.OXYGEN_SATURATION: Persistence(2, 5, 15, 3),
            Metric.BODY_TEMPERATURE: Persistence(2, 5, 15, 3),
            Metric.RESPIRATORY_RATE: Persistence(2, 5, 15, 3),
        }
    )


def _time_persistence() -> Mapping[Metric, Persistence]:
    # 4 min, not 5: two readings of a 5-minutely device (jitter +/- 10 %) count at once
    sparse = Persistence(2, 4, 90, 3)
    return MappingProxyType(
        {
            # 2 min: a watch shows 3 readings, a strap about 24; a lone spike never has a
            # twin (confirm_jumps), a workout is judged by its context, not by waiting
            Metric.HEART_RATE: Persistence(2, 2, 40, 5),
            Metric.OXYGEN_SATURATION: sparse,
            Metric.BODY_TEMPERATURE: sparse,
            Metric.RESPIRATORY_RATE: sparse,
        }
    )


# How far a study may move each limit's alerting threshold (the mildest band): beyond
# these a limit would page on normal physiology or stay silent through a clinical event.
# One table for the study file's validation and for scoring (trialstream.studies).
SAFE_BOUNDS: Mapping[str, tuple[float, float]] = MappingProxyType(
    {f"clinical-limit/{rule}": bounds for rule, bounds in SAFE_LIMITS.items()}
)


DEFINITION_LIMITS: tuple[Limit, ...] = (
    Limit(Metric.HEART_RATE, Direction.HIGH, ((131, 3), (120, 2)), suppressed_by_activity=True),
    # rules-3.4: a sleeping 46 falling to 37 is a bradycardia; 40 is still their normal
    Limit(Metric.HEART_RATE, Direction.LOW, ((40, 3),), personal_margin=7),
    Limit(Metric.OXYGEN_SATURATION, Direction.LOW, ((91, 3),), suppressed_by_activity=True),
    Limit(Metric.BODY_TEMPERATURE, Direction.HIGH, ((39.1, 2), (38.0, 1))),
    Limit(Metric.BODY_TEMPERATURE, Direction.LOW, ((35.0, 3),)),
    Limit(Metric.RESPIRATORY_RATE, Direction.HIGH, ((25, 3),), suppressed_by_activity=True),
    Limit(Metric.RESPIRATORY_RATE, Direction.LOW, ((8, 3),)),
)


# What a study that does not choose, the service and `trialstream replay` score with
# (decision 0089; 0078 kept it opt-in until a study could choose).
DEFAULT_PROFILE = ScoringProfile.DEVICE_MIX


class UnsafeLimitError(ValueError):
    """A study asked for a limit outside SAFE_BOUNDS (or for a rule that has none)."""


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
    jumps_at_rest_only: bool = False  # jumps while walking (steps measured) do not count
    # A reading this far from the one before it is not evidence for the clinical rules
    # until the next reading agrees (device-mix profile: single-sample motion spikes of
    # heart rate 160-210 and SpO2 80-88 otherwise make limit runs, baseline means and
    # irregularity). Empty: every reading is evidence at once.
    confirm_jumps: Mapping[Metric, float] = field(default_factory=lambda: MappingProxyType({}))
    # The resting-shift rule judges only readings under the heart-rate-high limit: beyond
    # it, the limit rule has the episode (a shift alert 90 min into a tachycardia is noise).
    shift_below_limit: bool = False
    # Personal resting heart-rate baseline: median of each completed hour's resting readings
    # (at most `rest_steps` steps in the activity window), compared by time of day (+/- 1 h)
    # over the previous week; a trailing mean this far above it is a personal deviation.
    personal_baselines: bool = True
    rest_steps: float = 30
    baseline_min_hours: int = 3  # hours of history at this time of day before judging
    # Early warning of infection: +15 beats/min held for 90 min. A 90-min mean of at least
    # 4 resting readings (a spot-check device sends 4-12) against the participant's own
    # day-to-day spread at this hour; a participant who sends no steps counts as resting
    # unless the readings say otherwise (their hourly medians shrug off a workout).
    baseline_window_minutes: float = 30
    baseline_min_readings: int = 10  # resting readings in that window
    shift_min_bpm: float = 20
    shift_spread_factor: float = 5  # and at least this many times the usual spread
    shift: Persistence = Persistence(20, 30, 15, 20)
    # and at least this share of the window's resting readings that high (the window's
    # median, for a share of 0.5), not a workout inside the window (None: the mean alone)
    shift_majority: float | None = None
    steps_less_rest: bool = False
    # Exertion inferred without steps (anomaly.exertion): a participant with no step data
    # whose mean breathing over the last `exertion_window_minutes` rose this much above
    # their own mean over the `exertion_baseline_minutes` ending
    # `exertion_baseline_gap_minutes` earlier is exerting; limits suppressed by activity
    # then count the reading as in range. None: off.
    exertion_breath_rise: float | None = None
    # Low SpO2 (episodes._brief_dips): a run of readings closer together on average than
    # `brief_dip_cadence_minutes` must last `brief_dip_minutes` (sleep-apnea-like dips of
    # 1-3 min are not events; desaturation held >= 10 min is). None: off.
    brief_dip_minutes: float | None = None
    brief_dip_cadence_minutes: float = 2.5
    # A reading beyond the limit counts on its own when the one before it of the metric
    # came at least this many minutes earlier (a device that measures it this rarely
    # cannot show persistence in minutes; episodes._alone). Empty: never.
    single_reading_minutes: Mapping[Metric, float] = field(
        default_factory=lambda: MappingProxyType({})
    )
    exertion_window_minutes: float = 6
    # Movement seen in heart rate (anomaly.exertion.moved): a participant with no step data
    # whose heart rate fell by `motion_fall_bpm` or more from one reading to the next (at
    # most `motion_max_gap_minutes` apart) in the last `motion_window_minutes` was moving
    # (a motion artefact coming back, or recovery from exertion); limits suppressed by
    # activity then count the reading as in range. None: off.
    motion_fall_bpm: float | None = None
    motion_window_minutes: float = 30
    motion_max_gap_minutes: float = 20
    exertion_sparse_window_minutes: float = 30  # when none came in the last few minutes
    exertion_baseline_minutes: float = 240
    exertion_baseline_gap_minutes: float = 20
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
    # Irregular rhythm (rhythm.py): the typical (1/3 quantile) jump between successive
    # heart-rate readings over the last `rhythm_readings` (within `rhythm_window_minutes`).
    irregular_rhythm: bool = False
    rhythm_readings: int = 8
    rhythm_window_minutes: float = 150
    rhythm_median_jump: float = 6  # beats/min; a regular heart at rest: about 1
    rhythm_min_mean: float = 90  # AF-like: irregular and fast
    # and fast throughout: the lower third of the readings at least this (None: off); a
    # window straddling a workout holds resting readings among its fast ones
    rhythm_min_low: float | None = None
    rhythm: Persistence = Persistence(2, 2, 40, 9)
    profile: ScoringProfile = ScoringProfile.CLASSIC
    # Names the profile and its rules; bump whenever a threshold or rule changes.
    model_version: str = "classic/rules-2.0"

    @classmethod
    def default(cls, **overrides: object) -> ScoringConfig:
        """The platform's default profile (DEFAULT_PROFILE): what the live service and
        `trialstream replay` score with unless a study or the caller chooses."""
        return cls.of_profile(DEFAULT_PROFILE, **overrides)

    @classmethod
    def of_profile(cls, profile: ScoringProfile, **overrides: object) -> ScoringConfig:
        if profile is ScoringProfile.DEVICE_MIX:
            return cls.device_mix(**overrides)
        return cls.classic(**overrides)

    @classmethod
    def classic(cls, **overrides: object) -> ScoringConfig:
        """The rules-2.0 profile: NEWS2 bands, persistence in reading counts, activity from
        steps; tuned for minute-cadence watches that send steps."""
        return cls(**overrides)  # type: ignore[arg-type]

    @classmethod
    def device_mix(cls, **overrides: object) -> ScoringConfig:
        """The rules-3.4 profile of issue 21 for fleets that mix devices, the default:
        trial definitions as limits, persistence in time, the irregular-rhythm rule, small
        baseline shifts over 90 min, and participants without steps judged at rest."""
        settings: dict[str, object] = {
            "limits": DEFINITION_LIMITS,
            "persistence": _time_persistence(),
            "baseline_window_minutes": 90,
            "baseline_min_readings": 4,
            "shift_min_bpm": 13,
            "shift_spread_factor": 3,
            "shift": Persistence(2, 90, 40, 10),
            "steps_less_rest": True,
            "irregular_rhythm": True,
            "confirm_jumps": MappingProxyType({Metric.HEART_RATE: 40.0}),
            # a workout's motion spikes come in handfuls (each makes two jumps); a loose or
            # failing sensor gives dozens an hour
            "jumps_per_window": 12,
            "rhythm_min_low": 85,
            "motion_fall_bpm": 40,
            "shift_majority": 0.5,
            "jumps_at_rest_only": True,
            "shift_below_limit": True,
            "exertion_breath_rise": 2.5,
            "brief_dip_minutes": 7,
            "single_reading_minutes": MappingProxyType(
                {Metric.BODY_TEMPERATURE: 4.5, Metric.RESPIRATORY_RATE: 4.5}
            ),
            "profile": ScoringProfile.DEVICE_MIX,
            "model_version": "device-mix/rules-3.4",
        }
        return cls(**(settings | overrides))  # type: ignore[arg-type]

    def for_study(self, limits: Mapping[str, float]) -> ScoringConfig:
        """This config with each named limit's alerting threshold (its mildest band) moved,
        e.g. {"clinical-limit/heart-rate-high": 110}; more severe bands the new threshold
        passes are dropped. Raises UnsafeLimitError outside SAFE_BOUNDS."""
        known = {lim.rule: lim for lim in self.limits}
        changed = dict(known)
        for rule, value in limits.items():
            lo, hi = SAFE_BOUNDS.get(rule, (math.inf, -math.inf))
            if rule not in known or not lo <= value <= hi:
                raise UnsafeLimitError(f"{rule}: {value} is outside the safe bounds {lo}-{hi}")
            lim = known[rule]
            high = lim.direction is Direction.HIGH
            mildest = min(b for _, b in lim.bands)
            worse = [
                (t, b) for t, b in lim.bands if b > mildest and (t > value if high else t < value)
            ]
            changed[rule] = replace(lim, bands=(*worse, (value, mildest)))
        return replace(self, limits=tuple(changed[lim.rule] for lim in self.limits))

    def __post_init__(self) -> None:
        for limit in self.limits:
            if limit.metric is Metric.STEP_COUNT or limit.metric not in self.persistence:
                raise ValueError(f"{limit.rule}: no persistence settings for {limit.metric}")
        if len({limit.rule for limit in self.limits}) != len(self.limits):
            raise ValueError("two limits share a rule name")
        if self.step_history_minutes < self.activity_window_minutes:
            raise ValueError("step_history_minutes must cover the activity window")

    @property
    def breath_history_minutes(self) -> float:
        """Breathing history kept behind the newest reading: the baseline window's reach."""
        return self.exertion_baseline_minutes + self.exertion_baseline_gap_minutes
