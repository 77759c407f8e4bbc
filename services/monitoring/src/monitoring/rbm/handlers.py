"""Thin adapters for risk-based monitoring: KRI and flag routes, stream subscribers, and
the periodic KRI evaluation. Included from monitoring's handlers and main."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, Literal, TypeVar
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field, StringConstraints
from trialstream.events.base import Event
from trialstream.events.epro import QuestionnaireDue, QuestionnaireMissed, ResponseSubmitted
from trialstream.events.participants import ParticipantEnrolled
from trialstream.events.topics import Topic
from trialstream.events.visits import VisitChanged
from trialstream.http import ApiError
from trialstream.runtime import Runtime

from monitoring.domain import AccessDenied, InvalidTransition, Staff, may_read, site_to_read
from monitoring.rbm import kris, repository, service
from monitoring.rbm.closing import FlagNotFound, close_flag
from monitoring.rbm.settings import RbmSettings
from monitoring.service_info import GROUPS

# The low-volume streams share one group: one consumer-group join at start-up, not five.
STREAMS_GROUP = GROUPS["rbm_streams"].name
STREAMS: dict[Topic, type[Event]] = {
    Topic.PARTICIPANTS: ParticipantEnrolled,
    Topic.EPRO_DUE: QuestionnaireDue,
    Topic.EPRO_MISSED: QuestionnaireMissed,
    Topic.EPRO_RESPONSES: ResponseSubmitted,
    Topic.VISITS: VisitChanged,
}


class FlagClosing(BaseModel):
    note: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)
    ] = Field(description="Why the flag is closed (required)")


def _denied(exc: AccessDenied | InvalidTransition) -> ApiError:
    return ApiError(409 if isinstance(exc, InvalidTransition) else 403, exc.code, str(exc))


def build_rbm_router(
    runtime: Runtime, settings: RbmSettings, current_staff: Callable[..., Awaitable[Staff]]
) -> APIRouter:
    router = APIRouter(tags=["risk-based monitoring"])
    cfg = settings.kri_config()

    @router.get("/v1/sites/{site_id}/kris", summary="A site's KRIs and its participants' KRIs")
    async def site_kris(site_id: str, staff: Staff = Depends(current_staff)) -> dict[str, Any]:
        try:
            site_to_read(staff, site_id)
        except AccessDenied as exc:
            raise _denied(exc) from None
        return await kris.site_kris(runtime.pool, cfg, site_id)

    @router.get("/v1/participants/{participant_id}/kris", summary="One participant's KRIs")
    async def participant_kris(
        participant_id: str, staff: Staff = Depends(current_staff)
    ) -> dict[str, Any]:
        site = await repository.site_of(runtime.pool, participant_id)
        found = None
        if site is not None and may_read(staff, site):
            found = await kris.participant_kris(runtime.pool, cfg, participant_id)
        if found is None:
            raise ApiError(
                404, "unknown_participant", f"no participant {participant_id} in your sites"
            )
        return found

    @router.get("/v1/flags", summary="Discrepancy flags of a site, newest first")
    async def list_flags(
        staff: Staff = Depends(current_staff),
        site: str | None = None,
        status: Literal["open", "closed", "all"] = "open",
        participant: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> dict[str, Any]:
        try:
            scope = site_to_read(staff, site)
        except AccessDenied as exc:
            raise _denied(exc) from None
        found = await repository.list_flags(
            runtime.pool, scope, None if status == "all" else status, participant, limit
        )
        return {"site": scope, "status": status, "flags": found}

    @router.post("/v1/flags/{flag_id}/close", summary="Close a flag with a note (site staff)")
    async def close(
        flag_id: UUID, body: FlagClosing, staff: Staff = Depends(current_staff)
    ) -> dict[str, Any]:
        try:
            return await close_flag(runtime.pool, staff, flag_id, body.note)
        except FlagNotFound:
            raise ApiError(404, "unknown_flag", f"no flag {flag_id} in your sites") from None
        except (AccessDenied, InvalidTransition) as exc:
            raise _denied(exc) from None

    return router


def subscribe_rbm(runtime: Runtime, settings: RbmSettings) -> None:
    """The low-volume streams KRIs and flags need, in one group. The readings reach
    `service.process_readings_for_rbm` through monitoring's one readings subscriber."""
    rules = settings.flag_rules()

    async def on_streams(events: Sequence[Event]) -> None:
        # participants first: a batch may hold an enrolment and that participant's events
        async with runtime.pool.acquire() as conn:
            await service.apply_participants(conn, _of(events, ParticipantEnrolled))
            await service.apply_epro_occurrences(
                conn, _of(events, (QuestionnaireDue, QuestionnaireMissed))
            )
            await service.apply_epro_responses(conn, _of(events, ResponseSubmitted), rules)
            await service.apply_visits(conn, _of(events, VisitChanged))

    runtime.subscribe(STREAMS, Event, STREAMS_GROUP, on_streams)


T = TypeVar("T", bound=Event)


def _of(events: Sequence[Event], kind: type[T] | tuple[type[T], ...]) -> list[T]:
    return [e for e in events if isinstance(e, kind)]


def start_rbm_loops(runtime: Runtime, settings: RbmSettings) -> None:
    """The periodic KRI evaluation, for as long as the service runs."""
    cfg, rules = settings.kri_config(), settings.flag_rules()
    runtime.loops.every(
        "monitoring-kris",
        settings.kri_interval_seconds,
        lambda: kris.evaluate(runtime.pool, cfg, rules),
    )
