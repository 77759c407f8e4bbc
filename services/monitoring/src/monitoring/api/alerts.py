"""Staff routes of the alert inbox: who am I, the inbox and its live stream, acknowledge
and resolve, an alert's audit trail, and a participant's timeline. Staff accounts live in
the identity service."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field, StringConstraints
from sse_starlette import EventSourceResponse
from trialstream.errors import Kind, Refused, about_field
from trialstream.events.base import ParticipantId, TrialDatetime
from trialstream.identity import Action
from trialstream.staff import allowed

from monitoring import repository, service, timeline
from monitoring.context import Context, Ctx, CurrentStaff
from monitoring.domain import (
    Alert,
    AlertStatus,
    Staff,
    check_read,
    group_episodes,
    site_to_read,
    with_deadline,
)
from monitoring.live import sse_stream

router = APIRouter()

StatusFilter = Literal["open", "acknowledged", "resolved", "active", "all"]
STATUSES: dict[str, tuple[str, ...]] = {
    "open": (AlertStatus.OPEN,),
    "acknowledged": (AlertStatus.ACKNOWLEDGED,),
    "resolved": (AlertStatus.RESOLVED,),
    "active": (AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED),
    "all": tuple(AlertStatus),
}


class Acknowledgement(BaseModel):
    note: Annotated[str | None, Field(max_length=2000)] = None


class Resolution(BaseModel):
    reason: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=2000),
        Field(description="Why the alert is closed, e.g. 'device refitted, readings normal'"),
    ]


def _now_due(ctx: Context, alerts: list[Alert]) -> list[Alert]:
    return with_deadline(alerts, ctx.deadlines, datetime.now(UTC))


async def _readable_alert(ctx: Context, alert_id: UUID, staff: Staff) -> Alert:
    alert = await repository.get_alert(ctx.pool, alert_id)
    if alert is None:
        raise service.unknown_alert(alert_id)
    check_read(staff.in_study(alert.study_id), alert.site_id)
    return _now_due(ctx, [alert])[0]


# A timeline reads 5-minute rollups of every metric: a month is ~9,000 buckets per metric.
LONGEST_TIMELINE = timedelta(days=31)


def _check_range(start: datetime, end: datetime) -> None:
    if end <= start:
        raise about_field(
            Kind.INVALID, "empty_range", "The range is empty.", "to", "'to' must be after 'from'"
        )
    if end - start > LONGEST_TIMELINE:
        raise about_field(
            Kind.INVALID,
            "range_too_long",
            f"A timeline spans at most {LONGEST_TIMELINE.days} days; page through longer ones.",
            "to",
            f"at most {LONGEST_TIMELINE.days} days after 'from'",
        )


@router.get("/v1/me", tags=["staff"], summary="Who the credential belongs to")
async def me(staff: CurrentStaff) -> dict[str, Any]:
    return {
        "staff_id": staff.staff_id,
        "name": staff.principal.name,
        "study_id": staff.study_id,
        "roles": staff.roles,
        "sites": None if staff.sites is None else sorted(staff.sites),
        "can_act": staff.can_act,
        "all_sites": staff.all_sites,
    }


@router.get(
    "/v1/alerts",
    tags=["staff"],
    summary="The alert inbox of a site, newest first",
    dependencies=[allowed(Action.READ_PARTICIPANT_DATA)],
)
async def list_alerts(
    ctx: Ctx,
    staff: CurrentStaff,
    site: str | None = None,
    status: StatusFilter = "open",
    group: Annotated[
        Literal["alert", "episode"],
        Query(description="'episode': alerts grouped per participant episode"),
    ] = "alert",
    participant: ParticipantId | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    scope = site_to_read(staff, site)
    alerts = _now_due(
        ctx,
        await repository.list_alerts(
            ctx.pool, scope, STATUSES[status], limit, participant, staff.study_id
        ),
    )
    body: dict[str, Any] = {"study": staff.study_id, "site": scope, "status": status}
    if group == "episode":
        body["episodes"] = group_episodes(alerts)
    else:
        body["alerts"] = alerts
    return body


@router.get(
    "/v1/alerts/stream",
    dependencies=[allowed(Action.READ_PARTICIPANT_DATA)],
    tags=["staff"],
    summary="Server-Sent Events: one `alert` event per new or changed alert of your site",
    response_class=EventSourceResponse,
)
async def alert_stream(
    ctx: Ctx, staff: CurrentStaff, site: str | None = None
) -> EventSourceResponse:
    scope = site_to_read(staff, site)
    return EventSourceResponse(
        sse_stream(ctx.feed, scope, staff.study_id),
        ping=int(ctx.settings.sse_keepalive_seconds),
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get(
    "/v1/alerts/{alert_id}", tags=["staff"], dependencies=[allowed(Action.READ_PARTICIPANT_DATA)]
)
async def get_alert(ctx: Ctx, alert_id: UUID, staff: CurrentStaff) -> Alert:
    return await _readable_alert(ctx, alert_id, staff)


@router.post(
    "/v1/alerts/{alert_id}/acknowledge",
    tags=["staff"],
    dependencies=[allowed(Action.ACT_ON_ALERTS)],
)
async def acknowledge(
    ctx: Ctx, alert_id: UUID, body: Acknowledgement, staff: CurrentStaff
) -> Alert:
    alert = await service.acknowledge_alert(ctx.pool, staff, alert_id, body.note)
    return _now_due(ctx, [alert])[0]


@router.post(
    "/v1/alerts/{alert_id}/resolve", tags=["staff"], dependencies=[allowed(Action.ACT_ON_ALERTS)]
)
async def resolve(ctx: Ctx, alert_id: UUID, body: Resolution, staff: CurrentStaff) -> Alert:
    alert = await service.resolve_alert(
        ctx.pool, staff, alert_id, body.reason, step_up_seconds=ctx.settings.step_up_seconds
    )
    return _now_due(ctx, [alert])[0]


@router.get(
    "/v1/alerts/{alert_id}/audit",
    tags=["staff"],
    dependencies=[allowed(Action.READ_PARTICIPANT_DATA)],
)
async def alert_audit(ctx: Ctx, alert_id: UUID, staff: CurrentStaff) -> dict[str, Any]:
    await _readable_alert(ctx, alert_id, staff)
    return {
        "alert_id": str(alert_id),
        "entries": await repository.audit_for(ctx.pool, "alert", str(alert_id)),
    }


@router.get(
    "/v1/participants/{participant_id}/timeline",
    tags=["staff"],
    dependencies=[allowed(Action.READ_PARTICIPANT_DATA)],
)
async def participant_timeline(
    ctx: Ctx,
    participant_id: ParticipantId,
    staff: CurrentStaff,
    start: Annotated[TrialDatetime | None, Query(alias="from")] = None,
    end: Annotated[TrialDatetime | None, Query(alias="to")] = None,
) -> dict[str, Any]:
    """Reading rollups, alerts, ePRO and visits of one participant (default: last 24 h)."""
    where = await repository.where_is(ctx.pool, participant_id)
    if where is None:
        raise Refused(Kind.NOT_FOUND, "unknown_participant", f"no participant {participant_id}")
    study, site = where
    check_read(staff.in_study(study), site)
    end = end or datetime.now(UTC) + timedelta(minutes=5)
    start = start or end - timedelta(hours=24)
    _check_range(start, end)
    alerts = await repository.list_alerts(ctx.pool, site, STATUSES["all"], 1000, participant_id)
    return {
        "participant_id": participant_id,
        "site_id": site,
        "from": start,
        "to": end,
        **await timeline.read(ctx.pool, participant_id, start, end),
        "alerts": _now_due(ctx, [a for a in alerts if start <= a.detected_at < end]),
    }
