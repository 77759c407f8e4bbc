"""Admin routes: participants' app credentials (site staff and admins of the participant's
site), questionnaire versions (study admins). Staff accounts live in the identity service."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from trialstream.errors import Kind, Refused
from trialstream.identity import Action, Principal
from trialstream.runtime import CurrentRuntime
from trialstream.staff import CurrentPrincipal, acting, allowed, check_allowed

from epro import accounts, service
from epro.api.common import Published, managing
from epro.domain.definitions import Questionnaire

router = APIRouter(tags=["admin"])


@router.post(
    "/v1/admin/participants/{participant_id}/app-credentials",
    status_code=201,
    dependencies=[allowed(Action.MANAGE_PARTICIPANTS)],
)
async def issue_app_credential(
    runtime: CurrentRuntime, participant_id: str, by: CurrentPrincipal
) -> dict[str, str]:
    study = await managing(runtime, by, participant_id)
    token = await accounts.issue_app_credential(runtime.pool, by, participant_id, study)
    if token is None:
        raise Refused(
            Kind.NOT_FOUND,
            "unknown_participant",
            f"ePRO has no enrolment for '{participant_id}' (yet)",
        )
    return {"participant_id": participant_id, "token": token}


@router.post(
    "/v1/admin/participants/{participant_id}/app-credentials/revoke",
    dependencies=[allowed(Action.MANAGE_PARTICIPANTS)],
)
async def revoke_app_credentials(
    runtime: CurrentRuntime, participant_id: str, by: CurrentPrincipal
) -> dict[str, Any]:
    study = await managing(runtime, by, participant_id)
    revoked = await accounts.revoke_app_credentials(runtime.pool, by, participant_id, study)
    return {"participant_id": participant_id, "revoked": revoked}


@router.post("/v1/admin/questionnaires", status_code=201)
async def publish(
    runtime: CurrentRuntime,
    catalog: Published,
    body: Questionnaire,
    by: Annotated[Principal, allowed(Action.MANAGE_STUDY)],
) -> dict[str, str]:
    check_allowed(by, Action.MANAGE_STUDY)
    return await service.publish_questionnaires(
        runtime.pool, catalog, [body], actor=by.actor, actor_detail=acting(by)
    )
