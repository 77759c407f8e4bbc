from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict
from trialstream.settings import ServiceSettings


class ConsentSettings(ServiceSettings):
    """The consent service's own settings; the investigator's step-up window is the
    platform's `TRIALSTREAM_STEP_UP_SECONDS`, as for every Part 11 signature."""

    model_config = SettingsConfigDict(env_prefix="CONSENT_", extra="ignore")

    port: int = Field(default=8009, ge=1, le=65535)
    reauth_seconds: int = Field(
        default=300,
        ge=30,
        le=1800,
        description="How long a participant's re-authentication proof may be used to sign "
        "(it is single-use).",
    )
    max_document_bytes: int = Field(
        default=512 * 1024, ge=1024, description="Largest consent document accepted (its text)."
    )
