"""One staff identity for every service (issue 15; decision 0071): signed JWT access
tokens, verified locally, carrying who the person is and their roles per study and site.

- `SigningKey` is the embedded issuer's key (Ed25519, EdDSA): it signs access tokens and
  publishes itself as a JWKS. An external OIDC provider (Keycloak, Entra ID, Auth0) takes
  its place by configuration: services only ever verify.
- `TokenVerifier` checks signature, issuer, audience, expiry and not-before, with keys
  from the issuer's JWKS (refreshed in the background by `trialstream.staff`), and maps
  the claims to a `Principal`. Only asymmetric algorithms are accepted: a token signed with "none" or with
  the public key as an HMAC secret is refused.
- `Revocations`: sessions ended (logout) and people whose tokens issued before a moment
  are void (revoked access), checked on every request after the signature.
- `Principal.allows(action, study, site)` answers from one permission matrix
  (`PERMISSIONS`), which the README prints and a test walks.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from trialstream.errors import Kind, Refused
from trialstream.events.base import DEFAULT_STUDY as DEFAULT_STUDY  # re-exported
from trialstream.events.identity import StaffAccessRevoked, StaffSessionEnded

ALGORITHMS = ["EdDSA", "ES256", "RS256", "PS256"]  # asymmetric only: never HS*, never none
ROLES_CLAIM = "trialstream_roles"


class Role(StrEnum):
    SITE_STAFF = "site_staff"  # nurses, coordinators: their site's participants
    INVESTIGATOR = "investigator"  # site staff who may also sign (resolve, countersign)
    MONITOR = "monitor"  # CRA: reads every site of the study, acts on nothing
    DATA_MANAGER = "data_manager"  # exports, queries, discrepancy flags
    SPONSOR = "sponsor"  # aggregates and de-identified views only
    STUDY_ADMIN = "study_admin"  # the study's configuration and its staff
    PLATFORM_ADMIN = "platform_admin"  # every study; studies themselves


class Action(StrEnum):
    READ_PARTICIPANT_DATA = "read_participant_data"  # alerts, timelines, responses, visits
    ACT_ON_ALERTS = "act_on_alerts"  # acknowledge, escalate, book a visit
    SIGN = "sign"  # Part 11 signature on a high alert's resolution (step-up)
    CLOSE_FLAGS = "close_flags"  # close a discrepancy flag with a note (signed: step-up)
    READ_AGGREGATES = "read_aggregates"  # KRIs, counts, compliance rates
    EXPORT = "export"  # data exports
    MANAGE_PARTICIPANTS = "manage_participants"  # enrol, withdraw, devices
    MANAGE_STUDY = "manage_study"  # study file, modules, staff of the study
    MANAGE_PLATFORM = "manage_platform"  # studies, platform admins


_ALL = frozenset(Role)
PERMISSIONS: Mapping[Action, frozenset[Role]] = {
    Action.READ_PARTICIPANT_DATA: _ALL - {Role.SPONSOR},
    Action.ACT_ON_ALERTS: frozenset({Role.SITE_STAFF, Role.INVESTIGATOR}),
    Action.SIGN: frozenset({Role.INVESTIGATOR}),
    Action.CLOSE_FLAGS: frozenset({Role.SITE_STAFF, Role.INVESTIGATOR, Role.DATA_MANAGER}),
    Action.READ_AGGREGATES: _ALL,
    Action.EXPORT: frozenset({Role.DATA_MANAGER, Role.STUDY_ADMIN, Role.PLATFORM_ADMIN}),
    Action.MANAGE_PARTICIPANTS: frozenset(
        {Role.SITE_STAFF, Role.INVESTIGATOR, Role.STUDY_ADMIN, Role.PLATFORM_ADMIN}
    ),
    Action.MANAGE_STUDY: frozenset({Role.STUDY_ADMIN, Role.PLATFORM_ADMIN}),
    Action.MANAGE_PLATFORM: frozenset({Role.PLATFORM_ADMIN}),
}


@dataclass(frozen=True)
class Grant:
    """A role in one study (None: every study, platform admins only), at one site (None:
    every site of the study)."""

    role: Role
    study_id: str | None
    site_id: str | None = None

    def covers(self, study_id: str, site_id: str | None) -> bool:
        if self.study_id is not None and self.study_id != study_id:
            return False
        return self.site_id is None or site_id is None or self.site_id == site_id

    @classmethod
    def parse(cls, claim: object) -> Grant:
        """One entry of the roles claim: {"role": ..., "study": ..., "site": ...}."""
        if not isinstance(claim, Mapping):
            raise ValueError(f"a role grant must be an object, not {claim!r}")
        role = Role(str(claim.get("role")))
        study, site = claim.get("study"), claim.get("site")
        if study is None and role is not Role.PLATFORM_ADMIN:
            raise ValueError(f"a {role} grant must name its study")
        for name, value in (("study", study), ("site", site)):
            if value is not None and not isinstance(value, str):
                raise ValueError(f"a grant's {name} must be a string")
        return cls(role, study, site)

    def claim(self) -> dict[str, str]:
        out = {"role": str(self.role)}
        if self.study_id is not None:
            out["study"] = self.study_id
        if self.site_id is not None:
            out["site"] = self.site_id
        return out


@dataclass(frozen=True)
class Principal:
    """The person behind a verified token."""

    subject: str
    name: str
    grants: tuple[Grant, ...]
    session_id: str | None
    issued_at: float
    auth_time: float  # when they last proved who they are (password, passkey, SSO)
    bootstrap: bool = False  # the platform admin token, not a person (trialstream.staff)

    def roles(self, study_id: str, site_id: str | None = None) -> frozenset[Role]:
        return frozenset(g.role for g in self.grants if g.covers(study_id, site_id))

    def allows(self, action: Action, study_id: str, site_id: str | None = None) -> bool:
        return bool(self.roles(study_id, site_id) & PERMISSIONS[action])

    def allows_in_some_study(self, action: Action) -> bool:
        return any(g.role in PERMISSIONS[action] for g in self.grants)

    def sites(self, study_id: str) -> frozenset[str] | None:
        """The sites this person sees in a study: None means every site."""
        grants = [g for g in self.grants if g.covers(study_id, None)]
        if any(g.site_id is None for g in grants):
            return None
        return frozenset(g.site_id for g in grants if g.site_id is not None)

    @property
    def is_platform_admin(self) -> bool:
        return any(g.role is Role.PLATFORM_ADMIN and g.study_id is None for g in self.grants)

    def authenticated_within(self, seconds: float, now: float | None = None) -> bool:
        """Step-up: did they prove who they are in the last `seconds`?"""
        return (now if now is not None else time.time()) - self.auth_time <= seconds

    @property
    def actor(self) -> str:
        """How the audit trail names them: the subject, never an email or a name (those go
        in the entry's `actor_detail`). The bootstrap token is `admin`."""
        return "admin" if self.bootstrap else f"staff:{self.subject}"


# How long a logged-out session is remembered: longer than any access token issued in it
# can live (the embedded issuer's live 15 min; an external provider's, hours at most), so
# every process holds the logouts of one day, not of the whole trial.
SESSION_MEMORY_SECONDS = 24 * 3600.0


@dataclass
class Revocations:
    """Ended sessions and revoked people, as the issuer announces them."""

    sessions: dict[str, float] = field(default_factory=dict)  # session -> when it ended
    not_before: dict[str, float] = field(default_factory=dict)  # subject -> issued-at floor

    def end_session(self, session_id: str, at: float | None = None) -> None:
        """Remember a logout (`at`: when it happened, default now). Logouts older than
        SESSION_MEMORY_SECONDS are forgotten: no token of theirs is still valid."""
        now = time.time()
        horizon = now - SESSION_MEMORY_SECONDS
        if (now if at is None else at) < horizon:
            return
        self.sessions[session_id] = now if at is None else at
        if len(self.sessions) % 1024 == 0:  # now and then, not on every logout
            self.sessions = {s: t for s, t in self.sessions.items() if t >= horizon}

    def apply(self, event: StaffSessionEnded | StaffAccessRevoked) -> None:
        """One record of the staff-access topic."""
        if isinstance(event, StaffSessionEnded):
            self.end_session(event.session_id, event.occurred_at.timestamp())
        else:
            self.revoke(event.subject, event.not_before.timestamp())

    def revoke(self, subject: str, at: float) -> None:
        self.not_before[subject] = max(at, self.not_before.get(subject, 0.0))

    def check(self, principal: Principal) -> None:
        if principal.session_id is not None and principal.session_id in self.sessions:
            raise Refused(Kind.UNAUTHORIZED, "session_ended", "This session was logged out.")
        floor = self.not_before.get(principal.subject)
        if floor is not None and principal.issued_at <= floor:
            raise Refused(Kind.UNAUTHORIZED, "access_revoked", "This person's access was revoked.")


class SigningKey:
    """The embedded issuer's Ed25519 key; `kid` is its RFC 7638 thumbprint."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        public_jwk = json.loads(OKPAlgorithm.to_jwk(private_key.public_key()))
        canonical = json.dumps(
            {k: public_jwk[k] for k in ("crv", "kty", "x")}, separators=(",", ":"), sort_keys=True
        )
        self.kid = jwt.utils.base64url_encode(hashlib.sha256(canonical.encode()).digest()).decode()
        self._public_jwk = {**public_jwk, "kid": self.kid, "use": "sig", "alg": "EdDSA"}

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, pem: bytes) -> SigningKey:
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("the signing key must be an Ed25519 private key (PEM, PKCS#8)")
        return cls(key)

    def pem(self) -> bytes:
        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def jwks(self) -> dict[str, Any]:
        return {"keys": [dict(self._public_jwk)]}

    def issue(
        self,
        *,
        issuer: str,
        audience: str,
        subject: str,
        name: str,
        grants: Iterable[Grant],
        ttl_seconds: int = 900,
        session_id: str | None = None,
        auth_time: float | None = None,
        now: float | None = None,
    ) -> str:
        """A signed access token (short-lived: revocation and logout reach it quickly)."""
        # Milliseconds (RFC 7519 allows a non-integer NumericDate): a revocation at 12:00:00.4
        # voids a token of 12:00:00.2 and spares the one a new sign-in gets at 12:00:00.9.
        issued = round(now if now is not None else time.time(), 3)
        claims = {
            "iss": issuer,
            "aud": audience,
            "sub": subject,
            "name": name,
            "iat": issued,
            "nbf": issued,
            "exp": issued + ttl_seconds,
            "jti": str(uuid.uuid4()),
            "auth_time": int(auth_time if auth_time is not None else issued),
            ROLES_CLAIM: [g.claim() for g in grants],
        }
        if session_id is not None:
            claims["sid"] = session_id
        return jwt.encode(claims, self._key, algorithm="EdDSA", headers={"kid": self.kid})


@dataclass(frozen=True)
class ClaimMapping:
    """Where an external provider puts what we need (e.g. Keycloak's `preferred_username`)."""

    name: str = "name"
    roles: str = ROLES_CLAIM


class TokenVerifier:
    """Verifies access tokens against one issuer's keys, locally, on every request. The
    keys are a JWKS document, replaced as the issuer publishes new ones (`set_keys`: the
    service refreshes them in the background, never on a request's path)."""

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        jwks: Mapping[str, Any] | None = None,
        claims: ClaimMapping | None = None,
        leeway_seconds: float = 30.0,
        revocations: Revocations | None = None,
    ) -> None:
        self.issuer, self.audience = issuer, audience
        self.claims = claims or ClaimMapping()
        self.leeway = leeway_seconds
        self.revocations = revocations or Revocations()
        self._keys: dict[str | None, Any] = {}
        if jwks is not None:
            self.set_keys(jwks)

    def set_keys(self, jwks: Mapping[str, Any]) -> None:
        """Use these keys from now on (an issuer's key rotation reaches us here)."""
        try:
            found = jwt.PyJWKSet.from_dict(dict(jwks)).keys
        except jwt.PyJWTError as exc:
            raise ValueError(f"not a usable JWKS: {exc}") from None
        self._keys = {k.key_id: k.key for k in found}

    def _key(self, token: str) -> Any:
        if not self._keys:
            raise Refused(
                Kind.UNAVAILABLE,
                "identity_unavailable",
                "The staff sign-in keys are not loaded yet; try again in a few seconds.",
                headers={"Retry-After": "5"},
            )
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError as exc:
            raise _invalid(f"the token cannot be read: {exc}") from None
        if kid in self._keys:
            return self._keys[kid]
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        raise _invalid("the token is signed with a key this issuer does not publish")

    def verify(self, token: str) -> Principal:
        try:
            claims = jwt.decode(
                token,
                self._key(token),
                algorithms=ALGORITHMS,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise Refused(
                Kind.UNAUTHORIZED, "token_expired", "The access token expired; sign in again."
            ) from None
        except jwt.PyJWTError as exc:
            raise _invalid(str(exc)) from None
        principal = self._principal(claims)
        self.revocations.check(principal)
        return principal

    def _principal(self, claims: Mapping[str, Any]) -> Principal:
        raw = claims.get(self.claims.roles, [])
        try:
            if not isinstance(raw, list):
                raise ValueError(f"the {self.claims.roles} claim must be a list")
            grants = tuple(Grant.parse(g) for g in raw)
        except ValueError as exc:
            raise _invalid(f"the token's roles cannot be read: {exc}") from None
        issued = float(claims["iat"])
        return Principal(
            subject=str(claims["sub"]),
            name=str(claims.get(self.claims.name) or claims["sub"]),
            grants=grants,
            session_id=claims.get("sid"),
            issued_at=issued,
            auth_time=float(claims.get("auth_time", issued)),
        )


def _invalid(detail: str) -> Refused:
    return Refused(Kind.UNAUTHORIZED, "invalid_token", f"The access token is not valid: {detail}")
