"""Anomaly's SQL: state checkpoints and emitted alerts, written in one transaction."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from prometheus_client import Counter
from trialstream.db import DbConnection
from trialstream.events.alerts import AlertEpisodeEnded, AlertRaised
from trialstream.events.topics import Topic
from trialstream.outbox import enqueue
from trialstream.transient import TransientConflict

FENCED = Counter(
    "trialstream_anomaly_checkpoints_fenced_total",
    "Batches whose checkpoint write was refused: another replica wrote those participants "
    "after this one loaded them (a paused replica that lost its partitions)",
)
_LOAD_STATE = """
SELECT participant_id, state, version FROM participant_state
WHERE participant_id = ANY($1::text[])
"""
# Fenced: a row is written only over the version its writer loaded ($4; 0 when it had
# none), and RETURNING says which were. A writer that loaded nothing and finds a row lost
# the race to whoever inserted it.
_SAVE_STATE = """
INSERT INTO participant_state (participant_id, state, updated_at, last_received_at, version)
SELECT p, s::jsonb, now(), r, v + 1
FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::bigint[]) AS t(p, s, r, v)
ON CONFLICT (participant_id) DO UPDATE SET
    state = EXCLUDED.state,
    updated_at = now(),
    last_received_at = GREATEST(participant_state.last_received_at, EXCLUDED.last_received_at),
    version = participant_state.version + 1
WHERE participant_state.version = EXCLUDED.version - 1
RETURNING participant_id
"""
# Participants whose newest reading is not yet known to be a reported silence, and from
# whom nothing arrived since the cutoff. Locked, so two replicas never check one twice.
_SILENT = """
SELECT participant_id, state, version FROM participant_state
WHERE last_received_at < $1
  AND state ? 'seen_us'
  AND (state -> 'seen_us') IS DISTINCT FROM (state -> 'dropout_alerted_us')
ORDER BY last_received_at
LIMIT $2
FOR UPDATE SKIP LOCKED
"""
_INSERT_ALERTS = """
INSERT INTO alerts (event_id, participant_id, rule, severity, detected_at, model_version)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[])
ON CONFLICT (event_id) DO NOTHING
RETURNING event_id
"""


class LostRace(TransientConflict):
    """Another writer checkpointed some of these participants after this one loaded them:
    nothing of this batch was written. Retried: the next try starts from the new state."""


@dataclass(frozen=True)
class Checkpoints:
    states: dict[str, dict[str, Any]]
    versions: dict[str, int]  # the version each state was loaded at (absent: none yet)


async def load_states(pool: asyncpg.Pool, participant_ids: Sequence[str]) -> Checkpoints:
    rows = await pool.fetch(_LOAD_STATE, list(participant_ids))
    return Checkpoints(
        {row["participant_id"]: json.loads(row["state"]) for row in rows},
        {row["participant_id"]: row["version"] for row in rows},
    )


async def commit_scores(
    pool: asyncpg.Pool,
    states: Mapping[str, Mapping[str, Any]],
    alerts: Sequence[AlertRaised],
    received: Mapping[str, datetime] | None = None,
    ended: Sequence[AlertEpisodeEnded] = (),
    *,
    versions: Mapping[str, int],
) -> int:
    """Checkpoint states, record alerts, and queue the new ones and the episodes that ended
    for Kafka, atomically. `received` is when each participant's newest reading arrived.
    Returns how many alerts were new (the rest were emitted by an earlier delivery).
    Ended episodes need no ledger: the checkpoint moves past the readings that closed
    them in the same transaction, so a re-delivered batch cannot close them again."""
    async with pool.acquire() as conn, conn.transaction():
        if ended:
            await enqueue(conn, Topic.ALERT_EPISODES_ENDED, [(e.participant_id, e) for e in ended])
        return await _write(conn, states, alerts, received or {}, versions)


async def check_silent(
    pool: asyncpg.Pool,
    cutoff: datetime,
    decide: Callable[
        [dict[str, dict[str, Any]]], tuple[Mapping[str, Mapping[str, Any]], Sequence[AlertRaised]]
    ],
    limit: int = 1000,
) -> int:
    """Hand the states of participants silent since `cutoff` to `decide`, then write the
    states and alerts it returns, in one transaction that holds their rows."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(_SILENT, cutoff, limit)
        if not rows:
            return 0
        states, alerts = decide({r["participant_id"]: json.loads(r["state"]) for r in rows})
        versions = {r["participant_id"]: r["version"] for r in rows}  # rows held: no race
        return await _write(conn, states, alerts, {}, versions)


async def _write(
    conn: DbConnection,
    states: Mapping[str, Mapping[str, Any]],
    alerts: Sequence[AlertRaised],
    received: Mapping[str, datetime],
    versions: Mapping[str, int],
) -> int:
    if states:
        written = await conn.fetch(
            _SAVE_STATE,
            list(states),
            [json.dumps(s, separators=(",", ":")) for s in states.values()],
            [received.get(p) for p in states],
            [versions.get(p, 0) for p in states],
        )
        if len(written) != len(states):
            FENCED.inc()
            raise LostRace(
                f"{len(states) - len(written)} of {len(states)} participants were checkpointed "
                "by another replica since this batch loaded them; retrying from their new state"
            )
    if not alerts:
        return 0
    rows = await conn.fetch(
        _INSERT_ALERTS,
        [a.event_id for a in alerts],
        [a.participant_id for a in alerts],
        [a.rule for a in alerts],
        [str(a.severity) for a in alerts],
        [a.detected_at for a in alerts],
        [a.model_version for a in alerts],
    )
    fresh = {row["event_id"] for row in rows}
    new_alerts = [a for a in alerts if a.event_id in fresh]
    await enqueue(conn, Topic.ALERTS, [(a.participant_id, a) for a in new_alerts])
    return len(new_alerts)


async def state_of(pool: asyncpg.Pool, participant_id: str) -> dict[str, Any] | None:
    """One participant's checkpointed scoring state (None: no readings scored yet)."""
    row = await pool.fetchrow(_LOAD_STATE, [participant_id])
    return None if row is None else dict(json.loads(row["state"]))
