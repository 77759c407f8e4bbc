"""What ePRO's consumer groups do: enrolments and withdrawals assign (their study's) or stop
schedules; completed visits anchor visit-relative schedules."""

from __future__ import annotations

from collections.abc import Sequence

from trialstream.erasure import follow_erasures
from trialstream.events.consents import ConsentState
from trialstream.events.participants import ParticipantState
from trialstream.events.topics import Topic
from trialstream.events.visits import VisitChanged, VisitStatus
from trialstream.runtime import Runtime
from trialstream.studies import Module

from epro import consent, erasure, service
from epro.assignments import ScheduleSource
from epro.service_info import GROUPS, SERVICE

# v2 since withdrawal is acted on (decision 0014): a new group reads the compacted topic
# from the start once, so withdrawals published before the upgrade take effect too.
# Idempotent: schedules already assigned stay, site and timezone are re-stated.
PARTICIPANTS_GROUP = GROUPS["participants"].name
VISITS_GROUP = GROUPS["visits"].name


def subscribe(runtime: Runtime, source: ScheduleSource) -> None:
    async def on_participants(events: Sequence[ParticipantState]) -> None:
        ours = runtime.studies.of_module(events, Module.EPRO)  # others' studies: skipped
        schedules = await source.by_study(runtime.pool, (e.study_id for e in ours))
        await service.participants_enrolled(runtime.pool, ours, schedules)

    async def on_visits(events: Sequence[VisitChanged]) -> None:
        done = [e for e in events if e.status is VisitStatus.COMPLETED]
        if done:
            rows = [(e.participant_id, e.visit_id, e.starts_at or e.occurred_at) for e in done]
            await service.visits_completed(runtime.pool, rows)

    runtime.subscribe(Topic.PARTICIPANTS, ParticipantState, PARTICIPANTS_GROUP, on_participants)

    async def on_consents(events: Sequence[ConsentState]) -> None:
        await consent.consents_changed(runtime.pool, events)

    runtime.subscribe(Topic.VISITS, VisitChanged, VISITS_GROUP, on_visits)
    runtime.subscribe(Topic.CONSENTS, ConsentState, GROUPS["consents"].name, on_consents)
    follow_erasures(runtime, SERVICE.name, GROUPS["erasures"].name, erasure.erase)  # 0086
