from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict
from trialstream.settings import ServiceSettings


class IngestSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INGEST_", extra="ignore")

    port: int = Field(default=8001, ge=1, le=65535)
    max_readings_per_request: int = Field(default=5000, ge=1)
    max_request_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    max_clock_skew_seconds: float = Field(
        default=300.0, ge=0, description="How far measured_at may be ahead of the server clock."
    )
