"""Thin adapters: the staff and admin API, the live feed, and the subscribers."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Query, Request
from pydantic import AwareDatetime, BaseModel, Field, StringConstraints
from sse_starlette import EventSourceResponse
from trialstream.auth import hash_token, tokens_match
from trialstream.events.base import ParticipantId, SiteId
from trialstream.http import ApiError
from trialstream.runtime import Runtime

from monitoring import repository, service, timeline
from monitoring.domain import (
    AccessDenied,
    AlertStatus,
    InvalidTransition,
    Role,
    Staff,
    check_read,
    group_episodes,
    site_to_read,
)
from monitoring.live import LiveFeed, sse_stream
from monitoring.rbm.handlers import build_rbm_router
from monitoring.settings import MonitoringSettings
from monitoring.subscribers import (
    ALERTS_GROUP,
    EPISODES_GROUP,
    EPRO_MISSED_GROUP,
    EPRO_RESPONSES_GROUP,
    PARTICIPANTS_GROUP,
    READINGS_GROUP,
    VISITS_GROUP,
    subscribe,
)

__all__ = [  # the consumer groups, re-exported where the deployment contract test looks
    "ALERTS_GROUP",
    "EPISODES_GROUP",
    "EPRO_MISSED_GROUP",
    "EPRO_RESPONSES_GROUP",
    "PARTICIPANTS_GROUP",
    "READINGS_GROUP",
    "VISITS_GROUP",
    "build_router",
    "subscribe",
]

# The dashboard keeps the staff token in this HttpOnly cookie (docs/decisions/0040).
SESSION_COOKIE = "trialstream_staff"
StatusFilter = Literal["open", "acknowledged", "resolved", "active", "all"]
_STATUSES: dict[str, tuple[str, ...]] = {
    "open": (AlertStatus.OPEN,),
    "acknowledged": (AlertStatus.ACKNOWLEDGED,),
    "resolved": (AlertStatus.RESOLVED,),
    "active": (AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED),
    "all": tuple(AlertStatus),
}


class NewStaff(BaseModel):
    staff_id: Annotated[
        str,
        Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]{1,63}$", description="Pseudonymous, e.g. nurse-a1"),
    ]
    site_id: SiteId
    role: Role = Role.SITE_STAFF


class Acknowledgement(BaseModel):
    note: Annotated[str | None, Field(max_length=2000)] = None


class Resolution(BaseModel):
    reason: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=2000),
        Field(description="Why the alert is closed, e.g. 'device refitted, readings normal'"),
    ]


def _denied(exc: AccessDenied | InvalidTransition) -> ApiError:
    status = 409 if isinstance(exc, InvalidTransition) else 403
    return ApiError(status, exc.code, str(exc))


def staff_dependency(runtime: Runtime) -> Callable[..., Coroutine[Any, Any, Staff]]:
    """Staff from `Authorization: Bearer` or, for the dashboard, the session cookie. A
    cookie-authenticated write must be JSON: a cross-site form cannot send that without a
    CORS preflight we never answer (defence in depth next to SameSite=Strict)."""

    async def current_staff(
        request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> Staff:
        token = None
        if authorization:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise ApiError(
                    401, "invalid_credentials", "Authorization must be 'Bearer <token>'."
                )
        else:
            token = request.cookies.get(SESSION_COOKIE)
            json_body = request.headers.get("content-type", "").startswith("application/json")
            if token and request.method not in ("GET", "HEAD") and not json_body:
                raise ApiError(403, "csrf", "Send JSON with the session cookie.")
        if not token:
            raise ApiError(401, "missing_credentials", "Send 'Authorization: Bearer <token>'.")
        staff = await repository.staff_for_token(runtime.pool, hash_token(token.strip()))
        if staff is None:
            raise ApiError(401, "invalid_credentials", "Unknown staff credential.")
        return staff

    return current_staff


def build_router(runtime: Runtime, settings: MonitoringSettings, feed: LiveFeed) -> APIRouter:
    router = APIRouter()
    current_staff = staff_dependency(runtime)
    deadlines = settings.ack_deadlines()
    admin_token = settings.admin_token.get_secret_value() if settings.admin_token else None

    async def staff_admin(
        request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> None:
        """The platform admin token, or a staff member with the admin role."""
        token = (authorization or "").partition(" ")[2].strip()
        if admin_token is not None and token and tokens_match(token, admin_token):
            return
        staff = await current_staff(request, authorization)
        if staff.role is not Role.ADMIN:
            raise ApiError(403, "admin_only", "Only an admin can create staff.")

    def decorate(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return service.with_deadline(alerts, deadlines, datetime.now(UTC))

    async def readable_alert(alert_id: UUID, staff: Staff) -> dict[str, Any]:
        alert = await repository.get_alert(runtime.pool, alert_id)
        if alert is None:
            raise ApiError(404, "unknown_alert", f"no alert {alert_id}")
        try:
            check_read(staff, alert["site_id"])
        except AccessDenied as exc:
            raise _denied(exc) from None
        return decorate([alert])[0]

    @router.post(
        "/v1/admin/staff", tags=["admin"], status_code=201, dependencies=[Depends(staff_admin)]
    )
    async def create_staff(body: NewStaff) -> dict[str, str]:
        try:
            token = await service.create_staff(
                runtime.pool, Staff(body.staff_id, body.site_id, body.role)
            )
        except service.AlreadyExists as exc:
            raise ApiError(409, "conflict", str(exc)) from None
        return {
            "staff_id": body.staff_id,
            "site_id": body.site_id,
            "role": str(body.role),
            "token": token,
        }

    @router.get("/v1/me", tags=["staff"], summary="Who the credential belongs to")
    async def me(staff: Staff = Depends(current_staff)) -> dict[str, Any]:
        return {
            "staff_id": staff.staff_id,
            "site_id": staff.site_id,
            "role": str(staff.role),
            "can_act": staff.can_act,
            "all_sites": staff.all_sites,
        }

    @router.get("/v1/alerts", tags=["staff"], summary="The alert inbox of a site, newest first")
    async def list_alerts(
        staff: Staff = Depends(current_staff),
        site: str | None = None,
        status: StatusFilter = "open",
        group: Annotated[
            Literal["alert", "episode"],
            Query(description="'episode': alerts grouped per participant episode"),
        ] = "alert",
        participant: ParticipantId | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> dict[str, Any]:
        try:
            scope = site_to_read(staff, site)
        except AccessDenied as exc:
            raise _denied(exc) from None
        alerts = decorate(
            await repository.list_alerts(runtime.pool, scope, _STATUSES[status], limit, participant)
        )
        body: dict[str, Any] = {"site": scope, "status": status}
        if group == "episode":
            body["episodes"] = group_episodes(alerts)
        else:
            body["alerts"] = alerts
        return body

    @router.get(
        "/v1/alerts/stream",
        tags=["staff"],
        summary="Server-Sent Events: one `alert` event per new or changed alert of your site",
        response_class=EventSourceResponse,
    )
    async def alert_stream(
        staff: Staff = Depends(current_staff), site: str | None = None
    ) -> EventSourceResponse:
        try:
            scope = site_to_read(staff, site)
        except AccessDenied as exc:
            raise _denied(exc) from None
        return EventSourceResponse(
            sse_stream(feed, scope),
            ping=int(settings.sse_keepalive_seconds),
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @router.get("/v1/alerts/{alert_id}", tags=["staff"])
    async def get_alert(alert_id: UUID, staff: Staff = Depends(current_staff)) -> dict[str, Any]:
        return await readable_alert(alert_id, staff)

    @router.post("/v1/alerts/{alert_id}/acknowledge", tags=["staff"])
    async def acknowledge(
        alert_id: UUID, body: Acknowledgement, staff: Staff = Depends(current_staff)
    ) -> dict[str, Any]:
        try:
            alert = await service.acknowledge_alert(runtime.pool, staff, alert_id, body.note)
        except service.NotFound:
            raise ApiError(404, "unknown_alert", f"no alert {alert_id}") from None
        except (AccessDenied, InvalidTransition) as exc:
            raise _denied(exc) from None
        return decorate([alert])[0]

    @router.post("/v1/alerts/{alert_id}/resolve", tags=["staff"])
    async def resolve(
        alert_id: UUID, body: Resolution, staff: Staff = Depends(current_staff)
    ) -> dict[str, Any]:
        try:
            alert = await service.resolve_alert(runtime.pool, staff, alert_id, body.reason)
        except service.NotFound:
            raise ApiError(404, "unknown_alert", f"no alert {alert_id}") from None
        except (AccessDenied, InvalidTransition) as exc:
            raise _denied(exc) from None
        return decorate([alert])[0]

    @router.get("/v1/alerts/{alert_id}/audit", tags=["staff"])
    async def alert_audit(alert_id: UUID, staff: Staff = Depends(current_staff)) -> dict[str, Any]:
        await readable_alert(alert_id, staff)
        return {
            "alert_id": str(alert_id),
            "entries": await repository.audit_for(runtime.pool, "alert", str(alert_id)),
        }

    @router.get("/v1/participants/{participant_id}/timeline", tags=["staff"])
    async def participant_timeline(
        participant_id: ParticipantId,
        staff: Staff = Depends(current_staff),
        start: Annotated[AwareDatetime | None, Query(alias="from")] = None,
        end: Annotated[AwareDatetime | None, Query(alias="to")] = None,
    ) -> dict[str, Any]:
        """Reading rollups, alerts, ePRO and visits of one participant (default: last 24 h)."""
        site = await repository.site_of(runtime.pool, participant_id)
        if site is None:
            raise ApiError(404, "unknown_participant", f"no participant {participant_id}")
        try:
            check_read(staff, site)
        except AccessDenied as exc:
            raise _denied(exc) from None
        end = end or datetime.now(UTC) + timedelta(minutes=5)
        start = start or end - timedelta(hours=24)
        alerts = await repository.list_alerts(
            runtime.pool, site, _STATUSES["all"], 1000, participant_id
        )
        return {
            "participant_id": participant_id,
            "site_id": site,
            "from": start,
            "to": end,
            **await timeline.read(runtime.pool, participant_id, start, end),
            "alerts": decorate([a for a in alerts if start <= a["detected_at"] < end]),
        }

    router.include_router(build_rbm_router(runtime, settings, current_staff))
    return router
