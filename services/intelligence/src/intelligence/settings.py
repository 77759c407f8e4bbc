from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict
from trialstream.settings import ServiceSettings


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
