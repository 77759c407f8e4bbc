"""Inbox: remember which event ids a consumer has applied, in the effect's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from trialstream.db import DbConnection

_CLAIM = """
INSERT INTO inbox (consumer, event_id)
SELECT $1, id FROM unnest($2::uuid[]) AS id
ON CONFLICT DO NOTHING
RETURNING event_id
"""


async def claim_new(conn: DbConnection, consumer: str, event_ids: Sequence[UUID]) -> set[UUID]:
    """Record `event_ids` as processed by `consumer`; return the ones not seen before.
    Call inside the transaction that applies their effect, so both commit or neither."""
    if not event_ids:
        return set()
    rows = await conn.fetch(_CLAIM, consumer, list(dict.fromkeys(event_ids)))
    return {r["event_id"] for r in rows}
