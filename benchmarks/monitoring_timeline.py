"""`python -m benchmarks.monitoring_timeline`: how fast monitoring folds reading summaries
into its 5-minute timeline rollups (monitoring.timeline_readings), on the embedded
PostgreSQL (or DATABASE_URL).

Readings are summarised as ingest does (one summary per participant per upload of
`--batch` readings, built before timing) and go through record_rollups_for_timeline, one
transaction per upload's summaries, as the consumer calls it. Measured: fresh readings/s,
then the same summaries again (an at-least-once redelivery: everything a duplicate) and a
check that the rollups counted every reading exactly once.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
from trialstream.db import create_pool, migrate
from trialstream.embedded import EmbeddedPostgres
from trialstream.events.readings import UNITS, Metric, ReadingReceived, ReadingsSummarised
from trialstream.reading_summaries import summarise


def readings(total: int, participants: int) -> list[ReadingReceived]:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    metrics = list(Metric)
    out = []
    for i in range(total):
        metric = metrics[i % len(metrics)]
        step = i // (participants * len(metrics))
        out.append(
            ReadingReceived(
                event_id=uuid.uuid4(),
                participant_id=f"P-{(i // len(metrics)) % participants:05d}",
                device_id="bench",
                metric=metric,
                value=60 + (i % 40),
                unit=UNITS[metric],
                measured_at=start + timedelta(minutes=step),
            )
        )
    return out


async def fold_all(pool: asyncpg.Pool, batches: list[list[ReadingsSummarised]]) -> float:
    from monitoring.timeline_readings import record_rollups_for_timeline

    started = time.perf_counter()
    for batch in batches:
        async with pool.acquire() as conn, conn.transaction():
            await record_rollups_for_timeline(conn, batch)
    return time.perf_counter() - started


async def run(dsn: str, total: int, batch: int, participants: int) -> None:
    from monitoring.service_info import SERVICE

    await migrate(dsn, schema="monitoring", directories=[SERVICE.migrations])
    pool = await create_pool(dsn, schema="monitoring")
    try:
        await pool.execute("TRUNCATE reading_rollups, reading_rollup_seen")
        data = readings(total, participants)
        received = datetime.now(UTC)
        batches = [
            summarise(data[i : i + batch], "bench", received) for i in range(0, total, batch)
        ]
        fresh = await fold_all(pool, batches)
        again = await fold_all(pool, batches)
        counted = await pool.fetchval("SELECT sum(n) FROM reading_rollups")
        buckets = await pool.fetchval("SELECT count(*) FROM reading_rollups")
    finally:
        await pool.close()
    print(
        f"{total:,} readings in batches of {batch:,} ({participants} participants, "
        f"{buckets:,} rollup rows): fresh {total / fresh:,.0f} readings/s, "
        f"redelivered {total / again:,.0f} readings/s; counted once: {counted == total}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--readings", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--participants", type=int, default=200)
    args = parser.parse_args()
    dsn = os.environ.get("DATABASE_URL")
    postgres = None if dsn else EmbeddedPostgres().start()
    try:
        asyncio.run(run(dsn or postgres.url, args.readings, args.batch, args.participants))  # type: ignore[union-attr]
    finally:
        if postgres is not None:
            postgres.stop()


if __name__ == "__main__":
    main()
