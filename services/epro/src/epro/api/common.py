"""What every ePRO route shares: the service's state as typed dependencies, the two
credentials (participant app, site staff) and how a stored response is shown."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from trialstream.auth import bearer_token
from trialstream.errors import Kind, Refused
from trialstream.runtime import CurrentRuntime

from epro import accounts, compliance, service
from epro.accounts import Staff
from epro.domain.definitions import Catalog
from epro.settings import EproSettings


def epro_settings(runtime: CurrentRuntime) -> EproSettings:
    assert isinstance(runtime.settings, EproSettings)
    return runtime.settings


def published(request: Request) -> Catalog:
    """The questionnaire versions published so far (filled at start-up, app.state.catalog)."""
    catalog: Catalog = request.app.state.catalog
    return catalog


Settings = Annotated[EproSettings, Depends(epro_settings)]
Published = Annotated[Catalog, Depends(published)]


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


async def current_staff(runtime: CurrentRuntime, token: str = Depends(bearer_token)) -> Staff:
    staff = await accounts.staff_for_token(runtime.pool, token)
    if staff is None:
        raise Refused(Kind.UNAUTHORIZED, "invalid_credentials", "Unknown staff credential.")
    return staff


CurrentStaff = Annotated[Staff, Depends(current_staff)]


async def readable(runtime: CurrentRuntime, participant_id: str, staff: CurrentStaff) -> str:
    """A participant of a site the staff member may read (404 otherwise: no existence leak)."""
    site = await compliance.site_of(runtime.pool, participant_id)
    if site is None or not staff.may_read(site):
        raise Refused(
            Kind.NOT_FOUND, "unknown_participant", f"no participant {participant_id} in your sites"
        )
    return participant_id


def stored_response(result: service.Stored) -> JSONResponse:
    body = {"created": result.created, "response": result.response.public()}
    return JSONResponse(body, status_code=201 if result.created else 200)
