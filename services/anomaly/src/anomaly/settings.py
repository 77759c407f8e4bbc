from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict
from trialstream.settings import ServiceSettings


class AnomalySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ANOMALY_", extra="ignore")

    port: int = Field(default=8003, ge=1, le=65535)
    max_batch: int = Field(default=5000, ge=1, description="Readings per consumed batch.")
    silence_check_seconds: float = Field(
        default=60,
        gt=0,
        description="How often participants silent on the wall clock are looked for (dropout).",
    )
