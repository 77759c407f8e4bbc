"""Staff routes: slots for a participant's next visit, bookings and their lifecycle, urgent proposals."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query
from trialstream.errors import Kind, Refused
from trialstream.events.base import StudyId
from trialstream.staff import site_scope, study_for

from telehealth import repository
from telehealth.context import Ctx, StaffActor, StaffReader
from telehealth.domain.actor import Actor
from telehealth.domain.study import Plan
from telehealth.domain.windows import zone
from telehealth.schemas import NewBooking, Note, Reschedule, WithReason
from telehealth.service import booking, slots, urgent

router = APIRouter(tags=["bookings"])


@router.get("/v1/participants/{participant_id}/slots", summary="Bookable slots for the next visit")
async def next_visit_slots(
    ctx: Ctx,
    participant_id: str,
    actor: Actor = StaffReader,
    visit_id: UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    who = await repository.participant(ctx.pool, participant_id)
    if who is None or not actor.at(who["site_id"], who["study_id"]):
        raise Refused(
            Kind.NOT_FOUND, "unknown_participant", f"no participant {participant_id} at your site"
        )
    if who["withdrawn_at"] is not None:
        raise (booking.withdrawn(who["withdrawn_at"]))
    now = ctx.clock()
    visits = [
        v
        for v in await repository.visits_of(ctx.pool, participant_id)
        if v["status"] == "open"
        and v["window_end"] > now
        and (visit_id is None or v["visit_id"] == visit_id)
    ]
    if not visits:
        none_declared = Plan.from_stored(who["study_id"], who["protocol"]).described()["note"]
        message = none_declared or "no visit of this participant is open for booking"
        raise Refused(Kind.NOT_FOUND, "no_open_visit", message)
    visit = min(visits, key=lambda v: (v["window_start"], v["sequence"]))
    start = max(visit["window_start"], now)
    end = min(visit["window_end"], now + timedelta(days=ctx.settings.booking_horizon_days))
    found = (
        await slots.free_slots(
            ctx.pool,
            who["site_id"],
            start,
            end,
            ctx.settings.slot_minutes,
            study_id=who["study_id"],
            zones=ctx.site_zones,
        )
        if end > start
        else []
    )
    tz = zone(who["timezone"])
    return {
        "visit": visit,
        "timezone": who["timezone"],
        "slots": [
            {
                "staff_id": s.staff_id,
                "starts_at": s.starts_at,
                "ends_at": s.ends_at,
                "local_start": s.starts_at.astimezone(tz).isoformat(),
                "local_end": s.ends_at.astimezone(tz).isoformat(),
            }
            for s in found[:limit]
        ],
    }


@router.post("/v1/bookings", status_code=201, summary="Book a slot for a visit")
async def create_booking(ctx: Ctx, body: NewBooking, actor: Actor = StaffActor) -> dict[str, Any]:
    return await booking.book(
        ctx.pool,
        actor,
        body.visit_id,
        body.staff_id,
        body.starts_at,
        body.deviation_reason,
        ctx.policy,
        ctx.clock(),
    )


@router.get("/v1/bookings/{booking_id}")
async def get_booking(ctx: Ctx, booking_id: UUID, actor: Actor = StaffReader) -> dict[str, Any]:
    row = await repository.get_booking(ctx.pool, booking_id)
    if row is None or not actor.at(row.site_id, row.study_id):
        raise Refused(Kind.NOT_FOUND, "unknown_booking", f"no booking {booking_id} at your site")
    return booking.present(row, ctx.policy)


@router.post("/v1/bookings/{booking_id}/reschedule")
async def reschedule(
    ctx: Ctx, booking_id: UUID, body: Reschedule, actor: Actor = StaffActor
) -> dict[str, Any]:
    return await booking.reschedule(
        ctx.pool,
        actor,
        booking_id,
        body.starts_at,
        body.staff_id,
        body.reason,
        body.deviation_reason,
        ctx.policy,
        ctx.clock(),
    )


async def finish(
    ctx: Ctx, booking_id: UUID, action: str, actor: Actor, reason: str | None
) -> dict[str, Any]:
    return await booking.finish(
        ctx.pool, actor, booking_id, action, reason, ctx.policy, ctx.clock()
    )


@router.post("/v1/bookings/{booking_id}/cancel")
async def cancel(
    ctx: Ctx, booking_id: UUID, body: WithReason, actor: Actor = StaffActor
) -> dict[str, Any]:
    return await finish(ctx, booking_id, "cancel", actor, body.reason)


@router.post("/v1/bookings/{booking_id}/complete")
async def complete(
    ctx: Ctx, booking_id: UUID, body: Note, actor: Actor = StaffActor
) -> dict[str, Any]:
    return await finish(ctx, booking_id, "complete", actor, body.note)


@router.post("/v1/bookings/{booking_id}/no-show")
async def no_show(
    ctx: Ctx, booking_id: UUID, body: Note, actor: Actor = StaffActor
) -> dict[str, Any]:
    return await finish(ctx, booking_id, "no-show", actor, body.note)


@router.get("/v1/proposals", tags=["urgent"], summary="Urgent visit proposals of your site")
async def list_proposals(
    ctx: Ctx,
    actor: Actor = StaffReader,
    status: Literal["proposed", "booked", "dismissed", "all"] = "proposed",
    site: str | None = None,
    study: StudyId | None = None,
) -> dict[str, Any]:
    """One study's proposals (`study`, else the caller's only one), of a site or all."""
    in_study = study_for(actor.principal, study)
    scope = site_scope(actor.principal, actor.action, site, in_study)
    found = await repository.proposals(
        ctx.pool, scope, None if status == "all" else status, in_study
    )
    shown = [booking.present(b, ctx.policy, alert_id=alert_id) for b, alert_id in found]
    return {"site": scope, "proposals": shown}


async def decide(
    ctx: Ctx, proposal_id: UUID, confirm: bool, actor: Actor, note: str | None
) -> dict[str, Any]:
    return await urgent.decide(ctx.pool, actor, proposal_id, confirm, note, ctx.policy, ctx.clock())


@router.post("/v1/proposals/{proposal_id}/confirm", tags=["urgent"])
async def confirm(
    ctx: Ctx, proposal_id: UUID, body: Note, actor: Actor = StaffActor
) -> dict[str, Any]:
    return await decide(ctx, proposal_id, True, actor, body.note)


@router.post("/v1/proposals/{proposal_id}/dismiss", tags=["urgent"])
async def dismiss(
    ctx: Ctx, proposal_id: UUID, body: Note, actor: Actor = StaffActor
) -> dict[str, Any]:
    return await decide(ctx, proposal_id, False, actor, body.note)
