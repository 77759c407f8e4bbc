"""Risk-based monitoring SQL: stream state, flags, KRI facts and KRI episode state.

Every write is a set-based statement over unnest() arrays: one round trip per concern per
batch, idempotent by the tables' keys."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg
from trialstream.db import DbConnection
from trialstream.identity import DEFAULT_STUDY

from monitoring.rbm.flags import FlagCandidate

Db = DbConnection | asyncpg.Pool

_PARTICIPANT_STATE = """
SELECT participant_id, site_id, withdrawn_at FROM rbm_participants
WHERE participant_id = ANY($1::text[])
"""
_LAST_READINGS = """
SELECT participant_id, device_id, metric, extract(epoch FROM measured_at) AS t, value
FROM rbm_last_readings WHERE participant_id = ANY($1::text[]) AND metric = ANY($2::text[])
"""
# All per-batch state in one statement; the final SELECT lists devices that sent for more
# than one participant (the UNION sees this batch's pairs, which the CTE's insert cannot).
_WRITE_READING_STATE = """
WITH slots AS (
    INSERT INTO rbm_wear_slots (participant_id, slot_start)
    SELECT * FROM unnest($1::text[], $2::timestamptz[]) ON CONFLICT DO NOTHING
), last AS (
    INSERT INTO rbm_last_readings AS l (participant_id, device_id, metric, measured_at, value)
    SELECT * FROM unnest($3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::float8[])
    ON CONFLICT (participant_id, device_id, metric) DO UPDATE
    SET measured_at = EXCLUDED.measured_at, value = EXCLUDED.value
    WHERE EXCLUDED.measured_at > l.measured_at
), jumps AS (
    INSERT INTO rbm_jumps (participant_id, device_id, metric, at, delta, seconds)
    SELECT * FROM unnest($8::text[], $9::text[], $10::text[], $11::timestamptz[],
                         $12::float8[], $13::float8[])
    ON CONFLICT DO NOTHING
), devices AS (
    INSERT INTO rbm_devices AS d (device_id, participant_id, first_measured, last_measured)
    SELECT * FROM unnest($14::text[], $15::text[], $16::timestamptz[], $17::timestamptz[])
    ON CONFLICT (device_id, participant_id) DO UPDATE
    SET first_measured = least(d.first_measured, EXCLUDED.first_measured),
        last_measured = greatest(d.last_measured, EXCLUDED.last_measured)
)
SELECT device_id, array_agg(DISTINCT participant_id ORDER BY participant_id) AS participants
FROM (
    SELECT device_id, participant_id FROM rbm_devices WHERE device_id = ANY($14::text[])
    UNION SELECT * FROM unnest($14::text[], $15::text[])
) pairs
GROUP BY device_id HAVING count(DISTINCT participant_id) > 1
"""
_RECENT_JUMPS = """
SELECT participant_id, device_id, metric, at, delta, seconds FROM rbm_jumps
WHERE (participant_id, device_id, metric) IN (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[]))
  AND at >= $4
ORDER BY at
"""
_RAISE_FLAGS = """
INSERT INTO rbm_flags AS f (flag_id, dedupe_key, participant_id, kind, reason, evidence, evidence_at)
SELECT c.* FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::jsonb[],
                       $7::timestamptz[]) AS c(id, key, p, kind, reason, evidence, at)
WHERE NOT EXISTS (
    SELECT 1 FROM rbm_flags old
    WHERE old.dedupe_key = c.key AND old.status = 'closed' AND old.closed_at >= c.at)
ON CONFLICT (dedupe_key) WHERE status = 'open' DO NOTHING
RETURNING flag_id, dedupe_key, participant_id, kind, reason, evidence, raised_at
"""
_UPSERT_PARTICIPANTS = """
INSERT INTO rbm_participants AS p (participant_id, site_id, timezone, status, enrolled_at, withdrawn_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[],
                     $6::timestamptz[])
ON CONFLICT (participant_id) DO UPDATE
SET site_id = EXCLUDED.site_id, timezone = EXCLUDED.timezone,
    enrolled_at = least(p.enrolled_at, EXCLUDED.enrolled_at),
    -- withdrawal is final: a replayed older enrolment record does not undo it
    status = CASE WHEN p.status = 'withdrawn' THEN p.status ELSE EXCLUDED.status END,
    withdrawn_at = coalesce(p.withdrawn_at, EXCLUDED.withdrawn_at)
"""
_SEEN_AFTER_WITHDRAWAL = """
SELECT p.participant_id, p.withdrawn_at, array_agg(d.device_id ORDER BY d.device_id) AS devices,
       max(d.last_measured) AS measured_at
FROM rbm_participants p JOIN rbm_devices d USING (participant_id)
WHERE p.participant_id = ANY($1::text[]) AND d.last_measured > p.withdrawn_at
GROUP BY p.participant_id, p.withdrawn_at
"""
_UPSERT_OCCURRENCES = """
INSERT INTO rbm_epro_occurrences AS o
    (occurrence_id, participant_id, questionnaire_id, due_at, expires_at, missed)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[],
                     $6::bool[])
ON CONFLICT (occurrence_id) DO UPDATE
SET due_at = EXCLUDED.due_at, expires_at = EXCLUDED.expires_at, missed = o.missed OR EXCLUDED.missed
"""
_ANSWER_OCCURRENCES = """
INSERT INTO rbm_epro_occurrences AS o
    (occurrence_id, participant_id, questionnaire_id, answered_on_time, response_id)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bool[], $5::uuid[])
ON CONFLICT (occurrence_id) DO UPDATE
SET answered_on_time = coalesce(o.answered_on_time, EXCLUDED.answered_on_time),
    response_id = coalesce(o.response_id, EXCLUDED.response_id)
"""
_UPSERT_DIARY = """
INSERT INTO rbm_diary_activity AS d
    (response_id, participant_id, local_day, activity, version, submitted_at)
SELECT r.id, r.p,
       (coalesce(o.due_at, r.submitted) AT TIME ZONE coalesce(pp.timezone, 'UTC'))::date,
       r.activity, r.version, r.submitted
FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::float8[], $5::int[], $6::timestamptz[])
     AS r(id, p, occ, activity, version, submitted)
LEFT JOIN rbm_epro_occurrences o ON o.occurrence_id = r.occ
LEFT JOIN rbm_participants pp ON pp.participant_id = r.p
ON CONFLICT (response_id) DO UPDATE
SET activity = EXCLUDED.activity, version = EXCLUDED.version
WHERE EXCLUDED.version > d.version
"""
# Diary days reporting no activity, with the wearable's steps on that local day: the
# timeline's 5-minute step-count rollups (every real time zone's offset is a whole number of
# buckets, so a bucket lies within one local day).
_DIARY_STEPS = """
SELECT d.response_id, d.participant_id, d.local_day, d.activity, d.submitted_at,
       coalesce(sum(s.sum), 0) AS steps
FROM rbm_diary_activity d
LEFT JOIN rbm_participants p USING (participant_id)
LEFT JOIN reading_rollups s ON s.participant_id = d.participant_id AND s.metric = 'step-count'
    AND s.bucket >= (d.local_day - 1)::timestamp AT TIME ZONE 'UTC'
    AND s.bucket < (d.local_day + 2)::timestamp AT TIME ZONE 'UTC'
    AND (s.bucket AT TIME ZONE coalesce(p.timezone, 'UTC'))::date = d.local_day
WHERE d.activity <= $1 AND d.submitted_at >= $2
  AND ($3::uuid[] IS NULL OR d.response_id = ANY($3::uuid[]))
GROUP BY d.response_id, d.participant_id, d.local_day, d.activity, d.submitted_at
"""
_UPSERT_VISITS = """
INSERT INTO rbm_visits AS v
    (visit_id, participant_id, site_id, status, window_start, window_end, done_at, event_at)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::timestamptz[],
                     $6::timestamptz[], $7::timestamptz[], $8::timestamptz[])
ON CONFLICT (visit_id) DO UPDATE
SET status = EXCLUDED.status, window_start = EXCLUDED.window_start,
    window_end = EXCLUDED.window_end, done_at = EXCLUDED.done_at, event_at = EXCLUDED.event_at
WHERE EXCLUDED.event_at >= v.event_at
"""
# Everything the KRIs of the selected participants need, in one round trip:
# $1 site or NULL, $2 participant or NULL, $3 now, $4 window start (wear, ack, dq),
# $5 ePRO window start, $6 visit window start, $7 study or NULL. A participant whose
# enrolment the inbox has not seen yet counts as the default study's.
_FACTS = """
SELECT p.participant_id, COALESCE(m.study_id, 'default') AS study_id,
  p.site_id, p.timezone, p.enrolled_at, p.withdrawn_at,
  (SELECT coalesce(array_agg(w.slot_start), '{}') FROM rbm_wear_slots w
    WHERE w.participant_id = p.participant_id AND w.slot_start >= $4::timestamptz - interval '1 hour'
  ) AS slots,
  (SELECT count(*) FROM rbm_epro_occurrences o
    WHERE o.participant_id = p.participant_id AND o.due_at >= $5 AND o.due_at <= $3
      AND o.due_at < coalesce(p.withdrawn_at, 'infinity') AND o.answered_on_time
  ) AS epro_on_time,
  (SELECT count(*) FROM rbm_epro_occurrences o
    WHERE o.participant_id = p.participant_id AND o.due_at >= $5 AND o.due_at <= $3
      AND o.due_at < coalesce(p.withdrawn_at, 'infinity')
      AND (o.expires_at <= $3 OR o.answered_on_time IS NOT NULL)
  ) AS epro_due,
  (SELECT count(*) FILTER (WHERE v.status = 'completed'
                             AND v.done_at BETWEEN v.window_start AND v.window_end)
   FROM rbm_visits v
    WHERE v.participant_id = p.participant_id AND v.window_end >= $6
      AND v.window_start < coalesce(p.withdrawn_at, 'infinity')
  ) AS visits_in_window,
  (SELECT count(*) FILTER (WHERE v.status IN ('completed', 'missed')) FROM rbm_visits v
    WHERE v.participant_id = p.participant_id AND v.window_end >= $6
      AND v.window_start < coalesce(p.withdrawn_at, 'infinity')
  ) AS visits_decided,
  (SELECT coalesce(array_agg(
            extract(epoch FROM coalesce(a.acknowledged_at, $3) - a.received_at) / 60.0), '{}')
   FROM alerts a WHERE a.participant_id = p.participant_id AND a.received_at >= $4
  ) AS ack_minutes,
  (SELECT count(*) FROM rbm_flags f
    WHERE f.participant_id = p.participant_id AND f.raised_at >= $4)
  + (SELECT count(*) FROM alerts a
    WHERE a.participant_id = p.participant_id AND a.kind = 'device-quality'
      AND a.detected_at >= $4) AS dq_events
FROM rbm_participants p LEFT JOIN participants m ON m.participant_id = p.participant_id
WHERE ($1::text IS NULL OR p.site_id = $1) AND ($2::text IS NULL OR p.participant_id = $2)
  AND ($7::text IS NULL OR COALESCE(m.study_id, 'default') = $7)
ORDER BY study_id, p.site_id, p.participant_id
"""
# per (study, site): alerts nobody acknowledged, discrepancy flags not closed
_OPEN_WORK = """
SELECT study_id, site_id, sum(open_alerts)::int AS open_alerts, sum(open_flags)::int AS open_flags
FROM (
  SELECT COALESCE(m.study_id, 'default') AS study_id, p.site_id,
    (SELECT count(*) FROM alerts a
      WHERE a.participant_id = p.participant_id AND a.status = 'open') AS open_alerts,
    (SELECT count(*) FROM rbm_flags f
      WHERE f.participant_id = p.participant_id AND f.status = 'open') AS open_flags
  FROM rbm_participants p LEFT JOIN participants m ON m.participant_id = p.participant_id
) per_participant
GROUP BY study_id, site_id
"""
_SITE_OF = "SELECT site_id FROM rbm_participants WHERE participant_id = $1"
_TRY_KRI_LOCK = "SELECT pg_try_advisory_xact_lock(hashtext('monitoring-rbm-kri'))"
_ENSURE_KRI_STATE = """
INSERT INTO rbm_kri_state (study_id, scope, scope_id, kri, site_id)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
ON CONFLICT DO NOTHING
"""
_LOCK_KRI_STATE = """
SELECT study_id, scope, scope_id, kri, status, breach_open, breached_at FROM rbm_kri_state
WHERE (study_id, scope, scope_id, kri) IN (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]))
ORDER BY study_id, scope, scope_id, kri
FOR UPDATE
"""
_UPDATE_KRI_STATE = """
UPDATE rbm_kri_state k
SET status = u.status, value = u.value, breach_open = u.open, breached_at = u.breached_at,
    updated_at = now()
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::float8[],
            $7::bool[], $8::timestamptz[])
     AS u(study_id, scope, scope_id, kri, status, value, open, breached_at)
WHERE k.study_id = u.study_id AND k.scope = u.scope AND k.scope_id = u.scope_id
  AND k.kri = u.kri
"""
_FLAG_COLUMNS = """
f.flag_id, f.participant_id, p.site_id, f.kind, f.reason, f.evidence, f.raised_at, f.status,
f.closed_by, f.closed_at, f.close_note,
(SELECT m.study_id FROM participants m WHERE m.participant_id = f.participant_id) AS study_id
"""
_LIST_FLAGS = f"""
SELECT {_FLAG_COLUMNS}
FROM rbm_flags f LEFT JOIN rbm_participants p USING (participant_id)
WHERE ($1::text IS NULL OR p.site_id = $1) AND ($2::text IS NULL OR f.status = $2)
  AND ($3::text IS NULL OR f.participant_id = $3)
  AND COALESCE(
      (SELECT m.study_id FROM participants m WHERE m.participant_id = f.participant_id),
      'default') = $5
ORDER BY f.raised_at DESC, f.flag_id
LIMIT $4
"""  # noqa: S608 - constant column list
_LOCK_FLAG = f"""
SELECT {_FLAG_COLUMNS}
FROM rbm_flags f LEFT JOIN rbm_participants p USING (participant_id)
WHERE f.flag_id = $1
FOR UPDATE OF f
"""  # noqa: S608 - constant column list
_CLOSE_FLAG = """
UPDATE rbm_flags SET status = 'closed', closed_by = $2, closed_at = now(), close_note = $3
WHERE flag_id = $1
"""
_PURGE = """
WITH a AS (DELETE FROM rbm_wear_slots WHERE slot_start < $1),
     c AS (DELETE FROM rbm_jumps WHERE at < $1)
SELECT 1
"""


async def participant_state(
    conn: Db, participants: Sequence[str]
) -> dict[str, tuple[str, datetime | None]]:
    rows = await conn.fetch(_PARTICIPANT_STATE, list(participants))
    return {r["participant_id"]: (r["site_id"], r["withdrawn_at"]) for r in rows}


async def last_readings(
    conn: Db, participants: Sequence[str], metrics: Sequence[str]
) -> dict[tuple[str, str, str], tuple[float, float]]:
    rows = await conn.fetch(_LAST_READINGS, list(participants), list(metrics))
    return {
        (r["participant_id"], r["device_id"], r["metric"]): (float(r["t"]), r["value"])
        for r in rows
    }


@dataclass(frozen=True)
class ReadingState:
    """What one batch of readings changes, as column arrays, one group per table. The
    fields are in the order of _WRITE_READING_STATE's parameters ($1..$17): the order is
    this class's concern alone, callers name the fields."""

    slot_participants: Sequence[str]  # rbm_wear_slots
    slot_starts: Sequence[datetime]
    last_participants: Sequence[str]  # rbm_last_readings
    last_devices: Sequence[str]
    last_metrics: Sequence[str]
    last_measured_at: Sequence[datetime]
    last_values: Sequence[float]
    jump_participants: Sequence[str]  # rbm_jumps
    jump_devices: Sequence[str]
    jump_metrics: Sequence[str]
    jump_at: Sequence[datetime]
    jump_deltas: Sequence[float]
    jump_seconds: Sequence[float]
    pair_devices: Sequence[str]  # rbm_devices
    pair_participants: Sequence[str]
    pair_first_measured: Sequence[datetime]
    pair_last_measured: Sequence[datetime]


async def write_reading_state(conn: Db, state: ReadingState) -> list[tuple[str, list[str]]]:
    """Slots, steps, last readings, jumps and device pairs in one statement; returns the
    devices that sent for more than one participant."""
    columns = [list(getattr(state, f.name)) for f in fields(ReadingState)]
    rows = await conn.fetch(_WRITE_READING_STATE, *columns)
    return [(r["device_id"], list(r["participants"])) for r in rows]


async def recent_jumps(
    conn: Db, keys: Sequence[tuple[str, str, str]], since: datetime
) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            _RECENT_JUMPS, [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys], since
        )
    )


async def raise_flags(conn: Db, candidates: Sequence[FlagCandidate]) -> list[dict[str, Any]]:
    """Insert the candidates that open a new episode; returns those inserted."""
    # sorted: concurrent transactions take the unique index's locks in the same order
    unique = sorted({c.dedupe_key: c for c in candidates}.values(), key=lambda c: c.dedupe_key)
    if not unique:
        return []
    rows = await conn.fetch(
        _RAISE_FLAGS,
        [uuid4() for _ in unique],
        [c.dedupe_key for c in unique],
        [c.participant_id for c in unique],
        [str(c.kind) for c in unique],
        [c.reason for c in unique],
        [json.dumps(c.evidence) for c in unique],
        [c.evidence_at for c in unique],
    )
    return [_flag(r) for r in rows]


async def upsert_participants(conn: Db, rows: Sequence[tuple[Any, ...]]) -> None:
    await conn.execute(_UPSERT_PARTICIPANTS, *[list(c) for c in zip(*rows, strict=True)])


async def seen_after_withdrawal(conn: Db, participants: Sequence[str]) -> list[asyncpg.Record]:
    return list(await conn.fetch(_SEEN_AFTER_WITHDRAWAL, list(participants)))


async def upsert_occurrences(conn: Db, rows: Sequence[tuple[Any, ...]]) -> None:
    await conn.execute(_UPSERT_OCCURRENCES, *[list(c) for c in zip(*rows, strict=True)])


async def answer_occurrences(conn: Db, rows: Sequence[tuple[Any, ...]]) -> None:
    await conn.execute(_ANSWER_OCCURRENCES, *[list(c) for c in zip(*rows, strict=True)])


async def upsert_diary(conn: Db, rows: Sequence[tuple[Any, ...]]) -> None:
    await conn.execute(_UPSERT_DIARY, *[list(c) for c in zip(*rows, strict=True)])


async def diary_steps(
    conn: Db, at_most: float, since: datetime, response_ids: Sequence[UUID] | None
) -> list[asyncpg.Record]:
    ids = None if response_ids is None else list(response_ids)
    return list(await conn.fetch(_DIARY_STEPS, at_most, since, ids))


async def upsert_visits(conn: Db, rows: Sequence[tuple[Any, ...]]) -> None:
    await conn.execute(_UPSERT_VISITS, *[list(c) for c in zip(*rows, strict=True)])


async def facts(
    conn: Db,
    site: str | None,
    participant: str | None,
    now: datetime,
    window_start: datetime,
    epro_start: datetime,
    visit_start: datetime,
    study: str | None = None,
) -> list[asyncpg.Record]:
    """KRI inputs per participant (of a site, of one participant, of one study: None is any;
    a participant not enrolled in monitoring yet counts as the default study's)."""
    return list(
        await conn.fetch(
            _FACTS, site, participant, now, window_start, epro_start, visit_start, study
        )
    )


async def open_work(conn: Db) -> dict[tuple[str, str], tuple[int, int]]:
    """(open alerts, open flags) per (study, site)."""
    rows = await conn.fetch(_OPEN_WORK)
    return {(r["study_id"], r["site_id"]): (r["open_alerts"], r["open_flags"]) for r in rows}


async def site_of(conn: Db, participant: str) -> str | None:
    site: str | None = await conn.fetchval(_SITE_OF, participant)
    return site


async def try_kri_lock(conn: DbConnection) -> bool:
    return bool(await conn.fetchval(_TRY_KRI_LOCK))


async def lock_kri_state(
    conn: DbConnection, keys: Sequence[tuple[str, str, str, str, str]]
) -> dict[tuple[str, str, str, str], asyncpg.Record]:
    """Create missing rows, then lock all of them (in key order: no deadlocks). A key is
    (study, scope, scope id, kri, site): a site's episodes are its study's."""
    cols = [list(c) for c in zip(*keys, strict=True)] if keys else [[], [], [], [], []]
    await conn.execute(_ENSURE_KRI_STATE, *cols)
    rows = await conn.fetch(_LOCK_KRI_STATE, *cols[:4])
    return {(r["study_id"], r["scope"], r["scope_id"], r["kri"]): r for r in rows}


async def update_kri_state(conn: DbConnection, rows: Sequence[tuple[Any, ...]]) -> None:
    if rows:
        await conn.execute(_UPDATE_KRI_STATE, *[list(c) for c in zip(*rows, strict=True)])


def _flag(row: asyncpg.Record) -> dict[str, Any]:
    flag = dict(row)
    flag["evidence"] = json.loads(flag["evidence"])
    return flag


async def list_flags(
    conn: Db,
    site: str | None,
    status: str | None,
    participant: str | None,
    limit: int,
    study: str = DEFAULT_STUDY,
) -> list[dict[str, Any]]:
    """One study's flags (a participant not enrolled here yet counts as the default
    study's), of a site or every site, newest first."""
    rows = await conn.fetch(_LIST_FLAGS, site, status, participant, limit, study)
    return [_flag(r) for r in rows]


async def lock_flag(conn: DbConnection, flag_id: UUID) -> dict[str, Any] | None:
    row = await conn.fetchrow(_LOCK_FLAG, flag_id)
    return _flag(row) if row else None


async def close_flag(conn: DbConnection, flag_id: UUID, staff_id: str, note: str) -> None:
    await conn.execute(_CLOSE_FLAG, flag_id, staff_id, note)


async def purge(conn: Db, before: datetime) -> None:
    await conn.execute(_PURGE, before)
