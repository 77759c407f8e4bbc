"""Migration 0004 (clinicians without credentials) upgrades a database the previous release
filled: the staff token hashes are gone, and each clinician stays registered for
scheduling with their hours, acting now as the subject of their access token."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import asyncpg
import pytest
from helpers import migrate_as_released_before, serving
from staff_tokens import JWKS, staff_auth
from telehealth.main import create_app
from telehealth.settings import TelehealthSettings
from trialstream.db import migrate

pytestmark = pytest.mark.integration
CREDENTIALS_MIGRATION = "0004_clinicians_without_credentials.sql"


async def test_registered_clinicians_keep_their_hours_and_lose_their_token_hashes(
    kafka: str, database_url: str, tmp_path: Path
) -> None:
    current = Path(str(files("telehealth") / "migrations"))
    await migrate_as_released_before(
        database_url, "telehealth", current, CREDENTIALS_MIGRATION, tmp_path
    )
    conn = await asyncpg.connect(database_url, server_settings={"search_path": "telehealth"})
    try:
        await conn.execute(
            "INSERT INTO staff (staff_id, site_id, token_hash) VALUES ('nurse-a', 'site-a', 'h')"
        )
        await conn.execute(
            "INSERT INTO weekly_hours (staff_id, weekday, start_time, end_time)"
            " VALUES ('nurse-a', 0, '09:00', '12:00')"
        )
        await migrate(database_url, schema="telehealth", directories=[current])
        columns = await conn.fetch(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = 'telehealth' AND table_name = 'staff'"
        )
        assert "token_hash" not in {c[0] for c in columns}
        assert await conn.fetchval("SELECT site_id FROM staff WHERE staff_id = 'nurse-a'") == (
            "site-a"
        )
        assert await conn.fetchval("SELECT count(*) FROM weekly_hours") == 1
    finally:
        await conn.close()

    settings = TelehealthSettings(
        kafka_bootstrap_servers=kafka,
        database_url=database_url,
        oidc_jwks=JWKS,
        kafka_session_timeout_ms=2000,
        scheduler_interval_seconds=3600,
    )
    async with serving(create_app(settings)) as client:
        nurse = staff_auth("site-a", "site_staff", subject="nurse-a")
        weekly = [{"weekday": 1, "start": "13:00", "end": "17:00"}]
        r = await client.put(
            "/v1/staff/nurse-a/weekly-hours", json={"hours": weekly}, headers=nurse
        )
        assert r.status_code == 200, r.text
