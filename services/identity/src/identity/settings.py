from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict
from trialstream.settings import ServiceSettings


class IdentitySettings(ServiceSettings):
    """The issuer's own settings; its issuer URL and audience are the platform's
    `TRIALSTREAM_OIDC_ISSUER` and `TRIALSTREAM_OIDC_AUDIENCE`, which every service checks."""

    model_config = SettingsConfigDict(env_prefix="IDENTITY_", extra="ignore")

    port: int = Field(default=8007, ge=1, le=65535)
    access_token_seconds: int = Field(
        default=900, ge=60, le=3600, description="Lifetime of an access token."
    )
    session_hours: float = Field(
        default=12.0, gt=0, le=24 * 30, description="How long a sign-in may be refreshed."
    )
    max_failed_sign_ins: int = Field(
        default=5, ge=1, description="Failed passwords in a row before the account locks."
    )
    lockout_minutes: float = Field(default=15.0, gt=0)
    min_password_length: int = Field(default=12, ge=8)
    signing_key_pem: SecretStr | None = Field(
        default=None,
        description="The Ed25519 signing key (PKCS#8 PEM), e.g. from a Kubernetes secret; "
        "unset: a key generated on first start and kept in the identity schema.",
    )
