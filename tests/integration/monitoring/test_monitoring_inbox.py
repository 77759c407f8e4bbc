"""Alerts and enrolments from the real broker into the staff inbox; site scoping; audit."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from audit_helpers import audited
from helpers import eventually, publish_to, read_topic, serving, unique_id
from monitoring.main import create_app
from monitoring.settings import MonitoringSettings
from monitoring.subscribers import ALERTS_GROUP
from monitoring_support import ADMIN, create_staff
from staff_tokens import JWKS, staff_auth
from trialstream.events.alerts import AlertEpisodeEnded, AlertKind, AlertRaised, Severity
from trialstream.events.base import Event
from trialstream.events.participants import ParticipantState
from trialstream.events.readings import Metric
from trialstream.events.topics import Topic

pytestmark = pytest.mark.integration


@dataclass
class Inbox:
    client: httpx.AsyncClient
    kafka: str
    database_url: str

    async def publish(self, topic: Topic, events: Sequence[tuple[str, Event]]) -> None:
        await publish_to(self.kafka, topic, list(events))

    async def staff(self, site: str, role: str = "investigator") -> dict[str, str]:
        return create_staff(site, role, prefix="nurse")

    async def alerts(self, auth: dict[str, str], **params: str) -> list[dict[str, object]]:
        r = await self.client.get("/v1/alerts", params=params, headers=auth)
        assert r.status_code == 200, r.text
        return list(r.json()["alerts"])


@pytest.fixture
async def inbox(kafka: str, database_url: str) -> AsyncIterator[Inbox]:
    settings = MonitoringSettings(
        kafka_bootstrap_servers=kafka,
        database_url=database_url,
        admin_token=ADMIN,
        oidc_jwks=JWKS,
        kafka_session_timeout_ms=2000,
    )
    async with serving(create_app(settings)) as client:
        yield Inbox(client, kafka, database_url)


def alert_for(participant: str) -> AlertRaised:
    t = datetime.now(UTC) - timedelta(minutes=5)
    return AlertRaised(
        participant_id=participant,
        metric=Metric.HEART_RATE,
        severity=Severity.HIGH,
        rule="clinical-limit/heart-rate-high",
        detected_at=t,
        window_start=t - timedelta(minutes=4),
        window_end=t,
        observed=[140.0, 141.0, 142.0, 140.0, 139.0],
        threshold=131,
        model_version="rules-1.0",
        explanation="Heart rate 139-142 beats/min over 5 readings in 4 min.",
    )


async def enrolled(inbox: Inbox, site: str) -> str:
    participant = unique_id("P")
    await inbox.publish(
        Topic.PARTICIPANTS,
        [(participant, ParticipantState(participant_id=participant, site_id=site))],
    )
    return participant


async def test_alert_reaches_site_inbox_and_can_be_acknowledged(inbox: Inbox) -> None:
    site = unique_id("site")
    nurse = await inbox.staff(site)
    participant = await enrolled(inbox, site)
    alert = alert_for(participant)
    await inbox.publish(Topic.ALERTS, [(participant, alert)])

    listed = await eventually(lambda: inbox.alerts(nurse))
    assert [(a["alert_id"], a["site_id"], a["observed"]) for a in listed] == [
        (str(alert.event_id), site, alert.observed)
    ]
    r = await inbox.client.post(
        f"/v1/alerts/{alert.event_id}/acknowledge", json={"note": "called, resting"}, headers=nurse
    )
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["ack_note"]) == ("acknowledged", "called, resting")
    assert await inbox.alerts(nurse) == []
    again = await inbox.client.post(
        f"/v1/alerts/{alert.event_id}/acknowledge", json={}, headers=nurse
    )
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "already_acknowledged"

    audit = (await inbox.client.get(f"/v1/alerts/{alert.event_id}/audit", headers=nurse)).json()[
        "entries"
    ]
    assert [(e["action"], e["old_status"], e["new_status"]) for e in audit] == [
        ("alert.received", None, "open"),  # what arrived is audited too, by the system
        ("alert.acknowledged", "open", "acknowledged"),
    ]
    assert audit[0]["actor"] == "system:alerts"
    acks = await read_topic(
        inbox.kafka,
        Topic.ALERT_ACKNOWLEDGEMENTS,
        match=lambda v: v.get("alert_id") == str(alert.event_id),
    )
    assert len(acks) == 1
    assert acks[0]["site_id"] == site
    # the note stays in monitoring (the alert, its audit): free text is not put on a topic
    assert (acks[0]["note"], acks[0]["has_note"]) == (None, True)


async def test_duplicate_alert_event_creates_one_inbox_row(inbox: Inbox) -> None:
    site = unique_id("site")
    nurse = await inbox.staff(site)
    participant = await enrolled(inbox, site)
    alert = alert_for(participant)
    await inbox.publish(Topic.ALERTS, [(participant, alert), (participant, alert)])
    await inbox.publish(Topic.ALERTS, [(participant, alert)])
    await eventually(lambda: inbox.alerts(nurse))
    conn = await asyncpg.connect(inbox.database_url)
    try:
        rows = await conn.fetchval(
            "SELECT count(*) FROM monitoring.alerts WHERE participant_id = $1", participant
        )
    finally:
        await conn.close()
    assert rows == 1


async def test_staff_of_another_site_never_see_or_ack_the_alert(inbox: Inbox) -> None:
    site_a, site_b = unique_id("site"), unique_id("site")
    nurse_a, nurse_b = await inbox.staff(site_a), await inbox.staff(site_b)
    participant = await enrolled(inbox, site_a)
    alert = alert_for(participant)
    await inbox.publish(Topic.ALERTS, [(participant, alert)])
    await eventually(lambda: inbox.alerts(nurse_a))

    assert await inbox.alerts(nurse_b) == []
    assert await inbox.alerts(nurse_b, status="all") == []
    cross = await inbox.client.get("/v1/alerts", params={"site": site_a}, headers=nurse_b)
    assert (cross.status_code, cross.json()["error"]["code"]) == (403, "forbidden_site")
    read = await inbox.client.get(f"/v1/alerts/{alert.event_id}", headers=nurse_b)
    assert (read.status_code, read.json()["error"]["code"]) == (403, "forbidden_site")
    ack = await inbox.client.post(
        f"/v1/alerts/{alert.event_id}/acknowledge", json={}, headers=nurse_b
    )
    assert (ack.status_code, ack.json()["error"]["code"]) == (403, "forbidden_site")
    assert [a["status"] for a in await inbox.alerts(nurse_a)] == ["open"]


async def test_alert_arriving_before_enrolment_appears_once_enrolled(inbox: Inbox) -> None:
    site = unique_id("site")
    nurse = await inbox.staff(site)
    participant = unique_id("P")
    alert = alert_for(participant)
    await inbox.publish(Topic.ALERTS, [(participant, alert)])
    monitor = await inbox.staff("cro", role="monitor")
    await eventually(lambda: inbox.alerts(monitor, status="all"))
    assert await inbox.alerts(nurse) == []
    await inbox.publish(
        Topic.PARTICIPANTS,
        [(participant, ParticipantState(participant_id=participant, site_id=site))],
    )
    listed = await eventually(lambda: inbox.alerts(nurse))
    assert [a["alert_id"] for a in listed] == [str(alert.event_id)]


async def test_monitor_role_reads_all_sites_but_cannot_acknowledge(inbox: Inbox) -> None:
    site = unique_id("site")
    participant = await enrolled(inbox, site)
    alert = alert_for(participant)
    await inbox.publish(Topic.ALERTS, [(participant, alert)])
    monitor = await inbox.staff("cro", role="monitor")
    listed = await eventually(lambda: inbox.alerts(monitor, site=site))
    assert [a["alert_id"] for a in listed] == [str(alert.event_id)]
    r = await inbox.client.post(
        f"/v1/alerts/{alert.event_id}/acknowledge", json={}, headers=monitor
    )
    assert (r.status_code, r.json()["error"]["code"]) == (403, "role_not_allowed")


async def test_invalid_alert_event_goes_to_dead_letter_topic(inbox: Inbox) -> None:
    site = unique_id("site")
    nurse = await inbox.staff(site)
    participant = await enrolled(inbox, site)
    producer = AIOKafkaProducer(bootstrap_servers=inbox.kafka, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(Topic.ALERTS, key=participant.encode(), value=b"\x00garbage")
        await producer.send_and_wait(
            Topic.ALERTS,
            key=participant.encode(),
            value=b'{"participant_id": "%s"}' % participant.encode(),
        )
    finally:
        await producer.stop()
    good = alert_for(participant)
    await inbox.publish(Topic.ALERTS, [(participant, good)])
    listed = await eventually(lambda: inbox.alerts(nurse))
    assert [a["alert_id"] for a in listed] == [str(good.event_id)]
    letters = await read_topic(
        inbox.kafka,
        Topic.DEAD_LETTER,
        match=lambda v: v.get("key") == participant and v.get("consumer_group") == ALERTS_GROUP,
    )
    assert len(letters) == 2
    assert all(letter["source_topic"] == Topic.ALERTS and letter["reason"] for letter in letters)


async def test_audit_names_the_person_and_rejects_updates_and_deletes(inbox: Inbox) -> None:
    site = unique_id("site")
    nurse = staff_auth(site, "site_staff", subject="nurse-ada", name="Ada Lovelace")
    participant = await enrolled(inbox, site)
    alert = alert_for(participant)
    await inbox.publish(Topic.ALERTS, [(participant, alert)])
    await eventually(lambda: inbox.alerts(nurse))
    ack = await inbox.client.post(
        f"/v1/alerts/{alert.event_id}/acknowledge", json={}, headers=nurse
    )
    assert ack.status_code == 200, ack.text
    entries = await audited(inbox.database_url, "monitoring", "alert", str(alert.event_id))
    acknowledged = [e for e in entries if e["action"] == "alert.acknowledged"]
    assert [(e["actor"], e["actor_detail"]) for e in acknowledged] == [
        ("staff:nurse-ada", {"name": "Ada Lovelace", "role": "site_staff", "study": "default"})
    ]
    conn = await asyncpg.connect(inbox.database_url)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await conn.execute("UPDATE monitoring.audit_trail SET reason = 'rewritten'")
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await conn.execute("DELETE FROM monitoring.audit_trail")
    finally:
        await conn.close()


async def test_unknown_staff_token_is_refused(inbox: Inbox) -> None:
    r = await inbox.client.get("/v1/alerts", headers={"Authorization": "Bearer staff_nope"})
    assert (r.status_code, r.json()["error"]["code"]) == (401, "invalid_token")


async def test_ended_episode_marks_its_alerts_auto_resolved_but_still_open(inbox: Inbox) -> None:
    site = unique_id("site")
    nurse = await inbox.staff(site)
    participant = await enrolled(inbox, site)
    alert = alert_for(participant)
    later = alert_for(unique_id("P"))  # another participant's alert stays untouched
    await inbox.publish(Topic.ALERTS, [(participant, alert), (later.participant_id, later)])
    await eventually(lambda: inbox.alerts(nurse))
    ended = AlertEpisodeEnded(
        participant_id=participant,
        kind=AlertKind.CLINICAL,
        metric=Metric.HEART_RATE,
        rule=alert.rule,
        ended_at=alert.detected_at + timedelta(minutes=20),
        explanation="Back to normal: 5 readings in a row clear of clinical-limit/heart-rate-high.",
    )
    await inbox.publish(Topic.ALERT_EPISODES_ENDED, [(participant, ended), (participant, ended)])

    async def marked() -> dict[str, object] | None:
        (row,) = await inbox.alerts(nurse)
        return row if row["episode_ended_at"] else None

    row = await eventually(marked)
    assert row["status"] == "open"  # staff still review it
    assert str(row["episode_end_note"]).startswith("Back to normal")
    conn = await asyncpg.connect(inbox.database_url)
    try:
        untouched = await conn.fetchval(
            "SELECT episode_ended_at FROM monitoring.alerts WHERE alert_id = $1", later.event_id
        )
    finally:
        await conn.close()
    assert untouched is None
    # The end is audited once per alert, though the event came twice.
    entries = await audited(inbox.database_url, "monitoring", "alert", str(alert.event_id))
    assert [(e["actor"], e["action"]) for e in entries] == [
        ("system:alerts", "alert.received"),
        ("system:alerts", "alert.episode_ended"),
    ]
    assert str(entries[1]["reason"]).startswith("Back to normal")


async def test_a_participant_moved_to_another_site_is_audited_not_silently_overwritten(
    inbox: Inbox,
) -> None:
    old_site, new_site = unique_id("site"), unique_id("site")
    participant = await enrolled(inbox, old_site)
    new_nurse = await inbox.staff(new_site)
    moved = ParticipantState(participant_id=participant, site_id=new_site)
    await inbox.publish(Topic.PARTICIPANTS, [(participant, moved), (participant, moved)])
    await inbox.publish(Topic.ALERTS, [(participant, alert_for(participant))])
    await eventually(lambda: inbox.alerts(new_nurse))  # the new site's staff see it

    async def site_changes() -> list[dict[str, object]] | None:
        found = await audited(inbox.database_url, "monitoring", "participant", participant)
        return found or None

    entries = await eventually(site_changes)
    assert [(e["actor"], e["action"], e["old"], e["new"]) for e in entries] == [
        ("system:participants", "participant.site_changed", old_site, new_site)
    ]
