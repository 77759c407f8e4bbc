"""Brief SpO2 dips are counted per day, not paged (issue 21): the night summary shows the
count to roles that cover the whole study, refuses site staff (anomaly does not know
sites) and does not show another study's participant."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from anomaly.config import ScoringConfig
from anomaly.main import create_app
from anomaly.settings import AnomalySettings
from helpers import eventually, fetchval, publish_to, serving, unique_id
from staff_tokens import JWKS, staff_auth
from trialstream.events.readings import Metric, ReadingReceived
from trialstream.events.topics import Topic
from trialstream.identity import Grant, Role

pytestmark = pytest.mark.integration
START = datetime.now(UTC).replace(hour=1, minute=0, second=0, microsecond=0) - timedelta(days=1)
# an oximeter reading every minute at night: three dips of 2-3 min, none held
NIGHT = [97, 97, 90, 89, 97, 97, 97, 89, 90, 90, 97, 97, 88, 89, 97, 97]


def readings(participant: str) -> list[tuple[str, ReadingReceived]]:
    return [
        (
            participant,
            ReadingReceived(
                event_id=uuid.uuid4(),
                participant_id=participant,
                device_id="wear-1",
                metric=Metric.OXYGEN_SATURATION,
                value=float(v),
                unit="%",
                measured_at=START + timedelta(minutes=i),
            ),
        )
        for i, v in enumerate(NIGHT)
    ]


async def test_the_night_summary_counts_brief_dips_for_study_wide_roles(
    kafka: str, database_url: str
) -> None:
    participant = unique_id("P")
    settings = AnomalySettings(
        kafka_bootstrap_servers=kafka,
        database_url=database_url,
        kafka_session_timeout_ms=2000,
        oidc_jwks=JWKS,
    )
    app = create_app(settings, ScoringConfig.device_mix())
    async with serving(app) as client:
        await publish_to(kafka, Topic.READINGS, readings(participant))
        sql = "SELECT count(*) FROM anomaly.participant_state WHERE participant_id = $1"
        await eventually(lambda: fetchval(database_url, sql, participant))
        path = f"/v1/participants/{participant}/night-summary"
        monitor = staff_auth(grants=[Grant(Role.MONITOR, "default")])
        r = await client.get(path, headers=monitor)
        site_nurse = staff_auth(grants=[Grant(Role.SITE_STAFF, "default", "site-a")])
        refused = await client.get(path, headers=site_nurse)
        elsewhere = staff_auth(grants=[Grant(Role.MONITOR, "OTHER-STUDY")])
        hidden = await client.get(path, headers=elsewhere)
        unknown = await client.get("/v1/participants/P-nobody/night-summary", headers=monitor)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["study_id"] == "default"
    assert body["days"] == [{"day": START.date().isoformat(), "dips": 3}]
    said = body["explanation"]
    assert "3 brief oxygen-saturation dips to 91 % or below on 1 of the last 14 days" in said
    assert "not alerted" in said
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "study_wide_role_needed"
    assert hidden.status_code == 404
    assert unknown.status_code == 404
    # counted, not paged
    alerts = "SELECT count(*) FROM anomaly.alerts WHERE participant_id = $1"
    assert await fetchval(database_url, alerts, participant) == 0
