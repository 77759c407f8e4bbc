"""Monitoring's audit entries live in the shared hash chain, including the rows of the
audit_log table it had before (migration 0030)."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest
from monitoring import repository
from monitoring.service_info import SERVICE
from trialstream.audit_verify import verify_chain
from trialstream.db import SHARED_MIGRATIONS, create_pool, migrate

pytestmark = pytest.mark.integration

# What a database migrated before the hash chain existed holds.
BEFORE_CHAIN = ["shared/0001_delivery.sql"] + [
    f"monitoring/{name}"
    for name in (
        "0001_inbox_staff_audit.sql",
        "0002_alerts_without_metric.sql",
        "0003_alert_episode_end.sql",
    )
]
LEGACY = [
    ("nurse-a1", "alert.acknowledged", "alert", "a-1", "open", "acknowledged", "called, resting"),
    ("nurse-b2", "alert.acknowledged", "alert", "a-2", "open", "acknowledged", None),
    ("nurse-a1", "alert.acknowledged", "alert", "a-3", "open", "acknowledged", 'said "fine" ✓\n'),
]


async def migrate_as_before_the_chain(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute('CREATE SCHEMA monitoring; SET search_path TO "monitoring"')
        await conn.execute(
            "CREATE TABLE schema_migrations (name text PRIMARY KEY,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for name in BEFORE_CHAIN:
            folder = SHARED_MIGRATIONS if name.startswith("shared/") else SERVICE.migrations
            await conn.execute((folder / name.partition("/")[2]).read_text(encoding="utf-8"))
            await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", name)
        for i, row in enumerate(LEGACY):
            await conn.execute(
                "INSERT INTO audit_log (occurred_at, actor, action, entity, entity_id,"
                " old_status, new_status, note) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                datetime(2026, 11, 1, 9, i, 0, 123456, tzinfo=UTC),
                *row,
            )
    finally:
        await conn.close()


async def test_upgrading_moves_the_old_audit_log_into_a_chain_that_verifies(
    database_url: str,
) -> None:
    await migrate_as_before_the_chain(database_url)
    applied = await migrate(database_url, schema="monitoring", directories=[SERVICE.migrations])
    assert applied[:1] == ["shared/0002_audit_trail.sql"]
    assert "monitoring/0030_audit_log_into_chain.sql" in applied
    pool = await create_pool(database_url, schema="monitoring")
    try:
        async with pool.acquire() as conn:
            report = await verify_chain(conn, "monitoring")
            assert await conn.fetchval("SELECT to_regclass('monitoring.audit_log')") is None
            async with conn.transaction():  # new entries chain on after the moved ones
                await repository.audit(
                    conn,
                    actor="nurse-a1",
                    action="alert.acknowledged",
                    entity="alert",
                    entity_id="a-4",
                    old_status="open",
                    new_status="acknowledged",
                    note=None,
                )
            after = await verify_chain(conn, "monitoring")
        moved = await repository.audit_for(pool, "alert", "a-3")
    finally:
        await pool.close()
    assert report.ok, report.broken
    assert report.rows == len(LEGACY)
    assert after.ok, after.broken
    assert after.rows == len(LEGACY) + 1
    assert [(e["id"], e["actor"], e["old_status"], e["new_status"], e["note"]) for e in moved] == [
        (3, "nurse-a1", "open", "acknowledged", 'said "fine" ✓\n')
    ]
    assert moved[0]["occurred_at"] == datetime(2026, 11, 1, 9, 2, 0, 123456, tzinfo=UTC)
