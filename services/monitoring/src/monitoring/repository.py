"""Monitoring's SQL: participants, the alert inbox, staff, and the audit log."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
from trialstream import audit as audit_trail
from trialstream.db import DbConnection
from trialstream.events.alerts import AlertEpisodeEnded, AlertRaised
from trialstream.events.participants import ParticipantState
from trialstream.identity import DEFAULT_STUDY

from monitoring.domain import Alert, AlertStatus
from monitoring.erasure import ERASED

_UPSERT_PARTICIPANTS = """
INSERT INTO participants (participant_id, site_id, timezone, study_id, updated_at)
SELECT p, s, tz, st, now()
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS t(p, s, tz, st)
ON CONFLICT (participant_id) DO UPDATE
SET site_id = EXCLUDED.site_id, timezone = EXCLUDED.timezone, study_id = EXCLUDED.study_id,
    updated_at = now()
"""
# One row per statement (executemany), so an alert sees the ones inserted before it in
# the same batch when it looks for the running episode of its participant and rule.
_INSERT_ALERT = """
INSERT INTO alerts (alert_id, participant_id, kind, metric, severity, rule, detected_at,
                    window_start, window_end, observed, threshold, baseline, model_version,
                    explanation, episode_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, COALESCE(
    (SELECT x.episode_id FROM alerts x
     WHERE x.participant_id = $2 AND x.rule = $6
       AND x.episode_ended_at IS NULL AND x.status <> 'resolved'
     ORDER BY x.detected_at DESC LIMIT 1),
    $1))
ON CONFLICT (alert_id) DO NOTHING
"""
_KNOWN_ALERTS = "SELECT alert_id FROM alerts WHERE alert_id = ANY($1::uuid[])"
# Delivered to every LISTENing monitoring replica when the transaction commits.
NOTIFY_CHANNEL = "monitoring_alerts"
_NOTIFY = """
SELECT pg_notify($1, json_build_object(
    'alert_id', a.alert_id, 'participant_id', a.participant_id, 'site_id', p.site_id,
    'study_id', p.study_id, 'change', $3::text)::text)
FROM alerts a LEFT JOIN participants p USING (participant_id)
WHERE a.alert_id = ANY($2::uuid[])
"""
_ALERT_COLUMNS = """
a.alert_id, a.participant_id, p.site_id, a.kind, a.metric, a.severity, a.rule, a.detected_at,
a.window_start, a.window_end, a.observed, a.threshold, a.baseline, a.model_version, a.explanation,
a.status, a.received_at, a.acknowledged_by, a.acknowledged_at, a.ack_note,
a.episode_ended_at, a.episode_end_note, a.episode_id, a.resolved_by, a.resolved_at,
a.resolution_reason, a.escalated_at, p.study_id
"""
_LIST_ALERTS = f"""
SELECT {_ALERT_COLUMNS}
FROM alerts a LEFT JOIN participants p USING (participant_id)
WHERE ($1::text IS NULL OR p.site_id = $1) AND a.status = ANY($2::text[])
  AND ($4::text IS NULL OR a.participant_id = $4) AND COALESCE(p.study_id, 'default') = $5
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
RETURNING a.alert_id, e.note
"""
# Sites before the upsert, so a participant moved to another site is audited, not silently
# overwritten (their alerts change which staff may see them).
_SITES_OF = (
    "SELECT participant_id, site_id FROM participants WHERE participant_id = ANY($1::text[])"
)
_ACKNOWLEDGE = """
UPDATE alerts SET status = 'acknowledged', acknowledged_by = $2, acknowledged_at = now(), ack_note = $3
WHERE alert_id = $1
"""
_RESOLVE = """
UPDATE alerts SET status = 'resolved', resolved_by = $2, resolved_at = now(), resolution_reason = $3
WHERE alert_id = $1
"""
# Alerts nobody acknowledged within their severity's deadline, not escalated yet. The row
# lock (SKIP LOCKED: another replica is on it) plus the re-checked `escalated_at IS NULL`
# make each alert escalate once however many checkers run.
_ESCALATE = """
WITH due AS (
    SELECT a.alert_id, a.received_at + make_interval(secs => d.secs) AS ack_due_at
    FROM alerts a JOIN unnest($1::text[], $2::float8[]) AS d(severity, secs) USING (severity)
    WHERE a.status = 'open' AND a.escalated_at IS NULL
      AND a.received_at + make_interval(secs => d.secs) <= $3
    ORDER BY a.received_at
    LIMIT $4
    FOR UPDATE OF a SKIP LOCKED
)
UPDATE alerts a SET escalated_at = $3 FROM due
WHERE a.alert_id = due.alert_id
RETURNING a.alert_id, a.participant_id, a.kind, a.severity, a.rule, a.received_at,
          due.ack_due_at, a.escalated_at,
          (SELECT site_id FROM participants p WHERE p.participant_id = a.participant_id) AS site_id,
          COALESCE((SELECT study_id FROM participants p WHERE p.participant_id = a.participant_id),
                   'default') AS study_id
"""
# Actors of the entries monitoring writes for what arrives on its topics.
SYSTEM_ALERTS = "system:alerts"
SYSTEM_PARTICIPANTS = "system:participants"
_WHERE_IS = "SELECT study_id, site_id FROM participants WHERE participant_id = $1"


async def upsert_participants(pool: asyncpg.Pool, events: Sequence[ParticipantState]) -> None:
    """Store each participant's latest site and timezone; a change of site is audited."""
    latest = {e.participant_id: e for e in events}  # the last event per participant wins
    async with pool.acquire() as conn, conn.transaction():
        before = {
            r["participant_id"]: r["site_id"] for r in await conn.fetch(_SITES_OF, list(latest))
        }
        await conn.execute(
            _UPSERT_PARTICIPANTS,
            list(latest),
            [e.site_id for e in latest.values()],
            [e.timezone for e in latest.values()],
            [e.study_id for e in latest.values()],
        )
        site = dict(before)
        for e in events:  # in order: a move inside one batch is a move too
            was = site.get(e.participant_id)
            site[e.participant_id] = e.site_id
            if was is not None and was != e.site_id:
                await audit(
                    conn,
                    actor=SYSTEM_PARTICIPANTS,
                    action="participant.site_changed",
                    entity="participant",
                    entity_id=e.participant_id,
                    old_status=was,
                    new_status=e.site_id,
                    note="from the participants topic; the site's staff now see their alerts",
                )


async def insert_alerts(pool: asyncpg.Pool, alerts: Sequence[AlertRaised]) -> None:
    """Add new alerts to the inbox (duplicates dropped by id) and tell the live feeds."""
    unique = {a.event_id: a for a in sorted(alerts, key=lambda a: a.detected_at)}
    async with pool.acquire() as conn, conn.transaction():
        known = {r["alert_id"] for r in await conn.fetch(_KNOWN_ALERTS, list(unique))}
        fresh = [a for a in unique.values() if a.event_id not in known]
        if not fresh:
            return
        await conn.executemany(
            _INSERT_ALERT,
            [
                (
                    a.event_id,
                    a.participant_id,
                    str(a.kind),
                    None if a.metric is None else str(a.metric),
                    str(a.severity),
                    a.rule,
                    a.detected_at,
                    a.window_start,
                    a.window_end,
                    json.dumps(a.observed),
                    a.threshold,
                    a.baseline,
                    a.model_version,
                    a.explanation,
                )
                for a in fresh
            ],
        )
        await notify(conn, [a.event_id for a in fresh], "raised")
        for a in fresh:  # the inbox's own record of what arrived, last in the transaction
            await audit(
                conn,
                actor=SYSTEM_ALERTS,
                action="alert.received",
                entity="alert",
                entity_id=str(a.event_id),
                old_status=None,
                new_status="open",
                note=f"{a.severity} {a.kind} alert, rule {a.rule}, from {a.model_version}",
            )


async def notify(conn: DbConnection, alert_ids: Sequence[UUID], change: str) -> None:
    """Queue a notification per alert; PostgreSQL delivers them only if the transaction commits."""
    await conn.execute(_NOTIFY, NOTIFY_CHANNEL, list(alert_ids), change)


def _alert(row: asyncpg.Record) -> Alert:
    fields = dict(row)
    fields["observed"] = json.loads(fields["observed"])
    fields["status"] = AlertStatus(fields["status"])
    return Alert(**fields)


async def list_alerts(
    pool: asyncpg.Pool,
    site: str | None,
    statuses: Sequence[str],
    limit: int,
    participant: str | None = None,
    study: str = DEFAULT_STUDY,
) -> list[Alert]:
    """A study's alerts (of a site, or every site), newest first. An alert of a participant
    not enrolled here yet counts as the default study's until the enrolment arrives."""
    rows = await pool.fetch(_LIST_ALERTS, site, list(statuses), limit, participant, study)
    return [_alert(r) for r in rows]


async def get_alert(conn: DbConnection | asyncpg.Pool, alert_id: UUID) -> Alert | None:
    row = await conn.fetchrow(_GET_ALERT, alert_id)
    return _alert(row) if row else None


async def lock_alert(conn: DbConnection, alert_id: UUID) -> Alert | None:
    row = await conn.fetchrow(_LOCK_ALERT, alert_id)
    return _alert(row) if row else None


async def acknowledge(conn: DbConnection, alert_id: UUID, staff_id: str, note: str | None) -> None:
    await conn.execute(_ACKNOWLEDGE, alert_id, staff_id, note)


async def resolve(conn: DbConnection, alert_id: UUID, staff_id: str, reason: str) -> None:
    await conn.execute(_RESOLVE, alert_id, staff_id, reason)


async def escalate_due(
    conn: DbConnection, deadlines_seconds: dict[str, float], now: datetime, limit: int
) -> list[asyncpg.Record]:
    """Mark up to `limit` overdue alerts escalated (call inside a transaction); returns them."""
    return list(
        await conn.fetch(
            _ESCALATE, list(deadlines_seconds), list(deadlines_seconds.values()), now, limit
        )
    )


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
    actor_detail: Mapping[str, str] | None = None,
    typed_about: str | None = None,
) -> None:
    """One entry in the schema's hash-chained audit trail (trialstream.audit), inside the
    caller's transaction; call it as the transaction's last write (it takes the chain lock).
    `typed_about`: the participant a staff-typed `note` is about; the note then stays off
    the chain, in the side table an erasure empties (decision 0087)."""
    typed = note is not None and typed_about is not None
    await audit_trail.record(
        conn,
        actor=actor,
        actor_detail=actor_detail,
        action=action,
        entity=entity,
        entity_id=entity_id,
        old=old_status,
        new=new_status,
        reason=None if typed else note,
        erasable_reason=note if typed else None,
        subject=typed_about if typed else None,
    )


async def audit_for(pool: asyncpg.Pool, entity: str, entity_id: str) -> list[dict[str, Any]]:
    """An entity's entries, oldest first, in this module's original shape (id = chain seq);
    a note kept off the chain is read from the side table, `[erased]` once erased."""
    found = await audit_trail.entries(pool, entity=entity, entity_id=entity_id)
    texts = await audit_trail.erasable_texts(pool, [e.seq for e in found])
    return [
        {
            "id": e.seq,
            "occurred_at": e.occurred_at,
            "actor": e.actor,
            "actor_detail": e.as_dict()["actor_detail"],
            "action": e.action,
            "entity": e.entity,
            "entity_id": e.entity_id,
            "old_status": e.as_dict()["old"],
            "new_status": e.as_dict()["new"],
            "note": texts.get(e.seq, ERASED) if audit_trail.is_digest(e.reason) else e.reason,
        }
        for e in found
    ]


async def end_episodes(pool: asyncpg.Pool, events: Sequence[AlertEpisodeEnded]) -> None:
    """Close the episodes' alerts (a re-delivered end matches nothing) and audit each."""
    async with pool.acquire() as conn, conn.transaction():
        ended = await conn.fetch(
            _END_EPISODES,
            [e.participant_id for e in events],
            [e.rule for e in events],
            [e.ended_at for e in events],
            [e.explanation for e in events],
        )
        for row in sorted(ended, key=lambda r: r["alert_id"]):
            await audit(
                conn,
                actor=SYSTEM_ALERTS,
                action="alert.episode_ended",
                entity="alert",
                entity_id=str(row["alert_id"]),
                old_status=None,
                new_status=None,
                note=row["note"],
            )


async def where_is(pool: asyncpg.Pool, participant_id: str) -> tuple[str, str] | None:
    """(study, site) of a participant, or None when monitoring has not seen their enrolment."""
    row = await pool.fetchrow(_WHERE_IS, participant_id)
    return None if row is None else (row["study_id"], row["site_id"])
