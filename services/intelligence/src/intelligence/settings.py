from __future__ import annotations

from datetime import timedelta

from pydantic import Field
from pydantic_settings import SettingsConfigDict
from trialstream.settings import ServiceSettings

from intelligence.domain.lights import Limits


class IntelligenceSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INTELLIGENCE_", extra="ignore")

    port: int = Field(default=8008, ge=1, le=65535)
    max_upload_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=1024,
        description="Largest request body (a batch upload of NDJSON bundles), refused unread",
    )
    max_bundles_per_upload: int = Field(default=5000, ge=1, le=100_000)
    forecast_level: float = Field(
        default=0.9, gt=0.5, lt=1, description="Default interval of enrollment forecasts"
    )
    forecast_draws: int = Field(default=4000, ge=200, le=100_000)
    # the early-warning lights (decision 0090)
    kri_stale_after_seconds: float = Field(
        default=900.0,
        gt=0,
        description="A KRI snapshot older than this (monitoring evaluates every minute) "
        "lights 'unknown', stale since then",
    )
    retention_stale_after_seconds: float = Field(
        default=3 * 3600.0,
        gt=0,
        description="Likewise for retention's dropout-risk summary (scored hourly)",
    )
    alert_load_amber: float = Field(default=0.5, ge=0, description="Alerts per participant-day")
    alert_load_red: float = Field(default=1.0, ge=0)
    high_risk_amber: float = Field(
        default=20.0, ge=0, le=100, description="% of a site's participants at high dropout risk"
    )
    high_risk_red: float = Field(default=35.0, ge=0, le=100)

    def limits(self) -> Limits:
        return Limits(
            kri_stale_after=timedelta(seconds=self.kri_stale_after_seconds),
            risk_stale_after=timedelta(seconds=self.retention_stale_after_seconds),
            alert_load_amber=self.alert_load_amber,
            alert_load_red=self.alert_load_red,
            high_risk_amber=self.high_risk_amber,
            high_risk_red=self.high_risk_red,
        )
