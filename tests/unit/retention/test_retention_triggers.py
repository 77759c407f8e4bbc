"""Triggers from events and the wall clock: escalation ladder, streaks, silence, risk model."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from uuid import uuid4

import numpy as np
from retention import risk
from retention.domain import Preferences, TriggerKind
from retention.triggers import (
    Engagement,
    EscalationPolicy,
    SilencePolicy,
    epro_missed,
    response_submitted,
    silence_triggers,
    visit_changed,
    visit_reminder,
)
from trialstream.events.epro import QuestionnaireMissed, ResponseSubmitted
from trialstream.events.visits import VisitChanged, VisitReminderDue, VisitStatus, VisitType

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


def missed(at: datetime = T0) -> QuestionnaireMissed:
    return QuestionnaireMissed(
        participant_id="P-1",
        occurrence_id=uuid4(),
        questionnaire_id="daily-diary",
        questionnaire_version=1,
        due_at=at,
        expires_at=at + timedelta(hours=12),
    )


def response(at: datetime, on_time: bool = True, version: int = 1) -> ResponseSubmitted:
    return ResponseSubmitted(
        participant_id="P-1",
        response_id=uuid4(),
        version=version,
        questionnaire_id="daily-diary",
        questionnaire_version=1,
        occurrence_id=uuid4(),
        submitted_at=at,
        on_time=on_time,
    )


def visit(status: VisitStatus) -> VisitChanged:
    return VisitChanged(
        participant_id="P-1",
        site_id="site-a",
        visit_id=uuid4(),
        visit_name="Day 7",
        visit_type=VisitType.VIDEO,
        status=status,
        window_start=T0,
        window_end=T0 + timedelta(days=2),
    )


def test_third_consecutive_missed_questionnaire_escalates_instead_of_nudging() -> None:
    state, policy = Engagement(), EscalationPolicy(epro_misses=3)
    escalations = []
    for _ in range(3):
        state, trigger = epro_missed(missed(), state, policy)
        escalations.append(trigger.escalate)
    assert escalations == [False, False, True]
    assert "3 questionnaires missed in a row" in trigger.reason


def test_a_response_resets_the_miss_count_so_escalation_needs_new_misses() -> None:
    policy = EscalationPolicy(epro_misses=2)
    state, _ = epro_missed(missed(), Engagement(), policy)
    state, _ = response_submitted(response(T0), state, None, "UTC")
    state, trigger = epro_missed(missed(), state, policy)
    assert (state.epro_misses, trigger.escalate) == (1, False)


def test_second_missed_visit_escalates_and_a_completed_visit_resets() -> None:
    policy = EscalationPolicy(visit_misses=2)
    state, first = visit_changed(visit(VisitStatus.NO_SHOW), Engagement(), policy)
    state, second = visit_changed(visit(VisitStatus.MISSED), state, policy)
    assert first is not None
    assert second is not None
    assert (first.escalate, second.escalate) == (False, True)
    state, none = visit_changed(visit(VisitStatus.COMPLETED), state, policy)
    assert (none, state.visit_misses, state.visits_missed_total) == (None, 0, 2)


def test_seven_local_days_of_on_time_diaries_give_one_milestone() -> None:
    state, milestones = Engagement(), []
    # 23:30 UTC is the next morning in Auckland: local days, not UTC days, make the streak.
    for day in range(8):
        at = datetime(2026, 6, 1, 23, 30, tzinfo=UTC) + timedelta(days=day)
        state, m = response_submitted(response(at), state, None, "Pacific/Auckland")
        state, again = response_submitted(
            response(at + timedelta(minutes=5)), state, None, "Pacific/Auckland"
        )
        assert again is None  # a second diary the same local day is not a new day
        milestones.append(m.variables["days"] if m else None)
    assert milestones == [None] * 6 + ["7", None]
    assert state.streak_days == 8


def test_a_missed_diary_breaks_the_streak() -> None:
    state = Engagement(streak_days=6, last_response_day=T0.date())
    state, _ = epro_missed(missed(), state, EscalationPolicy())
    state, m = response_submitted(response(T0 + timedelta(days=1)), state, None, "UTC")
    assert (m, state.streak_days) == (None, 1)


def test_response_latency_is_measured_from_the_due_time() -> None:
    state, _ = response_submitted(response(T0 + timedelta(hours=3)), Engagement(), T0, "UTC")
    assert (state.latency_hours_sum, state.latency_count) == (3.0, 1)


def test_visit_reminder_shows_the_start_in_the_participant_local_time() -> None:
    event = VisitReminderDue(
        participant_id="P-1",
        visit_id=uuid4(),
        booking_id=uuid4(),
        visit_name="Day 7",
        visit_type=VisitType.VIDEO,
        starts_at=datetime(2026, 6, 2, 7, 30, tzinfo=UTC),
        lead="24h",
    )
    t = visit_reminder(event, "America/Sao_Paulo")
    assert (t.kind, t.variables["visit_time"], t.expires_at) == (
        TriggerKind.VISIT_24H,
        "04:30",
        event.starts_at,
    )


def test_silence_overnight_is_not_low_wear_time() -> None:
    prefs = Preferences(timezone="Europe/Madrid", quiet_start=time(22, 0), quiet_end=time(7, 0))
    last = datetime(2026, 6, 1, 19, 30, tzinfo=UTC)  # 21:30 in Madrid
    morning = datetime(2026, 6, 2, 6, 0, tzinfo=UTC)  # 08:00: 10.5 h silent, 1.5 waking hours
    assert (
        silence_triggers("P-1", last, morning, prefs, SilencePolicy(low_wear_waking_hours=4)) == []
    )
    later = datetime(2026, 6, 2, 9, 0, tzinfo=UTC)  # 11:00: 4.5 waking hours
    found = silence_triggers("P-1", last, later, prefs, SilencePolicy(low_wear_waking_hours=4))
    assert [t.kind for t in found] == [TriggerKind.LOW_WEAR]


def test_silent_device_nudges_the_participant_then_tells_the_site() -> None:
    prefs, policy = Preferences(), SilencePolicy(silent_hours=24, escalate_hours=48)
    last = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    day_later = silence_triggers("P-1", last, last + timedelta(hours=25), prefs, policy)
    two_days = silence_triggers("P-1", last, last + timedelta(hours=49), prefs, policy)
    assert [(t.kind, t.escalate) for t in day_later] == [(TriggerKind.DEVICE_SILENT, False)]
    assert [(t.kind, t.escalate) for t in two_days] == [
        (TriggerKind.DEVICE_SILENT, False),
        (TriggerKind.DEVICE_SILENT, True),
    ]
    # The same silence episode gives the same nudge ids at every sweep.
    assert day_later[0].nudge_id == two_days[0].nudge_id != two_days[1].nudge_id
    new_episode = silence_triggers(
        "P-1", last + timedelta(hours=1), last + timedelta(hours=49), prefs, policy
    )
    assert new_episode[0].nudge_id != two_days[0].nudge_id


def test_dropout_model_separates_held_out_simulated_dropouts_and_is_deterministic() -> None:
    model, again = risk.train(n=4000, seed=7), risk.train(n=4000, seed=7)
    assert model.auc > 0.7
    assert (model.version, model.auc) == (again.version, again.auc)
    engaged = [0.95, 0.95, 0.0, 1.0]
    slipping = [0.2, 0.3, 3.0, 12.0]
    scores = model.score(np.array([engaged, slipping, [np.nan] * 4]))
    assert scores[1] > scores[2] > scores[0]
