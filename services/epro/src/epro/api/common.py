"""What every ePRO route shares: the service's state as typed dependencies, the
participant app credential, which participants a staff member reads, and how a stored
response is shown. Staff are the people behind verified access tokens (trialstream.staff)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from trialstream.auth import bearer_token
from trialstream.errors import Kind, Refused
from trialstream.identity import Action, Principal
from trialstream.runtime import CurrentRuntime
from trialstream.staff import CurrentPrincipal, check_allowed, forbidden

from epro import accounts, compliance, service
from epro.assignments import ScheduleSource
from epro.domain.definitions import Catalog
from epro.settings import EproSettings


def epro_settings(runtime: CurrentRuntime) -> EproSettings:
    assert isinstance(runtime.settings, EproSettings)
    return runtime.settings


def published(request: Request) -> Catalog:
    """The questionnaire versions published so far (filled at start-up, app.state.catalog)."""
    catalog: Catalog = request.app.state.catalog
    return catalog


def schedule_source(request: Request) -> ScheduleSource:
    """Which schedules each study's participants get (app.state.schedule_source)."""
    source: ScheduleSource = request.app.state.schedule_source
    return source


Settings = Annotated[EproSettings, Depends(epro_settings)]
Published = Annotated[Catalog, Depends(published)]
Schedules = Annotated[ScheduleSource, Depends(schedule_source)]


def max_skew(settings: Settings) -> timedelta:
    return timedelta(seconds=settings.max_clock_skew_seconds)


async def participant(runtime: CurrentRuntime, token: str = Depends(bearer_token)) -> str:
    """The participant behind an app credential."""
    found = await accounts.participant_for_app_token(runtime.pool, token)
    if found is None:
        raise Refused(
            Kind.UNAUTHORIZED, "invalid_credentials", "Unknown or revoked app credential."
        )
    return found


async def readable(runtime: CurrentRuntime, participant_id: str, staff: CurrentPrincipal) -> str:
    """A participant of a site (in their study) the person may read (404 otherwise: no
    existence leak); a role that never reads participant data (a sponsor) gets 403."""
    if not staff.allows_in_some_study(Action.READ_PARTICIPANT_DATA):
        raise forbidden(Action.READ_PARTICIPANT_DATA)
    where = await compliance.where_is(runtime.pool, participant_id)
    if where is None or not staff.allows(Action.READ_PARTICIPANT_DATA, *where):
        raise Refused(
            Kind.NOT_FOUND, "unknown_participant", f"no participant {participant_id} in your sites"
        )
    return participant_id


async def managing(runtime: CurrentRuntime, by: Principal, participant_id: str) -> str:
    """`by` manages participants at this participant's site in their study (returned);
    404 when ePRO has no enrolment for them (yet)."""
    where = await compliance.where_is(runtime.pool, participant_id)
    if where is None:
        raise Refused(
            Kind.NOT_FOUND,
            "unknown_participant",
            f"ePRO has no enrolment for '{participant_id}' (yet)",
        )
    study, site = where
    check_allowed(by, Action.MANAGE_PARTICIPANTS, site, study)
    return study


def stored_response(result: service.Stored) -> JSONResponse:
    body = {"created": result.created, "response": result.response.public()}
    return JSONResponse(body, status_code=201 if result.created else 200)
