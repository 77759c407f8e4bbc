"""Triggers on the real broker become nudges in the database, sent once, with a journey."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest
from helpers import eventually, read_topic, serving, unique_id
from retention import service
from retention.main import create_app
from retention_support import AUTH, Retention, due_event, missed_in_a_row, settings_for
from trialstream.events.epro import ResponseSubmitted
from trialstream.events.topics import Topic
from trialstream.events.visits import VisitReminderDue, VisitType

pytestmark = pytest.mark.integration


async def test_due_questionnaire_is_nudged_in_spanish_delivered_locally_and_acted_on(
    retention: Retention,
) -> None:
    pid = await retention.participant(language="es-MX", channel="sms")
    due = due_event(pid)
    await retention.publish(Topic.EPRO_DUE, [due])

    [nudge] = await retention.nudges_where(pid, 1, status="sent")
    assert (nudge["kind"], nudge["channel"], nudge["language"]) == ("epro-due", "sms", "es")
    assert nudge["body"].startswith("Su cuestionario está listo")
    inbox = (await retention.client.get(f"/v1/participants/{pid}/local-inbox", headers=AUTH)).json()
    assert [m["body"] for m in inbox["messages"]] == [nudge["body"]]

    answer = ResponseSubmitted(
        participant_id=pid,
        response_id=uuid4(),
        questionnaire_id="daily-diary",
        questionnaire_version=1,
        occurrence_id=due.occurrence_id,
        submitted_at=datetime.now(UTC),
        on_time=True,
    )
    await retention.publish(Topic.EPRO_RESPONSES, [answer])
    [done] = await eventually(lambda: _acted_on(retention, pid))
    assert [s["step"] for s in done["journey"]] == [
        "intended",
        "queued",
        "sent",
        "delivered",
        "acted-on",
    ]
    sent = await read_topic(
        retention.kafka, Topic.NUDGES, match=lambda v: v.get("participant_id") == pid
    )
    assert [(e["nudge_id"], e["channel"], e["trigger_event_id"]) for e in sent] == [
        (nudge["nudge_id"], "sms", str(due.event_id))
    ]


async def _acted_on(retention: Retention, pid: str) -> list[dict[str, Any]] | None:
    done = [n for n in await retention.nudges(pid) if n["acted_on_at"] is not None]
    return done or None


async def test_redelivered_trigger_across_restart_and_two_replicas_is_sent_once(
    kafka: str, database_url: str
) -> None:
    settings = settings_for(kafka, database_url)
    async with serving(create_app(settings)) as client:
        retention = Retention(client, kafka, database_url)
        pid = await retention.participant()
        due = due_event(pid)
        await retention.publish(Topic.EPRO_DUE, [due, due])
        await retention.nudges_where(pid, 1, status="sent")
    # A lost offset commit looks like this: the same event again after a restart; and
    # with the inbox forgotten, so only the deterministic nudge id stands between the
    # event and a second message. Two consumers racing on the same event (a rebalance
    # hands a partition over mid-batch) are the two concurrent apply_events calls.
    await retention.sql("DELETE FROM inbox")
    app = create_app(settings)
    async with serving(app) as client:
        retention = Retention(client, kafka, database_url)
        await retention.publish(Topic.EPRO_DUE, [due])
        policy = app.state.policy
        step = service.epro_due_step(policy)
        await asyncio.gather(
            *(
                service.apply_events(
                    app.state.runtime.pool,
                    f"racer-{i}",
                    [due],
                    step,
                    policy,
                    service.utcnow,
                    app.state.runtime.studies,
                )
                for i in range(2)
            )
        )
        later = due_event(pid)  # a new occurrence: proves the consumer ran after the duplicates
        await retention.publish(Topic.EPRO_DUE, [later])
        await retention.nudges_where(pid, 2, status="sent")
    rows = await retention.sql(
        "SELECT trigger_event_id, count(*) AS n FROM nudges WHERE participant_id = $1 GROUP BY 1",
        pid,
    )
    assert sorted((r["trigger_event_id"], r["n"]) for r in rows) == sorted(
        [(due.event_id, 1), (later.event_id, 1)]
    )
    delivered = await retention.sql(
        "SELECT count(*) AS n FROM local_deliveries WHERE participant_id = $1", pid
    )
    assert delivered[0]["n"] == 2
    sent = await read_topic(kafka, Topic.NUDGES, match=lambda v: v.get("participant_id") == pid)
    assert sorted(e["trigger_event_id"] for e in sent) == sorted(
        [str(due.event_id), str(later.event_id)]
    )


async def test_quiet_hours_defer_and_the_daily_cap_suppresses_with_reasons(
    retention: Retention,
) -> None:
    now = datetime.now(UTC)
    # Quiet hours around "now" in Tokyo: the nudge waits for the end of them.
    local = now.astimezone(ZoneInfo("Asia/Tokyo"))
    quiet = {
        "quiet_start": (local - timedelta(hours=1)).strftime("%H:%M"),
        "quiet_end": (local + timedelta(hours=2)).strftime("%H:%M"),
    }
    sleepy = await retention.participant(timezone="Asia/Tokyo", **quiet)
    await retention.publish(Topic.EPRO_DUE, [due_event(sleepy, hours_open=12)])
    [deferred] = await retention.nudges_where(sleepy, 1, status="queued")
    send_at = datetime.fromisoformat(deferred["send_at"])
    assert timedelta(hours=1, minutes=58) < send_at - now <= timedelta(hours=2, minutes=1)
    assert "deferred by quiet hours" in deferred["journey"][-1]["detail"]

    capped = await retention.participant(max_per_day=1)
    await retention.publish(Topic.EPRO_DUE, [due_event(capped)])
    await retention.nudges_where(capped, 1, status="sent")
    await retention.publish(Topic.EPRO_DUE, [due_event(capped)])
    [suppressed] = await retention.nudges_where(capped, 1, status="suppressed")
    assert suppressed["suppress_reason"] == "frequency-cap"
    assert [s["step"] for s in suppressed["journey"]] == ["intended", "suppressed"]


async def test_opted_out_participant_gets_no_message_and_the_reason_is_recorded(
    retention: Retention,
) -> None:
    pid = await retention.participant(opted_out=["push", "sms", "email"])
    await retention.publish(Topic.EPRO_DUE, [due_event(pid)])
    [nudge] = await retention.nudges_where(pid, 1, status="suppressed")
    assert nudge["suppress_reason"] == "opt-out"
    inbox = (await retention.client.get(f"/v1/participants/{pid}/local-inbox", headers=AUTH)).json()
    assert inbox["messages"] == []


async def test_third_missed_questionnaire_becomes_a_task_for_the_site_coordinator(
    retention: Retention,
) -> None:
    site = unique_id("site")
    pid = await retention.participant(site=site)
    misses = missed_in_a_row(pid)
    await retention.publish(Topic.EPRO_MISSED, misses)
    await retention.nudges_where(pid, 1, status="escalated")
    await retention.nudges_where(pid, 2, status="sent")
    statuses = sorted(n["status"] for n in await retention.nudges(pid))
    assert statuses == ["escalated", "sent", "sent"]
    tasks = (await retention.client.get(f"/v1/sites/{site}/tasks", headers=AUTH)).json()["tasks"]
    assert [(t["participant_id"], t["kind"]) for t in tasks] == [(pid, "epro-missed")]
    assert "3 questionnaires missed in a row" in tasks[0]["reason"]
    events = await read_topic(
        retention.kafka, Topic.COORDINATOR_TASKS, match=lambda v: v.get("participant_id") == pid
    )
    assert [(e["site_id"], e["task_id"]) for e in events] == [(site, tasks[0]["task_id"])]
    done = await retention.client.post(f"/v1/tasks/{tasks[0]['task_id']}/complete", headers=AUTH)
    assert done.status_code == 200
    assert (await retention.client.get(f"/v1/sites/{site}/tasks", headers=AUTH)).json()[
        "tasks"
    ] == []


async def test_one_hour_visit_reminder_uses_local_time_and_french(retention: Retention) -> None:
    pid = await retention.participant(language="fr", timezone="Europe/Paris")
    starts = (datetime.now(UTC) + timedelta(hours=1)).replace(second=0, microsecond=0)
    reminder = VisitReminderDue(
        participant_id=pid,
        visit_id=uuid4(),
        booking_id=uuid4(),
        visit_name="J7",
        visit_type=VisitType.VIDEO,
        starts_at=starts,
        lead="1h",
    )
    await retention.publish(Topic.VISIT_REMINDERS, [reminder])
    [nudge] = await retention.nudges_where(pid, 1, status="sent")
    paris = starts.astimezone(ZoneInfo("Europe/Paris")).strftime("%H:%M")
    assert nudge["body"] == f"Votre visite J7 commence à {paris}, dans environ une heure."
    assert nudge["tone"] == "direct"


async def test_undecodable_trigger_goes_to_dead_letter_and_the_next_one_is_nudged(
    retention: Retention,
) -> None:
    pid = await retention.participant()
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=retention.kafka, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            Topic.EPRO_DUE, key=pid.encode(), value=b'{"participant_id": "%s"}' % pid.encode()
        )
    finally:
        await producer.stop()
    await retention.publish(Topic.EPRO_DUE, [due_event(pid)])
    await retention.nudges_where(pid, 1, status="sent")
    dead = await read_topic(
        retention.kafka,
        Topic.DEAD_LETTER,
        match=lambda v: (
            v.get("consumer_group") == "retention-epro-due" and pid in v.get("payload", "")
        ),
    )
    assert len(dead) == 1
    assert "occurrence_id" in dead[0]["reason"]
