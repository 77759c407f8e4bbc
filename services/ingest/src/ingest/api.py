"""HTTP routes: device uploads and the admin enrolment routes, each calling a use case."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from trialstream.auth import bearer_token, hash_token
from trialstream.errors import Kind, Refused
from trialstream.events.base import (
    DeviceId,
    ParticipantId,
    SiteId,
    StudyId,
    Timezone,
    TrialDatetime,
)
from trialstream.events.readings import Metric
from trialstream.identity import DEFAULT_STUDY, Action, Principal
from trialstream.runtime import CurrentRuntime
from trialstream.staff import CurrentPrincipal, allowed, check_allowed
from trialstream.validation import ReadingUpload, parse_valid_body

from ingest import consent, repository, service, tiering_reads
from ingest.domain import Uploader, enrolment_timezone
from ingest.settings import IngestSettings


class EnrollParticipant(BaseModel):
    participant_id: ParticipantId = Field(
        description="Pseudonymous study id; never a name, email or phone"
    )
    study_id: StudyId = Field(
        default=DEFAULT_STUDY, description="The study (declared with `trialstream study apply`)"
    )
    site_id: SiteId
    timezone: Timezone | None = Field(
        default=None, description="IANA zone; default: the site's in the study file, else UTC"
    )


class Withdrawal(BaseModel):
    reason: Annotated[
        str,
        Field(
            min_length=1,
            max_length=1000,
            description="Why (kept in ingest's database only, never published)",
        ),
    ]
    withdrawn_at: TrialDatetime | None = Field(
        default=None, description="When it took effect (default: now); not in the future"
    )


class EnrollDevice(BaseModel):
    device_id: DeviceId
    participant_id: ParticipantId


def _records(body: bytes) -> list[ReadingUpload] | list[Any]:
    """The body's records: all validated in one call when every one is valid (the usual
    case), else the raw JSON values, for `check_batch` to judge one by one. A body that
    is not `{"readings": [...]}` is refused whole."""
    valid = parse_valid_body(body)
    if valid is not None:
        return valid
    try:
        parsed = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise Refused(
            Kind.INVALID,
            "malformed_json",
            "The request body is not valid JSON.",
            [{"field": "body", "message": str(exc)}],
        ) from None
    records = parsed.get("readings") if isinstance(parsed, dict) else None
    if not isinstance(records, list):
        raise Refused(
            Kind.INVALID,
            "invalid_request",
            'The body must be a JSON object {"readings": [ ... ]}.',
            [
                {
                    "field": "readings",
                    "code": "list_type",
                    "message": "a list of readings is required",
                }
            ],
        )
    return records


router = APIRouter()


def ingest_settings(runtime: CurrentRuntime) -> IngestSettings:
    assert isinstance(runtime.settings, IngestSettings)
    return runtime.settings


Settings = Annotated[IngestSettings, Depends(ingest_settings)]


async def uploader(runtime: CurrentRuntime, token: str = Depends(bearer_token)) -> Uploader:
    device = await repository.device_for_token(runtime.pool, hash_token(token))
    if device is None:
        raise Refused(
            Kind.UNAUTHORIZED, "invalid_credentials", "Unknown or revoked device credential."
        )
    return Uploader(device.device_id, device.participant_id, device.withdrawn_at, device.study_id)


@router.post(
    "/v1/readings",
    tags=["devices"],
    summary="Upload a batch of readings; each record gets its own result",
    responses={401: {}, 413: {}, 422: {}, 503: {}},
)
async def upload(
    request: Request,
    runtime: CurrentRuntime,
    settings: Settings,
    who: Annotated[Uploader, Depends(uploader)],
) -> JSONResponse:
    # the body limit (INGEST_MAX_REQUEST_BYTES) is enforced while it is read, before
    # the credential is checked: trialstream.http.BodyLimit
    records = _records(await request.body())
    who = await consent.gate(runtime.pool, runtime.studies, who)  # decision 0080
    if len(records) > settings.max_readings_per_request:
        raise Refused(
            Kind.TOO_LARGE,
            "too_many_readings",
            f"{len(records)} readings in one request; at most {settings.max_readings_per_request}.",
        )

    skew = timedelta(seconds=settings.max_clock_skew_seconds)
    try:
        result = await service.upload_readings(
            runtime.pool,
            runtime.producer.send,
            who,
            records,
            max_clock_skew=skew,
            archive_days=request.app.state.archive_days,
        )
    except (OSError, TimeoutError, ConnectionError) as exc:
        raise Refused(
            Kind.UNAVAILABLE,
            "unavailable",
            f"Could not store the readings, retry later ({type(exc).__name__}).",
        ) from None
    return JSONResponse(result.as_dict())


async def _check_manages(runtime: CurrentRuntime, by: Principal, participant_id: str) -> None:
    """`by` manages participants at this enrolled participant's site, in their study;
    404 for a participant not enrolled."""
    found = await repository.get_participant(runtime.pool, participant_id)
    if found is None:
        raise Refused(
            Kind.NOT_FOUND, "unknown_participant", f"participant '{participant_id}' is not enrolled"
        )
    check_allowed(by, Action.MANAGE_PARTICIPANTS, found.site_id, found.study_id)


@router.post(
    "/v1/admin/participants",
    tags=["admin"],
    status_code=201,
    dependencies=[allowed(Action.MANAGE_PARTICIPANTS)],
)
async def enroll_participant(
    runtime: CurrentRuntime, body: EnrollParticipant, by: CurrentPrincipal
) -> dict[str, str]:
    """Enrol a participant in a study at one of its sites (site staff, investigators and
    admins of that site in that study)."""
    check_allowed(by, Action.MANAGE_PARTICIPANTS, body.site_id, body.study_id)
    timezone = enrolment_timezone(runtime.studies, body.study_id, body.site_id, body.timezone)
    participant = repository.Participant(
        body.participant_id, body.site_id, timezone, study_id=body.study_id
    )
    await service.enroll_participant(runtime.pool, by, participant)
    return {
        "participant_id": body.participant_id,
        "study_id": body.study_id,
        "site_id": body.site_id,
        "timezone": timezone,
    }


@router.post(
    "/v1/admin/participants/{participant_id}/withdraw",
    dependencies=[allowed(Action.MANAGE_PARTICIPANTS)],
    tags=["admin"],
    summary="Withdraw a participant: later readings are refused, the state is published",
)
async def withdraw_participant(
    runtime: CurrentRuntime, participant_id: str, body: Withdrawal, by: CurrentPrincipal
) -> dict[str, str]:
    await _check_manages(runtime, by, participant_id)
    if body.withdrawn_at is not None and body.withdrawn_at > datetime.now(UTC):
        raise Refused(
            Kind.INVALID,
            "invalid_request",
            "withdrawn_at must not be in the future.",
            [{"field": "withdrawn_at", "code": "in_future", "message": "in the future"}],
        )
    done = await service.withdraw_participant(
        runtime.pool, by, participant_id, body.reason, body.withdrawn_at
    )
    assert done.withdrawn_at is not None
    return {
        "participant_id": done.participant_id,
        "site_id": done.site_id,
        "status": "withdrawn",
        "withdrawn_at": done.withdrawn_at.isoformat(),
    }


@router.post(
    "/v1/admin/devices",
    tags=["admin"],
    status_code=201,
    dependencies=[allowed(Action.MANAGE_PARTICIPANTS)],
)
async def enroll_device(
    runtime: CurrentRuntime, body: EnrollDevice, by: CurrentPrincipal
) -> dict[str, str]:
    await _check_manages(runtime, by, body.participant_id)
    token = await service.enroll_device(runtime.pool, by, body.device_id, body.participant_id)
    return {"device_id": body.device_id, "participant_id": body.participant_id, "token": token}


@router.post(
    "/v1/admin/devices/{device_id}/revoke",
    tags=["admin"],
    dependencies=[allowed(Action.MANAGE_PARTICIPANTS)],
)
async def revoke_device(
    runtime: CurrentRuntime, device_id: str, by: CurrentPrincipal
) -> dict[str, str]:
    where = await repository.site_of_device(runtime.pool, device_id)
    if where is not None:
        check_allowed(by, Action.MANAGE_PARTICIPANTS, where[1], where[0])
    if where is None or not await service.revoke_device(runtime.pool, by, device_id, where[0]):
        raise Refused(Kind.NOT_FOUND, "unknown_device", f"no active device '{device_id}'")
    return {"device_id": device_id, "status": "revoked"}


@router.get(
    "/v1/participants/{participant_id}/readings",
    tags=["staff"],
    dependencies=[allowed(Action.READ_PARTICIPANT_DATA)],
)
async def list_readings(
    request: Request,
    runtime: CurrentRuntime,
    participant_id: str,
    by: CurrentPrincipal,
    start: Annotated[TrialDatetime, Query(alias="from")],
    end: Annotated[TrialDatetime | None, Query(alias="to")] = None,
    metric: Metric | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> dict[str, Any]:
    found = await repository.get_participant(runtime.pool, participant_id)
    if found is None or not by.allows(Action.READ_PARTICIPANT_DATA, found.study_id, found.site_id):
        raise Refused(
            Kind.NOT_FOUND, "unknown_participant", f"no participant {participant_id} in your sites"
        )
    try:  # from PostgreSQL and the Parquet tier alike (decision 0077)
        rows = await tiering_reads.participant_readings(
            runtime.pool,
            request.app.state.tier_store,
            participant_id,
            found.study_id,
            start,
            end or datetime.now(UTC),
            metric,
            limit,
        )
    except tiering_reads.DayMoved:
        raise Refused(
            Kind.UNAVAILABLE,
            "archive_day_moving",
            "Days of this range are moving to the archive's Parquet tier; retry shortly.",
        ) from None
    return {"participant_id": participant_id, "readings": rows}
