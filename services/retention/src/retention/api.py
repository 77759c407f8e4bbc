"""HTTP routes: preferences (site staff and admins of the participant's site), receipts
(channel gateways), staff views (nudges, tasks, outreach: roles that read participant data,
at the site)."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field, model_validator
from trialstream.auth import bearer_token, tokens_match
from trialstream.errors import Kind, Refused
from trialstream.events.base import (
    LanguageTag,
    ParticipantId,
    SiteId,
    StudyId,
    Timezone,
    TrialDatetime,
)
from trialstream.identity import DEFAULT_STUDY, Action, Principal
from trialstream.runtime import CurrentRuntime
from trialstream.staff import allowed, audited_as, check_allowed, study_for

from retention import changes, receipts, repository
from retention.domain import ChannelKind
from retention.settings import RetentionSettings
from retention.study_rules import Chosen


class PreferencesIn(BaseModel):
    """Unset (null) fields are not chosen: the study's rules apply (for the default study
    the service's: "en", 21:00-08:00, RETENTION_MAX_NUDGES_PER_DAY). Chosen quiet hours win
    over the study's; a chosen cap applies only if smaller than the study's."""

    language: LanguageTag | None = Field(
        default=None, description="default: a language of the study (for the default study en)"
    )
    timezone: Timezone | None = Field(default=None, description="IANA name; default: enrolment's")
    channel: ChannelKind = ChannelKind.PUSH
    opted_out: list[ChannelKind] = Field(default_factory=list)
    quiet_start: time | None = Field(default=None, description="with quiet_end, or neither")
    quiet_end: time | None = None
    max_per_day: Annotated[int | None, Field(ge=0, le=50)] = None
    address: Annotated[str | None, Field(max_length=320)] = Field(
        default=None, description="Channel address for the gateway; stored here only, never echoed"
    )

    @model_validator(mode="after")
    def _quiet_hours_whole(self) -> PreferencesIn:
        if (self.quiet_start is None) != (self.quiet_end is None):
            raise ValueError("quiet_start and quiet_end are set together, or neither")
        return self


READ, MANAGE = Action.READ_PARTICIPANT_DATA, Action.MANAGE_PARTICIPANTS


class Receipt(BaseModel):
    status: Literal["delivered", "opened"]
    at: TrialDatetime | None = None


router = APIRouter()


def retention_settings(runtime: CurrentRuntime) -> RetentionSettings:
    assert isinstance(runtime.settings, RetentionSettings)
    return runtime.settings


Settings = Annotated[RetentionSettings, Depends(retention_settings)]


def channel_credential(settings: Settings, token: str = Depends(bearer_token)) -> None:
    """A channel gateway reports receipts with the receipt token (RETENTION_RECEIPT_TOKEN;
    the platform admin token only bootstraps the identity service)."""
    expected = settings.receipt_token
    if expected is None or not tokens_match(token, expected.get_secret_value()):
        raise Refused(Kind.UNAUTHORIZED, "invalid_credentials", "Not the receipt token.")


async def _site(
    runtime: CurrentRuntime, by: Principal, action: Action, kind: str, key: str | UUID
) -> str:
    """The record's participant is at a site (of their study) where `by` may do `action`;
    else 404, so another site's or study's records are not confirmed to exist. A
    participant whose enrolment has not reached retention yet has no site here: only
    someone who covers every site of the default study may act for them (preferences may
    well arrive before the enrolment). Returns the participant's study."""
    where = await repository.where_is(runtime.pool, kind, key)
    if where is None:
        every_site = by.sites(DEFAULT_STUDY) is None
        if not (every_site and by.allows(action, DEFAULT_STUDY)):
            raise Refused(Kind.NOT_FOUND, f"unknown_{kind}", f"no {kind} {key} at your sites")
        return DEFAULT_STUDY
    if not by.allows(action, *where):
        raise Refused(Kind.NOT_FOUND, f"unknown_{kind}", f"no {kind} {key} at your sites")
    return where[0]


@router.put("/v1/admin/participants/{participant_id}/preferences", tags=["admin"])
async def put_preferences(
    runtime: CurrentRuntime,
    participant_id: ParticipantId,
    body: PreferencesIn,
    by: Annotated[Principal, allowed(MANAGE)],
) -> dict[str, Any]:
    study = await _site(runtime, by, MANAGE, "participant", participant_id)
    chosen = Chosen(
        timezone=body.timezone,
        channel=body.channel,
        opted_out=frozenset(body.opted_out),
        language=body.language,
        quiet_start=body.quiet_start,
        quiet_end=body.quiet_end,
        max_per_day=body.max_per_day,
    )
    await changes.set_preferences(
        runtime.pool, participant_id, chosen, address=body.address, by=audited_as(by, study)
    )
    shown = body.model_dump(mode="json", exclude={"address"})
    return {"participant_id": participant_id, **shown, "address_set": body.address is not None}


@router.post(
    "/v1/nudges/{nudge_id}/receipts",
    tags=["channels"],
    dependencies=[Depends(channel_credential)],
)
async def post_receipt(runtime: CurrentRuntime, nudge_id: UUID, body: Receipt) -> dict[str, Any]:
    await receipts.record_receipt(runtime.pool, nudge_id, body.status, body.at or datetime.now(UTC))
    nudge = await repository.get_nudge(runtime.pool, nudge_id)
    assert nudge is not None
    return nudge


@router.get("/v1/participants/{participant_id}/nudges", tags=["staff"])
async def participant_nudges(
    runtime: CurrentRuntime,
    participant_id: ParticipantId,
    by: Annotated[Principal, allowed(READ)],
    status: Literal["suppressed", "escalated", "queued", "sent", "failed", "cancelled"]
    | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    await _site(runtime, by, READ, "participant", participant_id)
    nudges = await repository.nudges_for(runtime.pool, participant_id, status, limit)
    sent = sum(1 for n in nudges if n["status"] == "sent")
    withdrawn_at = await repository.withdrawn_at(runtime.pool, participant_id)
    return {
        "participant_id": participant_id,
        "withdrawn_at": withdrawn_at,
        "sent": sent,
        "nudges": nudges,
    }


@router.get("/v1/nudges/{nudge_id}", tags=["staff"])
async def get_nudge(
    runtime: CurrentRuntime, nudge_id: UUID, by: Annotated[Principal, allowed(READ)]
) -> dict[str, Any]:
    await _site(runtime, by, READ, "nudge", nudge_id)
    nudge = await repository.get_nudge(runtime.pool, nudge_id)
    if nudge is None:
        raise Refused(Kind.NOT_FOUND, "unknown_nudge", f"no nudge {nudge_id}")
    return nudge


@router.get("/v1/sites/{site_id}/outreach", tags=["staff"])
async def outreach(
    runtime: CurrentRuntime,
    site_id: SiteId,
    by: Annotated[Principal, allowed(READ)],
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    study: StudyId | None = None,
) -> dict[str, Any]:
    in_study = study_for(by, study)
    check_allowed(by, READ, site_id, in_study)
    ranked = await repository.outreach(runtime.pool, site_id, limit, in_study)
    return {"site_id": site_id, "participants": ranked}


@router.get("/v1/sites/{site_id}/tasks", tags=["staff"])
async def site_tasks(
    runtime: CurrentRuntime,
    site_id: SiteId,
    by: Annotated[Principal, allowed(READ)],
    status: Literal["open", "done"] | None = "open",
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    study: StudyId | None = None,
) -> dict[str, Any]:
    in_study = study_for(by, study)
    check_allowed(by, READ, site_id, in_study)
    return {
        "site_id": site_id,
        "study": in_study,
        "tasks": await repository.tasks_for_site(runtime.pool, site_id, status, limit, in_study),
    }


@router.post("/v1/tasks/{task_id}/complete", tags=["staff"])
async def complete_task(
    runtime: CurrentRuntime, task_id: UUID, by: Annotated[Principal, allowed(MANAGE)]
) -> dict[str, str]:
    """A coordinator did what the task asked (site staff, investigators, admins)."""
    study = await _site(runtime, by, MANAGE, "task", task_id)
    if not await changes.complete_task(runtime.pool, task_id, by=audited_as(by, study)):
        raise Refused(Kind.NOT_FOUND, "unknown_open_task", f"no open task {task_id}")
    return {"task_id": str(task_id), "status": "done"}


@router.get("/v1/participants/{participant_id}/local-inbox", tags=["demo"])
async def local_inbox(
    runtime: CurrentRuntime,
    participant_id: ParticipantId,
    by: Annotated[Principal, allowed(READ)],
) -> dict[str, Any]:
    await _site(runtime, by, READ, "participant", participant_id)
    return {
        "participant_id": participant_id,
        "messages": await repository.local_mailbox(runtime.pool, participant_id),
    }
