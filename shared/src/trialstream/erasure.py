"""How a service follows erasure requests (issue 18, decision 0086).

A service that holds personal data about participants joins a consumer group on the
`erasures` topic with `follow_erasures(runtime, service, group, erase)`. For each request, in one
transaction of its own schema: `erase(conn, request)` removes or irreversibly
pseudonymises what the service holds (and returns counts by kind); the free text of its
audit entries about the participant is deleted (trialstream.audit.erase_text_of); an
`erasure.completed` audit entry records that, when, under which basis and what was
erased (counts only); and `ErasureDone` goes to the `erasure-status` topic through the
outbox, so the consent service shows the request as finished here. Replays are
harmless: erasing twice erases nothing more, and the status topic is compacted.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from trialstream import audit
from trialstream.db import DbConnection
from trialstream.events.erasures import ErasureDone, ErasureRequested
from trialstream.events.topics import Topic
from trialstream.outbox import enqueue

if TYPE_CHECKING:
    from trialstream.runtime import Runtime

Eraser = Callable[[DbConnection, ErasureRequested], Awaitable[dict[str, int]]]
ACTOR = "system:erasure"


def latest(events: Sequence[ErasureRequested]) -> list[ErasureRequested]:
    """One request per participant: the newest of the batch."""
    newest: dict[str, ErasureRequested] = {}
    for event in events:
        known = newest.get(event.participant_id)
        if known is None or known.occurred_at <= event.occurred_at:
            newest[event.participant_id] = event
    return list(newest.values())


async def erase_one(
    conn: DbConnection, service: str, request: ErasureRequested, erase: Eraser
) -> ErasureDone:
    """Erase one participant in this transaction, audit it and announce it is done."""
    erased = dict(await erase(conn, request))
    erased["audit_texts"] = await audit.erase_text_of(conn, request.participant_id)
    done = ErasureDone(
        participant_id=request.participant_id,
        request_id=request.request_id,
        service=service,
        erased=erased,
    )
    await audit.record(
        conn,
        actor=ACTOR,
        action="erasure.completed",
        entity="participant",
        entity_id=request.participant_id,
        new={
            "request_id": str(request.request_id),
            "legal_basis": str(request.legal_basis),
            "requested_by": request.requested_by,
            "keep_collected_data": request.keep_collected_data,
            "erased": erased,
        },
    )
    await enqueue(conn, Topic.ERASURE_STATUS, [(done.key(), done)])
    return done


def follow_erasures(runtime: Runtime, service: str, group: str, erase: Eraser) -> None:
    """Subscribe `service`'s `erase` to the erasures topic in consumer group `group`."""

    async def on_erasures(events: Sequence[ErasureRequested]) -> None:
        for request in latest(events):
            async with runtime.pool.acquire() as conn, conn.transaction():
                await erase_one(conn, service, request, erase)

    runtime.subscribe(Topic.ERASURES, ErasureRequested, group, on_erasures)
