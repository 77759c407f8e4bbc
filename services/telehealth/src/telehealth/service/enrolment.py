"""Enrolment: each new participant gets their visit schedule (their study's visits, or for
the default study TELEHEALTH_PROTOCOL), fixed at enrolment; staff may move the baseline; a
withdrawal cancels what was booked after it (decision 0025)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any

import asyncpg
import structlog
from trialstream.db import DbConnection
from trialstream.errors import Kind, Refused
from trialstream.events.participants import ParticipantState
from trialstream.events.visits import VisitStatus
from trialstream.inbox import claim_new
from trialstream.studies import StudyDefinition

from telehealth import repository
from telehealth.domain import withdrawal
from telehealth.domain.actor import Actor
from telehealth.domain.study import Plan
from telehealth.domain.windows import (
    ProtocolVisit,
    UnknownTimezone,
    local_date,
    plan_schedule,
    zone,
)
from telehealth.service import audited, urgent, visit_events
from telehealth.service.booking import Policy

log = structlog.get_logger(__name__)
# v2 since withdrawal is acted on (decision 0025): old withdrawals were claimed in the inbox
# under the old name and ignored; under the new one the group's first read of the
# compacted topic applies them. Replaying a known participant changes nothing else.
CONSUMER = "telehealth-participants-v2"
SYSTEM = "system:telehealth"
StudyOf = Callable[[str], StudyDefinition | None]


def _no_study_file(study_id: str) -> StudyDefinition | None:
    return None


def _timezone_or_utc(name: str, participant_id: str) -> str:
    try:
        zone(name)
    except UnknownTimezone:
        log.warning("unknown participant timezone, using UTC", participant_id=participant_id)
        return "UTC"
    return name


async def on_enrolled(
    pool: asyncpg.Pool,
    events: Sequence[ParticipantState],
    protocol: Sequence[ProtocolVisit],
    urgent_policy: tuple[Policy, timedelta],
    now: datetime,
    study_of: StudyOf = _no_study_file,
) -> None:
    """Upsert site and timezone; the first enrolment fixes the baseline (the enrolment's
    local date) and plans the visits - from the study file's visits as `study_of` has
    them now (the registry), or `protocol` for the default study - and alerts that
    arrived first get their proposal.
    A withdrawal stops what was booked after it (decision 0025). Redelivery and compaction
    replays change nothing. Audit entries are written last: the audit lock is then the
    transaction's last wait, after every row lock."""
    audits: list[Callable[[], Awaitable[object]]] = []
    async with pool.acquire() as conn, conn.transaction():
        fresh = await claim_new(conn, CONSUMER, [e.event_id for e in events])
        for event in events:
            if event.event_id in fresh:
                # The consumer has made sure every study named is known here (of_module):
                # None is the default study, which has no file and uses `protocol`.
                plan = Plan.of_study(event.study_id, study_of(event.study_id))
                await _apply(conn, event, plan, protocol, urgent_policy, now, audits)
        for write in audits:
            await write()


async def _apply(
    conn: DbConnection,
    event: ParticipantState,
    plan: Plan,
    protocol: Sequence[ProtocolVisit],
    urgent_policy: tuple[Policy, timedelta],
    now: datetime,
    audits: list[Callable[[], Awaitable[object]]],
) -> None:
    participant_id = event.participant_id
    tz_name = _timezone_or_utc(event.timezone, participant_id)
    tz = zone(tz_name)
    known = await repository.participant(conn, participant_id, lock=True)
    before = None if known is None else known["withdrawn_at"]
    after = event.earliest_withdrawal(before)
    baseline, created = await repository.upsert_participant(
        conn,
        participant_id,
        event.site_id,
        tz_name,
        local_date(event.occurred_at, tz),
        after,
        plan,
    )
    if created and after is None:
        planned = plan_schedule(baseline, plan.protocol(protocol), tz)
        await repository.insert_visits(conn, participant_id, planned)
        new: dict[str, Any] = {
            "baseline_date": baseline,
            "visits": [[v.name, v.window_start, v.window_end] for v in planned],
        }
        if plan.visits is not None:  # the default study's entry stays as it always was
            new["planned_from"] = f"study file of {plan.study_id}"
        audits.append(
            partial(
                audited.changed,
                conn,
                SYSTEM,
                "visits.planned",
                "participant",
                participant_id,
                None,
                new,
            )
        )
    if created:  # alerts that waited for the participant: proposed, or not if withdrawn
        await urgent.retry_waiting(conn, participant_id, *urgent_policy, now, audits)
    if after is not None and withdrawal.is_news(before, after):
        await _stop_at_withdrawal(conn, participant_id, after, audits)


async def _stop_at_withdrawal(
    conn: DbConnection,
    participant_id: str,
    at: datetime,
    audits: list[Callable[[], Awaitable[object]]],
) -> None:
    """Cancel what was booked to start after the withdrawal (and publish it, so other
    services and calendars learn of it), dismiss such proposals, and close the open
    visits the withdrawal cut short. Everything earlier is history and stays."""
    reason = withdrawal.REASON
    stopped: dict[str, list[str]] = {"cancelled": [], "dismissed": []}
    for row in await repository.lock_pending_of(conn, participant_id):
        if not withdrawal.stops_booking(row.starts_at, at):
            continue
        status = "cancelled" if row.status == "booked" else "dismissed"
        await repository.set_status(conn, row.booking_id, status, reason)
        await repository.cancel_visits(conn, [row.visit_id], reason)
        done = await repository.get_booking(conn, row.booking_id)
        assert done is not None
        if status == "cancelled":
            event = visit_events.from_booking(done, VisitStatus.CANCELLED, reason)
            await visit_events.emit(conn, [event])
        action = "booking.cancelled" if status == "cancelled" else "proposal.dismissed"
        audits.append(partial(audited.booking_changed, conn, SYSTEM, action, row, done, reason))
        stopped[status].append(str(row.booking_id))
    cut_short = [
        v
        for v in await repository.visits_of(conn, participant_id)
        if v["status"] == "open" and withdrawal.closes_open_visit(v["window_end"], at)
    ]
    closed = await repository.cancel_visits(conn, [v["visit_id"] for v in cut_short], reason)
    cut_short = [v for v in cut_short if v["visit_id"] in closed]  # not those missed meanwhile
    new = {
        "withdrawn_at": at,
        "bookings_cancelled": stopped["cancelled"],
        "proposals_dismissed": stopped["dismissed"],
        "open_visits_cancelled": [v["name"] for v in cut_short],
    }
    audits.append(
        partial(
            audited.changed,
            conn,
            SYSTEM,
            "visits.stopped_by_withdrawal",
            "participant",
            participant_id,
            None,
            new,
        )
    )
    log.info(
        "visits stopped: participant withdrew",
        participant_id=participant_id,
        bookings_cancelled=len(stopped["cancelled"]),
        proposals_dismissed=len(stopped["dismissed"]),
        open_visits_cancelled=len(cut_short),
    )


async def set_baseline(
    pool: asyncpg.Pool,
    actor: Actor,
    participant_id: str,
    baseline: date,
    protocol: Sequence[ProtocolVisit],
) -> list[dict[str, Any]]:
    """Re-plan the windows from a new baseline, only while no visit has been booked or held:
    from the visits the participant was planned from at enrolment (their study's, as it
    was then), or `protocol` for the default study."""
    async with pool.acquire() as conn, conn.transaction():
        who = await repository.participant(conn, participant_id, lock=True)
        if who is None or not actor.at(who["site_id"], who["study_id"]):
            raise Refused(
                Kind.NOT_FOUND,
                "unknown_participant",
                f"no participant {participant_id} at your site",
            )
        if who["withdrawn_at"] is not None:
            refusal = withdrawal.refusal(who["withdrawn_at"])
            raise Refused(Kind.CONFLICT, withdrawal.REFUSED, refusal)
        visits = await repository.visits_of(conn, participant_id)
        started = [v["name"] for v in visits if v["status"] != "open"]
        if started:
            raise Refused(
                Kind.CONFLICT,
                "schedule_in_progress",
                f"the baseline cannot move once visits are booked or closed: {', '.join(started)}",
            )
        await repository.set_baseline(conn, participant_id, baseline)
        plan = Plan.from_stored(who["study_id"], who["protocol"])
        planned = plan_schedule(baseline, plan.protocol(protocol), zone(who["timezone"]))
        await repository.replan_open_visits(conn, participant_id, planned)
        replanned = await repository.visits_of(conn, participant_id)
        await audited.changed(
            conn,
            actor,
            "participant.baseline_set",
            "participant",
            participant_id,
            {"baseline_date": who["baseline_date"]},
            {"baseline_date": baseline},
        )
        return replanned
