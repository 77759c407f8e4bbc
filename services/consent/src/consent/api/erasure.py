"""Erasure routes (decision 0086): the participant asks from the app (credential plus a
fresh re-authentication), or staff record it (manage participants, with a recent sign-in
as for a signature); staff see per service what is finished."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from trialstream.auth import hash_token
from trialstream.errors import Kind, Refused, about_field
from trialstream.events.erasures import LegalBasis
from trialstream.identity import Action, Principal
from trialstream.runtime import CurrentRuntime
from trialstream.staff import allowed, audited_as, check_step_up

from consent import repository
from consent.api.common import Participant, seen_by
from consent.service import erasure

router = APIRouter(tags=["erasure"])


class StaffErasure(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    legal_basis: LegalBasis = Field(description="The ground of GDPR Article 17(1)")


class AppErasure(StaffErasure):
    reauth_proof: Annotated[str, StringConstraints(min_length=8, max_length=200)]


@router.post(
    "/v1/consent/erasure",
    status_code=202,
    summary="Ask for my personal data to be erased (after re-authenticating)",
)
async def participant_request(
    runtime: CurrentRuntime, who: Participant, body: AppErasure
) -> dict[str, Any]:
    async with runtime.pool.acquire() as conn:
        if not await repository.use_proof(conn, hash_token(body.reauth_proof), who):
            raise about_field(
                Kind.UNAUTHORIZED,
                "reauth_required",
                "erasure needs a fresh re-authentication: POST /v1/consent/reauth, then ask",
                "reauth_proof",
                "unknown, used or expired",
            )
    found = await repository.participant(runtime.pool, who)
    return await erasure.request(
        runtime.pool,
        runtime.studies,
        found,
        body.legal_basis,
        "participant",
        {"actor": f"participant:{who}"},
    )


@router.post(
    "/v1/participants/{participant_id}/erasure",
    status_code=202,
    summary="Record a participant's erasure request (recent sign-in)",
)
async def staff_request(
    runtime: CurrentRuntime,
    participant_id: str,
    body: StaffErasure,
    by: Annotated[Principal, allowed(Action.MANAGE_PARTICIPANTS)],
) -> dict[str, Any]:
    found = await seen_by(runtime, by, Action.MANAGE_PARTICIPANTS, participant_id)
    check_step_up(by, runtime.settings.step_up_seconds)
    return await erasure.request(
        runtime.pool,
        runtime.studies,
        found,
        body.legal_basis,
        "staff",
        audited_as(by, found["study_id"]),
    )


@router.get(
    "/v1/participants/{participant_id}/erasure",
    summary="A participant's erasure request and, per service, whether it is done",
)
async def staff_status(
    runtime: CurrentRuntime,
    participant_id: str,
    by: Annotated[Principal, allowed(Action.READ_PARTICIPANT_DATA)],
) -> dict[str, Any]:
    await seen_by(runtime, by, Action.READ_PARTICIPANT_DATA, participant_id)
    found = await erasure.status(runtime.pool, participant_id)
    if found is None:
        raise Refused(Kind.NOT_FOUND, "no_erasure", f"no erasure request for {participant_id}")
    return found
