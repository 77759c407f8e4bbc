"""What a participant's withdrawal means for telehealth (decision 0025). Pure.

Withdrawal arrives on the compacted participants topic as the participant's new state
(`status="withdrawn"`, `withdrawn_at`). It is final per participant id, as in ingest, ePRO
and retention: the earliest withdrawal time is kept and a later `enrolled` record does not
undo it. What was booked to take place after it is cancelled; history stays.
"""

from __future__ import annotations

from datetime import UTC, datetime

REFUSED = "participant_withdrawn"
REASON = "participant withdrew"


def is_news(before: datetime | None, after: datetime | None) -> bool:
    """True when `after` withdraws a participant who was not, or moves the time earlier:
    only then is there something new to cancel."""
    return after is not None and (before is None or after < before)


def stops_booking(starts_at: datetime, withdrawn: datetime) -> bool:
    """A booked (or proposed) slot starting after the withdrawal is cancelled."""
    return starts_at > withdrawn


def closes_open_visit(window_end: datetime, withdrawn: datetime) -> bool:
    """An unbooked visit whose window was still running at the withdrawal is cancelled;
    one whose window had closed before was missed while the participant consented."""
    return window_end > withdrawn


def refusal(withdrawn: datetime) -> str:
    return (
        f"The participant withdrew from the study at {withdrawn.astimezone(UTC).isoformat()}; "
        "no visit can be booked or moved for them."
    )
