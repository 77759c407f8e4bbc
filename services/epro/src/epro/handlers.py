"""Thin adapters: the app's routes, admin routes, and the subscribers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from trialstream.auth import bearer_token, require_admin
from trialstream.events.base import SiteId
from trialstream.events.participants import ParticipantEnrolled
from trialstream.events.topics import Topic
from trialstream.events.visits import VisitChanged, VisitStatus
from trialstream.http import ApiError
from trialstream.runtime import Runtime

from epro import accounts, service, withdrawal
from epro.accounts import Role
from epro.definitions import Catalog, Questionnaire
from epro.schedules import Schedule
from epro.service_info import GROUPS
from epro.settings import EproSettings
from epro.submissions import Correction, Invalid, Submission

# v2 since withdrawal is acted on (decision 0014): a new group reads the compacted topic
# from the start once, so withdrawals published before the upgrade take effect too.
# Idempotent: schedules already assigned stay, site and timezone are re-stated.
PARTICIPANTS_GROUP = GROUPS["participants"].name
VISITS_GROUP = GROUPS["visits"].name


class NewStaff(BaseModel):
    staff_id: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]{1,63}$")
    site_id: SiteId
    role: Role = Role.SITE_STAFF


def invalid(exc: Invalid) -> ApiError:
    return ApiError(
        422,
        "invalid_response",
        "The response does not match the questionnaire version.",
        [e.as_dict() for e in exc.errors],
    )


def withdrawn(exc: service.Withdrawn) -> ApiError:
    """403, not 409: nothing the app can change makes the request acceptable (decision 0014)."""
    details = []
    if exc.field is not None:
        details.append(
            {
                "field": exc.field,
                "code": "after_withdrawal",
                "message": f"after the withdrawal at {exc.withdrawn_at.isoformat()}",
            }
        )
    return ApiError(403, withdrawal.REFUSED, str(exc), details)


def stored_response(result: service.Stored) -> JSONResponse:
    body = {"created": result.created, "response": public(result.response)}
    return JSONResponse(body, status_code=201 if result.created else 200)


def public(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if k != "request_digest"}
    return {
        k: (str(v) if isinstance(v, UUID) else v.isoformat() if hasattr(v, "isoformat") else v)
        for k, v in out.items()
    }


def app_router(runtime: Runtime, settings: EproSettings, catalog: Catalog) -> APIRouter:
    router = APIRouter(tags=["app"])
    skew = timedelta(seconds=settings.max_clock_skew_seconds)

    async def participant(token: str = Depends(bearer_token)) -> str:
        found = await accounts.participant_for_app_token(runtime.pool, token)
        if found is None:
            raise ApiError(401, "invalid_credentials", "Unknown or revoked app credential.")
        return found

    @router.get("/v1/questionnaires", summary="Published questionnaire versions")
    async def list_questionnaires() -> dict[str, Any]:
        return {
            "questionnaires": [
                {"id": q.id, "version": q.version, "title": q.title} for q in catalog.all()
            ]
        }

    @router.get("/v1/questionnaires/{questionnaire_id}/versions/{version}")
    async def get_questionnaire(questionnaire_id: str, version: int) -> dict[str, Any]:
        q = catalog.get(questionnaire_id, version)
        if q is None:
            raise ApiError(
                404, "unknown_questionnaire", f"{questionnaire_id} v{version} is not published"
            )
        return q.model_dump(mode="json")

    @router.post(
        "/v1/responses", status_code=201, responses={200: {}, 401: {}, 403: {}, 409: {}, 422: {}}
    )
    async def submit(body: Submission, who: str = Depends(participant)) -> JSONResponse:
        try:
            return stored_response(
                await service.submit(runtime.pool, catalog, who, body, max_skew=skew)
            )
        except Invalid as exc:
            raise invalid(exc) from None
        except service.Withdrawn as exc:
            raise withdrawn(exc) from None
        except service.Conflict as exc:
            raise ApiError(409, exc.code, str(exc)) from None

    @router.post(
        "/v1/responses/{response_id}/corrections",
        status_code=201,
        responses={200: {}, 403: {}, 404: {}, 409: {}, 422: {}},
    )
    async def correct(
        response_id: UUID, body: Correction, who: str = Depends(participant)
    ) -> JSONResponse:
        try:
            return stored_response(
                await service.correct(runtime.pool, catalog, who, response_id, body)
            )
        except Invalid as exc:
            raise invalid(exc) from None
        except service.NotFound as exc:
            raise ApiError(404, "unknown_response", str(exc)) from None
        except service.Withdrawn as exc:
            raise withdrawn(exc) from None
        except service.Conflict as exc:
            raise ApiError(409, exc.code, str(exc)) from None

    return router


def admin_router(runtime: Runtime, settings: EproSettings, catalog: Catalog) -> APIRouter:
    admin = Depends(
        require_admin(settings.admin_token.get_secret_value() if settings.admin_token else None)
    )
    router = APIRouter(tags=["admin"], dependencies=[admin])

    @router.post("/v1/admin/participants/{participant_id}/app-credentials", status_code=201)
    async def issue_app_credential(participant_id: str) -> dict[str, str]:
        token = await accounts.issue_app_credential(runtime.pool, participant_id)
        if token is None:
            raise ApiError(
                404, "unknown_participant", f"ePRO has no enrolment for '{participant_id}' (yet)"
            )
        return {"participant_id": participant_id, "token": token}

    @router.post("/v1/admin/participants/{participant_id}/app-credentials/revoke")
    async def revoke_app_credentials(participant_id: str) -> dict[str, Any]:
        revoked = await accounts.revoke_app_credentials(runtime.pool, participant_id)
        return {"participant_id": participant_id, "revoked": revoked}

    @router.post("/v1/admin/staff", status_code=201)
    async def create_staff(body: NewStaff) -> dict[str, str]:
        token = await accounts.create_staff(runtime.pool, body.staff_id, body.site_id, body.role)
        if token is None:
            raise ApiError(409, "conflict", f"staff '{body.staff_id}' already exists")
        return {
            "staff_id": body.staff_id,
            "site_id": body.site_id,
            "role": str(body.role),
            "token": token,
        }

    @router.post("/v1/admin/questionnaires", status_code=201)
    async def publish(body: Questionnaire) -> dict[str, str]:
        try:
            return await service.publish_questionnaires(
                runtime.pool, catalog, [body], actor="admin"
            )
        except service.Conflict as exc:
            raise ApiError(409, exc.code, str(exc)) from None

    return router


def subscribe(runtime: Runtime, schedules: Sequence[Schedule]) -> None:
    async def on_participants(events: Sequence[ParticipantEnrolled]) -> None:
        await service.participants_enrolled(runtime.pool, events, schedules)

    async def on_visits(events: Sequence[VisitChanged]) -> None:
        done = [e for e in events if e.status is VisitStatus.COMPLETED]
        if done:
            rows = [(e.participant_id, e.visit_id, e.starts_at or e.occurred_at) for e in done]
            await service.visits_completed(runtime.pool, rows)

    runtime.subscribe(Topic.PARTICIPANTS, ParticipantEnrolled, PARTICIPANTS_GROUP, on_participants)
    runtime.subscribe(Topic.VISITS, VisitChanged, VISITS_GROUP, on_visits)
