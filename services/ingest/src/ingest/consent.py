"""Consent gating of uploads (issue 18, decision 0080), kept apart from the upload path.

- `gate`: for a study that enables the consent module, the participant's wearable consent
  from ingest's own `consents` table (one lookup per batch): none is 403
  `consent_required`; readings measured before it or after its withdrawal are refused
  one by one (`before_consent`, `consent_withdrawn`), and where the study pauses after a
  missed re-consent deadline, readings measured after it (`reconsent_overdue`, 0088).
- `consents_changed`: the consents topic, kept in that table; a full withdrawal signed in
  the consent service becomes ingest's own withdrawal (the participants topic), so every
  service acts on it as on any other (README, *Withdrawal, in one place*).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import asyncpg
from trialstream import audit, consent_gate
from trialstream.db import DbConnection
from trialstream.events.consents import ConsentScope, ConsentState
from trialstream.studies import StudyRegistry

from ingest import repository
from ingest.domain import Uploader
from ingest.service import announce_withdrawal

ACTOR = "system:consent"
REASON = "consent withdrawn in the consent service"


async def gate(pool: asyncpg.Pool, studies: StudyRegistry, who: Uploader) -> Uploader:
    if not consent_gate.gated(studies, who.study_id):
        return who
    found = await consent_gate.standing(pool, who.participant_id, ConsentScope.WEARABLE)
    if found is None:
        raise consent_gate.consent_required(ConsentScope.WEARABLE)
    return dataclasses.replace(
        who,
        consented_from=found.consent.since,
        consent_until=found.consent.until,
        paused_from=found.paused_from(consent_gate.pauses(studies, who.study_id)),
    )


async def consents_changed(pool: asyncpg.Pool, events: Sequence[ConsentState]) -> None:
    async with pool.acquire() as conn, conn.transaction():
        changed = await consent_gate.record(conn, events)
        for event in consent_gate.latest(events):
            if event.participant_id in changed and event.withdrawn_at is not None:
                await _withdraw(conn, event)


async def _withdraw(conn: DbConnection, event: ConsentState) -> None:
    assert event.withdrawn_at is not None
    done = await repository.withdraw(conn, event.participant_id, event.withdrawn_at, REASON)
    if done is None:  # withdrawn already, or not enrolled here
        return
    await announce_withdrawal(conn, done)
    await audit.record(
        conn,
        actor=ACTOR,
        action="participant.withdrawn",
        entity="participant",
        entity_id=done.participant_id,
        old={"status": "enrolled"},
        new={"status": "withdrawn", "withdrawn_at": str(done.withdrawn_at)},
        reason=REASON,
    )
