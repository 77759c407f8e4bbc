from __future__ import annotations

from datetime import timedelta

from pydantic import Field
from pydantic_settings import SettingsConfigDict
from trialstream.events.alerts import Severity
from trialstream.settings import ServiceSettings

from monitoring.domain import AckDeadlines
from monitoring.rbm.settings import RbmSettings


class MonitoringSettings(ServiceSettings, RbmSettings):
    model_config = SettingsConfigDict(env_prefix="MONITORING_", extra="ignore")

    port: int = Field(default=8002, ge=1, le=65535)
    # Acknowledgement deadlines per severity (minutes from the alert reaching the inbox).
    ack_deadline_high_minutes: float = Field(default=15, ge=0)
    ack_deadline_medium_minutes: float = Field(default=60, ge=0)
    ack_deadline_low_minutes: float = Field(default=240, ge=0)
    escalation_check_seconds: float = Field(
        default=30, gt=0, description="How often overdue alerts are looked for."
    )
    timeline_dedupe_days: float = Field(
        default=2,
        gt=0,
        description="How long reading ids are remembered to drop redelivered readings from "
        "the timeline rollups; a copy redelivered later than this would be counted twice.",
    )
    sse_keepalive_seconds: int = Field(default=15, ge=1, description="SSE ping interval.")

    def ack_deadlines(self) -> AckDeadlines:
        return AckDeadlines(
            {
                Severity.HIGH: timedelta(minutes=self.ack_deadline_high_minutes),
                Severity.MEDIUM: timedelta(minutes=self.ack_deadline_medium_minutes),
                Severity.LOW: timedelta(minutes=self.ack_deadline_low_minutes),
            }
        )
