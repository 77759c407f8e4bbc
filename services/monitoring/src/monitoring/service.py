"""Monitoring use cases: the alert workflow (acknowledge, resolve, escalate) and staff."""

from __future__ import annotations

import uuid
from datetime import datetime
from uuid import UUID

import asyncpg
from trialstream.db import DbConnection
from trialstream.errors import Kind, Refused
from trialstream.events.alerts import (
    AlertAcknowledged,
    AlertEscalated,
    AlertKind,
    AlertResolved,
    Severity,
)
from trialstream.events.base import DEFAULT_STUDY
from trialstream.events.topics import Topic
from trialstream.outbox import enqueue

from monitoring import repository
from monitoring.domain import (
    AckDeadlines,
    Alert,
    AlertStatus,
    Staff,
    check_acknowledge,
    check_read,
    check_resolve,
)

SYSTEM_ACTOR = "system:escalation"


def unknown_alert(alert_id: UUID) -> Refused:
    return Refused(Kind.NOT_FOUND, "unknown_alert", f"no alert {alert_id}")


async def _locked_alert(conn: DbConnection, staff: Staff, alert_id: UUID) -> tuple[Alert, Staff]:
    """The alert, locked, and the person acting in its study (refused unless they read it)."""
    alert = await repository.lock_alert(conn, alert_id)
    if alert is None:
        raise unknown_alert(alert_id)
    staff = staff.in_study(alert.study_id)
    check_read(staff, alert.site_id)
    return alert, staff


async def acknowledge_alert(
    pool: asyncpg.Pool, staff: Staff, alert_id: UUID, note: str | None
) -> Alert:
    """open -> acknowledged, with an audit row and an AlertAcknowledged event, atomically.
    The row lock serialises two nurses acknowledging at once: the second gets a conflict."""
    async with pool.acquire() as conn, conn.transaction():
        alert, staff = await _locked_alert(conn, staff, alert_id)
        check_acknowledge(staff, alert.site_id, AlertStatus(alert.status))
        await repository.acknowledge(conn, alert_id, staff.staff_id, note)
        await repository.audit(
            conn,
            actor=staff.actor,
            actor_detail=staff.actor_detail,
            action="alert.acknowledged",
            entity="alert",
            entity_id=str(alert_id),
            old_status=alert.status,
            new_status=AlertStatus.ACKNOWLEDGED,
            note=note,
            typed_about=alert.participant_id,
        )
        event = AlertAcknowledged(
            alert_id=alert_id,
            participant_id=alert.participant_id,
            study_id=alert.study_id or DEFAULT_STUDY,
            site_id=alert.site_id,
            staff_id=staff.staff_id,
            has_note=bool(note),
        )
        await enqueue(conn, Topic.ALERT_ACKNOWLEDGEMENTS, [(alert.participant_id, event)])
        await repository.notify(conn, [alert_id], "acknowledged")
        updated = await repository.get_alert(conn, alert_id)
    assert updated is not None
    return updated


async def resolve_alert(
    pool: asyncpg.Pool, staff: Staff, alert_id: UUID, reason: str, *, step_up_seconds: float
) -> Alert:
    """open or acknowledged -> resolved with a reason; audit row and AlertResolved, atomically.
    A high-severity alert is resolved by an investigator's signature (domain.check_resolve)."""
    async with pool.acquire() as conn, conn.transaction():
        alert, staff = await _locked_alert(conn, staff, alert_id)
        check_resolve(
            staff, alert.site_id, AlertStatus(alert.status), alert.severity, step_up_seconds
        )
        await repository.resolve(conn, alert_id, staff.staff_id, reason)
        await repository.audit(
            conn,
            actor=staff.actor,
            actor_detail=staff.actor_detail,
            action="alert.resolved",
            entity="alert",
            entity_id=str(alert_id),
            old_status=alert.status,
            new_status=AlertStatus.RESOLVED,
            note=reason,
            typed_about=alert.participant_id,
        )
        event = AlertResolved(
            alert_id=alert_id,
            participant_id=alert.participant_id,
            study_id=alert.study_id or DEFAULT_STUDY,
            site_id=alert.site_id,
            staff_id=staff.staff_id,
            previous_status=alert.status,
        )
        await enqueue(conn, Topic.ALERT_RESOLUTIONS, [(alert.participant_id, event)])
        await repository.notify(conn, [alert_id], "resolved")
        updated = await repository.get_alert(conn, alert_id)
    assert updated is not None
    return updated


def escalation_event_id(alert_id: UUID) -> UUID:
    """Derived from the alert, so a re-sent escalation dedupes downstream."""
    return uuid.uuid5(alert_id, "escalated")


async def escalate_overdue(
    pool: asyncpg.Pool, deadlines: AckDeadlines, now: datetime, *, batch: int = 500
) -> int:
    """Escalate every open alert past its acknowledgement deadline, once each: the
    escalated mark, the audit row, the AlertEscalated event and the live-feed
    notification share one transaction. Returns how many escalated."""
    seconds = {str(k): v.total_seconds() for k, v in deadlines.by_severity.items()}
    total = 0
    while True:
        async with pool.acquire() as conn, conn.transaction():
            rows = await repository.escalate_due(conn, seconds, now, batch)
            events = [_escalated(r) for r in rows]
            for e in events:
                await repository.audit(
                    conn,
                    actor=SYSTEM_ACTOR,
                    action="alert.escalated",
                    entity="alert",
                    entity_id=str(e.alert_id),
                    old_status=AlertStatus.OPEN,
                    new_status=AlertStatus.OPEN,
                    note=f"not acknowledged by {e.ack_due_at.isoformat()} ({e.severity} severity)",
                )
            await enqueue(conn, Topic.ALERT_ESCALATIONS, [(e.participant_id, e) for e in events])
            await repository.notify(conn, [e.alert_id for e in events], "escalated")
        total += len(rows)
        if len(rows) < batch:
            return total


def _escalated(row: asyncpg.Record) -> AlertEscalated:
    return AlertEscalated(
        event_id=escalation_event_id(row["alert_id"]),
        alert_id=row["alert_id"],
        participant_id=row["participant_id"],
        study_id=row["study_id"],
        site_id=row["site_id"],
        kind=AlertKind(row["kind"]),
        severity=Severity(row["severity"]),
        rule=row["rule"],
        received_at=row["received_at"],
        ack_due_at=row["ack_due_at"],
        escalated_at=row["escalated_at"],
    )
