"""Webhook channel against a real local HTTP server, receipts, silence sweep, outreach list."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import httpx
import pytest
from helpers import eventually, reading, serving, unique_id
from retention import scoring, service
from retention.channels import Outgoing, WebhookChannel
from retention.main import create_app
from retention_support import AUTH, RECEIPTS, Gateway, Retention, due_event, settings_for
from trialstream.events.epro import QuestionnaireMissed
from trialstream.events.participants import ParticipantState
from trialstream.events.readings import ReadingReceived
from trialstream.events.topics import Topic

pytestmark = pytest.mark.integration


def outgoing() -> Outgoing:
    return Outgoing(uuid4(), "P-1", "epro-due", "push", "en", "Your questionnaire is ready.", None)


async def test_webhook_retries_server_errors_with_backoff_until_accepted(gateway: Gateway) -> None:
    gateway.statuses[:] = [503, 500, 202]
    async with httpx.AsyncClient(timeout=2) as client:
        channel = WebhookChannel(gateway.url, client, attempts=4, backoff_seconds=0.05)
        nudge = outgoing()
        result = await channel.deliver(nudge)
    assert (result.ok, result.detail) == (True, "HTTP 202 on attempt 3")
    assert [r["idempotency_key"] for r in gateway.requests] == [str(nudge.nudge_id)] * 3
    assert gateway.requests[0]["body"]["text"] == "Your questionnaire is ready."


async def test_webhook_client_error_is_permanent_and_not_retried(gateway: Gateway) -> None:
    gateway.statuses[:] = [400]
    async with httpx.AsyncClient(timeout=2) as client:
        result = await WebhookChannel(gateway.url, client, backoff_seconds=0.05).deliver(outgoing())
    assert (result.ok, result.permanent, len(gateway.requests)) == (False, True, 1)


async def test_webhook_nudge_is_sent_once_then_receipts_record_delivery_and_open(
    kafka: str, database_url: str, gateway: Gateway
) -> None:
    settings = settings_for(
        kafka, database_url, webhook_url=gateway.url, webhook_backoff_seconds=0.05
    )
    async with serving(create_app(settings)) as client:
        retention = Retention(client, kafka, database_url)
        pid = await retention.participant(channel="email", address="someone@example.org")
        gateway.scripted[pid] = [502]
        await retention.publish(Topic.EPRO_DUE, [due_event(pid)])
        [nudge] = await retention.nudges_where(pid, 1, status="sent")
        assert [s["step"] for s in nudge["journey"]] == ["intended", "queued", "sent"]
        assert nudge["journey"][-1]["detail"] == "webhook: HTTP 200 on attempt 2"
        sent = gateway.requests_for(pid)
        assert [r["body"]["address"] for r in sent] == ["someone@example.org"] * 2
        url = f"/v1/nudges/{nudge['nudge_id']}/receipts"
        opened = datetime.now(UTC).replace(microsecond=0)
        assert (
            await client.post(url, json={"status": "delivered"}, headers=RECEIPTS)
        ).status_code == 200
        r = await client.post(
            url, json={"status": "opened", "at": opened.isoformat()}, headers=RECEIPTS
        )
        again = await client.post(url, json={"status": "opened"}, headers=RECEIPTS)
        assert (r.status_code, again.status_code) == (200, 200)
        steps = [s["step"] for s in again.json()["journey"]]
        assert steps == ["intended", "queued", "sent", "delivered", "opened"]
        assert datetime.fromisoformat(again.json()["opened_at"]) == opened

        bad = await client.post(url, json={"status": "read"}, headers=RECEIPTS)
        assert (bad.status_code, bad.json()["error"]["details"][0]["field"]) == (422, "status")
        unknown = await client.post(
            f"/v1/nudges/{uuid4()}/receipts", json={"status": "opened"}, headers=RECEIPTS
        )
        assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "unknown_nudge")
        anonymous = await client.post(url, json={"status": "opened"})
        assert anonymous.status_code == 401
        prefs = await client.get(f"/v1/participants/{pid}/nudges", headers=AUTH)
        assert "someone@example.org" not in prefs.text


async def test_preferences_reject_an_unknown_timezone_with_field_detail(
    retention: Retention,
) -> None:
    for zone in ("Mars/Olympus", "Europe", "localtime"):  # "Europe" was a 500 (a folder)
        r = await retention.client.put(
            "/v1/admin/participants/P-1234/preferences", json={"timezone": zone}, headers=AUTH
        )
        assert r.status_code == 422, (zone, r.text)
        assert r.json()["error"]["details"][0]["field"] == "timezone"


async def test_silent_device_is_nudged_once_then_escalated_and_a_new_reading_closes_it(
    retention: Retention,
) -> None:
    site = unique_id("site")
    pid = await retention.participant(site=site)
    last = datetime.now(UTC) - timedelta(hours=30)
    event = ReadingReceived.model_validate(
        {**reading(pid, "watch-1", measured_at=last), "event_id": uuid4()}
    )
    await retention.readings([event])

    async def seen() -> bool:
        return bool(
            await retention.sql("SELECT 1 FROM device_activity WHERE participant_id = $1", pid)
        )

    await eventually(seen)
    pool = retention.client._transport.app.state.runtime.pool  # type: ignore[attr-defined]
    policy = retention.client._transport.app.state.policy  # type: ignore[attr-defined]
    studies = retention.client._transport.app.state.runtime.studies  # type: ignore[attr-defined]
    now = datetime.now(UTC)
    assert await service.sweep_silence(pool, policy, now, studies) >= 1
    assert await service.sweep_silence(pool, policy, now + timedelta(minutes=5), studies) == 0
    await service.sweep_silence(pool, policy, now + timedelta(hours=20), studies)  # 50 h silent
    nudges = await retention.nudges_where(pid, 1, status="escalated")
    kinds = sorted((n["kind"], n["status"]) for n in await retention.nudges(pid))
    assert kinds == [("device-silent", "escalated"), ("device-silent", "queued")] or kinds == [
        ("device-silent", "escalated"),
        ("device-silent", "sent"),
    ]
    tasks = (await retention.client.get(f"/v1/sites/{site}/tasks", headers=AUTH)).json()["tasks"]
    rows = await retention.sql(
        "SELECT t.task_id, p.site_id FROM coordinator_tasks t LEFT JOIN participants p"
        " USING (participant_id) WHERE t.participant_id = $1",
        pid,
    )
    assert [t["task_id"] for t in tasks] == [nudges[0]["nudge_id"]], (site, rows, nudges)

    fresh = ReadingReceived.model_validate({**reading(pid, "watch-1"), "event_id": uuid4()})
    await retention.readings([fresh])

    # The nudge was either sent already (then the reading marks it acted on) or still
    # queued, for quiet hours or a busy dispatcher (then it is never sent at all).
    async def closed() -> list[dict[str, object]] | None:
        done = [
            n
            for n in await retention.nudges(pid)
            if n["acted_on_at"] or n["suppress_reason"] == "done-before-send"
        ]
        return done or None

    [done] = await eventually(closed)
    assert done["kind"] == "device-silent"
    assert done["nudge_id"] != nudges[0]["nudge_id"]  # the escalation is the site's task


async def test_outreach_list_ranks_the_site_participants_by_dropout_risk(
    retention: Retention,
) -> None:
    site = unique_id("site")
    engaged, slipping = (
        await retention.participant(site=site),
        await retention.participant(site=site),
    )
    now = datetime.now(UTC)
    await retention.readings(
        [
            ReadingReceived.model_validate(
                {
                    **reading(engaged, "w-1", measured_at=now - timedelta(hours=h)),
                    "event_id": uuid4(),
                }
            )
            for h in range(0, 100)
        ],
    )
    missed = [
        QuestionnaireMissed(
            participant_id=slipping,
            occurrence_id=uuid4(),
            questionnaire_id="daily-diary",
            questionnaire_version=1,
            due_at=now - timedelta(days=i + 1),
            expires_at=now - timedelta(days=i),
        )
        for i in range(2)
    ]
    await retention.publish(Topic.EPRO_MISSED, missed)
    await retention.nudges_where(slipping, 2)

    async def hours() -> bool:
        rows = await retention.sql(
            "SELECT count(*) AS n FROM active_hours WHERE participant_id = $1", engaged
        )
        return bool(rows[0]["n"] == 100)

    await eventually(hours)
    app = retention.client._transport.app  # type: ignore[attr-defined]
    assert await scoring.score_all(app.state.runtime.pool, app.state.model, datetime.now(UTC)) >= 2
    r = await retention.client.get(f"/v1/sites/{site}/outreach", headers=AUTH)
    ranked = r.json()["participants"]
    assert [p["participant_id"] for p in ranked] == [slipping, engaged]
    assert {p["model_version"] for p in ranked} == {app.state.model.version}
    assert ranked[1]["features"]["wear_fraction"] == pytest.approx(100 / 168, abs=1e-3)
    assert ranked[0]["features"]["epro_compliance"] == 0.0

    # Once the slipping participant withdraws, nobody is asked to chase them (decision 0034):
    # they leave the list and are not scored again.
    left = ParticipantState(
        participant_id=slipping, site_id=site, status="withdrawn", withdrawn_at=now
    )
    await retention.publish(Topic.PARTICIPANTS, [left])

    async def gone() -> bool:
        rows = await retention.sql(
            "SELECT 1 FROM participants WHERE participant_id = $1 AND withdrawn_at IS NOT NULL",
            slipping,
        )
        return bool(rows)

    await eventually(gone)
    r = await retention.client.get(f"/v1/sites/{site}/outreach", headers=AUTH)
    assert [p["participant_id"] for p in r.json()["participants"]] == [engaged]
    later = datetime.now(UTC)
    await scoring.score_all(app.state.runtime.pool, app.state.model, later)
    rescored = await retention.sql(
        "SELECT participant_id FROM risk_scores WHERE scored_at = $1 AND participant_id = ANY($2)",
        later,
        [engaged, slipping],
    )
    assert [row["participant_id"] for row in rescored] == [engaged]
