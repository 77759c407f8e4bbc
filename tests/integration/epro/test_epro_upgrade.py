"""Migration 0002 (withdrawal) upgrades a database the previous release filled."""

from __future__ import annotations

import uuid
from importlib.resources import files
from pathlib import Path

import asyncpg
import pytest
from helpers import migrate_as_released_before
from trialstream.db import migrate

pytestmark = pytest.mark.integration
WITHDRAWAL_MIGRATION = "0002_withdrawal.sql"


async def test_existing_participants_stay_enrolled_and_occurrences_can_close_as_withdrawn(
    database_url: str, tmp_path: Path
) -> None:
    current = Path(str(files("epro") / "migrations"))
    await migrate_as_released_before(database_url, "epro", current, WITHDRAWAL_MIGRATION, tmp_path)
    conn = await asyncpg.connect(database_url, server_settings={"search_path": "epro"})
    try:
        occurrence = uuid.uuid4()
        await conn.execute(
            "INSERT INTO participants (participant_id, site_id, timezone, enrolled_at)"
            " VALUES ('P-1', 'site-a', 'UTC', now())"
        )
        await conn.execute(
            "INSERT INTO occurrences (occurrence_id, participant_id, schedule_id, questionnaire_id,"
            " questionnaire_version, due_at, expires_at)"
            " VALUES ($1, 'P-1', 'diary', 'daily-diary', 1, now(), now() + interval '1 hour')",
            occurrence,
        )
        await migrate(database_url, schema="epro", directories=[current])
        assert await conn.fetchval("SELECT withdrawn_at FROM participants") is None
        assert await conn.fetchval("SELECT status FROM occurrences") == "open"
        await conn.execute(
            "UPDATE occurrences SET status = 'withdrawn' WHERE occurrence_id = $1", occurrence
        )
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("UPDATE occurrences SET status = 'gone'")
    finally:
        await conn.close()
