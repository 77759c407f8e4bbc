from __future__ import annotations

from typing import Annotated

from pydantic import Field
from pydantic_settings import SettingsConfigDict
from trialstream.settings import ServiceSettings

from telehealth.domain.windows import DEFAULT_PROTOCOL, ProtocolVisit


class TelehealthSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TELEHEALTH_", extra="ignore")

    port: int = Field(default=8005, ge=1, le=65535)
    protocol: Annotated[list[ProtocolVisit], Field(min_length=1)] = Field(
        default_factory=lambda: list(DEFAULT_PROTOCOL),
        description="Visit schedule as JSON: [{name, day, minus_days, plus_days, type}].",
    )
    slot_minutes: int = Field(default=30, ge=5, le=480)
    video_base_url: str = Field(
        default="https://video.trialstream.invalid/room",
        description="Room links are <video_base_url>/<unguessable token>.",
    )
    public_base_url: str = Field(
        default="http://127.0.0.1:8005", description="Base of the calendar feed URLs handed out."
    )
    urgent_horizon_hours: int = Field(
        default=72, ge=1, le=24 * 14, description="How far ahead an urgent slot is searched."
    )
    scheduler_interval_seconds: float = Field(default=30.0, gt=0)
    booking_horizon_days: int = Field(default=60, ge=1, le=366)
