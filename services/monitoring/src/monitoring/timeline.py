"""The participant timeline: ePRO responses and missed questionnaires, visit changes, and
the reading rollups, read back for the dashboard. One row per event, keyed by event_id,
so redelivered events are dropped by the primary key."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg
from trialstream.events.epro import QuestionnaireMissed, ResponseSubmitted
from trialstream.events.visits import VisitChanged
from trialstream.reading_summaries import ROLLUP_SECONDS as BUCKET_SECONDS

_INSERT_EVENTS = """
INSERT INTO timeline_events (event_id, participant_id, at, kind, title, detail)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::jsonb[])
ON CONFLICT (event_id) DO NOTHING
"""
_EVENTS = """
SELECT event_id, at, kind, title, detail FROM timeline_events
WHERE participant_id = $1 AND at >= $2 AND at < $3 ORDER BY at
"""
_ROLLUPS = """
SELECT metric, bucket, n, sum / n AS mean, min, max FROM reading_rollups
WHERE participant_id = $1 AND bucket >= $2 AND bucket < $3 ORDER BY metric, bucket
"""

Row = tuple[Any, str, datetime, str, str, str]


def response_row(e: ResponseSubmitted) -> Row:
    scores = ", ".join(f"{k} {v:g}" for k, v in sorted(e.scores.items()))
    timing = "on time" if e.on_time else "late"
    title = f"{e.questionnaire_id} answered ({timing}{'; ' + scores if scores else ''})"
    if e.version > 1:
        title += f", correction v{e.version}"
    detail = {"scores": e.scores, "flags": e.flags, "on_time": e.on_time, "version": e.version}
    return (
        e.event_id,
        e.participant_id,
        e.submitted_at,
        "epro-response",
        title,
        json.dumps(detail),
    )


def missed_row(e: QuestionnaireMissed) -> Row:
    title = f"{e.questionnaire_id} missed (due {e.due_at:%Y-%m-%d %H:%M} UTC)"
    detail = {"due_at": e.due_at.isoformat(), "expires_at": e.expires_at.isoformat()}
    return (e.event_id, e.participant_id, e.expires_at, "epro-missed", title, json.dumps(detail))


def visit_row(e: VisitChanged) -> Row:
    at = e.starts_at or (e.window_end if e.status == "missed" else e.occurred_at)
    title = f"{e.visit_name} ({e.visit_type} visit): {e.status}"
    detail = {
        "visit_id": str(e.visit_id),
        "status": str(e.status),
        "window_start": e.window_start.isoformat(),
        "window_end": e.window_end.isoformat(),
        "reason": e.reason,
    }
    return (e.event_id, e.participant_id, at, "visit", title, json.dumps(detail))


async def record_events(pool: asyncpg.Pool, rows: Sequence[Row]) -> None:
    if rows:
        await pool.execute(_INSERT_EVENTS, *(list(col) for col in zip(*rows, strict=True)))


async def read(
    pool: asyncpg.Pool, participant_id: str, start: datetime, end: datetime
) -> dict[str, Any]:
    """Rollups per metric and timeline events of one participant between start and end."""
    series: dict[str, list[dict[str, Any]]] = {}
    for r in await pool.fetch(_ROLLUPS, participant_id, start, end):
        series.setdefault(r["metric"], []).append(
            {
                "bucket": r["bucket"],
                "n": r["n"],
                "mean": r["mean"],
                "min": r["min"],
                "max": r["max"],
            }
        )
    events = [
        {**dict(r), "detail": json.loads(r["detail"])}
        for r in await pool.fetch(_EVENTS, participant_id, start, end)
    ]
    return {"bucket_seconds": BUCKET_SECONDS, "readings": series, "events": events}
