"""Tiering of the archive to Parquet (issue 17, decision 0077):
`python -m benchmarks.tiering --readings 3000000`.

Fills a scratch archive (an embedded PostgreSQL, removed afterwards) with N readings of one
study measured on one old day (10,000 participants, five metrics, arriving in time order)
and a few recent days, generated inside PostgreSQL. Then it tiers the old day with
ingest's own Tierer (the code the service's loop runs: stream, write, read back, verify
against PostgreSQL's checksum, record, drop) and prints the rows per second and the CPU
seconds of this process and of PostgreSQL. Last, it reads participants' readings over a
range spanning both tiers through the staff route's function, and reads the tiered part
alone three ways: pyarrow on the manifest's file (what the service does), DuckDB on the
same file, and DuckDB over the hive tree with partition pruning (`--duckdb`, needs duckdb
installed; it is not a dependency).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import random
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from ingest import tiering_repository
from ingest.service_info import SERVICE
from ingest.tiering import bucket_of, file_path
from ingest.tiering_jobs import Tierer
from ingest.tiering_reads import participant_readings
from ingest.tiering_store import TierStore
from trialstream.db import migrate
from trialstream.embedded import EmbeddedPostgres

from benchmarks.exports import PARTICIPANTS, children_cpu

STUDY = "bench-tiering"
_PARTICIPANTS = """
INSERT INTO ingest.participants (participant_id, site_id, study_id)
SELECT 'P-bench-' || g, 'site-' || (g % 20), $1 FROM generate_series(0, $2 - 1) AS g
"""
# Reading g of a day: participant g % 10,000's, measured g/N of the way through the day.
_FILL = """
INSERT INTO ingest.readings
    (event_id, participant_id, device_id, metric, value, unit, measured_at, received_at,
     measured_on)
SELECT gen_random_uuid(), 'P-bench-' || (g % $4), 'watch-bench-' || (g % $4),
       (ARRAY['heart-rate', 'oxygen-saturation', 'body-temperature', 'respiratory-rate',
              'step-count'])[1 + (g / $4) % 5],
       round((50 + random() * 50)::numeric, 1),
       (ARRAY['beats/min', '%', 'C', 'breaths/min', 'steps'])[1 + (g / $4) % 5],
       at, at + interval '2 seconds', $5::date
FROM generate_series($1::bigint, $2::bigint) AS g,
     LATERAL (SELECT $5::date + interval '1 day' * (g::float8 / $3) AS at) AS t
"""


async def fill_day(conn: asyncpg.Connection, day: datetime, readings: int) -> None:
    await conn.execute("SELECT ingest.readings_partitions_for($1::date[])", [day.date()])
    for first in range(0, readings, 1_000_000):
        last = min(first + 1_000_000, readings) - 1
        await conn.execute(_FILL, first, last, readings, PARTICIPANTS, day.date())


async def run(args: argparse.Namespace, dsn: str, postgres_pid: int | None, out: Path) -> None:
    await migrate(dsn, schema=SERVICE.schema, directories=[SERVICE.migrations])
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    old = today - timedelta(days=20)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(_PARTICIPANTS, STUDY, PARTICIPANTS)
        started = time.monotonic()
        await fill_day(conn, old, args.readings)
        for d in range(1, 4):
            await fill_day(conn, today - timedelta(days=d), args.recent_readings)
        await conn.execute("VACUUM ANALYZE ingest.readings")
        print(f"fill: {time.monotonic() - started:.0f} s")
    finally:
        await conn.close()
    store = TierStore(str(out / "tier"))
    pool = await asyncpg.create_pool(
        dsn, server_settings={"search_path": "ingest"}, min_size=1, max_size=4
    )
    assert pool is not None
    cpu, pg_before, started = time.process_time(), children_cpu(postgres_pid), time.monotonic()
    try:
        tierer = Tierer(pool, store, worker="bench", after_days=10, buckets=args.buckets)
        result = await tierer.tier_day(old.date())
        assert result is not None
        seconds, cpu = time.monotonic() - started, time.process_time() - cpu
    finally:
        await pool.close()  # its backends exit, so their CPU is counted
    await asyncio.sleep(0.5)
    pg_cpu = children_cpu(postgres_pid) - pg_before
    print(
        f"tiered {result.rows:,} rows in {seconds:.1f} s: {result.rows / seconds:,.0f} rows/s;"
        f" {result.files} files, {result.bytes / 1e6:.0f} MB;"
        f" cpu s: this process {cpu:.1f}, PostgreSQL {pg_cpu:.1f}"
    )
    pool = await asyncpg.create_pool(dsn, server_settings={"search_path": "ingest"})
    assert pool is not None
    try:
        await reads(args, pool, store, old, today)
    finally:
        await pool.close()


async def reads(
    args: argparse.Namespace, pool: asyncpg.Pool, store: TierStore, old: datetime, today: datetime
) -> None:
    rng = random.Random(7)
    who = [f"P-bench-{rng.randrange(PARTICIPANTS)}" for _ in range(args.reads)]
    start, end = old - timedelta(hours=1), today + timedelta(days=1)
    ms, counts = [], []
    for p in who:
        t = time.perf_counter()
        rows = await participant_readings(pool, store, p, STUDY, start, end, None, 1000)
        ms.append((time.perf_counter() - t) * 1000)
        counts.append(len(rows))
    print(
        f"route read over both tiers ({statistics.mean(counts):.0f} readings, "
        f"{args.readings // PARTICIPANTS} of them tiered): p50 {statistics.median(ms):.1f} ms,"
        f" p95 {sorted(ms)[int(len(ms) * 0.95)]:.1f} ms"
    )
    _, files = await tiering_repository.manifest(pool, old.date())
    assert files
    paths = {p: file_path(STUDY, bucket_of(p, args.buckets), old.date()) for p in who}
    ms = []
    for p in who:
        t = time.perf_counter()
        await asyncio.to_thread(store.read, [paths[p]], p)
        ms.append((time.perf_counter() - t) * 1000)
    print(f"tier part, pyarrow on the file: p50 {statistics.median(ms):.1f} ms")
    if not args.duckdb:
        return
    duckdb: Any = importlib.import_module("duckdb")  # measured only, not a dependency
    db = duckdb.connect()
    root = store.root
    for label, sql in (
        ("DuckDB on the file", "SELECT * FROM read_parquet(?) WHERE participant_id = ?"),
        (
            "DuckDB over the hive tree",
            "SELECT * FROM read_parquet(?, hive_partitioning = true) WHERE participant_id = ?"
            " AND study_id = ? AND bucket = ?",
        ),
    ):
        ms = []
        for p in who:
            t = time.perf_counter()
            if "hive" in label:
                glob = f"{root}/study_id=*/bucket=*/day=*/readings.parquet"
                db.execute(sql, [glob, p, STUDY, bucket_of(p, args.buckets)]).to_arrow_table()
            else:
                db.execute(sql, [f"{root}/{paths[p]}", p]).to_arrow_table()
            ms.append((time.perf_counter() - t) * 1000)
        print(f"tier part, {label}: p50 {statistics.median(ms):.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=3_000_000, help="on the tiered day")
    parser.add_argument("--recent-readings", type=int, default=100_000, help="per recent day")
    parser.add_argument("--buckets", type=int, default=16)
    parser.add_argument("--reads", type=int, default=100)
    parser.add_argument("--duckdb", action="store_true")
    parser.add_argument("--scratch", type=Path, default=Path(".trialstream/bench-tiering"))
    args = parser.parse_args()
    args.scratch.mkdir(parents=True, exist_ok=True)
    out = Path(tempfile.mkdtemp(prefix="run-", dir=args.scratch)).resolve()
    postgres = EmbeddedPostgres(data_dir=out / "pg", durable=False).start()
    try:
        pid = postgres.process.pid if postgres.process else None
        asyncio.run(run(args, postgres.url, pid, out))
    finally:
        postgres.stop()
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
