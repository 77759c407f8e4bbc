"""The readings stream folded into 5-minute rollups per participant and metric (n, sum, min,
max), for the dashboard's timeline chart.

READINGS is the hot stream, so a batch is one statement and one round trip: the batch goes
in as column arrays, its event ids into `reading_rollup_seen` (ON CONFLICT DO NOTHING), and
only the ids that were new there are aggregated and upserted into the rollups. A
redelivered reading (at-least-once) is therefore dropped in the same transaction that
would have counted it. Storing sum and n (not the mean) is what makes the fold additive.
Locks are taken in a fixed order (event id, then rollup key), so two consumers that
briefly hold the same records during a rebalance queue rather than deadlock.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from trialstream.db import DbConnection
from trialstream.events.readings import ReadingReceived

BUCKET_SECONDS = 300

_FOLD = f"""
WITH batch AS (
    SELECT DISTINCT ON (event_id) *
    FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::float8[])
         AS b(event_id, participant_id, metric, measured_at, value)
    ORDER BY event_id
), fresh AS (
    INSERT INTO reading_rollup_seen (event_id)
    SELECT event_id FROM batch ORDER BY event_id
    ON CONFLICT DO NOTHING
    RETURNING event_id
)
INSERT INTO reading_rollups AS r (participant_id, metric, bucket, n, sum, min, max)
SELECT b.participant_id, b.metric,
       to_timestamp(floor(extract(epoch FROM b.measured_at) / {BUCKET_SECONDS}) * {BUCKET_SECONDS}),
       count(*), sum(b.value), min(b.value), max(b.value)
FROM batch b JOIN fresh USING (event_id)
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3
ON CONFLICT (participant_id, metric, bucket) DO UPDATE
SET n = r.n + EXCLUDED.n, sum = r.sum + EXCLUDED.sum,
    min = least(r.min, EXCLUDED.min), max = greatest(r.max, EXCLUDED.max)
"""  # noqa: S608 - the only interpolation is a constant
_PURGE_SEEN = "DELETE FROM reading_rollup_seen WHERE seen_at < now() - make_interval(secs => $1)"
# A slice per call (the KRI tick calls it every minute): never one long delete.
_FORGET_ROLLUPS = """
DELETE FROM reading_rollups WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM reading_rollups WHERE bucket < $1 LIMIT $2
))
"""
ROLLUP_SLICE = 50_000


async def record_readings_for_timeline(
    conn: DbConnection, readings: Sequence[ReadingReceived]
) -> None:
    """Fold a batch of readings into the rollups, each reading once however often it is
    delivered. Call inside the consumer's transaction."""
    if not readings:
        return
    await conn.execute(
        _FOLD,
        [r.event_id for r in readings],
        [r.participant_id for r in readings],
        [str(r.metric) for r in readings],
        [r.measured_at for r in readings],
        [r.value for r in readings],
    )


async def forget_seen_readings(conn: DbConnection, older_than_seconds: float) -> str:
    """Drop dedupe ids older than the redelivery horizon; returns the command status."""
    return str(await conn.execute(_PURGE_SEEN, older_than_seconds))


async def forget_rollups_before(
    conn: DbConnection, before: datetime, slice_rows: int = ROLLUP_SLICE
) -> int:
    """Delete up to `slice_rows` rollups of buckets before `before`; returns how many went
    (a backlog goes over several calls)."""
    status = await conn.execute(_FORGET_ROLLUPS, before, slice_rows)
    return int(str(status).rsplit(" ", 1)[-1])
