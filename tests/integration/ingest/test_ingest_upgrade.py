"""Migration 0030 drops the old id ledger only when every id in it is archived."""

from __future__ import annotations

import uuid
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
