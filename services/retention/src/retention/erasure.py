"""Retention's part of an erasure (issue 18, decision 0086): the contact address goes,
every nudge's body (the message text, which may name the participant) is replaced by a
tombstone, and messages waiting for local delivery are deleted. The nudges' times,
kinds and outcomes stay (pseudonymous, the record of contact attempts)."""

from __future__ import annotations

from trialstream.db import DbConnection
from trialstream.events.erasures import ErasureRequested

ERASED = "[erased]"


def _count(status: str) -> int:
    return int(status.split()[-1])


async def erase(conn: DbConnection, request: ErasureRequested) -> dict[str, int]:
    pid = request.participant_id
    return {
        "addresses": _count(
            await conn.execute(
                "UPDATE preferences SET address = NULL, updated_at = now()"
                " WHERE participant_id = $1 AND address IS NOT NULL",
                pid,
            )
        ),
        "nudge_bodies": _count(
            await conn.execute(
                "UPDATE nudges SET body = $2 WHERE participant_id = $1 AND body <> $2", pid, ERASED
            )
        ),
        "local_deliveries": _count(
            await conn.execute("DELETE FROM local_deliveries WHERE participant_id = $1", pid)
        ),
    }
