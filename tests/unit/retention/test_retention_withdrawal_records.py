"""What a participants record says about consent withdrawal (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

from retention.withdrawal import fold
from trialstream.events.participants import ParticipantState

WITHDREW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
PUBLISHED = datetime(2026, 6, 1, 9, 5, tzinfo=UTC)


def record(**fields: object) -> ParticipantState:
    return ParticipantState.model_validate(
        {"participant_id": "P-1", "site_id": "site-a", "occurred_at": PUBLISHED, **fields}
    )


def test_withdrawn_record_gives_its_withdrawal_time() -> None:
    assert record(status="withdrawn", withdrawn_at=WITHDREW).withdrawal_time() == WITHDREW


def test_withdrawn_record_without_a_time_still_counts_from_when_it_was_published() -> None:
    assert record(status="withdrawn").withdrawal_time() == PUBLISHED


def test_enrolled_and_older_records_are_not_withdrawals() -> None:
    assert record().withdrawal_time() is None
    assert record(status="enrolled", withdrawn_at=WITHDREW).withdrawal_time() is None


def test_a_batch_keeps_the_latest_record_and_the_earliest_withdrawal_of_each_one() -> None:
    again = datetime(2026, 6, 2, 9, 0, tzinfo=UTC)
    restated = record(timezone="Europe/Paris")
    other = record(participant_id="P-2")
    batch = [
        record(),
        record(status="withdrawn", withdrawn_at=WITHDREW),
        other,
        record(status="withdrawn", withdrawn_at=again),
        restated,
    ]
    assert fold(batch) == {"P-1": (restated, WITHDREW), "P-2": (other, None)}


def test_an_earlier_dated_withdrawal_later_in_the_batch_wins() -> None:
    earlier = datetime(2026, 5, 31, 9, 0, tzinfo=UTC)
    batch = [
        record(status="withdrawn", withdrawn_at=WITHDREW),
        record(status="withdrawn", withdrawn_at=earlier),
    ]
    assert fold(batch)["P-1"][1] == earlier
