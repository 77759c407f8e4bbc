"""What a withdrawal means for ePRO: final, first time kept, schedules and responses stop."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from epro.domain.withdrawal import cut_short, refuses, schedule_until, withdrawn_at
from trialstream.events.participants import ParticipantState

T = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def enrolled(at: datetime) -> ParticipantState:
    return ParticipantState(participant_id="P-1", site_id="site-a", occurred_at=at)


def withdrawn(at: datetime, recorded: datetime | None = None) -> ParticipantState:
    return ParticipantState(
        participant_id="P-1",
        site_id="site-a",
        status="withdrawn",
        withdrawn_at=at,
        occurred_at=recorded or at + timedelta(minutes=5),
    )


def test_an_enrolled_participant_has_no_withdrawal() -> None:
    assert withdrawn_at(None, [enrolled(T)]) is None


def test_a_withdrawal_event_sets_its_withdrawn_at_not_when_it_was_published() -> None:
    assert withdrawn_at(None, [enrolled(T), withdrawn(T + timedelta(days=2))]) == T + timedelta(
        days=2
    )


def test_redelivering_the_withdrawal_changes_nothing() -> None:
    event = withdrawn(T)
    first = withdrawn_at(None, [event])
    assert withdrawn_at(first, [event]) == first == T
    assert withdrawn_at(first, [event, event]) == T


def test_a_later_enrolled_record_does_not_undo_the_withdrawal() -> None:
    assert withdrawn_at(T, [enrolled(T + timedelta(days=1))]) == T


def test_the_earliest_withdrawal_time_holds_whichever_order_they_come_in() -> None:
    assert withdrawn_at(T, [withdrawn(T + timedelta(hours=3))]) == T
    assert withdrawn_at(T, [withdrawn(T - timedelta(hours=3))]) == T - timedelta(hours=3)


def test_a_withdrawal_without_a_time_counts_from_when_it_was_recorded() -> None:
    event = ParticipantState(
        participant_id="P-1", site_id="site-a", status="withdrawn", occurred_at=T
    )
    assert withdrawn_at(None, [event]) == T


def test_the_scheduler_stops_at_the_withdrawal() -> None:
    assert schedule_until(T, None) == T
    assert schedule_until(T, T - timedelta(hours=1)) == T - timedelta(hours=1)
    assert schedule_until(T, T + timedelta(hours=1)) == T  # recorded ahead of the tick's clock


def test_only_a_window_still_running_at_the_withdrawal_is_cut_short() -> None:
    assert cut_short(T + timedelta(minutes=1), T)
    assert not cut_short(T, T)  # closed exactly at withdrawal: an ordinary miss
    assert not cut_short(T - timedelta(hours=1), T)
    assert not cut_short(T + timedelta(hours=1), None)


def test_a_response_authored_after_the_withdrawal_is_refused_one_before_it_is_not() -> None:
    assert refuses(T + timedelta(seconds=1), T)
    assert not refuses(T, T)
    assert not refuses(T - timedelta(hours=5), T)  # an offline app's backlog
