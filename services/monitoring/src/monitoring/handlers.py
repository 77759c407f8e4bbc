"""Thin adapters: staff and admin routes, and the two subscribers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from trialstream.auth import bearer_token, hash_token, require_admin
from trialstream.consumer import BatchConsumer, dead_letter_sender, subscribe_batches
from trialstream.events.alerts import AlertEpisodeEnded, AlertRaised
from trialstream.events.base import SiteId
from trialstream.events.participants import ParticipantEnrolled
from trialstream.events.topics import Topic
from trialstream.http import ApiError
from trialstream.runtime import Runtime

from monitoring import repository, service
from monitoring.domain import AccessDenied, InvalidTransition, Role, Staff, may_read, site_to_read
from monitoring.rbm.handlers import READINGS_GROUP, build_rbm_router
from monitoring.settings import MonitoringSettings

ALERTS_GROUP = "monitoring-alerts"
PARTICIPANTS_GROUP = "monitoring-participants"
EPISODES_GROUP = "monitoring-episodes-ended"
RBM_READINGS_GROUP = READINGS_GROUP  # risk-based monitoring's hot stream; deploy/k8s scales on it


class NewStaff(BaseModel):
    staff_id: Annotated[
        str,
        Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]{1,63}$", description="Pseudonymous, e.g. nurse-a1"),
    ]
    site_id: SiteId
    role: Role = Role.SITE_STAFF


class Acknowledgement(BaseModel):
    note: Annotated[str | None, Field(max_length=2000)] = None


def _denied(exc: AccessDenied | InvalidTransition) -> ApiError:
    status = 409 if isinstance(exc, InvalidTransition) else 403
    return ApiError(status, exc.code, str(exc))


def build_router(runtime: Runtime, settings: MonitoringSettings) -> APIRouter:
    router = APIRouter()
    admin = Depends(
        require_admin(settings.admin_token.get_secret_value() if settings.admin_token else None)
    )

    async def current_staff(token: str = Depends(bearer_token)) -> Staff:
        staff = await repository.staff_for_token(runtime.pool, hash_token(token))
        if staff is None:
            raise ApiError(401, "invalid_credentials", "Unknown staff credential.")
        return staff

    @router.post("/v1/admin/staff", tags=["admin"], status_code=201, dependencies=[admin])
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

    @router.get("/v1/alerts", tags=["staff"], summary="The alert inbox of a site, newest first")
    async def list_alerts(
        staff: Staff = Depends(current_staff),
        site: str | None = None,
        status: Literal["open", "acknowledged", "all"] = "open",
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> dict[str, Any]:
        try:
            scope = site_to_read(staff, site)
        except AccessDenied as exc:
            raise _denied(exc) from None
        alerts = await repository.list_alerts(
            runtime.pool, scope, None if status == "all" else status, limit
        )
        return {"site": scope, "status": status, "alerts": alerts}

    @router.get("/v1/alerts/{alert_id}", tags=["staff"])
    async def get_alert(alert_id: UUID, staff: Staff = Depends(current_staff)) -> dict[str, Any]:
        alert = await repository.get_alert(runtime.pool, alert_id)
        if alert is None or not may_read(staff, alert["site_id"]):
            raise ApiError(404, "unknown_alert", f"no alert {alert_id} in your sites")
        return alert

    @router.post("/v1/alerts/{alert_id}/acknowledge", tags=["staff"])
    async def acknowledge(
        alert_id: UUID, body: Acknowledgement, staff: Staff = Depends(current_staff)
    ) -> dict[str, Any]:
        try:
            return await service.acknowledge_alert(runtime.pool, staff, alert_id, body.note)
        except service.NotFound:
            raise ApiError(404, "unknown_alert", f"no alert {alert_id} in your sites") from None
        except (AccessDenied, InvalidTransition) as exc:
            raise _denied(exc) from None

    @router.get("/v1/alerts/{alert_id}/audit", tags=["staff"])
    async def alert_audit(alert_id: UUID, staff: Staff = Depends(current_staff)) -> dict[str, Any]:
        alert = await repository.get_alert(runtime.pool, alert_id)
        if alert is None or not may_read(staff, alert["site_id"]):
            raise ApiError(404, "unknown_alert", f"no alert {alert_id} in your sites")
        return {
            "alert_id": str(alert_id),
            "entries": await repository.audit_for(runtime.pool, "alert", str(alert_id)),
        }

    router.include_router(build_rbm_router(runtime, settings, current_staff))
    return router


def subscribe(runtime: Runtime) -> None:
    async def on_alerts(alerts: Sequence[AlertRaised]) -> None:
        await repository.insert_alerts(runtime.pool, alerts)

    async def on_episodes_ended(events: Sequence[AlertEpisodeEnded]) -> None:
        await repository.end_episodes(runtime.pool, events)

    async def on_participants(events: Sequence[ParticipantEnrolled]) -> None:
        await repository.upsert_participants(runtime.pool, events)

    dead_letters = dead_letter_sender(runtime.broker)
    session = runtime.settings.kafka_session_timeout_ms
    subscribe_batches(
        runtime.broker,
        Topic.ALERTS,
        BatchConsumer(
            model=AlertRaised, group=ALERTS_GROUP, handle=on_alerts, send_dead_letters=dead_letters
        ),
        session_timeout_ms=session,
    )
    subscribe_batches(
        runtime.broker,
        Topic.ALERT_EPISODES_ENDED,
        BatchConsumer(
            model=AlertEpisodeEnded,
            group=EPISODES_GROUP,
            handle=on_episodes_ended,
            send_dead_letters=dead_letters,
        ),
        session_timeout_ms=session,
    )
    subscribe_batches(
        runtime.broker,
        Topic.PARTICIPANTS,
        BatchConsumer(
            model=ParticipantEnrolled,
            group=PARTICIPANTS_GROUP,
            handle=on_participants,
            send_dead_letters=dead_letters,
        ),
        session_timeout_ms=session,
    )
