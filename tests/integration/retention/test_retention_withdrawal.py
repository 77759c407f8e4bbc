"""Consent withdrawal on the real broker and PostgreSQL: nothing more reaches the
participant, while everyone else is nudged as before (decision 0034)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
import pytest
import structlog
from audit_helpers import audited
from helpers import eventually, migrate_as_released_before, read_topic, serving, unique_id
from retention.main import create_app
from retention.service_info import SERVICE
from retention_support import AUTH, Retention, due_event, missed_in_a_row, settings_for
from trialstream.db import migrate
from trialstream.events.participants import ParticipantState
from trialstream.events.topics import Topic

pytestmark = pytest.mark.integration


@dataclass
class Clock:
    """The wall clock, movable forward so a deferred nudge falls due without waiting."""

    ahead: timedelta = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.ahead


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def retention(kafka: str, database_url: str, clock: Clock) -> AsyncIterator[Retention]:
    async with serving(create_app(settings_for(kafka, database_url), clock=clock)) as client:
        yield Retention(client, kafka, database_url)


def withdrawal(pid: str, site: str, at: datetime) -> ParticipantState:
    return ParticipantState(participant_id=pid, site_id=site, status="withdrawn", withdrawn_at=at)


async def withdrawn(retention: Retention, pid: str) -> datetime:
    async def check() -> datetime | None:
        rows = await retention.sql(
            "SELECT withdrawn_at FROM participants WHERE participant_id = $1", pid
        )
        return rows[0]["withdrawn_at"] if rows else None

    return await eventually(check)


async def deliveries(retention: Retention, pid: str) -> list[dict[str, Any]]:
    r = await retention.client.get(f"/v1/participants/{pid}/local-inbox", headers=AUTH)
    return list(r.json()["messages"])


async def test_withdrawal_cancels_the_queued_nudge_which_never_goes_out_while_another_does(
    retention: Retention, clock: Clock
) -> None:
    site = unique_id("site")
    now = datetime.now(UTC)
    # Quiet hours around now: both nudges are decided and queued, to go out in 2 h.
    quiet = {
        "timezone": "UTC",
        "quiet_start": (now - timedelta(hours=1)).strftime("%H:%M"),
        "quiet_end": (now + timedelta(hours=2)).strftime("%H:%M"),
    }
    leaving = await retention.participant(site=site, address="leaving@example.test", **quiet)
    staying = await retention.participant(site=site, address="staying@example.test", **quiet)
    await retention.publish(Topic.EPRO_DUE, [due_event(leaving), due_event(staying)])
    await retention.nudges_where(leaving, 1, status="queued")
    await retention.nudges_where(staying, 1, status="queued")

    await retention.publish(Topic.PARTICIPANTS, [withdrawal(leaving, site, now)])
    [cancelled] = await retention.nudges_where(leaving, 1, status="cancelled")
    assert cancelled["suppress_reason"] == "participant-withdrew"
    assert [s["step"] for s in cancelled["journey"]] == ["intended", "queued", "cancelled"]
    # Nothing more will be sent to them: their contact address is erased, and audited.
    addresses = await retention.sql(
        "SELECT participant_id, address FROM preferences WHERE participant_id = ANY($1::text[])",
        [leaving, staying],
    )
    assert {r["participant_id"]: r["address"] for r in addresses} == {
        leaving: None,
        staying: "staying@example.test",
    }
    entries = await audited(retention.database_url, "retention", "preferences", leaving)
    assert [(e["actor"], e["action"], e["new"]) for e in entries][-1] == (
        "system:participants",
        "preferences.address_erased",
        {"address_set": False},
    )

    clock.ahead = timedelta(hours=3)  # both were due now, had they been queued
    await retention.nudges_where(staying, 1, status="sent")
    assert await deliveries(retention, leaving) == []
    assert len(await deliveries(retention, staying)) == 1
    sent = await read_topic(
        retention.kafka,
        Topic.NUDGES,
        match=lambda v: v.get("participant_id") in (leaving, staying),
    )
    assert [e["participant_id"] for e in sent] == [staying]
    # Staff still see the history, and that the participant withdrew.
    history = (
        await retention.client.get(f"/v1/participants/{leaving}/nudges", headers=AUTH)
    ).json()
    assert [n["status"] for n in history["nudges"]] == ["cancelled"]
    assert datetime.fromisoformat(history["withdrawn_at"]) == now


async def test_a_nudge_a_race_left_queued_is_cancelled_at_send_time(retention: Retention) -> None:
    site = unique_id("site")
    pid = await retention.participant(site=site)
    await retention.publish(Topic.PARTICIPANTS, [withdrawal(pid, site, datetime.now(UTC))])
    await withdrawn(retention, pid)
    # A decision that committed just after the withdrawal's cancellation looked for it.
    nudge = uuid4()
    await retention.sql(
        """INSERT INTO nudges (nudge_id, participant_id, kind, trigger_event_id, status, channel,
                               language, tone, body, send_at, next_attempt_at)
           VALUES ($1, $2, 'epro-due', $3, 'queued', 'push', 'en', 'reminder', 'Hello',
                   now(), now())""",
        nudge,
        pid,
        uuid4(),
    )
    [cancelled] = await retention.nudges_where(pid, 1, status="cancelled")
    assert cancelled["suppress_reason"] == "participant-withdrew"
    assert cancelled["journey"][-1]["step"] == "cancelled"
    assert "at send time" in cancelled["journey"][-1]["detail"]
    assert await deliveries(retention, pid) == []
    sent = await read_topic(
        retention.kafka, Topic.NUDGES, match=lambda v: v.get("participant_id") == pid
    )
    assert sent == []


async def test_triggers_after_withdrawal_make_no_nudge_or_task_and_are_not_dead_lettered(
    retention: Retention,
) -> None:
    site = unique_id("site")
    pid = await retention.participant(site=site)
    first = datetime.now(UTC) - timedelta(hours=1)
    # The withdrawal delivered twice (the second with a later time), then an `enrolled`
    # record for the same id: the earliest withdrawal stands.
    later = ParticipantState(participant_id=pid, site_id=site, timezone="Europe/Paris")
    await retention.publish(
        Topic.PARTICIPANTS,
        [withdrawal(pid, site, first), withdrawal(pid, site, datetime.now(UTC)), later],
    )

    async def restated() -> bool | None:
        rows = await retention.sql(
            "SELECT timezone FROM participants WHERE participant_id = $1", pid
        )
        return True if rows and rows[0]["timezone"] == "Europe/Paris" else None

    await eventually(restated)
    assert await withdrawn(retention, pid) == first

    misses = missed_in_a_row(pid)  # the third in a row would be a coordinator task
    due = due_event(pid)
    events = [e.event_id for e in (*misses, due)]
    with structlog.testing.capture_logs() as logs:
        await retention.publish(Topic.EPRO_MISSED, misses)
        await retention.publish(Topic.EPRO_DUE, [due])

        async def consumed() -> bool | None:
            rows = await retention.sql(
                "SELECT count(*) AS n FROM inbox WHERE event_id = ANY($1::uuid[])", events
            )
            return True if rows[0]["n"] == len(events) else None

        await eventually(consumed)
    assert await retention.nudges(pid) == []
    tasks = (await retention.client.get(f"/v1/sites/{site}/tasks", headers=AUTH)).json()["tasks"]
    assert tasks == []
    ignored = [e for e in logs if e["event"] == "trigger ignored: participant withdrew"]
    assert sorted(e["trigger_event_id"] for e in ignored) == sorted(str(e) for e in events)
    assert {e["participant_id"] for e in ignored} == {pid}
    dead = await read_topic(
        retention.kafka, Topic.DEAD_LETTER, match=lambda v: pid in v.get("payload", "")
    )
    assert dead == []


async def test_upgrading_a_database_with_nudges_adds_withdrawal_and_keeps_the_rows(
    database_url: str, tmp_path: Path
) -> None:
    await migrate_as_released_before(
        database_url,
        SERVICE.schema,
        Path(str(SERVICE.migrations)),
        "0002_participant_withdrawal.sql",
        tmp_path,
    )
    conn = await asyncpg.connect(database_url, server_settings={"search_path": SERVICE.schema})
    try:
        await conn.execute("INSERT INTO participants (participant_id, site_id) VALUES ('P-1', 's')")
        await conn.execute(
            """INSERT INTO nudges (nudge_id, participant_id, kind, trigger_event_id, status,
                                   language, tone, body)
               VALUES ($1, 'P-1', 'epro-due', $2, 'queued', 'en', 'reminder', 'Hello')""",
            uuid4(),
            uuid4(),
        )
        applied = await migrate(
            database_url, schema=SERVICE.schema, directories=[SERVICE.migrations]
        )
        assert applied[:3] == [  # and any later ones
            "retention/0002_participant_withdrawal.sql",
            "retention/0003_participant_study.sql",
            "retention/0004_preferences_follow_study.sql",
        ]
        assert await conn.fetchval("SELECT withdrawn_at FROM participants") is None
        assert await conn.fetchval("SELECT study_id FROM participants") == "default"
        await conn.execute("UPDATE nudges SET status = 'cancelled'")
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("UPDATE nudges SET status = 'withdrawn'")
    finally:
        await conn.close()
