"""Consent gating of answers (issue 18, decision 0080): in a study that enables the
consent module, an answer needs the participant's `epro` consent at the time it was
authored (403 `consent_required`), read from ePRO's own `consents` table, which follows
the consents topic."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg
from trialstream import consent_gate
from trialstream.events.consents import ConsentScope, ConsentState
from trialstream.studies import StudyRegistry

from epro import compliance


async def require(
    pool: asyncpg.Pool, studies: StudyRegistry, participant_id: str, authored_at: datetime
) -> None:
    where = await compliance.where_is(pool, participant_id)
    if where is not None and consent_gate.gated(studies, where[0]):
        pause = consent_gate.pauses(studies, where[0])  # after a missed re-consent (0088)
        await consent_gate.require(
            pool, participant_id, ConsentScope.EPRO, authored_at, pause_after_deadline=pause
        )


async def consents_changed(pool: asyncpg.Pool, events: Sequence[ConsentState]) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await consent_gate.record(conn, events)
