"""Retention use cases: consumed events and the silence sweep become recorded nudge
decisions, each in one transaction with the inbox claim and any outgoing event."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeVar
from uuid import UUID

import asyncpg
import structlog
from trialstream import audit
from trialstream.db import DbConnection
from trialstream.events.base import DEFAULT_STUDY
from trialstream.events.consents import ConsentState
from trialstream.events.epro import QuestionnaireDue, QuestionnaireMissed, ResponseSubmitted
from trialstream.events.nudges import CoordinatorTaskCreated
from trialstream.events.participants import ParticipantState
from trialstream.events.readings import ReadingsSummarised
from trialstream.events.topics import Topic
from trialstream.events.visits import VisitChanged, VisitReminderDue, VisitStatus
from trialstream.inbox import claim_new
from trialstream.outbox import enqueue
from trialstream.studies import StudyNotKnownYet, StudyRegistry

from retention import repository, triggers, withdrawal
from retention.domain import Outcome, Preferences, Trigger, decide
from retention.study_rules import effective_rules
from retention.triggers import EscalationPolicy, SilencePolicy

Clock = Callable[[], datetime]
log = structlog.get_logger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Policy:
    default_cap: int = 3
    escalation: EscalationPolicy = field(default_factory=EscalationPolicy)
    silence: SilencePolicy = field(default_factory=SilencePolicy)


@dataclass(frozen=True)
class Subject:
    """The participant a trigger is about, as a decision needs them: the preferences in
    force (their choices on their study's rules), their site, and where the rules came
    from (a sentence for the journey; empty for the default study)."""

    prefs: Preferences
    site: str | None = None
    rules: str = ""
    study_id: str = DEFAULT_STUDY


async def subject(
    conn: DbConnection, participant_id: str, policy: Policy, studies: StudyRegistry
) -> Subject:
    """Read when the nudge is decided, so a new study version applies from then on. While
    this process has not read the whole studies topic yet, a declared study it does not
    know makes the batch wait (retried); one still unknown after that (never announced)
    gets the service's own settings, and the journey says so."""
    found = await repository.profile(conn, participant_id)
    study = studies.get(found.study_id)
    if study is None and found.study_id != DEFAULT_STUDY and not studies.caught_up:
        # just started: the study is most likely on the topic, not read yet (retried)
        raise StudyNotKnownYet(f"study {found.study_id} not read from the studies topic yet")
    rules = effective_rules(found.chosen, found.study_id, study, found.site_id, policy.default_cap)
    return Subject(rules.prefs, found.site_id, rules.source, found.study_id)


_STATUS = {Outcome.SEND: "queued", Outcome.SUPPRESS: "suppressed", Outcome.ESCALATE: "escalated"}


async def record_decision(
    conn: DbConnection, trigger: Trigger, who: Subject, now: datetime
) -> bool:
    """Decide and record one trigger; False if its nudge id was recorded before, or if
    the participant has withdrawn (then nothing is recorded: no nudge, no task)."""
    withdrawn = await repository.withdrawn_at(conn, trigger.participant_id)
    if withdrawn is not None:
        log.info(
            "trigger ignored: participant withdrew",
            participant_id=trigger.participant_id,
            kind=str(trigger.kind),
            trigger_event_id=str(trigger.source_event_id),
            withdrawn_at=withdrawn.isoformat(),
        )
        return False
    scheduled = await repository.scheduled_times(
        conn, trigger.participant_id, now - timedelta(days=2)
    )
    decision = decide(trigger, who.prefs, scheduled, now)
    if not await repository.insert_nudge(conn, trigger, decision, _STATUS[decision.outcome]):
        return False
    nudge = trigger.nudge_id
    via = decision.channel or "-"
    intended = f"{trigger.kind} via {via} in {decision.language} ({decision.tone})"
    if who.rules:  # a declared study's: which language and rules, and why
        intended += f"; {who.rules}"
        if decision.language != who.prefs.language:
            intended += f"; no {who.prefs.language} text, {decision.language} used"
    await repository.journey(conn, nudge, "intended", now, intended)
    if decision.outcome is Outcome.SUPPRESS:
        await repository.journey(
            conn, nudge, "suppressed", now, f"{decision.reason}: {decision.detail}"
        )
    elif decision.outcome is Outcome.ESCALATE:
        await repository.insert_task(conn, trigger)
        await repository.journey(conn, nudge, "escalated", now, decision.detail)
        await audit.record(
            conn,
            actor="system:retention",
            action="task.opened",
            entity="coordinator_task",
            entity_id=str(nudge),
            new={"status": "open", "participant_id": trigger.participant_id, "kind": trigger.kind},
            reason=trigger.reason,
        )
        event = CoordinatorTaskCreated(
            participant_id=trigger.participant_id,
            study_id=who.study_id,
            site_id=who.site,
            task_id=nudge,
            kind=str(trigger.kind),
            reason=trigger.reason,
            trigger_event_id=trigger.source_event_id,
        )
        await enqueue(conn, Topic.COORDINATOR_TASKS, [(trigger.participant_id, event)])
    else:
        assert decision.send_at is not None
        detail = decision.detail or f"send at {decision.send_at.isoformat()}"
        await repository.journey(conn, nudge, "queued", now, detail)
    return True


class _Participant(Protocol):
    @property
    def event_id(self) -> UUID: ...
    @property
    def participant_id(self) -> str: ...


P = TypeVar("P", bound=_Participant)
Step = Callable[[DbConnection, P, Subject, datetime], Awaitable[None]]


async def apply_events(
    pool: asyncpg.Pool,
    consumer: str,
    events: Sequence[P],
    step: Step[P],
    policy: Policy,
    clock: Clock,
    studies: StudyRegistry,
) -> None:
    """Run `step` for each new event, in one transaction with the inbox claim. Events are
    taken participant by participant (stable, so each one's order holds), which keeps
    the per-participant row locks in one global order."""
    now = clock()
    async with pool.acquire() as conn, conn.transaction():
        new = await claim_new(conn, consumer, [e.event_id for e in events])
        # participants of studies without retention: claimed (never redone), not acted on
        skipped = await repository.elsewhere(conn, [e.participant_id for e in events])
        for event in sorted(events, key=lambda e: e.participant_id):
            if event.event_id not in new or event.participant_id in skipped:
                continue
            new.discard(event.event_id)  # the same event twice in one batch
            await repository.lock_engagement(conn, event.participant_id)
            who = await subject(conn, event.participant_id, policy, studies)
            await step(conn, event, who, now)


def reconsent_step(policy: Policy) -> Step[ConsentState]:
    async def step(conn: DbConnection, e: ConsentState, who: Subject, now: datetime) -> None:
        await record_decision(conn, triggers.reconsent_due(e), who, now)

    return step


def epro_due_step(policy: Policy) -> Step[QuestionnaireDue]:
    async def step(conn: DbConnection, e: QuestionnaireDue, who: Subject, now: datetime) -> None:
        await repository.open_occurrence(conn, e.occurrence_id, e.participant_id, e.due_at)
        await record_decision(conn, triggers.epro_due(e), who, now)

    return step


def epro_missed_step(policy: Policy) -> Step[QuestionnaireMissed]:
    async def step(
        conn: DbConnection,
        e: QuestionnaireMissed,
        who: Subject,
        now: datetime,
    ) -> None:
        state = await repository.lock_engagement(conn, e.participant_id)
        state, trigger = triggers.epro_missed(e, state, policy.escalation)
        await repository.save_engagement(conn, e.participant_id, state)
        await repository.close_occurrence(conn, e.occurrence_id)
        await record_decision(conn, trigger, who, now)

    return step


def response_step(policy: Policy) -> Step[ResponseSubmitted]:
    async def step(
        conn: DbConnection,
        e: ResponseSubmitted,
        who: Subject,
        now: datetime,
    ) -> None:
        state = await repository.lock_engagement(conn, e.participant_id)
        due_at = await repository.close_occurrence(conn, e.occurrence_id)
        state, milestone = triggers.response_submitted(e, state, due_at, who.prefs.timezone)
        await repository.save_engagement(conn, e.participant_id, state)
        if e.occurrence_id is not None:
            await repository.acted_on(conn, [f"epro:{e.occurrence_id}"], e.submitted_at)
        if milestone is not None:
            await record_decision(conn, milestone, who, now)

    return step


def visit_step(policy: Policy) -> Step[VisitChanged]:
    async def step(conn: DbConnection, e: VisitChanged, who: Subject, now: datetime) -> None:
        state = await repository.lock_engagement(conn, e.participant_id)
        state, trigger = triggers.visit_changed(e, state, policy.escalation)
        await repository.save_engagement(conn, e.participant_id, state)
        if e.status is VisitStatus.COMPLETED:
            await repository.acted_on(conn, [f"visit:{e.visit_id}"], e.occurred_at)
        if trigger is not None:
            await record_decision(conn, trigger, who, now)

    return step


def reminder_step(policy: Policy) -> Step[VisitReminderDue]:
    async def step(conn: DbConnection, e: VisitReminderDue, who: Subject, now: datetime) -> None:
        await record_decision(conn, triggers.visit_reminder(e, who.prefs.timezone), who, now)

    return step


async def record_elsewhere(pool: asyncpg.Pool, events: Sequence[ParticipantState]) -> None:
    """Participants of studies that do not use retention: remembered, so that their ePRO
    and visit triggers (which carry no study) are skipped rather than nudged."""
    if events:
        async with pool.acquire() as conn:
            await repository.record_elsewhere(conn, events)


async def record_enrolments(
    pool: asyncpg.Pool, events: Sequence[ParticipantState], clock: Clock
) -> None:
    """The latest record per participant becomes their row; a withdrawal cancels their
    queued nudges and erases their contact address (audited) in the same transaction. The withdrawing participants' engagement rows
    are locked first (in the order apply_events uses), so a trigger being decided for one
    of them either commits before (and its nudge is cancelled here) or sees the withdrawal."""
    folded = withdrawal.fold(events)
    withdrawing = sorted(p for p, (_, at) in folded.items() if at is not None)
    now = clock()
    async with pool.acquire() as conn, conn.transaction():
        for participant in withdrawing:
            await repository.lock_engagement(conn, participant)
        await repository.upsert_participants(conn, list(folded.values()))
        await repository.not_elsewhere(conn, list(folded))
        cancelled = await repository.cancel_queued(
            conn,
            withdrawing,
            withdrawal.CANCEL_REASON,
            now,
            f"{withdrawal.CANCEL_REASON}: consent withdrawn before it was sent",
        )
        # Nothing will be sent to them again: their contact address is not kept either.
        for participant in await repository.erase_addresses(conn, withdrawing):
            await audit.record(
                conn,
                actor="system:participants",
                action="preferences.address_erased",
                entity="preferences",
                entity_id=participant,
                old={"address_set": True},
                new={"address_set": False},
                reason="participant withdrew",
            )
    for participant in withdrawing:
        nudges = [str(n) for n, p in cancelled if p == participant]
        log.info(
            "participant withdrew: nudges stopped", participant_id=participant, cancelled=nudges
        )


async def record_readings(
    pool: asyncpg.Pool, summaries: Sequence[ReadingsSummarised], clock: Clock
) -> None:
    """Per batch of upload summaries (decision 0092): the last reading and the hours with
    data per participant, and any silence nudge now acted on. Idempotent (a maximum and a
    set), so no inbox row is needed."""
    now = clock()
    this_hour = now.replace(minute=0, second=0, microsecond=0)
    last: dict[str, datetime] = {}
    hours: set[tuple[str, datetime]] = set()
    for s in summaries:
        at = min(s.last_measured_at, now)  # a device clock ahead must not hide a later silence
        if at > last.get(s.participant_id, at - timedelta(seconds=1)):
            last[s.participant_id] = at
        hours.update((s.participant_id, min(h, this_hour)) for h in s.hours)
    async with pool.acquire() as conn, conn.transaction():
        await repository.record_activity(conn, last, hours)
        await repository.acted_on(conn, [f"device:{p}" for p in last], now)


async def sweep_silence(
    pool: asyncpg.Pool, policy: Policy, now: datetime, studies: StudyRegistry
) -> int:
    """Wall-clock check for low wear time and silent devices; returns nudges recorded.
    Safe to run in every replica at once: the nudge ids are derived from the silence
    episode, so a second sweep finds them already recorded."""
    shortest = min(policy.silence.low_wear_waking_hours, policy.silence.silent_hours)
    recorded = 0
    for participant, last in await repository.silent_since(pool, now - timedelta(hours=shortest)):
        async with pool.acquire() as conn, conn.transaction():
            await repository.lock_engagement(conn, participant)
            who = await subject(conn, participant, policy, studies)
            found = triggers.silence_triggers(participant, last, now, who.prefs, policy.silence)
            for trigger in found:
                recorded += await record_decision(conn, trigger, who, now)
    return recorded
