"""From consumed events (and the wall clock) to triggers, and the engagement counters
that drive escalation and streaks. Pure: each function gets what it needs as arguments."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from uuid import UUID, uuid5
from zoneinfo import ZoneInfo

from trialstream.events.consents import ConsentState
from trialstream.events.epro import QuestionnaireDue, QuestionnaireMissed, ResponseSubmitted
from trialstream.events.visits import VisitChanged, VisitReminderDue, VisitStatus

from retention.domain import NUDGE_NAMESPACE, Preferences, Trigger, TriggerKind, in_quiet_hours

MILESTONE_DAYS = (7, 14, 30, 60, 90)


@dataclass(frozen=True)
class EscalationPolicy:
    epro_misses: int = 3  # consecutive missed questionnaires -> coordinator task
    visit_misses: int = 2  # consecutive missed visits -> coordinator task


@dataclass(frozen=True)
class SilencePolicy:
    low_wear_waking_hours: float = 4.0  # no readings for this many waking hours -> nudge
    silent_hours: float = 24.0  # no readings at all -> "open the app" nudge
    escalate_hours: float = 48.0  # still nothing -> tell the site


@dataclass(frozen=True)
class Engagement:
    """Per-participant counters; the dropout-risk features come from these too."""

    epro_misses: int = 0  # consecutive
    visit_misses: int = 0  # consecutive
    responses: int = 0
    on_time: int = 0
    missed_total: int = 0
    visits_missed_total: int = 0
    latency_hours_sum: float = 0.0
    latency_count: int = 0
    streak_days: int = 0
    last_response_day: date | None = None


def epro_due(event: QuestionnaireDue) -> Trigger:
    return Trigger(
        TriggerKind.EPRO_DUE,
        event.participant_id,
        event.event_id,
        key=str(TriggerKind.EPRO_DUE),
        at=event.due_at,
        expires_at=event.expires_at,
        target=f"epro:{event.occurrence_id}",
    )


def reconsent_due(event: ConsentState) -> Trigger:
    """A protocol amendment's new consent version (decision 0081): one nudge per version,
    in the participant's language, that expires at the end of the deadline day (UTC)."""
    assert event.reconsent_version is not None
    assert event.reconsent_by is not None
    ends = datetime.combine(event.reconsent_by + timedelta(days=1), datetime.min.time(), UTC)
    # the nudge's id derives from the participant and the version, not the record: a
    # second record for the same version (another language published) nudges no more
    source = uuid5(NUDGE_NAMESPACE, f"{event.participant_id}:reconsent:{event.reconsent_version}")
    return Trigger(
        TriggerKind.RECONSENT_DUE,
        event.participant_id,
        source,
        key=f"{TriggerKind.RECONSENT_DUE}:v{event.reconsent_version}",
        at=event.occurred_at,
        expires_at=ends,
        target=f"consent:v{event.reconsent_version}",
        variables={"reconsent_by": event.reconsent_by.isoformat()},
    )


def epro_missed(
    event: QuestionnaireMissed, state: Engagement, policy: EscalationPolicy
) -> tuple[Engagement, Trigger]:
    state = replace(
        state,
        epro_misses=state.epro_misses + 1,
        missed_total=state.missed_total + 1,
        streak_days=0,
    )
    escalate = state.epro_misses >= policy.epro_misses
    trigger = Trigger(
        TriggerKind.EPRO_MISSED,
        event.participant_id,
        event.event_id,
        key=str(TriggerKind.EPRO_MISSED),
        at=event.occurred_at,
        escalate=escalate,
        reason=f"{state.epro_misses} questionnaires missed in a row ({event.questionnaire_id})",
    )
    return state, trigger


def response_submitted(
    event: ResponseSubmitted, state: Engagement, due_at: datetime | None, timezone: str
) -> tuple[Engagement, Trigger | None]:
    """Counts a first version of a response; returns a milestone trigger when an
    on-time streak of local calendar days reaches one of MILESTONE_DAYS."""
    if event.version > 1:
        return state, None
    latency = (event.submitted_at - due_at).total_seconds() / 3600 if due_at else None
    state = replace(
        state,
        epro_misses=0,
        responses=state.responses + 1,
        on_time=state.on_time + int(event.on_time),
        latency_hours_sum=state.latency_hours_sum + max(latency or 0.0, 0.0),
        latency_count=state.latency_count + int(latency is not None),
    )
    if not event.on_time:
        return state, None
    day = event.submitted_at.astimezone(ZoneInfo(timezone)).date()
    if state.last_response_day == day:
        return state, None
    continues = state.last_response_day == day - timedelta(days=1)
    streak = state.streak_days + 1 if continues else 1
    state = replace(state, streak_days=streak, last_response_day=day)
    if streak not in MILESTONE_DAYS:
        return state, None
    return state, Trigger(
        TriggerKind.MILESTONE,
        event.participant_id,
        event.event_id,
        key=f"milestone-{streak}",
        at=event.occurred_at,
        variables={"days": str(streak)},
    )


def visit_reminder(event: VisitReminderDue, timezone: str) -> Trigger:
    kind = TriggerKind.VISIT_24H if event.lead == "24h" else TriggerKind.VISIT_1H
    local = event.starts_at.astimezone(ZoneInfo(timezone))
    return Trigger(
        kind,
        event.participant_id,
        event.event_id,
        key=str(kind),
        at=event.occurred_at,
        expires_at=event.starts_at,
        target=f"visit:{event.visit_id}",
        variables={"visit_name": event.visit_name, "visit_time": local.strftime("%H:%M")},
    )


def visit_changed(
    event: VisitChanged, state: Engagement, policy: EscalationPolicy
) -> tuple[Engagement, Trigger | None]:
    if event.status is VisitStatus.COMPLETED:
        return replace(state, visit_misses=0), None
    if event.status not in (VisitStatus.MISSED, VisitStatus.NO_SHOW):
        return state, None
    state = replace(
        state,
        visit_misses=state.visit_misses + 1,
        visits_missed_total=state.visits_missed_total + 1,
    )
    return state, Trigger(
        TriggerKind.VISIT_MISSED,
        event.participant_id,
        event.event_id,
        key=str(TriggerKind.VISIT_MISSED),
        at=event.occurred_at,
        variables={"visit_name": event.visit_name},
        escalate=state.visit_misses >= policy.visit_misses,
        reason=f"{state.visit_misses} visits missed in a row (last: {event.visit_name})",
    )


def waking_hours(start: datetime, end: datetime, prefs: Preferences, cap: float) -> float:
    """Hours between start and end outside the participant's quiet (sleep) hours, in
    their local wall time, counted in 10-minute steps and stopping once `cap` is reached."""
    tz, step, hours = ZoneInfo(prefs.timezone), timedelta(minutes=10), 0.0
    t = start
    while t < end and hours < cap:
        if not in_quiet_hours(t.astimezone(tz).time(), prefs.quiet_start, prefs.quiet_end):
            hours += min(step, end - t).total_seconds() / 3600
        t += step
    return hours


def silence_source_id(participant_id: str, last_reading_at: datetime) -> UUID:
    """One silence episode = one participant's data stopping at one instant."""
    return uuid5(NUDGE_NAMESPACE, f"silence:{participant_id}:{last_reading_at.timestamp()}")


def silence_triggers(
    participant_id: str,
    last_reading_at: datetime,
    now: datetime,
    prefs: Preferences,
    policy: SilencePolicy,
) -> list[Trigger]:
    """The steps of the silence ladder reached by `now`: the strongest participant nudge
    (low wear, then device silent) and, past escalate_hours, a task for the site."""
    source = silence_source_id(participant_id, last_reading_at)
    silent_for = (now - last_reading_at).total_seconds() / 3600

    def step(kind: TriggerKind, key: str, escalate: bool = False, reason: str = "") -> Trigger:
        return Trigger(
            kind,
            participant_id,
            source,
            key=key,
            at=now,
            target=f"device:{participant_id}",
            escalate=escalate,
            reason=reason,
        )

    found: list[Trigger] = []
    if silent_for >= policy.silent_hours:
        found.append(step(TriggerKind.DEVICE_SILENT, "device-silent"))
    elif (
        waking_hours(last_reading_at, now, prefs, policy.low_wear_waking_hours)
        >= policy.low_wear_waking_hours
    ):
        found.append(step(TriggerKind.LOW_WEAR, "low-wear"))
    if silent_for >= policy.escalate_hours:
        reason = f"no data from the participant's device for {silent_for:.0f} h"
        found.append(step(TriggerKind.DEVICE_SILENT, "device-silent-escalated", True, reason))
    return found
