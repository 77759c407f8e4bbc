"""Admin routes (platform admin token): app credentials, staff, questionnaire versions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field
from trialstream.errors import Kind, Refused
from trialstream.events.base import SiteId
from trialstream.runtime import AdminOnly, CurrentRuntime

from epro import accounts, service
from epro.accounts import Role
from epro.api.common import Published
from epro.domain.definitions import Questionnaire

router = APIRouter(tags=["admin"], dependencies=[AdminOnly])


class NewStaff(BaseModel):
    staff_id: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]{1,63}$")
    site_id: SiteId
    role: Role = Role.SITE_STAFF


@router.post("/v1/admin/participants/{participant_id}/app-credentials", status_code=201)
async def issue_app_credential(runtime: CurrentRuntime, participant_id: str) -> dict[str, str]:
    token = await accounts.issue_app_credential(runtime.pool, participant_id)
    if token is None:
        raise Refused(
            Kind.NOT_FOUND,
            "unknown_participant",
            f"ePRO has no enrolment for '{participant_id}' (yet)",
        )
    return {"participant_id": participant_id, "token": token}


@router.post("/v1/admin/participants/{participant_id}/app-credentials/revoke")
async def revoke_app_credentials(runtime: CurrentRuntime, participant_id: str) -> dict[str, Any]:
    revoked = await accounts.revoke_app_credentials(runtime.pool, participant_id)
    return {"participant_id": participant_id, "revoked": revoked}


@router.post("/v1/admin/staff", status_code=201)
async def create_staff(runtime: CurrentRuntime, body: NewStaff) -> dict[str, str]:
    token = await accounts.create_staff(runtime.pool, body.staff_id, body.site_id, body.role)
    if token is None:
        raise Refused(Kind.CONFLICT, "conflict", f"staff '{body.staff_id}' already exists")
    return {
        "staff_id": body.staff_id,
        "site_id": body.site_id,
        "role": str(body.role),
        "token": token,
    }


@router.post("/v1/admin/questionnaires", status_code=201)
async def publish(
    runtime: CurrentRuntime, catalog: Published, body: Questionnaire
) -> dict[str, str]:
    return await service.publish_questionnaires(runtime.pool, catalog, [body], actor="admin")
