"""The hash-chained audit trail on real PostgreSQL: appends, concurrency, tampering found."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime

import asyncpg
import pytest
from trialstream import audit
from trialstream.audit_verify import ChainReport, Head, verify_chain
from trialstream.db import create_pool, migrate

pytestmark = pytest.mark.integration
SCHEMA = "audittest"


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    await migrate(database_url, schema=SCHEMA, directories=[])
    pool = await create_pool(database_url, schema=SCHEMA, max_size=12)
    yield pool
    await pool.close()


async def append(pool: asyncpg.Pool, n: int, *, entity: str = "thing") -> list[audit.AuditEntry]:
    out = []
    for i in range(n):
        async with pool.acquire() as conn, conn.transaction():
            out.append(
                await audit.record(
                    conn,
                    actor="nurse-a1",
                    action=f"{entity}.changed",
                    entity=entity,
                    entity_id=f"{entity}-{i}",
                    old={"status": "open", "n": i},
                    new={"status": "done", "n": i, "at": datetime(2026, 1, 1, tzinfo=UTC)},
                    reason=f"step {i}",
                )
            )
    return out


async def check(pool: asyncpg.Pool, expect_head: Head | None = None) -> ChainReport:
    async with pool.acquire() as conn:
        return await verify_chain(conn, SCHEMA, expect_head=expect_head)


def where(report: ChainReport) -> tuple[int, str] | None:
    """The first broken link as (seq, problem), None if the chain verified."""
    return None if report.broken is None else (report.broken.seq, report.broken.problem)


async def as_privileged(pool: asyncpg.Pool, *statements: str | tuple[str, object]) -> None:
    """What an attacker with database superuser rights does: switch triggers off and edit."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        for statement in statements:
            sql, *args = (statement,) if isinstance(statement, str) else statement
            await conn.execute(sql, *args)


async def test_a_chain_of_many_entries_verifies_to_its_head(pool: asyncpg.Pool) -> None:
    written = await append(pool, 150)
    report = await check(pool)
    assert report.ok, report.broken
    assert report.rows == 150
    assert report.head == Head(150, written[-1].hash)
    assert [e.seq for e in written] == list(range(1, 151))
    assert written[0].prev_hash == audit.GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(written))


async def test_concurrent_appenders_on_several_pools_keep_one_valid_chain(
    database_url: str, pool: asyncpg.Pool
) -> None:
    # Three pools stand for three replicas; each transaction holds on after its append so
    # that others queue on the lock, and some roll back (their seq must be reused, no gap).
    replicas = [pool] + [
        await create_pool(database_url, schema=SCHEMA, max_size=6) for _ in range(2)
    ]
    rng = random.Random(11)
    committed: list[str] = []

    async def writer(w: int) -> None:
        for i in range(20):
            target = replicas[(w + i) % len(replicas)]
            try:
                async with target.acquire() as conn, conn.transaction():
                    await conn.execute("SELECT pg_sleep($1)", rng.uniform(0, 0.003))
                    await audit.record(
                        conn,
                        actor=f"system:writer{w}",
                        action="thing.changed",
                        entity="thing",
                        entity_id=f"{w}-{i}",
                        new={"i": i},
                    )
                    await asyncio.sleep(rng.uniform(0, 0.003))
                    if i % 7 == 3:
                        raise RuntimeError("roll back")
                committed.append(f"{w}-{i}")
            except RuntimeError:
                pass

    try:
        await asyncio.gather(*(writer(w) for w in range(10)))
    finally:
        for extra in replicas[1:]:
            await extra.close()
    report = await check(pool)
    assert report.ok, report.broken
    assert report.rows == len(committed) == 10 * 17
    stored = await pool.fetch("SELECT entity_id, occurred_at FROM audit_trail ORDER BY seq")
    assert sorted(r["entity_id"] for r in stored) == sorted(committed)
    # The chain order is the order the lock was granted: its clock never runs backwards.
    times = [r["occurred_at"] for r in stored]
    assert times == sorted(times)


async def test_record_outside_a_transaction_is_refused(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        with pytest.raises(audit.AuditError, match="inside the transaction"):
            await audit.record(conn, actor="admin", action="x", entity="x", entity_id="1")


async def test_record_in_a_snapshot_transaction_is_refused(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        with pytest.raises(audit.AuditError, match="READ COMMITTED"):
            async with conn.transaction(isolation="repeatable_read"):
                await audit.record(conn, actor="admin", action="x", entity="x", entity_id="1")
    assert (await check(pool)).rows == 0


async def test_actors_that_look_like_names_or_emails_are_refused(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn, conn.transaction():
        for actor in ("jane.doe@example.org", "Jane Doe", "participant:", ""):
            with pytest.raises(audit.AuditError, match="pseudonymous"):
                await audit.record(conn, actor=actor, action="x", entity="x", entity_id="1")


async def test_updates_deletes_and_truncate_are_refused(pool: asyncpg.Pool) -> None:
    await append(pool, 2)
    for sql in (
        "UPDATE audit_trail SET reason = 'rewritten'",
        "DELETE FROM audit_trail WHERE seq = 2",
        "TRUNCATE audit_trail",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await pool.execute(sql)
    assert (await check(pool)).rows == 2


async def test_an_edited_middle_row_is_named_by_its_seq(pool: asyncpg.Pool) -> None:
    await append(pool, 10)
    await as_privileged(pool, "UPDATE audit_trail SET reason = 'nothing happened' WHERE seq = 5")
    report = await check(pool)
    assert where(report) == (5, "hash")
    assert report.rows == 4


async def test_an_edit_with_its_own_hash_recomputed_breaks_the_next_link(
    pool: asyncpg.Pool,
) -> None:
    written = await append(pool, 10)
    forged = replace(written[4], actor="nurse-b2")
    await as_privileged(
        pool,
        (
            "UPDATE audit_trail SET actor = 'nurse-b2', hash = $1 WHERE seq = 5",
            forged.computed_hash(),
        ),
    )
    report = await check(pool)
    assert where(report) == (6, "prev_hash")


async def test_a_deleted_middle_row_is_reported_missing(pool: asyncpg.Pool) -> None:
    await append(pool, 10)
    await as_privileged(pool, "DELETE FROM audit_trail WHERE seq = 7")
    report = await check(pool)
    assert where(report) == (7, "missing_seq")
    assert report.broken is not None
    assert "next row is seq 8" in report.broken.detail


async def test_swapped_rows_are_found(pool: asyncpg.Pool) -> None:
    await append(pool, 10)
    await as_privileged(
        pool,
        "UPDATE audit_trail SET seq = seq + 1000 WHERE seq IN (3, 4)",
        "UPDATE audit_trail SET seq = 4 WHERE seq = 1003",
        "UPDATE audit_trail SET seq = 3 WHERE seq = 1004",
    )
    report = await check(pool)
    assert where(report) == (3, "prev_hash")


async def test_a_forged_row_put_in_place_of_a_real_one_is_found(pool: asyncpg.Pool) -> None:
    written = await append(pool, 10)
    original = written[5]
    forged = replace(original, reason="participant asked to stop", new='{"status":"withdrawn"}')
    forged = replace(forged, hash=forged.computed_hash())  # a perfectly hashed forgery
    await as_privileged(pool, "DELETE FROM audit_trail WHERE seq = 6")
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO audit_trail VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            *forged.__dict__.values(),
        )
    report = await check(pool)
    assert where(report) == (7, "prev_hash")


async def test_rows_deleted_from_the_end_are_found_against_a_published_head(
    pool: asyncpg.Pool,
) -> None:
    await append(pool, 10)
    published = (await check(pool)).head
    assert published is not None
    await append(pool, 2, entity="later")
    assert (await check(pool, published)).ok  # the chain grew past the published head: fine
    await as_privileged(pool, "DELETE FROM audit_trail WHERE seq > 8")
    alone = await check(pool)
    assert alone.ok  # the limit: a clean cut at the end leaves no broken link
    assert alone.rows == 8
    report = await check(pool, published)
    assert where(report) == (10, "truncated")


async def test_a_rewritten_tail_is_found_against_a_published_head(pool: asyncpg.Pool) -> None:
    written = await append(pool, 5)
    published = Head(5, written[-1].hash)
    forged = replace(written[-1], reason="rewritten")
    await as_privileged(
        pool,
        (
            "UPDATE audit_trail SET reason = 'rewritten', hash = $1 WHERE seq = 5",
            forged.computed_hash(),
        ),
    )
    assert (await check(pool)).ok  # consistent on its own ...
    report = await check(pool, published)  # ... but not the chain that was published
    assert where(report) == (5, "head_mismatch")


async def test_the_sql_hash_function_agrees_with_python(pool: asyncpg.Pool) -> None:
    awkward = 'quote " backslash \\ newline \n tab \t bell \x07 unicode é ✓ \u2028 end'
    async with pool.acquire() as conn, conn.transaction():
        e = await audit.record(
            conn,
            actor="participant:P-1",
            action="thing.changed",
            entity=awkward,
            entity_id="1",
            old=None,
            new={"note": awkward, "n": 1.5, "ok": True, "list": [1, None]},
            reason=awkward,
        )
    in_sql = await pool.fetchval(
        "SELECT audit_trail_hash(seq, occurred_at, actor, action, entity, entity_id, old, new,"
        " reason, prev_hash) FROM audit_trail WHERE seq = $1",
        e.seq,
    )
    assert in_sql == e.hash
    assert (await check(pool)).ok


async def test_a_missing_table_is_a_broken_chain(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        report = await verify_chain(conn, "noschema")
    finally:
        await conn.close()
    assert where(report) == (0, "missing_table")


@pytest.mark.parametrize(
    ("statement", "state"),
    [
        ("ALTER TABLE audit_trail DISABLE TRIGGER audit_trail_append_only", "disabled"),
        ("DROP TRIGGER audit_trail_append_only ON audit_trail", "dropped"),
    ],
)
async def test_an_owner_who_switches_the_append_only_trigger_off_is_found(
    pool: asyncpg.Pool, statement: str, state: str
) -> None:
    await append(pool, 3)
    assert where(await check(pool)) is None
    await pool.execute(statement)  # this pool signs in as the owner, as migrations do
    report = await check(pool)
    assert where(report) == (0, "trigger_missing")
    assert report.broken is not None
    assert state in report.broken.detail
