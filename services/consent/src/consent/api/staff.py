"""Staff routes: publish documents (study admins), issue a participant's consent
credential, see a participant's consent, countersign (investigators, step-up), record a
withdrawal, list who is outstanding for re-consent, export FHIR Consent resources."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from trialstream import consent_gate
from trialstream.identity import Action, Principal
from trialstream.runtime import CurrentRuntime
from trialstream.staff import (
    allowed,
    audited_as,
    check_allowed,
    check_step_up,
    site_scope,
    study_for,
)

from consent import repository
from consent.api.common import seen_by
from consent.domain.documents import NewDocument
from consent.service import documents, participants, reports, signing

router = APIRouter(tags=["staff"])
Study = Query(default=None, max_length=64, description="The study (if you have roles in several)")
Site = Query(default=None, max_length=64)


@router.post(
    "/v1/consent/documents",
    status_code=201,
    responses={200: {"description": "The same text was published already"}},
    summary="Publish one language of a consent document version",
)
async def publish(
    runtime: CurrentRuntime,
    body: NewDocument,
    by: Annotated[Principal, allowed(Action.MANAGE_STUDY)],
) -> JSONResponse:
    check_allowed(by, Action.MANAGE_STUDY, None, body.study_id)
    new, summary = await documents.publish(runtime.pool, runtime.studies, by, body)
    return JSONResponse(summary, status_code=201 if new else 200)


@router.get("/v1/consent/documents", summary="The study's consent documents (every version)")
async def list_documents(
    runtime: CurrentRuntime,
    by: Annotated[Principal, allowed(Action.READ_AGGREGATES)],
    study: str | None = Study,
    site: str | None = Site,
) -> dict[str, Any]:
    study_id = study_for(by, study)
    site_id = site_scope(by, Action.READ_AGGREGATES, site, study_id)
    rows = await repository.documents_of(runtime.pool, study_id, site_id)
    return {
        "study_id": study_id,
        "documents": [
            {
                **dict(r),
                "reconsent_by": None
                if r["reconsent_by"] is None
                else r["reconsent_by"].isoformat(),
                "published_at": r["published_at"].isoformat(),
            }
            for r in rows
        ],
    }


@router.post(
    "/v1/participants/{participant_id}/consent-credential",
    status_code=201,
    summary="Issue the participant's consent app credential (shown once)",
)
async def issue_credential(
    runtime: CurrentRuntime,
    participant_id: str,
    by: Annotated[Principal, allowed(Action.MANAGE_PARTICIPANTS)],
) -> dict[str, str]:
    found = await seen_by(runtime, by, Action.MANAGE_PARTICIPANTS, participant_id)
    token = await participants.issue_credential(runtime.pool, by, found)
    return {"participant_id": participant_id, "token": token}


@router.get("/v1/participants/{participant_id}/consent", summary="A participant's consent")
async def consent_of(
    runtime: CurrentRuntime,
    participant_id: str,
    by: Annotated[Principal, allowed(Action.READ_PARTICIPANT_DATA)],
) -> dict[str, Any]:
    await seen_by(runtime, by, Action.READ_PARTICIPANT_DATA, participant_id)
    return await reports.consent_of(runtime.pool, participant_id)


@router.post(
    "/v1/participants/{participant_id}/consent/withdrawals",
    summary="Record a withdrawal of some scopes, or all (e.g. told by phone)",
)
async def withdraw(
    runtime: CurrentRuntime,
    participant_id: str,
    body: signing.Withdrawal,
    by: Annotated[Principal, allowed(Action.MANAGE_PARTICIPANTS)],
) -> dict[str, Any]:
    found = await seen_by(runtime, by, Action.MANAGE_PARTICIPANTS, participant_id)
    return await signing.withdraw(
        runtime.pool, participant_id, body, audited_as(by, found["study_id"])
    )


@router.post(
    "/v1/consent/signatures/{signature_id}/countersign",
    summary="Countersign a participant's consent (investigator, recent sign-in)",
)
async def countersign(
    runtime: CurrentRuntime, signature_id: UUID, by: Annotated[Principal, allowed(Action.SIGN)]
) -> dict[str, Any]:
    check_step_up(by, runtime.settings.step_up_seconds)
    return (await signing.countersign(runtime.pool, by, signature_id)).as_dict()


@router.get("/v1/consent/outstanding", summary="Who must still (re-)consent, by site")
async def outstanding(
    runtime: CurrentRuntime,
    by: Annotated[Principal, allowed(Action.READ_PARTICIPANT_DATA)],
    study: str | None = Study,
    site: str | None = Site,
) -> dict[str, Any]:
    study_id = study_for(by, study)
    site_id = site_scope(by, Action.READ_PARTICIPANT_DATA, site, study_id)
    pauses = consent_gate.pauses(runtime.studies, study_id)
    return await reports.outstanding(runtime.pool, study_id, site_id, pauses=pauses)


@router.get("/v1/consent/fhir", summary="FHIR R4 Consent resources (a Bundle)")
async def fhir_export(
    runtime: CurrentRuntime,
    by: Annotated[Principal, allowed(Action.EXPORT)],
    study: str | None = Study,
    site: str | None = Site,
) -> dict[str, Any]:
    study_id = study_for(by, study)
    site_id = site_scope(by, Action.EXPORT, site, study_id)
    return await reports.fhir_export(runtime.pool, study_id, site_id)
