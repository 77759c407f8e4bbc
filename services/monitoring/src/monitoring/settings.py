from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict
from trialstream.settings import ServiceSettings

from monitoring.rbm.settings import RbmSettings


class MonitoringSettings(ServiceSettings, RbmSettings):
    model_config = SettingsConfigDict(env_prefix="MONITORING_", extra="ignore")

    port: int = Field(default=8002, ge=1, le=65535)
