"""Thin subscribers: the epro, visit and reminder triggers, enrolments and withdrawals, and
readings (in large batches); each declared group of service_info.GROUPS and its use case."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from trialstream.erasure import follow_erasures
from trialstream.events.consents import ConsentState
from trialstream.events.epro import QuestionnaireDue, QuestionnaireMissed, ResponseSubmitted
from trialstream.events.participants import ParticipantState
from trialstream.events.readings import ReadingsSummarised
from trialstream.events.topics import Topic
from trialstream.events.visits import VisitChanged, VisitReminderDue
from trialstream.runtime import Runtime
from trialstream.studies import Module

from retention import erasure, service
from retention.service import Clock, Policy, Step
from retention.service_info import GROUPS, SERVICE
from retention.settings import RetentionSettings

# v2 since withdrawal is acted on (decision 0034): a new group reads the compacted topic
# from the start once, so withdrawals published before the upgrade take effect too.
# Idempotent: the participant rows are re-stated.
PARTICIPANTS_GROUP = GROUPS["participants"].name
READINGS_GROUP = GROUPS["readings"].name
# topic -> (consumer group, contract, use case)
TRIGGER_GROUPS = {
    t: GROUPS[t.name.lower()].name
    for t in (
        Topic.EPRO_DUE,
        Topic.EPRO_MISSED,
        Topic.EPRO_RESPONSES,
        Topic.VISITS,
        Topic.VISIT_REMINDERS,
    )
}


def subscribe(runtime: Runtime, settings: RetentionSettings, policy: Policy, clock: Clock) -> None:
    def trigger(topic: Topic, model: type[Any], step: Step[Any]) -> None:
        group = TRIGGER_GROUPS[topic]

        async def handle(events: Sequence[Any]) -> None:
            await service.apply_events(
                runtime.pool, group, events, step, policy, clock, runtime.studies
            )

        runtime.subscribe(topic, model, group, handle, max_records=500)

    trigger(Topic.EPRO_DUE, QuestionnaireDue, service.epro_due_step(policy))
    trigger(Topic.EPRO_MISSED, QuestionnaireMissed, service.epro_missed_step(policy))
    trigger(Topic.EPRO_RESPONSES, ResponseSubmitted, service.response_step(policy))
    trigger(Topic.VISITS, VisitChanged, service.visit_step(policy))
    trigger(Topic.VISIT_REMINDERS, VisitReminderDue, service.reminder_step(policy))

    async def on_participants(events: Sequence[ParticipantState]) -> None:
        ours = runtime.studies.of_module(events, Module.RETENTION)  # others' studies: skipped
        kept = {id(e) for e in ours}
        theirs = [e for e in events if id(e) not in kept]  # remembered so as to skip them
        await service.record_elsewhere(runtime.pool, theirs)
        await service.record_enrolments(runtime.pool, ours, clock)

    async def on_readings(summaries: Sequence[ReadingsSummarised]) -> None:
        # summaries carry their study: a study without retention is not watched for silence
        studies = runtime.studies
        summaries = [
            s
            for s in summaries
            if not studies.known(s.study_id) or studies.enables(s.study_id, Module.RETENTION)
        ]
        await service.record_readings(runtime.pool, summaries, clock)

    reconsent = service.reconsent_step(policy)

    async def on_consents(events: Sequence[ConsentState]) -> None:
        # only an amendment's call for re-consent is a trigger (decision 0081)
        due = [
            e
            for e in events
            if e.change == "reconsent_due" and e.reconsent_version and e.reconsent_by
        ]
        group = GROUPS["consents"].name
        await service.apply_events(
            runtime.pool, group, due, reconsent, policy, clock, runtime.studies
        )

    runtime.subscribe(Topic.CONSENTS, ConsentState, GROUPS["consents"].name, on_consents)
    runtime.subscribe(
        Topic.PARTICIPANTS,
        ParticipantState,
        PARTICIPANTS_GROUP,
        on_participants,
        max_records=500,
    )
    runtime.subscribe(
        Topic.READING_SUMMARIES,
        ReadingsSummarised,
        READINGS_GROUP,
        on_readings,
        max_records=settings.readings_max_batch,
    )
    follow_erasures(runtime, SERVICE.name, GROUPS["erasures"].name, erasure.erase)  # 0086
