"""PostgreSQL plumbing: one schema per service, a pool pinned to it, ordered SQL migrations."""

from __future__ import annotations

from collections.abc import Sequence
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any, Union

import asyncpg
import structlog
from asyncpg.pool import PoolConnectionProxy

log = structlog.get_logger(__name__)

# What `pool.acquire()` and `asyncpg.connect()` give; repositories accept either.
DbConnection = Union["asyncpg.Connection[Any]", "PoolConnectionProxy[Any]"]

SHARED_MIGRATIONS: Traversable = files("trialstream") / "migrations"

_CREATE_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    name text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""
_APPLIED = "SELECT name FROM schema_migrations"
_RECORD = "INSERT INTO schema_migrations (name) VALUES ($1)"


async def create_pool(dsn: str, *, schema: str, max_size: int = 10) -> asyncpg.Pool:
    """Every connection sees only its service's schema first, so SQL names stay short."""
    pool = await asyncpg.create_pool(
        dsn,
        min_size=1,
        max_size=max_size,
        server_settings={"search_path": schema, "application_name": f"trialstream-{schema}"},
    )
    assert pool is not None
    return pool


def _sql_files(directory: Traversable) -> list[Traversable]:
    return sorted((f for f in directory.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)


async def migrate(dsn: str, *, schema: str, directories: Sequence[Traversable]) -> list[str]:
    """Apply pending migrations, each in its own transaction, under an advisory lock
    so that replicas starting together do not race. Shared delivery tables (outbox,
    inbox) come first, then the service's own files. Returns the names applied."""
    applied: list[str] = []
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await conn.execute(f'SET search_path TO "{schema}"')
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"migrate:{schema}")
            await conn.execute(_CREATE_LEDGER)
            done = {r["name"] for r in await conn.fetch(_APPLIED)}
            for directory in (SHARED_MIGRATIONS, *directories):
                prefix = "shared" if directory is SHARED_MIGRATIONS else schema
                for sql_file in _sql_files(directory):
                    name = f"{prefix}/{sql_file.name}"
                    if name in done:
                        continue
                    async with conn.transaction():
                        await conn.execute(sql_file.read_text(encoding="utf-8"))
                        await conn.execute(_RECORD, name)
                    applied.append(name)
    finally:
        await conn.close()
    if applied:
        log.info("migrations applied", schema=schema, applied=applied)
    return applied
