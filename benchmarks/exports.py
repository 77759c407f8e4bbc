"""Exports of a large study (issue 17): `python -m benchmarks.exports --readings 20000000`.

Fills a scratch archive (an embedded PostgreSQL in --data-dir, kept between runs so the
fill is paid once) with N readings of one study: 10,000 participants, five metrics, in
the order they would arrive (time order, participants interleaved: the layout that makes
per-participant reads scattered), generated inside PostgreSQL. Then it runs one export
job per format with ingest's own job runner (the code the service's background loop
runs) and prints the seconds and rows per second of each, with the CPU seconds this
process and PostgreSQL spent (the machine may be shared: CPU seconds say what the export
costs whatever else runs). `--database-url` uses an
existing database instead (its `ingest` schema is migrated and filled).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
from ingest import exports_jobs
from ingest.exports import ExportFormat
from ingest.service_info import SERVICE
from trialstream.db import migrate
from trialstream.embedded import EmbeddedPostgres

STUDY = "bench-exports"
PARTICIPANTS = 10_000
CHUNK = 1_000_000
_PARTICIPANTS = """
INSERT INTO ingest.participants (participant_id, site_id, study_id)
SELECT 'P-bench-' || g, 'site-' || (g % 20), $1 FROM generate_series(0, $2 - 1) AS g
ON CONFLICT (participant_id) DO NOTHING
"""
# Reading g is participant g % 10,000's, measured g/N of the way through the last 30 days.
_FILL = """
INSERT INTO ingest.readings
    (event_id, participant_id, device_id, metric, value, unit, measured_at, received_at,
     measured_on)
SELECT gen_random_uuid(),
       'P-bench-' || (g % $4),
       'watch-bench-' || (g % $4),
       (ARRAY['heart-rate', 'oxygen-saturation', 'body-temperature', 'respiratory-rate',
              'step-count'])[1 + (g / $4) % 5],
       CASE (g / $4) % 5
           WHEN 0 THEN round((55 + random() * 40)::numeric, 1)
           WHEN 1 THEN round((94 + random() * 5)::numeric, 1)
           WHEN 2 THEN round((35.5 + random() * 1.5)::numeric, 2)
           WHEN 3 THEN round((12 + random() * 6)::numeric, 1)
           ELSE floor(random() * 120)
       END,
       (ARRAY['beats/min', '%', 'C', 'breaths/min', 'steps'])[1 + (g / $4) % 5],
       at,
       at + interval '2 seconds',
       (at AT TIME ZONE 'UTC')::date
FROM generate_series($1::bigint, $2::bigint) AS g,
     LATERAL (SELECT now() - interval '30 days' * (1 - g::float8 / $3) AS at) AS t
"""
# The archive's day partitions (decision 0074) for the 31 days the fill spans.
_PARTITIONS = """
SELECT ingest.readings_partitions_for(ARRAY(
    SELECT d::date FROM generate_series(
        ((now() - interval '30 days') AT TIME ZONE 'UTC')::date, (now() AT TIME ZONE 'UTC')::date,
        interval '1 day') AS d))
"""
_COUNT = """
SELECT count(*) FROM ingest.readings r JOIN ingest.participants p USING (participant_id)
WHERE p.study_id = $1
"""


async def fill(dsn: str, readings: int) -> None:
    await migrate(dsn, schema=SERVICE.schema, directories=[SERVICE.migrations])
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(_PARTICIPANTS, STUDY, PARTICIPANTS)
        have = await conn.fetchval(_COUNT, STUDY)
        if have >= readings:
            return
        started = time.monotonic()
        await conn.execute(_PARTITIONS)
        for first in range(have, readings, CHUNK):
            last = min(first + CHUNK, readings) - 1
            await conn.execute(_FILL, first, last, readings, PARTICIPANTS)
            print(f"  filled {last + 1:,} / {readings:,}", file=sys.stderr, flush=True)
        await conn.execute("VACUUM ANALYZE ingest.readings")
        print(f"  fill took {time.monotonic() - started:.0f} s", file=sys.stderr)
    finally:
        await conn.close()


async def export_once(dsn: str, fmt: ExportFormat, out: Path) -> tuple[float, int, int, float]:
    """(seconds, rows, bytes, CPU seconds of this process) of one export job of the whole
    study, run to completion (PostgreSQL's own CPU is not in the last figure)."""
    pool = await asyncpg.create_pool(dsn, server_settings={"search_path": "ingest"})
    try:
        export_id = uuid.uuid4()
        await pool.execute(
            "INSERT INTO exports (export_id, study_id, format, requested_by)"
            " VALUES ($1, $2, $3, 'bench')",
            export_id,
            STUDY,
            str(fmt),
        )
        runner = exports_jobs.ExportRunner(pool, out, worker="bench")
        started, cpu = time.monotonic(), time.process_time()
        while await runner.run_next():
            pass
        seconds, cpu = time.monotonic() - started, time.process_time() - cpu
        row = await pool.fetchrow(
            "SELECT status, error, (SELECT sum(rows_written) FROM export_parts p"
            " WHERE p.export_id = e.export_id) AS rows FROM exports e WHERE export_id = $1",
            export_id,
        )
        if row is None or row["status"] != "done":
            raise RuntimeError(
                f"export {fmt} ended {row and row['status']}: {row and row['error']}"
            )
        size = sum(f.stat().st_size for f in (out / str(export_id)).iterdir())
        return seconds, int(row["rows"]), size, cpu
    finally:
        await pool.close()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=20_000_000)
    parser.add_argument("--formats", default="csv,parquet,fhir-ndjson")
    parser.add_argument("--data-dir", type=Path, default=Path(".trialstream/bench-exports/pg"))
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--fill-only", action="store_true")
    return parser.parse_args()


def children_cpu(pid: int | None) -> float:
    """CPU seconds of the finished children of process `pid` (PostgreSQL's backends, once
    they have exited: the pool is closed after each job); 0 without a local server."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")  # cutime, cstime


async def run(args: argparse.Namespace, dsn: str, postgres_pid: int | None = None) -> None:
    await fill(dsn, args.readings)
    if args.fill_only:
        return
    print(
        f"{'format':<12} {'seconds':>8} {'rows':>12} {'rows/s':>10} {'MB':>8} {'cpu s':>6} {'pg cpu':>6}"
    )
    for name in args.formats.split(","):
        args.data_dir.parent.mkdir(parents=True, exist_ok=True)  # also with --database-url
        out = Path(tempfile.mkdtemp(prefix="bench-exports-", dir=args.data_dir.parent))
        try:
            before = children_cpu(postgres_pid)
            seconds, rows, size, cpu = await export_once(dsn, ExportFormat(name), out)
            await asyncio.sleep(0.5)  # the backends exit and are counted
            pg_cpu = children_cpu(postgres_pid) - before
        finally:
            shutil.rmtree(out, ignore_errors=True)
        print(
            f"{name:<12} {seconds:>8.1f} {rows:>12,} {rows / seconds:>10,.0f}"
            f" {size / 1e6:>8,.0f} {cpu:>6.1f} {pg_cpu:>6.1f}"
        )


def main() -> None:
    args = parse_args()
    if args.database_url:
        asyncio.run(run(args, args.database_url))
        return
    args.data_dir.parent.mkdir(parents=True, exist_ok=True)
    postgres = EmbeddedPostgres(data_dir=args.data_dir.resolve(), durable=False).start()
    try:
        pid = postgres.process.pid if postgres.process else None
        asyncio.run(run(args, postgres.url, pid))
    finally:
        postgres.stop()


if __name__ == "__main__":
    main()
