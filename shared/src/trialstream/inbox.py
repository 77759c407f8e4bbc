"""Inbox: remember which event ids a consumer has applied, in the effect's transaction.

An id is only worth remembering while its event can still be delivered again: Kafka keeps a
topic's records for its retention (7 days by default), so a consumer group reset, a
rebalance or a lost offset commit can bring an event back within that time and no later.
`forget_older_than` drops what is older (the outbox relay calls it periodically, so every
service's inbox stays bounded: decision 0075).
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from trialstream.db import DbConnection

KEEP_SECONDS = 8 * 86_400  # Kafka's default retention (7 days) and a day to spare

_CLAIM = """
INSERT INTO inbox (consumer, event_id)
SELECT $1, id FROM unnest($2::uuid[]) AS id
ON CONFLICT DO NOTHING
RETURNING event_id
"""
# In slices, so a long backlog is not one long transaction holding its row locks.
_FORGET = """
DELETE FROM inbox WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM inbox WHERE processed_at < now() - make_interval(secs => $1) LIMIT $2
))
"""


async def claim_new(conn: DbConnection, consumer: str, event_ids: Sequence[UUID]) -> set[UUID]:
    """Record `event_ids` as processed by `consumer`; return the ones not seen before.
    Call inside the transaction that applies their effect, so both commit or neither."""
    if not event_ids:
        return set()
    rows = await conn.fetch(_CLAIM, consumer, list(dict.fromkeys(event_ids)))
    return {r["event_id"] for r in rows}


async def forget_older_than(conn: DbConnection, seconds: float, *, slice_rows: int = 10_000) -> int:
    """Drop the dedupe rows of events applied more than `seconds` ago (every consumer's);
    returns how many went. An event redelivered after that would be applied again, so
    `seconds` must exceed how long the topics keep their records."""
    removed = 0
    while True:
        status = await conn.execute(_FORGET, seconds, slice_rows)
        count = int(str(status).rsplit(" ", 1)[-1])
        removed += count
        if count < slice_rows:
            return removed
