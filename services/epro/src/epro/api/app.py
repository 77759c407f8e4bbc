"""The participant app's routes: published questionnaires, responses and corrections."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from trialstream.errors import Kind, Refused
from trialstream.runtime import CurrentRuntime

from epro import consent, service
from epro.api.common import Published, max_skew, participant, stored_response
from epro.domain.submissions import Correction, Submission

router = APIRouter(tags=["app"])
Participant = Annotated[str, Depends(participant)]


@router.get("/v1/questionnaires", summary="Published questionnaire versions")
async def list_questionnaires(catalog: Published) -> dict[str, Any]:
    return {
        "questionnaires": [
            {"id": q.id, "version": q.version, "title": q.title} for q in catalog.all()
        ]
    }


@router.get("/v1/questionnaires/{questionnaire_id}/versions/{version}")
async def get_questionnaire(
    catalog: Published, questionnaire_id: str, version: int
) -> dict[str, Any]:
    q = catalog.get(questionnaire_id, version)
    if q is None:
        raise Refused(
            Kind.NOT_FOUND,
            "unknown_questionnaire",
            f"{questionnaire_id} v{version} is not published",
        )
    return q.model_dump(mode="json")


@router.post(
    "/v1/responses", status_code=201, responses={200: {}, 401: {}, 403: {}, 409: {}, 422: {}}
)
async def submit(
    runtime: CurrentRuntime,
    catalog: Published,
    skew: Annotated[timedelta, Depends(max_skew)],
    body: Submission,
    who: Participant,
) -> JSONResponse:
    await consent.require(runtime.pool, runtime.studies, who, body.authored_at)  # 0080
    return stored_response(await service.submit(runtime.pool, catalog, who, body, max_skew=skew))


@router.post(
    "/v1/responses/{response_id}/corrections",
    status_code=201,
    responses={200: {}, 403: {}, 404: {}, 409: {}, 422: {}},
)
async def correct(
    runtime: CurrentRuntime,
    catalog: Published,
    response_id: UUID,
    body: Correction,
    who: Participant,
) -> JSONResponse:
    return stored_response(await service.correct(runtime.pool, catalog, who, response_id, body))
