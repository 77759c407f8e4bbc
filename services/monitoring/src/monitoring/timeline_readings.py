"""Reading summaries' 5-minute rollups (n, sum, min, max per participant, metric and bucket)
folded into the timeline chart's rollups (decision 0093).

A batch is one statement and one round trip: the summaries' rollups go in as column arrays,
their summary ids into `reading_rollup_seen` (ON CONFLICT DO NOTHING), and only the rollups
of summaries new there are added. A redelivered summary (at-least-once), or the same
readings uploaded again (their summary has the same id), is therefore dropped in the
transaction that would have counted it. Storing sum and n (not the mean) is what makes
the fold additive. Locks are taken in a fixed order (summary id, then rollup key), so two
consumers that briefly hold the same records during a rebalance queue rather than
deadlock.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from trialstream.db import DbConnection
from trialstream.events.readings import ReadingsSummarised

_FOLD = """
WITH batch AS (
    SELECT DISTINCT ON (event_id, metric, bucket) *
    FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::int[],
                $6::float8[], $7::float8[], $8::float8[])
         AS b(event_id, participant_id, metric, bucket, n, sum, min, max)
    ORDER BY event_id, metric, bucket
), fresh AS (
    INSERT INTO reading_rollup_seen (event_id)
    SELECT DISTINCT event_id FROM batch ORDER BY event_id
    ON CONFLICT DO NOTHING
    RETURNING event_id
)
INSERT INTO reading_rollups AS r (participant_id, metric, bucket, n, sum, min, max)
SELECT b.participant_id, b.metric, b.bucket, sum(b.n), sum(b.sum), min(b.min), max(b.max)
FROM batch b JOIN fresh USING (event_id)
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3
ON CONFLICT (participant_id, metric, bucket) DO UPDATE
SET n = r.n + EXCLUDED.n, sum = r.sum + EXCLUDED.sum,
    min = least(r.min, EXCLUDED.min), max = greatest(r.max, EXCLUDED.max)
"""
_PURGE_SEEN = "DELETE FROM reading_rollup_seen WHERE seen_at < now() - make_interval(secs => $1)"
# A slice per call (the KRI tick calls it every minute): never one long delete.
_FORGET_ROLLUPS = """
DELETE FROM reading_rollups WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM reading_rollups WHERE bucket < $1 LIMIT $2
))
"""
ROLLUP_SLICE = 50_000


async def record_rollups_for_timeline(
    conn: DbConnection, summaries: Sequence[ReadingsSummarised]
) -> None:
    """Fold a batch of summaries' rollups into the timeline's, each summary once however
    often it is delivered. Call inside the consumer's transaction."""
    rows = [
        (s.event_id, s.participant_id, str(m), b, n, total, lo, hi)
        for s in summaries
        for m, b, n, total, lo, hi in zip(
            s.rollups.metric,
            s.rollups.bucket,
            s.rollups.n,
            s.rollups.sum,
            s.rollups.min,
            s.rollups.max,
            strict=True,
        )
    ]
    if rows:
        await conn.execute(_FOLD, *[list(c) for c in zip(*rows, strict=True)])


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
