"""Changes people make through the API (preferences, tasks), each audited in its transaction
(trialstream.audit). The channel address is never put in the audit trail: only whether one
is set."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

import asyncpg
from trialstream import audit

from retention import repository
from retention.study_rules import Chosen


async def set_preferences(
    pool: asyncpg.Pool,
    participant_id: str,
    chosen: Chosen,
    *,
    address: str | None,
    by: Mapping[str, Any],
) -> None:
    """`by`: the audit entry's actor and actor_detail (trialstream.staff.audited_as)."""
    async with pool.acquire() as conn, conn.transaction():
        before, old_address = await repository.lock_preferences(conn, participant_id)
        await repository.put_preferences(conn, participant_id, chosen, address)
        after: dict[str, Any] = {
            "language": chosen.language,
            "timezone": chosen.timezone,
            "channel": chosen.channel,
            "opted_out": sorted(str(c) for c in chosen.opted_out),
            "quiet_start": chosen.quiet_start,
            "quiet_end": chosen.quiet_end,
            "max_per_day": chosen.max_per_day,
            "address_set": address is not None,
        }
        if before is not None and address is not None and address != old_address:
            after["address_changed"] = True
        if before != after:
            await audit.record(
                conn,
                **by,
                action="preferences.set",
                entity="preferences",
                entity_id=participant_id,
                old=before,
                new=after,
            )


async def complete_task(pool: asyncpg.Pool, task_id: UUID, *, by: Mapping[str, Any]) -> bool:
    """open -> done; False if there is no open task with this id."""
    async with pool.acquire() as conn, conn.transaction():
        if not await repository.complete_task(conn, task_id):
            return False
        await audit.record(
            conn,
            **by,
            action="task.completed",
            entity="coordinator_task",
            entity_id=str(task_id),
            old={"status": "open"},
            new={"status": "done"},
        )
    return True
