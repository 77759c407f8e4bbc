"""`python -m benchmarks.monitoring_rbm`: readings/s of monitoring's per-batch RBM processor.

Measures `process_summaries_for_rbm` alone (decoded reading summaries in, as ingest builds
them, one per participant per upload (decision 0093); wear slots, device pairs, last
values, jumps and flags written to PostgreSQL, one transaction per batch), on the embedded
PostgreSQL unless DATABASE_URL is set. The broker, JSON decoding and building the summaries
are not part of it. The stream: `--participants` wearers, a heart-rate reading every 10 s
and a step count every minute each, uploaded every minute, cut into batches of about
`--batch` readings; a few devices carry artefacts so the flag paths run too. Run a second
pass over the same batches (`--redeliver`) to time the idempotent redelivery path.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import time
from datetime import UTC, datetime, timedelta

import asyncpg
from monitoring.rbm.service import process_summaries_for_rbm
from monitoring.service_info import SERVICE
from trialstream.db import create_pool, migrate
from trialstream.embedded import EmbeddedPostgres
from trialstream.events.readings import Metric, ReadingReceived, ReadingsSummarised
from trialstream.reading_summaries import summarise


def stream(participants: int, minutes: int, seed: int) -> list[ReadingReceived]:
    rng = random.Random(seed)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=minutes)
    out: list[ReadingReceived] = []
    for m in range(minutes):
        for p in range(participants):
            pid = f"P-{p:05d}"
            device = f"dev-{p:05d}"
            minute = start + timedelta(minutes=m)
            received = minute + timedelta(minutes=1, seconds=5)
            noisy = p % 50 == 0  # a loose sensor: jumps
            for s in range(0, 60, 10):
                hr = 70 + rng.gauss(0, 3) + (rng.choice([0, 45]) if noisy else 0)
                out.append(
                    ReadingReceived(
                        participant_id=pid,
                        device_id=device,
                        metric=Metric.HEART_RATE,
                        value=round(hr, 1),
                        unit="beats/min",
                        measured_at=minute + timedelta(seconds=s),
                        occurred_at=received,
                    )
                )
            out.append(
                ReadingReceived(
                    participant_id=pid,
                    device_id=device,
                    metric=Metric.STEP_COUNT,
                    value=float(rng.choice([0, 0, 12, 40, 90])),
                    unit="steps",
                    measured_at=minute,
                    occurred_at=received,
                )
            )
    return out


def _batches(readings: list[ReadingReceived], size: int) -> list[list[ReadingsSummarised]]:
    """Each (participant, received) upload summarised as ingest does, the summaries cut into
    batches covering about `size` readings."""
    uploads: dict[tuple[str, datetime], list[ReadingReceived]] = {}
    for r in readings:
        uploads.setdefault((r.participant_id, r.occurred_at), []).append(r)
    out: list[list[ReadingsSummarised]] = [[]]
    covered = 0
    for (_, received), upload in uploads.items():
        if covered >= size:
            out.append([])
            covered = 0
        out[-1] += summarise(upload, "default", received)
        covered += len(upload)
    return out


async def run(args: argparse.Namespace) -> None:
    embedded = None
    url = os.environ.get("DATABASE_URL")
    if not url:
        embedded = EmbeddedPostgres().start()
        url = embedded.url
    try:
        schema = f"rbm_bench_{int(time.time())}"
        await migrate(url, schema=schema, directories=[SERVICE.migrations])
        pool = await create_pool(url, schema=schema, max_size=2)
        readings = stream(args.participants, args.minutes, args.seed)
        batches = _batches(readings, args.batch)
        print(f"{len(readings):,} readings in {len(batches)} batches of ~{args.batch}")
        for label in ("first delivery", "redelivery")[: 2 if args.redeliver else 1]:
            flags = 0
            started = time.perf_counter()
            async with pool.acquire() as conn:
                for batch in batches:
                    flags += await process_summaries_for_rbm(conn, batch)
            seconds = time.perf_counter() - started
            print(
                f"{label}: {len(readings) / seconds:,.0f} readings/s "
                f"({seconds:.2f} s, {seconds / len(batches) * 1000:.0f} ms/batch, "
                f"{flags} flags raised)"
            )
        await pool.close()
        conn2: asyncpg.Connection = await asyncpg.connect(url)
        await conn2.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await conn2.close()
    finally:
        if embedded is not None:
            embedded.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--participants", type=int, default=500)
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--redeliver", action=argparse.BooleanOptionalAction, default=True)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
