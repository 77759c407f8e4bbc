"""SQL for delivering nudges, receipts and the staff views (the nudge journey)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
from trialstream.db import DbConnection

_CLAIM_DUE = """
SELECT n.nudge_id, n.participant_id, n.kind, n.trigger_event_id, n.channel, n.language,
       n.body, n.dispatches, p.address, pa.withdrawn_at,
       COALESCE(pa.study_id, 'default') AS study_id
FROM nudges n LEFT JOIN preferences p USING (participant_id)
LEFT JOIN participants pa USING (participant_id)
WHERE n.status = 'queued' AND n.next_attempt_at <= $1
ORDER BY n.next_attempt_at LIMIT $2  -- NO KEY: the local channel's FK check (KEY SHARE) must not wait on us
FOR NO KEY UPDATE OF n SKIP LOCKED
"""
_MARK_SENT = """
UPDATE nudges SET status = 'sent', sent_at = $2::timestamptz, dispatches = dispatches + 1,
       delivered_at = CASE WHEN $3::boolean THEN $2::timestamptz END, last_error = NULL
WHERE nudge_id = $1
"""
_RETRY = """
UPDATE nudges SET dispatches = dispatches + 1, next_attempt_at = $2, last_error = $3
WHERE nudge_id = $1
"""
_FAIL = """
UPDATE nudges SET status = 'failed', dispatches = dispatches + 1, last_error = $2
WHERE nudge_id = $1
"""
_CANCEL = """
UPDATE nudges SET status = 'cancelled', suppress_reason = $2 WHERE nudge_id = $1
"""
_LOCAL_DELIVERY = """
INSERT INTO local_deliveries (nudge_id, participant_id, channel, body) VALUES ($1, $2, $3, $4)
ON CONFLICT (nudge_id) DO NOTHING
"""
_LOCK_NUDGE = "SELECT status, delivered_at, opened_at FROM nudges WHERE nudge_id = $1 FOR UPDATE"
_RECEIPT = """
UPDATE nudges SET delivered_at = COALESCE(delivered_at, $2::timestamptz),
       opened_at = CASE WHEN $3::boolean THEN COALESCE(opened_at, $2::timestamptz) ELSE opened_at END
WHERE nudge_id = $1
"""
_NUDGE_COLUMNS = """
nudge_id, participant_id, kind, trigger_event_id, target, status, suppress_reason, channel,
language, tone, body, send_at, dispatches, last_error, created_at, sent_at, delivered_at,
opened_at, acted_on_at
"""
_NUDGES_FOR = f"""
SELECT {_NUDGE_COLUMNS} FROM nudges WHERE participant_id = $1
AND ($2::text IS NULL OR status = $2) ORDER BY created_at DESC, nudge_id LIMIT $3
"""  # noqa: S608 - constant column list
_GET_NUDGE = f"SELECT {_NUDGE_COLUMNS} FROM nudges WHERE nudge_id = $1"  # noqa: S608
_JOURNEYS = """
SELECT nudge_id, step, at, detail FROM nudge_journey WHERE nudge_id = ANY($1::uuid[]) ORDER BY id
"""
_TASKS = """
SELECT t.task_id, t.participant_id, t.kind, t.reason, t.status, t.created_at, t.completed_at,
       p.withdrawn_at AS participant_withdrawn_at
FROM coordinator_tasks t LEFT JOIN participants p USING (participant_id)
WHERE p.site_id = $1 AND ($2::text IS NULL OR t.status = $2) AND p.study_id = $4
ORDER BY t.created_at DESC LIMIT $3
"""
_COMPLETE_TASK = """
UPDATE coordinator_tasks SET status = 'done', completed_at = now()
WHERE task_id = $1 AND status = 'open' RETURNING task_id
"""
_LOCAL_MAILBOX = """
SELECT nudge_id, channel, body, delivered_at FROM local_deliveries
WHERE participant_id = $1 ORDER BY delivered_at, nudge_id
"""


async def claim_due(conn: DbConnection, now: datetime, limit: int) -> list[asyncpg.Record]:
    return list(await conn.fetch(_CLAIM_DUE, now, limit))


async def mark_sent(conn: DbConnection, nudge_id: UUID, at: datetime, delivered: bool) -> None:
    await conn.execute(_MARK_SENT, nudge_id, at, delivered)


async def retry_later(conn: DbConnection, nudge_id: UUID, at: datetime, error: str) -> None:
    await conn.execute(_RETRY, nudge_id, at, error)


async def mark_failed(conn: DbConnection, nudge_id: UUID, error: str) -> None:
    await conn.execute(_FAIL, nudge_id, error)


async def cancel(conn: DbConnection, nudge_id: UUID, reason: str) -> None:
    await conn.execute(_CANCEL, nudge_id, reason)


async def local_delivery(pool: asyncpg.Pool, nudge_id: UUID, pid: str, ch: str, body: str) -> None:
    await pool.execute(_LOCAL_DELIVERY, nudge_id, pid, ch, body)


async def lock_nudge(conn: DbConnection, nudge_id: UUID) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(_LOCK_NUDGE, nudge_id)
    return row


async def receipt(conn: DbConnection, nudge_id: UUID, at: datetime, opened: bool) -> None:
    await conn.execute(_RECEIPT, nudge_id, at, opened)


async def _with_journeys(pool: asyncpg.Pool, rows: list[asyncpg.Record]) -> list[dict[str, Any]]:
    nudges = [dict(r) for r in rows]
    steps = await pool.fetch(_JOURNEYS, [n["nudge_id"] for n in nudges])
    by_id: dict[UUID, list[dict[str, Any]]] = {n["nudge_id"]: [] for n in nudges}
    for s in steps:
        by_id[s["nudge_id"]].append({"step": s["step"], "at": s["at"], "detail": s["detail"]})
    for n in nudges:
        n["journey"] = by_id[n["nudge_id"]]
    return nudges


async def nudges_for(
    pool: asyncpg.Pool, participant_id: str, status: str | None, limit: int
) -> list[dict[str, Any]]:
    return await _with_journeys(
        pool, list(await pool.fetch(_NUDGES_FOR, participant_id, status, limit))
    )


async def get_nudge(pool: asyncpg.Pool, nudge_id: UUID) -> dict[str, Any] | None:
    row = await pool.fetchrow(_GET_NUDGE, nudge_id)
    return (await _with_journeys(pool, [row]))[0] if row else None


async def tasks_for_site(
    pool: asyncpg.Pool, site: str, status: str | None, limit: int, study: str
) -> list[dict[str, Any]]:
    return [dict(r) for r in await pool.fetch(_TASKS, site, status, limit, study)]


async def complete_task(conn: DbConnection | asyncpg.Pool, task_id: UUID) -> bool:
    return await conn.fetchrow(_COMPLETE_TASK, task_id) is not None


async def local_mailbox(pool: asyncpg.Pool, participant_id: str) -> list[dict[str, Any]]:
    return [dict(r) for r in await pool.fetch(_LOCAL_MAILBOX, participant_id)]


_FEATURES = """
SELECT p.participant_id, p.study_id, p.site_id,
       (SELECT count(*) FROM active_hours h
         WHERE h.participant_id = p.participant_id AND h.hour > $1::timestamptz - interval '7 days') / 168.0
           AS wear_fraction,
       CASE WHEN e.responses + e.missed_total > 0
            THEN e.on_time::float8 / (e.responses + e.missed_total) END AS epro_compliance,
       COALESCE(e.visits_missed_total, 0)::float8 AS missed_visits,
       CASE WHEN e.latency_count > 0 THEN e.latency_hours_sum / e.latency_count END
           AS mean_latency_hours
FROM participants p LEFT JOIN engagement e USING (participant_id)
WHERE p.withdrawn_at IS NULL  -- nobody chases a participant who withdrew (decision 0034)
ORDER BY p.participant_id
"""
_INSERT_SCORES = """
INSERT INTO risk_scores (participant_id, scored_at, score, model_version, features)
SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::float8[], $4::text[], $5::jsonb[])
ON CONFLICT DO NOTHING
"""
_OUTREACH = """
SELECT DISTINCT ON (r.participant_id) r.participant_id, r.score, r.model_version, r.scored_at,
       r.features
FROM risk_scores r JOIN participants p USING (participant_id)
WHERE p.site_id = $1 AND p.withdrawn_at IS NULL AND p.study_id = $2
ORDER BY r.participant_id, r.scored_at DESC
"""


async def engagement_features(pool: asyncpg.Pool, now: datetime) -> list[asyncpg.Record]:
    return list(await pool.fetch(_FEATURES, now))


async def insert_scores(
    pool: asyncpg.Pool | DbConnection,
    ids: list[str],
    at: datetime,
    scores: list[float],
    version: str,
    features: list[str],
) -> None:
    await pool.execute(_INSERT_SCORES, ids, [at] * len(ids), scores, [version] * len(ids), features)


async def outreach(pool: asyncpg.Pool, site: str, limit: int, study: str) -> list[dict[str, Any]]:
    """Latest score per participant of `site` in `study`, highest risk first."""
    rows = [dict(r) for r in await pool.fetch(_OUTREACH, site, study)]
    for r in rows:
        r["features"] = json.loads(r["features"])
    rows.sort(key=lambda r: (-r["score"], r["participant_id"]))
    return rows[:limit]


_WHERE_IS = {
    "participant": "SELECT study_id, site_id FROM participants WHERE participant_id = $1",
    "nudge": "SELECT p.study_id, p.site_id FROM nudges n JOIN participants p USING (participant_id)"
    " WHERE n.nudge_id = $1",
    "task": "SELECT p.study_id, p.site_id FROM coordinator_tasks t"
    " JOIN participants p USING (participant_id) WHERE t.task_id = $1",
}


async def where_is(pool: asyncpg.Pool, kind: str, key: str | UUID) -> tuple[str, str] | None:
    """(study, site) of a participant, or of a nudge's or task's participant (None: unknown)."""
    row = await pool.fetchrow(_WHERE_IS[kind], key)
    return None if row is None else (row["study_id"], row["site_id"])
