"""Monitoring's SQL: participants, the alert inbox, staff, and the audit log."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import asyncpg
from trialstream import audit as audit_trail
from trialstream.db import DbConnection
from trialstream.events.alerts import AlertEpisodeEnded, AlertRaised
from trialstream.events.participants import ParticipantEnrolled

from monitoring.domain import Role, Staff

_UPSERT_PARTICIPANTS = """
INSERT INTO participants (participant_id, site_id, timezone, updated_at)
SELECT p, s, tz, now() FROM unnest($1::text[], $2::text[], $3::text[]) AS t(p, s, tz)
ON CONFLICT (participant_id) DO UPDATE
SET site_id = EXCLUDED.site_id, timezone = EXCLUDED.timezone, updated_at = now()
"""
_INSERT_ALERTS = """
INSERT INTO alerts (alert_id, participant_id, kind, metric, severity, rule, detected_at,
                    window_start, window_end, observed, threshold, baseline, model_version, explanation)
SELECT a.id, a.p, a.kind, a.metric, a.severity, a.rule, a.detected, a.ws, a.we,
       a.obs, a.thr, a.base, a.mv, a.expl
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[],
            $8::timestamptz[], $9::timestamptz[], $10::jsonb[], $11::float8[], $12::float8[], $13::text[],
            $14::text[])
     AS a(id, p, kind, metric, severity, rule, detected, ws, we, obs, thr, base, mv, expl)
ON CONFLICT (alert_id) DO NOTHING
"""
_ALERT_COLUMNS = """
a.alert_id, a.participant_id, p.site_id, a.kind, a.metric, a.severity, a.rule, a.detected_at,
a.window_start, a.window_end, a.observed, a.threshold, a.baseline, a.model_version, a.explanation,
a.status, a.received_at, a.acknowledged_by, a.acknowledged_at, a.ack_note,
a.episode_ended_at, a.episode_end_note
"""
_LIST_ALERTS = f"""
SELECT {_ALERT_COLUMNS}
FROM alerts a LEFT JOIN participants p USING (participant_id)
WHERE ($1::text IS NULL OR p.site_id = $1) AND ($2::text IS NULL OR a.status = $2)
ORDER BY a.detected_at DESC, a.alert_id
LIMIT $3
"""  # noqa: S608 - constant column list
_GET_ALERT = f"""
SELECT {_ALERT_COLUMNS}
FROM alerts a LEFT JOIN participants p USING (participant_id)
WHERE a.alert_id = $1
"""  # noqa: S608 - constant column list
_LOCK_ALERT = f"""
SELECT {_ALERT_COLUMNS}
FROM alerts a LEFT JOIN participants p USING (participant_id)
WHERE a.alert_id = $1
FOR UPDATE OF a
"""  # noqa: S608 - constant column list
# An episode's end closes every alert of that participant and rule raised before it (the
# first alert and its escalations). Idempotent: a re-delivered event matches nothing.
_END_EPISODES = """
UPDATE alerts a SET episode_ended_at = e.ended, episode_end_note = e.note
FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[]) AS e(p, rule, ended, note)
WHERE a.participant_id = e.p AND a.rule = e.rule AND a.detected_at <= e.ended
  AND a.episode_ended_at IS NULL
"""
_ACKNOWLEDGE = """
UPDATE alerts SET status = 'acknowledged', acknowledged_by = $2, acknowledged_at = now(), ack_note = $3
WHERE alert_id = $1
"""
_INSERT_STAFF = """
INSERT INTO staff (staff_id, site_id, role, token_hash) VALUES ($1, $2, $3, $4)
ON CONFLICT (staff_id) DO NOTHING RETURNING staff_id
"""
_STAFF_BY_CREDENTIAL_HASH = "SELECT staff_id, site_id, role FROM staff WHERE token_hash = $1"


async def upsert_participants(pool: asyncpg.Pool, events: Sequence[ParticipantEnrolled]) -> None:
    latest = {e.participant_id: e for e in events}  # the last event per participant wins
    await pool.execute(
        _UPSERT_PARTICIPANTS,
        list(latest),
        [e.site_id for e in latest.values()],
        [e.timezone for e in latest.values()],
    )


async def insert_alerts(pool: asyncpg.Pool, alerts: Sequence[AlertRaised]) -> None:
    await pool.execute(
        _INSERT_ALERTS,
        [a.event_id for a in alerts],
        [a.participant_id for a in alerts],
        [str(a.kind) for a in alerts],
        [None if a.metric is None else str(a.metric) for a in alerts],
        [str(a.severity) for a in alerts],
        [a.rule for a in alerts],
        [a.detected_at for a in alerts],
        [a.window_start for a in alerts],
        [a.window_end for a in alerts],
        [json.dumps(a.observed) for a in alerts],
        [a.threshold for a in alerts],
        [a.baseline for a in alerts],
        [a.model_version for a in alerts],
        [a.explanation for a in alerts],
    )


def _alert(row: asyncpg.Record) -> dict[str, Any]:
    alert = dict(row)
    alert["observed"] = json.loads(alert["observed"])
    return alert


async def list_alerts(
    pool: asyncpg.Pool, site: str | None, status: str | None, limit: int
) -> list[dict[str, Any]]:
    return [_alert(r) for r in await pool.fetch(_LIST_ALERTS, site, status, limit)]


async def get_alert(conn: DbConnection | asyncpg.Pool, alert_id: UUID) -> dict[str, Any] | None:
    row = await conn.fetchrow(_GET_ALERT, alert_id)
    return _alert(row) if row else None


async def lock_alert(conn: DbConnection, alert_id: UUID) -> dict[str, Any] | None:
    row = await conn.fetchrow(_LOCK_ALERT, alert_id)
    return _alert(row) if row else None


async def acknowledge(conn: DbConnection, alert_id: UUID, staff_id: str, note: str | None) -> None:
    await conn.execute(_ACKNOWLEDGE, alert_id, staff_id, note)


async def audit(
    conn: DbConnection,
    *,
    actor: str,
    action: str,
    entity: str,
    entity_id: str,
    old_status: str | None,
    new_status: str | None,
    note: str | None,
) -> None:
    """One entry in the schema's hash-chained audit trail (trialstream.audit), inside the
    caller's transaction; call it as the transaction's last write (it takes the chain lock)."""
    await audit_trail.record(
        conn,
        actor=actor,
        action=action,
        entity=entity,
        entity_id=entity_id,
        old=old_status,
        new=new_status,
        reason=note,
    )


async def audit_for(pool: asyncpg.Pool, entity: str, entity_id: str) -> list[dict[str, Any]]:
    """An entity's entries, oldest first, in this module's original shape (id = chain seq)."""
    return [
        {
            "id": e.seq,
            "occurred_at": e.occurred_at,
            "actor": e.actor,
            "action": e.action,
            "entity": e.entity,
            "entity_id": e.entity_id,
            "old_status": e.as_dict()["old"],
            "new_status": e.as_dict()["new"],
            "note": e.reason,
        }
        for e in await audit_trail.entries(pool, entity=entity, entity_id=entity_id)
    ]


async def insert_staff(conn: DbConnection | asyncpg.Pool, staff: Staff, token_hash: str) -> bool:
    return (
        await conn.fetchrow(
            _INSERT_STAFF, staff.staff_id, staff.site_id, str(staff.role), token_hash
        )
        is not None
    )


async def staff_for_token(pool: asyncpg.Pool, token_hash: str) -> Staff | None:
    row = await pool.fetchrow(_STAFF_BY_CREDENTIAL_HASH, token_hash)
    return Staff(row["staff_id"], row["site_id"], Role(row["role"])) if row else None


async def end_episodes(pool: asyncpg.Pool, events: Sequence[AlertEpisodeEnded]) -> None:
    await pool.execute(
        _END_EPISODES,
        [e.participant_id for e in events],
        [e.rule for e in events],
        [e.ended_at for e in events],
        [e.explanation for e in events],
    )
