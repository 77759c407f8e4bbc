"""High-severity alert -> an urgent video visit proposed at the site's earliest free slot.

The proposal holds the slot (a booking in status `proposed`, covered by the exclusion
constraint) so nobody else takes it before staff confirm or dismiss it. A participant has
one urgent visit ahead at a time: a further alert meanwhile is recorded as
`already_proposed` against it, so one participant cannot fill a site's calendar. A withdrawn
participant gets no proposal (decision 0025): the alert is recorded as
`participant_withdrawn` and logged with the pseudonymous id only.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import structlog
from trialstream.db import DbConnection
from trialstream.errors import Kind, Refused
from trialstream.events.alerts import AlertRaised, Severity
from trialstream.events.topics import Topic
from trialstream.events.visits import UrgentVisitProposed, VisitStatus, VisitType
from trialstream.outbox import enqueue

from telehealth import repository
from telehealth.domain.actor import Actor
from telehealth.service import audited, slots, visit_events
from telehealth.service.booking import Policy, present, withdrawal_of_booking, withdrawn

log = structlog.get_logger(__name__)


async def on_alerts(
    pool: asyncpg.Pool,
    alerts: Sequence[AlertRaised],
    policy: Policy,
    horizon: timedelta,
    now: datetime,
) -> None:
    for alert in alerts:
        if alert.severity is Severity.HIGH:
            async with pool.acquire() as conn, conn.transaction():
                await _propose(conn, alert, policy, horizon, now)


async def _propose(
    conn: DbConnection, alert: AlertRaised, policy: Policy, horizon: timedelta, now: datetime
) -> None:
    if not await repository.claim_alert(conn, alert.event_id, alert.participant_id, now):
        return  # this alert was handled before
    await propose(conn, alert.event_id, alert.participant_id, policy, horizon, now)


Audits = list[Callable[[], Awaitable[object]]]


async def retry_waiting(
    conn: DbConnection,
    participant_id: str,
    policy: Policy,
    horizon: timedelta,
    now: datetime,
    audits: Audits | None = None,
) -> None:
    """Alerts and enrolments travel on different topics: an alert may come first. When
    the participant arrives, alerts that waited for it (within the horizon) are proposed.
    `audits`: where to queue the audit entries, for a caller that writes them last."""
    for alert_id in await repository.waiting_alerts(conn, participant_id, now - horizon):
        await propose(conn, alert_id, participant_id, policy, horizon, now, audits)


async def _not_proposed(
    conn: DbConnection,
    alert_id: UUID,
    participant_id: str,
    outcome: str,
    booking_id: UUID | None = None,
) -> None:
    """Record why the alert proposes nothing (a re-delivery stays handled) and say so."""
    await repository.set_alert_outcome(conn, alert_id, outcome, booking_id)
    log.info(
        "urgent visit not proposed",
        outcome=outcome,
        participant_id=participant_id,
        alert_id=str(alert_id),
    )


async def propose(
    conn: DbConnection,
    alert_id: UUID,
    participant_id: str,
    policy: Policy,
    horizon: timedelta,
    now: datetime,
    audits: Audits | None = None,
) -> None:
    """`audits`: queue the audit entry there instead of writing it now (the enrolment
    consumer writes its entries last, after every row lock, so the audit chain's lock is
    never held while it waits for the next participant's row)."""
    who = await repository.share_participant(conn, participant_id)
    if who is None:
        await repository.set_alert_outcome(conn, alert_id, "unknown_participant", None)
        log.warning("urgent visit waits for the participant's enrolment", alert_id=str(alert_id))
        return
    if who["withdrawn_at"] is not None:
        # A valid alert (perhaps for a reading measured before the withdrawal), not a dead
        # letter: recorded so a re-delivery stays handled, but nobody is called in.
        await _not_proposed(conn, alert_id, participant_id, "participant_withdrawn")
        return
    ahead = await repository.urgent_visit_ahead(conn, participant_id, now)
    if ahead is not None:
        # One urgent visit at a time: a run of alerts (several rules, one episode) must
        # not fill the site's calendar. Staff see the alerts in monitoring either way.
        await _not_proposed(conn, alert_id, participant_id, "already_proposed", ahead)
        return
    window = (now, now + horizon)
    visit_id = uuid4()
    await repository.insert_visit(
        conn, visit_id, participant_id, f"Urgent {alert_id}", "video", window, "proposed"
    )
    for slot in await slots.free_slots(
        conn,
        who["site_id"],
        now,
        now + horizon,
        policy.slot_minutes,
        study_id=who["study_id"],
        zones=policy.zones,
    ):
        member = await repository.staff(conn, slot.staff_id)
        assert member is not None
        booking_id = uuid4()
        try:
            async with conn.transaction():  # a savepoint: a lost race tries the next slot
                await repository.insert_booking(
                    conn,
                    booking_id=booking_id,
                    visit_id=visit_id,
                    staff=member,
                    starts_at=slot.starts_at,
                    ends_at=slot.ends_at,
                    status="proposed",
                    room_token=secrets.token_urlsafe(24),
                    deviation_reason=None,
                    created_by="telehealth",
                    now=now,
                )
        except asyncpg.ExclusionViolationError:
            continue
        await repository.set_alert_outcome(conn, alert_id, "proposed", booking_id)
        proposal = UrgentVisitProposed(
            participant_id=participant_id,
            study_id=who["study_id"],
            site_id=who["site_id"],
            proposal_id=booking_id,
            alert_id=alert_id,
            staff_id=slot.staff_id,
            starts_at=slot.starts_at,
            ends_at=slot.ends_at,
        )
        await enqueue(conn, Topic.VISIT_PROPOSALS, [(participant_id, proposal)])
        proposed = await repository.get_booking(conn, booking_id)
        assert proposed is not None
        why = f"high-severity alert {alert_id}"
        write = partial(
            audited.booking_changed,
            conn,
            "system:telehealth",
            "proposal.created",
            None,
            proposed,
            why,
        )
        if audits is None:
            await write()
        else:
            audits.append(write)
        return
    await repository.set_visit_status(conn, visit_id, "cancelled")
    await repository.set_alert_outcome(conn, alert_id, "no_free_slot", None)
    log.warning("urgent visit not proposed: no free slot", alert_id=str(alert_id))


async def decide(
    pool: asyncpg.Pool,
    actor: Actor,
    proposal_id: UUID,
    confirm: bool,
    note: str | None,
    policy: Policy,
    now: datetime,
) -> dict[str, Any]:
    """Confirm (the visit is scheduled) or dismiss (the slot is freed) a proposal."""
    async with pool.acquire() as conn, conn.transaction():
        left_at = await withdrawal_of_booking(conn, proposal_id)
        row = await repository.lock_booking(conn, proposal_id)
        if row is None or not actor.at(row.site_id, row.study_id) or row.sequence != 0:
            raise Refused(
                Kind.NOT_FOUND, "unknown_proposal", f"no proposal {proposal_id} at your site"
            )
        if row.status != "proposed":
            raise Refused(Kind.CONFLICT, "already_decided", f"the proposal is already {row.status}")
        if confirm:
            if left_at is not None:
                raise withdrawn(left_at)
            if row.starts_at <= now:
                raise Refused(
                    Kind.CONFLICT, "proposal_expired", "the proposed slot has passed; dismiss it"
                )
            await repository.confirm(conn, proposal_id, now)
            await repository.set_visit_status(conn, row.visit_id, "booked")
        else:
            await repository.set_status(conn, proposal_id, "dismissed", note)
            await repository.set_visit_status(conn, row.visit_id, "cancelled")
        done = await repository.get_booking(conn, proposal_id)
        assert done is not None
        if confirm:
            event = visit_events.from_booking(done, VisitStatus.SCHEDULED, "urgent visit")
            await visit_events.emit(conn, [event])
        action = "proposal.confirmed" if confirm else "proposal.dismissed"
        await audited.booking_changed(conn, actor, action, row, done, note)
    assert done.visit_type == VisitType.VIDEO
    return present(done, policy)
