"""Site staff routes: compliance, responses with their correction history, CSV and FHIR
export, corrections on a participant's behalf."""

from __future__ import annotations

import csv
import io
from dataclasses import asdict
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, PlainTextResponse
from trialstream.errors import Kind, Refused
from trialstream.events.base import StudyId
from trialstream.identity import Action
from trialstream.runtime import CurrentRuntime
from trialstream.staff import CurrentPrincipal, acting, allowed, site_scope, study_for
from trialstream.studies import Module

from epro import compliance, repository, service
from epro.api.common import Published, managing, readable, stored_response
from epro.domain import fhir
from epro.domain.responses import ResponseVersion
from epro.domain.submissions import Correction

router = APIRouter(tags=["staff"])
Readable = Annotated[str, Depends(readable)]

CSV_COLUMNS = [
    "participant_id", "response_id", "version", "current", "questionnaire_id",
    "questionnaire_version", "occurrence_id", "authored_at", "received_at", "on_time", "flags",
    "author", "reason", "item", "value",
]  # fmt: skip


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> object:
    """A text cell a spreadsheet would run as a formula ("=HYPERLINK(...)", "@SUM(...)")
    gets a leading apostrophe, shown as text (OWASP CSV injection). Numbers, including
    negative ones, stay numbers."""
    if not isinstance(value, str) or not value.startswith(_FORMULA_START):
        return value
    try:
        float(value)
    except ValueError:
        return "'" + value
    return value


def csv_rows(responses: list[ResponseVersion]) -> list[dict[str, Any]]:
    """Long format: one row per answer and per score of every version (old ones too);
    every text cell spreadsheet-safe (free text comes from participants and staff)."""
    latest = {r.response_id: r.version for r in responses}
    out = []
    for r in sorted(responses, key=lambda r: (r.authored_at, str(r.response_id), r.version)):
        fields = asdict(r)
        base = {k: fields[k] for k in CSV_COLUMNS if k in fields}
        base |= {"current": r.version == latest[r.response_id], "flags": ";".join(r.flags)}
        values = [(k, ";".join(v) if isinstance(v, list) else v) for k, v in r.answers.items()]
        values += [(f"score:{k}", s["value"]) for k, s in r.scores.items()]
        rows = [{**base, "item": item, "value": value} for item, value in values]
        out += [{k: spreadsheet_safe(v) for k, v in row.items()} for row in rows]
    return out


@router.post(
    "/v1/participants/{participant_id}/responses/{response_id}/corrections",
    dependencies=[allowed(Action.MANAGE_PARTICIPANTS)],
    status_code=201,
    responses={200: {}, 403: {}, 404: {}, 409: {}, 422: {}},
    summary="Correct a response on the participant's behalf (site staff; reason required)",
)
async def staff_correct(
    response_id: UUID,
    body: Correction,
    runtime: CurrentRuntime,
    catalog: Published,
    participant_id: Readable,
    staff: CurrentPrincipal,
) -> JSONResponse:
    study = await managing(runtime, staff, participant_id)
    result = await service.correct(
        runtime.pool,
        catalog,
        participant_id,
        response_id,
        body,
        author=staff.actor,
        author_detail=acting(staff, study),
    )
    return stored_response(result)


@router.get(
    "/v1/compliance",
    summary="On-time %, late and missed per participant and site",
    dependencies=[allowed(Action.READ_PARTICIPANT_DATA)],
)
async def compliance_report(
    runtime: CurrentRuntime,
    staff: CurrentPrincipal,
    site: str | None = None,
    participant_id: str | None = None,
    questionnaire_id: str | None = None,
    study: StudyId | None = None,
) -> dict[str, Any]:
    """One study's (`study`, else the caller's only one) compliance, of a site or every site."""
    in_study = study_for(staff, study)
    studies = runtime.studies
    if studies.known(in_study) and not studies.enables(in_study, Module.EPRO):
        raise Refused(Kind.CONFLICT, "module_not_enabled", f"Study '{in_study}' does not use ePRO.")
    scope = site_scope(staff, Action.READ_PARTICIPANT_DATA, site, in_study)
    return await compliance.report(runtime.pool, scope, participant_id, questionnaire_id, in_study)


@router.get(
    "/v1/participants/{participant_id}/responses",
    dependencies=[allowed(Action.READ_PARTICIPANT_DATA)],
)
async def responses(runtime: CurrentRuntime, participant_id: Readable) -> dict[str, Any]:
    rows = await repository.responses_of(runtime.pool, participant_id)
    grouped: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        grouped.setdefault(str(r.response_id), []).append(r.public())
    return {
        "participant_id": participant_id,
        "responses": [{"current": v[-1], "history": v} for v in grouped.values()],
    }


@router.get(
    "/v1/participants/{participant_id}/responses.csv",
    response_class=PlainTextResponse,
    dependencies=[allowed(Action.READ_PARTICIPANT_DATA)],
)
async def responses_csv(runtime: CurrentRuntime, participant_id: Readable) -> PlainTextResponse:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(csv_rows(await repository.responses_of(runtime.pool, participant_id)))
    return PlainTextResponse(buffer.getvalue(), media_type="text/csv")


@router.get("/v1/fhir/Questionnaire/{questionnaire_id}")
async def fhir_questionnaire(
    catalog: Published, questionnaire_id: str, _: CurrentPrincipal, version: int | None = None
) -> dict[str, Any]:
    q = catalog.get(questionnaire_id, version) if version else catalog.latest(questionnaire_id)
    if q is None:
        raise Refused(
            Kind.NOT_FOUND, "unknown_questionnaire", f"{questionnaire_id} is not published"
        )
    return fhir.questionnaire(q)


@router.get(
    "/v1/participants/{participant_id}/fhir/QuestionnaireResponse",
    dependencies=[allowed(Action.READ_PARTICIPANT_DATA)],
)
async def fhir_responses(
    runtime: CurrentRuntime, catalog: Published, participant_id: Readable, history: bool = False
) -> dict[str, Any]:
    """A Bundle (collection); current versions only unless `history=true`."""
    rows = await repository.responses_of(runtime.pool, participant_id)
    if any(catalog.get(r.questionnaire_id, r.questionnaire_version) is None for r in rows):
        await service.refresh(runtime.pool, catalog)  # published through another replica
    latest = {r.response_id: r.version for r in rows}
    chosen = [r for r in rows if history or r.version == latest[r.response_id]]
    resources = []
    for r in chosen:
        q = catalog.get(r.questionnaire_id, r.questionnaire_version)
        if q is not None:
            resources.append(fhir.questionnaire_response(q, r))
    return fhir.bundle(resources)
