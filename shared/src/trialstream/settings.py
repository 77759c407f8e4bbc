"""Typed settings shared by every service. Each service subclasses with its own env prefix."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from trialstream.ratelimit import RateLimit


def _common(name: str, *more: str) -> AliasChoices:
    """A platform-wide setting is always spelled TRIALSTREAM_<NAME>: the alias pins it,
    because a service's subclass replaces the env prefix (INGEST_, ...) for every field
    that has no alias of its own."""
    return AliasChoices(f"TRIALSTREAM_{name}", *more)


class CommonSettings(BaseSettings):
    """Connection and mode settings. The two URLs are read without a prefix so every
    service, the CLI and docker-compose agree on one spelling."""

    # validate_by_name: tests and the CLI build settings by field name, aliases or not.
    model_config = SettingsConfigDict(
        env_prefix="TRIALSTREAM_", extra="ignore", validate_by_name=True
    )

    mode: Literal["dev", "production"] = Field(default="dev", validation_alias=_common("MODE"))
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
    database_owner_url: str | None = Field(
        default=None,
        validation_alias=_common("DATABASE_OWNER_URL"),
        description="DSN the migrations run as (the schema's owner). Unset: DATABASE_URL. "
        "Either way the service's queries act as its own role, trialstream_<schema>.",
    )
    log_level: str = Field(
        default="INFO", validation_alias=AliasChoices("LOG_LEVEL", "TRIALSTREAM_LOG_LEVEL")
    )
    log_json: bool = Field(default=True, validation_alias=_common("LOG_JSON"))
    topic_partitions: int = Field(default=6, ge=1, validation_alias=_common("TOPIC_PARTITIONS"))
    kafka_session_timeout_ms: int = Field(
        default=10_000,
        ge=1000,
        validation_alias=_common("KAFKA_SESSION_TIMEOUT_MS"),
        description="Consumer group session timeout. Apache Kafka accepts >= 6000 by default; "
        "the embedded broker holds a group join for about half of it, so dev and tests use less.",
    )
    kafka_quiet_poll_ms: int = Field(
        default=250,
        ge=10,
        le=5000,
        validation_alias=_common("KAFKA_QUIET_POLL_MS"),
        description="How long a quiet consumer group's poll waits for records (an empty "
        "poll sleeps as long again). Every group but the readings on their way to an alert "
        "is quiet (decision 0095).",
    )
    kafka_quiet_fetch_wait_ms: int = Field(
        default=2000,
        ge=10,
        le=30_000,
        validation_alias=_common("KAFKA_QUIET_FETCH_WAIT_MS"),
        description="How long the broker may hold a quiet group's fetch that has nothing to "
        "return. Apache Kafka answers as soon as data comes; the embedded broker may take up "
        "to about a quarter of this longer (decision 0095).",
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
    keep_sent_outbox_hours: float = Field(
        default=24.0,
        gt=0,
        validation_alias=_common("KEEP_SENT_OUTBOX_HOURS"),
        description="Sent outbox rows are deleted after this long (they were published).",
    )
    keep_inbox_days: float = Field(
        default=8.0,
        gt=0,
        validation_alias=_common("KEEP_INBOX_DAYS"),
        description="Inbox dedupe rows are kept this long: more than the longest retention "
        "of a topic the service consumes (Kafka's default: 7 days), so no redelivery can "
        "outlive its row.",
    )
    audit_head_seconds: float = Field(
        default=60.0,
        gt=0,
        validation_alias=_common("AUDIT_HEAD_SECONDS"),
        description="How often the audit chain's head is sent to the audit-heads topic "
        "(when it moved), for `trialstream audit verify --published`.",
    )
    lag_refresh_seconds: float = Field(
        default=5.0,
        gt=0,
        validation_alias=_common("LAG_REFRESH_SECONDS"),
        description="How often trialstream_consumer_lag is re-read for every owned partition, "
        "besides after each batch.",
    )
    rate_limit_per_second: float = Field(
        default=50.0,
        ge=0,
        validation_alias=_common("RATE_LIMIT_PER_SECOND"),
        description="Requests per second one credential (a device, app or staff token; the "
        "admin token is exempt) may make to one process; over it, 429 with Retry-After. 0 "
        "turns it off.",
    )
    rate_limit_burst: int = Field(
        default=200,
        ge=1,
        validation_alias=_common("RATE_LIMIT_BURST"),
        description="Requests one credential may make at once before the rate applies.",
    )

    oidc_issuer: str = Field(
        default="http://127.0.0.1:8007",
        validation_alias=_common("OIDC_ISSUER"),
        description="Staff access tokens must come from this issuer (`iss`): the embedded "
        "identity service by default, or an external OIDC provider (Keycloak, Entra ID, ...).",
    )
    oidc_audience: str = Field(
        default="trialstream",
        validation_alias=_common("OIDC_AUDIENCE"),
        description="The audience (`aud`) staff access tokens must carry.",
    )
    oidc_jwks_url: str | None = Field(
        default=None,
        validation_alias=_common("OIDC_JWKS_URL"),
        description="Where the issuer's signing keys are; unset: `jwks_uri` of the issuer's "
        "/.well-known/openid-configuration.",
    )
    oidc_jwks: str | None = Field(
        default=None,
        validation_alias=_common("OIDC_JWKS"),
        description="The issuer's keys as an inline JWKS document instead of a URL "
        "(air-gapped sites, tests).",
    )
    oidc_name_claim: str = Field(
        default="name",
        validation_alias=_common("OIDC_NAME_CLAIM"),
        description="The claim holding a person's display name (Keycloak: preferred_username).",
    )
    oidc_roles_claim: str = Field(
        default="trialstream_roles",
        validation_alias=_common("OIDC_ROLES_CLAIM"),
        description="The claim holding the role grants [{role, study, site}].",
    )
    oidc_keys_refresh_seconds: float = Field(
        default=60.0,
        gt=0,
        validation_alias=_common("OIDC_KEYS_REFRESH_SECONDS"),
        description="How often the issuer's keys are fetched again (key rotation).",
    )
    step_up_seconds: float = Field(
        default=300.0,
        gt=0,
        validation_alias=_common("STEP_UP_SECONDS"),
        description="A Part 11 signature (resolving a high alert, closing a flag) needs a "
        "sign-in at most this long ago.",
    )

    def rate_limit(self) -> RateLimit | None:
        """The per-credential limit for trialstream.http.install_error_handlers (the admin
        token is exempt); None when off."""
        if self.rate_limit_per_second == 0:
            return None
        admin = () if self.admin_token is None else (self.admin_token.get_secret_value(),)
        return RateLimit(self.rate_limit_per_second, self.rate_limit_burst, admin)
