"""The alert workflow on the real broker and database: acknowledge, resolve with a reason,
episodes, roles and site scoping."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from helpers import eventually, fetchval, read_topic, unique_id
from monitoring_support import ADMIN, Monitoring, alert_for, publish
from staff_tokens import staff_auth
from trialstream.events.alerts import AlertEpisodeEnded, AlertKind, Severity
from trialstream.events.erasures import ErasureRequested, LegalBasis
from trialstream.events.readings import Metric
from trialstream.events.topics import Topic
from trialstream.identity import Grant, Role, SigningKey

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
        assert (r.status_code, r.json()["error"]["code"]) == (403, "role_not_allowed")


async def test_roles_from_the_token_decide_who_reads_acts_and_signs(
    monitoring: Monitoring,
) -> None:
    site = unique_id("site")
    participant = await monitoring.enrolled(site)
    high, medium = alert_for(participant), alert_for(participant, severity=Severity.MEDIUM)
    await publish(monitoring.kafka, Topic.ALERTS, [(participant, high), (participant, medium)])
    # An investigator for every site of the study acts anywhere.
    covering = await monitoring.staff(site, "investigator")
    await eventually(lambda: monitoring.alerts(covering, site=site))
    # Site staff act at their site but cannot sign a high alert's resolution.
    nurse = await monitoring.staff(site, "site_staff")
    r = await monitoring.act(nurse, medium.event_id, "resolve", {"reason": "strap refitted"})
    assert r.status_code == 200, r.text
    r = await monitoring.act(nurse, high.event_id, "resolve", {"reason": "rested"})
    assert (r.status_code, r.json()["error"]["code"]) == (403, "role_not_allowed")
    # An investigator who signed in long ago must sign in again first (step-up).
    stale = staff_auth(site, "investigator", signed_in_seconds_ago=3600)
    r = await monitoring.act(stale, high.event_id, "resolve", {"reason": "rested"})
    assert (r.status_code, r.json()["error"]["code"]) == (401, "step_up_required")
    assert "insufficient_user_authentication" in r.headers["www-authenticate"]
    r = await monitoring.act(covering, high.event_id, "resolve", {"reason": "rested, 72/min"})
    assert r.status_code == 200, r.text
    # A sponsor sees aggregates only: no alert, no timeline.
    sponsor = staff_auth(None, "sponsor")
    for path in (
        "/v1/alerts",
        f"/v1/alerts/{high.event_id}",
        f"/v1/participants/{participant}/timeline",
    ):
        r = await monitoring.client.get(path, headers=sponsor)
        assert (r.status_code, r.json()["error"]["code"]) == (403, "role_not_allowed"), path
    # Staff of another study see nothing of this one.
    elsewhere = staff_auth(site, "investigator", study="ONCO-2")
    r = await monitoring.client.get("/v1/alerts", params={"site": site}, headers=elsewhere)
    assert (r.status_code, r.json()["alerts"]) == (200, [])  # their own study's: none
    r = await monitoring.client.get(
        "/v1/alerts", params={"site": site, "study": "default"}, headers=elsewhere
    )
    assert r.status_code == 403
    # A token signed with another key, or garbage, is refused.
    forged = {
        "Authorization": f"Bearer {SigningKey.generate().issue(issuer='http://127.0.0.1:8007', audience='trialstream', subject='x', name='X', grants=[])}"
    }
    for headers in (forged, {"Authorization": f"Bearer {ADMIN}x"}):
        r = await monitoring.client.get("/v1/alerts", headers=headers)
        assert (r.status_code, r.json()["error"]["code"]) == (401, "invalid_token")


async def test_staff_of_one_study_see_nothing_of_another_at_a_site_of_the_same_name(
    monitoring: Monitoring,
) -> None:
    site = unique_id("site")  # both studies have a site of this name
    in_a = await monitoring.enrolled(site, study="STUDY-A")
    in_b = await monitoring.enrolled(site, study="STUDY-B")
    alert_a, alert_b = alert_for(in_a), alert_for(in_b)
    await publish(monitoring.kafka, Topic.ALERTS, [(in_a, alert_a), (in_b, alert_b)])
    nurse_a = staff_auth(site, "investigator", study="STUDY-A")
    listed = await eventually(lambda: monitoring.alerts(nurse_a, status="all"))
    assert [a["participant_id"] for a in listed] == [in_a]
    assert listed[0]["study_id"] == "STUDY-A"
    for path in (
        f"/v1/alerts/{alert_b.event_id}",
        f"/v1/alerts/{alert_b.event_id}/audit",
        f"/v1/participants/{in_b}/timeline",
    ):
        r = await monitoring.client.get(path, headers=nurse_a)
        assert r.status_code in (403, 404), (path, r.status_code)
    r = await monitoring.act(nurse_a, alert_b.event_id, "acknowledge", {})
    assert r.status_code in (403, 404)
    r = await monitoring.client.get("/v1/alerts", params={"study": "STUDY-B"}, headers=nurse_a)
    assert r.status_code == 403
    # Someone with roles in both studies names the one they look at.
    both = staff_auth(grants=[Grant(Role.MONITOR, "STUDY-A"), Grant(Role.MONITOR, "STUDY-B")])
    r = await monitoring.client.get("/v1/alerts", headers=both)
    assert (r.status_code, r.json()["error"]["code"]) == (422, "study_required")
    r = await monitoring.client.get(
        "/v1/alerts", params={"study": "STUDY-B", "status": "all"}, headers=both
    )
    assert [a["participant_id"] for a in r.json()["alerts"]] == [in_b]
    # The default study's staff at that site see neither.
    assert await monitoring.alerts(staff_auth(site), status="all") == []


async def test_staff_notes_stay_off_the_audit_chain_and_an_erasure_removes_them(
    monitoring: Monitoring,
) -> None:
    """Decision 0087 for monitoring: what staff type about a participant's alert is in the
    side table, the chained row holds its salted digest; the audit route still shows it
    until the participant is erased, then `[erased]`, and no table holds it."""
    site = unique_id("site")
    nurse = await monitoring.staff(site)
    participant = await monitoring.enrolled(site)
    alert = alert_for(participant)
    await publish(monitoring.kafka, Topic.ALERTS, [(participant, alert)])
    await eventually(lambda: monitoring.alerts(nurse))
    secret = f"spoke to Marie Durand {unique_id('x')}"
    ack = await monitoring.act(nurse, alert.event_id, "acknowledge", {"note": secret})
    assert ack.status_code == 200, ack.text
    done = await monitoring.act(nurse, alert.event_id, "resolve", {"reason": f"{secret}, fine"})
    assert done.status_code == 200, done.text

    chained = "SELECT string_agg(reason, ' ') FROM monitoring.audit_trail WHERE entity_id = $1"
    reasons = await fetchval(monitoring.database_url, chained, str(alert.event_id))
    assert secret not in reasons
    assert reasons.count("sha256:") == 2
    url = f"/v1/alerts/{alert.event_id}/audit"
    notes = [e["note"] for e in (await monitoring.client.get(url, headers=nurse)).json()["entries"]]
    assert notes[1:] == [secret, f"{secret}, fine"]

    request = ErasureRequested(
        participant_id=participant,
        request_id=uuid.uuid4(),
        legal_basis=LegalBasis.CONSENT_WITHDRAWN,
        requested_by="staff",
        keep_collected_data=True,
    )
    await publish(monitoring.kafka, Topic.ERASURES, [(participant, request)])

    async def erased() -> list[object] | None:
        r = await monitoring.client.get(url, headers=nurse)
        found = [e["note"] for e in r.json()["entries"]][1:]
        return found if found == ["[erased]", "[erased]"] else None

    await eventually(erased)
    anywhere = "SELECT count(*) FROM monitoring.audit_erasable_text WHERE text LIKE $1"
    assert await fetchval(monitoring.database_url, anywhere, f"%{secret}%") == 0
    stored = "SELECT ack_note || resolution_reason FROM monitoring.alerts WHERE alert_id = $1"
    assert await fetchval(monitoring.database_url, stored, alert.event_id) == "[erased][erased]"
