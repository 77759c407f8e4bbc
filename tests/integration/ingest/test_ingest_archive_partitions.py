"""The archive's day partitions (decision 0074), on real PostgreSQL as the service's role.

The broker is left out: these tests are about where rows land and what dedupe sees, so
publishing is a list the test reads.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import asyncpg
import pytest
from helpers import reading
from ingest import repository, service
from ingest.domain import Uploader
from ingest.service_info import SERVICE
from trialstream.db import create_pool, migrate
from trialstream.events.topics import Topic
from trialstream.producer import KeyedRecord

pytestmark = pytest.mark.integration
UPLOADER = Uploader("dev-1", "P-1")
NOW = datetime.now(UTC)


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    await migrate(database_url, schema="ingest", directories=[SERVICE.migrations])
    pool = await create_pool(database_url, schema="ingest", as_service_role=True)
    try:
        yield pool
    finally:
        await pool.close()


def at(when: datetime, value: float = 72.0, event_id: str | None = None) -> dict[str, Any]:
    return reading("P-1", "dev-1", value=value, measured_at=when, event_id=event_id)


async def upload(
    pool: asyncpg.Pool,
    records: list[dict[str, Any]],
    days: repository.ArchiveDays | None = None,
    published: list[tuple[str, bytes]] | None = None,
) -> list[str]:
    async def publish(batch: list[KeyedRecord]) -> None:
        readings = [(r.key or "", r.payload) for r in batch if r.topic == Topic.READINGS]
        (published if published is not None else []).extend(readings)

    result = await service.upload_readings(
        pool,
        publish,
        UPLOADER,
        records,
        max_clock_skew=timedelta(minutes=5),
        archive_days=days or repository.ArchiveDays(),
    )
    return [r.status.value for r in result.results]


async def partition_of(pool: asyncpg.Pool, event_id: str) -> list[str]:
    rows = await pool.fetch(
        "SELECT tableoid::regclass::text AS part FROM readings WHERE event_id = $1 ORDER BY 1",
        uuid.UUID(event_id),
    )
    return [row["part"] for row in rows]


async def test_a_reading_of_a_day_without_a_partition_lands_in_its_utc_days_partition(
    pool: asyncpg.Pool,
) -> None:
    long_ago = at(datetime(2025, 3, 9, 12, tzinfo=UTC))
    # half past midnight in UTC+2 is the evening before in UTC
    after_midnight = at(datetime(2025, 3, 10, 0, 30, tzinfo=timezone(timedelta(hours=2))))
    assert await upload(pool, [long_ago, after_midnight]) == ["accepted", "accepted"]
    assert await partition_of(pool, long_ago["event_id"]) == ["readings_20250309"]
    assert await partition_of(pool, after_midnight["event_id"]) == ["readings_20250309"]


async def test_a_retried_upload_of_old_readings_is_a_duplicate_published_once(
    pool: asyncpg.Pool,
) -> None:
    batch = [at(NOW - timedelta(days=d)) for d in (0, 3, 40)]
    published: list[tuple[str, bytes]] = []
    assert await upload(pool, batch, published=published) == ["accepted"] * 3
    # a retry, as after a lost answer, to another replica (it has seen no day yet)
    assert await upload(pool, batch, published=published) == ["duplicate"] * 3
    assert len(published) == 3
    assert await pool.fetchval("SELECT count(*) FROM readings") == 3


async def test_an_event_id_reused_on_the_same_day_is_refused_and_on_another_day_kept_apart(
    pool: asyncpg.Pool,
) -> None:
    """The documented limit of decision 0074: conflicts are seen within a measured day."""
    day = datetime(2026, 6, 1, 8, tzinfo=UTC)
    first = at(day, value=71)
    same_day = at(day + timedelta(hours=12), value=140, event_id=first["event_id"])
    next_day = at(day + timedelta(days=1), value=150, event_id=first["event_id"])
    assert await upload(pool, [first]) == ["accepted"]
    assert await upload(pool, [same_day]) == ["rejected"]
    assert await upload(pool, [next_day]) == ["accepted"]
    assert await partition_of(pool, first["event_id"]) == ["readings_20260601", "readings_20260602"]


async def test_replicas_preparing_the_same_days_together_create_each_once(
    pool: asyncpg.Pool,
) -> None:
    days = [date(2024, 1, 1) + timedelta(days=n) for n in range(5)]
    created = await asyncio.gather(*(repository.ArchiveDays().ensure(pool, days) for _ in range(3)))
    assert sum(created) == 5
    parts = await pool.fetchval(
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'readings'::regclass"
        " AND inhrelid::regclass::text LIKE 'readings_202401%'"
    )
    assert parts == 5


async def test_replicas_preparing_overlapping_days_together_do_not_deadlock(
    pool: asyncpg.Pool,
) -> None:
    # the maintenance loop and uploads ask for overlapping ranges at once: attaching a day
    # holds the archive's lock to the end of the call, so per-day locks taken in turn
    # deadlocked (seen once in a full run); one lock for the call cannot
    first = date(2024, 3, 1)
    ranges = [[first + timedelta(days=n) for n in range(s, s + 5)] for s in (0, 2, 4, 1, 3)]
    created = await asyncio.gather(*(repository.ArchiveDays().ensure(pool, r) for r in ranges))
    assert sum(created) == 9


async def test_maintenance_prepares_the_coming_days_and_detaches_the_old_ones(
    pool: asyncpg.Pool, database_url: str
) -> None:
    old, recent = at(NOW - timedelta(days=10)), at(NOW - timedelta(days=1))
    assert await upload(pool, [old, recent]) == ["accepted"] * 2
    days = repository.ArchiveDays()

    detached = await service.maintain_archive(pool, days, days_ahead=3, detach_after_days=5)

    old_day = (NOW - timedelta(days=10)).strftime("%Y%m%d")
    assert len(detached) == 1
    assert detached[0].startswith(f"readings_{old_day}_detached_")
    rows = await pool.fetch("SELECT event_id FROM readings")
    assert [str(r["event_id"]) for r in rows] == [recent["event_id"]]
    ahead = (NOW + timedelta(days=3)).strftime("%Y%m%d")
    assert await pool.fetchval("SELECT to_regclass($1)", f"readings_{ahead}") is not None
    owner = await asyncpg.connect(database_url)
    try:  # detached, not dropped: the rows wait for tiering
        kept = await owner.fetchval(f'SELECT event_id::text FROM ingest."{detached[0]}"')  # noqa: S608 - name from the function
    finally:
        await owner.close()
    assert kept == old["event_id"]
    assert await service.maintain_archive(pool, days, days_ahead=3, detach_after_days=5) == []


async def test_an_upload_for_a_day_detached_since_this_process_saw_it_is_archived_again(
    pool: asyncpg.Pool,
) -> None:
    days = repository.ArchiveDays()
    when = NOW - timedelta(days=30)
    assert await upload(pool, [at(when)], days) == ["accepted"]
    await repository.detach_readings_before(pool, (NOW - timedelta(days=20)).date())

    late = at(when + timedelta(minutes=1))
    assert await upload(pool, [late], days) == ["accepted"]
    assert await partition_of(pool, late["event_id"]) == [f"readings_{when:%Y%m%d}"]


async def test_a_participants_readings_are_read_across_days_in_time_order(
    pool: asyncpg.Pool,
) -> None:
    times = [NOW - timedelta(days=d, minutes=1) for d in (5, 0, 2, 9)]
    assert await upload(pool, [at(t) for t in times]) == ["accepted"] * 4
    rows = await repository.readings_for(
        pool, "P-1", NOW - timedelta(days=6), NOW, metric=None, limit=10
    )
    assert [r["measured_at"] for r in rows] == sorted(t for t in times if t > NOW - timedelta(6))
