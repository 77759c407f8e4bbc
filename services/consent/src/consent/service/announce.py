"""A participant's new consent state: kept, and announced on the consents topic through
the outbox, in the caller's transaction."""

from __future__ import annotations

from trialstream.db import DbConnection
from trialstream.events.consents import ConsentState
from trialstream.events.topics import Topic
from trialstream.outbox import enqueue

from consent import repository


async def announce(conn: DbConnection, state: ConsentState) -> None:
    await repository.save_state(conn, state)
    await enqueue(conn, Topic.CONSENTS, [(state.participant_id, state)])
