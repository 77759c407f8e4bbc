"""Escalation exactly once with two replicas; the live feed over real TCP; the timeline."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from audit_helpers import audited
from fastapi import FastAPI
from helpers import as_uploads, eventually, fetchval, read_topic, serving, unique_id
from monitoring.domain import AckDeadlines
from monitoring.main import create_app
from monitoring.service import escalate_overdue
from monitoring.timeline_readings import forget_seen_readings, record_rollups_for_timeline
from monitoring_support import Monitoring, alert_for, monitoring_settings, publish
from servers import tcp_server
from trialstream.db import create_pool
from trialstream.events.alerts import Severity
from trialstream.events.epro import QuestionnaireMissed, ResponseSubmitted
from trialstream.events.readings import Metric, ReadingReceived
from trialstream.events.topics import Topic
from trialstream.events.visits import VisitChanged, VisitStatus, VisitType
from trialstream.reading_summaries import summarise

pytestmark = pytest.mark.integration


async def test_overdue_alert_escalates_once_with_two_replicas(
    kafka: str, database_url: str
) -> None:
    # High alerts are due at once, medium ones in an hour: only the high one escalates.
    settings = monitoring_settings(
        kafka,
        database_url,
        ack_deadline_high_minutes=0,
        ack_deadline_medium_minutes=60,
        escalation_check_seconds=0.1,
    )
    first, second = create_app(settings), create_app(settings.model_copy(update={"replica": 1}))
    async with serving(first) as client:
        m = Monitoring(client, kafka, database_url)
        site = unique_id("site")
        nurse = await m.staff(site)
        participant = await m.enrolled(site)
        async with serving(second):
            urgent = alert_for(participant, severity=Severity.HIGH)
            later = alert_for(
                participant, rule="clinical-limit/heart-rate-low", severity=Severity.MEDIUM
            )
            await publish(kafka, Topic.ALERTS, [(participant, urgent), (participant, later)])

            async def both() -> bool:
                return len(await m.alerts(nurse, status="all")) == 2

            await eventually(both)

            async def escalated() -> dict[str, Any] | None:
                alert = await m.alert(nurse, urgent.event_id)
                return alert if alert["escalated_at"] else None

            shown = await eventually(escalated)
            assert shown["overdue"] is True
            # Both replicas' checkers run several more passes after the escalation.
            apps = [first, second]
            passes = [app.state.escalation.passes for app in apps]

            async def more_passes() -> bool:
                return all(
                    a.state.escalation.passes >= p + 3 for a, p in zip(apps, passes, strict=True)
                )

            await eventually(more_passes)
            # Leave only once both replicas hold partitions of every group: a member leaving
            # in the middle of a rebalance can leave the embedded broker's group stuck.
            await eventually(lambda: _every_consumer_assigned(apps), timeout=60)
        await eventually(lambda: _every_consumer_assigned([first], all_partitions=True), timeout=60)
        other = await m.alert(nurse, later.event_id)
        assert (other["overdue"], other["escalated_at"]) == (False, None)
        ack = await m.act(nurse, urgent.event_id, "acknowledge", {"note": "late but seen"})
        assert ack.json()["overdue"] is False

    events = await read_topic(
        kafka, Topic.ALERT_ESCALATIONS, match=lambda v: v.get("participant_id") == participant
    )
    assert [(e["alert_id"], e["severity"], e["site_id"]) for e in events] == [
        (str(urgent.event_id), "high", site)
    ]
    entries = await audited(database_url, "monitoring", "alert", str(urgent.event_id))
    assert [e["action"] for e in entries].count("alert.escalated") == 1


async def _every_consumer_assigned(apps: list[FastAPI], *, all_partitions: bool = False) -> bool:
    consumers = [s.consumer for a in apps for s in a.state.runtime.broker.subscribers]
    want = apps[0].state.runtime.settings.topic_partitions if all_partitions else 1
    return all(c is not None and len(c.assignment()) >= want for c in consumers)


async def test_racing_checkers_escalate_each_alert_once(
    monitoring: Monitoring, database_url: str
) -> None:
    participant = await monitoring.enrolled(unique_id("site"))
    alerts = [alert_for(participant, rule=f"r/{i}") for i in range(40)]
    await publish(monitoring.kafka, Topic.ALERTS, [(participant, a) for a in alerts])
    count_sql = "SELECT count(*) FROM monitoring.alerts WHERE participant_id = $1"

    async def all_there() -> bool:
        return int(await fetchval(database_url, count_sql, participant)) == 40

    await eventually(all_there)
    deadlines = AckDeadlines({s: timedelta(0) for s in ("low", "medium", "high")})
    pools = [await create_pool(database_url, schema="monitoring") for _ in range(4)]
    try:
        now = datetime.now(UTC) + timedelta(seconds=1)
        counts = await asyncio.gather(
            *(escalate_overdue(p, deadlines, now, batch=7) for p in pools for _ in range(3))
        )
    finally:
        for p in pools:
            await p.close()
    outbox = await fetchval(
        database_url,
        "SELECT count(*) FROM monitoring.outbox WHERE topic = $1 AND convert_from(payload, 'UTF8')::jsonb->>'participant_id' = $2",
        str(Topic.ALERT_ESCALATIONS),
        participant,
    )
    assert (outbox, sum(counts)) == (40, 40)


async def test_new_alert_is_pushed_to_the_sites_live_feed(kafka: str, database_url: str) -> None:
    app = create_app(monitoring_settings(kafka, database_url))
    async with tcp_server(app) as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
        m = Monitoring(client, kafka, database_url)
        site, elsewhere = unique_id("site"), unique_id("site")
        nurse = await m.staff(site)
        mine, theirs = await m.enrolled(site), await m.enrolled(elsewhere)
        async with client.stream("GET", "/v1/alerts/stream", headers=nurse) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            events = _sse_events(stream)
            assert (await anext(events))[0] == "ready"
            other = alert_for(theirs)
            await publish(kafka, Topic.ALERTS, [(theirs, other)])
            sql = "SELECT count(*) FROM monitoring.alerts WHERE alert_id = $1"
            await eventually(lambda: fetchval(database_url, sql, other.event_id))
            alert = alert_for(mine)
            await publish(kafka, Topic.ALERTS, [(mine, alert)])
            kind, data = await asyncio.wait_for(anext(events), timeout=30)
            assert (kind, data["alert_id"], data["site_id"], data["change"]) == (
                "alert",
                str(alert.event_id),
                site,
                "raised",
            )
            await m.act(nurse, alert.event_id, "acknowledge", {"note": "on it"})
            kind, data = await asyncio.wait_for(anext(events), timeout=30)
            assert (data["alert_id"], data["change"]) == (str(alert.event_id), "acknowledged")


async def _sse_events(stream: httpx.Response) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    kind, data = "message", ""
    async for line in stream.aiter_lines():
        if line.startswith("event:"):
            kind = line.partition(":")[2].strip()
        elif line.startswith("data:"):
            data = line.partition(":")[2].strip()
        elif line == "" and data:
            yield kind, json.loads(data)
            kind, data = "message", ""


async def test_timeline_rolls_readings_up_once_and_shows_epro_and_visits(
    monitoring: Monitoring, database_url: str
) -> None:
    site = unique_id("site")
    nurse = await monitoring.staff(site)
    participant = await monitoring.enrolled(site)
    bucket = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
    bucket -= timedelta(minutes=bucket.minute % 5)
    readings = [
        ReadingReceived(
            participant_id=participant,
            device_id="watch-1",
            metric=Metric.HEART_RATE,
            value=v,
            unit="beats/min",
            measured_at=bucket + timedelta(minutes=i * 2),
        )
        for i, v in enumerate([60.0, 70.0, 80.0, 90.0])  # 0, 2, 4 min | 6 min: next bucket
    ]
    [summary] = summarise(readings, "default", datetime.now(UTC))  # one upload
    keyed = [(participant, summary)]
    await publish(monitoring.kafka, Topic.READING_SUMMARIES, keyed * 2)  # a redelivery
    await publish(monitoring.kafka, Topic.READING_SUMMARIES, keyed)  # and another, later
    missed = QuestionnaireMissed(
        participant_id=participant,
        occurrence_id=uuid.uuid4(),
        questionnaire_id="phq-9",
        questionnaire_version=1,
        due_at=bucket - timedelta(hours=2),
        expires_at=bucket - timedelta(minutes=30),
    )
    answered = ResponseSubmitted(
        participant_id=participant,
        response_id=uuid.uuid4(),
        questionnaire_id="gad-7",
        questionnaire_version=1,
        submitted_at=bucket + timedelta(minutes=1),
        on_time=True,
        scores={"gad7_total": 4},
    )
    visit = VisitChanged(
        participant_id=participant,
        site_id=site,
        visit_id=uuid.uuid4(),
        visit_name="Day 7",
        visit_type=VisitType.VIDEO,
        status=VisitStatus.SCHEDULED,
        window_start=bucket,
        window_end=bucket + timedelta(days=2),
        starts_at=bucket + timedelta(minutes=20),
        ends_at=bucket + timedelta(minutes=40),
    )
    await publish(monitoring.kafka, Topic.EPRO_MISSED, [(participant, missed)] * 2)
    await publish(monitoring.kafka, Topic.EPRO_RESPONSES, [(participant, answered)])
    await publish(monitoring.kafka, Topic.VISITS, [(participant, visit)])
    marker = ReadingReceived(  # published last: once it is counted, the redeliveries were seen
        participant_id=participant,
        device_id="watch-1",
        metric=Metric.OXYGEN_SATURATION,
        value=97,
        unit="%",
        measured_at=bucket,
    )
    [marked] = as_uploads([marker])
    await publish(monitoring.kafka, Topic.READING_SUMMARIES, [(participant, marked), *keyed])

    async def complete() -> dict[str, Any] | None:
        r = await monitoring.client.get(
            f"/v1/participants/{participant}/timeline",
            params={"from": (bucket - timedelta(hours=3)).isoformat()},
            headers=nurse,
        )
        assert r.status_code == 200, r.text
        body = dict(r.json())
        ready = "oxygen-saturation" in body["readings"] and len(body["events"]) == 3
        return body if ready else None

    body = await eventually(complete)
    rollups = [(p["n"], p["mean"], p["min"], p["max"]) for p in body["readings"]["heart-rate"]]
    assert rollups == [(3, 70.0, 60.0, 80.0), (1, 90.0, 90.0, 90.0)]
    assert [(e["kind"], e["title"]) for e in body["events"]] == [
        ("epro-missed", missed_title(missed)),
        ("epro-response", "gad-7 answered (on time; gad7_total 4)"),
        ("visit", "Day 7 (video visit): scheduled"),
    ]

    # A timeline is bounded: a range past a month, or an empty one, is a 422 on `to`.
    for start, end, code in [
        (bucket - timedelta(days=40), bucket, "range_too_long"),
        (bucket, bucket - timedelta(hours=1), "empty_range"),
    ]:
        r = await monitoring.client.get(
            f"/v1/participants/{participant}/timeline",
            params={"from": start.isoformat(), "to": end.isoformat()},
            headers=nurse,
        )
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == code
        assert [d["field"] for d in r.json()["error"]["details"]] == ["to"]


def missed_title(e: QuestionnaireMissed) -> str:
    return f"phq-9 missed (due {e.due_at:%Y-%m-%d %H:%M} UTC)"


async def test_summary_ids_are_forgotten_after_the_dedupe_horizon(
    monitoring: Monitoring, database_url: str
) -> None:
    participant = unique_id("P")
    reading = ReadingReceived(
        participant_id=participant,
        device_id="watch-1",
        metric=Metric.STEP_COUNT,
        value=12,
        unit="steps",
        measured_at=datetime.now(UTC),
    )
    conn = await asyncpg.connect(database_url, server_settings={"search_path": "monitoring"})
    try:
        async with conn.transaction():
            await record_rollups_for_timeline(conn, as_uploads([reading]) * 2)
        assert await forget_seen_readings(conn, 3600) == "DELETE 0"
        assert await forget_seen_readings(conn, 0) == "DELETE 1"
        n = await conn.fetchval(
            "SELECT n FROM reading_rollups WHERE participant_id = $1", participant
        )
    finally:
        await conn.close()
    assert n == 1
