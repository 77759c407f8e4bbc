"""The issuer's HTTP face: OIDC discovery and keys, the token endpoint (password and
refresh grants, JSON or form-encoded), logout, and the people directory for admins."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import (
    BaseModel,
    Field,
    SecretStr,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from trialstream.errors import Kind, about_field
from trialstream.events.base import SiteId, StudyId
from trialstream.identity import Action, Grant, Role, SigningKey
from trialstream.runtime import CurrentRuntime
from trialstream.staff import CurrentPrincipal, allowed
from trialstream.studies import StudyDefinition

from identity import service, studies
from identity.settings import IdentitySettings

router = APIRouter()

# A sign-in name is also the token's subject and the audit trail's actor: no "@" or
# spaces, so an email address or a full name cannot become one.
Subject = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_.-]{1,63}$")]
DisplayName = Annotated[
    str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")
]


class PasswordGrant(BaseModel):
    grant_type: Literal["password"]
    username: Subject
    password: SecretStr = Field(max_length=1024)


class RefreshGrant(BaseModel):
    grant_type: Literal["refresh_token"]
    refresh_token: SecretStr = Field(max_length=512)


TokenRequest: TypeAdapter[PasswordGrant | RefreshGrant] = TypeAdapter(
    Annotated[PasswordGrant | RefreshGrant, Field(discriminator="grant_type")]
)


class GrantIn(BaseModel):
    role: Role
    study: StudyId | None = None
    site: SiteId | None = None

    @model_validator(mode="after")
    def _study_named(self) -> GrantIn:
        if self.study is None and self.role is not Role.PLATFORM_ADMIN:
            raise ValueError(f"a {self.role} grant must name its study")
        if self.role is Role.PLATFORM_ADMIN and (self.study or self.site):
            raise ValueError("platform_admin covers every study: give no study or site")
        return self

    def grant(self) -> Grant:
        return Grant(self.role, self.study, self.site)


class NewPerson(BaseModel):
    subject: Subject
    name: DisplayName
    password: SecretStr = Field(min_length=8, max_length=1024)
    grants: list[GrantIn] = Field(min_length=1, max_length=100)


class Grants(BaseModel):
    grants: list[GrantIn] = Field(max_length=100)
    reason: str = Field(min_length=1, max_length=500)


class Revocation(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


def _settings(runtime: CurrentRuntime) -> IdentitySettings:
    assert isinstance(runtime.settings, IdentitySettings)
    return runtime.settings


def _key(request: Request) -> SigningKey:
    key: SigningKey = request.app.state.signing_key
    return key


@router.get("/.well-known/openid-configuration", tags=["sign-in"])
async def discovery(runtime: CurrentRuntime) -> dict[str, Any]:
    issuer = runtime.settings.oidc_issuer.rstrip("/")
    return {
        "issuer": runtime.settings.oidc_issuer,
        "jwks_uri": f"{issuer}/v1/jwks",
        "token_endpoint": f"{issuer}/v1/token",
        "end_session_endpoint": f"{issuer}/v1/logout",
        "userinfo_endpoint": f"{issuer}/v1/me",
        "grant_types_supported": ["password", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["none"],
        "id_token_signing_alg_values_supported": ["EdDSA"],
        "subject_types_supported": ["public"],
        "claims_supported": ["sub", "name", "auth_time", "sid", "trialstream_roles"],
    }


@router.get("/v1/jwks", tags=["sign-in"])
async def jwks(request: Request) -> dict[str, Any]:
    return _key(request).jwks()


@router.post("/v1/token", tags=["sign-in"])
async def token(request: Request, runtime: CurrentRuntime) -> JSONResponse:
    """Sign in with a password, or refresh: `{"grant_type": "password", "username",
    "password"}` or `{"grant_type": "refresh_token", "refresh_token"}`, as JSON or as an
    OAuth 2.0 form."""
    body = await request.body()
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        fields: object = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
    else:
        try:
            fields = json.loads(body or b"{}")
        except ValueError:
            fields = None
    try:
        grant = TokenRequest.validate_python(fields)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None
    settings, key = _settings(runtime), _key(request)
    if isinstance(grant, PasswordGrant):
        tokens = await service.sign_in(
            runtime.pool, settings, key, grant.username, grant.password.get_secret_value()
        )
    else:
        tokens = await service.refresh(
            runtime.pool, settings, key, grant.refresh_token.get_secret_value()
        )
    return JSONResponse(
        {
            "access_token": tokens.access_token,
            "token_type": "Bearer",
            "expires_in": tokens.expires_in,
            "refresh_token": tokens.refresh_token,
        },
        headers={"Cache-Control": "no-store"},
    )


@router.post("/v1/logout", tags=["sign-in"], status_code=204)
async def logout(runtime: CurrentRuntime, principal: CurrentPrincipal) -> None:
    """End this token's session everywhere (its refresh token and access tokens)."""
    await service.log_out(runtime.pool, principal)


@router.get("/v1/me", tags=["sign-in"])
async def me(principal: CurrentPrincipal) -> dict[str, Any]:
    return {
        "subject": principal.subject,
        "name": principal.name,
        "grants": [g.claim() for g in principal.grants],
        "session_id": principal.session_id,
        "auth_time": principal.auth_time,
    }


@router.get("/v1/people", tags=["people"])
async def list_people(
    runtime: CurrentRuntime,
    principal: Annotated[Any, allowed(Action.MANAGE_STUDY)],
) -> dict[str, Any]:
    return {"people": await service.people(runtime.pool, principal)}


@router.post("/v1/people", tags=["people"], status_code=201)
async def create_person(
    runtime: CurrentRuntime,
    body: NewPerson,
    principal: Annotated[Any, allowed(Action.MANAGE_STUDY)],
) -> dict[str, Any]:
    """A new staff member with a first password (give it to them out of band) and their
    roles; a study admin grants roles in their own study only."""
    shortest = _settings(runtime).min_password_length
    if len(body.password.get_secret_value()) < shortest:
        raise about_field(
            Kind.INVALID,
            "password_too_short",
            "The password is too short.",
            "password",
            f"at least {shortest} characters",
        )
    person = await service.create_person(
        runtime.pool,
        principal,
        body.subject,
        body.name,
        body.password.get_secret_value(),
        [g.grant() for g in body.grants],
    )
    return {
        "subject": person.subject,
        "name": person.name,
        "grants": [g.claim() for g in person.grants],
    }


@router.put("/v1/people/{subject}/grants", tags=["people"])
async def set_grants(
    runtime: CurrentRuntime,
    subject: Subject,
    body: Grants,
    principal: Annotated[Any, allowed(Action.MANAGE_STUDY)],
) -> dict[str, Any]:
    """Replace someone's roles; their current tokens are revoked (they refresh or sign in
    again to carry the new ones)."""
    person = await service.set_grants(
        runtime.pool, principal, subject, [g.grant() for g in body.grants], body.reason
    )
    return {"subject": person.subject, "grants": [g.claim() for g in person.grants]}


@router.post("/v1/people/{subject}/revoke", tags=["people"], status_code=204)
async def revoke(
    runtime: CurrentRuntime,
    subject: Subject,
    body: Revocation,
    principal: Annotated[Any, allowed(Action.MANAGE_STUDY)],
) -> None:
    """Revoke a person's access: sign-in refused, every token void on every service within
    seconds."""
    await service.revoke(runtime.pool, principal, subject, body.reason)


@router.get("/v1/studies", tags=["studies"])
async def list_studies(runtime: CurrentRuntime, by: CurrentPrincipal) -> dict[str, Any]:
    """The studies the caller has a role in (all, for a platform admin)."""
    return {"studies": await studies.listed(runtime.pool, by)}


@router.get("/v1/studies/{study_id}", tags=["studies"])
async def get_study(
    runtime: CurrentRuntime, study_id: StudyId, by: CurrentPrincipal
) -> dict[str, Any]:
    return await studies.get(runtime.pool, by, study_id)


@router.get("/v1/studies/{study_id}/versions", tags=["studies"])
async def study_versions(
    runtime: CurrentRuntime, study_id: StudyId, by: CurrentPrincipal
) -> dict[str, Any]:
    return {"study_id": study_id, "versions": await studies.versions(runtime.pool, by, study_id)}


@router.put("/v1/studies/{study_id}", tags=["studies"])
async def put_study(
    runtime: CurrentRuntime,
    study_id: StudyId,
    body: StudyDefinition,
    by: Annotated[Any, allowed(Action.MANAGE_STUDY)],
) -> dict[str, Any]:
    """Create or change a study (the same definition again changes nothing). A platform
    admin creates it; its study admins change it. `trialstream study apply` calls this."""
    if body.study_id != study_id:
        raise about_field(
            Kind.INVALID,
            "study_id_mismatch",
            "The body is another study.",
            "study_id",
            f"must be '{study_id}', as in the path",
        )
    done = await studies.apply(runtime.pool, by, body)
    return {
        "study_id": done.study_id,
        "version": done.version,
        "digest": done.digest,
        "changed": done.changed,
    }
