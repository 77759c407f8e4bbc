"""Delivery and open receipts reported back by channels."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

import asyncpg
from trialstream.errors import Kind, Refused

from retention import repository


async def record_receipt(
    pool: asyncpg.Pool, nudge_id: UUID, status: Literal["delivered", "opened"], at: datetime
) -> None:
    """Idempotent: the first delivered/opened time wins; a repeated receipt adds nothing.
    An 'opened' receipt implies delivery, so a missing 'delivered' step is added too."""
    async with pool.acquire() as conn, conn.transaction():
        row = await repository.lock_nudge(conn, nudge_id)
        if row is None:
            raise Refused(Kind.NOT_FOUND, "unknown_nudge", f"no nudge {nudge_id}")
        if row["status"] != "sent":  # suppressed, escalated, cancelled or not sent yet
            raise Refused(
                Kind.CONFLICT, "not_sent", f"nudge {nudge_id} is {row['status']}, not sent"
            )
        if row["delivered_at"] is None:
            await repository.journey(conn, nudge_id, "delivered", at, "receipt")
        if status == "opened" and row["opened_at"] is None:
            await repository.journey(conn, nudge_id, "opened", at, "receipt")
        await repository.receipt(conn, nudge_id, at, status == "opened")
