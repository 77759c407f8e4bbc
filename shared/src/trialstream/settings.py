"""Typed settings shared by every service. Each service subclasses with its own env prefix."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class CommonSettings(BaseSettings):
    """Connection and mode settings. The two URLs are read without a prefix so every
    service, the CLI and docker-compose agree on one spelling."""

    model_config = SettingsConfigDict(env_prefix="TRIALSTREAM_", extra="ignore")

    mode: Literal["dev", "production"] = "dev"
    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        validation_alias=AliasChoices(
            "KAFKA_BOOTSTRAP_SERVERS", "TRIALSTREAM_KAFKA_BOOTSTRAP_SERVERS"
        ),
    )
    database_url: str = Field(
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        validation_alias=AliasChoices("DATABASE_URL", "TRIALSTREAM_DATABASE_URL"),
    )
    log_level: str = Field(
        default="INFO", validation_alias=AliasChoices("LOG_LEVEL", "TRIALSTREAM_LOG_LEVEL")
    )
    log_json: bool = True
    topic_partitions: int = Field(default=6, ge=1)
    kafka_session_timeout_ms: int = Field(
        default=10_000,
        ge=1000,
        description="Consumer group session timeout. Apache Kafka accepts >= 6000 by default; "
        "the embedded broker holds a group join for about half of it, so dev and tests use less.",
    )
    admin_token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("TRIALSTREAM_ADMIN_TOKEN", "ADMIN_TOKEN"),
        description="Bearer token for admin endpoints (enrolment, staff). Required in production.",
    )

    @model_validator(mode="after")
    def _no_default_secrets_in_production(self) -> CommonSettings:
        if self.mode == "production" and self.admin_token is None:
            raise ValueError("TRIALSTREAM_ADMIN_TOKEN must be set when TRIALSTREAM_MODE=production")
        return self


class ServiceSettings(CommonSettings):
    """What every service process also needs: where to listen and which replica it is."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    replica: int = Field(
        default=0, ge=0, validation_alias=AliasChoices("TRIALSTREAM_REPLICA", "REPLICA")
    )
    db_pool_max: int = Field(default=10, ge=1)
