"""Withdrawal as telehealth reads it: final per participant, earliest time kept, and what it
cuts (decision 0025)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from telehealth.domain.withdrawal import (
    closes_open_visit,
    is_news,
    refusal,
    stops_booking,
)
from trialstream.events.participants import ParticipantState

T = datetime(2030, 1, 8, 10, tzinfo=UTC)
HOUR = timedelta(hours=1)


def record(status: str = "withdrawn", at: datetime | None = T, **extra: object) -> ParticipantState:
    return ParticipantState.model_validate(
        {
            "participant_id": "P-1",
            "site_id": "site-a",
            "status": status,
            "withdrawn_at": at if status == "withdrawn" else None,
            **extra,
        }
    )


def test_a_withdrawal_sets_the_time_it_carries() -> None:
    assert record().earliest_withdrawal(None) == T


def test_an_enrolled_record_neither_withdraws_nor_undoes_a_withdrawal() -> None:
    assert record("enrolled").earliest_withdrawal(None) is None
    assert record("enrolled").earliest_withdrawal(T) == T


def test_the_earliest_withdrawal_is_kept() -> None:
    assert record(at=T + HOUR).earliest_withdrawal(T) == T
    assert record(at=T - HOUR).earliest_withdrawal(T) == T - HOUR


def test_a_withdrawal_without_a_time_counts_from_its_publication() -> None:
    assert record(at=None, occurred_at=T).earliest_withdrawal(None) == T


def test_only_a_new_or_earlier_withdrawal_is_news() -> None:
    assert is_news(None, T)
    assert is_news(T, T - HOUR)
    assert not is_news(T, T)  # re-delivered
    assert not is_news(None, None)
    assert not is_news(T, None)


def test_bookings_starting_after_the_withdrawal_stop_earlier_ones_stay() -> None:
    assert stops_booking(T + HOUR, T)
    assert not stops_booking(T, T)
    assert not stops_booking(T - HOUR, T)


def test_open_visits_cut_short_are_closed_windows_already_over_stay_missed() -> None:
    assert closes_open_visit(T + HOUR, T)
    assert not closes_open_visit(T, T)


def test_refusal_names_the_withdrawal_time_in_utc() -> None:
    in_berlin = T.astimezone(timezone(timedelta(hours=1)))
    assert "2030-01-08T10:00:00+00:00" in refusal(in_berlin)
