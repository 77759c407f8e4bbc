"""The alert workflow on the real broker and database: acknowledge, resolve with a reason,
episodes, roles and site scoping."""

from __future__ import annotations

from datetime import timedelta

import pytest
from helpers import eventually, read_topic, unique_id
from monitoring_support import ADMIN, Monitoring, alert_for, publish
from trialstream.events.alerts import AlertEpisodeEnded, AlertKind, Severity
from trialstream.events.readings import Metric
from trialstream.events.topics import Topic

pytestmark = pytest.mark.integration


async def test_resolving_needs_a_reason_and_publishes_once(monitoring: Monitoring) -> None:
    site = unique_id("site")
    nurse = await monitoring.staff(site)
    participant = await monitoring.enrolled(site)
    alert = alert_for(participant)
    await publish(monitoring.kafka, Topic.ALERTS, [(participant, alert)])
    await eventually(lambda: monitoring.alerts(nurse))

    missing = await monitoring.act(nurse, alert.event_id, "resolve", {})
    blank = await monitoring.act(nurse, alert.event_id, "resolve", {"reason": "   "})
    for r in (missing, blank):
        assert r.status_code == 422
        assert [d["field"] for d in r.json()["error"]["details"]] == ["reason"]
    ack = await monitoring.act(nurse, alert.event_id, "acknowledge", {"note": "calling"})
    assert ack.status_code == 200, ack.text
    done = await monitoring.act(
        nurse, alert.event_id, "resolve", {"reason": " resting HR normal on recheck "}
    )
    assert done.status_code == 200, done.text
    assert (done.json()["status"], done.json()["resolution_reason"]) == (
        "resolved",
        "resting HR normal on recheck",
    )
    again = await monitoring.act(nurse, alert.event_id, "resolve", {"reason": "twice"})
    assert (again.status_code, again.json()["error"]["code"]) == (409, "already_resolved")
    late_ack = await monitoring.act(nurse, alert.event_id, "acknowledge", {})
    assert (late_ack.status_code, late_ack.json()["error"]["code"]) == (409, "already_resolved")

    audit = (
        await monitoring.client.get(f"/v1/alerts/{alert.event_id}/audit", headers=nurse)
    ).json()["entries"]
    assert (audit[0]["action"], audit[0]["new_status"]) == ("alert.received", "open")
    assert [(e["action"], e["old_status"], e["new_status"], e["note"]) for e in audit[1:]] == [
        ("alert.acknowledged", "open", "acknowledged", "calling"),
        ("alert.resolved", "acknowledged", "resolved", "resting HR normal on recheck"),
    ]
    assert await monitoring.alerts(nurse, status="active") == []
    assert [a["alert_id"] for a in await monitoring.alerts(nurse, status="resolved")] == [
        str(alert.event_id)
    ]
    published = await read_topic(
        monitoring.kafka,
        Topic.ALERT_RESOLUTIONS,
        match=lambda v: v.get("alert_id") == str(alert.event_id),
    )
    assert [(e["previous_status"], e["site_id"], e["reason"]) for e in published] == [
        ("acknowledged", site, None)  # the reason stays in monitoring's audit trail
    ]


async def test_an_open_alert_can_be_resolved_directly(monitoring: Monitoring) -> None:
    site = unique_id("site")
    nurse = await monitoring.staff(site)
    participant = await monitoring.enrolled(site)
    alert = alert_for(participant, rule="device-quality/flatline-heart-rate", severity=Severity.LOW)
    await publish(monitoring.kafka, Topic.ALERTS, [(participant, alert)])
    await eventually(lambda: monitoring.alerts(nurse))
    r = await monitoring.act(nurse, alert.event_id, "resolve", {"reason": "strap refitted"})
    assert r.status_code == 200, r.text
    audit = (
        await monitoring.client.get(f"/v1/alerts/{alert.event_id}/audit", headers=nurse)
    ).json()["entries"]
    assert [(e["old_status"], e["new_status"]) for e in audit] == [
        (None, "open"),  # received
        ("open", "resolved"),
    ]


async def test_alerts_of_one_participant_episode_are_grouped(monitoring: Monitoring) -> None:
    site = unique_id("site")
    nurse = await monitoring.staff(site)
    participant = await monitoring.enrolled(site)
    first = alert_for(participant, severity=Severity.MEDIUM, minutes_ago=30)
    worse = alert_for(participant, severity=Severity.HIGH, minutes_ago=20)
    other_rule = alert_for(participant, rule="clinical-limit/oxygen-saturation-low")
    await publish(
        monitoring.kafka,
        Topic.ALERTS,
        [(participant, first), (participant, worse), (participant, other_rule)],
    )

    async def three() -> list[dict[str, object]] | None:
        alerts = await monitoring.alerts(nurse)
        return alerts if len(alerts) == 3 else None

    await eventually(three)
    ended = AlertEpisodeEnded(
        participant_id=participant,
        kind=AlertKind.CLINICAL,
        metric=Metric.HEART_RATE,
        rule=first.rule,
        ended_at=worse.detected_at + timedelta(minutes=5),
        explanation="Back to normal.",
    )
    await publish(monitoring.kafka, Topic.ALERT_EPISODES_ENDED, [(participant, ended)])

    async def ended_marked() -> bool:
        return all(
            a["episode_ended_at"] for a in await monitoring.alerts(nurse) if a["rule"] == first.rule
        )

    await eventually(ended_marked)
    relapse = alert_for(participant, minutes_ago=1)  # same rule, after the episode ended
    await publish(monitoring.kafka, Topic.ALERTS, [(participant, relapse)])

    async def grouped() -> list[dict[str, object]] | None:
        r = await monitoring.client.get(
            "/v1/alerts", params={"group": "episode", "status": "all"}, headers=nurse
        )
        assert r.status_code == 200, r.text
        episodes = list(r.json()["episodes"])
        return episodes if sum(len(e["alerts"]) for e in episodes) == 4 else None

    episodes = await eventually(grouped)
    shape = sorted(
        (e["rule"], e["severity"], sorted(str(a["alert_id"]) for a in e["alerts"]))
        for e in episodes
    )
    assert shape == sorted(
        [
            (first.rule, "high", sorted([str(first.event_id), str(worse.event_id)])),
            (first.rule, "high", [str(relapse.event_id)]),
            (other_rule.rule, "high", [str(other_rule.event_id)]),
        ]
    )


async def test_cross_site_access_is_refused_everywhere(monitoring: Monitoring) -> None:
    site_a, site_b = unique_id("site"), unique_id("site")
    nurse_b = await monitoring.staff(site_b)
    participant = await monitoring.enrolled(site_a)
    alert = alert_for(participant)
    await publish(monitoring.kafka, Topic.ALERTS, [(participant, alert)])
    nurse_a = await monitoring.staff(site_a)
    await eventually(lambda: monitoring.alerts(nurse_a))
    client, url = monitoring.client, f"/v1/alerts/{alert.event_id}"

    refused = [
        await client.get("/v1/alerts", params={"site": site_a}, headers=nurse_b),
        await client.get(url, headers=nurse_b),
        await client.get(f"{url}/audit", headers=nurse_b),
        await client.post(f"{url}/acknowledge", json={}, headers=nurse_b),
        await client.post(f"{url}/resolve", json={"reason": "not mine"}, headers=nurse_b),
        await client.get("/v1/alerts/stream", params={"site": site_a}, headers=nurse_b),
        await client.get(f"/v1/participants/{participant}/timeline", headers=nurse_b),
    ]
    assert [(r.status_code, r.json()["error"]["code"]) for r in refused] == [
        (403, "forbidden_site")
    ] * len(refused)
    assert (await monitoring.alerts(nurse_b, status="all")) == []


async def test_monitor_reads_every_site_and_cannot_act(monitoring: Monitoring) -> None:
    site = unique_id("site")
    participant = await monitoring.enrolled(site)
    alert = alert_for(participant)
    await publish(monitoring.kafka, Topic.ALERTS, [(participant, alert)])
    monitor = await monitoring.staff("cro", role="monitor")
    await eventually(lambda: monitoring.alerts(monitor, site=site))
    assert (await monitoring.alert(monitor, alert.event_id))["site_id"] == site
    timeline = await monitoring.client.get(
        f"/v1/participants/{participant}/timeline", headers=monitor
    )
    assert timeline.status_code == 200, timeline.text
    for action, body in (("acknowledge", {}), ("resolve", {"reason": "x"})):
        r = await monitoring.act(monitor, alert.event_id, action, body)
        assert (r.status_code, r.json()["error"]["code"]) == (403, "read_only_role")
    staff = await monitoring.client.post(
        "/v1/admin/staff", json={"staff_id": unique_id("n"), "site_id": site}, headers=monitor
    )
    assert (staff.status_code, staff.json()["error"]["code"]) == (403, "admin_only")


async def test_admin_acts_on_every_site_and_creates_staff(monitoring: Monitoring) -> None:
    site = unique_id("site")
    participant = await monitoring.enrolled(site)
    alert = alert_for(participant)
    await publish(monitoring.kafka, Topic.ALERTS, [(participant, alert)])
    admin = await monitoring.staff("cro", role="admin")
    await eventually(lambda: monitoring.alerts(admin, site=site))
    r = await monitoring.act(admin, alert.event_id, "acknowledge", {"note": "covering site"})
    assert r.status_code == 200, r.text
    created = await monitoring.client.post(
        "/v1/admin/staff", json={"staff_id": unique_id("nurse"), "site_id": site}, headers=admin
    )
    assert created.status_code == 201, created.text
    nurse = {"Authorization": f"Bearer {created.json()['token']}"}
    assert [a["status"] for a in await monitoring.alerts(nurse, status="all")] == ["acknowledged"]
    bad_admin = await monitoring.client.post(
        "/v1/admin/staff",
        json={"staff_id": unique_id("n"), "site_id": site},
        headers={"Authorization": f"Bearer {ADMIN}x"},
    )
    assert bad_admin.status_code == 401
