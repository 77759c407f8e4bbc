"""Audit trail throughput: concurrent appenders on one schema's chain, then verify.

    .venv/bin/python -m benchmarks.audit_bench [--entries 20000] [--writers 8]

Uses DATABASE_URL if set, else an embedded PostgreSQL. Each append is its own transaction
(the lock is held to commit, so this is the worst case: nothing else in the transaction).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid

import asyncpg
from trialstream import audit
from trialstream.audit_verify import verify_chain
from trialstream.db import create_pool, migrate
from trialstream.embedded import EmbeddedPostgres


async def run(dsn: str, entries: int, writers: int) -> None:
    schema = f"auditbench_{uuid.uuid4().hex[:8]}"
    await migrate(dsn, schema=schema, directories=[])
    pool = await create_pool(dsn, schema=schema, max_size=writers)

    async def writer(w: int) -> None:
        for i in range(w, entries, writers):
            async with pool.acquire() as conn, conn.transaction():
                await audit.record(
                    conn,
                    actor="nurse-a1",
                    action="booking.rescheduled",
                    entity="booking",
                    entity_id=str(uuid.uuid4()),
                    old={"status": "booked", "starts_at": "2030-01-12T08:00:00Z"},
                    new={"status": "booked", "starts_at": "2030-01-13T08:30:00Z"},
                    reason=f"work shift {i}",
                )

    started = time.perf_counter()
    await asyncio.gather(*(writer(w) for w in range(writers)))
    appended = time.perf_counter() - started
    conn = await asyncpg.connect(dsn)
    try:
        started = time.perf_counter()
        report = await verify_chain(conn, schema)
        verified = time.perf_counter() - started
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        await conn.close()
        await pool.close()
    if not report.ok or report.rows != entries:
        raise SystemExit(f"the chain did not verify: {report}")
    print(
        f"append: {entries} entries, {writers} concurrent writers: {appended:.2f} s "
        f"({entries / appended:,.0f} entries/s)"
    )
    print(f"verify: {report.rows} rows: {verified:.2f} s ({report.rows / verified:,.0f} rows/s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--writers", type=int, default=8)
    args = parser.parse_args()
    dsn = os.environ.get("DATABASE_URL")
    embedded = None if dsn else EmbeddedPostgres().start()
    try:
        asyncio.run(run(dsn or embedded.url, args.entries, args.writers))  # type: ignore[union-attr]
    finally:
        if embedded is not None:
            embedded.stop()


if __name__ == "__main__":
    main()
