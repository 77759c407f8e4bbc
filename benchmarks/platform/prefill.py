"""`--prefill-readings N`: an archive that looks like weeks of a trial before measuring.

N readings over the last 30 days across 10,000 participants (five metrics, plausible
values), generated inside PostgreSQL in chunks of a million, so 20 million take minutes,
not the hours an upload would. The archive's indexes are built as they would be in use
(rows arrive in random key order), which is what made a large archive slower to insert
into (issue 17). The archive is partitioned by measured day (decision 0074): the 31 days'
partitions are created first, through the function ingest itself uses.
"""

from __future__ import annotations

import contextlib
import sys
import time

import asyncpg

PARTICIPANTS = 10_000
CHUNK = 1_000_000
_FILL = """
INSERT INTO ingest.readings
    (event_id, participant_id, device_id, metric, value, unit, measured_at, received_at,
     measured_on)
SELECT gen_random_uuid(),
       'P-prefill-' || (g % $3),
       'watch-prefill-' || (g % $3),
       (ARRAY['heart-rate', 'oxygen-saturation', 'body-temperature', 'respiratory-rate',
              'step-count'])[1 + g % 5],
       CASE g % 5
           WHEN 0 THEN 55 + random() * 40
           WHEN 1 THEN 94 + random() * 5
           WHEN 2 THEN 35.5 + random() * 1.5
           WHEN 3 THEN 12 + random() * 6
           ELSE floor(random() * 120)
       END,
       (ARRAY['beats/min', '%', 'C', 'breaths/min', 'steps'])[1 + g % 5],
       at,
       at + interval '2 seconds',
       (at AT TIME ZONE 'UTC')::date
FROM generate_series($1::bigint, $2::bigint) AS g,
     LATERAL (SELECT now() - random() * interval '30 days' AS at) AS t
"""
_PARTITIONS = """
SELECT ingest.readings_partitions_for(ARRAY(
    SELECT d::date FROM generate_series(
        ((now() - interval '30 days') AT TIME ZONE 'UTC')::date, (now() AT TIME ZONE 'UTC')::date,
        interval '1 day') AS d))
"""


async def prefill(database_url: str, readings: int) -> float:
    """Fill the archive; returns the seconds it took."""
    started = time.monotonic()
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(_PARTITIONS)
        for first in range(1, readings + 1, CHUNK):
            last = min(first + CHUNK - 1, readings)
            await conn.execute(_FILL, first, last, PARTICIPANTS)
            print(f"  prefilled {last:,} / {readings:,} readings", file=sys.stderr, flush=True)
        await conn.execute("VACUUM ANALYZE ingest.readings")
        # Written back now, not by a checkpoint in the middle of the measurement (needs a
        # superuser or pg_checkpoint; without, the server's own checkpoints do it).
        with contextlib.suppress(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CHECKPOINT")
    finally:
        await conn.close()
    return time.monotonic() - started
