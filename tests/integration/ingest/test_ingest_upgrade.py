"""Upgrades of the archive: migration 0030 drops the old id ledger only when every id in
it is archived; migration 0050 moves every reading into its day's partition."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from importlib.resources import files
from pathlib import Path

import asyncpg
import pytest
from helpers import migrate_as_released_before
from trialstream.db import migrate

pytestmark = pytest.mark.integration
LEDGER_MIGRATION = "0030_archive_is_the_dedupe_ledger.sql"


async def test_the_old_ledger_is_dropped_only_when_nothing_in_it_is_unarchived(
    database_url: str, tmp_path: Path
) -> None:
    current = Path(str(files("ingest") / "migrations"))
    await migrate_as_released_before(database_url, "ingest", current, LEDGER_MIGRATION, tmp_path)
    conn = await asyncpg.connect(database_url)
    try:
        accepted = uuid.uuid4()
        await conn.execute(
            "INSERT INTO ingest.accepted_readings (event_id, participant_id) VALUES ($1, 'P-1')",
            accepted,
        )
        with pytest.raises(asyncpg.RaiseError, match="1 accepted readings are not archived"):
            await migrate(database_url, schema="ingest", directories=[current])
        await conn.execute(
            "INSERT INTO ingest.readings (event_id, participant_id, device_id, metric, value,"
            " unit, measured_at, received_at)"
            " VALUES ($1, 'P-1', 'w-1', 'heart-rate', 60, 'beats/min', now(), now())",
            accepted,
        )  # the old archive consumer caught up
        await migrate(database_url, schema="ingest", directories=[current])
        assert await conn.fetchval("SELECT to_regclass('ingest.accepted_readings')") is None
    finally:
        await conn.close()


async def test_the_archive_moves_into_partitions_of_each_readings_utc_day(
    database_url: str, tmp_path: Path
) -> None:
    current = Path(str(files("ingest") / "migrations"))
    await migrate_as_released_before(
        database_url, "ingest", current, "0050_archive_partitioned_by_measured_day.sql", tmp_path
    )
    conn = await asyncpg.connect(database_url)
    try:
        before = await conn.fetch(
            "INSERT INTO ingest.readings (event_id, participant_id, device_id, metric, value,"
            " unit, measured_at, received_at)"
            " SELECT gen_random_uuid(), 'P-1', 'w-1', 'heart-rate', 60 + g, 'beats/min', t, t"
            " FROM unnest($1::timestamptz[]) WITH ORDINALITY AS x(t, g)"
            " RETURNING event_id, value, measured_at, archived_at",
            [
                datetime(2025, 1, 31, 23, 59, 59, tzinfo=UTC),
                datetime(2025, 2, 1, 0, 30, tzinfo=timezone(timedelta(hours=2))),  # Jan 31 UTC
                datetime(2025, 2, 1, tzinfo=UTC),
                datetime(2026, 7, 4, 12, tzinfo=UTC),
            ],
        )
        await migrate(database_url, schema="ingest", directories=[current])

        after = await conn.fetch(
            "SELECT event_id, value, measured_at, archived_at,"
            " tableoid::regclass::text AS part FROM ingest.readings"
        )
        assert {r["event_id"]: r["part"] for r in after} == {
            before[0]["event_id"]: "ingest.readings_20250131",
            before[1]["event_id"]: "ingest.readings_20250131",
            before[2]["event_id"]: "ingest.readings_20250201",
            before[3]["event_id"]: "ingest.readings_20260704",
        }
        assert sorted(tuple(r[:4]) for r in after) == sorted(tuple(r) for r in before)
        assert await conn.fetchval("SELECT to_regclass('ingest.readings_before_0050')") is None
        assert await conn.fetchval("SELECT count(*) FROM ingest.readings") == 4
    finally:
        await conn.close()
