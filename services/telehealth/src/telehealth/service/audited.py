"""Telehealth's entries in the hash-chained audit trail (trialstream.audit): bookings,
proposals, availability, baselines, staff, sites and calendar feeds. Each is written in
the transaction of its change, as that transaction's last write."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from trialstream import audit
from trialstream.db import DbConnection
from trialstream.identity import DEFAULT_STUDY
from trialstream.staff import audited_as

from telehealth.domain.actor import Actor
from telehealth.domain.availability import Hours, WeeklyHours
from telehealth.domain.booking import Booking

# A person (named with their role), or a system actor such as `system:telehealth`.
By = Actor | str


def _by(by: By, study_id: str = DEFAULT_STUDY) -> dict[str, Any]:
    """A person: `actor` and `actor_detail` as every service writes them (name, and the role
    in `study_id`: a booking's participant's study; for a site's own resources, which are
    of no one study, trialstream.staff names the roles the grants give); a system actor:
    its name only."""
    if isinstance(by, Actor):
        return audited_as(by.principal, study_id)
    return {"actor": by}


async def booking_changed(
    conn: DbConnection,
    actor: By,
    action: str,
    before: Booking | None,
    after: Booking,
    reason: str | None,
) -> None:
    """A booking change. A reason a person typed (reschedule, cancellation, deviation,
    note: free text about the participant) is erasable, the chain keeping a salted digest
    (decision 0087); a system's reason (a fixed text with ids) stays in the chain."""
    typed = reason if isinstance(actor, Actor) else None
    await audit.record(
        conn,
        **_by(actor, after.study_id),
        action=action,
        entity="booking",
        entity_id=str(after.booking_id),
        old=None if before is None else before.audited(),
        new=after.audited(),
        reason=None if typed is not None else reason,
        erasable_reason=typed,
        subject=after.participant_id if typed is not None else None,
    )


def weekly(hours: Sequence[WeeklyHours]) -> list[list[Any]]:
    return sorted([h.weekday, h.hours.start.isoformat(), h.hours.end.isoformat()] for h in hours)


def day(hours: Sequence[Hours] | None) -> list[list[str]] | None:
    """None: no exception (weekly hours apply); []: the day off."""
    if hours is None:
        return None
    return sorted([h.start.isoformat(), h.end.isoformat()] for h in hours)


async def availability_changed(
    conn: DbConnection,
    actor: By,
    staff_id: str,
    on: date | None,
    before: audit.Value,
    after: audit.Value,
) -> None:
    """Weekly hours (on=None) or one date's exception; after=None removes the exception."""
    if on is None:
        action, what = "availability.weekly_hours_set", "weekly"
    else:
        action = "availability.exception_removed" if after is None else "availability.exception_set"
        what = on.isoformat()
    await audit.record(
        conn,
        **_by(actor),
        action=action,
        entity="staff_availability",
        entity_id=f"{staff_id}/{what}",
        old=before,
        new=after,
    )


async def changed(
    conn: DbConnection,
    actor: By,
    action: str,
    entity: str,
    entity_id: str,
    before: audit.Value,
    after: audit.Value,
) -> None:
    """Any other telehealth record: staff, site, participant baseline, calendar feed."""
    await audit.record(
        conn, **_by(actor), action=action, entity=entity, entity_id=entity_id, old=before, new=after
    )
