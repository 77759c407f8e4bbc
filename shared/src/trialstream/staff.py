"""Staff access in every service: who is calling (a verified access token), and whether
their role in the study allows the route (issue 15, decision 0071).

- `StaffAccess` holds the issuer's keys (refreshed in the background from its discovery
  document or JWKS URL, or given inline) and the revocations it announced on the
  compacted `staff-access` topic, which every process follows from the start without a
  consumer group (trialstream.following): a logout or a revoked person reaches every
  replica within a second or two, not only the one whose group member owns the partition.
- `CurrentPrincipal`: the person behind `Authorization: Bearer <token>` or, for the
  dashboard, the session cookie (a cookie-authenticated write must be JSON, decision 0040).
- `allowed(action)`: the route's role gate, answered by the one matrix in
  `trialstream.identity.PERMISSIONS`; `check_allowed` for the record's study and site,
  `study_for` and `site_scope` for listings, `check_step_up` before a Part 11 signature.
- The platform admin token is the bootstrap credential and nothing more: only the
  identity service takes it (to create the first people and studies; audited as `admin`,
  never as a person). Every other service answers it 401 `bootstrap_only`: people act
  under their own names there (21 CFR Part 11 attribution).
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import httpx
from fastapi import Depends, Request
from pydantic import TypeAdapter

from trialstream.auth import bearer_token, tokens_match
from trialstream.errors import Kind, Refused, about_field
from trialstream.events.identity import StaffAccessRevoked, StaffSessionEnded
from trialstream.events.topics import Topic
from trialstream.following import TopicFollower
from trialstream.identity import (
    DEFAULT_STUDY,
    PERMISSIONS,
    Action,
    ClaimMapping,
    Grant,
    Principal,
    Revocations,
    Role,
    TokenVerifier,
)
from trialstream.settings import ServiceSettings

# The dashboard keeps the access token in this HttpOnly cookie (docs/decisions/0040).
SESSION_COOKIE = "trialstream_staff"

_EVENT: TypeAdapter[StaffSessionEnded | StaffAccessRevoked] = TypeAdapter(
    StaffSessionEnded | StaffAccessRevoked
)

BOOTSTRAP = Principal(
    subject="admin",
    name="platform admin token (bootstrap)",
    grants=(Grant(Role.PLATFORM_ADMIN, None),),
    session_id=None,
    issued_at=0.0,
    auth_time=0.0,
    bootstrap=True,
)


class StaffAccess:
    """The token verifier of one service process, with its keys and revocations kept
    current in the background (`refresh_keys`, `follow_revocations`)."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.verifier = TokenVerifier(
            issuer=settings.oidc_issuer,
            audience=settings.oidc_audience,
            claims=ClaimMapping(name=settings.oidc_name_claim, roles=settings.oidc_roles_claim),
            revocations=Revocations(),
        )
        if settings.oidc_jwks is not None:
            self.verifier.set_keys(json.loads(settings.oidc_jwks))
        self._revocations = TopicFollower(
            settings.kafka_bootstrap_servers,
            Topic.STAFF_ACCESS,
            _EVENT,
            self.revocations.apply,
            fetch_max_wait_ms=settings.kafka_quiet_fetch_wait_ms,
        )
        self._next_refresh, self._backoff = 0.0, 1.0
        # Whether this service takes the platform admin token (the identity service only).
        self.takes_admin_token = False

    @property
    def revocations(self) -> Revocations:
        return self.verifier.revocations

    def issued_here(self) -> None:
        """This process is the issuer: it is given its keys (`verifier.set_keys`), it
        does not fetch them from itself."""
        self._next_refresh = float("inf")

    async def refresh_keys(self) -> None:
        """Fetch the issuer's JWKS (through its discovery document unless a JWKS URL is
        configured) when due: every `oidc_keys_refresh_seconds`, and until the first
        success at growing intervals (2 s, 4 s, ... while the issuer starts). A failure
        keeps the keys we have."""
        now = time.monotonic()
        if self.settings.oidc_jwks is not None or now < self._next_refresh:
            return
        try:
            await self._fetch_keys()
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            self._backoff = min(self._backoff * 2, self.settings.oidc_keys_refresh_seconds)
            self._next_refresh = now + self._backoff
            raise ConnectionError(f"the issuer's keys could not be fetched: {exc!r}") from exc
        self._backoff = 1.0
        self._next_refresh = now + self.settings.oidc_keys_refresh_seconds

    async def _fetch_keys(self) -> None:
        async with httpx.AsyncClient(timeout=5.0) as client:
            url = self.settings.oidc_jwks_url
            if url is None:
                discovery = (
                    self.settings.oidc_issuer.rstrip("/") + "/.well-known/openid-configuration"
                )
                response = await client.get(discovery)
                response.raise_for_status()
                url = str(response.json()["jwks_uri"])
            response = await client.get(url)
            response.raise_for_status()
            self.verifier.set_keys(response.json())

    async def follow_revocations(self) -> int:
        """Apply what the staff-access topic holds beyond what we read (all of it, in
        every process: trialstream.following)."""
        return await self._revocations.poll()

    async def stop(self) -> None:
        await self._revocations.stop()

    def principal(self, token: str) -> Principal:
        admin = self.settings.admin_token
        if admin is not None and tokens_match(token, admin.get_secret_value()):
            if self.takes_admin_token:
                return BOOTSTRAP
            raise Refused(
                Kind.UNAUTHORIZED,
                "bootstrap_only",
                "The platform admin token only bootstraps the identity service (the first "
                "people and studies); sign in as a person there (POST /v1/token) and use "
                "that access token.",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return self.verifier.verify(token)


def _token(request: Request) -> str:
    authorization = request.headers.get("authorization")
    if authorization:
        return bearer_token(authorization)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        json_body = request.headers.get("content-type", "").startswith("application/json")
        if request.method not in ("GET", "HEAD") and not json_body:
            raise Refused(Kind.FORBIDDEN, "csrf", "Send JSON with the session cookie.")
        return cookie
    raise Refused(
        Kind.UNAUTHORIZED,
        "missing_credentials",
        "Send 'Authorization: Bearer <access token>' (from the identity service's /v1/token).",
        headers={"WWW-Authenticate": "Bearer"},
    )


def staff_access(request: Request) -> StaffAccess:
    access: StaffAccess = request.app.state.runtime.staff
    return access


async def current_principal(
    request: Request, access: Annotated[StaffAccess, Depends(staff_access)]
) -> Principal:
    """FastAPI dependency: the verified person behind the request, or a 401."""
    principal = access.principal(_token(request))
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def forbidden(action: Action, study_id: str = DEFAULT_STUDY) -> Refused:
    roles = sorted(str(r) for r in PERMISSIONS[action])
    return Refused(
        Kind.FORBIDDEN,
        "role_not_allowed",
        f"'{action}' in study '{study_id}' needs one of these roles: {', '.join(roles)}.",
        [{"field": "role", "code": "role_not_allowed", "message": f"needs one of {roles}"}],
    )


def check_allowed(
    principal: Principal, action: Action, site_id: str | None = None, study_id: str = DEFAULT_STUDY
) -> None:
    """Refuse unless the person's role in the study allows `action` at `site_id` (None: at
    some site): `forbidden_site` when their role allows it elsewhere, else
    `role_not_allowed`."""
    if principal.allows(action, study_id, site_id):
        return
    if site_id is not None and principal.allows(action, study_id):
        raise Refused(Kind.FORBIDDEN, "forbidden_site", f"you have no role at site '{site_id}'")
    raise forbidden(action, study_id)


def study_for(principal: Principal, requested: str | None) -> str:
    """The study a request is about: the one named (`?study=`), else the only study the
    person has roles in; a platform admin without one names none: the default study.
    Someone with roles in several studies names one (422 `study_required`)."""
    if requested is not None:
        return requested
    studies = sorted({g.study_id for g in principal.grants if g.study_id is not None})
    if len(studies) == 1:
        return studies[0]
    if not studies:
        return DEFAULT_STUDY
    raise about_field(
        Kind.INVALID,
        "study_required",
        "You have roles in several studies: name one.",
        "study",
        f"one of {studies}",
    )


def site_scope(
    principal: Principal, action: Action, requested_site: str | None, study_id: str = DEFAULT_STUDY
) -> str | None:
    """The site a listing is limited to (None: every site, for roles that cover the whole
    study). Someone with grants at several sites names the one they want; a site where
    they have no role is `forbidden_site`, an action their roles never allow
    `role_not_allowed`."""
    check_allowed(principal, action, requested_site, study_id)
    sites = principal.sites(study_id)
    if sites is None or requested_site is not None:
        return requested_site
    if len(sites) == 1:
        return next(iter(sites))
    raise about_field(
        Kind.INVALID,
        "site_required",
        "You work at several sites: name one.",
        "site",
        f"one of {sorted(sites)}",
    )


def allowed(action: Action) -> Any:
    """A route dependency, the role gate: the caller holds a role that allows `action` in
    some study, else 403 `role_not_allowed` before ids or the body are looked at. The
    route then checks the study and site of what it touches (`check_allowed`)."""

    async def check(principal: CurrentPrincipal) -> Principal:
        if not principal.allows_in_some_study(action):
            raise forbidden(action)
        return principal

    return Depends(check)


def check_step_up(principal: Principal, seconds: float) -> None:
    """Part 11 signatures (resolve a high alert, close a flag) need a recent sign-in: the
    caller signs in again (RFC 9470's `insufficient_user_authentication`)."""
    if principal.bootstrap or not principal.authenticated_within(seconds):
        raise Refused(
            Kind.UNAUTHORIZED,
            "step_up_required",
            f"Signing needs a sign-in within the last {int(seconds)} s: sign in again and retry.",
            headers={
                "WWW-Authenticate": 'Bearer error="insufficient_user_authentication", '
                f"max_age={int(seconds)}"
            },
        )


def acting(principal: Principal, study_id: str = DEFAULT_STUDY) -> dict[str, str]:
    """How an audit entry describes the person behind it (its `actor_detail`): display
    name, the role and the study they acted in. Where the caller names no study (a site's
    own resources, such as its clinicians' hours) and the person has no role in the
    default study, their roles and studies as their grants give them."""
    roles = sorted(str(r) for r in principal.roles(study_id))
    if not roles and study_id == DEFAULT_STUDY:
        roles = sorted({str(g.role) for g in principal.grants})
        studies = sorted({g.study_id or "(every study)" for g in principal.grants})
        return {"name": principal.name, "role": ",".join(roles), "study": ",".join(studies)}
    return {"name": principal.name, "role": ",".join(roles), "study": study_id}


def audited_as(principal: Principal, study_id: str = DEFAULT_STUDY) -> dict[str, Any]:
    """`actor` and `actor_detail` of an audit entry this person's request writes:
    `audit.record(conn, **audited_as(by), action=...)`."""
    return {"actor": principal.actor, "actor_detail": acting(principal, study_id)}
