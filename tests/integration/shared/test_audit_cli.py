"""`trialstream audit verify` and `show` as a subprocess against a real database."""

from __future__ import annotations

import asyncio
import json
import os
import sys

import asyncpg
import pytest
from trialstream import audit
from trialstream.audit_heads import HeadPublisher
from trialstream.db import create_pool, migrate
from trialstream.kafka import ensure_topics
from trialstream.producer import BatchProducer
from trialstream.services import discover_services

pytestmark = pytest.mark.integration


async def cli(database_url: str, *args: str, kafka: str | None = None) -> tuple[int, str]:
    env = {**os.environ, "DATABASE_URL": database_url}
    if kafka is not None:
        env["KAFKA_BOOTSTRAP_SERVERS"] = kafka
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "trialstream.cli",
        "audit",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def append(database_url: str, schema: str, count: int) -> None:
    conn = await asyncpg.connect(database_url, server_settings={"search_path": schema})
    try:
        for i in range(count):
            async with conn.transaction():
                await audit.record(
                    conn,
                    actor="nurse-a1",
                    action="alert.acknowledged",
                    entity="alert",
                    entity_id=f"a-{i}",
                    old="open",
                    new="acknowledged",
                    reason=f"note {i}",
                )
    finally:
        await conn.close()


async def test_verify_reports_each_chain_and_fails_naming_the_first_broken_link(
    database_url: str,
) -> None:
    for info in discover_services():
        await migrate(database_url, schema=info.schema, directories=[info.migrations])
    await append(database_url, "monitoring", 4)

    code, out = await cli(database_url, "verify")
    assert code == 0, out
    line = next(x for x in out.splitlines() if x.startswith("monitoring"))
    assert "OK" in line
    assert "4 rows" in line
    head = line.split("head ")[1].strip()

    code, out = await cli(database_url, "show", "--service", "monitoring", "--entity-id", "a-2")
    assert code == 0, out
    (shown,) = [json.loads(x) for x in out.splitlines()]
    assert (shown["seq"], shown["old"], shown["new"], shown["reason"]) == (
        3,
        "open",
        "acknowledged",
        "note 2",
    )

    conn = await asyncpg.connect(database_url)
    try:
        async with conn.transaction():  # a superuser edits a row behind the trigger's back
            await conn.execute("SET LOCAL session_replication_role = replica")
            await conn.execute("UPDATE monitoring.audit_trail SET reason = 'edited' WHERE seq = 2")
    finally:
        await conn.close()
    code, out = await cli(database_url, "verify")
    assert code == 1, out
    broken = next(x for x in out.splitlines() if x.startswith("monitoring"))
    assert "BROKEN" in broken
    assert "first broken link at seq 2: hash" in broken
    assert "1 rows verified before it" in broken
    assert any(x.startswith("ingest") and "OK" in x for x in out.splitlines())

    code, out = await cli(
        database_url, "verify", "--service", "ingest", "--expect-head", "ingest=" + head
    )
    assert code == 1, out  # ingest's chain is empty: the published head is not in it
    assert "truncated" in out
    code, out = await cli(database_url, "verify", "--expect-head", "nosuch=1:ab")
    assert code == 2, out  # a usage error, not a verdict


async def test_verify_published_checks_each_chain_against_the_head_on_the_broker(
    database_url: str, kafka: str
) -> None:
    """Rows deleted from the end leave a consistent chain; the head the service published
    to the audit-heads topic before the deletion shows it."""
    for info in discover_services():
        await migrate(database_url, schema=info.schema, directories=[info.migrations])
    await append(database_url, "monitoring", 4)
    await ensure_topics(kafka, partitions=2)
    producer = BatchProducer(kafka, client_id="audit-head-test")
    await producer.start()
    pool = await create_pool(database_url, schema="monitoring", as_service_role=True)
    try:
        publisher = HeadPublisher("monitoring", lambda: pool, producer.send)
        head = await publisher.publish()
        assert head is not None
        assert head.seq == 4
    finally:
        await pool.close()
        await producer.stop()

    code, out = await cli(database_url, "verify", "--published", kafka=kafka)
    assert code == 0, out
    assert f"contains published head {head}" in out

    conn = await asyncpg.connect(database_url, server_settings={"search_path": "monitoring"})
    try:
        async with conn.transaction():  # what a database superuser can do
            await conn.execute("SET LOCAL session_replication_role = replica")
            await conn.execute("DELETE FROM audit_trail WHERE seq > 2")
    finally:
        await conn.close()
    code, out = await cli(database_url, "verify", "--published", kafka=kafka)
    assert code == 1
    assert "truncated" in out
    assert "seq 4 was published as its head" in out


async def test_verify_published_says_when_the_broker_cannot_be_read(database_url: str) -> None:
    code, out = await cli(database_url, "verify", "--published", kafka="127.0.0.1:1")
    assert code == 2
    assert "cannot read the published heads from 127.0.0.1:1" in out
