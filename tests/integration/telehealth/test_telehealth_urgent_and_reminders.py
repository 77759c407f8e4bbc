"""Urgent proposals from alerts on the real broker; reminders and missed visits said once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from helpers import eventually, read_topic, serving
from telehealth.main import create_app
from telehealth.service import scheduler
from telehealth.subscribers import ALERTS_GROUP
from telehealth_harness import T0, VIDEO_BASE, Telehealth
from trialstream.events.alerts import AlertKind, AlertRaised, Severity
from trialstream.events.participants import ParticipantState
from trialstream.events.topics import Topic

pytestmark = pytest.mark.integration


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def alert(participant: str, severity: Severity = Severity.HIGH) -> AlertRaised:
    return AlertRaised(
        participant_id=participant,
        kind=AlertKind.EPRO_SAFETY,
        metric=None,  # ePRO safety alerts carry no wearable metric
        severity=severity,
        rule="epro/phq9-item9",
        detected_at=T0,
        window_start=T0,
        window_end=T0,
        observed=[2.0],
        model_version="epro-1",
        explanation="PHQ-9 item 9 answered 2.",
    )


async def proposals(
    th: Telehealth, auth: dict[str, str], status: str = "proposed"
) -> list[dict[str, Any]]:
    r = await th.client.get("/v1/proposals", params={"status": status}, headers=auth)
    assert r.status_code == 200, r.text
    return list(r.json()["proposals"])


async def test_high_severity_alert_proposes_earliest_free_slot_and_staff_confirm(
    telehealth: Telehealth,
) -> None:
    staff_id, auth = await telehealth.staff()
    first, second = await telehealth.enrol(count=2)
    day1 = await telehealth.visit(first, auth, "Day 1")
    # The earliest slot (09:00 Berlin = 08:00Z today) is taken: the proposal gets the next one.
    assert (
        await telehealth.book(auth, day1["visit_id"], staff_id, utc(2030, 1, 7, 8))
    ).status_code == 201
    high = alert(second)
    await telehealth.publish(
        Topic.ALERTS, [(second, high), (second, high), (second, alert(second, Severity.MEDIUM))]
    )

    listed = await eventually(lambda: proposals(telehealth, auth))
    assert [
        (p["participant_id"], p["staff_id"], p["starts_at"], p["visit_type"]) for p in listed
    ] == [(second, staff_id, "2030-01-07T08:30:00Z", "video")]
    assert listed[0]["room_url"].startswith(VIDEO_BASE)
    published = await read_topic(
        telehealth.kafka, Topic.VISIT_PROPOSALS, match=lambda v: v.get("participant_id") == second
    )
    assert [(p["alert_id"], p["proposal_id"], p["starts_at"]) for p in published] == [
        (str(high.event_id), listed[0]["booking_id"], "2030-01-07T08:30:00Z")
    ]
    confirmed = await telehealth.client.post(
        f"/v1/proposals/{listed[0]['booking_id']}/confirm",
        json={"note": "calling first"},
        headers=auth,
    )
    assert (confirmed.status_code, confirmed.json()["status"]) == (200, "booked")
    again = await telehealth.client.post(
        f"/v1/proposals/{listed[0]['booking_id']}/dismiss", json={}, headers=auth
    )
    assert (again.status_code, again.json()["error"]["code"]) == (409, "already_decided")
    scheduled = await read_topic(
        telehealth.kafka,
        Topic.VISITS,
        match=lambda v: v.get("booking_id") == listed[0]["booking_id"],
    )
    assert [e["status"] for e in scheduled] == ["scheduled"]
    handled = await telehealth.sql(
        "SELECT count(*) FROM urgent_alerts WHERE participant_id = $1", second
    )
    assert handled == 1  # the duplicate was ignored, the medium alert never recorded


async def test_dismissed_proposal_frees_its_slot(telehealth: Telehealth) -> None:
    staff_id, auth = await telehealth.staff()
    (participant,) = await telehealth.enrol()
    await telehealth.visits(participant, auth)
    await telehealth.publish(Topic.ALERTS, [(participant, alert(participant))])
    (proposal,) = await eventually(lambda: proposals(telehealth, auth))
    assert proposal["starts_at"] == "2030-01-07T08:00:00Z"
    day1 = await telehealth.visit(participant, auth, "Day 1")
    held = await telehealth.book(auth, day1["visit_id"], staff_id, utc(2030, 1, 7, 8))
    assert (held.status_code, held.json()["error"]["code"]) == (409, "slot_taken")
    r = await telehealth.client.post(
        f"/v1/proposals/{proposal['booking_id']}/dismiss",
        json={"note": "seen in clinic"},
        headers=auth,
    )
    assert (r.status_code, r.json()["status"]) == (200, "dismissed")
    day1 = await telehealth.visit(participant, auth, "Day 1")
    assert (
        await telehealth.book(auth, day1["visit_id"], staff_id, utc(2030, 1, 7, 8))
    ).status_code == 201


async def test_a_run_of_alerts_holds_one_urgent_visit_not_the_whole_calendar(
    telehealth: Telehealth,
) -> None:
    _, auth = await telehealth.staff()
    (participant,) = await telehealth.enrol()
    await telehealth.visits(participant, auth)
    run = [alert(participant) for _ in range(5)]  # five distinct alerts of one episode
    await telehealth.publish(Topic.ALERTS, [(participant, a) for a in run])

    async def all_handled() -> list[str] | None:
        found = await telehealth.sql_rows(
            "SELECT outcome FROM urgent_alerts WHERE participant_id = $1", participant
        )
        return sorted(r["outcome"] for r in found) if len(found) == 5 else None

    assert await eventually(all_handled) == ["already_proposed"] * 4 + ["proposed"]
    (proposal,) = await proposals(telehealth, auth)  # one slot held, listed once
    r = await telehealth.client.post(
        f"/v1/proposals/{proposal['booking_id']}/dismiss", json={}, headers=auth
    )
    assert r.status_code == 200, r.text
    # Once nothing urgent is ahead, the next alert proposes again.
    await telehealth.publish(Topic.ALERTS, [(participant, alert(participant))])
    (again,) = await eventually(lambda: proposals(telehealth, auth))
    assert again["booking_id"] != proposal["booking_id"]


async def outcomes(th: Telehealth) -> dict[str, str]:
    conn = await asyncpg.connect(th.database_url)
    try:
        rows = await conn.fetch("SELECT participant_id, outcome FROM telehealth.urgent_alerts")
    finally:
        await conn.close()
    return {r["participant_id"]: r["outcome"] for r in rows}


async def test_alert_without_a_free_slot_is_recorded_not_proposed(telehealth: Telehealth) -> None:
    _, auth = await telehealth.staff()
    (participant,) = await telehealth.enrol(site="site-without-staff")
    await eventually(lambda: telehealth.sql("SELECT count(*) FROM participants"))
    await telehealth.publish(Topic.ALERTS, [(participant, alert(participant))])
    assert await eventually(lambda: outcomes(telehealth)) == {participant: "no_free_slot"}
    assert await proposals(telehealth, auth, "all") == []


async def test_alert_arriving_before_enrolment_is_proposed_once_the_participant_arrives(
    telehealth: Telehealth,
) -> None:
    staff_id, auth = await telehealth.staff()
    early = "P-early-" + telehealth.site[-8:]
    await telehealth.publish(Topic.ALERTS, [(early, alert(early))])
    assert await eventually(lambda: outcomes(telehealth)) == {early: "unknown_participant"}
    assert await proposals(telehealth, auth) == []

    await telehealth.publish(
        Topic.PARTICIPANTS,
        [
            (
                early,
                ParticipantState(
                    participant_id=early,
                    site_id=telehealth.site,
                    timezone="Europe/Berlin",
                    occurred_at=T0,
                ),
            )
        ],
    )
    (proposal,) = await eventually(lambda: proposals(telehealth, auth))
    assert (proposal["participant_id"], proposal["staff_id"]) == (early, staff_id)
    assert await outcomes(telehealth) == {early: "proposed"}


async def test_reminders_and_missed_visits_are_emitted_once_across_restarts(
    telehealth: Telehealth,
) -> None:
    staff_id, auth = await telehealth.staff()
    (participant,) = await telehealth.enrol()
    day7 = await telehealth.visit(participant, auth, "Day 7")
    booking = (await telehealth.book(auth, day7["visit_id"], staff_id, utc(2030, 1, 12, 8))).json()
    pool = telehealth.app.state.context.pool

    assert await scheduler.tick(pool, utc(2030, 1, 11, 7, 59)) == (0, 1)  # Day 1 missed
    assert await scheduler.tick(pool, utc(2030, 1, 11, 8, 0)) == (1, 0)  # 24 h before
    assert await scheduler.tick(pool, utc(2030, 1, 11, 9, 0)) == (0, 0)
    restarted = await asyncpg.create_pool(
        telehealth.database_url, server_settings={"search_path": "telehealth"}
    )
    try:  # a fresh process (or another replica) sees what was already said
        assert await scheduler.tick(restarted, utc(2030, 1, 11, 9, 0)) == (0, 0)
        assert await scheduler.tick(restarted, utc(2030, 1, 12, 7, 0)) == (1, 0)  # 1 h before
        assert await scheduler.tick(restarted, utc(2030, 1, 12, 7, 30)) == (0, 0)
    finally:
        await restarted.close()

    reminders = await read_topic(
        telehealth.kafka,
        Topic.VISIT_REMINDERS,
        match=lambda v: v.get("booking_id") == booking["booking_id"],
    )
    assert sorted(r["lead"] for r in reminders) == ["1h", "24h"]
    missed = await read_topic(
        telehealth.kafka,
        Topic.VISITS,
        match=lambda v: v.get("participant_id") == participant and v.get("status") == "missed",
    )
    assert [m["visit_name"] for m in missed] == ["Day 1"]


async def test_late_booking_skips_the_24h_reminder_and_rescheduling_reminds_again(
    telehealth: Telehealth,
) -> None:
    staff_id, auth = await telehealth.staff()
    (participant,) = await telehealth.enrol()
    day7 = await telehealth.visit(participant, auth, "Day 7")
    telehealth.clock.now = utc(2030, 1, 12, 5)  # three hours before the slot
    booking = (await telehealth.book(auth, day7["visit_id"], staff_id, utc(2030, 1, 12, 8))).json()
    pool = telehealth.app.state.context.pool
    assert await scheduler.tick(pool, utc(2030, 1, 12, 7)) == (1, 1)  # 1 h reminder; Day 1 missed
    r = await telehealth.client.post(
        f"/v1/bookings/{booking['booking_id']}/reschedule",
        json={"starts_at": "2030-01-14T08:00:00Z", "reason": "ill"},
        headers=auth,
    )
    assert r.status_code == 200, r.text
    assert await scheduler.tick(pool, utc(2030, 1, 13, 8)) == (1, 0)  # 24 h before the new time


async def test_booked_visit_is_not_missed_while_its_deviation_booking_is_ahead(
    telehealth: Telehealth,
) -> None:
    staff_id, auth = await telehealth.staff()
    (participant,) = await telehealth.enrol()
    day7 = await telehealth.visit(participant, auth, "Day 7")
    r = await telehealth.book(
        auth,
        day7["visit_id"],
        staff_id,
        utc(2030, 1, 17, 8),
        deviation_reason="site closed for flooding",
    )
    assert r.status_code == 201, r.text
    pool = telehealth.app.state.context.pool
    await scheduler.tick(pool, utc(2030, 1, 16))  # window closed, booking still ahead
    assert (await telehealth.visit(participant, auth, "Day 7"))["status"] == "booked"


async def test_scheduler_loops_of_two_replicas_say_each_reminder_once(
    telehealth: Telehealth,
) -> None:
    staff_id, auth = await telehealth.staff()
    (participant,) = await telehealth.enrol()
    day7 = await telehealth.visit(participant, auth, "Day 7")
    booking = (await telehealth.book(auth, day7["visit_id"], staff_id, utc(2030, 1, 12, 8))).json()
    telehealth.clock.now = utc(2030, 1, 11, 8, 5)
    settings = telehealth.app.state.context.settings.model_copy(
        update={"scheduler_interval_seconds": 0.05, "replica": 1}
    )
    replica = create_app(settings, clock=telehealth.clock)
    async with serving(replica):
        pool = telehealth.app.state.context.pool
        await asyncio.gather(*(scheduler.tick(pool, telehealth.clock.now) for _ in range(5)))
        await eventually(lambda: telehealth.sql("SELECT count(*) FROM reminders_sent"))
        await asyncio.sleep(0.3)  # several more loop ticks
    reminders = await read_topic(
        telehealth.kafka,
        Topic.VISIT_REMINDERS,
        match=lambda v: v.get("booking_id") == booking["booking_id"],
    )
    assert [r["lead"] for r in reminders] == ["24h"]


async def test_invalid_alert_goes_to_dead_letter_and_later_alerts_still_propose(
    telehealth: Telehealth,
) -> None:
    _, auth = await telehealth.staff()
    (participant,) = await telehealth.enrol()
    await telehealth.visits(participant, auth)
    producer = AIOKafkaProducer(bootstrap_servers=telehealth.kafka, acks="all")
    await producer.start()
    try:
        bad = b'{"participant_id": "%s", "severity": "catastrophic"}' % participant.encode()
        await producer.send_and_wait(Topic.ALERTS, key=participant.encode(), value=bad)
    finally:
        await producer.stop()
    await telehealth.publish(Topic.ALERTS, [(participant, alert(participant))])
    (proposal,) = await eventually(lambda: proposals(telehealth, auth))
    assert proposal["participant_id"] == participant
    letters = await read_topic(
        telehealth.kafka,
        Topic.DEAD_LETTER,
        match=lambda v: v.get("key") == participant and v.get("consumer_group") == ALERTS_GROUP,
    )
    assert len(letters) == 1
    assert "severity" in letters[0]["reason"]
