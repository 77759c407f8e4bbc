"""Risk-based monitoring settings: KRI quality tolerance limits and flag rule thresholds.

Mixed into MonitoringSettings, so every field reads MONITORING_<FIELD> from the environment
(e.g. MONITORING_KRI_WEAR_TIME_RED=50)."""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings
from trialstream.events.readings import Metric
from trialstream.reading_summaries import ROLLUP_SECONDS, STEEP_CHANGES

from monitoring.rbm.flags import FlagRules, JumpRule
from monitoring.rbm.kri import KRIS, KriConfig, Threshold

_HR_FLOOR = STEEP_CHANGES[Metric.HEART_RATE]
_TEMP_FLOOR = STEEP_CHANGES[Metric.BODY_TEMPERATURE]


class RbmSettings(BaseSettings):
    # KRI quality tolerance limits (amber, red). Direction is fixed per KRI (see kri.KRIS).
    kri_wear_time_amber: float = Field(default=80.0, description="% of waking slots with data")
    kri_wear_time_red: float = 60.0
    kri_epro_on_time_amber: float = Field(
        default=85.0, description="% of ePRO due answered on time"
    )
    kri_epro_on_time_red: float = 70.0
    kri_visit_window_amber: float = Field(default=90.0, description="% of visits done in window")
    kri_visit_window_red: float = 75.0
    kri_ack_median_amber: float = Field(default=30.0, description="minutes to acknowledge")
    kri_ack_median_red: float = 60.0
    kri_dq_flag_rate_amber: float = Field(default=0.2, description="flags per participant-day")
    kri_dq_flag_rate_red: float = 0.5
    # KRI windows and waking hours (participant's local time).
    kri_window_days: int = Field(default=7, ge=1, le=90, description="wear, dq, ack window")
    kri_epro_window_days: int = Field(default=28, ge=1, le=365)
    kri_visit_window_days: int = Field(default=180, ge=1, le=3650)
    kri_wake_hour: int = Field(default=7, ge=0, le=23)
    kri_sleep_hour: int = Field(default=22, ge=1, le=24)
    kri_wear_slot_minutes: int = Field(
        default=15, description="must divide 60 and be a multiple of 5 (the rollup bucket)"
    )
    kri_wear_min_waking_hours: float = Field(
        default=4.0, ge=0, description="observed waking time below which wear time is unknown"
    )
    kri_interval_seconds: float = Field(default=60.0, gt=0, description="KRI evaluation period")
    timeline_rollup_days: float = Field(
        default=35.0,
        gt=0,
        description="Days of 5-minute reading rollups kept for the participant timeline (a "
        "timeline spans at most 31 days); older ones are deleted by the KRI tick, and older "
        "readings stay in ingest's archive.",
    )
    # Discrepancy flag rules.
    flag_clock_ahead_seconds: float = Field(default=600.0, gt=0)
    flag_clock_behind_hours: float = Field(default=48.0, gt=0)
    # Jumps are found among the steep changes ingest's summaries carry (decision 0093): a
    # rule can be stricter than the summaries' floor, never looser.
    flag_hr_jump_bpm: float = Field(default=40.0, ge=_HR_FLOOR.delta)
    flag_hr_jump_within_seconds: float = Field(default=60.0, gt=0, le=_HR_FLOOR.within_seconds)
    flag_hr_jump_repeats: int = Field(default=3, ge=1)
    flag_hr_jump_window_minutes: float = 60.0
    flag_temp_jump_c: float = Field(default=2.0, ge=_TEMP_FLOOR.delta)
    flag_temp_jump_within_seconds: float = Field(default=300.0, gt=0, le=_TEMP_FLOOR.within_seconds)
    flag_temp_jump_repeats: int = Field(default=1, ge=1)
    flag_diary_questionnaire: str = "daily-diary"
    flag_diary_activity_score: str = Field(
        default="activity_level", description="ePRO score: 0 = stayed in bed / no activity"
    )
    flag_diary_activity_at_most: float = 0.0
    flag_diary_steps_at_least: float = Field(default=5000.0, gt=0)

    @model_validator(mode="after")
    def _limits_are_ordered(self) -> RbmSettings:
        if 60 % self.kri_wear_slot_minutes or self.kri_wear_slot_minutes * 60 % ROLLUP_SECONDS:
            raise ValueError(
                "kri_wear_slot_minutes must divide 60 and be a multiple of "
                f"{ROLLUP_SECONDS // 60} (the rollup bucket)"
            )
        if self.kri_wake_hour >= self.kri_sleep_hour:
            raise ValueError("kri_wake_hour must be before kri_sleep_hour")
        for name, threshold in self.kri_config().thresholds.items():
            worse = threshold.red <= threshold.amber
            if (threshold.direction == "below") != worse and threshold.red != threshold.amber:
                raise ValueError(f"{name}: red must be worse than amber ({threshold.direction})")
        return self

    def kri_config(self) -> KriConfig:
        def limits(name: str) -> Threshold:
            return Threshold(
                amber=getattr(self, f"kri_{name}_amber"),
                red=getattr(self, f"kri_{name}_red"),
                direction=KRIS[name].direction,
            )

        return KriConfig(
            thresholds={name: limits(name) for name in KRIS},
            window_days=self.kri_window_days,
            epro_window_days=self.kri_epro_window_days,
            visit_window_days=self.kri_visit_window_days,
            wake_hour=self.kri_wake_hour,
            sleep_hour=self.kri_sleep_hour,
            slot_minutes=self.kri_wear_slot_minutes,
            min_wear_hours=self.kri_wear_min_waking_hours,
            rollup_days=self.timeline_rollup_days,
        )

    def flag_rules(self) -> FlagRules:
        return FlagRules(
            clock_ahead_seconds=self.flag_clock_ahead_seconds,
            clock_behind_seconds=self.flag_clock_behind_hours * 3600,
            jumps=(
                JumpRule(
                    "heart-rate",
                    self.flag_hr_jump_bpm,
                    self.flag_hr_jump_within_seconds,
                    self.flag_hr_jump_repeats,
                    self.flag_hr_jump_window_minutes * 60,
                ),
                JumpRule(
                    "body-temperature",
                    self.flag_temp_jump_c,
                    self.flag_temp_jump_within_seconds,
                    self.flag_temp_jump_repeats,
                    self.flag_hr_jump_window_minutes * 60,
                ),
            ),
            slot_seconds=self.kri_wear_slot_minutes * 60,
            diary_questionnaire=self.flag_diary_questionnaire,
            diary_activity_score=self.flag_diary_activity_score,
            diary_activity_at_most=self.flag_diary_activity_at_most,
            diary_steps_at_least=self.flag_diary_steps_at_least,
        )
