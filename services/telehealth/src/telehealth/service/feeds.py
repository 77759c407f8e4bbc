"""Calendar feeds: a staff member's or a participant's bookings as iCalendar."""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg

from telehealth import repository
from telehealth.domain.booking import Booking
from telehealth.domain.ical import CalendarEvent, render
from telehealth.service.booking import Policy

SHOWN = ("booked", "completed", "no-show", "cancelled")
PAST, FUTURE = timedelta(days=90), timedelta(days=400)


def _event(b: Booking, for_staff: bool, policy: Policy) -> CalendarEvent:
    what = f"{b.visit_name} ({b.visit_type} visit)"
    room = policy.room_url(b.room_token) if b.status == "booked" else None
    details = [f"Status: {b.status}"]
    if room:
        details.append(f"Join: {room}")
    return CalendarEvent(
        uid=f"{b.booking_id}@telehealth.trialstream",
        starts_at=b.starts_at,
        ends_at=b.ends_at,
        summary=f"{what} with {b.participant_id}" if for_staff else what,
        description="\n".join(details),
        url=room,
        cancelled=b.status == "cancelled",
        sequence=b.revision,  # grows with every change, so calendar apps update
    )


async def calendar_for(
    pool: asyncpg.Pool, owner: tuple[str, str], policy: Policy, now: datetime
) -> str:
    kind, owner_id = owner
    for_staff = kind == "staff"
    rows = await repository.in_range(
        pool,
        now - PAST,
        now + FUTURE,
        staff_id=owner_id if for_staff else None,
        participant_id=None if for_staff else owner_id,
        statuses=SHOWN,
    )
    name = f"Visits: {owner_id}"
    return render(name, [_event(r, for_staff, policy) for r in rows], now)
