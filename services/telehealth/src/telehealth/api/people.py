"""Admin routes (staff, site timezone), availability, participants' visits, site schedules,
and iCalendar feeds."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Response
from trialstream.auth import hash_token, new_token
from trialstream.errors import Kind, Refused
from trialstream.events.base import StudyId, TrialDate
from trialstream.identity import DEFAULT_STUDY, Action, Principal
from trialstream.staff import allowed, check_allowed, study_for

from telehealth import repository
from telehealth.context import Ctx, StaffActor, StaffReader, same_site
from telehealth.domain.actor import Actor
from telehealth.domain.availability import Hours, WeeklyHours
from telehealth.domain.study import Plan
from telehealth.domain.windows import local_midnight, zone
from telehealth.schemas import (
    Baseline,
    DayException,
    NewFeed,
    NewStaff,
    SiteSettings,
    WeeklySchedule,
)
from telehealth.service import audited, enrolment, slots
from telehealth.service.feeds import calendar_for

router = APIRouter()


@router.post("/v1/admin/staff", tags=["admin"], status_code=201)
async def register_clinician(ctx: Ctx, body: NewStaff, actor: Actor = StaffActor) -> dict[str, str]:
    """Register a clinician for scheduling at a site (their availability and bookings).
    `staff_id` is the subject of their access token; no credential is made here: they
    sign in at the identity issuer."""
    same_site(actor, body.site_id)
    async with ctx.pool.acquire() as conn, conn.transaction():
        if not await repository.insert_staff(conn, body.staff_id, body.site_id):
            raise Refused(Kind.CONFLICT, "conflict", f"staff '{body.staff_id}' already exists")
        new = {"site_id": body.site_id}
        await audited.changed(conn, actor, "staff.registered", "staff", body.staff_id, None, new)
    return {"staff_id": body.staff_id, "site_id": body.site_id}


@router.put("/v1/admin/sites/{site_id}", tags=["admin"])
async def set_site(
    ctx: Ctx,
    site_id: str,
    body: SiteSettings,
    by: Annotated[Principal, allowed(Action.MANAGE_STUDY)],
    study: StudyId | None = None,
) -> dict[str, str]:
    """The timezone of a default-study site (an admin of the default study). A declared
    study's sites have theirs in the study file: 409 `set_in_study_file` (`?study=`, else
    the caller's only study), after the caller's role in that study is checked."""
    in_study = study_for(by, study)
    check_allowed(by, Action.MANAGE_STUDY, None, in_study)
    if in_study != DEFAULT_STUDY:
        raise set_in_study_file(in_study, site_id, ctx.site_zones(in_study, site_id))
    async with ctx.pool.acquire() as conn, conn.transaction():
        before = await repository.site_timezone(conn, site_id)
        await repository.upsert_site(conn, site_id, body.timezone)
        await audited.changed(
            conn,
            Actor(by, Action.MANAGE_STUDY),
            "site.timezone_set",
            "site",
            site_id,
            {"timezone": before},
            {"timezone": body.timezone},
        )
    return {"site_id": site_id, "timezone": body.timezone}


def set_in_study_file(study_id: str, site_id: str, timezone: str | None) -> Refused:
    where = (
        f"sets it to {timezone}"
        if timezone is not None
        else "lists its sites and their timezones (it names no such site, or is not known yet)"
    )
    return Refused(
        Kind.CONFLICT,
        "set_in_study_file",
        f"Site '{site_id}' of study '{study_id}' takes its timezone from the study file, which "
        f"{where}: change it there (`trialstream study apply`), not here.",
    )


async def colleague(ctx: Ctx, actor: Actor, staff_id: str) -> None:
    member = await repository.staff(ctx.pool, staff_id)
    if member is None or not actor.at_any_study(member["site_id"]):
        raise Refused(Kind.NOT_FOUND, "unknown_staff", f"no staff member '{staff_id}' at your site")


@router.put("/v1/staff/{staff_id}/weekly-hours", tags=["availability"])
async def set_weekly(
    ctx: Ctx, staff_id: str, body: WeeklySchedule, actor: Actor = StaffActor
) -> dict[str, Any]:
    await colleague(ctx, actor, staff_id)
    hours = [WeeklyHours(h.weekday, Hours(h.start, h.end)) for h in body.hours]
    async with ctx.pool.acquire() as conn, conn.transaction():
        before, _ = await repository.hours_of(conn, [staff_id], date.min, date.min)
        await repository.replace_weekly_hours(conn, staff_id, hours)
        await audited.availability_changed(
            conn,
            actor,
            staff_id,
            None,
            audited.weekly(before[staff_id]),
            audited.weekly(hours),
        )
    return {"staff_id": staff_id, "hours": body.hours}


@router.put("/v1/staff/{staff_id}/exceptions/{on_date}", tags=["availability"])
async def set_exception(
    ctx: Ctx, staff_id: str, on_date: TrialDate, body: DayException, actor: Actor = StaffActor
) -> dict[str, Any]:
    await colleague(ctx, actor, staff_id)
    hours = [Hours(h.start, h.end) for h in body.hours]
    async with ctx.pool.acquire() as conn, conn.transaction():
        _, before = await repository.hours_of(conn, [staff_id], on_date, on_date)
        await repository.replace_exception(conn, staff_id, on_date, hours)
        await audited.availability_changed(
            conn,
            actor,
            staff_id,
            on_date,
            audited.day(before[staff_id].get(on_date)),
            audited.day(hours),
        )
    return {"staff_id": staff_id, "date": on_date, "hours": body.hours}


@router.delete("/v1/staff/{staff_id}/exceptions/{on_date}", tags=["availability"])
async def delete_exception(
    ctx: Ctx, staff_id: str, on_date: TrialDate, actor: Actor = StaffActor
) -> dict[str, Any]:
    await colleague(ctx, actor, staff_id)
    async with ctx.pool.acquire() as conn, conn.transaction():
        _, before = await repository.hours_of(conn, [staff_id], on_date, on_date)
        if on_date in before[staff_id]:
            await repository.delete_exception(conn, staff_id, on_date)
            await audited.availability_changed(
                conn,
                actor,
                staff_id,
                on_date,
                audited.day(before[staff_id][on_date]),
                None,
            )
    return {"staff_id": staff_id, "date": on_date, "hours": "weekly"}


@router.get("/v1/participants/{participant_id}/visits", tags=["visits"])
async def visits(ctx: Ctx, participant_id: str, actor: Actor = StaffReader) -> dict[str, Any]:
    who = await repository.participant(ctx.pool, participant_id)
    if who is None or not actor.at(who["site_id"], who["study_id"]):
        raise Refused(
            Kind.NOT_FOUND, "unknown_participant", f"no participant {participant_id} at your site"
        )
    plan = Plan.from_stored(who["study_id"], who.pop("protocol"))
    return {
        **who,
        "schedule": plan.described(),
        "visits": await repository.visits_of(ctx.pool, participant_id),
    }


@router.put("/v1/participants/{participant_id}/baseline", tags=["visits"])
async def set_baseline(
    ctx: Ctx, participant_id: str, body: Baseline, actor: Actor = StaffActor
) -> dict[str, Any]:
    planned = await enrolment.set_baseline(
        ctx.pool, actor, participant_id, body.baseline_date, ctx.settings.protocol
    )
    return {
        "participant_id": participant_id,
        "baseline_date": body.baseline_date,
        "visits": planned,
    }


@router.get(
    "/v1/sites/{site_id}/schedule",
    tags=["visits"],
    summary="A site's bookings for a day or a week",
)
async def site_schedule(
    ctx: Ctx,
    site_id: str,
    on: TrialDate,
    span: Literal["day", "week"] = "day",
    actor: Actor = StaffReader,
    study: StudyId | None = None,
) -> dict[str, Any]:
    """One study's bookings at the site (`study`, else the caller's only one)."""
    in_study = study_for(actor.principal, study)
    same_site(actor, site_id, in_study)
    tz_name = await slots.site_timezone(ctx.pool, site_id, in_study, ctx.site_zones)
    tz = zone(tz_name)
    first = on - timedelta(days=on.weekday()) if span == "week" else on
    last = first + timedelta(days=7 if span == "week" else 1)
    start, end = local_midnight(first, tz), local_midnight(last, tz)
    rows = await repository.in_range(ctx.pool, start, end, site_id=site_id, study_id=in_study)
    return {
        "site_id": site_id,
        "timezone": tz_name,
        "from": start,
        "until": end,
        "bookings": [
            {**b.shown(), "local_start": b.starts_at.astimezone(tz).isoformat()} for b in rows
        ],
    }


@router.post("/v1/calendar-feeds", tags=["calendar"], status_code=201)
async def create_feed(ctx: Ctx, body: NewFeed, actor: Actor = StaffActor) -> dict[str, str]:
    if body.staff_id is not None:
        await colleague(ctx, actor, body.staff_id)
        kind, owner = "staff", body.staff_id
    else:
        assert body.participant_id is not None
        who = await repository.participant(ctx.pool, body.participant_id)
        if who is None or not actor.at(who["site_id"], who["study_id"]):
            raise Refused(Kind.NOT_FOUND, "unknown_participant", "no such participant at your site")
        kind, owner = "participant", body.participant_id
    token = new_token("cal")
    async with ctx.pool.acquire() as conn, conn.transaction():
        await repository.insert_feed(conn, hash_token(token), kind, owner, actor.actor)
        await audited.changed(
            conn,
            actor,
            "calendar_feed.created",
            "calendar_feed",
            f"{kind}:{owner}",
            None,
            {"owner_kind": kind, "owner_id": owner},
        )
    return {"url": f"{ctx.settings.public_base_url.rstrip('/')}/v1/calendars/{token}.ics"}


@router.get("/v1/calendars/{token}.ics", tags=["calendar"], response_class=Response)
async def calendar(ctx: Ctx, token: str) -> Response:
    owner = await repository.feed(ctx.pool, hash_token(token))
    if owner is None:
        raise Refused(Kind.NOT_FOUND, "unknown_feed", "no calendar feed with this address")
    body = await calendar_for(ctx.pool, owner, ctx.policy, ctx.clock())
    return Response(body, media_type="text/calendar; charset=utf-8")
