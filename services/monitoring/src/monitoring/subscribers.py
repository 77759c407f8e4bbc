"""The subscribers: alerts, episode ends and enrolments for the inbox; reading summaries,
ePRO and visits for the participant timeline; and the low-volume streams risk-based
monitoring (rbm/) needs, in one group. Monitoring never reads each reading: ingest's
summaries (one per participant per upload, decision 0093) carry the 5-minute rollups and
each device's series ends and steep changes, and each batch of them feeds the timeline
rollups and the risk-based monitoring flags."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from trialstream.erasure import follow_erasures
from trialstream.events.alerts import AlertEpisodeEnded, AlertRaised
from trialstream.events.base import Event
from trialstream.events.epro import QuestionnaireDue, QuestionnaireMissed, ResponseSubmitted
from trialstream.events.participants import ParticipantState
from trialstream.events.readings import ReadingsSummarised
from trialstream.events.topics import Topic
from trialstream.events.visits import VisitChanged
from trialstream.runtime import Runtime

from monitoring import erasure, repository, timeline
from monitoring.rbm import service as rbm
from monitoring.rbm.flags import FlagRules
from monitoring.rbm.service import DEFAULT_RULES, process_summaries_for_rbm
from monitoring.service_info import GROUPS, SERVICE
from monitoring.timeline_readings import record_rollups_for_timeline

ALERTS_GROUP = GROUPS["alerts"].name
PARTICIPANTS_GROUP = GROUPS["participants"].name
EPISODES_GROUP = GROUPS["episodes_ended"].name
SUMMARIES_GROUP = GROUPS["reading_summaries"].name
EPRO_RESPONSES_GROUP = GROUPS["epro_responses"].name
EPRO_MISSED_GROUP = GROUPS["epro_missed"].name
VISITS_GROUP = GROUPS["visits"].name
# The low-volume streams KRIs and flags need share one group: one join at start-up, not five.
STREAMS_GROUP = GROUPS["rbm_streams"].name
STREAMS: dict[Topic, type[Event]] = {
    Topic.PARTICIPANTS: ParticipantState,
    Topic.EPRO_DUE: QuestionnaireDue,
    Topic.EPRO_MISSED: QuestionnaireMissed,
    Topic.EPRO_RESPONSES: ResponseSubmitted,
    Topic.VISITS: VisitChanged,
}


def subscribe(runtime: Runtime, rbm_rules: FlagRules = DEFAULT_RULES) -> None:
    async def on_alerts(alerts: Sequence[AlertRaised]) -> None:
        await repository.insert_alerts(runtime.pool, alerts)

    async def on_episodes_ended(events: Sequence[AlertEpisodeEnded]) -> None:
        await repository.end_episodes(runtime.pool, events)

    async def on_participants(events: Sequence[ParticipantState]) -> None:
        await repository.upsert_participants(runtime.pool, events)

    async def on_summaries(summaries: Sequence[ReadingsSummarised]) -> None:
        # Two transactions, each idempotent on redelivery: a retry after the first
        # committed changes nothing there and completes the second.
        async with runtime.pool.acquire() as conn:
            async with conn.transaction():
                await record_rollups_for_timeline(conn, summaries)
            await process_summaries_for_rbm(conn, summaries, rbm_rules)

    async def on_responses(events: Sequence[ResponseSubmitted]) -> None:
        await timeline.record_events(runtime.pool, [timeline.response_row(e) for e in events])

    async def on_missed(events: Sequence[QuestionnaireMissed]) -> None:
        await timeline.record_events(runtime.pool, [timeline.missed_row(e) for e in events])

    async def on_visits(events: Sequence[VisitChanged]) -> None:
        await timeline.record_events(runtime.pool, [timeline.visit_row(e) for e in events])

    runtime.subscribe(Topic.ALERTS, AlertRaised, ALERTS_GROUP, on_alerts)
    runtime.subscribe(
        Topic.ALERT_EPISODES_ENDED, AlertEpisodeEnded, EPISODES_GROUP, on_episodes_ended
    )
    runtime.subscribe(Topic.PARTICIPANTS, ParticipantState, PARTICIPANTS_GROUP, on_participants)
    runtime.subscribe(Topic.READING_SUMMARIES, ReadingsSummarised, SUMMARIES_GROUP, on_summaries)
    runtime.subscribe(Topic.EPRO_RESPONSES, ResponseSubmitted, EPRO_RESPONSES_GROUP, on_responses)
    runtime.subscribe(Topic.EPRO_MISSED, QuestionnaireMissed, EPRO_MISSED_GROUP, on_missed)
    runtime.subscribe(Topic.VISITS, VisitChanged, VISITS_GROUP, on_visits)

    async def on_rbm_streams(events: Sequence[Event]) -> None:
        # participants first: a batch may hold an enrolment and that participant's events
        async with runtime.pool.acquire() as conn:
            await rbm.apply_participants(conn, _of(events, ParticipantState))
            await rbm.apply_epro_occurrences(
                conn, _of(events, (QuestionnaireDue, QuestionnaireMissed))
            )
            await rbm.apply_epro_responses(conn, _of(events, ResponseSubmitted), rbm_rules)
            await rbm.apply_visits(conn, _of(events, VisitChanged))

    runtime.subscribe(STREAMS, Event, STREAMS_GROUP, on_rbm_streams)
    follow_erasures(runtime, SERVICE.name, GROUPS["erasures"].name, erasure.erase)  # 0086


T = TypeVar("T", bound=Event)


def _of(events: Sequence[Event], kind: type[T] | tuple[type[T], ...]) -> list[T]:
    return [e for e in events if isinstance(e, kind)]
