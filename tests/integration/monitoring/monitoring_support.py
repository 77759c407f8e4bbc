"""A monitoring app on the real broker and PostgreSQL, and the requests tests make of it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from helpers import eventually, fetchval, publish_to, unique_id
from monitoring.settings import MonitoringSettings
from staff_tokens import JWKS, staff_auth
from trialstream.events.alerts import AlertKind, AlertRaised, Severity
from trialstream.events.base import Event
from trialstream.events.participants import ParticipantState
from trialstream.events.readings import Metric
from trialstream.events.topics import Topic

ADMIN = "monitoring-admin"


def monitoring_settings(kafka: str, database_url: str, **overrides: Any) -> MonitoringSettings:
    return MonitoringSettings(
        kafka_bootstrap_servers=kafka,
        database_url=database_url,
        admin_token=ADMIN,
        oidc_jwks=JWKS,
        kafka_session_timeout_ms=2000,
        **overrides,
    )


def create_staff(site: str, role: str = "investigator", *, prefix: str = "staff") -> dict[str, str]:
    """A person with `role` at `site` (a monitor, sponsor or admin role: every site of the
    study), signed in just now; their Authorization header. An investigator is the site
    role that may also sign (resolve a high-severity alert)."""
    site_role = role in ("site_staff", "investigator")
    return staff_auth(site if site_role else None, role, subject=unique_id(prefix))


async def publish(kafka: str, topic: Topic, events: Sequence[tuple[str, Event]]) -> None:
    await publish_to(kafka, topic, list(events))


def alert_for(
    participant: str,
    *,
    rule: str = "clinical-limit/heart-rate-high",
    severity: Severity = Severity.HIGH,
    minutes_ago: float = 5,
    kind: AlertKind = AlertKind.CLINICAL,
) -> AlertRaised:
    t = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    return AlertRaised(
        participant_id=participant,
        kind=kind,
        metric=Metric.HEART_RATE,
        severity=severity,
        rule=rule,
        detected_at=t,
        window_start=t - timedelta(minutes=4),
        window_end=t,
        observed=[140.0, 141.0, 142.0],
        threshold=131,
        model_version="rules-1.0",
        explanation="Heart rate 140-142 beats/min over 3 readings in 4 min.",
    )


@dataclass
class Monitoring:
    client: httpx.AsyncClient
    kafka: str
    database_url: str

    async def staff(self, site: str, role: str = "investigator") -> dict[str, str]:
        return create_staff(site, role, prefix="staff")

    async def enrolled(self, site: str, study: str = "default") -> str:
        participant = unique_id("P")
        state = ParticipantState(participant_id=participant, site_id=site, study_id=study)
        await publish(self.kafka, Topic.PARTICIPANTS, [(participant, state)])

        async def known() -> object:
            sql = "SELECT site_id FROM monitoring.participants WHERE participant_id = $1"
            return await fetchval(self.database_url, sql, participant)

        await eventually(known)  # alerts published from now on find their site
        return participant

    async def alerts(self, auth: dict[str, str], **params: str) -> list[dict[str, Any]]:
        r = await self.client.get("/v1/alerts", params=params, headers=auth)
        assert r.status_code == 200, r.text
        return list(r.json()["alerts"])

    async def alert(self, auth: dict[str, str], alert_id: object) -> dict[str, Any]:
        r = await self.client.get(f"/v1/alerts/{alert_id}", headers=auth)
        assert r.status_code == 200, r.text
        return dict(r.json())

    async def act(
        self, auth: dict[str, str], alert_id: object, action: str, body: dict[str, Any]
    ) -> httpx.Response:
        return await self.client.post(f"/v1/alerts/{alert_id}/{action}", json=body, headers=auth)
