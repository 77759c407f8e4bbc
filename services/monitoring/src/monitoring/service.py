"""Monitoring use cases."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
from trialstream import audit
from trialstream.auth import hash_token, new_token
from trialstream.events.alerts import AlertAcknowledged
from trialstream.events.topics import Topic
from trialstream.outbox import enqueue

from monitoring import repository
from monitoring.domain import AlertStatus, Staff, check_acknowledge, may_read


class NotFound(Exception):
    pass


class AlreadyExists(Exception):
    pass


async def acknowledge_alert(
    pool: asyncpg.Pool, staff: Staff, alert_id: UUID, note: str | None
) -> dict[str, Any]:
    """open -> acknowledged, with an audit row and an AlertAcknowledged event, atomically.
    The row lock serialises two nurses acknowledging at once: the second gets a conflict."""
    async with pool.acquire() as conn, conn.transaction():
        alert = await repository.lock_alert(conn, alert_id)
        if alert is None or not _visible(staff, alert):
            raise NotFound(f"no alert {alert_id} for you")
        check_acknowledge(staff, alert["site_id"], AlertStatus(alert["status"]))
        await repository.acknowledge(conn, alert_id, staff.staff_id, note)
        await repository.audit(
            conn,
            actor=staff.staff_id,
            action="alert.acknowledged",
            entity="alert",
            entity_id=str(alert_id),
            old_status=alert["status"],
            new_status=AlertStatus.ACKNOWLEDGED,
            note=note,
        )
        event = AlertAcknowledged(
            alert_id=alert_id,
            participant_id=alert["participant_id"],
            site_id=alert["site_id"],
            staff_id=staff.staff_id,
            note=note,
        )
        await enqueue(conn, Topic.ALERT_ACKNOWLEDGEMENTS, [(alert["participant_id"], event)])
        updated = await repository.get_alert(conn, alert_id)
    assert updated is not None
    return updated


def _visible(staff: Staff, alert: dict[str, Any]) -> bool:
    return may_read(staff, alert["site_id"])


async def create_staff(pool: asyncpg.Pool, staff: Staff) -> str:
    token = new_token("staff")
    async with pool.acquire() as conn, conn.transaction():
        if not await repository.insert_staff(conn, staff, hash_token(token)):
            raise AlreadyExists(f"staff '{staff.staff_id}' already exists")
        await audit.record(
            conn,
            actor="admin",
            action="staff.created",
            entity="staff",
            entity_id=staff.staff_id,
            new={"site_id": staff.site_id, "role": staff.role},
        )
    return token
