"""Consent withdrawal, as read from the compacted participants topic. Pure.

Once a participant has withdrawn, retention contacts them no more: queued nudges are
cancelled, new triggers are ignored, the dispatcher re-checks at send time. Withdrawal
is final for a participant id (decision 0034): a later `enrolled` record is a replay or a
re-statement, never a re-consent, which would be a new enrolment under a new id."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from trialstream.events.participants import ParticipantState

CANCEL_REASON = "participant-withdrew"


def fold(
    events: Sequence[ParticipantState],
) -> dict[str, tuple[ParticipantState, datetime | None]]:
    """Per participant in a consumed batch (in topic order): the latest record, for site
    and timezone, and the earliest withdrawal time among them (as ePRO keeps, decision
    0014). The latest record alone is not enough: a withdrawal followed by an `enrolled`
    record in one batch must not be lost."""
    folded: dict[str, tuple[ParticipantState, datetime | None]] = {}
    for event in events:
        _, earliest = folded.get(event.participant_id, (event, None))
        folded[event.participant_id] = (event, event.earliest_withdrawal(earliest))
    return folded
