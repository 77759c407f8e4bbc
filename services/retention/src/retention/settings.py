from __future__ import annotations

from pydantic import AnyHttpUrl, Field, SecretStr
from pydantic_settings import SettingsConfigDict
from trialstream.settings import ServiceSettings


class RetentionSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="RETENTION_", extra="ignore")

    port: int = Field(default=8006, ge=1, le=65535)
    webhook_url: AnyHttpUrl | None = Field(
        default=None,
        description="Delivery gateway for push/SMS/email. Unset: the local channel records "
        "nudges in the database (demo).",
    )
    webhook_attempts: int = Field(default=4, ge=1, description="HTTP attempts per dispatch")
    webhook_backoff_seconds: float = Field(default=0.5, gt=0)
    webhook_timeout_seconds: float = Field(default=5.0, gt=0)
    max_dispatches: int = Field(
        default=5, ge=1, description="Dispatches (each with its HTTP retries) before 'failed'"
    )
    receipt_token: SecretStr | None = Field(
        default=None,
        description="Bearer token channels use for delivery/open receipts (unset: receipts refused).",
    )
    dispatch_interval_seconds: float = Field(default=0.5, gt=0)
    sweep_interval_seconds: float = Field(default=300.0, gt=0)
    risk_interval_seconds: float = Field(default=3600.0, gt=0)
    risk_high_cutoff: float = Field(
        default=0.5,
        gt=0,
        lt=1,
        description="Dropout probability at or above which a participant counts as high risk "
        "in each site's summary on the retention-risk topic",
    )
    max_nudges_per_day: int = Field(default=3, ge=0, description="Default frequency cap")
    escalate_after_epro_misses: int = Field(default=3, ge=1)
    escalate_after_visit_misses: int = Field(default=2, ge=1)
    low_wear_waking_hours: float = Field(default=4.0, gt=0)
    silent_hours: float = Field(default=24.0, gt=0)
    silent_escalate_hours: float = Field(default=48.0, gt=0)
    readings_max_batch: int = Field(default=5000, ge=1)
