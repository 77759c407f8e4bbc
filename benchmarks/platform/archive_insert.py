"""Ingest's archive statement alone, into an empty archive and a prefilled one, alternately.

`python -m benchmarks.platform.archive_insert --prefill-readings 20000000`: one embedded
PostgreSQL (durable, as the platform benchmark keeps it) with two databases migrated as
ingest's schema, one filled as `--prefill-readings` fills it; then batches of readings
(2,000, measured over the last hours, as devices upload) go through the upload's own code
(`ArchiveDays.ensure`, then `archive_new` in a transaction), one batch into each archive in
turn, so the machine's load falls on both alike. Prints readings/s for each and the ratio:
the insert cost per reading, without HTTP, the broker or anomaly (decision 0074).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
from ingest import repository
from ingest.service_info import SERVICE
from trialstream.db import create_pool, migrate
from trialstream.embedded import EmbeddedPostgres

from benchmarks.platform.prefill import prefill


def batch(n: int, start: datetime) -> list[bytes]:
    participant = f"P-{uuid.uuid4().hex[:8]}"
    return [
        json.dumps(
            {
                "event_id": str(uuid.uuid4()),
                "participant_id": participant,
                "device_id": f"w-{participant}",
                "metric": "heart-rate",
                "value": 60.0 + i % 40,
                "unit": "beats/min",
                "measured_at": (start + timedelta(seconds=i)).isoformat(),
                "occurred_at": datetime.now(UTC).isoformat(),
            }
        ).encode()
        for i in range(n)
    ]


async def archive_once(
    pool: asyncpg.Pool, days: repository.ArchiveDays, events: list[bytes], start: datetime
) -> float:
    started = time.perf_counter()
    await days.ensure(pool, {start.date(), datetime.now(UTC).date()})
    async with pool.acquire() as conn, conn.transaction():
        await repository.archive_new(conn, events)
    return time.perf_counter() - started


async def run(url: str, prefilled: int, batches: int, size: int) -> dict[str, float]:
    admin = await asyncpg.connect(url)
    for name in ("archive_empty", "archive_full"):
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    base = url.rpartition("/")[0]
    urls = {"empty": f"{base}/archive_empty", "full": f"{base}/archive_full"}
    for db_url in urls.values():
        await migrate(db_url, schema="ingest", directories=[SERVICE.migrations])
    if prefilled:
        await prefill(urls["full"], prefilled)
    pools = {
        k: await create_pool(v, schema="ingest", as_service_role=True) for k, v in urls.items()
    }
    days = {k: repository.ArchiveDays() for k in urls}
    spent = dict.fromkeys(urls, 0.0)
    for k in range(batches):
        # each batch a device of its own, its readings a second apart up to a minute ago
        start = datetime.now(UTC) - timedelta(seconds=size + 60)
        events = batch(size, start)
        for name in ("empty", "full") if k % 2 else ("full", "empty"):
            spent[name] += await archive_once(pools[name], days[name], events, start)
    for pool in pools.values():
        await pool.close()
    rate = {name: batches * size / seconds for name, seconds in spent.items()}
    return {
        "empty_readings_per_s": round(rate["empty"]),
        "prefilled_readings_per_s": round(rate["full"]),
        "ratio": round(rate["full"] / rate["empty"], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefill-readings", type=int, default=20_000_000)
    parser.add_argument("--batches", type=int, default=200, help="into each archive")
    parser.add_argument("--batch", type=int, default=2000)
    args = parser.parse_args()
    postgres = EmbeddedPostgres().start()
    try:
        result = asyncio.run(run(postgres.url, args.prefill_readings, args.batches, args.batch))
    finally:
        postgres.stop()
    print(json.dumps({"config": vars(args), **result}, indent=2))


if __name__ == "__main__":
    main()
