"""Staff access tokens for tests: one test issuer key whose JWKS the services under test
are given (`oidc_jwks=JWKS` in their settings), and tokens it signs for any role, site,
study and sign-in age. End-to-end tests sign in at the real identity service instead."""

from __future__ import annotations

import json
import time
import uuid

from trialstream.identity import DEFAULT_STUDY, Grant, Principal, Role, SigningKey
from trialstream.settings import ServiceSettings

KEY = SigningKey.generate()
JWKS = json.dumps(KEY.jwks())
_DEFAULTS = ServiceSettings()


def staff_token(
    site: str | None = None,
    role: str | Role = Role.SITE_STAFF,
    *,
    study: str | None = DEFAULT_STUDY,
    subject: str | None = None,
    name: str | None = None,
    signed_in_seconds_ago: float = 0.0,
    session_id: str | None = None,
    grants: list[Grant] | None = None,
) -> str:
    """A token for one person with one grant (or `grants`); platform_admin has no study."""
    role = Role(role)
    subject = subject or f"staff-{uuid.uuid4().hex[:8]}"
    if grants is None:
        grant_study = None if role is Role.PLATFORM_ADMIN else study
        grants = [Grant(role, grant_study, site)]
    return KEY.issue(
        issuer=_DEFAULTS.oidc_issuer,
        audience=_DEFAULTS.oidc_audience,
        subject=subject,
        name=name or f"Test {subject}",
        grants=grants,
        session_id=session_id or str(uuid.uuid4()),
        auth_time=time.time() - signed_in_seconds_ago,
    )


def staff_auth(
    site: str | None = None, role: str | Role = Role.SITE_STAFF, **kwargs: object
) -> dict[str, str]:
    """The Authorization header of `staff_token(...)`."""
    return {"Authorization": f"Bearer {staff_token(site, role, **kwargs)}"}  # type: ignore[arg-type]


def principal(role: Role, *sites: str, signed_in_seconds_ago: float = 0.0) -> Principal:
    """A verified person with `role` at `sites` (none: every site) of the default study,
    for unit tests of the rules (no token)."""
    now = time.time()
    grants = tuple(Grant(role, DEFAULT_STUDY, s) for s in sites) or (Grant(role, DEFAULT_STUDY),)
    return Principal(f"{role}-1", f"A {role}", grants, "s1", now, now - signed_in_seconds_ago)
