"""Migration 0002 (withdrawal) upgrades a database the previous release filled, and the
withdrawal then acts on the bookings made before the upgrade."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path

import asyncpg
import pytest
from helpers import migrate_as_released_before
from telehealth.domain.windows import DEFAULT_PROTOCOL
from telehealth.service import enrolment
from telehealth.service.booking import Policy
from trialstream.db import migrate
from trialstream.events.participants import ParticipantState

pytestmark = pytest.mark.integration
WITHDRAWAL_MIGRATION = "0002_withdrawal.sql"
T0 = datetime(2030, 1, 7, 6, tzinfo=UTC)


async def _fill_under_previous_release(conn: asyncpg.Connection) -> uuid.UUID:
    visit, booking = uuid.uuid4(), uuid.uuid4()
    await conn.execute(
        "INSERT INTO participants (participant_id, site_id, timezone, baseline_date)"
        " VALUES ('P-1', 'site-a', 'UTC', '2030-01-07')"
    )
    await conn.execute(
        "INSERT INTO staff (staff_id, site_id, token_hash) VALUES ('nurse-a', 'site-a', 'h')"
    )
    await conn.execute(
        "INSERT INTO visits (visit_id, participant_id, name, visit_type, sequence, window_start,"
        " window_end, status) VALUES ($1, 'P-1', 'Day 7', 'video', 2, $2, $3, 'booked')",
        visit,
        T0 + timedelta(days=3),
        T0 + timedelta(days=8),
    )
    await conn.execute(
        "INSERT INTO bookings (booking_id, visit_id, staff_id, staff_key, starts_at, ends_at,"
        " status, created_by, scheduled_at)"
        " SELECT $1, $2, 'nurse-a', staff_key, $3, $4, 'booked', 'nurse-a', $5 FROM staff",
        booking,
        visit,
        T0 + timedelta(days=5),
        T0 + timedelta(days=5, minutes=30),
        T0,
    )
    await conn.execute(
        "INSERT INTO urgent_alerts (alert_id, participant_id, outcome, received_at)"
        " VALUES ($1, 'P-1', 'no_free_slot', $2)",
        uuid.uuid4(),
        T0,
    )
    return booking


async def test_existing_participants_stay_enrolled_and_their_bookings_stop_at_withdrawal(
    database_url: str, tmp_path: Path
) -> None:
    current = Path(str(files("telehealth") / "migrations"))
    await migrate_as_released_before(
        database_url, "telehealth", current, WITHDRAWAL_MIGRATION, tmp_path
    )
    settings = {"search_path": "telehealth"}
    conn = await asyncpg.connect(database_url, server_settings=settings)
    pool = await asyncpg.create_pool(database_url, server_settings=settings)
    try:
        booking = await _fill_under_previous_release(conn)
        await migrate(database_url, schema="telehealth", directories=[current])
        assert await conn.fetchval("SELECT withdrawn_at FROM participants") is None
        assert await conn.fetchval("SELECT cancel_reason FROM visits") is None
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("UPDATE urgent_alerts SET outcome = 'gone'")

        withdrew = ParticipantState(
            participant_id="P-1",
            site_id="site-a",
            timezone="UTC",
            status="withdrawn",
            withdrawn_at=T0 + timedelta(days=1),
        )
        # The previous release had already read this withdrawal and ignored it, claiming
        # its id in the inbox under the old consumer name: the upgrade's replay of the
        # topic must still apply it.
        await conn.execute(
            "INSERT INTO inbox (consumer, event_id) VALUES ('telehealth-participants', $1)",
            withdrew.event_id,
        )
        policy = (Policy(30, "https://video.test/room"), timedelta(hours=72))
        await enrolment.on_enrolled(pool, [withdrew], DEFAULT_PROTOCOL, policy, T0)
        row = await conn.fetchrow(
            "SELECT b.status, b.reason, v.status AS visit_status, v.cancel_reason"
            " FROM bookings b JOIN visits v USING (visit_id) WHERE booking_id = $1",
            booking,
        )
        assert row is not None
        assert tuple(row) == (
            "cancelled",
            "participant withdrew",
            "cancelled",
            "participant withdrew",
        )
        await conn.execute("UPDATE urgent_alerts SET outcome = 'participant_withdrawn'")
    finally:
        await pool.close()
        await conn.close()
