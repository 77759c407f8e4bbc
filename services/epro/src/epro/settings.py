from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict
from trialstream.settings import ServiceSettings


class EproSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="EPRO_", extra="ignore")

    port: int = Field(default=8004, ge=1, le=65535)
    max_clock_skew_seconds: int = Field(
        default=300, ge=0, description="How far authored_at may be ahead of the server clock"
    )
    scheduler_enabled: bool = True
    scheduler_interval_seconds: float = Field(default=30.0, gt=0)
    study_schedules_interval_seconds: float = Field(
        default=10.0,
        gt=0,
        description="How often a new study version's schedules are given to the study's"
        " participants enrolled before it",
    )
    protocol_path: Path | None = Field(
        default=None,
        description="The default study's schedules (JSON); the shipped example protocol if"
        " unset. A declared study's come from its study file.",
    )
    questionnaires_dir: Path | None = Field(
        default=None, description="Extra questionnaire definitions (*.json) to publish at start-up"
    )
