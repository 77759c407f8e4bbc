"""What the routes share: the settings, the participant behind an app credential, and
a participant a staff member may see."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends
from trialstream.auth import bearer_token
from trialstream.errors import Kind, Refused
from trialstream.identity import Action, Principal
from trialstream.runtime import CurrentRuntime

from consent import repository
from consent.service import participants
from consent.settings import ConsentSettings


def consent_settings(runtime: CurrentRuntime) -> ConsentSettings:
    assert isinstance(runtime.settings, ConsentSettings)
    return runtime.settings


Settings = Annotated[ConsentSettings, Depends(consent_settings)]


async def participant(runtime: CurrentRuntime, token: str = Depends(bearer_token)) -> str:
    """The participant behind a consent app credential (decision 0079)."""
    return await participants.participant_for(runtime.pool, token)


Participant = Annotated[str, Depends(participant)]


async def seen_by(
    runtime: CurrentRuntime, by: Principal, action: Action, participant_id: str
) -> Any:
    """The participant, if `by` may do `action` at their site in their study; else 404
    (whether they exist is not confirmed)."""
    found = await repository.participant(runtime.pool, participant_id)
    if found is None or not by.allows(action, found["study_id"], found["site_id"]):
        raise Refused(
            Kind.NOT_FOUND, "unknown_participant", f"no participant {participant_id} in your sites"
        )
    return found
