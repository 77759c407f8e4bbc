"""PHQ-9 item 9 above 0 reaches the site's staff inbox in monitoring over the real broker."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from epro_support import Epro, phq9_body
from helpers import eventually, read_topic, serving, unique_id
from monitoring.main import create_app as create_monitoring
from monitoring.settings import MonitoringSettings
from staff_tokens import JWKS, staff_auth
from trialstream.events.topics import Topic

pytestmark = pytest.mark.integration
MONITORING_ADMIN = "monitoring-admin"


@pytest.fixture
async def monitoring(kafka: str, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = MonitoringSettings(
        kafka_bootstrap_servers=kafka,
        database_url=database_url,
        admin_token=MONITORING_ADMIN,
        oidc_jwks=JWKS,
        kafka_session_timeout_ms=2000,
    )
    async with serving(create_monitoring(settings)) as client:
        yield client


async def test_phq9_item9_answer_raises_an_urgent_alert_in_the_site_inbox(
    epro: Epro, monitoring: httpx.AsyncClient
) -> None:
    site = unique_id("site")
    nurse = staff_auth(site)
    participant, app = await epro.enroll(site=site)
    body = phq9_body(1, 2, 1, 1, 0, 1, 0, 0, 2)
    assert (await epro.submit(app, body)).status_code == 201

    async def inbox() -> list[dict[str, object]]:
        r = await monitoring.get("/v1/alerts", headers=nurse)
        return list(r.json()["alerts"])

    [alert] = await eventually(inbox)
    assert alert["participant_id"] == participant
    assert (alert["kind"], alert["severity"], alert["metric"]) == ("epro-safety", "high", None)
    assert alert["rule"] == "epro/phq9-item9-self-harm"
    assert alert["observed"] == [2.0]
    assert "phq9_total 8 (mild)" in alert["explanation"]

    retry = await epro.submit(app, body)  # the app retries: no second alert
    assert retry.status_code == 200
    alerts = await read_topic(
        epro.kafka, Topic.ALERTS, match=lambda v: v.get("participant_id") == participant
    )
    assert len(alerts) == 1


async def test_no_alert_when_item9_is_zero_but_a_correction_raising_it_alerts(epro: Epro) -> None:
    participant, app = await epro.enroll()
    body = phq9_body(2, 2, 2, 2, 2, 2, 2, 2, 0)
    assert (await epro.submit(app, body)).status_code == 201
    fixed = {**body["answers"], "phq9-9": "1"}
    r = await epro.client.post(
        f"/v1/responses/{body['response_id']}/corrections",
        json={"based_on_version": 1, "reason": "answered item 9 wrongly", "answers": fixed},
        headers=app,
    )
    assert r.status_code == 201, r.text
    alerts = await read_topic(
        epro.kafka, Topic.ALERTS, match=lambda v: v.get("participant_id") == participant
    )
    assert [(a["rule"], a["model_version"]) for a in alerts] == [
        ("epro/phq9-item9-self-harm", "phq-9@1")
    ]
    assert f"{body['response_id']} v2" in alerts[0]["explanation"]
