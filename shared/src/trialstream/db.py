"""PostgreSQL plumbing: one schema per service, a pool pinned to it, ordered SQL migrations."""

from __future__ import annotations

from collections.abc import Sequence
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any, Union
from urllib.parse import quote, urlsplit, urlunsplit

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


def service_role(schema: str) -> str:
    """The role a service's connections act as (shared migration 0003, decision 0070)."""
    return f"trialstream_{schema}"


def with_user(dsn: str, user: str) -> str:
    """`dsn` signing in as `user`, without the original password."""
    parts = urlsplit(dsn)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{quote(user, safe='')}@{host}"))


async def create_pool(
    dsn: str, *, schema: str, max_size: int = 10, as_service_role: bool = False
) -> asyncpg.Pool:
    """Every connection sees only its service's schema first, so SQL names stay short.
    `as_service_role`: each connection acts as the schema's service role from its first
    statement, whoever signs in (the same when the DSN already names that role)."""
    settings = {"search_path": schema, "application_name": f"trialstream-{schema}"}
    if as_service_role:
        settings["role"] = service_role(schema)
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=max_size, server_settings=settings)
    assert pool is not None
    return pool


def _sql_files(directory: Traversable) -> list[Traversable]:
    return sorted((f for f in directory.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)


def _names(directories: Sequence[Traversable], schema: str) -> list[tuple[str, Traversable]]:
    """Every migration in the order applied: shared delivery tables first, then the service's."""
    return [
        (f"{'shared' if directory is SHARED_MIGRATIONS else schema}/{sql_file.name}", sql_file)
        for directory in (SHARED_MIGRATIONS, *directories)
        for sql_file in _sql_files(directory)
    ]


async def _pending(conn: DbConnection, schema: str, directories: Sequence[Traversable]) -> bool:
    if await conn.fetchval("SELECT to_regclass($1)", f'"{schema}".schema_migrations') is None:
        return True
    done = {r["name"] for r in await conn.fetch(f'SELECT name FROM "{schema}".schema_migrations')}  # noqa: S608 - schema from ServiceInfo
    return any(name not in done for name, _ in _names(directories, schema))


async def migrate(dsn: str, *, schema: str, directories: Sequence[Traversable]) -> list[str]:
    """Apply pending migrations, each in its own transaction, under an advisory lock
    so that replicas starting together do not race. Shared delivery tables (outbox,
    inbox) come first, then the service's own files. Returns the names applied."""
    applied: list[str] = []
    conn = await asyncpg.connect(dsn)
    try:
        if not await _pending(conn, schema, directories):
            return applied  # nothing to do: no DDL, so a service's own role may ask
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await conn.execute(f'SET search_path TO "{schema}"')
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"migrate:{schema}")
            await conn.execute(_CREATE_LEDGER)
            done = {r["name"] for r in await conn.fetch(_APPLIED)}
            for name, sql_file in _names(directories, schema):
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
