"""Enrolment: each new participant gets the protocol's visit schedule; staff may move the baseline."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg
import structlog
from trialstream.events.participants import ParticipantEnrolled
from trialstream.inbox import claim_new

from telehealth import audited, repository, urgent
from telehealth.booking import Policy
from telehealth.errors import Kind, Refused
from telehealth.windows import ProtocolVisit, UnknownTimezone, local_date, plan_schedule, zone

log = structlog.get_logger(__name__)
CONSUMER = "telehealth-participants"


def _timezone_or_utc(name: str, participant_id: str) -> str:
    try:
        zone(name)
    except UnknownTimezone:
        log.warning("unknown participant timezone, using UTC", participant_id=participant_id)
        return "UTC"
    return name


async def on_enrolled(
    pool: asyncpg.Pool,
    events: Sequence[ParticipantEnrolled],
    protocol: Sequence[ProtocolVisit],
    urgent_policy: tuple[Policy, timedelta],
    now: datetime,
) -> None:
    """Upsert site and timezone; the first enrolment fixes the baseline (the enrolment's
    local date) and plans the visits, and alerts that arrived first get their proposal.
    Redelivery and compaction replays change nothing."""
    async with pool.acquire() as conn, conn.transaction():
        fresh = await claim_new(conn, CONSUMER, [e.event_id for e in events])
        for event in events:
            if event.event_id not in fresh:
                continue
            tz_name = _timezone_or_utc(event.timezone, event.participant_id)
            tz = zone(tz_name)
            baseline, created = await repository.upsert_participant(
                conn,
                event.participant_id,
                event.site_id,
                tz_name,
                local_date(event.occurred_at, tz),
            )
            if created:
                planned = plan_schedule(baseline, list(protocol), tz)
                await repository.insert_visits(conn, event.participant_id, planned)
                await urgent.retry_waiting(conn, event.participant_id, *urgent_policy, now)
                await audited.changed(
                    conn,
                    "system:telehealth",
                    "visits.planned",
                    "participant",
                    event.participant_id,
                    None,
                    {
                        "baseline_date": baseline,
                        "visits": [[v.name, v.window_start, v.window_end] for v in planned],
                    },
                )


async def set_baseline(
    pool: asyncpg.Pool,
    site_id: str,
    participant_id: str,
    baseline: date,
    protocol: Sequence[ProtocolVisit],
    actor: str,
) -> list[dict[str, Any]]:
    """Re-plan the windows from a new baseline, only while no visit has been booked or held."""
    async with pool.acquire() as conn, conn.transaction():
        who = await repository.participant(conn, participant_id, lock=True)
        if who is None or who["site_id"] != site_id:
            raise Refused(
                Kind.NOT_FOUND,
                "unknown_participant",
                f"no participant {participant_id} at your site",
            )
        visits = await repository.visits_of(conn, participant_id)
        started = [v["name"] for v in visits if v["status"] != "open"]
        if started:
            raise Refused(
                Kind.CONFLICT,
                "schedule_in_progress",
                f"the baseline cannot move once visits are booked or closed: {', '.join(started)}",
            )
        await repository.set_baseline(conn, participant_id, baseline)
        planned = plan_schedule(baseline, list(protocol), zone(who["timezone"]))
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
