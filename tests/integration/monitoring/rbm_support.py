"""A monitoring service (one or two replicas) on the real broker and database, for RBM tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
from helpers import as_uploads, eventually, publish_to, serving, unique_id
from monitoring.main import create_app
from monitoring.settings import MonitoringSettings
from monitoring_support import ADMIN, create_staff
from staff_tokens import JWKS
from trialstream.db import create_pool
from trialstream.events.base import Event
from trialstream.events.participants import ParticipantState
from trialstream.events.readings import Metric, ReadingReceived
from trialstream.events.topics import Topic
from trialstream.studies import StudyRegistry

UNITS = {"heart-rate": "beats/min", "step-count": "steps", "body-temperature": "C"}


@dataclass
class Rbm:
    clients: list[httpx.AsyncClient]
    pools: list[asyncpg.Pool]
    kafka: str
    database_url: str
    settings: MonitoringSettings
    studies: StudyRegistry  # the service's, as it follows the studies topic

    @property
    def client(self) -> httpx.AsyncClient:
        return self.clients[0]

    async def publish(self, topic: Topic, events: Sequence[tuple[str, Event]]) -> None:
        await publish_to(self.kafka, topic, list(events))

    async def staff(self, site: str, role: str = "investigator") -> dict[str, str]:
        return create_staff(site, role, prefix="nurse")

    async def enrol(self, site: str, **changes: Any) -> str:
        participant = unique_id("P")
        event = ParticipantState(participant_id=participant, site_id=site, **changes)
        await self.publish(Topic.PARTICIPANTS, [(participant, event)])
        await eventually(lambda: self.known(participant))
        return participant

    async def known(self, participant: str, status: str = "enrolled") -> bool:
        row = await self.pools[0].fetchval(
            "SELECT count(*) FROM rbm_participants WHERE participant_id = $1 AND status = $2",
            participant,
            status,
        )
        return bool(row)

    async def readings(self, readings: Sequence[ReadingReceived]) -> None:
        """As ingest sends them to monitoring: summarised per upload (decision 0093)."""
        await self.publish(
            Topic.READING_SUMMARIES, [(s.participant_id, s) for s in as_uploads(readings)]
        )

    async def flags(self, auth: dict[str, str], **params: str) -> list[dict[str, Any]]:
        r = await self.client.get("/v1/flags", params=params, headers=auth)
        assert r.status_code == 200, r.text
        return list(r.json()["flags"])


def reading(
    participant: str,
    measured: datetime,
    value: float = 70.0,
    *,
    received: datetime | None = None,
    device: str | None = None,
    metric: str = "heart-rate",
) -> ReadingReceived:
    return ReadingReceived(
        participant_id=participant,
        device_id=device or f"dev-{participant}",
        metric=Metric(metric),
        value=value,
        unit=UNITS[metric],
        measured_at=measured,
        occurred_at=received or measured + timedelta(seconds=2),
    )


def now() -> datetime:
    return datetime.now(UTC)


@asynccontextmanager
async def rbm_service(kafka: str, database_url: str, **settings: Any) -> AsyncIterator[Rbm]:
    config = MonitoringSettings(
        kafka_bootstrap_servers=kafka,
        database_url=database_url,
        admin_token=ADMIN,
        oidc_jwks=JWKS,
        kafka_session_timeout_ms=2000,
        **settings,
    )
    app = create_app(config)
    async with serving(app) as client:
        runtime = app.state.runtime
        yield Rbm([client], [runtime.pool], kafka, database_url, config, runtime.studies)


@asynccontextmanager
async def second_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on monitoring's schema, as a second replica's."""
    pool = await create_pool(database_url, schema="monitoring")
    try:
        yield pool
    finally:
        await pool.close()
