"""Booking use cases: book, reschedule, cancel, complete, no-show.

A withdrawn participant gets no new or moved booking (409 `participant_withdrawn`,
decision 0025); what was booked before stays for staff to complete, cancel or mark.

Each runs in one transaction that locks the visit (and booking), checks the rules,
writes, and queues the VisitChanged event on the outbox. The database has the last
word on double booking: the exclusion constraint `no_double_booking` turns a race
between two requests for one staff member's time into exactly one winner and an
ExclusionViolationError for the others, which becomes a 409 `slot_taken`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg
from trialstream import consent_gate
from trialstream.db import DbConnection
from trialstream.errors import Kind, Refused, about_field
from trialstream.events.consents import ConsentScope
from trialstream.events.visits import VisitStatus, VisitType

from telehealth import repository
from telehealth.domain import withdrawal
from telehealth.domain.actor import Actor
from telehealth.domain.booking import Booking
from telehealth.domain.study import SiteZones, no_study_zones
from telehealth.domain.windows import within
from telehealth.service import audited, slots, visit_events


@dataclass(frozen=True)
class Policy:
    """How bookings are made: slot length, room links, and each site's clock (`zones`: a
    declared study's sites have theirs in the study file)."""

    slot_minutes: int
    video_base_url: str
    zones: SiteZones = no_study_zones
    # Whether a study gates video visits on the participant's telehealth consent (its
    # file enables the consent module; decision 0080).
    consent_gated: Callable[[str], bool] = lambda _study: False
    # Whether it pauses them once a re-consent deadline has passed unsigned (0088).
    consent_pauses: Callable[[str], bool] = lambda _study: False

    def room_url(self, token: str | None) -> str | None:
        return None if token is None else f"{self.video_base_url.rstrip('/')}/{token}"


def _not_found(what: str, ident: object) -> Refused:
    return Refused(Kind.NOT_FOUND, f"unknown_{what}", f"no {what} {ident} at your site")


async def _bookable_staff(conn: DbConnection, staff_id: str, site_id: str) -> dict[str, Any]:
    member = await repository.staff(conn, staff_id)
    if member is None or member["site_id"] != site_id:
        message = f"no staff member '{staff_id}' at site '{site_id}'"
        raise about_field(Kind.INVALID, "unknown_staff", message, "staff_id", "not of this site")
    return member


async def _check_time(
    conn: DbConnection,
    visit: Visit,
    staff_id: str,
    starts_at: datetime,
    deviation_reason: str | None,
    policy: Policy,
    now: datetime,
) -> datetime:
    """The slot must be offered by that staff member, in the future, and inside the
    visit's window unless the booking is an accepted, reasoned deviation."""
    ends_at = starts_at + timedelta(minutes=policy.slot_minutes)
    if starts_at <= now:
        message = "a visit can only be booked in the future"
        raise about_field(
            Kind.INVALID, "in_the_past", message, "starts_at", "must be in the future"
        )
    offered = await slots.offered(
        conn,
        visit.site_id,
        starts_at,
        ends_at,
        policy.slot_minutes,
        [staff_id],
        study_id=visit.study_id,
        zones=policy.zones,
    )
    if not any(s.starts_at == starts_at for s in offered):
        message = f"{staff_id} does not offer a {policy.slot_minutes}-minute slot at {starts_at.isoformat()}"
        raise about_field(
            Kind.INVALID, "not_an_available_slot", message, "starts_at", "not one of their slots"
        )
    w0, w1 = visit.window_start, visit.window_end
    if not within(starts_at, ends_at, w0, w1) and not deviation_reason:
        message = (
            f"{visit.name} must take place between {w0.isoformat()} and {w1.isoformat()}; "
            "to book outside it, send deviation_reason"
        )
        raise about_field(
            Kind.INVALID,
            "outside_window",
            message,
            "starts_at",
            "outside the protocol window",
            window_start=w0.isoformat(),
            window_end=w1.isoformat(),
        )
    return ends_at


@dataclass(frozen=True)
class Visit:
    """What the slot check needs of a visit."""

    site_id: str
    name: str
    window_start: datetime
    window_end: datetime
    study_id: str  # the participant's: whose study file may set the site's timezone


def withdrawn(at: datetime) -> Refused:
    return Refused(Kind.CONFLICT, withdrawal.REFUSED, withdrawal.refusal(at))


async def _refuse_if_withdrawn(conn: DbConnection, actor: Actor, visit_id: UUID) -> None:
    """Share-locks the visit's participant before the visit is locked (the order a
    withdrawal takes): a withdrawal being recorded waits for this booking and then cancels
    it, or has committed and this booking is refused."""
    participant_id = await repository.participant_of_visit(conn, visit_id)
    if participant_id is None:
        raise _not_found("visit", visit_id)
    who = await repository.share_participant(conn, participant_id)
    if who is None or not actor.at(who["site_id"], who["study_id"]):
        raise _not_found("visit", visit_id)
    if who["withdrawn_at"] is not None:
        raise withdrawn(who["withdrawn_at"])


async def withdrawal_of_booking(conn: DbConnection, booking_id: UUID) -> datetime | None:
    """Share-locks the booking's participant before the booking is locked (the order a
    withdrawal takes) and returns their withdrawal time as committed now. The booking
    row's own join may be older: a withdrawal this transaction waited for is seen here."""
    found = await repository.get_booking(conn, booking_id)
    if found is None:
        return None
    who = await repository.share_participant(conn, found.participant_id)
    return None if who is None else who["withdrawn_at"]


def _slot_taken(staff_id: str, starts_at: datetime) -> Refused:
    message = f"{staff_id} is already booked at {starts_at.isoformat()}; choose another slot"
    detail = "overlaps another booking of this staff member"
    return about_field(Kind.CONFLICT, "slot_taken", message, "starts_at", detail)


async def book(
    pool: asyncpg.Pool,
    actor: Actor,
    visit_id: UUID,
    staff_id: str,
    starts_at: datetime,
    deviation_reason: str | None,
    policy: Policy,
    now: datetime,
) -> dict[str, Any]:
    booking_id = uuid4()
    try:
        async with pool.acquire() as conn, conn.transaction():
            await _refuse_if_withdrawn(conn, actor, visit_id)
            visit = await repository.lock_visit(conn, visit_id)
            if visit is None or not actor.at(visit["site_id"], visit["study_id"]):
                raise _not_found("visit", visit_id)
            if visit["status"] != "open":
                raise Refused(
                    Kind.CONFLICT, "visit_not_bookable", f"the visit is {visit['status']}, not open"
                )
            if visit["visit_type"] == VisitType.VIDEO and policy.consent_gated(visit["study_id"]):
                participant = visit["participant_id"]
                await consent_gate.require(
                    conn,
                    participant,
                    ConsentScope.TELEHEALTH,
                    starts_at,
                    pause_after_deadline=policy.consent_pauses(visit["study_id"]),
                )
            member = await _bookable_staff(conn, staff_id, visit["site_id"])
            window = Visit(
                visit["site_id"],
                visit["name"],
                visit["window_start"],
                visit["window_end"],
                visit["study_id"],
            )
            ends_at = await _check_time(
                conn, window, staff_id, starts_at, deviation_reason, policy, now
            )
            token = secrets.token_urlsafe(24) if visit["visit_type"] == VisitType.VIDEO else None
            await repository.insert_booking(
                conn,
                booking_id=booking_id,
                visit_id=visit_id,
                staff=member,
                starts_at=starts_at,
                ends_at=ends_at,
                status="booked",
                room_token=token,
                deviation_reason=deviation_reason,
                created_by=actor.actor,
                now=now,
            )
            await repository.set_visit_status(conn, visit_id, "booked")
            row = await repository.get_booking(conn, booking_id)
            assert row is not None
            await visit_events.emit(conn, [visit_events.from_booking(row, VisitStatus.SCHEDULED)])
            await audited.booking_changed(
                conn, actor, "booking.booked", None, row, deviation_reason
            )
    except asyncpg.ExclusionViolationError:
        raise _slot_taken(staff_id, starts_at) from None
    except asyncpg.UniqueViolationError:
        raise Refused(
            Kind.CONFLICT, "visit_already_booked", "this visit already has a booking"
        ) from None
    return present(row, policy)


async def _locked(conn: DbConnection, actor: Actor, booking_id: UUID, *allowed: str) -> Booking:
    row = await repository.lock_booking(conn, booking_id)
    if row is None or not actor.at(row.site_id, row.study_id):
        raise _not_found("booking", booking_id)
    if row.status not in allowed:
        raise Refused(Kind.CONFLICT, "invalid_transition", f"the booking is {row.status}")
    return row


async def reschedule(
    pool: asyncpg.Pool,
    actor: Actor,
    booking_id: UUID,
    starts_at: datetime,
    staff_id: str | None,
    reason: str,
    deviation_reason: str | None,
    policy: Policy,
    now: datetime,
) -> dict[str, Any]:
    try:
        async with pool.acquire() as conn, conn.transaction():
            left_at = await withdrawal_of_booking(conn, booking_id)
            row = await _locked(conn, actor, booking_id, "booked")
            if left_at is not None:  # only a booking from before it is left
                raise withdrawn(left_at)
            target = staff_id or row.staff_id
            member = await _bookable_staff(conn, target, row.site_id)
            visit = Visit(
                row.site_id, row.visit_name, row.window_start, row.window_end, row.study_id
            )
            ends_at = await _check_time(
                conn, visit, target, starts_at, deviation_reason, policy, now
            )
            await repository.move(
                conn, booking_id, starts_at, ends_at, member, reason, deviation_reason, now
            )
            moved = await repository.get_booking(conn, booking_id)
            assert moved is not None
            await visit_events.emit(
                conn, [visit_events.from_booking(moved, VisitStatus.RESCHEDULED)]
            )
            await audited.booking_changed(conn, actor, "booking.rescheduled", row, moved, reason)
    except asyncpg.ExclusionViolationError:
        raise _slot_taken(target, starts_at) from None
    return present(moved, policy)


_OUTCOMES = {
    # action: (booking statuses allowed, new booking status, new visit status, event status)
    "cancel": (("booked",), "cancelled", "open", VisitStatus.CANCELLED),
    "complete": (("booked",), "completed", "completed", VisitStatus.COMPLETED),
    "no-show": (("booked",), "no-show", "open", VisitStatus.NO_SHOW),
}


async def finish(
    pool: asyncpg.Pool,
    actor: Actor,
    booking_id: UUID,
    action: str,
    reason: str | None,
    policy: Policy,
    now: datetime,
) -> dict[str, Any]:
    """Cancel (the visit can be booked again), complete, or record a no-show (ditto)."""
    allowed, booking_status, visit_status, event_status = _OUTCOMES[action]
    async with pool.acquire() as conn, conn.transaction():
        left_at = await withdrawal_of_booking(conn, booking_id)
        row = await _locked(conn, actor, booking_id, *allowed)
        if action != "cancel" and row.starts_at > now:
            raise Refused(Kind.CONFLICT, "not_started", "the visit has not started yet")
        if row.sequence == 0 and visit_status == "open":
            visit_status = "cancelled"  # an urgent visit is not rebooked
        if row.visit_status == "missed" and visit_status == "open":
            visit_status = "missed"  # the window has closed meanwhile
        await repository.set_status(conn, booking_id, booking_status, reason)
        if (
            visit_status == "open"
            and left_at is not None
            and withdrawal.closes_open_visit(row.window_end, left_at)
        ):
            # Nobody can book it again, and the scheduler does not count a window the
            # withdrawal cut short as missed: closed as the withdrawal closes open visits.
            await repository.cancel_visits(conn, [row.visit_id], withdrawal.REASON)
        else:
            await repository.set_visit_status(conn, row.visit_id, visit_status)
        done = await repository.get_booking(conn, booking_id)
        assert done is not None
        await visit_events.emit(conn, [visit_events.from_booking(done, event_status)])
        await audited.booking_changed(conn, actor, f"booking.{booking_status}", row, done, reason)
    return present(done, policy)


def present(b: Booking, policy: Policy, **extra: object) -> dict[str, Any]:
    """A booking as the API shows it: the room token only as part of the room URL."""
    return {**b.shown(), "room_url": policy.room_url(b.room_token), **extra}
