"""Least privilege on real PostgreSQL (decision 0070): a service's queries act as its own
role, which reads and writes its own schema's rows and can do nothing else; the audit
trail is INSERT and SELECT only for it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from trialstream import audit
from trialstream.db import create_pool, migrate, service_role, with_user

pytestmark = pytest.mark.integration
SCHEMA = "lpservice"
OTHER = "lpother"


@pytest.fixture
async def pool(database_url: str, tmp_path: Path) -> AsyncIterator[asyncpg.Pool]:
    (tmp_path / "0001_things.sql").write_text(
        "CREATE TABLE things (id bigserial PRIMARY KEY, name text NOT NULL);"
    )
    await migrate(database_url, schema=SCHEMA, directories=[tmp_path])
    await migrate(database_url, schema=OTHER, directories=[])
    pool = await create_pool(database_url, schema=SCHEMA, max_size=2, as_service_role=True)
    yield pool
    await pool.close()


async def test_queries_act_as_the_service_role_and_reach_its_own_rows(pool: asyncpg.Pool) -> None:
    assert await pool.fetchval("SELECT current_user") == service_role(SCHEMA)
    # A table from the service's own migration (created after the grants) is usable.
    await pool.execute("INSERT INTO things (name) VALUES ('a')")
    await pool.execute("UPDATE things SET name = 'b'")
    assert await pool.fetchval("SELECT name FROM things") == "b"
    await pool.execute("DELETE FROM things")


async def test_the_audit_trail_takes_appends_and_nothing_else(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await audit.record(conn, actor="nurse-a1", action="t.x", entity="t", entity_id="1")
    for statement in (
        "UPDATE audit_trail SET reason = 'rewritten'",
        "DELETE FROM audit_trail",
        "TRUNCATE audit_trail",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
            await pool.execute(statement)
    # The append-only trigger cannot be switched off, nor the table dropped: not its owner.
    for statement in (
        "ALTER TABLE audit_trail DISABLE TRIGGER audit_trail_append_only",
        "DROP TABLE audit_trail",
        "DROP TRIGGER audit_trail_append_only ON audit_trail",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="must be owner"):
            await pool.execute(statement)
    assert await pool.fetchval("SELECT count(*) FROM audit_trail") == 1


async def test_no_reach_into_another_schema_nor_into_the_ledger_or_ddl(
    pool: asyncpg.Pool,
) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
        await pool.fetch("SELECT * FROM lpother.outbox")
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
        await pool.execute("INSERT INTO schema_migrations (name) VALUES ('forged')")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await pool.execute("CREATE TABLE sneaky (id int)")


async def test_a_service_signed_in_as_its_own_role_starts_without_owner_rights(
    pool: asyncpg.Pool, database_url: str, tmp_path: Path
) -> None:
    """`trialstream up` with embedded PostgreSQL: the owner migrated; the service signs in
    as its role, finds nothing pending and runs no DDL."""
    own = with_user(database_url, service_role(SCHEMA))
    assert await migrate(own, schema=SCHEMA, directories=[tmp_path]) == []
    conn = await asyncpg.connect(own, server_settings={"search_path": SCHEMA})
    try:
        assert await conn.fetchval("SELECT session_user") == service_role(SCHEMA)
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("SET ROLE postgres")
    finally:
        await conn.close()
