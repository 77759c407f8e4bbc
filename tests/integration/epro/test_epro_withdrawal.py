"""A withdrawal on the participants topic, against the real broker and PostgreSQL: the
participant's schedules stop while others' go on, and their app's later responses are
refused with nothing stored (decision 0014)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from epro import due_and_missed
from epro_support import Epro, daily_protocol, phq9_body, publish, running_epro
from helpers import eventually, read_topic
from trialstream.events.participants import ParticipantState
from trialstream.events.topics import Topic

pytestmark = pytest.mark.integration
ZONE = "America/New_York"


async def outbox_drained(epro: Epro) -> bool:
    return not await epro.sql("SELECT 1 FROM outbox WHERE sent_at IS NULL")


async def schedules_of(kafka: str, topic: Topic, participant: str) -> list[datetime]:
    """The due_at of each event on `topic` for `participant`, sorted."""
    found = await read_topic(kafka, topic, match=lambda v: v.get("participant_id") == participant)
    return sorted(datetime.fromisoformat(str(v["due_at"])) for v in found)


async def test_no_occurrence_becomes_due_after_withdrawal_while_others_still_get_theirs(
    kafka: str, database_url: str, tmp_path: Path
) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    left_at = now - timedelta(hours=1)
    protocol = daily_protocol(
        tmp_path / "protocol.json",
        ZONE,
        {
            "gone": (now - timedelta(hours=3), 60),  # window ended before the withdrawal
            "cut": (now - timedelta(hours=2), 240),  # window running at the withdrawal
            "after": (now - timedelta(minutes=30), 120),  # due after the withdrawal
        },
    )
    async with running_epro(kafka, database_url, protocol) as (epro, pool):
        leaver, _ = await epro.enroll(timezone=ZONE, enrolled_at=now - timedelta(days=3))
        stayer, _ = await epro.enroll(timezone=ZONE, enrolled_at=now - timedelta(days=3))
        await epro.withdraw(leaver, left_at, timezone=ZONE)

        # stayer: due for "cut" and "after", missed for "gone"; leaver: only the miss
        assert await due_and_missed.tick(pool, now) == (2, 2)
        assert await due_and_missed.tick(pool, now + timedelta(hours=5)) == (0, 2)  # stayer's two
        assert await due_and_missed.tick(pool, now + timedelta(days=1)) == (
            2,
            1,
        )  # stayer's next day
        statuses = await epro.sql(
            "SELECT schedule_id, status FROM occurrences WHERE participant_id = $1", leaver
        )
        assert {r["schedule_id"]: r["status"] for r in statuses} == {
            "gone": "missed",
            "cut": "withdrawn",
        }
        await eventually(lambda: outbox_drained(epro))

    assert await schedules_of(kafka, Topic.EPRO_DUE, leaver) == []
    assert len(await schedules_of(kafka, Topic.EPRO_DUE, stayer)) == 4
    assert await schedules_of(kafka, Topic.EPRO_MISSED, leaver) == [now - timedelta(hours=3)]


async def test_a_response_authored_after_withdrawal_is_refused_and_nothing_is_stored(
    epro: Epro,
) -> None:
    participant, app = await epro.enroll()
    now = datetime.now(UTC)
    before = phq9_body(
        0, 0, 0, 0, 0, 0, 0, 0, 0, authored_at=(now - timedelta(hours=2)).isoformat()
    )
    assert (await epro.submit(app, before)).status_code == 201
    corrections = f"/v1/responses/{before['response_id']}/corrections"
    fix = {"based_on_version": 1, "reason": "typo", "answers": before["answers"]}
    assert (await epro.client.post(corrections, json=fix, headers=app)).status_code == 201
    await epro.withdraw(participant, now - timedelta(hours=1))

    after = phq9_body(1, 1, 1, 1, 1, 1, 1, 1, 1)  # item 9 would raise a safety alert
    refused = await epro.submit(app, after)
    assert refused.status_code == 403, refused.text
    error = refused.json()["error"]
    assert error["code"] == "participant_withdrawn"
    assert [(d["field"], d["code"]) for d in error["details"]] == [
        ("authored_at", "after_withdrawal")
    ]
    assert not await epro.sql(
        "SELECT 1 FROM responses WHERE response_id = $1", after["response_id"]
    )
    assert not await epro.sql(
        "SELECT 1 FROM outbox WHERE position($1::bytea IN payload) > 0",
        after["response_id"].encode(),
    )

    backlog = phq9_body(
        0, 1, 0, 0, 0, 0, 0, 0, 0, authored_at=(now - timedelta(hours=1, minutes=5)).isoformat()
    )
    assert (await epro.submit(app, backlog)).status_code == 201  # answered before withdrawing
    assert (await epro.submit(app, before)).status_code == 200  # a retry of an earlier one
    # The stored correction's retry (its answer lost on the way) is still a 200, not refused.
    retried = await epro.client.post(corrections, json=fix, headers=app)
    assert (retried.status_code, retried.json()["response"]["version"]) == (200, 2)
    correction = await epro.client.post(
        corrections,
        json={"based_on_version": 2, "reason": "changed my mind", "answers": before["answers"]},
        headers=app,
    )
    assert correction.status_code == 403
    assert correction.json()["error"]["code"] == "participant_withdrawn"


async def test_redelivered_withdrawal_and_a_later_enrolment_leave_the_participant_withdrawn(
    epro: Epro,
) -> None:
    participant, app = await epro.enroll()
    left_at = datetime.now(UTC) - timedelta(minutes=10)
    withdrawal = await epro.withdraw(participant, left_at)
    stamp = "SELECT updated_at FROM participants WHERE participant_id = $1"
    seen = (await epro.sql(stamp, participant))[0]["updated_at"]
    later = ParticipantState(participant_id=participant, site_id="site-a", timezone="Europe/Berlin")
    await publish(epro.kafka, Topic.PARTICIPANTS, [(participant, withdrawal), (participant, later)])

    async def applied() -> bool:
        return bool((await epro.sql(stamp, participant))[0]["updated_at"] > seen)

    await eventually(applied)
    [row] = await epro.sql(
        "SELECT withdrawn_at FROM participants WHERE participant_id = $1", participant
    )
    assert row["withdrawn_at"] == left_at
    audited = await epro.sql(
        "SELECT 1 FROM audit_trail WHERE action = 'schedule.stopped_by_withdrawal' AND entity_id = $1",
        participant,
    )
    assert len(audited) == 1
    assert (await epro.submit(app, phq9_body(0, 0, 0, 0, 0, 0, 0, 0, 0))).status_code == 403


async def test_a_withdrawal_closes_the_window_already_open_and_an_earlier_date_wins(
    kafka: str, database_url: str, tmp_path: Path
) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    protocol = daily_protocol(tmp_path / "protocol.json", ZONE, {"open": (now, 240)})
    async with running_epro(kafka, database_url, protocol) as (epro, pool):
        leaver, _ = await epro.enroll(timezone=ZONE, enrolled_at=now - timedelta(days=1))
        stayer, _ = await epro.enroll(timezone=ZONE, enrolled_at=now - timedelta(days=1))
        await due_and_missed.tick(pool, now + timedelta(minutes=1))  # both windows are open now
        status = "SELECT status FROM occurrences WHERE participant_id = $1 AND schedule_id = 'open'"
        assert [r["status"] for r in await epro.sql(status, leaver)] == ["open"]

        # The withdrawal arrives through the consumer while the window runs: it closes it.
        await epro.withdraw(leaver, now + timedelta(minutes=30), timezone=ZONE)
        assert [r["status"] for r in await epro.sql(status, leaver)] == ["withdrawn"]
        assert [r["status"] for r in await epro.sql(status, stayer)] == ["open"]
        [entry] = await epro.sql(
            "SELECT new FROM audit_trail WHERE action = 'schedule.stopped_by_withdrawal'"
            " AND entity_id = $1",
            leaver,
        )
        assert json.loads(entry["new"])["occurrences_closed"] == 1

        # Re-published with an earlier date (a correction at the site): the earliest holds.
        earlier = now + timedelta(minutes=10)
        event = ParticipantState(
            participant_id=leaver,
            site_id="site-a",
            timezone=ZONE,
            status="withdrawn",
            withdrawn_at=earlier,
        )
        await publish(epro.kafka, Topic.PARTICIPANTS, [(leaver, event)])

        async def moved() -> bool:
            rows = await epro.sql(
                "SELECT withdrawn_at FROM participants WHERE participant_id = $1", leaver
            )
            return bool(rows[0]["withdrawn_at"] == earlier)

        await eventually(moved)
        await due_and_missed.tick(pool, now + timedelta(hours=5))
        await eventually(lambda: outbox_drained(epro))

    assert await schedules_of(kafka, Topic.EPRO_MISSED, leaver) == []
    assert await schedules_of(kafka, Topic.EPRO_MISSED, stayer) == [now]
