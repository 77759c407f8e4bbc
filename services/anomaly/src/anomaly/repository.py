"""Anomaly's SQL: state checkpoints and emitted alerts, written in one transaction."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
from trialstream.events.alerts import AlertRaised
from trialstream.events.topics import Topic
from trialstream.outbox import enqueue

_LOAD_STATE = (
    "SELECT participant_id, state FROM participant_state WHERE participant_id = ANY($1::text[])"
)
_SAVE_STATE = """
INSERT INTO participant_state (participant_id, state, updated_at)
SELECT p, s::jsonb, now() FROM unnest($1::text[], $2::text[]) AS t(p, s)
ON CONFLICT (participant_id) DO UPDATE SET state = EXCLUDED.state, updated_at = now()
"""
_INSERT_ALERTS = """
INSERT INTO alerts (event_id, participant_id, rule, severity, detected_at, model_version)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[])
ON CONFLICT (event_id) DO NOTHING
RETURNING event_id
"""


async def load_states(
    pool: asyncpg.Pool, participant_ids: Sequence[str]
) -> dict[str, dict[str, Any]]:
    rows = await pool.fetch(_LOAD_STATE, list(participant_ids))
    return {row["participant_id"]: json.loads(row["state"]) for row in rows}


async def commit_scores(
    pool: asyncpg.Pool, states: Mapping[str, Mapping[str, Any]], alerts: Sequence[AlertRaised]
) -> int:
    """Checkpoint states, record alerts, and queue the new ones for Kafka, atomically.
    Returns how many alerts were new (the rest were emitted by an earlier delivery)."""
    async with pool.acquire() as conn, conn.transaction():
        if states:
            await conn.execute(
                _SAVE_STATE,
                list(states),
                [json.dumps(s, separators=(",", ":")) for s in states.values()],
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
