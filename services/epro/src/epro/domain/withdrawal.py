"""What a participant's withdrawal means for ePRO (decision 0014). Pure.

Withdrawal is final here, as in ingest and monitoring (decision 0045): the first
withdrawal time is kept, a later `enrolled` record for the same participant does not undo
it (re-consent is a new enrolment). Data the participant authored before `withdrawn_at`
is still accepted (an offline app uploads its backlog late); nothing authored after it is.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from trialstream.events.participants import ParticipantState

REFUSED = "participant_withdrawn"


def withdrawn_at(current: datetime | None, events: Iterable[ParticipantState]) -> datetime | None:
    """The participant's withdrawal time after `events`: the earliest one seen, so a
    re-delivered or re-published withdrawal changes nothing and `enrolled` never clears it."""
    for event in events:
        current = event.earliest_withdrawal(current)
    return current


def schedule_until(now: datetime, withdrawn: datetime | None) -> datetime:
    """How far the scheduler may compute occurrences: never past the withdrawal."""
    return now if withdrawn is None else min(now, withdrawn)


def cut_short(expires_at: datetime, withdrawn: datetime | None) -> bool:
    """An occurrence whose window was still running when the participant withdrew: closed
    as `withdrawn`, never announced as due or missed. One whose window ended before the
    withdrawal was missed while the participant consented and stays a miss."""
    return withdrawn is not None and expires_at > withdrawn


def refuses(authored_at: datetime, withdrawn: datetime) -> bool:
    """A response authored after the withdrawal is not collected; one authored before it
    (the app was offline) still is, like ingest's readings."""
    return authored_at > withdrawn
