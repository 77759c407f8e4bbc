"""Admin routes: participants' app credentials (site staff and admins of the participant's
site), questionnaire versions (a study admin of any study), the schedules ePRO runs for a
study (its study admins). Staff accounts live in the identity service."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter
from trialstream.errors import Kind, Refused
from trialstream.identity import DEFAULT_STUDY, PERMISSIONS, Action, Principal
from trialstream.runtime import CurrentRuntime
from trialstream.staff import CurrentPrincipal, acting, allowed, check_allowed, study_for

from epro import accounts, service
from epro.api.common import Published, Schedules, managing
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
    """A questionnaire version is a platform-wide definition, no study's data: a study
    admin of any study publishes it (`allowed` checked that), for their study file to name.
    A published version never changes, so publishing cannot alter what another study uses."""
    study = next(
        (
            g.study_id or DEFAULT_STUDY
            for g in by.grants
            if g.role in PERMISSIONS[Action.MANAGE_STUDY]
        ),
        DEFAULT_STUDY,
    )
    return await service.publish_questionnaires(
        runtime.pool, catalog, [body], actor=by.actor, actor_detail=acting(by, study)
    )


@router.get("/v1/admin/study-schedules", dependencies=[allowed(Action.MANAGE_STUDY)])
async def study_schedules(
    runtime: CurrentRuntime, source: Schedules, by: CurrentPrincipal, study: str | None = None
) -> dict[str, Any]:
    """The schedules ePRO assigns to the study's participants, and those of its study file
    it skips, each with a code and the reason (also logged as `study schedule skipped`).
    The study's admins (for the whole study) read it."""
    study_id = study_for(by, study)
    check_allowed(by, Action.MANAGE_STUDY, None, study_id)
    if by.sites(study_id) is not None:
        raise Refused(
            Kind.FORBIDDEN, "forbidden_site", "a study's schedules are for its study-wide admins"
        )
    found = await source.of(runtime.pool, study_id)
    if found is None:
        raise Refused(
            Kind.NOT_FOUND,
            "unknown_study",
            f"ePRO has no study '{study_id}' using the epro module (not announced here yet?)",
        )
    return {
        "study_id": study_id,
        "schedules": [s.model_dump(mode="json") for s in found.schedules],
        "skipped": [asdict(s) for s in found.skipped],
    }
